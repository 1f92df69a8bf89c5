//! The execution-apis conformance cases (`tests/rpc-compat/<method>/*.io`, from
//! github.com/ethereum/execution-apis, CC0) against the real binary's `/rpc`.
//!
//! The cases were recorded on the hive test chain, which this node cannot hold (its genesis,
//! its fork schedule from Frontier and its blob transactions are not an OP L2's). So the node
//! runs with the hive chain's id, builds more blocks than the cases name, and each case is
//! checked at the strongest level that applies here:
//! - **exact**: errors (code and message), nulls for what does not exist, and answers that do
//!   not depend on the chain's history (chain id, network id, syncing, empty accounts);
//! - **shape**: everything else — the same result type, every field the case's answer has
//!   with the same kind of value (quantity, fixed-size data, address, list, object);
//! - **not applicable**: the cases listed in [`NOT_HERE`], each with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Node, Opts};

/// The hive test chain's id (tests/rpc-compat/README.md).
const HIVE_CHAIN_ID: &str = "3503995874084926";

/// The hive chain's head block.
const HIVE_HEAD: u64 = 0x36;

/// Cases that cannot apply to this chain, and why.
const NOT_HERE: &[(&str, &str)] = &[
    (
        "eth_sendRawTransaction/send-blob-tx.io",
        "blob transactions (type 3) do not exist on an OP L2",
    ),
    (
        "eth_sendRawTransaction/send-access-list-transaction.io",
        "its fee cap (0.027 gwei) is below this chain's base fee, which starts at 1 gwei",
    ),
    (
        "eth_sendRawTransaction/send-dynamic-fee-access-list-transaction.io",
        "its fee cap (0.027 gwei) is below this chain's base fee, which starts at 1 gwei",
    ),
    (
        "eth_sendRawTransaction/send-dynamic-fee-transaction.io",
        "its fee cap (0.027 gwei) is below this chain's base fee, which starts at 1 gwei",
    ),
    (
        "eth_sendRawTransaction/send-legacy-transaction.io",
        "its gas price (0.027 gwei) is below this chain's base fee, which starts at 1 gwei",
    ),
    (
        "eth_call/call-revert-abi-error.io",
        "calls a contract of the hive chain's genesis that this chain does not have",
    ),
    (
        "eth_call/call-revert-abi-panic.io",
        "calls a contract of the hive chain's genesis that this chain does not have",
    ),
    (
        "eth_estimateGas/estimate-call-abi-error.io",
        "calls a contract of the hive chain's genesis that this chain does not have",
    ),
    (
        "eth_estimateGas/estimate-failed-call.io",
        "calls a contract of the hive chain's genesis that this chain does not have",
    ),
    (
        "eth_estimateGas/estimate-with-eip4844.io",
        "blob fields (type 3) do not exist on an OP L2",
    ),
    (
        "eth_estimateGas/estimate-with-eip7702.io",
        "its sender has funds on the hive chain only, and set-code authorizations are not offered yet",
    ),
    (
        "eth_call/call-callenv-options-eip1559.io",
        "its fee cap (0.027 gwei) is below this chain's base fee, which starts at 1 gwei",
    ),
    (
        "eth_getTransactionByHash/get-blob-tx.io",
        "blob transactions (type 3) do not exist on an OP L2",
    ),
    (
        "eth_getTransactionReceipt/get-blob-tx.io",
        "blob transactions (type 3) do not exist on an OP L2",
    ),
    (
        "eth_getTransactionByHash/get-setcode-tx.io",
        "set-code transactions (type 4) are not offered yet",
    ),
    (
        "eth_getTransactionReceipt/get-setcode-tx.io",
        "set-code transactions (type 4) are not offered yet",
    ),
];

/// Fields of the hive chain's answers that an OP L2 does not have, and why.
const ABSENT_FIELDS: &[(&str, &str)] = &[
    ("blobGasUsed", "no blob transactions on an OP L2"),
    ("excessBlobGas", "no blob transactions on an OP L2"),
    ("blobGasPrice", "no blob transactions on an OP L2"),
    ("baseFeePerBlobGas", "no blob transactions on an OP L2"),
    ("blobGasUsedRatio", "no blob transactions on an OP L2"),
    ("blobVersionedHashes", "no blob transactions on an OP L2"),
    ("maxFeePerBlobGas", "no blob transactions on an OP L2"),
    (
        "authorizationList",
        "set-code transactions are not offered yet",
    ),
    (
        "requestsHash",
        "no EIP-7685 execution-layer requests on an OP L2",
    ),
    ("parentBeaconBlockRoot", "no beacon chain behind this L2"),
    (
        "root",
        "pre-Byzantium receipts (the hive chain's first blocks) carry a state root; this chain starts after Byzantium and reports status",
    ),
];

