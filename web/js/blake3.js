// BLAKE3 in plain JavaScript: the full chunk / Merkle-tree construction of the specification
// (1 KiB chunks of 64-byte blocks, chaining values merged pairwise into parent nodes, a ROOT
// flag on the last compression, extendable output). No dependencies; runs in browsers and in
// Node. Used by the console to compute `descriptionHash` and `fileHash` (docs/API.md), which
// the node recomputes with the Rust `blake3` crate and checks against the signature.
//
// Streaming: `new Hasher().update(a).update(b).finalize()`; `hashFile(blob, onProgress)` reads a
// File/Blob in slices so a file of many megabytes never has to be one array.

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK_LEN = 64;
const CHUNK_LEN = 1024;

const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const KEYED_HASH = 16;
const DERIVE_KEY_CONTEXT = 32;
const DERIVE_KEY_MATERIAL = 64;

// The message words each of the 7 rounds reads, in order: round r uses the message permuted
// r times by MSG_PERMUTATION.
const MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const SCHEDULE = (() => {
  const out = new Uint8Array(7 * 16);
  let s = Array.from({ length: 16 }, (_, i) => i);
  for (let r = 0; r < 7; r++) {
    out.set(s, r * 16);
    s = MSG_PERMUTATION.map((i) => s[i]);
  }
  return out;
})();

const TWO_POW_32 = 0x100000000;

// Scratch state for the compression function (single-threaded JS: safe to share).
const V = new Uint32Array(16);

function g(a, b, c, d, x, y) {
  const v = V;
  v[a] = (v[a] + v[b] + x) | 0;
  let t = v[d] ^ v[a];
  v[d] = (t >>> 16) | (t << 16);
  v[c] = (v[c] + v[d]) | 0;
  t = v[b] ^ v[c];
  v[b] = (t >>> 12) | (t << 20);
  v[a] = (v[a] + v[b] + y) | 0;
  t = v[d] ^ v[a];
  v[d] = (t >>> 8) | (t << 24);
  v[c] = (v[c] + v[d]) | 0;
  t = v[b] ^ v[c];
  v[b] = (t >>> 7) | (t << 25);
}

/**
 * The BLAKE3 compression function. Writes the 16 output words to `out`.
 * @param {Uint32Array} cv 8 words
 * @param {Uint32Array} m 16 message words
 * @param {number} counter up to 2^53
 * @param {number} blockLen bytes in the block (0..64)
 * @param {number} flags
 * @param {Uint32Array} out 16 words
 */
function compress(cv, m, counter, blockLen, flags, out) {
  const v = V;
  for (let i = 0; i < 8; i++) v[i] = cv[i];
  v[8] = IV[0];
  v[9] = IV[1];
  v[10] = IV[2];
  v[11] = IV[3];
  v[12] = counter % TWO_POW_32;
  v[13] = Math.floor(counter / TWO_POW_32);
  v[14] = blockLen;
  v[15] = flags;
  const s = SCHEDULE;
  for (let r = 0; r < 7 * 16; r += 16) {
    g(0, 4, 8, 12, m[s[r]], m[s[r + 1]]);
    g(1, 5, 9, 13, m[s[r + 2]], m[s[r + 3]]);
    g(2, 6, 10, 14, m[s[r + 4]], m[s[r + 5]]);
    g(3, 7, 11, 15, m[s[r + 6]], m[s[r + 7]]);
    g(0, 5, 10, 15, m[s[r + 8]], m[s[r + 9]]);
    g(1, 6, 11, 12, m[s[r + 10]], m[s[r + 11]]);
    g(2, 7, 8, 13, m[s[r + 12]], m[s[r + 13]]);
    g(3, 4, 9, 14, m[s[r + 14]], m[s[r + 15]]);
  }
  for (let i = 0; i < 8; i++) {
    out[i] = v[i] ^ v[i + 8];
    out[i + 8] = v[i + 8] ^ cv[i];
  }
}

