//! The ledger through its real interfaces: JSON-RPC on `/rpc` and on the `--rpc` listener
//! (wire shapes, batches, the error codes and messages clients rely on), real clients
//! (web3.py, viem), the `commons ledger` CLI, and derivation from DA after a graceful stop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use commons_ledger::alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use commons_ledger::alloy_eips::eip2718::Encodable2718;
use commons_ledger::op_alloy_consensus::OpTxEnvelope;
use serde_json::{Value, json};

use crate::support::{Node, Opts, run_bounded};

fn required() -> bool {
    std::env::var_os("COMMONS_E2E_REQUIRED").is_some()
}

fn skip(what: &str) {
    assert!(!required(), "{what} is missing (run `cargo xtask prepare`)");
    eprintln!("SKIPPED: {what} is missing; `cargo xtask prepare` installs it");
}

fn artifact() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger/testdata/store.json")
}

async fn rpc_at(n: &Node, url: &str, body: &Value) -> Value {
    let r = n
        .http()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("rpc request");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("rpc json")
}

/// One call on `/rpc`; the whole response object.
async fn call(n: &Node, method: &str, params: Value) -> Value {
    rpc_at(
        n,
        &n.at("/rpc"),
        &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
}

async fn result(n: &Node, method: &str, params: Value) -> Value {
    let v = call(n, method, params).await;
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

async fn error(n: &Node, method: &str, params: Value) -> (i64, String, Value) {
    let v = call(n, method, params).await;
    let e = &v["error"];
    assert!(e.is_object(), "{method} should fail: {v}");
    (
        e["code"].as_i64().expect("code"),
        e["message"].as_str().expect("message").to_string(),
        e["data"].clone(),
    )
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16).expect("quantity")
}

fn dev(i: u32) -> alloy_signer_local::PrivateKeySigner {
    commons::auth::dev_key(i).expect("dev key")
}

fn eip1559(
    key: u32,
    nonce: u64,
    to: Option<Address>,
    value: U256,
    data: Vec<u8>,
    gas: u64,
) -> String {
    let tx = TxEip1559 {
        chain_id: 1612,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        to: to.map(TxKind::Call).unwrap_or(TxKind::Create),
        value,
        input: data.into(),
        access_list: Default::default(),
    };
    let sig = dev(key).sign_hash_sync(&tx.signature_hash()).expect("sign");
    alloy_primitives::hex::encode_prefixed(
        OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718(),
    )
}

async fn wait_receipt(n: &Node, hash: &Value) -> Value {
    for _ in 0..300 {
        let r = result(n, "eth_getTransactionReceipt", json!([hash])).await;
        if !r.is_null() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{hash} was not mined in 15 s");
}

#[tokio::test]
async fn json_rpc_methods_batches_and_errors() {
    let n = Node::start(Opts::args(&["--block-time", "0", "--rpc", "127.0.0.1:0"]));
    assert_eq!(result(&n, "eth_chainId", json!([])).await, json!("0x64c"));
    assert_eq!(result(&n, "net_version", json!([])).await, json!("1612"));
    assert_eq!(result(&n, "eth_syncing", json!([])).await, json!(false));
    assert!(
        result(&n, "web3_clientVersion", json!([]))
            .await
            .as_str()
            .expect("s")
            .starts_with("Commons/")
    );
    let accounts = result(&n, "eth_accounts", json!([])).await;
    assert_eq!(accounts.as_array().expect("list").len(), 10);
    let dev0 = dev(0).address();
    let bal = result(&n, "eth_getBalance", json!([dev0, "latest"])).await;
    assert_eq!(
        bal,
        json!(format!("{:#x}", U256::from(1_000_000u128 * 10u128.pow(18))))
    );

    // The separate listener answers the same, and batches come back in order.
    let listener = n.info["rpc_listener"]
        .as_str()
        .expect("rpc listener")
        .to_string();
    let batch = rpc_at(
        &n,
        &listener,
        &json!([
            {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 8, "method": "nope_nothing", "params": []},
            {"jsonrpc": "2.0", "id": 9, "method": "eth_blockNumber"},
        ]),
    )
    .await;
    let b = batch.as_array().expect("batch");
    assert_eq!(b.len(), 3);
    assert_eq!(b[0]["id"], 7);
    assert_eq!(b[0]["result"], "0x64c");
    assert_eq!(b[1]["error"]["code"], -32601);
    assert_eq!(b[2]["id"], 9);
    let bad = n
        .http()
        .post(n.at("/rpc"))
        .body("{not json")
        .send()
        .await
        .expect("send");
    let bad: Value = bad.json().await.expect("json");
    assert_eq!(bad["error"]["code"], -32700);

    // A transfer, mined at once with --block-time 0.
    let to = Address::repeat_byte(0x42);
    let raw = eip1559(0, 0, Some(to), U256::from(5u64), vec![], 21_000);
    let hash = result(&n, "eth_sendRawTransaction", json!([raw])).await;
    let r = wait_receipt(&n, &hash).await;
    assert_eq!(r["status"], "0x1");
    assert_eq!(r["type"], "0x2");
    assert_eq!(
        r["transactionIndex"], "0x1",
        "tx 0 is the L1-attributes deposit"
    );
    // How this process sealed its blocks (what `commons bench ledger` reads). A block's
    // timing is recorded just after its commit, so the receipt can come first.
    let mined = hex_u64(&r["blockNumber"]);
    let listed = |t: &Value| {
        t["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["number"].as_u64() == Some(mined) && b["txs"] == 1)
        })
    };
    let mut timings = n.get_ok("/api/v1/ledger/timings?after=0").await;
    for _ in 0..50 {
        if listed(&timings) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        timings = n.get_ok("/api/v1/ledger/timings?after=0").await;
    }
    assert!(listed(&timings), "block {mined} is not in {timings}");
    let sealed: Vec<&Value> = timings["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|b| b["txs"].as_u64() > Some(0))
        .collect();
    for b in &sealed {
        for part in [
            "execute_ms",
            "state_root_ms",
            "state_root_cpu_ms",
            "state_writes_ms",
            "store_ms",
            "commit_ms",
        ] {
            assert!(b[part].as_f64().is_some_and(|ms| ms >= 0.0), "{part}: {b}");
        }
        assert!(b["checkpoint"].is_boolean(), "checkpoint: {b}");
    }
    // The transfer's block changed at least its sender, its recipient and the fee vaults,
    // and rewrote trie nodes for them.
    let block = sealed
        .iter()
        .find(|b| b["number"].as_u64() == Some(mined))
        .expect("the transfer's block");
    assert!(block["accounts"].as_u64() >= Some(3), "accounts: {block}");
    assert!(
        block["trie_nodes"].as_u64() >= Some(3),
        "trie_nodes: {block}"
    );
    // Rewriting and hashing those nodes took some CPU time, measured on the threads.
    assert!(
        block["state_root_cpu_ms"].as_f64() > Some(0.0),
        "state_root_cpu_ms: {block}"
    );
    let last = sealed
        .last()
        .and_then(|b| b["number"].as_u64())
        .expect("number");
    let later = n
        .get_ok(&format!("/api/v1/ledger/timings?after={last}"))
        .await;
    assert!(
        later["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|b| b["number"].as_u64() > Some(last)),
        "{later}"
    );
    let tx = result(&n, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(
        tx["from"].as_str().map(str::to_lowercase),
        Some(format!("{dev0:#x}"))
    );
    assert_eq!(tx["nonce"], "0x0");
    let block = result(&n, "eth_getBlockByNumber", json!([r["blockNumber"], true])).await;
    for k in [
        "baseFeePerGas",
        "stateRoot",
        "receiptsRoot",
        "logsBloom",
        "withdrawalsRoot",
        "mixHash",
        "gasLimit",
    ] {
        assert!(block[k].is_string(), "block lacks {k}: {block}");
    }
    assert_eq!(hex_u64(&block["gasLimit"]), 30_000_000);
    let deposit = &block["transactions"][0];
    assert_eq!(deposit["type"], "0x7e");
    assert_eq!(
        deposit["to"].as_str().map(str::to_lowercase).as_deref(),
        Some("0x4200000000000000000000000000000000000015")
    );
    let by_hash = result(&n, "eth_getBlockByHash", json!([block["hash"], false])).await;
    assert_eq!(by_hash["transactions"][1], hash);
    assert_eq!(
        result(&n, "eth_getTransactionCount", json!([dev0, "pending"])).await,
        json!("0x1")
    );
    let fees = result(&n, "eth_feeHistory", json!(["0x2", "latest", [25, 75]])).await;
    assert_eq!(fees["baseFeePerGas"].as_array().expect("fees").len(), 3);
    let out = result(&n, "optimism_outputAtBlock", json!([r["blockNumber"]])).await;
    assert!(out["outputRoot"].is_string(), "{out}");
    assert_eq!(out["blockRef"]["hash"], r["blockHash"]);
    let cfg = result(&n, "optimism_rollupConfig", json!([])).await;
    assert_eq!(cfg["l2_chain_id"], 1612);
    let proof = result(&n, "eth_getProof", json!([dev0, ["0x0"], "latest"])).await;
    assert!(!proof["accountProof"].as_array().expect("proof").is_empty());

    // The errors clients match on.
    let (code, msg, _) = error(&n, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!((code, msg.as_str()), (-32000, "already known"));
    let again = eip1559(0, 0, Some(to), U256::from(6u64), vec![], 21_000);
    let (code, msg, _) = error(&n, "eth_sendRawTransaction", json!([again])).await;
    assert_eq!(code, -32000);
    assert!(msg.starts_with("nonce too low"), "{msg}");
    let rich = eip1559(1, 0, Some(to), U256::from(10u128.pow(27)), vec![], 21_000);
    let (_, msg, _) = error(&n, "eth_sendRawTransaction", json!([rich])).await;
    assert!(
        msg.starts_with("insufficient funds for gas * price + value"),
        "{msg}"
    );
    let (code, msg, _) = error(&n, "eth_sendRawTransaction", json!(["0x02c0"])).await;
    assert_eq!(code, -32000);
    assert!(msg.starts_with("rlp"), "{msg}");
    let (code, _, _) = error(&n, "eth_sendRawTransaction", json!(["zz"])).await;
    assert_eq!(code, -32602);
    let other_chain = {
        let tx = TxLegacy {
            chain_id: Some(1),
            nonce: 0,
            gas_price: 100_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value: U256::ZERO,
            input: Default::default(),
        };
        let sig = dev(2).sign_hash_sync(&tx.signature_hash()).expect("sign");
        alloy_primitives::hex::encode_prefixed(
            OpTxEnvelope::Legacy(tx.into_signed(sig)).encoded_2718(),
        )
    };
    let (_, msg, _) = error(&n, "eth_sendRawTransaction", json!([other_chain])).await;
    assert!(msg.starts_with("invalid chain id"), "{msg}");
    let big = eip1559(
        1,
        0,
        Some(to),
        U256::ZERO,
        vec![1u8; 130 * 1024],
        16_000_000,
    );
    let (_, msg, _) = error(&n, "eth_sendRawTransaction", json!([big])).await;
    assert!(msg.starts_with("oversized data"), "{msg}");
    let (code, _, _) = error(&n, "eth_getBlockByNumber", json!(["lately", false])).await;
    assert_eq!(code, -32602);
    let (code, _, _) = error(
        &n,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0x30000"}]),
    )
    .await;
    assert!(code == -32005 || code == -32602, "{code}");
    let head = result(&n, "eth_blockNumber", json!([])).await;
    assert_eq!(
        result(
            &n,
            "eth_getBlockByNumber",
            json!([format!("{:#x}", hex_u64(&head) + 5), false])
        )
        .await,
        Value::Null
    );

    // Deploy the store contract, then a revert answers code 3 with the revert data.
    let art: Value = serde_json::from_str(&std::fs::read_to_string(artifact()).expect("artifact"))
        .expect("json");
    let code_hex = art["bytecode"].as_str().expect("bytecode");
    let init = alloy_primitives::hex::decode(code_hex).expect("hex");
    let h = result(
        &n,
        "eth_sendRawTransaction",
        json!([eip1559(0, 1, None, U256::ZERO, init, 300_000)]),
    )
    .await;
    let r = wait_receipt(&n, &h).await;
    let addr = r["contractAddress"].as_str().expect("created").to_string();
    let mut set0 = "0x60fe47b1".to_string();
    set0.push_str(&"0".repeat(64));
    let (code, msg, data) = error(
        &n,
        "eth_call",
        json!([{"to": addr, "data": set0}, "latest"]),
    )
    .await;
    assert_eq!(code, 3);
    assert_eq!(msg, "execution reverted: zero");
    assert!(
        data.as_str()
            .expect("revert data")
            .starts_with("0x08c379a0")
    );
    let (code, _, _) = error(&n, "eth_estimateGas", json!([{"to": addr, "data": set0}])).await;
    assert_eq!(code, 3);
    let gas = result(&n, "eth_estimateGas", json!([{"from": dev0, "to": addr, "data": "0x60fe47b1".to_string() + &format!("{:064x}", 5)}])).await;
    assert!(hex_u64(&gas) > 21_000);
    // Older blocks are answered from the change sets, proofs included.
    let genesis_balance = result(&n, "eth_getBalance", json!([dev0, "0x0"])).await;
    assert_eq!(
        genesis_balance
            .as_str()
            .and_then(|s| s.parse::<U256>().ok()),
        Some(U256::from(commons_ledger::genesis::DEV_ACCOUNT_OPEN))
    );
    // A proof at genesis: dev0's balance then, under block 0's state root.
    let old = result(&n, "eth_getProof", json!([dev0, ["0x0"], "0x0"])).await;
    assert_eq!(old["balance"], genesis_balance);
    assert_eq!(old["nonce"], "0x0");
    let root_node = old["accountProof"][0]
        .as_str()
        .and_then(|h| alloy_primitives::hex::decode(h).ok())
        .expect("root node");
    let genesis = result(&n, "eth_getBlockByNumber", json!(["0x0", false])).await;
    assert_eq!(
        json!(alloy_primitives::keccak256(&root_node)),
        genesis["stateRoot"]
    );
    let (code, msg, _) = error(&n, "eth_getProof", json!([dev0, [], "0xffffff"])).await;
    assert_eq!((code, msg.as_str()), (-32000, "header not found"));

    // A batch mixing transactions with other calls: each item answered in its place, the
    // transactions checked one by one (out of nonce order too), the good ones mined.
    let later = eip1559(4, 1, Some(to), U256::from(7u64), vec![], 21_000);
    let sooner = eip1559(4, 0, Some(to), U256::from(7u64), vec![], 21_000);
    let send = |id: u64, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": params});
    let batch = rpc_at(
        &n,
        &listener,
        &json!([
            send(1, json!([later])),
            {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
            send(3, json!([sooner])),
            send(4, json!([sooner])),
            send(5, json!(["0x02c0"])),
            send(6, json!(["zz"])),
            send(7, Value::Null),
            send(8, json!({"tx": sooner})),
        ]),
    )
    .await;
    let b = batch.as_array().expect("batch");
    assert_eq!(b.len(), 8, "{batch}");
    for (i, item) in b.iter().enumerate() {
        assert_eq!(item["id"], i + 1, "{batch}");
    }
    let hash_of = |raw: &str| {
        json!(alloy_primitives::keccak256(
            alloy_primitives::hex::decode(raw).expect("hex")
        ))
    };
    assert_eq!(b[0]["result"], hash_of(&later), "{batch}");
    assert_eq!(b[1]["result"], "0x64c");
    assert_eq!(b[2]["result"], hash_of(&sooner), "{batch}");
    assert_eq!(b[3]["error"]["message"], "already known", "{batch}");
    assert_eq!(b[4]["error"]["code"], -32000);
    assert!(
        b[4]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rlp")),
        "{batch}"
    );
    for bad_params in &b[5..8] {
        assert_eq!(bad_params["error"]["code"], -32602, "{batch}");
    }
    for h in [&b[2]["result"], &b[0]["result"]] {
        assert_eq!(wait_receipt(&n, h).await["status"], "0x1");
    }
}

fn python_with_web3() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    [venv, PathBuf::from("python3")].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import web3"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn run_client(mut c: Command, what: &str) -> Value {
    let out = run_bounded(
        {
            c.env_remove("NODE_OPTIONS");
            c
        },
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{what} printed {stdout}: {e}"))
}

#[tokio::test]
async fn web3py_transfers_deploys_calls_and_reads_logs() {
    let Some(py) = python_with_web3() else {
        skip("python3 with web3");
        return;
    };
    let n = Node::start(Opts::args(&["--block-time", "0"]));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ledger_clients/web3_client.py");
    let mut c = Command::new(py);
    c.arg(script).arg(n.at("/rpc")).arg(artifact());
    let v = run_client(c, "web3_client.py");
    assert_eq!(v["connected"], true, "{v}");
    assert_eq!(v["chain_id"], 1612, "{v}");
    assert_eq!(v["transfer_status"], 1, "{v}");
    assert_eq!(v["transfer_received"], "1500000000000000000", "{v}");
    assert_eq!(v["legacy_status"], 1, "{v}");
    assert_eq!(v["deploy_status"], 1, "{v}");
    assert_eq!(v["code_matches"], true, "{v}");
    assert_eq!(v["get_before"], 0, "{v}");
    assert_eq!(v["set_status"], 1, "{v}");
    assert_eq!(v["get_after"], 7, "{v}");
    assert_eq!(v["event_x"], 7, "{v}");
    assert_eq!(v["get_logs"], json!([7]), "{v}");
    assert_eq!(v["raw_logs"], 1, "{v}");
    assert!(
        v["revert"]
            .as_str()
            .is_some_and(|m| m.contains("execution reverted: zero")),
        "{v}"
    );
    assert!(
        v["nonce_error"]
            .as_str()
            .is_some_and(|m| m.contains("nonce too low")),
        "{v}"
    );
    assert!(
        v["funds_error"]
            .as_str()
            .is_some_and(|m| m.contains("insufficient funds for gas * price + value")),
        "{v}"
    );
    assert_eq!(v["fee_history"], 5, "{v}");
}

#[tokio::test]
async fn viem_transfers_deploys_calls_and_reads_logs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ledger_clients");
    if !dir.join("node_modules/viem").exists() {
        skip("viem (npm install in tests/ledger_clients)");
        return;
    }
    let n = Node::start(Opts::args(&["--block-time", "0"]));
    let mut c = Command::new("node");
    c.current_dir(&dir)
        .arg("viem_client.mjs")
        .arg(n.at("/rpc"))
        .arg(artifact());
    let v = run_client(c, "viem_client.mjs");
    assert_eq!(v["chainId"], 1612, "{v}");
    assert_eq!(v["transferStatus"], "success", "{v}");
    assert_eq!(v["received"], "2000000000000000000", "{v}");
    assert_eq!(v["deployStatus"], "success", "{v}");
    assert_eq!(v["setStatus"], "success", "{v}");
    assert_eq!(v["get"], "9", "{v}");
    assert_eq!(v["events"], json!(["9"]), "{v}");
    assert!(
        v["revert"].as_str().is_some_and(|m| m.contains("zero")),
        "{v}"
    );
    assert!(
        v["nonceError"]
            .as_str()
            .is_some_and(|m| m.to_lowercase().contains("nonce")),
        "{v}"
    );
    assert_eq!(v["blockHasBaseFee"], true, "{v}");
}

#[tokio::test]
async fn cli_sends_deposits_and_derives_the_same_chain_from_da() {
    let blocks: u64 = std::env::var("COMMONS_DERIVE_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut n = Node::start(Opts::args(&["--block-time", "0"]));
    let to = Address::repeat_byte(0x99);
    let v = n.cli_json(&[
        "--key",
        "dev3",
        "ledger",
        "send",
        &format!("{to:#x}"),
        "2.5",
    ]);
    assert_eq!(v["status"], 1, "{v}");
    let plain_tx = v["hash"].as_str().expect("hash").to_string();
    let v = n.cli_json(&["ledger", "balance", &format!("{to:#x}")]);
    assert_eq!(v["balance"], "2.5", "{v}");
    // A withdrawal to L1: OPEN sent to the message passer, then its proof for L1.
    let passer = "0x4200000000000000000000000000000000000016";
    let w = n.cli_json(&["--key", "dev3", "ledger", "send", passer, "1.5"]);
    assert_eq!(w["status"], 1, "{w}");
    let wtx = w["hash"].as_str().expect("hash").to_string();
    let p = n.cli_json(&["ledger", "withdrawal", &wtx]);
    assert_eq!(p["initiated_in_block"], w["block"], "{p}");
    let at = format!("{:#x}", p["l2_block"].as_u64().expect("l2_block"));
    let output = result(&n, "optimism_outputAtBlock", json!([at])).await;
    assert_eq!(p["output_root"], output["outputRoot"], "{p}");
    assert_eq!(
        p["output_root_proof"]["message_passer_storage_root"],
        output["withdrawalStorageRoot"]
    );
    let dev3 = format!("{:#x}", dev(3).address());
    let item = &p["withdrawals"][0];
    assert_eq!(
        item["sender"].as_str().map(str::to_lowercase),
        Some(dev3.clone())
    );
    assert_eq!(item["target"].as_str().map(str::to_lowercase), Some(dev3));
    assert_eq!(item["value_open"], "1.5");
    // The passer's storage proves the slot through eth_getProof as OP tooling asks for it.
    let proof = result(
        &n,
        "eth_getProof",
        json!([passer, [item["storage_slot"]], at]),
    )
    .await;
    assert_eq!(proof["storageProof"][0]["value"], "0x1");
    assert_eq!(proof["storageProof"][0]["proof"], item["proof"]);
    let err = n.cli_fails(&["ledger", "withdrawal", &wtx, "--block", "1"]);
    assert!(err.contains("cannot prove"), "{err}");
    let (status, body) = n
        .get(&format!("/api/v1/ledger/withdrawals/{plain_tx}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no withdrawal")),
        "{body}"
    );
    let v = n.cli_json(&[
        "ledger",
        "deposit",
        "--to",
        &format!("{to:#x}"),
        "--amount",
        "4",
    ]);
    assert!(v["queued"].is_number(), "{v}");
    // Contracts and deposits among many blocks: one block per transaction.
    let art: Value = serde_json::from_str(&std::fs::read_to_string(artifact()).expect("artifact"))
        .expect("json");
    let init =
        alloy_primitives::hex::decode(art["bytecode"].as_str().expect("bytecode")).expect("hex");
    let deploy = result(
        &n,
        "eth_sendRawTransaction",
        json!([eip1559(4, 0, None, U256::ZERO, init, 300_000)]),
    )
    .await;
    let addr: Address = wait_receipt(&n, &deploy).await["contractAddress"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("address");
    let mut nonce = 1u64;
    let mut last = Value::Null;
    while hex_u64(&result(&n, "eth_blockNumber", json!([])).await) < blocks {
        let data = if nonce.is_multiple_of(2) {
            let mut d = vec![0x60, 0xfe, 0x47, 0xb1];
            d.extend_from_slice(&U256::from(nonce).to_be_bytes::<32>());
            d
        } else {
            Vec::new()
        };
        let target = if nonce.is_multiple_of(2) { addr } else { to };
        last = result(
            &n,
            "eth_sendRawTransaction",
            json!([eip1559(
                4,
                nonce,
                Some(target),
                U256::from(1u64),
                data,
                100_000
            )]),
        )
        .await;
        nonce += 1;
        // Keep within the pool's per-sender window.
        if nonce.is_multiple_of(32) {
            wait_receipt(&n, &last).await;
        }
        if nonce.is_multiple_of(100) {
            let body = json!({"to": format!("{to:#x}"), "mint": "0x1000"});
            let (status, _) = n.post("/api/v1/ledger/deposits", &body).await;
            assert_eq!(status, 202);
            wait_receipt(&n, &last).await;
        }
    }
    wait_receipt(&n, &last).await;
    let status = n.cli_json(&["ledger", "status"]);
    assert!(status["head"].as_u64().expect("head") >= blocks, "{status}");
    // The state after a thousand blocks, rebuilt from every account and slot, gives the
    // root its header holds; only the admin may ask for the pass over the whole state.
    let check = n.cli_json(&["ledger", "verify"]);
    assert_eq!(check["ok"], true, "{check}");
    let checked = check["block"].as_u64().expect("block");
    assert!(checked >= blocks, "{check}");
    let header = result(
        &n,
        "eth_getBlockByNumber",
        json!([format!("{checked:#x}"), false]),
    )
    .await;
    assert_eq!(check["rebuilt_root"], header["stateRoot"], "{check}");
    assert!(check["slots"].as_u64().expect("slots") > 0, "{check}");
    let (status, body) = n.post("/api/v1/ledger/verify", &json!({})).await;
    assert_eq!(status, 401, "{body}");
    let err = n.cli_fails(&["--admin-token", "wrong", "ledger", "verify"]);
    assert!(err.contains("admin token"), "{err}");
    let head = result(&n, "eth_blockNumber", json!([])).await;
    let expected = result(&n, "optimism_outputAtBlock", json!([head])).await;
    let da = n.data_dir.join("da");
    assert!(n.stop().success(), "graceful stop");
    // The follower: a new data dir, DA alone.
    let v = derive(&da, &n.scratch().join("follower"));
    assert_eq!(v["block"].as_u64(), Some(hex_u64(&head)), "{v}");
    assert_eq!(v["output_root"], expected["outputRoot"], "{v}");
}

/// Derive `da` into a new data dir with the CLI; the `--json` line.
fn derive(da: &Path, into: &Path) -> Value {
    let mut c = crate::support::command();
    c.args(["ledger", "derive", "--json", "--da"])
        .arg(da)
        .arg("--data-dir")
        .arg(into);
    let out = run_bounded(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "derive failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("derive --json")
}

#[tokio::test]
async fn kill_9_during_block_production_loses_no_acknowledged_transaction() {
    let rounds: u64 = std::env::var("COMMONS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut n = Node::start(Opts::args(&["--block-time", "0"]));
    let key = 6u32;
    let from = dev(key).address();
    let to = Address::repeat_byte(0x66);
    let mut confirmed: Vec<(Value, Value)> = Vec::new();
    let mut seed = 0x5eed_u64;
    for round in 0..rounds {
        let mut nonce =
            hex_u64(&result(&n, "eth_getTransactionCount", json!([from, "pending"])).await);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let run_for = Duration::from_millis(150 + (seed >> 33) % 400);
        let started = std::time::Instant::now();
        let mut sent = Vec::new();
        while started.elapsed() < run_for {
            let raw = eip1559(key, nonce, Some(to), U256::from(1u64), Vec::new(), 21_000);
            let v = call(&n, "eth_sendRawTransaction", json!([raw])).await;
            if let Some(h) = v.get("result") {
                sent.push(h.clone());
                nonce += 1;
            }
            // Look up an older transaction than the newest: sending can run ahead of the
            // sequencer (one block per transaction), and a receipt must have been seen for a
            // transaction to count as acknowledged.
            if sent.len().is_multiple_of(8)
                && let Some(h) = sent.get(sent.len() / 2)
            {
                let r = result(&n, "eth_getTransactionReceipt", json!([h])).await;
                if !r.is_null() {
                    confirmed.push((h.clone(), r["blockHash"].clone()));
                }
            }
        }
        n.kill();
        n.restart();
        for (h, block) in &confirmed {
            let r = result(&n, "eth_getTransactionReceipt", json!([h])).await;
            assert!(
                !r.is_null(),
                "round {round}: acknowledged {h} is gone after kill -9"
            );
            assert_eq!(&r["blockHash"], block, "round {round}: {h} moved");
        }
    }
    assert!(!confirmed.is_empty(), "no receipt was ever seen");
    // Re-executing the chain from DA reaches the same output root.
    let head = result(&n, "eth_blockNumber", json!([])).await;
    let expected = result(&n, "optimism_outputAtBlock", json!([head])).await;
    let da = n.data_dir.join("da");
    assert!(n.stop().success(), "graceful stop");
    // On disk after all the kills, the stopped node's state is the one its head's root
    // names: rebuilt offline from every account and slot by `commons check`.
    let mut c = crate::support::command();
    c.args(["check", "--json", "--data-dir"]).arg(&n.data_dir);
    let out = run_bounded(c, Duration::from_secs(120));
    let report = crate::support::json_output(&out, &["check", "--json"]);
    let ledger = &report["ledger"];
    assert_eq!(ledger["integrity_ok"], true, "{report}");
    assert_eq!(ledger["ok"], true, "{report}");
    assert_eq!(ledger["block"].as_u64(), Some(hex_u64(&head)), "{report}");
    let v = derive(&da, &n.scratch().join("follower"));
    assert_eq!(v["block"].as_u64(), Some(hex_u64(&head)), "{v}");
    assert_eq!(v["output_root"], expected["outputRoot"], "{v}");
}

alloy_sol_types::sol! {
    function versions(uint256 id, uint64 number) external view returns (bytes32 root, uint64 rowCount, uint64 publishedAt);
    function datanets(uint256 id) external view returns (address owner, bytes32 metadataHash, uint64 latestVersion);
}

/// eth_call of a DatanetRegistry view at the head, decoded.
async fn registry_call<C: alloy_sol_types::SolCall>(n: &Node, call: C) -> C::Return {
    let out = result(
        n,
        "eth_call",
        json!([{"to": "0xC0DE000000000000000000000000000000000001",
                "data": alloy_primitives::hex::encode_prefixed(call.abi_encode())}, "latest"]),
    )
    .await;
    let bytes = alloy_primitives::hex::decode(out.as_str().expect("hex")).expect("hex");
    C::abi_decode_returns(&bytes).expect("decode")
}

/// Polls a version (or, with `None`, the datanet) until its ledger record is settled.
async fn settled(n: &Node, slug: &str, version: Option<u64>) -> Value {
    let path = match version {
        Some(v) => format!("/api/v1/datanets/{slug}/versions/{v}"),
        None => format!("/api/v1/datanets/{slug}"),
    };
    for _ in 0..300 {
        let v = n.get_ok(&path).await;
        let status = v["ledger"]["status"].as_str().unwrap_or("").to_string();
        if status == "confirmed" || status == "failed" {
            return v["ledger"].clone();
        }
        assert!(
            status == "queued" || status == "sent",
            "unexpected ledger state: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} was not published in 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_versions_are_published_to_the_datanet_registry() {
    let mut n = Node::start(Opts::args(&["--block-time", "0"]));
    let owner = crate::support::dev(1);
    n.create_datanet(&owner, "anchored", false).await;
    let reg = settled(&n, "anchored", None).await;
    assert_eq!(reg["status"], "confirmed", "{reg}");
    let chain_id = reg["datanet_id"].as_u64().expect("on-chain id");
    let c1 = n
        .contribute_ok(
            &crate::support::dev(2),
            "anchored",
            "a.txt",
            b"one\n\ntwo\n",
        )
        .await;
    let c2 = n
        .contribute_ok(&crate::support::dev(3), "anchored", "b.txt", b"three\n")
        .await;
    let r = n
        .review_ok(
            &owner,
            "anchored",
            &[crate::support::u(&c1, "id")],
            true,
            "",
        )
        .await;
    assert_eq!(r["version"]["ledger"]["status"], "queued", "{r}");
    let mut versions = vec![r["version"].clone()];
    let r = n
        .review_ok(
            &owner,
            "anchored",
            &[crate::support::u(&c2, "id")],
            true,
            "",
        )
        .await;
    versions.push(r["version"].clone());
    for v in &versions {
        let number = v["number"].as_u64().expect("number");
        let l = settled(&n, "anchored", Some(number)).await;
        assert_eq!(l["status"], "confirmed", "version {number}: {l}");
        assert_eq!(l["datanet_id"].as_u64(), Some(chain_id));
        // The transaction is on the chain where the version says, sent to the registry.
        let receipt = result(&n, "eth_getTransactionReceipt", json!([l["tx_hash"]])).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        assert_eq!(
            hex_u64(&receipt["blockNumber"]),
            l["block"].as_u64().expect("block")
        );
        assert_eq!(
            receipt["to"].as_str().map(str::to_lowercase).as_deref(),
            Some("0xc0de000000000000000000000000000000000001")
        );
        // And the registry holds the version's root and row count.
        let got = registry_call(
            &n,
            versionsCall {
                id: U256::from(chain_id),
                number,
            },
        )
        .await;
        assert_eq!(
            format!("{:x}", got.root),
            v["root"].as_str().expect("root").to_string(),
            "root of version {number}"
        );
        assert_eq!(got.rowCount, v["row_count"].as_u64().expect("rows"));
    }
    // After a crash and restart nothing is sent twice: the records say what was done.
    let operator = format!("{}", dev(0).address());
    let nonce = result(&n, "eth_getTransactionCount", json!([operator, "pending"])).await;
    n.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = result(&n, "eth_getTransactionCount", json!([operator, "pending"])).await;
    assert_eq!(
        nonce, again,
        "the publisher resent something after a restart"
    );
    let l = settled(&n, "anchored", Some(2)).await;
    assert_eq!(l["status"], "confirmed");
    let d = registry_call(
        &n,
        datanetsCall {
            id: U256::from(chain_id),
        },
    )
    .await;
    assert_eq!(d.latestVersion, 2);
    assert_eq!(d.owner, dev(0).address(), "the node's operator signs");

    // The REST views the console reads: the publications, decoded with the contract's ABI.
    let status = n.get_ok("/api/v1/ledger").await;
    assert_eq!(status["chain_id"], 1612);
    assert_eq!(
        status["publisher"]["operator"].as_str(),
        Some(format!("{:#x}", dev(0).address()).as_str())
    );
    assert_eq!(status["supply_open"], "1000000000");
    assert_eq!(status["contracts"].as_array().map(Vec::len), Some(8));
    let txs = n.get_ok("/api/v1/ledger/transactions?limit=5").await;
    let newest = &txs["items"][0];
    assert_eq!(newest["method"], "publishVersion", "{txs}");
    assert_eq!(newest["contract"], "DatanetRegistry");
    assert_eq!(newest["args"]["number"], "2");
    assert_eq!(newest["status"], "success");
    let hash = newest["hash"].as_str().expect("hash").to_string();
    let tx = n
        .get_ok(&format!("/api/v1/ledger/transactions/{hash}"))
        .await;
    assert_eq!(tx["logs"][0]["event"], "VersionPublished", "{tx}");
    assert_eq!(
        tx["logs"][0]["args"]["root"]
            .as_str()
            .map(|r| r.trim_start_matches("0x")),
        versions[1]["root"].as_str()
    );
    let block = n
        .get_ok(&format!("/api/v1/ledger/blocks/{}", tx["block"]))
        .await;
    assert!(
        block["transactions"]
            .as_array()
            .expect("txs")
            .iter()
            .any(|t| t["hash"] == hash.as_str()),
        "{block}"
    );
    assert_eq!(block["transactions"][0]["kind"], "l1-attributes");
    let blocks = n.get_ok("/api/v1/ledger/blocks?limit=2").await;
    assert_eq!(blocks["items"].as_array().map(Vec::len), Some(2));
    let older = blocks["next_cursor"].as_str().expect("cursor");
    let page2 = n
        .get_ok(&format!("/api/v1/ledger/blocks?limit=2&before={older}"))
        .await;
    assert!(
        page2["items"][0]["number"].as_u64() < blocks["items"][1]["number"].as_u64(),
        "pages go back in time: {page2}"
    );
    let events = n
        .get_ok("/api/v1/ledger/events?address=0xC0DE000000000000000000000000000000000001&limit=10")
        .await;
    let names: Vec<&str> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        names,
        ["VersionPublished", "VersionPublished", "DatanetRegistered"],
        "{events}"
    );
    // The operator's history: the registration and both publications, newest first, paged.
    let op = format!("{:#x}", dev(0).address());
    let first = n
        .get_ok(&format!(
            "/api/v1/ledger/accounts/{op}/transactions?limit=2"
        ))
        .await;
    let methods: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["method"].as_str())
        .collect();
    assert_eq!(methods, ["publishVersion", "publishVersion"], "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = n
        .get_ok(&format!(
            "/api/v1/ledger/accounts/{op}/transactions?limit=10&before={cursor}"
        ))
        .await;
    assert_eq!(rest["items"][0]["method"], "register", "{rest}");
    assert!(rest["next_cursor"].is_null());
    // Balances at any block: dev0 had its genesis million before it paid for gas.
    let genesis = n
        .get_ok(&format!("/api/v1/ledger/accounts/{op}?block=0"))
        .await;
    assert_eq!(genesis["balance_open"], "1000000", "{genesis}");
    let now = n.get_ok(&format!("/api/v1/ledger/accounts/{op}")).await;
    assert_ne!(now["balance"], genesis["balance"]);
    let registry = n
        .get_ok("/api/v1/ledger/accounts/0xC0DE000000000000000000000000000000000001")
        .await;
    assert_eq!(registry["contract"], "DatanetRegistry");
    assert!(registry["code_size"].as_u64() > Some(0));
    for (path, status) in [
        ("/api/v1/ledger/blocks/99999", 404),
        ("/api/v1/ledger/blocks/nope", 400),
        ("/api/v1/ledger/transactions/0x12", 400),
        ("/api/v1/ledger/accounts/0xzz", 400),
        ("/api/v1/ledger/blocks?limit=0", 400),
        (
            "/api/v1/ledger/accounts/0xC0DE000000000000000000000000000000000001?block=99999",
            404,
        ),
        (
            "/api/v1/ledger/accounts/0xC0DE000000000000000000000000000000000001/transactions?before=x",
            400,
        ),
        (
            "/api/v1/ledger/transactions/0x0000000000000000000000000000000000000000000000000000000000000001",
            404,
        ),
    ] {
        let got = n.get(path).await;
        assert_eq!(got.0, status, "{path}: {}", got.1);
        assert!(got.1["error"]["message"].is_string(), "{path}: {}", got.1);
    }
}

/// `commons bench ledger` against a running node, paying the node's genesis test accounts:
/// every transfer is mined and the sampled recipients gained exactly what they were sent.
#[tokio::test]
async fn bench_ledger_pays_existing_accounts_of_an_external_node() {
    let n = Node::start(Opts::args(&[
        "--block-time",
        "0.2",
        "--genesis-test-accounts",
        "300",
    ]));
    let v = n.cli_json(&[
        "bench",
        "ledger",
        "--external",
        "--transfers",
        "400",
        "--senders",
        "20",
        "--batch",
        "50",
        "--accounts",
        "300",
        "--to",
        "existing",
    ]);
    assert_eq!(v["to"], "existing", "{v}");
    assert_eq!(v["accounts_before"], 300, "{v}");
    assert!(v["mined"].as_u64() >= Some(400), "{v}");
    assert!(v["transfers_per_sec"].as_f64() > Some(0.0), "{v}");
    // Paying test accounts the node does not have, or without saying how many, is refused.
    let e = n.cli_fails(&[
        "bench",
        "ledger",
        "--external",
        "--accounts",
        "301",
        "--to",
        "existing",
    ]);
    assert!(e.contains("no genesis test account 300"), "{e}");
    let e = n.cli_fails(&["bench", "ledger", "--external", "--to", "existing"]);
    assert!(e.contains("--accounts"), "{e}");
}
