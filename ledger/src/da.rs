//! Data availability: sealed blocks packed into compressed channels, cut into frames and
//! written to a DA layer, and derivation of the chain from those frames alone.
//!
//! **Format.** A channel holds consecutive blocks: the postcard encoding of
//! `Vec<`[`BlockPayload`]`>` (timestamp and every transaction's EIP-2718 bytes, deposits
//! included), compressed with zlib. It is cut into frames as OP's batcher does:
//! `channel_id (16) ‖ frame_number u16 BE ‖ length u32 BE ‖ data ‖ is_last u8`. Each frame is
//! one DA item, prefixed with the derivation version byte `0`. Unlike OP, deposits travel in
//! the channel too: in `--dev` the L1 side is a local queue, and a follower must derive from
//! DA alone.
//!
//! **Directory layer** ([`DirDa`]): `genesis.json` (the [`GenesisConfig`]), frames as
//! `NNNNNNNNNNNN.frame` in write order (written to a temporary name, synced, renamed), and
//! `head` holding the newest block number written. Everything in it is derived from the
//! ledger database: a sequencer that restarts writes what `head` lacks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alloy_primitives::keccak256;

use crate::chain::{BlockPayload, Ledger, Sealed};
use crate::error::{Error, Result};
use crate::genesis::GenesisConfig;

/// Largest frame data, bytes (OP's batcher uses frames of about this size).
pub const MAX_FRAME_DATA: usize = 120_000;
/// A channel is closed once its blocks' raw size passes this.
const MAX_CHANNEL_RAW: usize = 4 << 20;

/// Where frames go and come from. Two layers exist in the design (a directory, and L1
/// blobs/calldata for a real deployment); only the directory is built.
pub trait DaLayer: Send + Sync {
    /// Store the genesis config (once).
    fn put_genesis(&self, g: &GenesisConfig) -> Result<()>;
    /// The stored genesis config.
    fn genesis(&self) -> Result<Option<GenesisConfig>>;
    /// Append frames, then record `head` as the newest block they carry.
    fn append(&self, frames: &[Vec<u8>], head: u64) -> Result<()>;
    /// The newest block number written (`None` when nothing is).
    fn head(&self) -> Result<Option<u64>>;
    /// Every frame in write order.
    fn frames(&self) -> Result<Vec<Vec<u8>>>;
}

/// The directory DA layer.
#[derive(Debug, Clone)]
pub struct DirDa {
    dir: PathBuf,
}

impl DirDa {
    /// A DA directory (created on first write).
    pub fn new(dir: &Path) -> Self {
        DirDa {
            dir: dir.to_path_buf(),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        Ok(())
    }

    fn frame_names(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_suffix(".frame")
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((n, e.path()));
            }
        }
        out.sort();
        Ok(out)
    }
}

impl DaLayer for DirDa {
    fn put_genesis(&self, g: &GenesisConfig) -> Result<()> {
        let json = serde_json::to_vec_pretty(g).map_err(|e| Error::Internal(e.to_string()))?;
        self.write_atomic("genesis.json", &json)
    }

