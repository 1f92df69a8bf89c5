//! The block log: what makes a sealed block durable between state checkpoints.
//!
//! Writing a block's state to redb durably costs an fsync of every page it dirtied (tens of
//! megabytes of random pages at a million accounts), which was most of a block's time. So a
//! block is committed to redb without an fsync (`Durability::None`), and what it takes to
//! execute it again — the [`BlockPayload`] and the deposit-queue entries it consumed — is
//! appended here and fsynced first: one small sequential write. Every
//! [`crate::chain::CHECKPOINT_EVERY`] the ledger commits durably and empties this file.
//! After a crash, redb opens at its last durable commit and the blocks logged since are
//! executed again; each must come out with the hash it had, so the chain is the one clients
//! were shown.
//!
//! File format (`ledger.wal` beside `ledger.redb`): records of `len: u32 LE`,
//! `check: [u8; 4]` (the first bytes of keccak256 of the body), then the postcard body. A
//! torn record at the tail (a crash inside an append) fails its length or check and ends the
//! log there; that block was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::keccak256;
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

/// The open log.
#[derive(Debug)]
pub struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Wal {
    /// Open (or create) the log at `path` and read its whole records. A torn tail is cut
    /// off, so appends continue after the last whole record.
    pub fn open(path: &Path) -> Result<(Wal, Vec<WalRecord>)> {
        let io = |e: std::io::Error| Error::Db(format!("block log {}: {e}", path.display()));
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
            let Ok(r) = postcard::from_bytes::<WalRecord>(body) else {
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
                "cutting a torn record off the block log"
            );
            file.set_len(len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::Start(len)).map_err(io)?;
        Ok((
            Wal {
                file,
                path: path.to_path_buf(),
                len,
            },
            records,
        ))
    }

    /// Append a record and fsync it; the block is durable when this returns.
    pub fn append(&mut self, r: &WalRecord) -> Result<()> {
        let body = postcard::to_allocvec(r).map_err(|e| Error::Internal(e.to_string()))?;
        let len = u32::try_from(body.len())
            .map_err(|_| Error::Internal("a block too large for the block log".into()))?;
        let mut buf = Vec::with_capacity(8 + body.len());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&keccak256(&body)[..4]);
        buf.extend_from_slice(&body);
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

    /// Empty the log once everything in it is durable in redb. No fsync: if the cut is
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
        Error::Db(format!("block log {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

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
}
