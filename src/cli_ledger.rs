//! `commons ledger …`: the chain's head, blocks, transactions and balances over JSON-RPC,
//! sending OPEN, queueing dev deposits, and deriving a chain from DA offline.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use commons_ledger::alloy_consensus::{SignableTransaction, TxEip1559};
use commons_ledger::alloy_eips::eip2718::Encodable2718;
use serde_json::{Value, json};

use crate::client::Client;

/// `commons ledger` subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCmd {
    /// Head block, chain id, gas price
    Status,
    /// A block by number ("latest" for the head)
    Block {
        /// Number or "latest"
        number: String,
    },
    /// A transaction and its receipt
    Tx {
        /// Transaction hash
        hash: String,
    },
    /// OPEN balance and nonce of an address
    Balance {
        /// Address
        address: String,
    },
    /// Send OPEN from --key and wait for the receipt
    Send {
        /// Recipient
        to: String,
        /// Amount in OPEN (decimals allowed, e.g. 1.5)
        amount: String,
    },
    /// Queue an L1 deposit that mints OPEN on L2 (dev: the local queue)
    Deposit {
        /// Recipient on L2
        #[arg(long)]
        to: String,
        /// OPEN to mint and send (decimals allowed)
        #[arg(long)]
        amount: String,
        /// Gas limit of the L2 call
        #[arg(long, default_value_t = 100_000)]
        gas: u64,
    },
    /// Proof for L1 of the withdrawals a transaction initiated (through the
    /// L2ToL1MessagePasser): the output root of an L2 block, its preimage, and each
    /// withdrawal's storage proof — what OptimismPortal.proveWithdrawalTransaction takes
    Withdrawal {
        /// Hash of the transaction that initiated the withdrawals
        hash: String,
        /// L2 block whose output the proof is against [default: the head]
        #[arg(long)]
        block: Option<u64>,
    },
    /// Rebuild the head's state root from every account and storage slot on the running
    /// node and compare it with the header's (admin token); exits non-zero when they differ
    Verify,
    /// Rebuild the chain from DA alone into --data-dir (offline) and print the last block and
    /// its output root
    Derive {
        /// The DA directory [default: DATA_DIR/da]
        #[arg(long)]
        da: Option<PathBuf>,
    },
}

/// Parse an OPEN amount with up to 18 decimals into wei.
pub fn parse_open(s: &str) -> anyhow::Result<U256> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 18 || (int.is_empty() && frac.is_empty()) {
        bail!("'{s}' is not an OPEN amount (at most 18 decimals)");
    }
    let digits = format!("{int}{frac:0<18}");
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        bail!("'{s}' is not an OPEN amount");
    }
    U256::from_str_radix(&digits, 10).map_err(|_| anyhow!("'{s}' is too large"))
}

/// Wei as OPEN with its decimals.
pub fn format_open(wei: U256) -> String {
    let one = U256::from(10u64).pow(U256::from(18));
    let (int, frac) = (wei / one, wei % one);
    if frac.is_zero() {
        return format!("{int}");
    }
    let f = format!("{:0>18}", frac.to_string());
    format!("{int}.{}", f.trim_end_matches('0'))
}

