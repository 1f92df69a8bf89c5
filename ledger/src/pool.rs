//! The transaction pool: per-sender queues in nonce order, replacement by fee bump, a limit
//! per sender and in total with eviction of the cheapest, and the order a block takes them
//! in. It holds validated transactions only; [`crate::Ledger::submit_raw`] validates them
//! against the state and persists them (table `pool`), so they survive a restart.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256};
use op_alloy_consensus::OpTxEnvelope;

use crate::error::TxError;

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Transactions per sender (also how far ahead of the account's nonce one may be).
    pub per_sender: usize,
    /// Transactions in total.
    pub total: usize,
    /// Fee bump a replacement needs, percent.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            per_sender: 64,
            total: 8192,
            price_bump_percent: 10,
        }
    }
}

/// A validated transaction waiting for a block.
#[derive(Debug, Clone)]
pub struct PoolTx {
    /// Hash.
    pub hash: B256,
    /// EIP-2718 bytes as received.
    pub raw: Bytes,
    /// Decoded.
    pub tx: OpTxEnvelope,
    /// Recovered sender.
    pub sender: Address,
    /// Nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Max fee per gas (gas price for legacy).
    pub max_fee: u128,
    /// Max priority fee per gas (gas price for legacy).
    pub tip: u128,
    /// Arrival order, for ties.
    pub seq: u64,
}

impl PoolTx {
    /// What it pays the sequencer per gas at `base_fee`; `None` when its fee cap is below.
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        let base = u128::from(base_fee);
        if self.max_fee < base {
            return None;
        }
        Some(self.tip.min(self.max_fee - base))
    }
}

/// The least a replacement of a fee `v` must pay.
fn bump(v: u128, percent: u128) -> u128 {
    v.saturating_mul(100 + percent) / 100
}

/// What an insert did besides adding the transaction.
#[derive(Debug, Default)]
pub struct Inserted {
    /// The transaction it replaced (same sender and nonce).
    pub replaced: Option<B256>,
    /// Transactions evicted to make room.
    pub evicted: Vec<B256>,
}

/// The pool.
#[derive(Debug, Default, Clone)]
pub struct Pool {
    cfg: PoolConfig,
    by_sender: HashMap<Address, BTreeMap<u64, Arc<PoolTx>>>,
    by_hash: HashMap<B256, Arc<PoolTx>>,
    /// How many pooled transactions pay each tip: the lowest one says, before a submission's
    /// sender is recovered, whether a full pool could take it at all.
    tips: BTreeMap<u128, usize>,
    seq: u64,
}

impl Pool {
    /// An empty pool.
    pub fn new(cfg: PoolConfig) -> Self {
        Pool {
            cfg,
            ..Default::default()
        }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Arc<PoolTx>> {
        self.by_hash.get(hash).cloned()
    }

    /// The configuration.
    pub fn config(&self) -> PoolConfig {
        self.cfg
    }

    /// The nonce after the sender's pooled transactions that follow `state_nonce` without gaps.
    pub fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let mut n = state_nonce;
        if let Some(q) = self.by_sender.get(sender) {
            while q.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Add a transaction already checked against the state (`state_nonce` is the sender's
    /// account nonce).
    pub fn insert(&mut self, mut tx: PoolTx, state_nonce: u64) -> Result<Inserted, TxError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown);
        }
        if tx.nonce < state_nonce {
            return Err(TxError::NonceTooLow {
                state: state_nonce,
                tx: tx.nonce,
            });
        }
        if tx.nonce >= state_nonce + self.cfg.per_sender as u64 {
            return Err(TxError::NonceTooHigh {
                state: state_nonce,
                tx: tx.nonce,
            });
        }
        self.seq += 1;
        tx.seq = self.seq;
        let mut out = Inserted::default();
        let pct = self.cfg.price_bump_percent;
        let queue = self.by_sender.entry(tx.sender).or_default();
        if let Some(old) = queue.get(&tx.nonce) {
            if tx.max_fee < bump(old.max_fee, pct) || tx.tip < bump(old.tip, pct) {
                return Err(TxError::ReplacementUnderpriced);
            }
            out.replaced = Some(old.hash);
            let old_tip = old.tip;
            self.by_hash.remove(&old.hash);
            self.forget_tip(old_tip);
        } else if queue.len() >= self.cfg.per_sender {
            return Err(TxError::PoolFull);
        }
        if out.replaced.is_none() && self.by_hash.len() >= self.cfg.total {
            // Evict the cheapest: the last queued transaction of the sender whose last one
            // pays least, so no sender is left with a gap.
            let cheapest = self
                .by_sender
                .values()
                .filter_map(|q| q.values().next_back())
                .min_by_key(|t| (t.tip, std::cmp::Reverse(t.seq)))
                .cloned();
            match cheapest {
                Some(c) if c.tip < tx.tip && c.sender != tx.sender => {
                    self.remove(&c.hash);
                    out.evicted.push(c.hash);
                }
                _ => return Err(TxError::PoolFull),
            }
        }
        let tx = Arc::new(tx);
        *self.tips.entry(tx.tip).or_default() += 1;
        self.by_hash.insert(tx.hash, tx.clone());
        self.by_sender
            .entry(tx.sender)
            .or_default()
            .insert(tx.nonce, tx);
        Ok(out)
    }

