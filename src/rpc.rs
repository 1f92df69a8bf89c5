//! Ethereum JSON-RPC 2.0 over HTTP (`POST /rpc` on the main port, and the `--rpc` listener):
//! the wire shapes of blocks, transactions, receipts and logs, block tags, batch requests, and
//! the error codes and messages Ethereum clients match on.
//!
//! | code | when |
//! |---|---|
//! | -32700 | the body is not JSON |
//! | -32600 | not a JSON-RPC request (or an empty batch) |
//! | -32601 | unknown method |
//! | -32602 | bad parameters (wrong type, bad hex, unknown block tag) |
//! | -32000 | refused transaction (geth's messages: "nonce too low", "insufficient funds for gas * price + value", "replacement transaction underpriced", …), unknown block, state not kept |
//! | 3 | "execution reverted" (with the revert data in `data`) |
//! | -32005 | eth_getLogs over the block range or result cap |
//! | -32603 | internal error |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::{Address, B256, Bytes, U256};
use commons_ledger::alloy_consensus::Transaction as _;
use commons_ledger::chain::{
    BlockInfo, CallRequest, LogFilter, LogInfo, ReceiptInfo, TxInfo, output_root, parse_l1_info,
};
use commons_ledger::op_alloy_consensus::OpTxEnvelope;
use commons_ledger::{Error, Ledger};
use serde_json::{Value, json};

use crate::ledger::LedgerNode;

/// Largest JSON-RPC request body (a batch of raw transactions fits).
pub const MAX_BODY: u64 = 16 << 20;
/// Most requests in one batch.
pub const MAX_BATCH: usize = 1000;

/// A JSON-RPC error.
#[derive(Debug, Clone)]
pub struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> Self {
        match e {
            Error::Tx(t) => RpcError::new(-32000, t.to_string()),
            Error::Reverted { data, .. } => RpcError {
                code: 3,
                message: e_message_reverted(&data),
                data: Some(json!(data)),
            },
            Error::Halted(m) => RpcError::new(-32000, m),
            Error::NotFound(m) => RpcError::new(-32000, m),
            Error::Invalid(m) if m.starts_with("query") => RpcError::new(-32005, m),
            Error::Invalid(m) => RpcError::new(-32602, m),
            other => RpcError::new(-32603, other.to_string()),
        }
    }
}

fn e_message_reverted(data: &[u8]) -> String {
    match commons_ledger::exec::revert_reason(data) {
        Some(r) => format!("execution reverted: {r}"),
        None => "execution reverted".into(),
    }
}

type R = Result<Value, RpcError>;

/// Answer one HTTP body: a request or a batch. `None` means "no response body" (a batch
/// of notifications only).
pub async fn handle_body(node: Arc<LedgerNode>, body: &[u8]) -> Value {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                Value::Null,
                RpcError::new(-32700, format!("parse error: {e}")),
            );
        }
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() {
                return error_response(Value::Null, RpcError::new(-32600, "empty batch"));
            }
            if items.len() > MAX_BATCH {
                return error_response(
                    Value::Null,
                    RpcError::new(
                        -32600,
                        format!("batch of {} requests, limit {MAX_BATCH}", items.len()),
                    ),
                );
            }
            // The items run concurrently and answers keep their order. The batch's
            // eth_sendRawTransaction calls go to the ledger in chunks, each one blocking task
            // with one read snapshot and one pool-journal append, where a task per
            // transaction cost more in thread hand-offs and lock contention than the checks
            // themselves. The pool takes a sender's nonces in any order.
            let mut answers: Vec<Value> = vec![Value::Null; items.len()];
            let mut sends: Vec<(usize, Value, Bytes)> = Vec::new();
            let mut others = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match as_send(&item) {
                    Some((id, Ok(raw))) => sends.push((i, id, raw)),
                    Some((id, Err(e))) => answers[i] = error_response(id, e),
                    None => {
                        let node = node.clone();
                        others.push(async move { (i, handle_one(node, item).await) });
                    }
                }
            }
            let chunks = sends.len().div_ceil(SEND_CHUNK).max(1);
            let size = sends.len().div_ceil(chunks).max(1);
            let mut chunked = Vec::with_capacity(chunks);
            let mut sends = sends.into_iter().peekable();
            while sends.peek().is_some() {
                chunked.push(send_chunk(
                    node.clone(),
                    sends.by_ref().take(size).collect(),
                ));
            }
            let (sent, other) = futures_util::future::join(
                futures_util::future::join_all(chunked),
                futures_util::future::join_all(others),
            )
            .await;
            for (i, v) in sent.into_iter().flatten().chain(other) {
                answers[i] = v;
            }
            Value::Array(answers)
        }
        v => handle_one(node, v).await,
    }
}