/// One request and the answer the case expects.
struct Exchange {
    request: Value,
    response: Value,
}

fn parse_case(text: &str) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut request = None;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix(">>") {
            request = Some(serde_json::from_str(r.trim()).expect("case request is JSON"));
        } else if let Some(r) = line.strip_prefix("<<") {
            let response = serde_json::from_str(r.trim()).expect("case response is JSON");
            out.push(Exchange {
                request: request.take().expect("a response follows a request"),
                response,
            });
        }
    }
    out
}

fn is_quantity(s: &str) -> bool {
    s.strip_prefix("0x").is_some_and(|h| {
        !h.is_empty()
            && h.chars().all(|c| c.is_ascii_hexdigit())
            && (h == "0" || !h.starts_with('0'))
    })
}

fn is_data(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() % 2 == 0 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// What kind of value `want` is, as the spec's types go.
fn kind(want: &str) -> &'static str {
    match want.len() {
        66 if is_data(want) => "hash",
        42 if is_data(want) => "address",
        _ if is_quantity(want) && !is_data(want) => "quantity",
        _ if is_quantity(want) => "quantity-or-data",
        _ if is_data(want) => "data",
        _ => "string",
    }
}

fn same_kind(want: &str, got: &str) -> bool {
    match kind(want) {
        "hash" => got.len() == 66 && is_data(got),
        "address" => got.len() == 42 && is_data(got),
        "quantity" => is_quantity(got),
        "quantity-or-data" => is_quantity(got) || is_data(got),
        "data" => is_data(got),
        _ => true,
    }
}

/// Compare shapes; push each difference (with its JSON path) to `diffs`.
fn shape(path: &str, want: &Value, got: &Value, diffs: &mut Vec<String>) {
    match (want, got) {
        (Value::Null, Value::Null) => {}
        (Value::Bool(_), Value::Bool(_)) | (Value::Number(_), Value::Number(_)) => {}
        (Value::String(w), Value::String(g)) => {
            if !same_kind(w, g) {
                diffs.push(format!("{path}: want a {} like {w}, got {g}", kind(w)));
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            // Lists of transactions mix types: compare with one of the same type (an OP block
            // opens with a deposit, which has no signature fields).
            let Some(w0) = w.first() else { return };
            let g0 = match w0.get("type") {
                Some(t) => g.iter().find(|x| x.get("type") == Some(t)),
                None => g.first(),
            };
            if let Some(g0) = g0 {
                shape(&format!("{path}[0]"), w0, g0, diffs);
            }
        }
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                if ABSENT_FIELDS.iter().any(|(f, _)| f == k) {
                    continue;
                }
                match g.get(k) {
                    None => diffs.push(format!("{path}.{k}: missing")),
                    // Null stands for "none" in either answer (a contract address, a `to`).
                    Some(gv) if wv.is_null() || gv.is_null() => {}
                    Some(gv) => shape(&format!("{path}.{k}"), wv, gv, diffs),
                }
            }
        }
        _ => diffs.push(format!("{path}: want {want}, got {got}")),
    }
}

/// Whether the expected answer is independent of the hive chain's history, so it must match
/// exactly.
fn exact(method: &str, want: &Value) -> bool {
    if want.get("error").is_some() {
        return true;
    }
    let r = &want["result"];
    match method {
        "eth_chainId" | "net_version" | "eth_syncing" | "eth_blockNumber" => true,
        _ => {
            r.is_null()
                || r == "0x0"
                || r == "0x"
                || r == "0x0000000000000000000000000000000000000000000000000000000000000000"
        }
    }
}

/// The hive chain's blocks and transactions the cases name, learnt from the cases' answers:
/// block hash → number, transaction hash → type.
#[derive(Default)]
struct HiveEntities {
    blocks: BTreeMap<String, u64>,
    txs: BTreeMap<String, String>,
}

