//! Ledger benchmark: the state root per block as the state grows, execution of ERC-20
//! transfers over our redb state beside op-revm over an in-memory `CacheDB`, and eth_call
//! latency.
//!
//! `cargo bench -p commons-ledger --bench ledger [-- SIZES...]` (default `10000 100000
//! 1000000`). For each size a fresh ledger starts with that many funded accounts in genesis
//! (the dev-account allocation, so the state and its trie are built by the same code as any
//! block), then seals blocks of 1,400 native transfers to new accounts and prints the median
//! per-block times. The ERC-20 and eth_call measurements run on the last (largest) ledger.
//! BENCHMARKS.md keeps the figures with the command and machine. `TRIE_CACHE_MB=0` runs it
//! without the account trie's node cache, for comparison; `BLOCKS=N` measures N blocks per
//! size instead of 8 (to profile the blocks rather than genesis). After the blocks at each size
//! the root is also rebuilt from every account (`Ledger::verify_state`), the cost a root
//! computed from the whole state would have, and the last line compares how both grew.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolValue, sol};
use commons_ledger::chain::CallRequest;
use commons_ledger::exec::{self, BlockParams};
use commons_ledger::genesis::{self, Allocation, GenesisConfig};
use commons_ledger::pool::PoolConfig;
use commons_ledger::{Ledger, LedgerConfig};
use op_alloy_consensus::OpTxEnvelope;
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::DatabaseCommit;
use revm::state::AccountInfo;

/// Transfers per block: 1,400 × 21,000 gas fits the 30M block gas limit.
const PER_BLOCK: usize = 1_400;
/// Blocks sealed before measuring at each size (caches, first-touch effects).
const WARMUP: usize = 2;
/// Blocks measured at each size, unless `BLOCKS` says otherwise (more, to profile the
/// per-block work apart from genesis).
const MEASURED: usize = 8;
/// ERC-20 transfers per block: about 51k gas each (a new holder's slot), 29M gas in all.
const ERC20_PER_BLOCK: usize = 560;
/// ERC-20 blocks measured.
const ERC20_BLOCKS: usize = 6;
const SENDERS: u64 = 64;
const CHAIN_ID: u64 = 1612;

// The node's allocator (see `src/main.rs`): glibc malloc alone took a sixth of a block's
// sealing time here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

sol! {
    function transfer(address to, uint256 value) external returns (bool);
}

fn signer(i: u64) -> PrivateKeySigner {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&(i + 1).to_be_bytes());
    PrivateKeySigner::from_slice(&k).expect("key")
}

fn sign(
    key: &PrivateKeySigner,
    nonce: u64,
    to: TxKind,
    value: U256,
    data: Vec<u8>,
    gas: u64,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        to,
        value,
        input: data.into(),
        access_list: Default::default(),
    };
    let sig = key.sign_hash_sync(&tx.signature_hash()).expect("sign");
    OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718()
}