/// How many of a batch's eth_sendRawTransaction calls one blocking task takes: enough to
/// amortize the hand-off, few enough that a large batch still spreads over the cores.
const SEND_CHUNK: usize = 32;

/// A batch item that is a well-formed eth_sendRawTransaction: its id and the transaction's
/// bytes, or the error its params earn. `None` for any other request.
fn as_send(req: &Value) -> Option<(Value, Result<Bytes, RpcError>)> {
    if req.get("method").and_then(Value::as_str) != Some("eth_sendRawTransaction") {
        return None;
    }
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    Some((id, request_params(req).and_then(raw_tx_param)))
}

/// A request's params: absent or null is none; anything but an array is refused.
fn request_params(req: &Value) -> Result<&[Value], RpcError> {
    match req.get("params") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(RpcError::params("params must be an array")),
    }
}

/// eth_sendRawTransaction's one argument: the signed transaction's bytes.
fn raw_tx_param(p: &[Value]) -> Result<Bytes, RpcError> {
    parse_bytes(need(p, 0, "transaction")?, "transaction")
}

/// Submit a chunk of a batch's transactions (batch position, request id, bytes) in one
/// blocking task; the answers come back with their positions.
async fn send_chunk(
    node: Arc<LedgerNode>,
    chunk: Vec<(usize, Value, Bytes)>,
) -> Vec<(usize, Value)> {
    let started = std::time::Instant::now();
    let raws: Vec<Bytes> = chunk.iter().map(|(_, _, raw)| raw.clone()).collect();
    let submitted = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let raws: Vec<&[u8]> = raws.iter().map(|r| r.as_ref()).collect();
            node.ledger.submit_raws(&raws)
        }))
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut results = match submitted {
        Ok(Ok(r)) => r.into_iter().map(Some).collect(),
        _ => Vec::new(),
    };
    results.resize_with(chunk.len(), || None);
    chunk
        .into_iter()
        .zip(results)
        .map(|((i, id, _), r)| {
            metrics::histogram!("commons_rpc_seconds", "method" => "eth_sendRawTransaction")
                .record(elapsed);
            let answer = match r {
                Some(Ok(hash)) => json!({"jsonrpc": "2.0", "id": id, "result": hash}),
                Some(Err(e)) => error_response(id, e.into()),
                None => error_response(
                    id,
                    RpcError::new(-32603, "the handler panicked; this is a bug in Commons"),
                ),
            };
            (i, answer)
        })
        .collect()
}

fn error_response(id: Value, e: RpcError) -> Value {
    let mut err = json!({"code": e.code, "message": e.message});
    if let Some(d) = e.data {
        err["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

async fn handle_one(node: Arc<LedgerNode>, req: Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return error_response(id, RpcError::new(-32600, "invalid request: no method"));
    };
    let params = match request_params(&req) {
        Ok(p) => p.to_vec(),
        Err(e) => return error_response(id, e),
    };
    let started = std::time::Instant::now();
    let m = method.clone();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&node, &m, &params)))
    })
    .await;
    let result = match result {
        Ok(Ok(r)) => r,
        _ => Err(RpcError::new(
            -32603,
            "the handler panicked; this is a bug in Commons",
        )),
    };
    metrics::histogram!("commons_rpc_seconds", "method" => method_label(&method))
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => error_response(id, e),
    }
}

fn method_label(m: &str) -> &'static str {
    // Known methods only, so clients cannot blow up the label set.
    const KNOWN: &[&str] = &[
        "eth_call",
        "eth_sendRawTransaction",
        "eth_getTransactionReceipt",
        "eth_getBalance",
        "eth_blockNumber",
        "eth_getLogs",
        "eth_estimateGas",
        "eth_getBlockByNumber",
    ];
    KNOWN.iter().find(|k| **k == m).copied().unwrap_or("other")
}

fn q(n: impl Into<u128>) -> Value {
    json!(format!("{:#x}", n.into()))
}

fn qu(n: U256) -> Value {
    json!(format!("{n:#x}"))
}

fn param(p: &[Value], i: usize) -> Option<&Value> {
    p.get(i).filter(|v| !v.is_null())
}

fn need<'a>(p: &'a [Value], i: usize, what: &str) -> Result<&'a Value, RpcError> {
    param(p, i).ok_or_else(|| {
        RpcError::params(format!("missing value for required argument {i} ({what})"))
    })
}

