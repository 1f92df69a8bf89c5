//! The ledger for people (`/api/v1/ledger/…`): the head and the node's view of the chain,
//! recent blocks and transactions, an account's balance and history, the system contracts
//! and their recent events decoded with their ABIs. The console's Ledger page reads these;
//! wallets and libraries use JSON-RPC (`/rpc`) instead.

use std::sync::{Arc, OnceLock};

use alloy_dyn_abi::{DynSolValue, EventExt, JsonAbiExt};
use alloy_json_abi::JsonAbi;
use alloy_primitives::{Address, B256, U256};
use commons_ledger::alloy_consensus::Transaction;
use commons_ledger::alloy_eips::Typed2718;
use commons_ledger::chain::{LogFilter, LogInfo, ReceiptInfo, TxInfo};
use commons_ledger::system;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{ApiError, Req, Resp, blocking, json as reply};
use crate::cli_ledger::format_open;
use crate::node::Node;

/// Most items one page returns.
const MAX_LIMIT: usize = 200;
/// Blocks scanned per request when looking back for transactions or events.
const SCAN_BLOCKS: u64 = 5_000;

fn ledger_err(e: commons_ledger::Error) -> ApiError {
    match e {
        commons_ledger::Error::NotFound(m) => ApiError::not_found(m),
        commons_ledger::Error::Invalid(m) => ApiError::bad_request(m),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        ),
    }
}

/// A system contract as the console lists it.
struct Contract {
    name: &'static str,
    address: Address,
    abi: JsonAbi,
}

/// The system contracts with their ABIs (from the committed artifacts).
fn contracts() -> &'static [Contract] {
    static C: OnceLock<Vec<Contract>> = OnceLock::new();
    C.get_or_init(|| {
        let list: [(&'static str, Address, &'static str); 8] = [
            (
                "DatanetRegistry",
                system::DATANET_REGISTRY,
                include_str!("../../ledger/contracts/artifacts/DatanetRegistry.json"),
            ),
            (
                "ModelRegistry",
                system::MODEL_REGISTRY,
                include_str!("../../ledger/contracts/artifacts/ModelRegistry.json"),
            ),
            (
                "ContributionStaking",
                system::CONTRIBUTION_STAKING,
                include_str!("../../ledger/contracts/artifacts/ContributionStaking.json"),
            ),
            (
                "InferencePayments",
                system::INFERENCE_PAYMENTS,
                include_str!("../../ledger/contracts/artifacts/InferencePayments.json"),
            ),
            (
                "AttributionRewards",
                system::ATTRIBUTION_REWARDS,
                include_str!("../../ledger/contracts/artifacts/AttributionRewards.json"),
            ),
            (
                "GovernanceParams",
                system::GOVERNANCE_PARAMS,
                include_str!("../../ledger/contracts/artifacts/GovernanceParams.json"),
            ),
            (
                "L1Block",
                commons_ledger::genesis::L1_BLOCK,
                include_str!("../../ledger/contracts/artifacts/L1Block.json"),
            ),
            (
                "L2ToL1MessagePasser",
                commons_ledger::genesis::L2_TO_L1_MESSAGE_PASSER,
                include_str!("../../ledger/contracts/artifacts/L2ToL1MessagePasser.json"),
            ),
        ];
        list.into_iter()
            .filter_map(|(name, address, text)| {
                // The artifacts are compiled into the binary and checked by CI, so a bad one
                // is a build defect: leave that contract out rather than fail every request.
                let v: Value = serde_json::from_str(text).ok()?;
                let abi: JsonAbi = serde_json::from_value(v.get("abi")?.clone()).ok()?;
                Some(Contract { name, address, abi })
            })
            .collect()
    })
}

fn contract_at(a: &Address) -> Option<&'static Contract> {
    contracts().iter().find(|c| &c.address == a)
}

