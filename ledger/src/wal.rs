//! Append-only logs of checksummed records: the block log, and the pool journal.
//!
//! **The block log** (`ledger.wal`) is what makes a sealed block durable between state
//! checkpoints. Writing a block's state to redb durably costs an fsync of every page it
//! dirtied (tens of megabytes of random pages at a million accounts), which was most of a
//! block's time. So a block is committed to redb without an fsync (`Durability::None`), and
//! what it takes to execute it again — the [`BlockPayload`] and the deposit-queue entries it
//! consumed — is appended here and fsynced first: one small sequential write. Every
//! [`crate::chain::CHECKPOINT_EVERY`] the ledger commits durably and empties this file.
//! After a crash, redb opens at its last durable commit and the blocks logged since are
//! executed again; each must come out with the hash it had, so the chain is the one clients
//! were shown.
//!
//! **The pool journal** (`ledger.pool.log`) keeps pending transactions across a restart:
//! each group commit of `eth_sendRawTransaction` calls appends one [`PoolRecord`] (the raw
//! transactions it accepted, the pooled ones they replaced or evicted) with one fsync. Mined
//! transactions are never written out of it: on reload, what the chain already holds is
//! skipped. When the journal grows past a limit it is rewritten as one record of what is
//! pending. A B-tree (redb) journal cost a page copy-on-write, checksums and freed-page
//! bookkeeping per group on top of the fsync, about 30 % of a submission's CPU.
//!
//! File format: records of `len: u32 LE`, `check: [u8; 4]` (the first bytes of keccak256
//! of the body), then the postcard body. A torn record at the tail (a crash inside an
//! append) fails its length or check and ends the log there; it was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use alloy_primitives::{B256, keccak256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::chain::BlockPayload;
use crate::error::{Error, Result};

/// One logged block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalRecord {
    /// The block, enough to execute it again.
    pub payload: BlockPayload,
    /// Keys of the local deposit queue the block consumed (removed again on replay).
    pub consumed: Vec<u64>,
}

impl Record for WalRecord {
    const WHAT: &'static str = "block log";
}

/// One group commit of the pool journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// Signed transactions (EIP-2718 bytes) accepted into the pool.
    pub added: Vec<Vec<u8>>,
    /// Hashes of pooled transactions that left it other than by being mined: replaced,
    /// evicted, or dropped as no longer valid.
    pub gone: Vec<B256>,
}

impl Record for PoolRecord {
    const WHAT: &'static str = "pool journal";
}

/// What a log holds.
pub trait Record: Serialize + DeserializeOwned {
    /// The log's name in errors.
    const WHAT: &'static str;
}

/// The block log.
pub type Wal = Log<WalRecord>;

/// The pool journal.
pub type PoolLog = Log<PoolRecord>;

/// An open log.
#[derive(Debug)]
pub struct Log<R> {
    file: File,
    path: PathBuf,
    len: u64,
    records: PhantomData<fn() -> R>,
}

impl<R: Record> Log<R> {
    /// Open (or create) the log at `path` and read its whole records. A torn tail is cut
    /// off, so appends continue after the last whole record.
    pub fn open(path: &Path) -> Result<(Self, Vec<R>)> {
        let io = |e: std::io::Error| Error::Db(format!("{} {}: {e}", R::WHAT, path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut at = 0usize;
        while let Some(head) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let Some(body) = bytes.get(at + 8..at + 8 + len) else {
                break;
            };
            if keccak256(body)[..4] != head[4..8] {
                break;
            }
            let Ok(r) = postcard::from_bytes::<R>(body) else {
                break;
            };
            records.push(r);
            at += 8 + len;
        }
        let len = at as u64;
        if len != bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                kept = len,
                dropped = bytes.len() as u64 - len,
                "cutting a torn record off the {}",
                R::WHAT
            );
            file.set_len(len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::Start(len)).map_err(io)?;
        Ok((
            Log {
                file,
                path: path.to_path_buf(),
                len,
                records: PhantomData,
            },
            records,
        ))
    }

