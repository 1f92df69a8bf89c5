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
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use redb::{Database, ReadableTable, WriteTransaction};

use crate::error::{Error, Result};
use crate::model::{Change, ChangeRecord};
use crate::tables::{self, meta};

/// Most closures that share one transaction.
const MAX_BATCH: usize = 1024;
/// Queue depth before callers wait (back-pressure).
const QUEUE: usize = 4096;

/// What a write closure sees: the transaction and the change log.
pub struct WriteCtx<'a> {
    /// The shared write transaction.
    pub txn: &'a WriteTransaction,
    /// Wall-clock time of the batch, unix ms.
    pub now_ms: u64,
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
        let mut t = self.txn.open_table(tables::CHANGES)?;
        t.insert(self.seq, crate::encode(&rec).as_slice())?;
        Ok(self.seq)
    }

    /// Take the next value of the counter `key` (starting at 1).
    pub fn next_id(&mut self, key: &str, count: u64) -> Result<u64> {
        let mut t = self.txn.open_table(tables::META)?;
        let next = t.get(key)?.map(|v| v.value()).unwrap_or(1);
        t.insert(key, next + count)?;
        Ok(next)
    }

    /// Add `delta` to the counter `key`.
    pub fn add(&mut self, key: &str, delta: u64) -> Result<()> {
        let mut t = self.txn.open_table(tables::META)?;
        let v = t.get(key)?.map(|v| v.value()).unwrap_or(0);
        t.insert(key, v + delta)?;
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

fn run(db: Arc<Database>, rx: Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
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
    let seq = {
        let t = txn.open_table(tables::META).map_err(|e| e.to_string())?;
        let v = t.get(meta::SEQ).map_err(|e| e.to_string())?;
        v.map(|v| v.value()).unwrap_or(0)
    };
    let mut ctx = WriteCtx {
        txn: &txn,
        now_ms: crate::now_ms(),
        seq,
    };
    for job in batch.iter_mut() {
        if job.run(&mut ctx) {
            let _ = txn.abort();
            return Err("a write in this batch hit a database error".into());
        }
    }
    if ctx.seq != seq {
        let mut t = txn.open_table(tables::META).map_err(|e| e.to_string())?;
        t.insert(meta::SEQ, ctx.seq).map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())
}
