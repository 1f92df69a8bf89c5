//! Group commit: one thread owns writing. Callers hand it a closure; it runs as many queued
//! closures as are waiting inside one redb write transaction, commits once (one fsync), and
//! only then answers each caller.
//!
//! Each closure checks everything it needs before it writes anything, so a closure that
//! fails leaves no trace in the shared transaction. A database error (or a panic) inside a
//! closure may leave partial writes, so the whole batch is aborted and every caller in it gets
//! the error: nothing acknowledged is lost and nothing unacknowledged is half-applied.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use redb::{Database, ReadableTable, Table, WriteTransaction};

use crate::error::{Error, Result};
use crate::model::{Change, ChangeRecord, ContributorStats, Datanet};
use crate::tables::{self, meta};

/// Most closures that share one transaction.
const MAX_BATCH: usize = 1024;
/// Queue depth before callers wait (back-pressure).
const QUEUE: usize = 4096;

/// Every table of the store, opened once per group commit: opening a redb table costs a
/// lookup in the table tree, and a contribution touches a dozen tables.
#[allow(missing_docs)]
pub struct Tables<'a> {
    pub meta: Table<'a, &'static str, u64>,
    pub changes: Table<'a, u64, &'static [u8]>,
    pub blobs: Table<'a, [u8; 32], &'static [u8]>,
    pub blob_chunks: Table<'a, ([u8; 32], u32), &'static [u8]>,
    pub datanets: Table<'a, u64, &'static [u8]>,
    pub datanet_slugs: Table<'a, &'static str, u64>,
    pub edits: Table<'a, (u64, u64), &'static [u8]>,
    pub contributions: Table<'a, u64, &'static [u8]>,
    pub contributions_by_datanet: Table<'a, (u64, u64), u8>,
    pub contributions_by_contributor: Table<'a, ([u8; 20], u64), u64>,
    pub contributors: Table<'a, [u8; 20], &'static [u8]>,
    pub rows: Table<'a, u64, &'static [u8]>,
    pub membership: Table<'a, (u64, u64), (u64, u64, [u8; 32])>,
    pub versions: Table<'a, (u64, u64), &'static [u8]>,
    pub quotas: Table<'a, (&'static str, u64), (u64, u64)>,
    pub nonces: Table<'a, ([u8; 20], [u8; 32]), u64>,
    pub users: Table<'a, &'static str, &'static [u8]>,
    pub sessions: Table<'a, [u8; 32], &'static [u8]>,
    pub adapters: Table<'a, &'static str, &'static [u8]>,
    pub api_keys: Table<'a, [u8; 32], &'static [u8]>,
    pub anchors: Table<'a, (u64, u64), &'static [u8]>,
}

impl std::fmt::Debug for Tables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tables")
    }
}

impl<'a> Tables<'a> {
    fn open(txn: &'a WriteTransaction) -> std::result::Result<Self, redb::TableError> {
        Ok(Tables {
            meta: txn.open_table(tables::META)?,
            changes: txn.open_table(tables::CHANGES)?,
            blobs: txn.open_table(tables::BLOBS)?,
            blob_chunks: txn.open_table(tables::BLOB_CHUNKS)?,
            datanets: txn.open_table(tables::DATANETS)?,
            datanet_slugs: txn.open_table(tables::DATANET_SLUGS)?,
            edits: txn.open_table(tables::EDITS)?,
            contributions: txn.open_table(tables::CONTRIBUTIONS)?,
            contributions_by_datanet: txn.open_table(tables::CONTRIBUTIONS_BY_DATANET)?,
            contributions_by_contributor: txn.open_table(tables::CONTRIBUTIONS_BY_CONTRIBUTOR)?,
            contributors: txn.open_table(tables::CONTRIBUTORS)?,
            rows: txn.open_table(tables::ROWS)?,
            membership: txn.open_table(tables::MEMBERSHIP)?,
            versions: txn.open_table(tables::VERSIONS)?,
            quotas: txn.open_table(tables::QUOTAS)?,
            nonces: txn.open_table(tables::NONCES)?,
            users: txn.open_table(tables::USERS)?,
            sessions: txn.open_table(tables::SESSIONS)?,
            adapters: txn.open_table(tables::ADAPTERS)?,
            api_keys: txn.open_table(tables::API_KEYS)?,
            anchors: txn.open_table(tables::ANCHORS)?,
        })
    }
}

/// Records that most writes of a batch update (a datanet's counters, a contributor's
/// totals): kept decoded for the whole batch and written back once, before the commit.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub(crate) datanets: HashMap<u64, Datanet>,
    pub(crate) contributors: HashMap<[u8; 20], ContributorStats>,
}

/// What a write closure sees: the open tables, the batch's caches and the change log.
pub struct WriteCtx<'a> {
    /// The tables, open in the shared write transaction.
    pub t: Tables<'a>,
    /// Wall-clock time of the batch, unix ms.
    pub now_ms: u64,
    pub(crate) cache: Cache,
    seq: u64,
}

impl std::fmt::Debug for WriteCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteCtx")
            .field("now_ms", &self.now_ms)
            .field("seq", &self.seq)
            .finish()
    }
}

