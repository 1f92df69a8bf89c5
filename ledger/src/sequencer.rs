//! The sequencer: a thread that seals a block every `block_time` (or, with a block time of
//! zero, one block per transaction as they arrive) and hands each sealed block to a sink
//! (the DA writer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chain::{Ledger, Sealed};

/// Receives every sealed block, in order.
pub type Sink = Box<dyn FnMut(&Sealed) + Send>;

/// A running sequencer; [`Sequencer::stop`] ends it after the block in progress.
#[derive(Debug)]
pub struct Sequencer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sequencer {
    /// Start sealing blocks of `ledger`.
    pub fn spawn(ledger: Arc<Ledger>, block_time: Duration, mut sink: Sink) -> Sequencer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || {
                let mut seen = 0u64;
                let mut next = Instant::now() + block_time;
                while !flag.load(Ordering::Acquire) {
                    if block_time.is_zero() {
                        match ledger.has_work() {
                            Ok(true) => {}
                            Ok(false) => {
                                seen = ledger.wait_for_work(seen, Duration::from_millis(100));
                                continue;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "sequencer cannot read the pool");
                                std::thread::sleep(Duration::from_millis(200));
                                continue;
                            }
                        }
                    } else {
                        let now = Instant::now();
                        if now < next {
                            // Wake often enough to stop promptly.
                            std::thread::sleep((next - now).min(Duration::from_millis(50)));
                            continue;
                        }
                        next += block_time;
                        if next < now {
                            next = now + block_time;
                        }
                    }
                    let max = block_time.is_zero().then_some(1);
                    match ledger.seal(max) {
                        Ok(s) => {
                            tracing::debug!(
                                number = s.header.number,
                                txs = s.user_txs,
                                "sealed block"
                            );
                            sink(&s);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "sealing a block failed");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .ok();
        Sequencer { stop, thread }
    }

    /// Stop after the block in progress and wait for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.halt();
    }
}
