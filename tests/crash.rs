//! The crash test: four clients upload signed contributions in a loop, and the owner accepts
//! what is pending into new versions, while the node is killed with SIGKILL at random moments
//! and restarted on the same data dir. After every restart each contribution the node
//! acknowledged (201 with an id) must be there with all its rows and its original file, each
//! acknowledged version must be there unchanged, no contribution the node lists may be
//! partial, and the latest version's rows must match its Merkle root. At the end the stopped
//! node's database must pass `commons check`.
//!
//! `COMMONS_CRASH_ROUNDS` sets the number of kills (default 20), `COMMONS_CRASH_SEED` the seed
//! of the random delays (printed, so a failing run can be repeated).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::{Node, Opts, address, blake3_hex, dev, merkle_root, u, upload_headers};

const SLUG: &str = "crash";
const CLIENTS: u32 = 4;

/// A contribution the node acknowledged, with what was sent.
#[derive(Debug, Clone)]
struct Ack {
    id: u64,
    contributor: String,
    name: String,
    bytes: Vec<u8>,
    rows: Vec<String>,
}

/// What one client saw in one round.
#[derive(Debug, Default)]
struct ClientReport {
    acks: Vec<Ack>,
    /// Answers that were neither 201 nor a dropped connection: each is a failure.
    unexpected: Vec<String>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Upload unique small txt files until the node goes away.
async fn client(url: String, client_no: u32, round: u64, seed: u64) -> ClientReport {
    let key = dev(client_no + 1);
    let who = address(&key);
    let mut rng = StdRng::seed_from_u64(seed);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let mut report = ClientReport::default();
    for seq in 0u64.. {
        let paragraphs = rng.gen_range(1..=5);
        let rows: Vec<String> = (0..paragraphs)
            .map(|p| {
                let words = rng.gen_range(1..=12);
                let tail: String = (0..words)
                    .map(|_| format!(" w{}", rng.gen_range(0..100_000u32)))
                    .collect();
                format!("client {client_no} round {round} file {seq} paragraph {p}:{tail}.")
            })
            .collect();
        let body = rows.join("\n\n") + "\n";
        let name = format!("c{client_no}-r{round}-f{seq}.txt");
        let headers = upload_headers(&key, SLUG, &name, body.as_bytes(), None);
        let mut rb = http
            .post(format!("{url}/api/v1/datanets/{SLUG}/contributions"))
            .query(&[("name", name.as_str())])
            .body(body.clone().into_bytes());
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            // The node is gone (killed): this upload is unknown, not acknowledged.
            Err(_) => break,
        };
        let status = resp.status().as_u16();
        let Ok(bytes) = resp.bytes().await else {
            break;
        };
        if status != 201 {
            report.unexpected.push(format!(
                "{name}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            break;
        };
        let Some(id) = v["id"].as_u64() else {
            report
                .unexpected
                .push(format!("{name}: 201 without an id: {v}"));
            continue;
        };
        report.acks.push(Ack {
            id,
            contributor: who.clone(),
            name,
            bytes: body.into_bytes(),
            rows,
        });
    }
    report
}

/// Accept whatever is pending, as the owner, until the node goes away; the versions the node
/// acknowledged and any unexpected answers.
async fn reviewer(url: String) -> (Vec<Value>, Vec<String>) {
    let key = dev(0);
    let domain = crate::support::domain();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let (mut versions, mut unexpected) = (Vec::new(), Vec::new());
    loop {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let pending = http
            .get(format!(
                "{url}/api/v1/datanets/{SLUG}/contributions?status=pending&limit=200"
            ))
            .send()
            .await;
        let Ok(pending) = pending else { break };
        let Ok(page) = pending.json::<Value>().await else {
            break;
        };
        let ids: Vec<u64> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_u64())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let (nonce, deadline) = commons::client::fresh();
        let msg = commons::auth::Review {
            datanet: SLUG.to_string(),
            contributions: ids
                .iter()
                .map(|i| alloy_primitives::U256::from(*i))
                .collect(),
            accept: true,
            reason: String::new(),
            nonce,
            deadline: alloy_primitives::U256::from(deadline),
        };
        let s = commons::client::sign(&msg, &domain, &key, nonce, deadline).expect("sign");
        let body = serde_json::json!({"contributions": ids, "accept": true, "reason": "", "auth": s.json()});
        let Ok(resp) = http
            .post(format!("{url}/api/v1/datanets/{SLUG}/review"))
            .json(&body)
            .send()
            .await
        else {
            break;
        };
        let status = resp.status().as_u16();
        let Ok(bytes) = resp.bytes().await else { break };
        match (status, serde_json::from_slice::<Value>(&bytes)) {
            (200, Ok(v)) if v["version"].is_object() => versions.push(v["version"].clone()),
            (200, Err(_)) => break,
            _ => unexpected.push(format!(
                "review of {ids:?}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )),
        }
    }
    (versions, unexpected)
}

/// Everything the node lists is whole, and everything acknowledged is there as it was sent.
async fn verify(
    node: &Node,
    acked: &BTreeMap<u64, Ack>,
    versions: &BTreeMap<u64, Value>,
    when: &str,
) -> usize {
    let listed = node
        .all_pages(&format!("/api/v1/datanets/{SLUG}/contributions"), 1000)
        .await;
    let by_id: BTreeMap<u64, Value> = listed.iter().map(|c| (u(c, "id"), c.clone())).collect();
    assert_eq!(
        by_id.len(),
        listed.len(),
        "{when}: a contribution is listed twice"
    );

    // Every listed contribution has exactly its rows (none partial).
    let checks = futures_util::stream::iter(listed.iter().cloned())
        .map(|c| async move {
            let id = u(&c, "id");
            let rows = node
                .all_pages(&format!("/api/v1/contributions/{id}/rows"), 1000)
                .await;
            (c, rows)
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut rows_total = 0;
    let mut rows_of: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for (c, rows) in checks {
        let id = u(&c, "id");
        assert_eq!(
            rows.len() as u64,
            u(&c, "row_count"),
            "{when}: contribution {id} is partial: {c}"
        );
        assert!(
            u(&c, "row_count") > 0,
            "{when}: contribution {id} has no rows"
        );
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(u(r, "ordinal"), i as u64, "{when}: {r}");
            assert_eq!(u(r, "contribution"), id, "{when}: {r}");
            let text = r["text"].as_str().unwrap_or_default();
            assert_eq!(
                r["hash"],
                blake3_hex(text.as_bytes()).as_str(),
                "{when}: {r}"
            );
        }
        rows_total += rows.len() as u64;
        rows_of.insert(id, rows);
    }

    // Every acknowledged contribution is there, as sent, with its blob.
    for a in acked.values() {
        let c = by_id.get(&a.id).unwrap_or_else(|| {
            panic!(
                "{when}: acknowledged contribution {} ({}) is lost",
                a.id, a.name
            )
        });
        assert_eq!(c["file_name"], a.name.as_str(), "{when}: {c}");
        assert_eq!(c["contributor"], a.contributor.as_str(), "{when}: {c}");
        assert_eq!(c["file_hash"], blake3_hex(&a.bytes).as_str(), "{when}: {c}");
        assert_eq!(u(c, "size"), a.bytes.len() as u64, "{when}: {c}");
        let texts: Vec<&str> = rows_of[&a.id]
            .iter()
            .map(|r| r["text"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            texts, a.rows,
            "{when}: rows of acknowledged contribution {}",
            a.id
        );
    }
    let blobs = futures_util::stream::iter(acked.values())
        .map(|a| async move {
            let r = node
                .http()
                .get(node.at(&format!("/api/v1/blobs/{}", blake3_hex(&a.bytes))))
                .send()
                .await
                .expect("GET blob");
            let status = r.status().as_u16();
            (a, status, r.bytes().await.expect("blob body"))
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (a, status, body) in blobs {
        assert_eq!(
            status, 200,
            "{when}: blob of contribution {} is missing",
            a.id
        );
        assert!(
            body.as_ref() == a.bytes.as_slice(),
            "{when}: blob of contribution {} differs",
            a.id
        );
    }

    // The totals agree with the tables.
    let stats = node.stats().await;
    assert_eq!(
        u(&stats, "contributions"),
        listed.len() as u64,
        "{when}: {stats}"
    );
    assert_eq!(u(&stats, "rows"), rows_total, "{when}: {stats}");
    let d = node.get_ok(&format!("/api/v1/datanets/{SLUG}")).await;
    assert_eq!(
        u(&d, "contribution_count"),
        listed.len() as u64,
        "{when}: {d}"
    );
    let pending = listed.iter().filter(|c| c["status"] == "pending").count() as u64;
    assert_eq!(u(&d, "pending_count"), pending, "{when}: {d}");

    // Every acknowledged version is there as it was acknowledged.
    let stored = node
        .get_ok(&format!("/api/v1/datanets/{SLUG}/versions"))
        .await;
    let stored: BTreeMap<u64, Value> = stored["items"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (u(v, "number"), v.clone()))
        .collect();
    let numbers: Vec<u64> = stored.keys().copied().collect();
    assert_eq!(
        numbers,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "{when}: versions are numbered without gaps"
    );
    assert_eq!(u(&d, "latest_version"), stored.len() as u64, "{when}: {d}");
    for (n, v) in versions {
        let s = stored
            .get(n)
            .unwrap_or_else(|| panic!("{when}: acknowledged version {n} is lost"));
        assert_eq!(s, v, "{when}: version {n} changed");
    }
    // Accepted contributions are exactly those of the versions; the latest version holds all
    // their rows and matches its root.
    let mut in_versions = BTreeMap::new();
    for v in stored.values() {
        for c in v["contributions"].as_array().expect("contributions") {
            in_versions.insert(c.as_u64().expect("id"), u(v, "number"));
        }
    }
    for c in &listed {
        let want = in_versions.get(&u(c, "id")).copied();
        assert_eq!(c["version"].as_u64(), want, "{when}: {c}");
        let status = if want.is_some() {
            "accepted"
        } else {
            "pending"
        };
        assert_eq!(c["status"], status, "{when}: {c}");
    }
    if let Some(latest) = stored.values().last() {
        let rows = node
            .all_pages(
                &format!(
                    "/api/v1/datanets/{SLUG}/rows?version={}",
                    u(latest, "number")
                ),
                1000,
            )
            .await;
        assert_eq!(
            rows.len() as u64,
            u(latest, "row_count"),
            "{when}: {latest}"
        );
        let hashes: Vec<String> = rows
            .iter()
            .map(|r| r["hash"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            latest["root"],
            merkle_root(&hashes).as_str(),
            "{when}: {latest}"
        );
        let accepted_rows: u64 = listed
            .iter()
            .filter(|c| c["status"] == "accepted")
            .map(|c| u(c, "row_count"))
            .sum();
        assert_eq!(
            rows.len() as u64,
            accepted_rows,
            "{when}: rows of accepted contributions"
        );
        assert_eq!(u(&d, "row_count"), accepted_rows, "{when}: {d}");
    }
    listed.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_contributions_survive_kill_9() {
    let rounds = env_u64("COMMONS_CRASH_ROUNDS", 20);
    let seed = env_u64("COMMONS_CRASH_SEED", 0xC0FFEE);
    println!("crash test: {rounds} rounds, COMMONS_CRASH_SEED={seed}");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = Node::start(Opts::args(&[
        "--daily-files-per-contributor",
        "1000000",
        "--daily-bytes-per-contributor",
        "1000000000",
        "--daily-bytes-per-datanet",
        "1000000000",
    ]));
    node.create_datanet(&dev(0), SLUG, false).await;
    let mut acked: BTreeMap<u64, Ack> = BTreeMap::new();
    let mut versions: BTreeMap<u64, Value> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            node.restart();
            let n = verify(&node, &acked, &versions, &format!("after restart {round}")).await;
            println!(
                "round {round}: {} acknowledged, {n} listed, {} versions, {:.1}s",
                acked.len(),
                versions.len(),
                started.elapsed().as_secs_f64()
            );
        }
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(client(node.url.clone(), c, round, rng.r#gen())))
            .collect();
        let review = tokio::spawn(reviewer(node.url.clone()));
        let delay = rng.gen_range(50..=400);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill();
        for t in tasks {
            let r = t.await.expect("client task");
            unexpected.extend(r.unexpected);
            for a in r.acks {
                assert!(
                    acked.insert(a.id, a).is_none(),
                    "an id was acknowledged twice"
                );
            }
        }
        let (vs, bad) = review.await.expect("reviewer task");
        unexpected.extend(bad);
        for v in vs {
            let n = u(&v, "number");
            assert!(
                versions.insert(n, v).is_none(),
                "version {n} was acknowledged twice"
            );
        }
    }
    assert!(
        unexpected.is_empty(),
        "answers other than 201: {unexpected:#?}"
    );
    node.restart();
    let listed = verify(&node, &acked, &versions, "after the last restart").await;
    assert!(!versions.is_empty(), "no version was acknowledged");
    assert!(
        acked.len() as u64 >= rounds,
        "too few uploads were acknowledged ({}) to test anything",
        acked.len()
    );
    let status = node.stop();
    assert!(
        status.success(),
        "a graceful stop exits 0, not {status}; log:\n{}",
        node.log()
    );

    let mut c = crate::support::command();
    c.arg("check")
        .arg("--json")
        .arg("--data-dir")
        .arg(&node.data_dir);
    let out = crate::support::run_bounded(c, Duration::from_secs(120));
    let report = crate::support::json_output(&out, &["check", "--json"]);
    assert_eq!(report["integrity_ok"], true, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["ledger"]["ok"], true, "{report}");
    assert_eq!(report["ledger"]["integrity_ok"], true, "{report}");
    assert_eq!(u(&report, "contributions"), listed as u64, "{report}");
    println!(
        "crash test: {} acknowledged of {listed} stored after {rounds} kills in {:.1}s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