impl WriteCtx<'_> {
    /// Append `change` to the change log with the next sequence number.
    pub fn record(&mut self, change: Change) -> Result<u64> {
        self.seq += 1;
        let rec = ChangeRecord {
            seq: self.seq,
            at: self.now_ms,
            change,
        };
        self.t
            .changes
            .insert(self.seq, crate::encode(&rec).as_slice())?;
        Ok(self.seq)
    }

    /// Take the next value of the counter `key` (starting at 1).
    pub fn next_id(&mut self, key: &str, count: u64) -> Result<u64> {
        let next = self.t.meta.get(key)?.map(|v| v.value()).unwrap_or(1);
        self.t.meta.insert(key, next + count)?;
        Ok(next)
    }

    /// Add `delta` to the counter `key`.
    pub fn add(&mut self, key: &str, delta: u64) -> Result<()> {
        let v = self.t.meta.get(key)?.map(|v| v.value()).unwrap_or(0);
        self.t.meta.insert(key, v + delta)?;
        Ok(())
    }

    /// Write the cached records back and the change sequence; the batch is then ready to
    /// commit.
    fn flush(&mut self, seq_before: u64) -> Result<()> {
        for (id, d) in self.cache.datanets.drain() {
            self.t.datanets.insert(id, crate::encode(&d).as_slice())?;
        }
        for (who, s) in self.cache.contributors.drain() {
            self.t
                .contributors
                .insert(who, crate::encode(&s).as_slice())?;
        }
        if self.seq != seq_before {
            self.t.meta.insert(meta::SEQ, self.seq)?;
        }
        Ok(())
    }
}

trait Job: Send {
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct TypedJob<T, F> {
    f: Option<F>,
    result: Option<Result<T>>,
    reply: SyncSender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send,
{
    /// Runs the closure; true when it failed in a way that poisons the transaction.
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let seq_before = ctx.seq;
        let r = match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
            Ok(r) => r,
            Err(_) => Err(Error::Internal("a write panicked".into())),
        };
        let fatal = matches!(&r, Err(e) if e.is_fatal_for_transaction());
        if r.is_err() && !fatal {
            // A failed closure must not have written; if it logged a change, that is a bug.
            debug_assert_eq!(ctx.seq, seq_before, "a failed write recorded a change");
        }
        self.result = Some(r);
        fatal
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let r = match (committed, self.result) {
            (Ok(()), Some(r)) => r,
            (Err(msg), Some(Err(e))) if !e.is_fatal_for_transaction() => {
                // It failed on its own; the batch failure is not its story.
                let _ = msg;
                Err(e)
            }
            (Err(msg), _) => Err(Error::Commit(msg)),
            (Ok(()), None) => Err(Error::Internal("write was never run".into())),
        };
        // The caller may have gone away; nothing to do then.
        let _ = self.reply.send(r);
    }
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Option<SyncSender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start(db: Arc<Database>) -> Self {
        let (tx, rx) = sync_channel::<Box<dyn Job>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("commons-writer".into())
            .spawn(move || run(db, rx))
            .ok();
        Writer {
            tx: Some(tx),
            thread,
        }
    }

    /// Run `f` in the next group commit and wait until it is durable.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = sync_channel(1);
        let job = Box::new(TypedJob {
            f: Some(f),
            result: None,
            reply,
        });
        let Some(tx) = &self.tx else {
            return Err(Error::Internal("writer is shut down".into()));
        };
        tx.send(job)
            .map_err(|_| Error::Internal("writer thread is gone".into()))?;
        rx.recv()
            .map_err(|_| Error::Internal("writer dropped the reply".into()))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the writer waits for the callers of the previous batch to come back before it
/// commits a smaller one. Callers answered together return at slightly different moments;
/// without the wait a steady set of N callers splits into batches of 1 and N-1 and pays two
/// syncs for what one could carry.
const GATHER: Duration = Duration::from_micros(400);

fn run(db: Arc<Database>, rx: Receiver<Box<dyn Job>>) {
    let mut expected = 1;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + GATHER;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if batch.len() >= expected || now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
            }
        }
        expected = batch.len();
        let committed = commit_batch(&db, &mut batch);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
        }
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

fn commit_batch(db: &Database, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let outcome = (|| {
        let t = Tables::open(&txn).map_err(|e| e.to_string())?;
        let seq = t
            .meta
            .get(meta::SEQ)
            .map_err(|e| e.to_string())?
            .map(|v| v.value())
            .unwrap_or(0);
        let mut ctx = WriteCtx {
            t,
            now_ms: crate::now_ms(),
            cache: Cache::default(),
            seq,
        };
        for job in batch.iter_mut() {
            if job.run(&mut ctx) {
                return Err("a write in this batch hit a database error".to_string());
            }
        }
        ctx.flush(seq).map_err(|e| e.to_string())
    })();
    match outcome {
        Ok(()) => txn.commit().map_err(|e| e.to_string()),
        Err(e) => {
            let _ = txn.abort();
            Err(e)
        }
    }
}