impl HiveEntities {
    fn learn(&mut self, v: &Value) {
        match v {
            Value::Object(o) => {
                let num = |k: &str| {
                    o.get(k)
                        .and_then(Value::as_str)
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                };
                if let (Some(Value::String(h)), Some(n)) = (o.get("hash"), num("number")) {
                    self.blocks.insert(h.clone(), n);
                }
                if let (Some(Value::String(h)), Some(n)) = (o.get("blockHash"), num("blockNumber"))
                {
                    self.blocks.insert(h.clone(), n);
                }
                if let (Some(Value::String(h)), Some(n)) = (o.get("parentHash"), num("number"))
                    && n > 0
                {
                    self.blocks.insert(h.clone(), n - 1);
                }
                if let Some(Value::String(t)) = o.get("type") {
                    let h = if o.contains_key("transactionIndex") && o.contains_key("from") {
                        o.get("transactionHash").or_else(|| o.get("hash"))
                    } else {
                        None
                    };
                    if let Some(Value::String(h)) = h {
                        self.txs.insert(h.clone(), t.clone());
                    }
                }
                o.values().for_each(|x| self.learn(x));
            }
            Value::Array(a) => a.iter().for_each(|x| self.learn(x)),
            _ => {}
        }
    }
}

/// Replace the hive chain's block and transaction hashes in a request by this chain's block
/// of the same number and transaction of the same type.
fn rewrite(
    v: &mut Value,
    hive: &HiveEntities,
    our_blocks: &BTreeMap<u64, String>,
    our_txs: &BTreeMap<String, String>,
) {
    match v {
        Value::String(s) => {
            if let Some(t) = hive.txs.get(s.as_str()) {
                if let Some(ours) = our_txs.get(t) {
                    *s = ours.clone();
                }
            } else if let Some(n) = hive.blocks.get(s.as_str())
                && let Some(ours) = our_blocks.get(n)
            {
                *s = ours.clone();
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| rewrite(x, hive, our_blocks, our_txs)),
        Value::Object(o) => o
            .values_mut()
            .for_each(|x| rewrite(x, hive, our_blocks, our_txs)),
        _ => {}
    }
}

/// Sign and send one transaction of each type the cases read back (legacy create with
/// input, EIP-2930, EIP-1559); answers type → hash once all are mined.
async fn typed_transactions(n: &Node) -> BTreeMap<String, String> {
    use alloy_primitives::{TxKind, U256};
    use alloy_signer::SignerSync;
    use commons_ledger::alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy};
    use commons_ledger::alloy_eips::eip2718::Encodable2718;
    use commons_ledger::op_alloy_consensus::OpTxEnvelope;
    let chain_id: u64 = HIVE_CHAIN_ID.parse().expect("chain id");
    let key = commons::auth::dev_key(3).expect("dev3");
    let to = commons::auth::dev_key(4).expect("dev4").address();
    // A contract that returns 32 bytes of its constructor input: a create with input.
    let init = alloy_primitives::hex::decode("600d380380600d6000396000f3602a60005260206000f3")
        .expect("hex");
    let gas_price = 100_000_000_000u128;
    let legacy = TxLegacy {
        chain_id: Some(chain_id),
        nonce: 0,
        gas_price,
        gas_limit: 200_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: init.into(),
    };
    let sig = key.sign_hash_sync(&legacy.signature_hash()).expect("sign");
    let legacy = OpTxEnvelope::Legacy(legacy.into_signed(sig)).encoded_2718();
    let access = TxEip2930 {
        chain_id,
        nonce: 1,
        gas_price,
        gas_limit: 60_000,
        to: TxKind::Call(to),
        value: U256::from(2u8),
        input: Default::default(),
        access_list: vec![commons_ledger::alloy_eips::eip2930::AccessListItem {
            address: to,
            storage_keys: vec![Default::default()],
        }]
        .into(),
    };
    let sig = key.sign_hash_sync(&access.signature_hash()).expect("sign");
    let access = OpTxEnvelope::Eip2930(access.into_signed(sig)).encoded_2718();
    let dynamic = TxEip1559 {
        chain_id,
        nonce: 2,
        gas_limit: 21_000,
        max_fee_per_gas: gas_price,
        max_priority_fee_per_gas: 1_000_000,
        to: TxKind::Call(to),
        value: U256::from(3u8),
        input: Default::default(),
        access_list: Default::default(),
    };
    let sig = key.sign_hash_sync(&dynamic.signature_hash()).expect("sign");
    let dynamic = OpTxEnvelope::Eip1559(dynamic.into_signed(sig)).encoded_2718();
    let mut out = BTreeMap::new();
    for (ty, raw) in [("0x0", legacy), ("0x1", access), ("0x2", dynamic)] {
        let v = rpc(
            n,
            json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                   "params": [alloy_primitives::hex::encode_prefixed(raw)]}),
        )
        .await;
        let hash = v["result"].as_str().unwrap_or_else(|| panic!("send: {v}"));
        out.insert(ty.to_string(), hash.to_string());
    }
    for hash in out.values() {
        let mut mined = false;
        for _ in 0..200 {
            let r = rpc(
                n,
                json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [hash]}),
            )
            .await;
            if !r["result"].is_null() {
                mined = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(mined, "{hash} was not mined");
    }
    out
}

