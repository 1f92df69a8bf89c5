//! Ledger benchmark: block execution and state-root cost as the state grows, eth_call
//! latency, and execution over our redb state beside revm over its in-memory `CacheDB`.
//!
//! `cargo bench -p commons-ledger --bench ledger [-- ACCOUNTS]` (default 100,000 new accounts,
//! 1,400 transfers per block). Prints one line per measurement; BENCHMARKS.md keeps the
//! figures with the command and machine.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use commons_ledger::chain::CallRequest;
use commons_ledger::genesis::{Allocation, GenesisConfig};
use commons_ledger::pool::PoolConfig;
use commons_ledger::{Ledger, LedgerConfig};
use op_alloy_consensus::OpTxEnvelope;

/// Transfers per block: 1,400 × 21,000 gas fits the 30M block gas limit.
const PER_BLOCK: usize = 1_400;

fn signer(i: u64) -> PrivateKeySigner {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&(i + 1).to_be_bytes());
    PrivateKeySigner::from_slice(&k).expect("key")
}

fn transfer(key: &PrivateKeySigner, nonce: u64, to: Address, data: Vec<u8>, gas: u64) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1612,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        to: TxKind::Call(to),
        value: U256::from(1u64),
        input: data.into(),
        access_list: Default::default(),
    };
    let sig = key.sign_hash_sync(&tx.signature_hash()).expect("sign");
    OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718()
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let accounts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let senders: Vec<PrivateKeySigner> = (0..64).map(signer).collect();
    let dir = tempfile::tempdir().expect("tmp");
    let ledger = Ledger::open(
        &dir.path().join("ledger.redb"),
        LedgerConfig {
            genesis: GenesisConfig {
                chain_id: 1612,
                timestamp: 1_700_000_000,
                allocation: Allocation::default(),
                dev_accounts: senders.iter().map(|s| s.address()).collect(),
                operator: senders[0].address(),
                test_accounts: 0,
            },
            pool: PoolConfig {
                per_sender: 100_000,
                total: 1_000_000,
                price_bump_percent: 10,
            },
        },
    )
    .expect("open");
    println!(
        "block of {PER_BLOCK} native transfers to new accounts, state growing to {accounts} accounts"
    );
    println!("accounts  execute_ms  state_root_ms  commit_ms  transfers/s  Mgas/s");
    let mut nonce = vec![0u64; senders.len()];
    let mut made = 0usize;
    let mut next_report = 10_000usize;
    while made < accounts {
        for i in 0..PER_BLOCK {
            let s = i % senders.len();
            let to = Address::from_word(alloy_primitives::keccak256((made + i).to_be_bytes()));
            ledger
                .submit_raw(&transfer(&senders[s], nonce[s], to, Vec::new(), 21_000))
                .expect("submit");
            nonce[s] += 1;
        }
        let b = ledger.seal(None).expect("seal");
        made += PER_BLOCK;
        let t = b.timings;
        if made >= next_report || made >= accounts {
            let total = t.execute + t.state_root + t.commit;
            println!(
                "{made:>8}  {:>10.1}  {:>13.1}  {:>9.1}  {:>11.0}  {:>6.1}",
                t.execute.as_secs_f64() * 1e3,
                t.state_root.as_secs_f64() * 1e3,
                t.commit.as_secs_f64() * 1e3,
                b.user_txs as f64 / total.as_secs_f64(),
                b.header.gas_used as f64 / total.as_secs_f64() / 1e6,
            );
            next_report *= 2;
        }
    }

    // eth_call latency on a deployed contract.
    let art: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/store.json")).expect("artifact");
    let init = alloy_primitives::hex::decode(art["bytecode"].as_str().expect("hex")).expect("hex");
    let tx = TxEip1559 {
        chain_id: 1612,
        nonce: nonce[0],
        gas_limit: 300_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: init.into(),
        access_list: Default::default(),
    };
    let sig = senders[0]
        .sign_hash_sync(&tx.signature_hash())
        .expect("sign");
    let h = ledger
        .submit_raw(&OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718())
        .expect("deploy");
    while ledger.receipt(&h).expect("receipt").is_none() {
        ledger.seal(None).expect("seal");
    }
    let addr = Address::from(
        ledger
            .receipt(&h)
            .expect("receipt")
            .expect("mined")
            .receipt
            .contract_address
            .expect("created"),
    );
    let req = CallRequest {
        to: Some(addr),
        data: Some(vec![0x6d, 0x4c, 0xe6, 0x3c].into()),
        ..Default::default()
    };
    let mut lat = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        ledger.call(&req).expect("call");
        lat.push(t.elapsed());
    }
    println!(
        "eth_call (Ledger::call, no HTTP) p50 {:.3} ms  p99 {:.3} ms",
        percentile(&mut lat, 0.5).as_secs_f64() * 1e3,
        percentile(&mut lat, 0.99).as_secs_f64() * 1e3
    );
}