    /// Remove a transaction (mined, dropped or evicted).
    pub fn remove(&mut self, hash: &B256) -> Option<Arc<PoolTx>> {
        let tx = self.by_hash.remove(hash)?;
        self.forget_tip(tx.tip);
        if let Some(q) = self.by_sender.get_mut(&tx.sender) {
            if q.get(&tx.nonce).is_some_and(|t| t.hash == *hash) {
                q.remove(&tx.nonce);
            }
            if q.is_empty() {
                self.by_sender.remove(&tx.sender);
            }
        }
        Some(tx)
    }

    fn forget_tip(&mut self, tip: u128) {
        if let std::collections::btree_map::Entry::Occupied(mut e) = self.tips.entry(tip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Whether the pool is full and a transaction paying `tip` could neither evict one (that
    /// needs a lower tip than its own) nor replace one (that needs the bump over the old
    /// tip): [`Pool::insert`] would refuse it whoever sent it. Checked before the costly
    /// sender recovery, so an overloaded node turns submissions away cheaply.
    pub fn refuses(&self, tip: u128) -> bool {
        if self.by_hash.len() < self.cfg.total {
            return false;
        }
        let Some((&lowest, _)) = self.tips.first_key_value() else {
            return false;
        };
        tip <= lowest && tip < bump(lowest, self.cfg.price_bump_percent)
    }

    /// Drop every transaction of `sender` below `state_nonce` (mined by someone else's
    /// replacement, or stale after a restart); returns their hashes.
    pub fn prune_sender(&mut self, sender: &Address, state_nonce: u64) -> Vec<B256> {
        let stale: Vec<B256> = match self.by_sender.get(sender) {
            None => return Vec::new(),
            Some(q) => q.range(..state_nonce).map(|(_, t)| t.hash).collect(),
        };
        for h in &stale {
            self.remove(h);
        }
        stale
    }

    /// Executable transactions in the order a block should take them: each sender's run of
    /// consecutive nonces from its account nonce, interleaved by effective tip (highest
    /// first, then arrival). `nonce_of` gives an account's nonce.
    pub fn best(
        &self,
        base_fee: u64,
        mut nonce_of: impl FnMut(&Address) -> u64,
    ) -> Vec<Arc<PoolTx>> {
        #[derive(PartialEq, Eq)]
        struct Head(u128, std::cmp::Reverse<u64>, Address, u64);
        impl Ord for Head {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                (self.0, &self.1).cmp(&(o.0, &o.1))
            }
        }
        impl PartialOrd for Head {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut heap = BinaryHeap::new();
        for (sender, q) in &self.by_sender {
            let n = nonce_of(sender);
            if let Some(t) = q.get(&n)
                && let Some(tip) = t.effective_tip(base_fee)
            {
                heap.push(Head(tip, std::cmp::Reverse(t.seq), *sender, n));
            }
        }
        let mut out = Vec::new();
        while let Some(Head(_, _, sender, n)) = heap.pop() {
            let Some(q) = self.by_sender.get(&sender) else {
                continue;
            };
            let Some(t) = q.get(&n) else { continue };
            out.push(t.clone());
            if let Some(next) = q.get(&(n + 1))
                && let Some(tip) = next.effective_tip(base_fee)
            {
                heap.push(Head(tip, std::cmp::Reverse(next.seq), sender, n + 1));
            }
        }
        out
    }

    /// Every pooled transaction.
    pub fn all(&self) -> Vec<Arc<PoolTx>> {
        self.by_hash.values().cloned().collect()
    }

    /// The total a sender's pooled transactions may spend (for the balance check).
    pub fn committed_cost(&self, sender: &Address) -> U256 {
        self.by_sender
            .get(sender)
            .map(|q| {
                q.values()
                    .map(|t| {
                        U256::from(t.gas_limit) * U256::from(t.max_fee)
                            + alloy_consensus::Transaction::value(&t.tx)
                    })
                    .sum()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::Signature;

    fn tx(sender: u8, nonce: u64, max_fee: u128, tip: u128) -> PoolTx {
        let t = TxEip1559 {
            chain_id: 1,
            nonce,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            gas_limit: 21_000,
            ..Default::default()
        };
        let signed = t.into_signed(Signature::test_signature());
        let hash = alloy_primitives::keccak256([sender, nonce as u8, max_fee as u8, tip as u8]);
        PoolTx {
            hash,
            raw: Bytes::new(),
            tx: OpTxEnvelope::Eip1559(signed),
            sender: Address::repeat_byte(sender),
            nonce,
            gas_limit: 21_000,
            max_fee,
            tip,
            seq: 0,
        }
    }

    #[test]
    fn replacement_needs_a_ten_percent_bump() {
        let mut p = Pool::new(PoolConfig::default());
        p.insert(tx(1, 0, 100, 10), 0).expect("first");
        assert_eq!(
            p.insert(tx(1, 0, 105, 11), 0).expect_err("too small"),
            TxError::ReplacementUnderpriced
        );
        let r = p.insert(tx(1, 0, 110, 11), 0).expect("bumped");
        assert!(r.replaced.is_some());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn best_keeps_nonce_order_and_prefers_tips() {
        let mut p = Pool::new(PoolConfig::default());
        p.insert(tx(1, 1, 100, 50), 0).expect("a1");
        p.insert(tx(1, 0, 100, 1), 0).expect("a0");
        p.insert(tx(2, 0, 100, 20), 0).expect("b0");
        p.insert(tx(3, 5, 100, 90), 0).expect("gap");
        let order: Vec<(u8, u64)> = p
            .best(10, |_| 0)
            .iter()
            .map(|t| (t.sender.0[0], t.nonce))
            .collect();
        assert_eq!(order, vec![(2, 0), (1, 0), (1, 1)]);
        // Below the base fee: not executable.
        assert!(p.best(200, |_| 0).is_empty());
    }

    #[test]
    fn a_full_pool_evicts_the_cheapest() {
        let mut p = Pool::new(PoolConfig {
            per_sender: 2,
            total: 2,
            price_bump_percent: 10,
        });
        p.insert(tx(1, 0, 100, 5), 0).expect("a");
        p.insert(tx(2, 0, 100, 9), 0).expect("b");
        assert_eq!(
            p.insert(tx(3, 0, 100, 1), 0).expect_err("cheap"),
            TxError::PoolFull
        );
        let r = p.insert(tx(3, 0, 100, 7), 0).expect("evicts");
        assert_eq!(r.evicted.len(), 1);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p.insert(tx(4, 9, 100, 7), 0).expect_err("far ahead"),
            TxError::NonceTooHigh { state: 0, tx: 9 }
        );
    }

    #[test]
    fn a_full_pool_refuses_before_recovery_only_what_insert_would_refuse() {
        let cfg = PoolConfig {
            per_sender: 4,
            total: 4,
            price_bump_percent: 10,
        };
        let mut p = Pool::new(cfg);
        assert!(!p.refuses(0), "an empty pool takes anything");
        for (s, tip) in [(1, 20), (1, 30), (2, 25), (3, 40)] {
            let nonce = p.pending_nonce(&Address::repeat_byte(s), 0);
            p.insert(tx(s, nonce, 100, tip), 0).expect("room");
        }
        assert!(p.refuses(20) && p.refuses(5));
        assert!(!p.refuses(21), "a higher tip evicts the cheapest");
        // Whatever the sender and nonce, what `refuses` turns away `insert` refuses too.
        for tip in 0..45 {
            if !p.refuses(tip) {
                continue;
            }
            for s in 1..5u8 {
                for nonce in 0..3 {
                    assert!(p.clone().insert(tx(s, nonce, 200, tip), 0).is_err());
                }
            }
        }
        // Removing and replacing keep the lowest tip right.
        let cheapest = p.all().into_iter().find(|t| t.tip == 20).expect("tip 20");
        p.remove(&cheapest.hash);
        assert!(!p.refuses(20), "room again");
        p.insert(tx(2, 1, 100, 22), 0).expect("refill");
        assert!(p.refuses(22) && !p.refuses(23));
        p.insert(tx(2, 1, 110, 25), 0).expect("replaced by a bump");
        assert!(p.refuses(25) && !p.refuses(26));
    }
}
