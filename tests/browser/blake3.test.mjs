// The console's BLAKE3 (web/js/blake3.js) against the official BLAKE3 test vectors
// (blake3_vectors.json: the BLAKE3 team's test_vectors.json; input byte i is i % 251).
// Run: node --test tests/browser/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  Hasher,
  deriveKey,
  hash,
  hashFile,
  hashHex,
  keyedHash,
  toHex,
} from '../../web/js/blake3.js';

const vectors = JSON.parse(readFileSync(new URL('./blake3_vectors.json', import.meta.url), 'utf8'));

function input(len) {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = i % 251;
  return b;
}

const REQUIRED = [
  0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168, 7169,
  8192, 8193, 16384, 31744, 102400,
];

test('the vector file has every required length', () => {
  const lens = new Set(vectors.cases.map((c) => c.input_len));
  for (const n of REQUIRED) assert.ok(lens.has(n), `missing input_len ${n}`);
});

for (const c of vectors.cases) {
  test(`hash, input_len ${c.input_len}`, () => {
    const data = input(c.input_len);
    const outLen = c.hash.length / 2;
    // default-length output: the first 32 bytes of the extended output
    assert.equal(hashHex(data), c.hash.slice(0, 64));
    // extended output
    assert.equal(toHex(hash(data, outLen)), c.hash);
  });

  test(`keyed_hash and derive_key, input_len ${c.input_len}`, () => {
    const data = input(c.input_len);
    const outLen = c.keyed_hash.length / 2;
    assert.equal(toHex(keyedHash(vectors.key, data, outLen)), c.keyed_hash);
    assert.equal(toHex(deriveKey(vectors.context_string, data, outLen)), c.derive_key);
  });

  test(`incremental updates agree, input_len ${c.input_len}`, () => {
    const data = input(c.input_len);
    // odd split sizes cross block and chunk boundaries at different places
    for (const step of [1, 63, 64, 65, 1000, 1024, 4097]) {
      const h = new Hasher();
      for (let i = 0; i < data.length; i += step) h.update(data.subarray(i, i + step));
      assert.equal(h.hex(), c.hash.slice(0, 64), `step ${step}`);
    }
  });
}

test('strings are hashed as UTF-8', () => {
  assert.equal(hashHex(''), vectors.cases[0].hash.slice(0, 64));
  assert.equal(hashHex('héllo'), hashHex(new TextEncoder().encode('héllo')));
  // the well-known BLAKE3 of "abc"
  assert.equal(hashHex('abc'), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
});

test('hashFile reads a Blob in slices and matches', async () => {
  const c = vectors.cases.find((v) => v.input_len === 102400);
  const blob = new Blob([input(102400)]);
  const seen = [];
  const hex = await hashFile(blob, (done, total) => seen.push([done, total]), 10000);
  assert.equal(hex, c.hash.slice(0, 64));
  assert.deepEqual(seen[0], [0, 102400]);
  assert.deepEqual(seen.at(-1), [102400, 102400]);
  assert.equal(seen.length, 1 + Math.ceil(102400 / 10000));
});

test('a multi-megabyte input hashes like its incremental form, in reasonable time', () => {
  const n = 8 * 1024 * 1024 + 12345;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + (i >> 10)) & 0xff;
  const t0 = performance.now();
  const one = hashHex(data);
  const ms = performance.now() - t0;
  const h = new Hasher();
  for (let i = 0; i < n; i += 777777) h.update(data.subarray(i, i + 777777));
  assert.equal(h.hex(), one);
  assert.ok(ms < 20000, `8 MiB took ${ms.toFixed(0)} ms`);
});