    /// Append a record and fsync it; it is durable when this returns.
    pub fn append(&mut self, r: &R) -> Result<()> {
        let mut buf = Vec::new();
        frame(r, &mut buf)?;
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave no partial record behind for the next append to follow.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(self.err(e));
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Replace the whole log with `records`, atomically: they are written to a file beside
    /// it, fsynced, and renamed over it, so a crash leaves either the old log or the new one.
    pub fn rewrite(&mut self, records: &[R]) -> Result<()> {
        let mut buf = Vec::new();
        for r in records {
            frame(r, &mut buf)?;
        }
        let tmp = self.path.with_extension("tmp");
        let written = (|| -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
            Ok(f)
        })();
        let mut file = written.map_err(|e| self.err(e))?;
        // The handle written through is the log's file now (the rename keeps the inode), so
        // appends follow the new contents even if syncing the directory fails below.
        file.seek(SeekFrom::Start(buf.len() as u64))
            .map_err(|e| self.err(e))?;
        self.file = file;
        self.len = buf.len() as u64;
        // The rename is durable once the directory is synced (a directory cannot be opened
        // as a file elsewhere; there the rename rides on the file system's own journal).
        #[cfg(unix)]
        {
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Empty the log once everything in it is durable elsewhere. No fsync: if the cut is
    /// lost, replay skips blocks redb already holds.
    pub fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| self.err(e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.err(e))?;
        self.len = 0;
        Ok(())
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn err(&self, e: std::io::Error) -> Error {
        Error::Db(format!("{} {}: {e}", R::WHAT, self.path.display()))
    }
}

/// Append `r` to `buf` as one record: length, check, body.
fn frame<R: Record>(r: &R, buf: &mut Vec<u8>) -> Result<()> {
    let body = postcard::to_allocvec(r).map_err(|e| Error::Internal(e.to_string()))?;
    let len = u32::try_from(body.len())
        .map_err(|_| Error::Internal(format!("a record too large for the {}", R::WHAT)))?;
    buf.reserve(8 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&keccak256(&body)[..4]);
    buf.extend_from_slice(&body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> WalRecord {
        WalRecord {
            payload: BlockPayload {
                number: n,
                timestamp: 1_700_000_000 + n,
                txs: vec![vec![n as u8; 300]],
                hash: B256::repeat_byte(n as u8),
            },
            consumed: vec![n],
        }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ledger.wal");
        {
            let (mut w, old) = Wal::open(&path).expect("open");
            assert!(old.is_empty());
            for n in 1..=3 {
                w.append(&record(n)).expect("append");
            }
        }
        // A crash inside the fourth append: part of its bytes made it.
        let mut f = OpenOptions::new().append(true).open(&path).expect("f");
        f.write_all(&[200, 1, 0, 0, 9, 9]).expect("tail");
        drop(f);
        let (mut w, got) = Wal::open(&path).expect("reopen");
        assert_eq!(got, (1..=3).map(record).collect::<Vec<_>>());
        w.append(&record(4)).expect("append after the cut");
        drop(w);
        let (mut w, got) = Wal::open(&path).expect("reopen");
        assert_eq!(got, (1..=4).map(record).collect::<Vec<_>>());
        w.clear().expect("clear");
        assert!(w.is_empty());
        drop(w);
        assert!(Wal::open(&path).expect("reopen").1.is_empty());
    }

    #[test]
    fn a_corrupted_record_ends_the_log() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ledger.wal");
        {
            let (mut w, _) = Wal::open(&path).expect("open");
            for n in 1..=3 {
                w.append(&record(n)).expect("append");
            }
        }
        let mut bytes = std::fs::read(&path).expect("read");
        let second = 8 + postcard::to_allocvec(&record(1)).expect("enc").len();
        bytes[second + 20] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let (_, got) = Wal::open(&path).expect("reopen");
        assert_eq!(got, vec![record(1)]);
    }

    #[test]
    fn a_rewrite_replaces_the_log_and_appends_follow_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ledger.pool.log");
        let rec = |n: u8| PoolRecord {
            added: vec![vec![n; 120]],
            gone: vec![B256::repeat_byte(n)],
        };
        let (mut log, old) = PoolLog::open(&path).expect("open");
        assert!(old.is_empty());
        for n in 1..=5 {
            log.append(&rec(n)).expect("append");
        }
        log.rewrite(&[rec(9)]).expect("rewrite");
        log.append(&rec(10)).expect("append after the rewrite");
        let len = log.len();
        drop(log);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len);
        let (_, got) = PoolLog::open(&path).expect("reopen");
        assert_eq!(got, vec![rec(9), rec(10)]);
        assert!(!path.with_extension("tmp").exists(), "renamed away");
    }
}