fn parse_quantity(v: &Value, what: &str) -> Result<u128, RpcError> {
    match v {
        Value::String(s) => {
            let h = s.strip_prefix("0x").ok_or_else(|| {
                RpcError::params(format!("invalid {what}: hex string without 0x prefix"))
            })?;
            if h.is_empty() {
                return Err(RpcError::params(format!(
                    "invalid {what}: empty hex string"
                )));
            }
            u128::from_str_radix(h, 16)
                .map_err(|_| RpcError::params(format!("invalid {what}: {s}")))
        }
        Value::Number(n) => n
            .as_u64()
            .map(u128::from)
            .ok_or_else(|| RpcError::params(format!("invalid {what}: {n}"))),
        _ => Err(RpcError::params(format!(
            "invalid {what}: expected a hex quantity"
        ))),
    }
}

fn parse_u64(v: &Value, what: &str) -> Result<u64, RpcError> {
    u64::try_from(parse_quantity(v, what)?)
        .map_err(|_| RpcError::params(format!("{what} too large")))
}

fn parse_u256(v: &Value, what: &str) -> Result<U256, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::params(format!("invalid {what}: expected hex")))?;
    s.parse::<U256>()
        .map_err(|_| RpcError::params(format!("invalid {what}: {s}")))
}

fn parse_addr(v: &Value, what: &str) -> Result<Address, RpcError> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RpcError::params(format!("invalid {what}: expected a 20-byte hex address")))
}

fn parse_b256(v: &Value, what: &str) -> Result<B256, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::params(format!("invalid {what}: expected hex")))?;
    // Storage keys may be given as quantities ("0x0").
    if let Ok(b) = s.parse::<B256>() {
        return Ok(b);
    }
    s.parse::<U256>()
        .map(|u| B256::from(u.to_be_bytes::<32>()))
        .map_err(|_| RpcError::params(format!("invalid {what}: {s}")))
}

/// A storage key as geth reads it: hex of at most 32 bytes, left-padded (an odd number of
/// digits is allowed), with geth's messages for the two ways it goes wrong.
fn parse_storage_key(v: &Value) -> Result<B256, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::params(format!("invalid storage key: {v}")))?;
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    let bytes = alloy_primitives::hex::decode(&padded)
        .map_err(|_| RpcError::params(format!("invalid hex in storage key: {s:?}")))?;
    if bytes.len() > 32 {
        return Err(RpcError::params(format!(
            "storage key too long (want at most 32 bytes): {s:?}"
        )));
    }
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    Ok(B256::from(out))
}

/// How eth_getProof echoes a key: a 32-byte key as given, any other as a quantity (geth's
/// rule, kept for older clients).
fn proof_key_json(given: &Value, key: &B256) -> Value {
    let digits = given
        .as_str()
        .map(|s| s.trim_start_matches("0x").len())
        .unwrap_or(0);
    if digits == 64 {
        json!(key)
    } else {
        qu(U256::from_be_bytes(key.0))
    }
}

fn parse_bytes(v: &Value, what: &str) -> Result<Bytes, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::params(format!("invalid {what}: expected hex")))?;
    alloy_primitives::hex::decode(s)
        .map(Into::into)
        .map_err(|e| RpcError::params(format!("invalid {what}: {e}")))
}

/// A block tag or number (or EIP-1898 object) as a block number.
fn block_number(l: &Ledger, v: Option<&Value>) -> Result<u64, RpcError> {
    let head = l.head().header.number;
    let Some(v) = v else { return Ok(head) };
    match v {
        Value::String(s) => match s.as_str() {
            "latest" | "pending" | "safe" | "finalized" => Ok(head),
            "earliest" => Ok(0),
            // EIP-1898 allows a bare block hash where a block number goes.
            _ if s.starts_with("0x") && s.len() == 66 => {
                let h = parse_b256(v, "block hash")?;
                l.block_number(&h)?
                    .ok_or_else(|| RpcError::new(-32000, format!("block {h} not found")))
            }
            _ if s.starts_with("0x") => parse_u64(v, "block number"),
            _ => Err(RpcError::params(format!("unknown block tag '{s}'"))),
        },
        Value::Number(_) => parse_u64(v, "block number"),
        Value::Object(o) => {
            if let Some(h) = o.get("blockHash") {
                let h = parse_b256(h, "block hash")?;
                return l
                    .block_number(&h)?
                    .ok_or_else(|| RpcError::new(-32000, format!("block {h} not found")));
            }
            match o.get("blockNumber") {
                Some(n) => block_number(l, Some(n)),
                None => Err(RpcError::params(
                    "block object without blockHash or blockNumber",
                )),
            }
        }
        _ => Err(RpcError::params("invalid block tag")),
    }
}