    fn genesis(&self) -> Result<Option<GenesisConfig>> {
        match std::fs::read(self.dir.join("genesis.json")) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Da(format!("genesis.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn append(&self, frames: &[Vec<u8>], head: u64) -> Result<()> {
        let first = self.frame_names()?.last().map(|(n, _)| n + 1).unwrap_or(0);
        for (n, f) in (first..).zip(frames) {
            self.write_atomic(&format!("{n:012}.frame"), f)?;
        }
        self.write_atomic("head", head.to_string().as_bytes())
    }

    fn head(&self) -> Result<Option<u64>> {
        match std::fs::read_to_string(self.dir.join("head")) {
            Ok(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::Da("unreadable head file".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn frames(&self) -> Result<Vec<Vec<u8>>> {
        self.frame_names()?
            .into_iter()
            .map(|(_, p)| std::fs::read(p).map_err(Into::into))
            .collect()
    }
}

/// Pack blocks into one channel's frames.
pub fn encode_channel(blocks: &[BlockPayload]) -> Result<Vec<Vec<u8>>> {
    let raw = postcard::to_allocvec(blocks).map_err(|e| Error::Internal(e.to_string()))?;
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    let first = blocks.first().map(|b| b.number).unwrap_or(0);
    let last = blocks.last().map(|b| b.number).unwrap_or(0);
    let mut idb = first.to_be_bytes().to_vec();
    idb.extend_from_slice(&last.to_be_bytes());
    let id = keccak256(&idb);
    let chunks: Vec<&[u8]> = if compressed.is_empty() {
        vec![&[][..]]
    } else {
        compressed.chunks(MAX_FRAME_DATA).collect()
    };
    let n = chunks.len();
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut f = Vec::with_capacity(c.len() + 24);
            f.push(0); // derivation version
            f.extend_from_slice(&id[..16]);
            f.extend_from_slice(&(i as u16).to_be_bytes());
            f.extend_from_slice(&(c.len() as u32).to_be_bytes());
            f.extend_from_slice(c);
            f.push(u8::from(i + 1 == n));
            f
        })
        .collect())
}

/// Reassemble channels from frames in order and decode their blocks.
pub fn decode_frames(frames: &[Vec<u8>]) -> Result<Vec<BlockPayload>> {
    let mut out = Vec::new();
    let mut open: Option<([u8; 16], u16, Vec<u8>)> = None;
    for (k, f) in frames.iter().enumerate() {
        let bad = |why: &str| Error::Da(format!("frame {k}: {why}"));
        if f.len() < 1 + 16 + 2 + 4 + 1 || f[0] != 0 {
            return Err(bad("not a version-0 frame"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&f[1..17]);
        let num = u16::from_be_bytes([f[17], f[18]]);
        let len = u32::from_be_bytes([f[19], f[20], f[21], f[22]]) as usize;
        if f.len() != 23 + len + 1 {
            return Err(bad("length does not match"));
        }
        let data = &f[23..23 + len];
        let last = f[23 + len] == 1;
        let mut cur = match open.take() {
            // A new channel while one is open: the writer crashed mid-channel and wrote the
            // blocks again; the incomplete one is dropped, as OP drops a timed-out channel.
            _ if num == 0 => (id, 0, Vec::new()),
            None => return Err(bad("a channel starts in the middle")),
            Some((cid, n, buf)) if cid == id && n + 1 == num => (cid, num, buf),
            Some(_) => return Err(bad("frames out of order")),
        };
        cur.2.extend_from_slice(data);
        if last {
            let raw = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&cur.2, 256 << 20)
                .map_err(|e| bad(&format!("cannot decompress: {e:?}")))?;
            let blocks: Vec<BlockPayload> = postcard::from_bytes(&raw)
                .map_err(|e| bad(&format!("undecodable channel: {e}")))?;
            out.extend(blocks);
        } else {
            open = Some(cur);
        }
    }
    Ok(out)
}

struct Inner {
    layer: Box<dyn DaLayer>,
    pending: Mutex<(Vec<BlockPayload>, usize, Option<Instant>)>,
    wake: Condvar,
    safe: Arc<AtomicU64>,
    stop: AtomicBool,
    interval: Duration,
    /// Serialises flushes (the thread and a stop).
    writing: Mutex<()>,
}

/// Batches sealed blocks and writes them to a [`DaLayer`] within `interval` of sealing.
pub struct DaWriter {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for DaWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DaWriter")
    }
}

impl DaWriter {
    /// Open: store the genesis, queue the blocks the layer lacks (after a crash), and start
    /// the thread that flushes every `interval`.
    pub fn open(layer: Box<dyn DaLayer>, ledger: &Ledger, interval: Duration) -> Result<DaWriter> {
        match layer.genesis()? {
            None => layer.put_genesis(ledger.genesis())?,
            Some(g) if g != *ledger.genesis() => {
                return Err(Error::Da(
                    "the DA directory belongs to another chain (genesis differs)".into(),
                ));
            }
            Some(_) => {}
        }
        let written = layer.head()?;
        let head = ledger.head().header.number;
        let mut missing = Vec::new();
        let from = written.map(|n| n + 1).unwrap_or(1);
        for n in from..=head {
            if let Some(p) = ledger.payload(n)? {
                missing.push(p);
            }
        }
        let safe = Arc::new(AtomicU64::new(written.unwrap_or(0)));
        let size = missing.iter().map(payload_size).sum();
        let since = (!missing.is_empty()).then(Instant::now);
        let inner = Arc::new(Inner {
            layer,
            pending: Mutex::new((missing, size, since)),
            wake: Condvar::new(),
            safe,
            stop: AtomicBool::new(false),
            interval,
            writing: Mutex::new(()),
        });
        let t = inner.clone();
        let thread = std::thread::Builder::new()
            .name("da-writer".into())
            .spawn(move || {
                while !t.stop.load(Ordering::Acquire) {
                    let due = {
                        let g = t.pending.lock().unwrap_or_else(|p| p.into_inner());
                        let (g, _) = t
                            .wake
                            .wait_timeout(g, Duration::from_millis(100))
                            .unwrap_or_else(|p| p.into_inner());
                        g.2.is_some_and(|s| s.elapsed() >= t.interval) || g.1 >= MAX_CHANNEL_RAW
                    };
                    if due && let Err(e) = flush_inner(&t) {
                        tracing::error!(error = %e, "writing to DA failed; will retry");
                    }
                }
            })
            .ok();
        Ok(DaWriter {
            inner,
            thread: Mutex::new(thread),
        })
    }

    /// The newest block written to DA (shared counter).
    pub fn safe_head(&self) -> Arc<AtomicU64> {
        self.inner.safe.clone()
    }

    /// Queue a sealed block.
    pub fn push(&self, s: &Sealed) {
        let mut g = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += payload_size(&s.payload);
        g.0.push(s.payload.clone());
        if g.2.is_none() {
            g.2 = Some(Instant::now());
        }
        self.inner.wake.notify_all();
    }

    /// Write everything queued now (graceful stop).
    pub fn flush(&self) -> Result<()> {
        flush_inner(&self.inner)
    }
}

impl Drop for DaWriter {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

fn payload_size(p: &BlockPayload) -> usize {
    p.txs.iter().map(Vec::len).sum::<usize>() + 48
}

fn flush_inner(inner: &Inner) -> Result<()> {
    let _w = inner.writing.lock().unwrap_or_else(|p| p.into_inner());
    let blocks = {
        let mut g = inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = 0;
        g.2 = None;
        std::mem::take(&mut g.0)
    };
    let Some(last) = blocks.last().map(|b| b.number) else {
        return Ok(());
    };
    let frames = encode_channel(&blocks)?;
    if let Err(e) = inner.layer.append(&frames, last) {
        // Put them back so the next flush retries.
        let mut g = inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut again = blocks;
        again.append(&mut g.0);
        g.1 = again.iter().map(payload_size).sum();
        g.0 = again;
        g.2 = Some(Instant::now());
        return Err(e);
    }
    inner.safe.store(last, Ordering::Release);
    Ok(())
}

/// Rebuild a chain from a DA layer into a new ledger database; returns the ledger.
pub fn derive(layer: &dyn DaLayer, db_path: &Path) -> Result<Ledger> {
    let genesis = layer
        .genesis()?
        .ok_or_else(|| Error::Da("no genesis.json in the DA layer".into()))?;
    let ledger = Ledger::open(
        db_path,
        crate::LedgerConfig {
            genesis,
            pool: Default::default(),
            cache_bytes: crate::chain::DEFAULT_CACHE_BYTES,
            trie_cache_bytes: crate::chain::DEFAULT_TRIE_CACHE_BYTES,
        },
    )?;
    for p in decode_frames(&layer.frames()?)? {
        // Blocks written twice (a crash between frames and `head`) are applied once.
        if p.number <= ledger.head().header.number {
            continue;
        }
        ledger.apply_payload(&p)?;
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_across_frames() {
        let blocks: Vec<BlockPayload> = (1..=40u64)
            .map(|n| BlockPayload {
                number: n,
                timestamp: n,
                // Incompressible bytes so the channel needs several frames.
                txs: vec![
                    (0..9000u64)
                        .map(|i| keccak256((n * 100_000 + i).to_be_bytes())[0])
                        .collect(),
                ],
                hash: keccak256(n.to_be_bytes()),
            })
            .collect();
        let frames = encode_channel(&blocks).expect("encode");
        assert!(frames.len() > 2, "{} frames", frames.len());
        assert_eq!(decode_frames(&frames).expect("decode"), blocks);
        let mut shuffled = frames.clone();
        shuffled.swap(1, 2);
        assert!(decode_frames(&shuffled).is_err());
        // A channel cut short by a crash, then written again in full: decoded once.
        let mut again = frames[..2].to_vec();
        again.extend(frames.iter().cloned());
        assert_eq!(decode_frames(&again).expect("decode"), blocks);
    }
}
