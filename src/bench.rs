//! `commons bench ledger`: the ledger under load from a separate process, as wallets and apps
//! load it — signed transactions through `eth_sendRawTransaction` over several HTTP
//! connections, counted once mined.
//!
//! By default it starts its own node (`commons serve --dev` of this same binary on a temporary
//! data dir, so node and load are two processes), funds its senders from the dev accounts,
//! signs every transaction before the clock starts (signing is the wallet's cost, not the
//! node's), sends them, and reads from the node how each block was made
//! (`/api/v1/ledger/timings`): throughput, block fill, and where a block's time went.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, sol};
use anyhow::{Context, anyhow, bail};
use clap::Args;
use commons_ledger::alloy_consensus::{SignableTransaction, TxEip1559};
use commons_ledger::alloy_eips::eip2718::Encodable2718;
use commons_ledger::op_alloy_consensus::OpTxEnvelope;
use serde_json::{Value, json};

/// `commons bench ledger` options.
#[derive(Debug, Clone, Args)]
pub struct LedgerBench {
    /// Transfers to send (to whom: `--to`)
    #[arg(long, default_value_t = 50_000)]
    pub transfers: usize,
    /// Sending accounts (funded by the dev accounts before the clock starts)
    #[arg(long, default_value_t = 1_000)]
    pub senders: usize,
    /// HTTP connections the load uses
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// eth_sendRawTransaction calls per JSON-RPC batch request (1: one call per request)
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Block time of the node it starts, seconds
    #[arg(long, default_value_t = 0.25)]
    pub block_time: f64,
    /// Accounts already in the state when the load starts (funded at genesis of the node it
    /// starts, besides the senders and the accounts the transfers create)
    #[arg(long, default_value_t = 0)]
    pub accounts: u64,
    /// Load an already running node (`--node`, started with `--dev`) instead of starting one
    #[arg(long)]
    pub external: bool,
    /// Keep the data dir of the node it starts (printed at the end)
    #[arg(long)]
    pub keep: bool,
    /// Send ERC-20 `transfer`s of a token the bench deploys (ledger/testdata/Erc20.sol), each
    /// to a new holder, instead of native transfers
    #[arg(long)]
    pub erc20: bool,
    /// Whom the transfers pay: `new` accounts (one per transfer, so the state grows by
    /// `--transfers`), or `existing` ones, drawn at random from the `--accounts` funded at
    /// genesis (the state keeps its size; with `--external`, `--accounts` must match the
    /// node's `--genesis-test-accounts`)
    #[arg(long, value_enum, default_value_t = Recipients::New)]
    pub to: Recipients,
}

/// Whom `commons bench ledger` pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipients {
    /// A new account per transfer
    New,
    /// Accounts funded at genesis, at random
    Existing,
}

/// The recipients of one run: transfer `i` pays `pick(i)`.
#[derive(Debug, Clone, Copy)]
struct Payees {
    to: Recipients,
    accounts: u64,
}

impl Payees {
    fn pick(&self, i: usize) -> Address {
        let h = keccak256(format!("commons bench ledger account {i}").as_bytes());
        match self.to {
            Recipients::New => Address::from_slice(&h[12..]),
            // Uniform over the genesis accounts: no locality a real payment load would not have.
            Recipients::Existing => {
                let r = u64::from_be_bytes(h[..8].try_into().unwrap_or_default());
                commons_ledger::genesis::test_account(r % self.accounts)
            }
        }
    }
}

sol! {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
}

/// Gas limit of a bench ERC-20 transfer (a new holder's slot and the sender's: about 52k).
const ERC20_GAS: u64 = 80_000;