/// The block a state query names: `None` for the head, `Some(n)` for an older block (the
/// ledger answers it from its change sets).
fn state_block(l: &Ledger, v: Option<&Value>) -> Result<Option<u64>, RpcError> {
    let n = block_number(l, v)?;
    let head = l.head().header.number;
    if n > head {
        return Err(RpcError::new(-32000, "header not found"));
    }
    Ok((n < head).then_some(n))
}

fn call_request(v: &Value) -> Result<CallRequest, RpcError> {
    let o = v
        .as_object()
        .ok_or_else(|| RpcError::params("the call must be an object"))?;
    let get = |k: &str| o.get(k).filter(|v| !v.is_null());
    let mut r = CallRequest::default();
    if let Some(v) = get("from") {
        r.from = Some(parse_addr(v, "from")?);
    }
    if let Some(v) = get("to") {
        r.to = Some(parse_addr(v, "to")?);
    }
    if let Some(v) = get("gas") {
        r.gas = Some(parse_u64(v, "gas")?);
    }
    if let Some(v) = get("gasPrice") {
        r.gas_price = Some(parse_quantity(v, "gasPrice")?);
    }
    if let Some(v) = get("maxFeePerGas") {
        r.max_fee_per_gas = Some(parse_quantity(v, "maxFeePerGas")?);
    }
    if let Some(v) = get("maxPriorityFeePerGas") {
        r.max_priority_fee_per_gas = Some(parse_quantity(v, "maxPriorityFeePerGas")?);
    }
    if let Some(v) = get("value") {
        r.value = Some(parse_u256(v, "value")?);
    }
    if let Some(v) = get("input").or_else(|| get("data")) {
        r.data = Some(parse_bytes(v, "input")?);
    }
    if let Some(v) = get("accessList") {
        let items = v
            .as_array()
            .ok_or_else(|| RpcError::params("accessList must be an array"))?;
        let mut list = Vec::new();
        for it in items {
            let address = parse_addr(
                it.get("address").unwrap_or(&Value::Null),
                "accessList address",
            )?;
            let mut storage_keys = Vec::new();
            for k in it
                .get("storageKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                storage_keys.push(parse_b256(k, "storage key")?);
            }
            list.push(commons_ledger::alloy_eips::eip2930::AccessListItem {
                address,
                storage_keys,
            });
        }
        r.access_list = Some(commons_ledger::alloy_eips::eip2930::AccessList(list));
    }
    Ok(r)
}