async fn rpc(n: &Node, body: Value) -> Value {
    let r = n
        .http()
        .post(n.at("/rpc"))
        .json(&body)
        .send()
        .await
        .expect("rpc");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn execution_apis_conformance_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rpc-compat");
    let n = Node::start(Opts::args(&[
        "--block-time",
        "0",
        "--chain-id",
        HIVE_CHAIN_ID,
    ]));
    // As many blocks as the hive chain has (head 0x36: the cases' ranges and "latest" depend
    // on it): one per transaction, three typed ones below and these transfers.
    let to = format!("{}", commons::auth::dev_key(1).expect("dev1").address());
    for _ in 0..(HIVE_HEAD - 3) {
        let out = crate::support::command()
            .args([
                "--node", &n.url, "--key", "dev0", "ledger", "send", &to, "0.001",
            ])
            .output()
            .expect("run commons ledger send");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cases: BTreeMap<String, String> = BTreeMap::new();
    for dir in std::fs::read_dir(&root).expect("tests/rpc-compat") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("method dir") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "io") {
                let name = format!(
                    "{}/{}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    f.file_name().unwrap_or_default().to_string_lossy()
                );
                cases.insert(name, std::fs::read_to_string(&f).expect("read case"));
            }
        }
    }
    assert!(cases.len() >= 80, "only {} cases found", cases.len());
    let mut hive = HiveEntities::default();
    for text in cases.values() {
        for ex in parse_case(text) {
            hive.learn(&ex.response);
        }
    }
    let our_txs = typed_transactions(&n).await;
    let head = rpc(
        &n,
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}),
    )
    .await;
    assert_eq!(
        head["result"],
        json!(format!("0x{HIVE_HEAD:x}")),
        "the chain should be as long as the hive chain"
    );
    let mut our_blocks = BTreeMap::new();
    for number in hive.blocks.values() {
        let b = rpc(
            &n,
            json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                   "params": [format!("0x{number:x}"), false]}),
        )
        .await;
        let hash = b["result"]["hash"]
            .as_str()
            .unwrap_or_else(|| panic!("this chain lacks block {number}: {b}"));
        our_blocks.insert(*number, hash.to_string());
    }
    let (mut exact_n, mut shape_n, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, text) in &cases {
        if let Some((_, why)) = NOT_HERE.iter().find(|(c, _)| c == name) {
            eprintln!("not applicable: {name}: {why}");
            skipped += 1;
            continue;
        }
        for mut ex in parse_case(text) {
            let method = ex.request["method"].as_str().expect("method").to_string();
            rewrite(&mut ex.request, &hive, &our_blocks, &our_txs);
            let got = rpc(&n, ex.request.clone()).await;
            if got["id"] != ex.response["id"] || got["jsonrpc"] != "2.0" {
                failures.push(format!("{name}: envelope {got}"));
                continue;
            }
            let want = &ex.response;
            if exact(&method, want) {
                exact_n += 1;
                let same = match (want.get("error"), got.get("error")) {
                    (Some(w), Some(g)) => w["code"] == g["code"] && w["message"] == g["message"],
                    (None, None) => {
                        want["result"] == got["result"]
                            || (method == "eth_chainId"
                                && got["result"]
                                    == json!(format!(
                                        "0x{:x}",
                                        HIVE_CHAIN_ID.parse::<u64>().unwrap_or(0)
                                    )))
                    }
                    _ => false,
                };
                if !same {
                    failures.push(format!("{name} (exact): want {want}\n      got {got}"));
                }
            } else {
                shape_n += 1;
                let mut diffs = Vec::new();
                match (want.get("result"), got.get("result"), got.get("error")) {
                    (Some(w), Some(g), None) => shape("result", w, g, &mut diffs),
                    _ => diffs.push(format!("want a result, got {got}")),
                }
                if !diffs.is_empty() {
                    failures.push(format!("{name} (shape): {}", diffs.join("; ")));
                }
            }
        }
    }
    eprintln!(
        "execution-apis cases: {exact_n} exact, {shape_n} by shape, {skipped} not applicable"
    );
    assert!(
        failures.is_empty(),
        "{} of the execution-apis cases fail:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