async fn rpc(c: &Client, method: &str, params: Value) -> anyhow::Result<Value> {
    let v = c
        .post(
            "/rpc",
            &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
        .await?;
    if let Some(e) = v.get("error") {
        bail!("{method}: {}", e["message"].as_str().unwrap_or("error"));
    }
    Ok(v["result"].clone())
}

fn hex_u64(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

fn hex_u256(v: &Value) -> U256 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// Run a `commons ledger` command.
pub async fn run(
    cmd: LedgerCmd,
    c: &Client,
    json_out: bool,
    key: impl FnOnce() -> anyhow::Result<alloy_signer_local::PrivateKeySigner>,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let out = |v: &Value, human: &dyn Fn(&Value)| {
        if json_out {
            println!("{v}");
        } else {
            human(v);
        }
    };
    match cmd {
        LedgerCmd::Status => {
            let head = rpc(c, "eth_getBlockByNumber", json!(["latest", false])).await?;
            let chain = rpc(c, "eth_chainId", json!([])).await?;
            let price = rpc(c, "eth_gasPrice", json!([])).await?;
            let sync = rpc(c, "optimism_syncStatus", json!([])).await?;
            let v = json!({
                "chain_id": hex_u64(&chain),
                "head": hex_u64(&head["number"]),
                "head_hash": head["hash"],
                "timestamp": hex_u64(&head["timestamp"]),
                "base_fee": hex_u64(&head["baseFeePerGas"]),
                "gas_price": hex_u64(&price),
                "safe": sync["safe_l2"]["number"],
            });
            out(&v, &|v| {
                println!("chain id     {}", v["chain_id"]);
                println!(
                    "head         {} {}",
                    v["head"],
                    v["head_hash"].as_str().unwrap_or("")
                );
                println!("in DA        {}", v["safe"]);
                println!("base fee     {} wei", v["base_fee"]);
                println!("gas price    {} wei", v["gas_price"]);
            });
        }
        LedgerCmd::Block { number } => {
            let tag = if number == "latest" {
                json!("latest")
            } else {
                let n: u64 = number
                    .parse()
                    .with_context(|| format!("'{number}' is not a block number"))?;
                json!(format!("{n:#x}"))
            };
            let b = rpc(c, "eth_getBlockByNumber", json!([tag, false])).await?;
            if b.is_null() {
                bail!("no block {number}");
            }
            out(&b, &|b| {
                println!(
                    "block {} {}",
                    hex_u64(&b["number"]),
                    b["hash"].as_str().unwrap_or("")
                );
                println!("  parent     {}", b["parentHash"].as_str().unwrap_or(""));
                println!("  time       {}", hex_u64(&b["timestamp"]));
                println!(
                    "  gas used   {} / {}",
                    hex_u64(&b["gasUsed"]),
                    hex_u64(&b["gasLimit"])
                );
                println!("  base fee   {}", hex_u64(&b["baseFeePerGas"]));
                println!("  state root {}", b["stateRoot"].as_str().unwrap_or(""));
                for t in b["transactions"].as_array().into_iter().flatten() {
                    println!("  tx {}", t.as_str().unwrap_or(""));
                }
            });
        }
        LedgerCmd::Tx { hash } => {
            let h: B256 = hash
                .parse()
                .with_context(|| format!("'{hash}' is not a hash"))?;
            let t = rpc(c, "eth_getTransactionByHash", json!([h])).await?;
            if t.is_null() {
                bail!("no transaction {h}");
            }
            let r = rpc(c, "eth_getTransactionReceipt", json!([h])).await?;
            let v = json!({"transaction": t, "receipt": r});
            out(&v, &|v| {
                let t = &v["transaction"];
                let r = &v["receipt"];
                println!("tx {}", t["hash"].as_str().unwrap_or(""));
                println!("  from       {}", t["from"].as_str().unwrap_or(""));
                println!("  to         {}", t["to"].as_str().unwrap_or("(creation)"));
                println!("  value      {} OPEN", format_open(hex_u256(&t["value"])));
                if r.is_null() {
                    println!("  pending");
                } else {
                    println!("  block      {}", hex_u64(&r["blockNumber"]));
                    println!(
                        "  status     {}",
                        if hex_u64(&r["status"]) == 1 {
                            "success"
                        } else {
                            "failed"
                        }
                    );
                    println!("  gas used   {}", hex_u64(&r["gasUsed"]));
                }
            });
        }
        LedgerCmd::Balance { address } => {
            let a: Address = address
                .parse()
                .with_context(|| format!("'{address}' is not an address"))?;
            let bal = rpc(c, "eth_getBalance", json!([a, "latest"])).await?;
            let nonce = rpc(c, "eth_getTransactionCount", json!([a, "latest"])).await?;
            let v = json!({"address": a, "balance_wei": hex_u256(&bal).to_string(), "balance": format_open(hex_u256(&bal)), "nonce": hex_u64(&nonce)});
            out(&v, &|v| {
                println!(
                    "{} OPEN (nonce {})",
                    v["balance"].as_str().unwrap_or(""),
                    v["nonce"]
                );
            });
        }
        LedgerCmd::Send { to, amount } => {
            let to: Address = to
                .parse()
                .with_context(|| format!("'{to}' is not an address"))?;
            let value = parse_open(&amount)?;
            let signer = key()?;
            let chain = hex_u64(&rpc(c, "eth_chainId", json!([])).await?);
            let nonce = hex_u64(
                &rpc(
                    c,
                    "eth_getTransactionCount",
                    json!([signer.address(), "pending"]),
                )
                .await?,
            );
            let price = hex_u64(&rpc(c, "eth_gasPrice", json!([])).await?);
            let tip = hex_u64(&rpc(c, "eth_maxPriorityFeePerGas", json!([])).await?);
            // 21,000 to an account without code; a contract's receive() (the message passer's
            // starts a withdrawal) needs what it runs.
            let gas = hex_u64(
                &rpc(
                    c,
                    "eth_estimateGas",
                    json!([{"from": signer.address(), "to": to, "value": format!("{value:#x}")}]),
                )
                .await?,
            );
            let tx = TxEip1559 {
                chain_id: chain,
                nonce,
                gas_limit: gas,
                // Room for the base fee to double before it lands.
                max_fee_per_gas: u128::from(price) * 2,
                max_priority_fee_per_gas: u128::from(tip),
                to: alloy_primitives::TxKind::Call(to),
                value,
                input: Default::default(),
                access_list: Default::default(),
            };
            let sig = signer
                .sign_hash_sync(&tx.signature_hash())
                .map_err(|e| anyhow!("cannot sign: {e}"))?;
            let raw =
                commons_ledger::op_alloy_consensus::OpTxEnvelope::Eip1559(tx.into_signed(sig))
                    .encoded_2718();
            let hash = rpc(
                c,
                "eth_sendRawTransaction",
                json!([alloy_primitives::hex::encode_prefixed(raw)]),
            )
            .await?;
            let mut receipt = Value::Null;
            for _ in 0..300 {
                receipt = rpc(c, "eth_getTransactionReceipt", json!([hash])).await?;
                if !receipt.is_null() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            if receipt.is_null() {
                bail!("sent {hash} but it was not mined within 30 s");
            }
            let v = json!({"hash": hash, "block": hex_u64(&receipt["blockNumber"]), "status": hex_u64(&receipt["status"])});
            out(&v, &|v| {
                println!(
                    "sent {} OPEN to {to} in block {}: {}",
                    amount,
                    v["block"],
                    v["hash"].as_str().unwrap_or("")
                );
            });
        }
        LedgerCmd::Deposit { to, amount, gas } => {
            let to: Address = to
                .parse()
                .with_context(|| format!("'{to}' is not an address"))?;
            let mint = parse_open(&amount)?;
            let v = c
                .post(
                    "/api/v1/ledger/deposits",
                    &json!({"to": to, "mint": mint, "gas": gas}),
                )
                .await?;
            out(&v, &|v| {
                println!(
                    "queued deposit {} of {amount} OPEN to {to}; it enters the next block",
                    v["queued"]
                );
            });
        }
        LedgerCmd::Withdrawal { hash, block } => {
            let h: B256 = hash
                .parse()
                .with_context(|| format!("'{hash}' is not a transaction hash"))?;
            let path = match block {
                Some(n) => format!("/api/v1/ledger/withdrawals/{h}?block={n}"),
                None => format!("/api/v1/ledger/withdrawals/{h}"),
            };
            let v = c.get(&path).await?;
            out(&v, &|v| {
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                println!(
                    "withdrawals of {} (block {}), against the output of block {}",
                    s(&v["tx_hash"]),
                    v["initiated_in_block"],
                    v["l2_block"]
                );
                let p = &v["output_root_proof"];
                println!("  output root     {}", s(&v["output_root"]));
                println!("  state root      {}", s(&p["state_root"]));
                println!("  passer storage  {}", s(&p["message_passer_storage_root"]));
                println!("  block hash      {}", s(&p["latest_blockhash"]));
                for w in v["withdrawals"].as_array().into_iter().flatten() {
                    println!(
                        "  withdrawal {}: {} OPEN from {} to {} (nonce {}, L1 gas {}, {} bytes of data), proof of {} nodes",
                        s(&w["withdrawal_hash"]),
                        s(&w["value_open"]),
                        s(&w["sender"]),
                        s(&w["target"]),
                        s(&w["nonce"]),
                        s(&w["gas_limit"]),
                        s(&w["data"]).len().saturating_sub(2) / 2,
                        w["proof"].as_array().map_or(0, Vec::len)
                    );
                }
                println!("  (--json prints the proof nodes)");
            });
        }
        LedgerCmd::Verify => {
            let v = c.post("/api/v1/ledger/verify", &json!({})).await?;
            out(&v, &|v| {
                println!(
                    "block {}: state root {} rebuilt from {} accounts and {} slots of {} contracts in {:.2} s",
                    v["block"],
                    v["rebuilt_root"].as_str().unwrap_or(""),
                    v["accounts"],
                    v["slots"],
                    v["contracts_with_storage"],
                    v["seconds"].as_f64().unwrap_or(0.0)
                );
            });
            if let Some(e) = crate::ledger::state_check_failure(&v) {
                return Err(e);
            }
        }
        LedgerCmd::Derive { da } => {
            let da = da.unwrap_or_else(|| data_dir.join("da"));
            let data_dir = data_dir.to_path_buf();
            let v = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
                std::fs::create_dir_all(&data_dir)
                    .with_context(|| format!("cannot create {}", data_dir.display()))?;
                let layer = commons_ledger::da::DirDa::new(&da);
                let started = std::time::Instant::now();
                let l = commons_ledger::da::derive(&layer, &data_dir.join("ledger.redb"))
                    .with_context(|| format!("deriving from {} failed", da.display()))?;
                let head = l.head();
                Ok(json!({
                    "block": head.header.number,
                    "hash": head.hash,
                    "state_root": head.header.state_root,
                    "output_root": commons_ledger::chain::output_root(&head.header, head.hash),
                    "seconds": started.elapsed().as_secs_f64(),
                }))
            })
            .await
            .context("derivation panicked")??;
            out(&v, &|v| {
                println!(
                    "block {} output root {}",
                    v["block"],
                    v["output_root"].as_str().unwrap_or("")
                );
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_amounts_parse_and_print() {
        assert_eq!(parse_open("1").expect("1"), U256::from(10u128.pow(18)));
        assert_eq!(
            parse_open("1.5").expect("1.5"),
            U256::from(15 * 10u128.pow(17))
        );
        assert!(parse_open("1.2.3").is_err());
        assert!(parse_open("abc").is_err());
        assert_eq!(format_open(U256::from(15 * 10u128.pow(17))), "1.5");
        assert_eq!(format_open(U256::from(2 * 10u128.pow(18))), "2");
    }
}