fn call(node: &LedgerNode, method: &str, p: &[Value]) -> R {
    let l = &node.ledger;
    match method {
        "web3_clientVersion" => Ok(json!(format!(
            "Commons/v{}/{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS
        ))),
        "web3_sha3" => Ok(json!(alloy_primitives::keccak256(parse_bytes(
            need(p, 0, "data")?,
            "data"
        )?))),
        "net_version" => Ok(json!(l.chain_id().to_string())),
        "net_listening" => Ok(json!(true)),
        "net_peerCount" => Ok(q(0u64)),
        "eth_chainId" => Ok(q(l.chain_id())),
        "eth_syncing" => Ok(json!(false)),
        "eth_mining" => Ok(json!(false)),
        "eth_blockNumber" => Ok(q(l.head().header.number)),
        "eth_accounts" => Ok(json!(node.accounts)),
        "eth_gasPrice" => Ok(q(l.gas_price())),
        "eth_maxPriorityFeePerGas" => Ok(q(commons_ledger::genesis::SUGGESTED_TIP)),
        "eth_blobBaseFee" => Ok(q(1u64)),
        "eth_getBalance" => {
            let a = parse_addr(need(p, 0, "address")?, "address")?;
            let b = state_block(l, param(p, 1))?;
            Ok(qu(l.account_at(&a, b)?.balance))
        }
        "eth_getTransactionCount" => {
            let a = parse_addr(need(p, 0, "address")?, "address")?;
            if param(p, 1).and_then(Value::as_str) == Some("pending") {
                return Ok(q(l.pending_nonce(&a)?));
            }
            let b = state_block(l, param(p, 1))?;
            Ok(q(l.account_at(&a, b)?.nonce))
        }
        "eth_getCode" => {
            let a = parse_addr(need(p, 0, "address")?, "address")?;
            let b = state_block(l, param(p, 1))?;
            Ok(json!(l.code_at(&a, b)?))
        }
        "eth_getStorageAt" => {
            let a = parse_addr(need(p, 0, "address")?, "address")?;
            let slot = parse_storage_key(need(p, 1, "slot")?)?;
            let b = state_block(l, param(p, 2))?;
            let v = l.slot_at(&a, U256::from_be_bytes(slot.0), b)?;
            Ok(json!(B256::from(v.to_be_bytes::<32>())))
        }
        "eth_call" => {
            let req = call_request(need(p, 0, "call")?)?;
            let b = state_block(l, param(p, 1))?;
            if param(p, 2).is_some() {
                return Err(RpcError::params("state overrides are not supported"));
            }
            Ok(json!(l.call_at(&req, b)?))
        }
        "eth_estimateGas" => {
            let req = call_request(need(p, 0, "call")?)?;
            let b = state_block(l, param(p, 1))?;
            Ok(q(l.estimate_gas_at(&req, b)?))
        }
        "eth_sendRawTransaction" => Ok(json!(l.submit_raw(&raw_tx_param(p)?)?)),
        "eth_getBlockByNumber" => {
            let n = block_number(l, Some(need(p, 0, "block")?))?;
            let full = param(p, 1).and_then(Value::as_bool).unwrap_or(false);
            Ok(l.block(n)?
                .map(|b| block_json(&b, full))
                .unwrap_or(Value::Null))
        }
        "eth_getBlockByHash" => {
            let h = parse_b256(need(p, 0, "block hash")?, "block hash")?;
            let full = param(p, 1).and_then(Value::as_bool).unwrap_or(false);
            let Some(n) = l.block_number(&h)? else {
                return Ok(Value::Null);
            };
            Ok(l.block(n)?
                .map(|b| block_json(&b, full))
                .unwrap_or(Value::Null))
        }
        "eth_getBlockTransactionCountByNumber" => {
            let n = block_number(l, Some(need(p, 0, "block")?))?;
            Ok(l.block(n)?
                .map(|b| q(b.txs.len() as u64))
                .unwrap_or(Value::Null))
        }
        "eth_getBlockReceipts" => {
            let n = block_number(l, Some(need(p, 0, "block")?))?;
            let time = block_time(l, Some(n))?;
            Ok(l.block_receipts(n)?
                .map(|rs| Value::Array(rs.iter().map(|r| receipt_json(r, time)).collect()))
                .unwrap_or(Value::Null))
        }
        "eth_getTransactionByHash" => {
            let h = parse_b256(need(p, 0, "hash")?, "hash")?;
            Ok(match l.transaction(&h)? {
                None => Value::Null,
                Some(t) => {
                    let time = block_time(l, t.block.map(|b| b.1))?;
                    tx_json(&t, time)
                }
            })
        }
        "eth_getTransactionReceipt" => {
            let h = parse_b256(need(p, 0, "hash")?, "hash")?;
            Ok(match l.receipt(&h)? {
                None => Value::Null,
                Some(r) => receipt_json(&r, block_time(l, Some(r.block_number))?),
            })
        }
        "eth_getLogs" => {
            let f = log_filter(l, need(p, 0, "filter")?)?;
            let logs = match f {
                None => Vec::new(),
                Some(f) => l.logs(&f)?,
            };
            Ok(Value::Array(logs.iter().map(log_json).collect()))
        }
        "eth_getProof" => {
            let a = parse_addr(need(p, 0, "address")?, "address")?;
            let mut slots = Vec::new();
            let given: Vec<Value> = need(p, 1, "storage keys")?
                .as_array()
                .cloned()
                .unwrap_or_default();
            for s in &given {
                slots.push(parse_storage_key(s)?);
            }
            let pr = l.proof(&a, &slots, state_block(l, param(p, 2))?)?;
            Ok(json!({
                "address": a,
                "accountProof": pr.account_proof,
                "balance": qu(pr.account.balance),
                "codeHash": pr.account.code_hash,
                "nonce": q(pr.account.nonce),
                "storageHash": pr.account.storage_root,
                "storageProof": pr.storage.iter().zip(&given).map(|((k, v, nodes), g)| json!({
                    "key": proof_key_json(g, k), "value": qu(*v), "proof": nodes,
                })).collect::<Vec<_>>(),
            }))
        }
        "eth_feeHistory" => {
            let count = parse_u64(need(p, 0, "block count")?, "block count")?;
            let newest = block_number(l, Some(need(p, 1, "newest block")?))?;
            let head = l.head().header.number;
            if newest > head {
                return Err(RpcError::new(-32000, "header not found"));
            }
            let mut pct = Vec::new();
            for v in param(p, 2).and_then(Value::as_array).into_iter().flatten() {
                let x = v
                    .as_f64()
                    .ok_or_else(|| RpcError::params("reward percentiles must be numbers"))?;
                if !(0.0..=100.0).contains(&x) || pct.last().is_some_and(|l| x < *l) {
                    return Err(RpcError::params(
                        "reward percentiles must rise from 0 to 100",
                    ));
                }
                pct.push(x);
            }
            let h = l.fee_history(count, newest, &pct)?;
            let mut out = json!({
                "oldestBlock": q(h.oldest),
                "baseFeePerGas": h.base_fees.iter().map(|b| q(*b)).collect::<Vec<_>>(),
                "gasUsedRatio": h.gas_used_ratio,
                "baseFeePerBlobGas": h.base_fees.iter().map(|_| q(1u64)).collect::<Vec<_>>(),
                "blobGasUsedRatio": h.gas_used_ratio.iter().map(|_| 0.0).collect::<Vec<_>>(),
            });
            if param(p, 2).is_some() {
                out["reward"] = json!(
                    h.rewards
                        .iter()
                        .map(|r| r.iter().map(|x| q(*x)).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                );
            }
            Ok(out)
        }
        "optimism_outputAtBlock" => {
            let n = block_number(l, Some(need(p, 0, "block")?))?;
            let b = l
                .block(n)?
                .ok_or_else(|| RpcError::new(-32000, format!("block {n} not found")))?;
            Ok(json!({
                "version": B256::ZERO,
                "outputRoot": output_root(&b.header, b.hash),
                "blockRef": l2_ref(&b),
                "withdrawalStorageRoot": b.header.withdrawals_root.unwrap_or_default(),
                "stateRoot": b.header.state_root,
                "syncStatus": sync_status(node)?,
            }))
        }
        "optimism_syncStatus" => sync_status(node),
        "optimism_rollupConfig" => rollup_config(node),
        "optimism_version" => Ok(json!(format!("v{}", env!("CARGO_PKG_VERSION")))),
        _ => Err(RpcError::new(
            -32601,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}

fn log_filter(l: &Ledger, v: &Value) -> Result<Option<LogFilter>, RpcError> {
    let o = v
        .as_object()
        .ok_or_else(|| RpcError::params("the filter must be an object"))?;
    let head = l.head().header.number;
    let given = |k: &str| o.get(k).filter(|v| !v.is_null());
    let (from, to) = if let Some(h) = given("blockHash") {
        if given("fromBlock").is_some() || given("toBlock").is_some() {
            return Err(RpcError::params(
                "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other",
            ));
        }
        let h = parse_b256(h, "blockHash")?;
        let n = l
            .block_number(&h)?
            .ok_or_else(|| RpcError::new(-32000, "unknown block"))?;
        (n, n)
    } else {
        let from = block_number(l, o.get("fromBlock").filter(|v| !v.is_null()))?;
        let to = block_number(l, o.get("toBlock").filter(|v| !v.is_null()))?;
        if from > to {
            return Err(RpcError::params("invalid block range params"));
        }
        // A range past the head names blocks that do not exist yet (a tag never does).
        if to > head
            && given("toBlock").is_some_and(|v| v.as_str().is_some_and(|s| s.starts_with("0x")))
        {
            return Err(RpcError::params(
                "block range extends beyond current head block",
            ));
        }
        if to - from >= commons_ledger::chain::MAX_LOG_RANGE {
            return Err(RpcError::new(
                -32005,
                format!(
                    "query exceeds max block range {}",
                    commons_ledger::chain::MAX_LOG_RANGE
                ),
            ));
        }
        (from, to.min(head))
    };
    if from > head {
        return Ok(None);
    }
    let mut addresses = Vec::new();
    match o.get("address") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for x in a {
                addresses.push(parse_addr(x, "address")?);
            }
        }
        Some(x) => addresses.push(parse_addr(x, "address")?),
    }
    let mut topics = Vec::new();
    for t in o
        .get("topics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        topics.push(match t {
            Value::Null => None,
            Value::Array(a) => Some(
                a.iter()
                    .map(|x| parse_b256(x, "topic"))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            x => Some(vec![parse_b256(x, "topic")?]),
        });
    }
    if topics.len() > 4 {
        return Err(RpcError::params("too many topics: at most 4"));
    }
    Ok(Some(LogFilter {
        from,
        to,
        addresses,
        topics,
    }))
}

fn block_json(b: &BlockInfo, full: bool) -> Value {
    let h = &b.header;
    let txs: Vec<Value> = if full {
        b.txs
            .iter()
            .map(|t| tx_json(t, Some(h.timestamp)))
            .collect()
    } else {
        b.txs.iter().map(|t| json!(t.hash)).collect()
    };
    json!({
        "number": q(h.number),
        "hash": b.hash,
        "parentHash": h.parent_hash,
        "nonce": h.nonce,
        "sha3Uncles": h.ommers_hash,
        "logsBloom": h.logs_bloom,
        "transactionsRoot": h.transactions_root,
        "stateRoot": h.state_root,
        "receiptsRoot": h.receipts_root,
        "miner": h.beneficiary,
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": h.extra_data,
        "size": q(b.size),
        "gasLimit": q(h.gas_limit),
        "gasUsed": q(h.gas_used),
        "timestamp": q(h.timestamp),
        "mixHash": h.mix_hash,
        "baseFeePerGas": q(h.base_fee_per_gas.unwrap_or_default()),
        "withdrawalsRoot": h.withdrawals_root,
        "withdrawals": [],
        "blobGasUsed": q(h.blob_gas_used.unwrap_or_default()),
        "excessBlobGas": q(h.excess_blob_gas.unwrap_or_default()),
        "parentBeaconBlockRoot": h.parent_beacon_block_root,
        "requestsHash": h.requests_hash,
        "transactions": txs,
        "uncles": [],
    })
}

/// A transaction object; `time` is its block's timestamp (`None` while pending).
fn tx_json(t: &TxInfo, time: Option<u64>) -> Value {
    let tx = &t.tx;
    let (block_hash, block_number, index) = match t.block {
        Some((h, n, i)) => (json!(h), q(n), q(i)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let mut o = json!({
        "hash": t.hash,
        "from": t.from,
        "to": tx.to(),
        "input": tx.input(),
        "value": qu(tx.value()),
        "gas": q(tx.gas_limit()),
        "type": q(u64::from(tx.tx_type() as u8)),
        "blockHash": block_hash,
        "blockNumber": block_number,
        "blockTimestamp": time.map(q).unwrap_or(Value::Null),
        "transactionIndex": index,
    });
    if let OpTxEnvelope::Deposit(d) = tx {
        o["sourceHash"] = json!(d.source_hash);
        o["mint"] = q(d.mint);
        o["isSystemTx"] = json!(d.is_system_transaction);
        o["nonce"] = q(t.deposit_nonce.unwrap_or_default());
        o["gasPrice"] = q(0u64);
        o["depositReceiptVersion"] = q(1u64);
        o["v"] = q(0u64);
        o["r"] = q(0u64);
        o["s"] = q(0u64);
        return o;
    }
    o["nonce"] = q(tx.nonce());
    if let Some(c) = tx.chain_id() {
        o["chainId"] = q(c);
    }
    let gas_price = match (tx.max_priority_fee_per_gas(), t.base_fee) {
        (Some(tip), Some(base)) => {
            let base = u128::from(base);
            base + tip.min(tx.max_fee_per_gas().saturating_sub(base))
        }
        _ => tx.max_fee_per_gas(),
    };
    o["gasPrice"] = q(gas_price);
    if tx.max_priority_fee_per_gas().is_some() {
        o["maxFeePerGas"] = q(tx.max_fee_per_gas());
        o["maxPriorityFeePerGas"] = q(tx.max_priority_fee_per_gas().unwrap_or_default());
    }
    if let Some(al) = tx.access_list() {
        o["accessList"] = json!(
            al.0.iter()
                .map(|i| json!({"address": i.address, "storageKeys": i.storage_keys}))
                .collect::<Vec<_>>()
        );
    }
    if let Some(sig) = tx.signature() {
        let y = u64::from(sig.v());
        o["r"] = qu(sig.r());
        o["s"] = qu(sig.s());
        match tx {
            OpTxEnvelope::Legacy(_) => {
                o["v"] = match tx.chain_id() {
                    Some(c) => q(c * 2 + 35 + y),
                    None => q(27 + y),
                };
            }
            _ => {
                o["v"] = q(y);
                o["yParity"] = q(y);
            }
        }
    }
    o
}

/// The timestamp of block `n`, if there is one.
fn block_time(l: &Ledger, n: Option<u64>) -> Result<Option<u64>, RpcError> {
    Ok(match n {
        Some(n) => l.header(n)?.map(|(h, _)| h.timestamp),
        None => None,
    })
}

/// A receipt; `time` is its block's timestamp (its logs show it).
fn receipt_json(r: &ReceiptInfo, time: Option<u64>) -> Value {
    let rc = &r.receipt;
    let logs: Vec<Value> = rc
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "address": Address::from(l.address),
                "topics": l.topics.iter().map(|t| B256::from(*t)).collect::<Vec<_>>(),
                "data": Bytes::from(l.data.clone()),
                "blockHash": r.block_hash,
                "blockNumber": q(r.block_number),
                "blockTimestamp": time.map(q).unwrap_or(Value::Null),
                "transactionHash": r.tx_hash,
                "transactionIndex": q(r.index),
                "logIndex": q(r.first_log_index + i as u64),
                "removed": false,
            })
        })
        .collect();
    let mut o = json!({
        "transactionHash": r.tx_hash,
        "transactionIndex": q(r.index),
        "blockHash": r.block_hash,
        "blockNumber": q(r.block_number),
        "from": r.from,
        "to": r.to,
        "cumulativeGasUsed": q(rc.cumulative_gas_used),
        "gasUsed": q(rc.gas_used),
        "effectiveGasPrice": q(rc.effective_gas_price),
        "contractAddress": rc.contract_address.map(Address::from),
        "logs": logs,
        "logsBloom": r.logs_bloom,
        "type": q(u64::from(rc.tx_type)),
        "status": q(u64::from(rc.status)),
    });
    if let Some(n) = rc.deposit_nonce {
        o["depositNonce"] = q(n);
        o["depositReceiptVersion"] = q(1u64);
    }
    o
}