/// The whole of sealing a block: execution, state root, state writes, store, commit.
fn seal_time(t: &commons_ledger::chain::SealTimings) -> Duration {
    t.execute + t.state_root + t.state_writes + t.store + t.commit
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The account trie node cache: `TRIE_CACHE_MB` when set (0 turns it off, to compare),
/// else the node's default.
fn trie_cache_bytes() -> usize {
    env_usize("TRIE_CACHE_MB")
        .map(|mb| mb << 20)
        .unwrap_or(commons_ledger::chain::DEFAULT_TRIE_CACHE_BYTES)
}

/// Blocks measured at each size: `BLOCKS` when set and not 0, else [`MEASURED`].
fn measured() -> usize {
    env_usize("BLOCKS").filter(|&n| n > 0).unwrap_or(MEASURED)
}

/// A whole number from the environment (`None`: unset or not a number).
fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A ledger whose genesis funds the senders and `filler` more accounts.
fn open(dir: &std::path::Path, senders: &[PrivateKeySigner], filler: usize) -> Ledger {
    let mut dev: Vec<Address> = senders.iter().map(|s| s.address()).collect();
    dev.extend(
        (0..filler as u64).map(|i| {
            Address::from_word(keccak256([b"filler".as_slice(), &i.to_be_bytes()].concat()))
        }),
    );
    // Each dev account gets 1M OPEN, so a million of them exceed the supply: the bench does
    // not check the supply, only the shape and size of the state.
    Ledger::open(
        &dir.join("ledger.redb"),
        LedgerConfig {
            genesis: GenesisConfig {
                chain_id: CHAIN_ID,
                timestamp: 1_700_000_000,
                allocation: Allocation::default(),
                dev_accounts: dev,
                operator: senders[0].address(),
                test_accounts: 0,
            },
            pool: PoolConfig {
                per_sender: 100_000,
                total: 1_000_000,
                price_bump_percent: 10,
            },
            cache_bytes: commons_ledger::chain::DEFAULT_CACHE_BYTES,
            trie_cache_bytes: trie_cache_bytes(),
        },
    )
    .expect("open")
}

struct Sender {
    key: PrivateKeySigner,
    nonce: u64,
}

/// Seal blocks of native transfers to new accounts; returns the per-block timings.
fn transfer_blocks(
    ledger: &Ledger,
    senders: &mut [Sender],
    made: &mut u64,
    blocks: usize,
) -> Vec<commons_ledger::chain::SealTimings> {
    let mut out = Vec::new();
    for _ in 0..blocks {
        let n = senders.len();
        for i in 0..PER_BLOCK {
            let s = &mut senders[i % n];
            let to =
                Address::from_word(keccak256([b"new".as_slice(), &made.to_be_bytes()].concat()));
            *made += 1;
            ledger
                .submit_raw(&sign(
                    &s.key,
                    s.nonce,
                    TxKind::Call(to),
                    U256::from(1),
                    Vec::new(),
                    21_000,
                ))
                .expect("submit");
            s.nonce += 1;
        }
        let b = ledger.seal(None).expect("seal");
        assert_eq!(b.user_txs, PER_BLOCK, "every transfer fits the block");
        out.push(b.timings);
    }
    out
}

fn main() {
    let sizes: Vec<usize> = {
        let v: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![10_000, 100_000, 1_000_000]
        } else {
            v
        }
    };
    let keys: Vec<PrivateKeySigner> = (0..SENDERS).map(signer).collect();
    let measured = measured();
    println!(
        "state root per block of {PER_BLOCK} native transfers to new accounts \
         (median of {measured} blocks after {WARMUP})"
    );
    println!(
        "{:>9}  {:>10}  {:>10}  {:>13}  {:>12}  {:>11}  {:>10}  {:>11}  {:>15}  {:>9}  {:>11}",
        "accounts",
        "genesis_s",
        "execute_ms",
        "state_root_ms",
        "(min..max)",
        "root_cpu_ms",
        "trie_nodes",
        "cpu_us/node",
        "state_writes_ms",
        "commit_ms",
        "transfers/s"
    );
    let mut last = None;
    // (accounts at the start, state root p50, accounts at the rebuild, full rebuild) per
    // size, for the summary: the blocks add accounts, so the rebuild sees more than genesis.
    let mut growth: Vec<(usize, Duration, u64, Duration)> = Vec::new();
    for &size in &sizes {
        let dir = tempfile::tempdir().expect("tmp");
        let t = Instant::now();
        let ledger = open(dir.path(), &keys, size);
        let genesis_s = t.elapsed().as_secs_f64();
        let mut senders: Vec<Sender> = keys
            .iter()
            .map(|k| Sender {
                key: k.clone(),
                nonce: 0,
            })
            .collect();
        let mut made = 0u64;
        transfer_blocks(&ledger, &mut senders, &mut made, WARMUP);
        let t = transfer_blocks(&ledger, &mut senders, &mut made, measured);
        let mut exec: Vec<Duration> = t.iter().map(|t| t.execute).collect();
        let mut root: Vec<Duration> = t.iter().map(|t| t.state_root).collect();
        let mut root_cpu: Vec<Duration> = t.iter().map(|t| t.state_root_cpu).collect();
        let mut nodes: Vec<usize> = t.iter().map(|t| t.trie_nodes).collect();
        nodes.sort_unstable();
        let mut per_node: Vec<f64> = t
            .iter()
            .filter(|t| t.trie_nodes > 0)
            .map(|t| t.state_root_cpu.as_secs_f64() * 1e6 / t.trie_nodes as f64)
            .collect();
        per_node.sort_by(f64::total_cmp);
        let mut writes: Vec<Duration> = t.iter().map(|t| t.state_writes).collect();
        let mut commit: Vec<Duration> = t.iter().map(|t| t.store + t.commit).collect();
        let total: Duration = t.iter().map(seal_time).sum();
        let (lo, hi) = (
            root.iter().min().copied().unwrap_or_default(),
            root.iter().max().copied().unwrap_or_default(),
        );
        println!(
            "{:>9}  {:>10.1}  {:>10.1}  {:>13.1}  {:>12}  {:>11.1}  {:>10}  {:>11.2}  {:>15.1}  {:>9.1}  {:>11.0}",
            size + keys.len(),
            genesis_s,
            ms(median(&mut exec)),
            ms(median(&mut root)),
            format!("{:.0}..{:.0}", ms(lo), ms(hi)),
            ms(median(&mut root_cpu)),
            nodes[nodes.len() / 2],
            per_node.get(per_node.len() / 2).copied().unwrap_or(0.0),
            ms(median(&mut writes)),
            ms(median(&mut commit)),
            (measured * PER_BLOCK) as f64 / total.as_secs_f64(),
        );
        let (nodes, bytes, depths) = ledger.trie_cache_stats();
        println!(
            "           account trie node cache: {nodes} nodes, {:.1} MB, {}",
            bytes as f64 / f64::from(1 << 20),
            match depths {
                0 => "off".to_string(),
                65.. => "every depth".to_string(),
                d => format!("paths shorter than {d} nibbles"),
            }
        );
        // The peer of the per-block root: the same root computed from the whole state, as
        // a ledger without a stored trie would have to (and `commons ledger verify` does).
        let check = ledger.verify_state().expect("verify");
        assert!(check.ok(), "the state does not match its root: {check:?}");
        let rebuild = Duration::from_secs_f64(check.seconds);
        println!(
            "           full rebuild of the root from every account: {:.1} ms ({} accounts, {} slots)",
            ms(rebuild),
            check.accounts,
            check.slots
        );
        growth.push((
            size + keys.len(),
            median(&mut root),
            check.accounts,
            rebuild,
        ));
        last = Some((dir, ledger, senders));
    }
    if let (Some(first), Some(end)) = (growth.first(), growth.last())
        && growth.len() > 1
    {
        let x = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        println!(
            "from {} to {} accounts ({:.0}x): the state root per block grew {:.2}x; \
             a full rebuild, over {} and {} accounts ({:.0}x), grew {:.1}x",
            first.0,
            end.0,
            end.0 as f64 / first.0 as f64,
            x(first.1, end.1),
            first.2,
            end.2,
            end.2 as f64 / first.2 as f64,
            x(first.3, end.3),
        );
    }
    let Some((_dir, ledger, mut senders)) = last else {
        return;
    };
    erc20(&ledger, &mut senders);
    eth_call(&ledger, &mut senders[0]);
}