/** Little-endian words of 64 bytes of `bytes` from `off` (zero past `len`). */
function loadWords(bytes, off, len, words) {
  if (len === BLOCK_LEN) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      words[i] = bytes[j] | (bytes[j + 1] << 8) | (bytes[j + 2] << 16) | (bytes[j + 3] << 24);
    }
    return;
  }
  words.fill(0);
  for (let i = 0; i < len; i++) words[i >> 2] |= bytes[off + i] << (8 * (i & 3));
}

const OUT16 = new Uint32Array(16);

/** What the last compression of a node needs: its chaining value, or root output bytes. */
class Output {
  constructor(inputCv, blockWords, counter, blockLen, flags) {
    this.inputCv = inputCv;
    this.blockWords = blockWords;
    this.counter = counter;
    this.blockLen = blockLen;
    this.flags = flags;
  }

  chainingValue() {
    compress(this.inputCv, this.blockWords, this.counter, this.blockLen, this.flags, OUT16);
    return OUT16.slice(0, 8);
  }

  rootBytes(outLen) {
    const out = new Uint8Array(outLen);
    let pos = 0;
    for (let block = 0; pos < outLen; block++) {
      compress(this.inputCv, this.blockWords, block, this.blockLen, this.flags | ROOT, OUT16);
      for (let i = 0; i < 16 && pos < outLen; i++) {
        const w = OUT16[i];
        for (let b = 0; b < 4 && pos < outLen; b++) out[pos++] = (w >>> (8 * b)) & 0xff;
      }
    }
    return out;
  }
}

class ChunkState {
  constructor(key, chunkCounter, flags) {
    this.cv = Uint32Array.from(key);
    this.chunkCounter = chunkCounter;
    this.block = new Uint8Array(BLOCK_LEN);
    this.blockLen = 0;
    this.blocksCompressed = 0;
    this.flags = flags;
    this.words = new Uint32Array(16);
  }

  len() {
    return this.blocksCompressed * BLOCK_LEN + this.blockLen;
  }

  startFlag() {
    return this.blocksCompressed === 0 ? CHUNK_START : 0;
  }

  compressBlock(bytes, off) {
    loadWords(bytes, off, BLOCK_LEN, this.words);
    compress(this.cv, this.words, this.chunkCounter, BLOCK_LEN, this.flags | this.startFlag(), OUT16);
    for (let i = 0; i < 8; i++) this.cv[i] = OUT16[i];
    this.blocksCompressed++;
  }

  /** Absorb input[off, end); the caller keeps it within this chunk. */
  update(input, off, end) {
    while (off < end) {
      // A full buffered block is compressed only once more input follows: the last block of
      // a chunk needs CHUNK_END (and maybe ROOT).
      if (this.blockLen === BLOCK_LEN) {
        this.compressBlock(this.block, 0);
        this.blockLen = 0;
      }
      // Fast path: whole blocks straight from the input, keeping the last one buffered.
      while (this.blockLen === 0 && end - off > BLOCK_LEN) {
        this.compressBlock(input, off);
        off += BLOCK_LEN;
      }
      const take = Math.min(BLOCK_LEN - this.blockLen, end - off);
      this.block.set(input.subarray(off, off + take), this.blockLen);
      this.blockLen += take;
      off += take;
    }
  }

  output() {
    const words = new Uint32Array(16);
    loadWords(this.block, 0, this.blockLen, words);
    return new Output(
      Uint32Array.from(this.cv),
      words,
      this.chunkCounter,
      this.blockLen,
      this.flags | this.startFlag() | CHUNK_END,
    );
  }
}

function parentOutput(left, right, key, flags) {
  const words = new Uint32Array(16);
  words.set(left, 0);
  words.set(right, 8);
  return new Output(key, words, 0, BLOCK_LEN, PARENT | flags);
}

const encoder = new TextEncoder();

function asBytes(input) {
  if (typeof input === 'string') return encoder.encode(input);
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError('blake3: input must be a string, an ArrayBuffer or a typed array');
}

function keyWords(key) {
  const k = asBytes(key);
  if (k.length !== 32) throw new RangeError('blake3: a key is 32 bytes');
  const w = new Uint32Array(16);
  loadWords(k, 0, 32, w);
  return w.slice(0, 8);
}