fn log_json(l: &LogInfo) -> Value {
    json!({
        "address": Address::from(l.log.address),
        "topics": l.log.topics.iter().map(|t| B256::from(*t)).collect::<Vec<_>>(),
        "data": Bytes::from(l.log.data.clone()),
        "blockHash": l.block_hash,
        "blockNumber": q(l.block_number),
        "blockTimestamp": q(l.block_timestamp),
        "transactionHash": l.tx_hash,
        "transactionIndex": q(l.tx_index),
        "logIndex": q(l.log_index),
        "removed": false,
    })
}

fn l1_ref(number: u64, hash: B256, time: u64) -> Value {
    let parent = match number {
        0 => B256::ZERO,
        n => commons_ledger::chain::dev_l1_hash(n - 1),
    };
    json!({"hash": hash, "number": number, "parentHash": parent, "timestamp": time})
}

fn l2_ref(b: &BlockInfo) -> Value {
    let (seq, l1n, _, l1h) = b
        .txs
        .first()
        .and_then(|t| parse_l1_info(t.tx.input()))
        .unwrap_or((0, 0, 0, commons_ledger::chain::dev_l1_hash(0)));
    json!({
        "hash": b.hash,
        "number": b.header.number,
        "parentHash": b.header.parent_hash,
        "timestamp": b.header.timestamp,
        "l1origin": {"hash": l1h, "number": l1n},
        "sequenceNumber": seq,
    })
}