/// The node under test.
struct Target {
    url: String,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

fn start_node(block_time: f64, accounts: u64) -> anyhow::Result<Target> {
    let dir = tempfile::Builder::new()
        .prefix("commons-bench-ledger-")
        .tempdir()?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--dev",
            "--json",
            "--http",
            "127.0.0.1:0",
            "--rpc",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--block-time")
        .arg(block_time.to_string())
        .arg("--genesis-test-accounts")
        .arg(accounts.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start commons serve")?;
    let out = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let info: Value = serde_json::from_str(line.trim())
        .with_context(|| format!("serve --json printed {line:?}"))?;
    let api = info["api"]
        .as_str()
        .ok_or_else(|| anyhow!("serve printed no api URL: {info}"))?;
    Ok(Target {
        url: api.trim_end_matches("/api/v1").to_string(),
        child: Some(child),
        dir: Some(dir),
    })
}

#[derive(Clone)]
struct Rpc {
    http: reqwest::Client,
    url: String,
}

impl Rpc {
    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let v: Value = self
            .http
            .post(format!("{}/rpc", self.url))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await?
            .json()
            .await?;
        if let Some(e) = v.get("error") {
            bail!("{method}: {}", e["message"].as_str().unwrap_or("error"));
        }
        Ok(v["result"].clone())
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn nonce(&self, a: Address, tag: &str) -> anyhow::Result<u64> {
        let v = self
            .call("eth_getTransactionCount", json!([a, tag]))
            .await?;
        hex_u64(&v)
    }
}

fn hex_u64(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("not a quantity: {v}"))?;
    Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

/// The bench's senders: fixed keys, so a kept data dir can be loaded again.
fn sender(i: usize) -> anyhow::Result<PrivateKeySigner> {
    let seed = keccak256(format!("commons bench ledger sender {i}").as_bytes());
    PrivateKeySigner::from_bytes(&seed).map_err(|e| anyhow!("sender key {i}: {e}"))
}

struct Signed {
    sender: usize,
    raw: Bytes,
}

/// What a bench transaction does.
struct Call {
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
}

impl Call {
    fn native(to: Address, value: U256) -> Call {
        Call {
            to: TxKind::Call(to),
            value,
            input: Bytes::new(),
            gas_limit: 21_000,
        }
    }

    fn token(token: Address, to: Address, value: U256) -> Call {
        Call {
            to: TxKind::Call(token),
            value: U256::ZERO,
            input: transferCall { to, value }.abi_encode().into(),
            gas_limit: ERC20_GAS,
        }
    }
}

fn sign_tx(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    call: Call,
    max_fee: u128,
    tip: u128,
) -> anyhow::Result<Bytes> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: call.gas_limit,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: call.to,
        value: call.value,
        input: call.input,
        access_list: Default::default(),
    };
    let sig = key
        .sign_hash_sync(&tx.signature_hash())
        .map_err(|e| anyhow!("sign: {e}"))?;
    Ok(OpTxEnvelope::Eip1559(tx.into_signed(sig))
        .encoded_2718()
        .into())
}

/// What an `eth_sendRawTransaction` error means to the load.
#[derive(PartialEq)]
enum Refusal {
    /// Back-pressure: the pool (or this sender's share of it) is full; blocks drain it.
    Later,
    /// Sent before and taken.
    Known,
    /// Refused for good (counted and logged).
    Final,
}

fn refusal(message: &str, refused: &AtomicU64) -> Refusal {
    if message.contains("txpool is full") || message.contains("nonce too high") {
        Refusal::Later
    } else if message.contains("already known") {
        Refusal::Known
    } else {
        refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %message, "the node refused a bench transaction");
        Refusal::Final
    }
}

/// Send one signed transaction, waiting out a full pool; `false` when the node refused it.
async fn send(rpc: &Rpc, raw: &Bytes, refused: &AtomicU64) -> anyhow::Result<bool> {
    let hex = alloy_primitives::hex::encode_prefixed(raw);
    for _ in 0..10_000 {
        match rpc.call("eth_sendRawTransaction", json!([hex])).await {
            Ok(_) => return Ok(true),
            Err(e) => match refusal(&e.to_string(), refused) {
                Refusal::Later => tokio::time::sleep(Duration::from_millis(5)).await,
                Refusal::Known => return Ok(true),
                Refusal::Final => return Ok(false),
            },
        }
    }
    bail!("the pool stayed full for a minute")
}