/// ABI values as JSON: addresses and bytes in 0x-hex, integers as decimal strings (they
/// overflow JavaScript numbers).
fn value_json(v: &DynSolValue) -> Value {
    match v {
        DynSolValue::Bool(b) => json!(b),
        DynSolValue::Int(i, _) => json!(i.to_string()),
        DynSolValue::Uint(u, _) => json!(u.to_string()),
        DynSolValue::FixedBytes(w, n) => json!(format!("0x{}", hex::encode(&w[..*n]))),
        DynSolValue::Address(a) => json!(format!("{a:#x}")),
        DynSolValue::Function(f) => json!(format!("0x{}", hex::encode(f.as_slice()))),
        DynSolValue::Bytes(b) => json!(format!("0x{}", hex::encode(b))),
        DynSolValue::String(s) => json!(s),
        DynSolValue::Array(xs) | DynSolValue::FixedArray(xs) | DynSolValue::Tuple(xs) => {
            Value::Array(xs.iter().map(value_json).collect())
        }
        #[allow(unreachable_patterns)]
        other => json!(format!("{other:?}")),
    }
}

/// A log, decoded when a system contract emitted it.
fn log_json(l: &LogInfo) -> Value {
    let address = Address::from(l.log.address);
    let topics: Vec<B256> = l.log.topics.iter().map(|t| B256::from(*t)).collect();
    let mut out = json!({
        "address": format!("{address:#x}"),
        "block": l.block_number,
        "timestamp": l.block_timestamp,
        "tx_hash": format!("{:#x}", l.tx_hash),
        "log_index": l.log_index,
        "topics": topics.iter().map(|t| format!("{t:#x}")).collect::<Vec<_>>(),
        "data": format!("0x{}", hex::encode(&l.log.data)),
    });
    if let Some(c) = contract_at(&address) {
        out["contract"] = json!(c.name);
        if let Some(sel) = topics.first()
            && let Some(ev) = c.abi.events().find(|e| &e.selector() == sel)
            && let Ok(d) = ev.decode_log_parts(topics.iter().copied(), &l.log.data)
        {
            let (mut indexed, mut body) = (d.indexed.iter(), d.body.iter());
            let mut args = serde_json::Map::new();
            for p in &ev.inputs {
                let v = if p.indexed {
                    indexed.next()
                } else {
                    body.next()
                };
                if let Some(v) = v {
                    args.insert(p.name.clone(), value_json(v));
                }
            }
            out["event"] = json!(ev.name);
            out["args"] = Value::Object(args);
        }
    }
    out
}

/// What a transaction did, in a word.
fn kind(t: &TxInfo) -> &'static str {
    if t.tx.is_deposit() {
        if t.block.map(|b| b.2) == Some(0) {
            "l1-attributes"
        } else {
            "deposit"
        }
    } else if t.tx.to().is_none() {
        "create"
    } else if t.tx.input().is_empty() {
        "transfer"
    } else {
        "call"
    }
}

fn tx_json(t: &TxInfo, r: Option<&ReceiptInfo>) -> Value {
    let to = t.tx.to();
    let value = t.tx.value();
    let mut out = json!({
        "hash": format!("{:#x}", t.hash),
        "block": t.block.map(|b| b.1),
        "index": t.block.map(|b| b.2),
        "from": format!("{:#x}", t.from),
        "to": to.map(|a| format!("{a:#x}")),
        "value": value.to_string(),
        "value_open": format_open(value),
        "nonce": t.deposit_nonce.unwrap_or_else(|| t.tx.nonce()),
        "type": t.tx.ty(),
        "kind": kind(t),
        "gas_limit": t.tx.gas_limit(),
        "input_size": t.tx.input().len(),
    });
    if let Some(c) = to.as_ref().and_then(contract_at) {
        out["contract"] = json!(c.name);
        let input = t.tx.input();
        if input.len() >= 4
            && let Some(f) = c
                .abi
                .functions()
                .find(|f| f.selector().as_slice() == &input[..4])
        {
            out["method"] = json!(f.name);
            if let Ok(args) = f.abi_decode_input(&input[4..]) {
                let named: serde_json::Map<String, Value> = f
                    .inputs
                    .iter()
                    .zip(&args)
                    .map(|(p, v)| (p.name.clone(), value_json(v)))
                    .collect();
                out["args"] = Value::Object(named);
            }
        }
    }
    match r {
        Some(r) => {
            let fee = U256::from(r.receipt.gas_used) * U256::from(r.receipt.effective_gas_price);
            out["status"] = json!(if r.receipt.status {
                "success"
            } else {
                "reverted"
            });
            out["gas_used"] = json!(r.receipt.gas_used);
            out["effective_gas_price"] = json!(r.receipt.effective_gas_price.to_string());
            out["fee"] = json!(fee.to_string());
            out["fee_open"] = json!(format_open(fee));
            out["contract_address"] = json!(
                r.receipt
                    .contract_address
                    .map(|a| format!("{:#x}", Address::from(a)))
            );
        }
        None if t.block.is_none() => out["status"] = json!("pending"),
        None => {}
    }
    out
}