fn sync_status(node: &LedgerNode) -> R {
    let l = &node.ledger;
    let head = l.head().header.number;
    let safe = node.da_safe.load(Ordering::Acquire).min(head);
    let get = |n: u64| -> R {
        let b = l
            .block(n)?
            .ok_or_else(|| RpcError::new(-32603, format!("block {n} missing")))?;
        Ok(l2_ref(&b))
    };
    let unsafe_l2 = get(head)?;
    let safe_l2 = get(safe)?;
    let l1n = unsafe_l2["l1origin"]["number"].as_u64().unwrap_or(0);
    let l1 = l1_ref(
        l1n,
        commons_ledger::chain::dev_l1_hash(l1n),
        unsafe_l2["timestamp"].as_u64().unwrap_or(0),
    );
    Ok(json!({
        "current_l1": l1,
        "current_l1_finalized": l1,
        "head_l1": l1,
        "safe_l1": l1,
        "finalized_l1": l1,
        "unsafe_l2": unsafe_l2,
        "safe_l2": safe_l2,
        "finalized_l2": safe_l2,
        "pending_safe_l2": safe_l2,
    }))
}

fn rollup_config(node: &LedgerNode) -> R {
    let l = &node.ledger;
    let g = l.genesis();
    let (genesis_header, genesis_hash) = l
        .header(0)?
        .ok_or_else(|| RpcError::new(-32603, "genesis missing"))?;
    Ok(json!({
        "genesis": {
            "l1": {"hash": commons_ledger::chain::dev_l1_hash(0), "number": 0},
            "l2": {"hash": genesis_hash, "number": 0},
            "l2_time": genesis_header.timestamp,
            "system_config": {
                "batcherAddr": Address::ZERO,
                "overhead": B256::ZERO,
                "scalar": B256::ZERO,
                "gasLimit": commons_ledger::genesis::GAS_LIMIT,
            },
        },
        "block_time": node.block_time_secs,
        "max_sequencer_drift": 600,
        "seq_window_size": 3600,
        "channel_timeout": 300,
        "l1_chain_id": 900,
        "l2_chain_id": g.chain_id,
        "regolith_time": 0,
        "canyon_time": 0,
        "delta_time": 0,
        "ecotone_time": 0,
        "fjord_time": 0,
        "granite_time": 0,
        "holocene_time": 0,
        "isthmus_time": 0,
        "jovian_time": 0,
        "batch_inbox_address": Address::ZERO,
        "deposit_contract_address": Address::ZERO,
        "l1_system_config_address": Address::ZERO,
        "protocol_versions_address": Address::ZERO,
        "da_challenge_contract_address": Address::ZERO,
    }))
}