/// Send signed transactions as one JSON-RPC batch; the ones a full pool turned away are sent
/// again, together, once blocks have drained it: one request per retry, as a wallet batching
/// its submissions would, and backing off while none get in, so a load that outruns the
/// node does not spend the node's CPU on turning it away.
async fn send_batch(rpc: &Rpc, raws: &[Bytes], refused: &AtomicU64) -> anyhow::Result<()> {
    const FIRST_WAIT: Duration = Duration::from_millis(10);
    let mut pending: Vec<&Bytes> = raws.iter().collect();
    let mut wait = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        tokio::time::sleep(wait).await;
        let body: Vec<Value> = pending
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                       "params": [alloy_primitives::hex::encode_prefixed(r)]})
            })
            .collect();
        let answers: Value = rpc
            .http
            .post(format!("{}/rpc", rpc.url))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let answers = answers
            .as_array()
            .ok_or_else(|| anyhow!("the batch answer is not a list: {answers}"))?;
        if answers.len() != pending.len() {
            bail!("{} answers to a batch of {}", answers.len(), pending.len());
        }
        let mut again = Vec::new();
        for (raw, a) in pending.iter().zip(answers) {
            let Some(e) = a.get("error") else { continue };
            let m = e["message"].as_str().unwrap_or_default();
            if refusal(m, refused) == Refusal::Later {
                again.push(*raw);
            }
        }
        if again.is_empty() {
            return Ok(());
        }
        wait = if again.len() == pending.len() {
            (wait * 2).clamp(FIRST_WAIT, Duration::from_millis(160))
        } else {
            FIRST_WAIT
        };
        pending = again;
    }
    bail!("the pool stayed full for two minutes")
}

/// Fund `senders` from the ten dev accounts, in waves the pool takes.
async fn fund(
    rpc: &Rpc,
    keys: &[PrivateKeySigner],
    chain_id: u64,
    each: U256,
    max_fee: u128,
    tip: u128,
) -> anyhow::Result<()> {
    let devs: Vec<PrivateKeySigner> = (0..crate::auth::DEV_ACCOUNTS)
        .map(|i| crate::auth::dev_key(i).map_err(|e| anyhow!(e)))
        .collect::<anyhow::Result<_>>()?;
    let to: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    pay_out(rpc, &devs, &to, chain_id, max_fee, tip, |a| {
        Call::native(a, each)
    })
    .await
}