fn block_json(b: &commons_ledger::chain::BlockInfo) -> Value {
    let h = &b.header;
    json!({
        "number": h.number,
        "hash": format!("{:#x}", b.hash),
        "parent_hash": format!("{:#x}", h.parent_hash),
        "timestamp": h.timestamp,
        "tx_count": b.txs.len(),
        "gas_used": h.gas_used,
        "gas_limit": h.gas_limit,
        "base_fee_per_gas": h.base_fee_per_gas,
        "state_root": format!("{:#x}", h.state_root),
        "size": b.size,
    })
}

/// The newest block a page that starts `before` a block shows (`None`: nothing is older).
fn newest_block(l: &commons_ledger::Ledger, before: Option<u64>) -> Option<u64> {
    let head = l.head().header.number;
    match before {
        Some(0) => None,
        Some(b) => Some((b - 1).min(head)),
        None => Some(head),
    }
}

fn limit(req: &Req, default: usize) -> Result<usize, ApiError> {
    let n: usize = req.q_parse("limit")?.unwrap_or(default);
    if n == 0 || n > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "'limit' must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(n)
}

/// `GET /api/v1/ledger`: the head and how this node runs the chain.
pub(super) async fn status(node: &Arc<Node>) -> Result<Resp, ApiError> {
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let head = l.head();
        let supply = l.expected_supply().map_err(ledger_err)?;
        let queued = l.queued_deposits().map_err(ledger_err)?;
        let publisher = n.publisher.as_ref().map(|p| p.status());
        Ok(json!({
            "chain_id": l.chain_id(),
            "head": {
                "number": head.header.number,
                "hash": format!("{:#x}", head.hash),
                "timestamp": head.header.timestamp,
                "base_fee_per_gas": head.header.base_fee_per_gas,
                "gas_used": head.header.gas_used,
                "gas_limit": head.header.gas_limit,
            },
            "gas_price": l.gas_price().to_string(),
            "block_time_secs": n.ledger.block_time_secs,
            "pool": l.pool_len(),
            "queued_deposits": queued,
            "da": {
                "safe_block": n.ledger.da_safe.load(std::sync::atomic::Ordering::Relaxed),
                "dir": n.ledger.da_dir.display().to_string(),
            },
            "supply": supply.to_string(),
            "supply_open": format_open(supply),
            "rpc": n.rpc_addr.map(|a| format!("http://{a}")),
            "publisher": {
                "operator": publisher.as_ref().and_then(|p| p.operator).map(|a| format!("{a:#x}")),
                "last_error": publisher.and_then(|p| p.last_error),
            },
            "contracts": contracts().iter().map(|c| json!({
                "name": c.name,
                "address": format!("{:#x}", c.address),
            })).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/blocks?before=N&limit=K`: blocks newest first.
pub(super) async fn blocks(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let limit = limit(req, 20)?;
    let before: Option<u64> = req.q_parse("before")?;
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let Some(top) = newest_block(l, before) else {
            return Ok(json!({"items": [], "next_cursor": null}));
        };
        let mut items = Vec::new();
        let mut at = top;
        loop {
            if let Some(b) = l.block(at).map_err(ledger_err)? {
                items.push(block_json(&b));
            }
            if items.len() >= limit || at == 0 {
                break;
            }
            at -= 1;
        }
        let next = (at > 0).then(|| at.to_string());
        Ok(json!({"items": items, "next_cursor": next}))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/blocks/{number|hash}`: a block with its transactions.
pub(super) async fn block(node: &Arc<Node>, id: &str) -> Result<Resp, ApiError> {
    let id = id.to_string();
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let number = if id.starts_with("0x") && id.len() == 66 {
            let hash: B256 = id
                .parse()
                .map_err(|_| ApiError::bad_request(format!("'{id}' is not a block hash")))?;
            l.block_number(&hash)
                .map_err(ledger_err)?
                .ok_or_else(|| ApiError::not_found(format!("no block {id}")))?
        } else {
            id.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("'{id}' is neither a block number nor a block hash"))
            })?
        };
        let b = l
            .block(number)
            .map_err(ledger_err)?
            .ok_or_else(|| ApiError::not_found(format!("no block {number}")))?;
        let receipts = l
            .block_receipts(number)
            .map_err(ledger_err)?
            .unwrap_or_default();
        let mut out = block_json(&b);
        out["transactions"] = b
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| tx_json(t, receipts.get(i)))
            .collect();
        Ok(out)
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/transactions?limit=K&before=BLOCK&deposits=false`: the newest
/// transactions, newest first; the L1-attributes deposit that opens every block is left out
/// unless `deposits=true`.
pub(super) async fn transactions(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let limit = limit(req, 20)?;
    let before: Option<u64> = req.q_parse("before")?;
    let system_too = req.q_parse::<bool>("deposits")?.unwrap_or(false);
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let Some(top) = newest_block(l, before) else {
            return Ok(json!({"items": [], "next_cursor": null}));
        };
        let mut items = Vec::new();
        let mut at = top;
        let mut scanned = 0;
        let mut next = None;
        loop {
            if let Some(b) = l.block(at).map_err(ledger_err)? {
                let receipts = l
                    .block_receipts(at)
                    .map_err(ledger_err)?
                    .unwrap_or_default();
                for (i, t) in b.txs.iter().enumerate().rev() {
                    if !system_too && kind(t) == "l1-attributes" {
                        continue;
                    }
                    items.push(tx_json(t, receipts.get(i)));
                }
            }
            scanned += 1;
            if at == 0 {
                break;
            }
            if items.len() >= limit || scanned >= SCAN_BLOCKS {
                next = Some(at.to_string());
                break;
            }
            at -= 1;
        }
        Ok(json!({"items": items, "next_cursor": next}))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

fn parse_hash(s: &str) -> Result<B256, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("'{s}' is not a transaction hash")))
}

fn parse_address(s: &str) -> Result<Address, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("'{s}' is not an address")))
}

/// `GET /api/v1/ledger/withdrawals/{hash}?block=N`: what L1's OptimismPortal takes to prove
/// the withdrawals transaction `hash` initiated, against the output of block N (the head).
pub(super) async fn withdrawal(node: &Arc<Node>, hash: &str, req: &Req) -> Result<Resp, ApiError> {
    let hash = parse_hash(hash)?;
    let block: Option<u64> = req.q_parse("block")?;
    let n = node.clone();
    let v = blocking(move || {
        let p = n
            .ledger
            .ledger
            .withdrawal_proof(&hash, block)
            .map_err(ledger_err)?;
        let withdrawals: Vec<Value> = p
            .withdrawals
            .iter()
            .map(|(w, nodes)| {
                json!({
                    "withdrawal_hash": w.hash(),
                    "nonce": w.nonce.to_string(),
                    "sender": w.sender,
                    "target": w.target,
                    "value": w.value.to_string(),
                    "value_open": format_open(w.value),
                    "gas_limit": w.gas_limit.to_string(),
                    "data": w.data,
                    "storage_slot": w.storage_slot(),
                    "proof": nodes,
                })
            })
            .collect();
        Ok(json!({
            "tx_hash": hash,
            "initiated_in_block": p.initiated_in,
            "l2_block": p.l2_block,
            "output_root": p.output_root,
            "output_root_proof": {
                "version": B256::ZERO,
                "state_root": p.state_root,
                "message_passer_storage_root": p.message_passer_storage_root,
                "latest_blockhash": p.block_hash,
            },
            "withdrawals": withdrawals,
        }))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/transactions/{hash}`: a transaction, its receipt and decoded logs.
pub(super) async fn transaction(node: &Arc<Node>, hash: &str) -> Result<Resp, ApiError> {
    let hash = parse_hash(hash)?;
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let t = l
            .transaction(&hash)
            .map_err(ledger_err)?
            .ok_or_else(|| ApiError::not_found(format!("no transaction {hash:#x}")))?;
        let r = l.receipt(&hash).map_err(ledger_err)?;
        let mut out = tx_json(&t, r.as_ref());
        out["input"] = json!(format!("0x{}", hex::encode(t.tx.input())));
        if let Some(r) = &r {
            let ts = l
                .header(r.block_number)
                .map_err(ledger_err)?
                .map(|(h, _)| h.timestamp)
                .unwrap_or_default();
            out["timestamp"] = json!(ts);
            out["logs"] = r
                .receipt
                .logs
                .iter()
                .enumerate()
                .map(|(i, log)| {
                    log_json(&LogInfo {
                        log: log.clone(),
                        block_hash: r.block_hash,
                        block_number: r.block_number,
                        block_timestamp: ts,
                        tx_hash: r.tx_hash,
                        tx_index: r.index,
                        log_index: r.first_log_index + i as u64,
                    })
                })
                .collect();
        }
        Ok(out)
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/accounts/{address}?block=N`: balance, nonce, code size and, for a
/// system contract, its name; at block N when given (default: the head).
pub(super) async fn account(node: &Arc<Node>, addr: &str, req: &Req) -> Result<Resp, ApiError> {
    let addr = parse_address(addr)?;
    let block: Option<u64> = req.q_parse("block")?;
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let head = l.head().header.number;
        if let Some(b) = block
            && b > head
        {
            return Err(ApiError::not_found(format!(
                "no block {b} yet (the head is {head})"
            )));
        }
        let a = l.account_at(&addr, block).map_err(ledger_err)?;
        let pending = l.pending_nonce(&addr).map_err(ledger_err)?;
        let code = l.code_at(&addr, block).map_err(ledger_err)?;
        Ok(json!({
            "address": format!("{addr:#x}"),
            "block": block.unwrap_or(head),
            "balance": a.balance.to_string(),
            "balance_open": format_open(a.balance),
            "nonce": a.nonce,
            "pending_nonce": pending,
            "code_size": code.len(),
            "contract": contract_at(&addr).map(|c| c.name),
        }))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/accounts/{address}/transactions?before=CURSOR&limit=K`: what the
/// account sent, received or created, newest first; the cursor is `BLOCK.INDEX` of the last
/// one returned.
pub(super) async fn account_transactions(
    node: &Arc<Node>,
    addr: &str,
    req: &Req,
) -> Result<Resp, ApiError> {
    let addr = parse_address(addr)?;
    let limit = limit(req, 25)?;
    let before = match req.q("before") {
        None => None,
        Some(c) => {
            let bad = || ApiError::bad_request(format!("'{c}' is not a cursor (BLOCK.INDEX)"));
            let (b, i) = c.split_once('.').ok_or_else(bad)?;
            Some((
                b.parse::<u64>().map_err(|_| bad())?,
                i.parse::<u32>().map_err(|_| bad())?,
            ))
        }
    };
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let txs = l
            .account_transactions(&addr, before, limit)
            .map_err(ledger_err)?;
        let mut items = Vec::with_capacity(txs.len());
        for t in &txs {
            let r = l.receipt(&t.hash).map_err(ledger_err)?;
            items.push(tx_json(t, r.as_ref()));
        }
        let next = (txs.len() == limit)
            .then(|| txs.last().and_then(|t| t.block))
            .flatten()
            .map(|(_, b, i)| format!("{b}.{i}"));
        Ok(json!({"items": items, "next_cursor": next}))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/events?address=A&limit=K&before=BLOCK`: the newest logs of one
/// contract (or of all system contracts), decoded, newest first.
pub(super) async fn events(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let limit = limit(req, 20)?;
    let before: Option<u64> = req.q_parse("before")?;
    let addresses = match req.q("address") {
        Some(a) => vec![parse_address(a)?],
        None => contracts().iter().map(|c| c.address).collect(),
    };
    let n = node.clone();
    let v = blocking(move || {
        let l = &n.ledger.ledger;
        let Some(top) = newest_block(l, before) else {
            return Ok(json!({"items": [], "next_cursor": null}));
        };
        // Look back in windows so a quiet contract costs a bounded scan per request.
        let mut items: Vec<Value> = Vec::new();
        let mut hi = top;
        let mut scanned = 0;
        let mut next = None;
        loop {
            let lo = hi.saturating_sub(999);
            let mut logs = l
                .logs(&LogFilter {
                    from: lo,
                    to: hi,
                    addresses: addresses.clone(),
                    topics: vec![],
                })
                .map_err(ledger_err)?;
            logs.sort_by_key(|x| std::cmp::Reverse((x.block_number, x.log_index)));
            // Pages end at a block boundary, so `before` never splits a block's logs.
            let mut last_block = None;
            for x in &logs {
                if items.len() >= limit && last_block != Some(x.block_number) {
                    next = last_block.map(|b: u64| b.to_string());
                    break;
                }
                last_block = Some(x.block_number);
                items.push(log_json(x));
            }
            scanned += hi - lo + 1;
            if next.is_some() || lo == 0 {
                break;
            }
            if scanned >= SCAN_BLOCKS * 20 {
                next = Some(lo.to_string());
                break;
            }
            hi = lo - 1;
        }
        Ok(json!({"items": items, "next_cursor": next}))
    })
    .await?;
    Ok(reply(StatusCode::OK, &v))
}

/// `GET /api/v1/ledger/timings?after=N`: how the blocks this process sealed were made
/// (execute / state root / state writes / commit ms, transactions, gas, changed accounts,
/// trie nodes written), oldest first, after block N.
pub(super) async fn timings(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let after: u64 = req.q_parse("after")?.unwrap_or(0);
    let items: Vec<crate::ledger::BlockTiming> = node
        .ledger
        .recent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|t| t.number > after)
        .copied()
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "items": items })))
}

/// `POST /api/v1/ledger/verify` (admin): rebuild the head's state root from every account
/// and slot and compare it with the header's (`Ledger::verify_state`). Answers 200 with
/// `ok: false` when they differ: the check ran, the state is what failed.
pub(super) async fn verify(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    super::console::admin(node, req)?;
    let n = node.clone();
    let c = blocking(move || n.ledger.ledger.verify_state().map_err(ledger_err)).await?;
    Ok(reply(StatusCode::OK, &crate::ledger::state_check_json(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_contract_abi_loads() {
        let names: Vec<_> = contracts().iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        let reg = contract_at(&system::DATANET_REGISTRY).expect("registry");
        assert!(reg.abi.events().any(|e| e.name == "VersionPublished"));
    }

    #[test]
    fn abi_values_read_as_json() {
        assert_eq!(
            value_json(&DynSolValue::Uint(U256::from(7u8), 256)),
            json!("7")
        );
        assert_eq!(
            value_json(&DynSolValue::Address(Address::repeat_byte(0xab))),
            json!("0xabababababababababababababababababababab")
        );
        assert_eq!(
            value_json(&DynSolValue::Tuple(vec![DynSolValue::Bool(true)])),
            json!([true])
        );
    }
}