/** An incremental BLAKE3 hasher. */
export class Hasher {
  /**
   * @param {Uint32Array} [key] 8 key words (default: the IV, i.e. plain hashing)
   * @param {number} [flags] mode flags (0, KEYED_HASH, DERIVE_KEY_*)
   */
  constructor(key = IV, flags = 0) {
    this.key = Uint32Array.from(key);
    this.flags = flags;
    this.chunk = new ChunkState(this.key, 0, flags);
    this.cvStack = [];
  }

  /** Keyed hashing with a 32-byte key. */
  static keyed(key) {
    return new Hasher(keyWords(key), KEYED_HASH);
  }

  /** Key derivation: `Hasher.deriveKey(context).update(material).finalize(len)`. */
  static deriveKey(context) {
    const ctx = new Hasher(IV, DERIVE_KEY_CONTEXT).update(context).finalize(32);
    return new Hasher(keyWords(ctx), DERIVE_KEY_MATERIAL);
  }

  addChunkChainingValue(cv, totalChunks) {
    // Merge completed subtrees: one merge per trailing zero bit of the chunk count.
    while (totalChunks % 2 === 0) {
      cv = parentOutput(this.cvStack.pop(), cv, this.key, this.flags).chainingValue();
      totalChunks /= 2;
    }
    this.cvStack.push(cv);
  }

  /** Absorb bytes (a string is hashed as UTF-8). Returns this. */
  update(input) {
    const bytes = asBytes(input);
    let off = 0;
    while (off < bytes.length) {
      if (this.chunk.len() === CHUNK_LEN) {
        const cv = this.chunk.output().chainingValue();
        const total = this.chunk.chunkCounter + 1;
        this.addChunkChainingValue(cv, total);
        this.chunk = new ChunkState(this.key, total, this.flags);
      }
      const take = Math.min(CHUNK_LEN - this.chunk.len(), bytes.length - off);
      this.chunk.update(bytes, off, off + take);
      off += take;
    }
    return this;
  }

  /** The hash so far (the hasher can keep absorbing). Default 32 bytes. */
  finalize(outLen = 32) {
    let output = this.chunk.output();
    for (let i = this.cvStack.length - 1; i >= 0; i--) {
      output = parentOutput(this.cvStack[i], output.chainingValue(), this.key, this.flags);
    }
    return output.rootBytes(outLen);
  }

  /** The hash so far as lowercase hex. */
  hex(outLen = 32) {
    return toHex(this.finalize(outLen));
  }
}

/** Lowercase hex of bytes. */
export function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, '0');
  return s;
}

/** BLAKE3 of a string (UTF-8) or bytes. */
export function hash(input, outLen = 32) {
  return new Hasher().update(input).finalize(outLen);
}

/** BLAKE3 as 64 lowercase hex digits. */
export function hashHex(input) {
  return toHex(hash(input));
}

/** Keyed BLAKE3 (32-byte key). */
export function keyedHash(key, input, outLen = 32) {
  return Hasher.keyed(key).update(input).finalize(outLen);
}

/** BLAKE3 key derivation. */
export function deriveKey(context, material, outLen = 32) {
  return Hasher.deriveKey(context).update(material).finalize(outLen);
}

/**
 * BLAKE3 of a Blob/File, read in slices. `onProgress(doneBytes, totalBytes)` is called after
 * each slice; the event loop gets a turn between slices so the page stays responsive.
 * @returns {Promise<string>} 64 lowercase hex digits
 */
export async function hashFile(blob, onProgress, sliceBytes = 4 << 20) {
  const h = new Hasher();
  const total = blob.size;
  let done = 0;
  if (onProgress) onProgress(0, total);
  while (done < total) {
    const end = Math.min(total, done + sliceBytes);
    const buf = await blob.slice(done, end).arrayBuffer();
    h.update(new Uint8Array(buf));
    done = end;
    if (onProgress) onProgress(done, total);
  }
  return h.hex();
}