/// ERC-20 transfers: our sealing (execution over the redb state, then state root and commit)
/// beside op-revm executing the same transactions over its own in-memory `CacheDB`.
fn erc20(ledger: &Ledger, senders: &mut [Sender]) {
    let art: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/erc20.json")).expect("artifact");
    let mut init =
        alloy_primitives::hex::decode(art["bytecode"].as_str().expect("hex")).expect("hex");
    let supply = U256::from(10u64).pow(U256::from(30));
    init.extend_from_slice(&supply.abi_encode());

    // The baseline starts from the senders as the ledger has them now and replays every
    // transaction from the deployment on, so both hold the same state.
    let mut mem = CacheDB::new(EmptyDB::default());
    for s in senders.iter() {
        let a = ledger.account(&s.key.address()).expect("account");
        mem.insert_account_info(
            s.key.address(),
            AccountInfo {
                balance: a.balance,
                nonce: a.nonce,
                ..Default::default()
            },
        );
    }
    let first = ledger.head().header.number + 1;
    let s0 = &mut senders[0];
    let token = s0.key.address().create(s0.nonce);
    ledger
        .submit_raw(&sign(
            &s0.key,
            s0.nonce,
            TxKind::Create,
            U256::ZERO,
            init,
            1_000_000,
        ))
        .expect("deploy");
    s0.nonce += 1;
    ledger.seal(None).expect("seal");
    let share = supply / U256::from(senders.len() as u64);
    for i in 1..senders.len() {
        let to = senders[i].key.address();
        let s0 = &mut senders[0];
        let data = transferCall { to, value: share }.abi_encode();
        ledger
            .submit_raw(&sign(
                &s0.key,
                s0.nonce,
                TxKind::Call(token),
                U256::ZERO,
                data,
                100_000,
            ))
            .expect("distribute");
        s0.nonce += 1;
    }
    ledger.seal(None).expect("seal");
    let setup_end = ledger.head().header.number;

    let mut ours = Vec::new();
    let mut made = 0u64;
    for _ in 0..ERC20_BLOCKS {
        let n = senders.len();
        for i in 0..ERC20_PER_BLOCK {
            let s = &mut senders[i % n];
            let to = Address::from_word(keccak256(
                [b"holder".as_slice(), &made.to_be_bytes()].concat(),
            ));
            made += 1;
            let data = transferCall {
                to,
                value: U256::from(1),
            }
            .abi_encode();
            ledger
                .submit_raw(&sign(
                    &s.key,
                    s.nonce,
                    TxKind::Call(token),
                    U256::ZERO,
                    data,
                    80_000,
                ))
                .expect("transfer");
            s.nonce += 1;
        }
        let b = ledger.seal(None).expect("seal");
        assert_eq!(
            b.user_txs, ERC20_PER_BLOCK,
            "every ERC-20 transfer fits the block"
        );
        ours.push(b);
    }

    let cfg = exec::cfg(CHAIN_ID);
    let mut mem_time = Duration::ZERO;
    let mut user_gas = 0u64;
    let mut mem_gas = 0u64;
    for n in first..=ledger.head().header.number {
        let block = ledger.block(n).expect("block").expect("exists");
        let h = &block.header;
        let env = exec::block_env(&BlockParams {
            number: h.number,
            timestamp: h.timestamp,
            base_fee: h.base_fee_per_gas.unwrap_or_default(),
            gas_limit: h.gas_limit,
            prevrandao: h.mix_hash,
            beneficiary: genesis::SEQUENCER_FEE_VAULT,
        });
        let txs: Vec<_> = block
            .txs
            .iter()
            .filter(|t| !t.tx.is_deposit())
            .map(|t| exec::tx_env(&t.tx, t.from).expect("env"))
            .collect();
        let measured = n > setup_end;
        let t = Instant::now();
        let mut gas = 0u64;
        for tx in txs {
            let r = exec::transact(&mut mem, &env, &cfg, tx)
                .expect("evm")
                .expect("valid");
            gas += r.result.tx_gas_used();
            mem.commit(r.state);
        }
        if measured {
            mem_time += t.elapsed();
            mem_gas += gas;
            let receipts = ledger.block_receipts(n).expect("r").expect("r");
            user_gas += receipts
                .iter()
                .skip(1)
                .map(|r| r.receipt.gas_used)
                .sum::<u64>();
        }
    }
    assert_eq!(
        mem_gas, user_gas,
        "both ran the same transactions to the same gas"
    );
    let exec_t: Duration = ours.iter().map(|b| b.timings.execute).sum();
    let seal_t: Duration = ours.iter().map(|b| seal_time(&b.timings)).sum();
    let root_t: Duration = ours.iter().map(|b| b.timings.state_root).sum();
    let writes_t: Duration = ours.iter().map(|b| b.timings.state_writes).sum();
    let mgas = |d: Duration| user_gas as f64 / d.as_secs_f64() / 1e6;
    println!(
        "ERC-20 transfers to new holders: {ERC20_BLOCKS} blocks of {ERC20_PER_BLOCK} ({:.1}M gas each)",
        user_gas as f64 / ERC20_BLOCKS as f64 / 1e6
    );
    println!(
        "  ledger execute (revm over redb state): {:>7.1} Mgas/s  ({:.1} ms/block)",
        mgas(exec_t),
        ms(exec_t) / ERC20_BLOCKS as f64
    );
    println!(
        "  ledger seal (execute + state root + state writes + commit): {:>7.1} Mgas/s  ({:.1} ms/block, state root {:.1} ms, state writes {:.1} ms)",
        mgas(seal_t),
        ms(seal_t) / ERC20_BLOCKS as f64,
        ms(root_t) / ERC20_BLOCKS as f64,
        ms(writes_t) / ERC20_BLOCKS as f64
    );
    println!(
        "  op-revm over in-memory CacheDB: {:>7.1} Mgas/s  ({:.1} ms/block)",
        mgas(mem_time),
        ms(mem_time) / ERC20_BLOCKS as f64
    );
    println!(
        "  ledger time / CacheDB time: execute {:.2}x, whole seal {:.2}x",
        exec_t.as_secs_f64() / mem_time.as_secs_f64(),
        seal_t.as_secs_f64() / mem_time.as_secs_f64()
    );
}

/// eth_call latency on a deployed contract.
fn eth_call(ledger: &Ledger, s: &mut Sender) {
    let art: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/store.json")).expect("artifact");
    let init = alloy_primitives::hex::decode(art["bytecode"].as_str().expect("hex")).expect("hex");
    let addr = s.key.address().create(s.nonce);
    ledger
        .submit_raw(&sign(
            &s.key,
            s.nonce,
            TxKind::Create,
            U256::ZERO,
            init,
            300_000,
        ))
        .expect("deploy");
    s.nonce += 1;
    ledger.seal(None).expect("seal");
    let req = CallRequest {
        to: Some(addr),
        data: Some(Bytes::from(vec![0x6d, 0x4c, 0xe6, 0x3c])),
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
        ms(percentile(&mut lat, 0.5)),
        ms(percentile(&mut lat, 0.99))
    );
}
