//! The sequencer: a thread that seals a block every `block_time` (or, with a block time of
//! zero, one block per transaction as they arrive) and hands each sealed block to a sink
//! (the DA writer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chain::{Ledger, Sealed};

/// How far behind its schedule a sequencer still catches up; past it (a suspended machine,
/// a stall of many seconds) the schedule starts again from the present.
const MAX_CATCH_UP: Duration = Duration::from_secs(10);

/// When the block after the one due at `due` is due, its sealing having started at `now`.
///
/// Blocks keep their slots, as an OP sequencer keeps `genesis time + n × block time`: a
/// block sealed late (behind a checkpoint or a slow disk) is followed at once by the ones it
/// delayed, so a stall costs latency, not block space. Starting the schedule again from each
/// late block instead would lose the slots of every stall for good; at 0.25 s blocks an 8 s
/// checkpoint rhythm with 1–2 s commits loses 10–20 % of the chain's capacity that way.
fn next_slot(due: Instant, now: Instant, block_time: Duration) -> Instant {
    let next = due + block_time;
    if now.saturating_duration_since(next) > MAX_CATCH_UP {
        now + block_time
    } else {
        next
    }
}

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
                        next = next_slot(next, now, block_time);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_block_is_followed_by_the_slots_it_delayed() {
        let bt = Duration::from_millis(250);
        let t0 = Instant::now();
        // On time: the next slot is one block time on.
        assert_eq!(next_slot(t0, t0, bt), t0 + bt);
        // A block due at t0 started 1 s late: the next four slots are already due, so the
        // sequencer seals them back to back until it is on schedule again.
        let late = t0 + Duration::from_secs(1);
        let mut due = t0;
        let mut behind = 0;
        loop {
            due = next_slot(due, late, bt);
            if due > late {
                break;
            }
            behind += 1;
        }
        assert_eq!(behind, 4);
        assert_eq!(due, t0 + Duration::from_millis(1250));
    }

    #[test]
    fn past_the_catch_up_bound_the_schedule_starts_again() {
        let bt = Duration::from_secs(2);
        let t0 = Instant::now();
        let now = t0 + MAX_CATCH_UP + Duration::from_secs(5);
        assert_eq!(next_slot(t0, now, bt), now + bt);
        // Just inside the bound the missed slots are still sealed.
        let now = t0 + bt + MAX_CATCH_UP;
        assert_eq!(next_slot(t0, now, bt), t0 + bt);
    }
}