/// Send one call per recipient from `from` (round robin), in waves the pool takes, and wait
/// until every wave is mined.
async fn pay_out(
    rpc: &Rpc,
    devs: &[PrivateKeySigner],
    recipients: &[Address],
    chain_id: u64,
    max_fee: u128,
    tip: u128,
    call: impl Fn(Address) -> Call,
) -> anyhow::Result<()> {
    let mut nonces = Vec::new();
    for d in devs {
        nonces.push(rpc.nonce(d.address(), "pending").await?);
    }
    let refused = AtomicU64::new(0);
    for wave in recipients.chunks(devs.len() * 50) {
        for (i, a) in wave.iter().enumerate() {
            let d = i % devs.len();
            let raw = sign_tx(&devs[d], chain_id, nonces[d], call(*a), max_fee, tip)?;
            nonces[d] += 1;
            if !send(rpc, &raw, &refused).await? {
                bail!("the node refused a set-up transaction");
            }
        }
        for (d, dev) in devs.iter().enumerate() {
            while rpc.nonce(dev.address(), "latest").await? < nonces[d] {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(())
}

/// Deploy the bench token from dev0 and give each sender an equal share of it.
async fn deploy_token(
    rpc: &Rpc,
    keys: &[PrivateKeySigner],
    chain_id: u64,
    max_fee: u128,
    tip: u128,
) -> anyhow::Result<Address> {
    let art: Value = serde_json::from_str(include_str!("../ledger/testdata/erc20.json"))?;
    let mut init = alloy_primitives::hex::decode(
        art["bytecode"]
            .as_str()
            .ok_or_else(|| anyhow!("erc20.json has no bytecode"))?,
    )?;
    let supply = U256::from(10u64).pow(U256::from(30));
    init.extend_from_slice(&supply.to_be_bytes::<32>());
    let dev0 = crate::auth::dev_key(0).map_err(|e| anyhow!(e))?;
    let nonce = rpc.nonce(dev0.address(), "pending").await?;
    let create = Call {
        to: TxKind::Create,
        value: U256::ZERO,
        input: init.into(),
        gas_limit: 2_000_000,
    };
    let raw = sign_tx(&dev0, chain_id, nonce, create, max_fee, tip)?;
    if !send(rpc, &raw, &AtomicU64::new(0)).await? {
        bail!("the node refused the token deployment");
    }
    while rpc.nonce(dev0.address(), "latest").await? <= nonce {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = dev0.address().create(nonce);
    let code = rpc.call("eth_getCode", json!([token, "latest"])).await?;
    if code.as_str().is_none_or(|c| c.len() <= 2) {
        bail!("the token deployment failed (no code at {token})");
    }
    let share = supply / U256::from(keys.len() as u64);
    let to: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    pay_out(rpc, &[dev0], &to, chain_id, max_fee, tip, |a| {
        Call::token(token, a, share)
    })
    .await?;
    Ok(token)
}

/// A sample of about 100 recipients, each with what the run pays it (1 wei or 1 token unit
/// per transfer to it).
fn recipient_sample(payees: Payees, n: usize) -> BTreeMap<Address, U256> {
    let step = (n / 100).max(1);
    let mut sample: BTreeMap<Address, U256> = (0..n)
        .step_by(step)
        .chain([n - 1])
        .map(|i| (payees.pick(i), U256::ZERO))
        .collect();
    for i in 0..n {
        if let Some(due) = sample.get_mut(&payees.pick(i)) {
            *due += U256::from(1u8);
        }
    }
    sample
}

/// Mined is not enough: each sampled recipient must have gained exactly what was sent to it
/// since `before` (read before the load), so a reverted ERC-20 transfer cannot count.
async fn check_recipients(
    rpc: &Rpc,
    token: Option<Address>,
    due: &BTreeMap<Address, U256>,
    before: &BTreeMap<Address, U256>,
) -> anyhow::Result<()> {
    for (a, want) in due {
        let was = before.get(a).copied().unwrap_or_default();
        let got = holding(rpc, token, *a).await?;
        if got.checked_sub(was) != Some(*want) {
            bail!("{a} was paid {want} by the run but went from {was} to {got}");
        }
    }
    Ok(())
}

/// What `a` holds: its balance, or its balance of `token`.
async fn holding(rpc: &Rpc, token: Option<Address>, a: Address) -> anyhow::Result<U256> {
    let v = match token {
        Some(t) => {
            let data =
                alloy_primitives::hex::encode_prefixed(balanceOfCall { owner: a }.abi_encode());
            rpc.call("eth_call", json!([{"to": t, "data": data}, "latest"]))
                .await?
        }
        None => rpc.call("eth_getBalance", json!([a, "latest"])).await?,
    };
    let s = v
        .as_str()
        .ok_or_else(|| anyhow!("reading what {a} holds gave {v}"))?;
    Ok(U256::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

/// The machine's CPU time counters (Linux `/proc/stat`, in ticks): busy, idle, stolen.
/// On a shared virtual machine the hypervisor can take a large share of the cores from
/// under a run; a throughput figure means little without it.
fn cpu_ticks() -> Option<[u64; 3]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = v.as_slice() else {
        return None;
    };
    Some([user + nice + system + irq + softirq, idle + iowait, *steal])
}

/// Shares of the machine's CPU time between two readings: (busy, idle, stolen), in percent.
fn cpu_shares(before: Option<[u64; 3]>, after: Option<[u64; 3]>) -> Option<[f64; 3]> {
    let (b, a) = (before?, after?);
    let d: Vec<f64> = (0..3).map(|i| a[i].saturating_sub(b[i]) as f64).collect();
    let total: f64 = d.iter().sum();
    (total > 0.0).then(|| [0, 1, 2].map(|i| 100.0 * d[i] / total))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run the ledger load benchmark; prints its figures (JSON with `--json`).
pub async fn ledger(args: LedgerBench, node_url: &str, json_out: bool) -> anyhow::Result<()> {
    if args.senders == 0 || args.connections == 0 || args.transfers == 0 {
        bail!("--senders, --connections and --transfers must be at least 1");
    }
    if args.to == Recipients::Existing && args.accounts == 0 {
        bail!("--to existing pays the genesis test accounts: give their number with --accounts");
    }
    let payees = Payees {
        to: args.to,
        accounts: args.accounts,
    };
    let target = if args.external {
        Target {
            url: node_url.trim_end_matches('/').to_string(),
            child: None,
            dir: None,
        }
    } else {
        start_node(args.block_time, args.accounts)?
    };
    let rpc = Rpc {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.connections * 2)
            .timeout(Duration::from_secs(60))
            .build()?,
        url: target.url.clone(),
    };
    let chain_id = hex_u64(&rpc.call("eth_chainId", json!([])).await?)?;
    if args.to == Recipients::Existing {
        let last = commons_ledger::genesis::test_account(args.accounts - 1);
        if holding(&rpc, None, last).await?.is_zero() {
            bail!(
                "the node has no genesis test account {} ({last}): --accounts must be its \
                 --genesis-test-accounts",
                args.accounts - 1
            );
        }
    }
    let price = u128::from(hex_u64(&rpc.call("eth_gasPrice", json!([])).await?)?);
    let tip = u128::from(hex_u64(
        &rpc.call("eth_maxPriorityFeePerGas", json!([])).await?,
    )?);
    // Full blocks raise the base fee 2 % a block (Canyon): leave room for the whole run.
    let max_fee = price * 50;
    let keys: Vec<PrivateKeySigner> = (0..args.senders)
        .map(sender)
        .collect::<anyhow::Result<_>>()?;
    let per_sender = args.transfers.div_ceil(args.senders) as u128;
    let gas = u128::from(if args.erc20 { ERC20_GAS } else { 21_000 });
    let each = U256::from(per_sender * (gas * max_fee + 1) + 1_000_000_000_000_000_000u128);
    eprintln!(
        "bench ledger: node {} (chain {chain_id}), funding {} senders",
        target.url, args.senders
    );
    fund(&rpc, &keys, chain_id, each, price * 4, tip).await?;
    let token = if args.erc20 {
        Some(deploy_token(&rpc, &keys, chain_id, price * 4, tip).await?)
    } else {
        None
    };
    let kind = if args.erc20 {
        "ERC-20 transfers"
    } else {
        "native transfers"
    };
    let due = recipient_sample(payees, args.transfers);
    let mut before = BTreeMap::new();
    for a in due.keys() {
        before.insert(*a, holding(&rpc, token, *a).await?);
    }

    // Sign everything first, on every core.
    eprintln!("bench ledger: signing {} transfers", args.transfers);
    let mut start_nonces = Vec::with_capacity(keys.len());
    for k in &keys {
        start_nonces.push(rpc.nonce(k.address(), "pending").await?);
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let chunk = args.transfers.div_ceil(threads);
    let signed: Vec<Signed> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (keys, start_nonces) = (&keys, &start_nonces);
                s.spawn(move || -> anyhow::Result<Vec<Signed>> {
                    let lo = t * chunk;
                    let hi = ((t + 1) * chunk).min(args.transfers);
                    (lo..hi)
                        .map(|i| {
                            let sender = i % keys.len();
                            let round = (i / keys.len()) as u64;
                            let to = payees.pick(i);
                            let call = match token {
                                Some(t) => Call::token(t, to, U256::from(1u8)),
                                None => Call::native(to, U256::from(1u8)),
                            };
                            let raw = sign_tx(
                                &keys[sender],
                                chain_id,
                                start_nonces[sender] + round,
                                call,
                                max_fee,
                                tip,
                            )?;
                            Ok(Signed { sender, raw })
                        })
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow!("a signing thread panicked"))??,
            );
        }
        Ok::<_, anyhow::Error>(all)
    })?;

    // Each connection owns the senders with its index, so a sender's nonces go in order.
    let mut queues: Vec<Vec<Bytes>> = vec![Vec::new(); args.connections];
    for s in signed {
        queues[s.sender % args.connections].push(s.raw);
    }
    let head_before = hex_u64(&rpc.call("eth_blockNumber", json!([])).await?)?;
    let refused = Arc::new(AtomicU64::new(0));
    eprintln!(
        "bench ledger: sending over {} connections",
        args.connections
    );
    let t0 = Instant::now();
    let cpu0 = cpu_ticks();
    let t0_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let mut tasks = Vec::new();
    let batch = args.batch.max(1);
    for q in queues {
        let (rpc, refused) = (rpc.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            if batch == 1 {
                for raw in &q {
                    send(&rpc, raw, &refused).await?;
                }
            } else {
                for chunk in q.chunks(batch) {
                    send_batch(&rpc, chunk, &refused).await?;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let sent_secs = t0.elapsed().as_secs_f64();
    // Mined: every sender's account nonce reached its last transaction.
    let mut want: BTreeMap<usize, u64> = BTreeMap::new();
    for i in 0..args.transfers {
        let s = i % keys.len();
        *want.entry(s).or_insert(start_nonces[s]) += 1;
    }
    let refused_n = refused.load(Ordering::Relaxed);
    if refused_n == 0 {
        for (s, n) in &want {
            let mut waited = 0;
            while rpc.nonce(keys[*s].address(), "latest").await? < *n {
                tokio::time::sleep(Duration::from_millis(20)).await;
                waited += 1;
                if waited > 6_000 {
                    bail!("sender {s}'s transactions were not mined in 2 minutes");
                }
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_shares(cpu0, cpu_ticks());
    if refused_n == 0 {
        check_recipients(&rpc, token, &due, &before).await?;
    }

    // How the blocks were made, from the node.
    let timings = rpc
        .get(&format!("/api/v1/ledger/timings?after={head_before}"))
        .await?;
    let blocks: Vec<&Value> = timings["items"]
        .as_array()
        .map(|a| a.iter().filter(|b| b["txs"].as_u64() > Some(0)).collect())
        .unwrap_or_default();
    let f = |b: &Value, k: &str| b[k].as_f64().unwrap_or(0.0);
    let mined: u64 = blocks.iter().map(|b| b["txs"].as_u64().unwrap_or(0)).sum();
    let last_ms = blocks
        .last()
        .and_then(|b| b["sealed_at_ms"].as_u64())
        .unwrap_or(t0_ms);
    let mined_secs = (last_ms.saturating_sub(t0_ms)) as f64 / 1000.0;
    let sorted = |k: &str| {
        let mut v: Vec<f64> = blocks.iter().map(|b| f(b, k)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    // The state root's cost per trie node written: what "flat as the state grows" can mean
    // for a Merkle-Patricia trie, whose paths deepen by one nibble per 16× more accounts.
    let mut per_node: Vec<f64> = blocks
        .iter()
        .filter(|b| f(b, "trie_nodes") > 0.0)
        .map(|b| f(b, "state_root_ms") * 1000.0 / f(b, "trie_nodes"))
        .collect();
    per_node.sort_by(f64::total_cmp);
    let (trie_nodes, changed) = (sorted("trie_nodes"), sorted("accounts"));
    // The state root's CPU time: its work, apart from the waits for a core that its wall
    // time also holds while the RPC threads take in transactions.
    let state_root_cpu = sorted("state_root_cpu_ms");
    let (execute, state_root, state_writes, store, commit) = (
        sorted("execute_ms"),
        sorted("state_root_ms"),
        sorted("state_writes_ms"),
        sorted("store_ms"),
        sorted("commit_ms"),
    );
    // Where the sequencer's time went, summed over the blocks; checkpoints apart, since
    // one of them costs as much as many ordinary commits.
    let total = |v: &[f64]| v.iter().sum::<f64>() / 1000.0;
    let checkpoints: Vec<f64> = blocks
        .iter()
        .filter(|b| b["checkpoint"].as_bool() == Some(true))
        .map(|b| f(b, "commit_ms"))
        .collect();
    let txs_per_block = mined as f64 / blocks.len().max(1) as f64;
    let out = json!({
        "kind": if args.erc20 { "erc20" } else { "native" },
        "to": if args.to == Recipients::New { "new" } else { "existing" },
        "transfers": args.transfers,
        "senders": args.senders,
        "connections": args.connections,
        "batch": args.batch,
        "block_time_secs": args.block_time,
        "accounts_before": (!args.external || args.to == Recipients::Existing).then_some(args.accounts),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_percent": cpu.map(|[busy, idle, stolen]| json!({"busy": busy, "idle": idle, "stolen": stolen})),
        "refused": refused_n,
        "mined": mined,
        "blocks": blocks.len(),
        "txs_per_block": txs_per_block,
        "send_secs": sent_secs,
        "wall_secs": wall,
        "transfers_per_sec": args.transfers as f64 / if mined_secs > 0.0 { mined_secs } else { wall },
        "block_ms": {
            "execute": {"p50": percentile(&execute, 0.5), "p99": percentile(&execute, 0.99)},
            "state_root": {"p50": percentile(&state_root, 0.5), "p99": percentile(&state_root, 0.99)},
            "state_writes": {"p50": percentile(&state_writes, 0.5), "p99": percentile(&state_writes, 0.99)},
            "store": {"p50": percentile(&store, 0.5), "p99": percentile(&store, 0.99)},
            "commit": {"p50": percentile(&commit, 0.5), "p99": percentile(&commit, 0.99)},
        },
        "state_root_per_block": {
            "changed_accounts_p50": percentile(&changed, 0.5),
            "trie_nodes_p50": percentile(&trie_nodes, 0.5),
            "us_per_trie_node": {"p50": percentile(&per_node, 0.5), "p99": percentile(&per_node, 0.99)},
            "cpu_ms": {"p50": percentile(&state_root_cpu, 0.5), "p99": percentile(&state_root_cpu, 0.99)},
        },
        "block_secs_total": {
            "execute": total(&execute),
            "state_root": total(&state_root),
            "state_writes": total(&state_writes),
            "store": total(&store),
            "commit": total(&commit),
            "checkpoints": checkpoints.len(),
            "checkpoint_commit": total(&checkpoints),
        },
        "data_dir": target.dir.as_ref().map(|d| d.path().display().to_string()),
    });
    if json_out {
        println!("{out}");
    } else {
        let before = if args.external {
            "an external node".to_string()
        } else {
            format!("{} accounts in state before", args.accounts)
        };
        let to = match args.to {
            Recipients::New => "new accounts".to_string(),
            Recipients::Existing => format!("existing accounts (of {})", args.accounts),
        };
        println!(
            "{kind} to {to} ({before}): {} sent over {} connections in {:.2} s, all mined after {:.2} s: {:.0} transfers/s",
            args.transfers,
            args.connections,
            sent_secs,
            wall,
            out["transfers_per_sec"].as_f64().unwrap_or(0.0)
        );
        println!(
            "blocks: {} with {:.0} transfers each; per block p50/p99 ms: execute {:.1}/{:.1}, state root {:.1}/{:.1}, state writes {:.1}/{:.1}, store {:.1}/{:.1}, commit {:.1}/{:.1}",
            blocks.len(),
            txs_per_block,
            percentile(&execute, 0.5),
            percentile(&execute, 0.99),
            percentile(&state_root, 0.5),
            percentile(&state_root, 0.99),
            percentile(&state_writes, 0.5),
            percentile(&state_writes, 0.99),
            percentile(&store, 0.5),
            percentile(&store, 0.99),
            percentile(&commit, 0.5),
            percentile(&commit, 0.99),
        );
        println!(
            "state root per block (p50): {:.0} changed accounts, {:.0} trie nodes written, {:.2} µs per node (p99 {:.2}), {:.1} ms of CPU (p99 {:.1})",
            percentile(&changed, 0.5),
            percentile(&trie_nodes, 0.5),
            percentile(&per_node, 0.5),
            percentile(&per_node, 0.99),
            percentile(&state_root_cpu, 0.5),
            percentile(&state_root_cpu, 0.99),
        );
        println!(
            "sealing time in all, s: execute {:.1}, state root {:.1}, state writes {:.1}, store {:.1}, commit {:.1} (of which {} checkpoints {:.1})",
            total(&execute),
            total(&state_root),
            total(&state_writes),
            total(&store),
            total(&commit),
            checkpoints.len(),
            total(&checkpoints),
        );
        if let Some([busy, idle, stolen]) = cpu {
            println!(
                "machine CPU during the load ({} cores): {busy:.0}% busy, {idle:.0}% idle, {stolen:.0}% taken by the hypervisor",
                out["cores"]
            );
        }
        if refused_n > 0 {
            println!("refused by the node: {refused_n} (see the warnings above)");
        }
    }
    let mut target = target;
    if args.keep
        && let Some(d) = target.dir.take()
    {
        let kept: PathBuf = d.keep();
        eprintln!("bench ledger: data dir kept at {}", kept.display());
    }
    if refused_n > 0 {
        bail!("the node refused {refused_n} transactions");
    }
    Ok(())
}
