//! Every error of docs/API.md's table, provoked against a running node: each answer is checked
//! for its HTTP status and its stable code, and the node's totals are checked to be unchanged
//! afterwards, so a refused request leaves nothing half-written. The CLI's failures are one
//! line on stderr and a non-zero exit.

use alloy_primitives::U256;
use serde_json::{Value, json};

use crate::support::{
    Node, Opts, address, assert_error, dev, fixture, random_key, signed_upload_headers, u,
    upload_headers,
};

/// A node with a small upload limit and a small daily file quota.
fn node() -> Node {
    Node::start(Opts::args(&[
        "--max-upload-bytes",
        "1000",
        "--daily-files-per-contributor",
        "2",
    ]))
}

/// A node with one public datanet `open`, owned by dev0, and its totals.
async fn node_with_datanet() -> (Node, Value) {
    let n = node();
    n.create_datanet(&dev(0), "open", false).await;
    let stats = n.stats().await;
    (n, stats)
}

/// The node's totals and the datanet's counters must be what they were.
async fn assert_unchanged(n: &Node, before: &Value, what: &str) {
    let after = n.stats().await;
    assert_eq!(&after, before, "totals changed after {what}");
}

/// Upload with a fresh key (so quotas do not interfere); the answer.
async fn upload_as_new(n: &Node, name: &str, bytes: &[u8]) -> (u16, Value) {
    n.upload(&random_key(), "open", name, bytes.to_vec()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_upload_is_413_too_large() {
    let (n, before) = node_with_datanet().await;
    let big = "x".repeat(1001);
    let got = upload_as_new(&n, "big.txt", big.as_bytes()).await;
    assert_error(&got, 413, "too_large");
    assert_unchanged(&n, &before, "an oversized upload").await;
    // At the limit it is accepted.
    let ok = "y".repeat(1000);
    let got = upload_as_new(&n, "ok.txt", ok.as_bytes()).await;
    assert_eq!(got.0, 201, "{got:?}");
    // A JSON body over 1 MiB is refused the same way.
    let before = n.stats().await;
    let huge = json!({"slug": "huge", "name": "x".repeat(2 << 20), "auth": {}});
    let got = n.post("/api/v1/datanets", &huge).await;
    assert_error(&got, 413, "too_large");
    assert_unchanged(&n, &before, "an oversized JSON body").await;
    // The CLI says so in one line.
    let p = n.scratch().join("big.txt");
    std::fs::write(&p, &big).expect("write");
    let line = n.cli_fails(&[
        "--key",
        "dev5",
        "datanet",
        "contribute",
        "open",
        &p.display().to_string(),
    ]);
    assert!(line.contains("too_large"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn file_errors_are_400_with_their_codes() {
    let (n, before) = node_with_datanet().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "program.exe",
            b"MZ not a text file".to_vec(),
            "unsupported_type",
        ),
        ("noextension", b"hello".to_vec(), "unsupported_type"),
        ("empty.txt", Vec::new(), "empty_file"),
        (
            "paper.pdf",
            b"This is plain text that was given a .pdf name.\n".to_vec(),
            "type_mismatch",
        ),
        (
            "report.docx",
            b"This is plain text that was given a .docx name.\n".to_vec(),
            "type_mismatch",
        ),
        (
            "latin1.txt",
            b"First paragraph.\n\nCaf\xe9 cr\xe8me\n".to_vec(),
            "invalid_utf8",
        ),
        (
            "bad.jsonl",
            b"{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3,}\n{\"n\": 4}\n".to_vec(),
            "malformed_record",
        ),
        (
            "bad.csv",
            b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n".to_vec(),
            "malformed_record",
        ),
        ("header-only.csv", b"a,b,c\n".to_vec(), "no_rows"),
    ];
    for (name, bytes, code) in cases {
        let got = upload_as_new(&n, name, &bytes).await;
        assert_error(&got, 400, code);
        let msg = got.1["error"]["message"].as_str().unwrap_or("");
        if name == "bad.jsonl" {
            assert!(msg.contains("line 3"), "the message names line 3: {msg}");
        }
        if name == "bad.csv" {
            assert!(msg.contains("line 4"), "the message names line 4: {msg}");
        }
        assert_unchanged(&n, &before, name).await;
    }
    // The storage crate's fixtures of the same failures, where they exist.
    for (name, code) in [
        ("not_a_pdf.pdf", "type_mismatch"),
        ("not_a_docx.docx", "type_mismatch"),
        ("zip_without_document.docx", "type_mismatch"),
        ("latin1.txt", "invalid_utf8"),
        ("bad.jsonl", "malformed_record"),
        ("bad.csv", "malformed_record"),
    ] {
        match fixture(name) {
            Some(bytes) => {
                let got = upload_as_new(&n, name, &bytes).await;
                assert_error(&got, 400, code);
                assert_unchanged(&n, &before, name).await;
            }
            None => println!("note: fixture {name} is absent; skipped"),
        }
    }
    // The CLI prints one line and exits non-zero.
    let p = n.scratch().join("bad.jsonl");
    std::fs::write(&p, "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3,}\n").expect("write");
    let line = n.cli_fails(&[
        "--key",
        "dev5",
        "datanet",
        "contribute",
        "open",
        &p.display().to_string(),
    ]);
    assert!(
        line.contains("malformed_record") && line.contains("line 3"),
        "{line}"
    );
    assert_unchanged(&n, &before, "the CLI's bad upload").await;
    let d = n.get_ok("/api/v1/datanets/open").await;
    assert_eq!(
        (u(&d, "contribution_count"), u(&d, "pending_count")),
        (0, 0),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_errors_are_401_with_their_codes() {
    let (n, before) = node_with_datanet().await;
    let key = random_key();
    let bytes = b"signed content\n".to_vec();
    let good = upload_headers(&key, "open", "s.txt", &bytes, None);

    // Each header missing in turn.
    for missing in 0..good.len() {
        let h: Vec<_> = good
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, h)| h.clone())
            .collect();
        let got = n.upload_with("open", "s.txt", bytes.clone(), &h).await;
        assert_error(&got, 401, "bad_signature");
        assert!(
            got.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.to_lowercase().contains(&good[missing].0)),
            "the message names the missing header {}: {}",
            good[missing].0,
            got.1
        );
    }
    assert_unchanged(&n, &before, "unsigned uploads").await;

    // Malformed signatures: not hex, too short, 65 bytes that recover to nobody.
    for sig in ["0xnothex", "0x1234", &format!("0x{}", "00".repeat(65))] {
        let mut h = good.clone();
        h[3].1 = sig.to_string();
        let got = n.upload_with("open", "s.txt", bytes.clone(), &h).await;
        assert_error(&got, 401, "bad_signature");
    }
    assert_unchanged(&n, &before, "malformed signatures").await;

    // Signed by one key, claiming another signer.
    let mut h = good.clone();
    h[0].1 = address(&dev(7));
    let got = n.upload_with("open", "s.txt", bytes.clone(), &h).await;
    assert_error(&got, 401, "signer_mismatch");
    // A signature over other bytes than those uploaded recovers to someone else too.
    let got = n
        .upload_with("open", "s.txt", b"other bytes\n".to_vec(), &good)
        .await;
    assert_error(&got, 401, "signer_mismatch");
    assert_unchanged(&n, &before, "mismatched signers").await;

    // Past its deadline.
    let now_s = commons_storage::now_ms() / 1000;
    let h = signed_upload_headers(&key, "open", "s.txt", &bytes, U256::from(77u64), now_s - 10);
    let got = n.upload_with("open", "s.txt", bytes.clone(), &h).await;
    assert_error(&got, 401, "signature_expired");
    assert_unchanged(&n, &before, "an expired signature").await;

    // Replayed: the first use is accepted, the second refused and leaves no trace.
    let got = n.upload_with("open", "s.txt", bytes.clone(), &good).await;
    assert_eq!(got.0, 201, "{got:?}");
    let after_first = n.stats().await;
    let got = n.upload_with("open", "s.txt", bytes.clone(), &good).await;
    assert_error(&got, 401, "nonce_reused");
    assert_unchanged(&n, &after_first, "a replayed upload").await;
    // The same nonce on another message by the same signer is refused as well.
    let nonce: U256 = good[1].1.parse().expect("decimal nonce");
    let h = upload_headers(&key, "open", "t.txt", b"new\n", Some(nonce));
    let got = n.upload_with("open", "t.txt", b"new\n".to_vec(), &h).await;
    assert_error(&got, 401, "nonce_reused");
    assert_unchanged(&n, &after_first, "a reused nonce").await;

    // JSON writes: a replayed create, a create with a malformed signature.
    let (nonce, deadline) = commons::client::fresh();
    let msg = commons::auth::CreateDatanet {
        slug: "replay".into(),
        name: "Replay".into(),
        summary: String::new(),
        descriptionHash: alloy_primitives::B256::from(*blake3::hash(b"").as_bytes()),
        tags: vec![],
        kind: "text".into(),
        isPrivate: false,
        nonce,
        deadline: U256::from(deadline),
    };
    let s = commons::client::sign(&msg, &crate::support::domain(), &dev(3), nonce, deadline)
        .expect("sign");
    let body = json!({"slug": "replay", "name": "Replay", "summary": "", "description": "",
                      "tags": [], "kind": "text", "private": false, "auth": s.json()});
    let got = n.post("/api/v1/datanets", &body).await;
    assert_eq!(got.0, 201, "{got:?}");
    let after_create = n.stats().await;
    let mut other = body.clone();
    other["slug"] = "replay-two".into();
    let got = n.post("/api/v1/datanets", &other).await;
    assert_error(&got, 401, "signer_mismatch");
    let got = n.post("/api/v1/datanets", &body).await;
    assert_error(&got, 401, "nonce_reused");
    let mut bad = body.clone();
    bad["auth"]["signature"] = "0xabcd".into();
    let got = n.post("/api/v1/datanets", &bad).await;
    assert_error(&got, 401, "bad_signature");
    assert_unchanged(&n, &after_create, "refused creates").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_exceeded_is_429_with_reset_at_and_retry_after() {
    let (n, _) = node_with_datanet().await;
    let key = random_key();
    for i in 0..2 {
        let got = n
            .upload(
                &key,
                "open",
                &format!("f{i}.txt"),
                format!("file {i}\n").into_bytes(),
            )
            .await;
        assert_eq!(got.0, 201, "{got:?}");
    }
    let before = n.stats().await;
    let h = upload_headers(&key, "open", "f2.txt", b"file 2\n", None);
    let r = n
        .upload_raw("open", "f2.txt", b"file 2\n".to_vec(), &h)
        .await;
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let got = crate::support::answer(r).await;
    assert_error(&got, 429, "quota_exceeded");
    let reset_at = got.1["error"]["reset_at"].as_u64().unwrap_or(0);
    let now = commons_storage::now_ms();
    assert!(
        reset_at > now && reset_at <= now + 86_400_000,
        "reset_at {reset_at} is within the next day: {:?}",
        got.1
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&reset_at.to_string())),
        "the message says when the quota resets: {:?}",
        got.1
    );
    let secs: u64 = retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("no Retry-After header on a 429"))
        .parse()
        .expect("Retry-After is seconds");
    assert!((1..=86_400).contains(&secs), "Retry-After {secs}");
    assert_unchanged(&n, &before, "a refused upload over quota").await;
    // Another contributor still may.
    let got = n
        .upload(&random_key(), "open", "g.txt", b"other\n".to_vec())
        .await;
    assert_eq!(got.0, 201, "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_things_are_404_not_found() {
    let (n, before) = node_with_datanet().await;
    for path in [
        "/api/v1/datanets/nope",
        "/api/v1/datanets/nope/versions",
        "/api/v1/datanets/nope/rows",
        "/api/v1/datanets/nope/edits",
        "/api/v1/datanets/open/versions/1",
        "/api/v1/datanets/open/rows?version=5",
        "/api/v1/contributions/999",
        "/api/v1/contributions/999/rows",
        "/api/v1/rows/999",
        &format!("/api/v1/blobs/{}", "ab".repeat(32)),
        "/api/v1/nope",
        "/api/v2/datanets",
        "/api/v1/datanets/open/nope",
    ] {
        let got = n.get(path).await;
        assert_error(&got, 404, "not_found");
    }
    // An unknown route answers JSON for other methods too.
    let got = n
        .send(reqwest::Method::DELETE, "/api/v1/datanets/open", &json!({}))
        .await;
    assert_error(&got, 404, "not_found");
    let got = n
        .upload(&random_key(), "nope", "a.txt", b"text\n".to_vec())
        .await;
    assert_error(&got, 404, "not_found");
    assert_unchanged(&n, &before, "requests for unknown things").await;
    let line = n.cli_fails(&["datanet", "show", "nope"]);
    assert!(line.contains("not_found") && line.contains("404"), "{line}");
    let line = n.cli_fails(&["contribution", "999"]);
    assert!(line.contains("not_found"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slug_errors_are_409_slug_taken_and_400_invalid_slug() {
    let (n, before) = node_with_datanet().await;
    let line = n.cli_fails(&[
        "--key", "dev1", "datanet", "create", "open", "--name", "Again",
    ]);
    assert!(line.contains("slug_taken"), "{line}");
    let got = n
        .client()
        .create_datanet(
            &crate::support::domain(),
            &dev(1),
            "open",
            "Again",
            "",
            "",
            &[],
            "text",
            false,
        )
        .await
        .expect_err("duplicate slug");
    assert!(
        format!("{got:#}").contains("slug_taken") && format!("{got:#}").contains("409"),
        "{got:#}"
    );
    for slug in ["Bad_Slug", "a", "-abc", "has space", &"x".repeat(64), "ünï"] {
        let got = n
            .client()
            .create_datanet(
                &crate::support::domain(),
                &dev(1),
                slug,
                "Name",
                "",
                "",
                &[],
                "text",
                false,
            )
            .await
            .expect_err("invalid slug");
        assert!(
            format!("{got:#}").contains("invalid_slug") && format!("{got:#}").contains("400"),
            "{slug}: {got:#}"
        );
    }
    assert_unchanged(&n, &before, "refused creates").await;
    // Malformed JSON is a 400 bad_request.
    let r = n
        .http()
        .post(n.at("/api/v1/datanets"))
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .expect("post");
    let got = crate::support::answer(r).await;
    assert_error(&got, 400, "bad_request");
    let got = n.post("/api/v1/datanets", &json!({"slug": "x1"})).await;
    assert_error(&got, 400, "bad_request");
    let got = n.get("/api/v1/datanets?limit=0").await;
    assert_error(&got, 400, "bad_request");
    let got = n.get("/api/v1/datanets/open/rows?version=abc").await;
    assert_error(&got, 400, "bad_request");
    assert_unchanged(&n, &before, "bad requests").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn review_errors_are_403_forbidden_and_409_invalid_state() {
    let (n, _) = node_with_datanet().await;
    let c1 = n.contribute_ok(&dev(1), "open", "a.txt", b"first\n").await;
    let c2 = n.contribute_ok(&dev(2), "open", "b.txt", b"second\n").await;
    let (id1, id2) = (u(&c1, "id"), u(&c2, "id"));
    let before = n.stats().await;
    let d_before = datanet_record(&n, "open").await;

    // A contributor is not a reviewer.
    let e = n
        .client()
        .review(&crate::support::domain(), &dev(1), "open", &[id1], true, "")
        .await
        .expect_err("non-owner review");
    assert!(
        format!("{e:#}").contains("forbidden") && format!("{e:#}").contains("403"),
        "{e:#}"
    );
    let line = n.cli_fails(&[
        "--key",
        "dev3",
        "datanet",
        "review",
        "open",
        &id1.to_string(),
        "--accept",
    ]);
    assert!(line.contains("forbidden"), "{line}");
    // Nor may a stranger take rows down.
    let line = n.cli_fails(&[
        "--key", "dev3", "datanet", "takedown", "open", "1", "--reason", "x",
    ]);
    assert!(
        line.contains("forbidden") || line.contains("invalid_state"),
        "{line}"
    );
    assert_unchanged(&n, &before, "a review by a non-owner").await;
    assert_eq!(datanet_record(&n, "open").await, d_before);

    // Reject, then try to accept it: 409, and nothing changes.
    n.review_ok(&dev(0), "open", &[id1], false, "no").await;
    let before = n.stats().await;
    let d_before = datanet_record(&n, "open").await;
    let e = n
        .client()
        .review(&crate::support::domain(), &dev(0), "open", &[id1], true, "")
        .await
        .expect_err("accepting a rejected contribution");
    assert!(
        format!("{e:#}").contains("invalid_state") && format!("{e:#}").contains("409"),
        "{e:#}"
    );
    // A batch with one rejected contribution is refused whole: the pending one stays pending.
    let e = n
        .client()
        .review(
            &crate::support::domain(),
            &dev(0),
            "open",
            &[id2, id1],
            true,
            "",
        )
        .await
        .expect_err("a batch with a rejected contribution");
    assert!(format!("{e:#}").contains("invalid_state"), "{e:#}");
    assert_unchanged(&n, &before, "an invalid review").await;
    assert_eq!(datanet_record(&n, "open").await, d_before);
    let c2_now = n.get_ok(&format!("/api/v1/contributions/{id2}")).await;
    assert_eq!(c2_now["status"], "pending", "{c2_now}");
    assert!(
        n.get_ok("/api/v1/datanets/open/versions").await["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // Taking down a row that is in no version is invalid too.
    let line = n.cli_fails(&[
        "--key",
        "dev0",
        "datanet",
        "takedown",
        "open",
        &u(&c2, "first_row").to_string(),
        "--reason",
        "x",
    ]);
    assert!(line.contains("invalid_state"), "{line}");
    assert_unchanged(&n, &before, "an invalid take-down").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_datanet_refuses_outsiders_with_403() {
    let n = node();
    n.create_datanet(&dev(0), "secret", true).await;
    let before = n.stats().await;
    let got = n
        .upload(&dev(1), "secret", "a.txt", b"let me in\n".to_vec())
        .await;
    assert_error(&got, 403, "forbidden");
    assert_unchanged(&n, &before, "an outsider's upload").await;
    let d = n.get_ok("/api/v1/datanets/secret").await;
    assert_eq!(u(&d, "contribution_count"), 0, "{d}");
    let rec = n
        .get_ok(&format!("/api/v1/contributors/{}", address(&dev(1))))
        .await;
    assert_eq!(u(&rec, "contributions"), 0, "{rec}");
    // The quota was not charged: the outsider may still upload twice elsewhere today.
    n.create_datanet(&dev(0), "public", false).await;
    for i in 0..2 {
        let got = n
            .upload(
                &dev(1),
                "public",
                &format!("{i}.txt"),
                format!("{i}\n").into_bytes(),
            )
            .await;
        assert_eq!(got.0, 201, "a refused upload must not use quota: {got:?}");
    }
    // The owner may.
    let got = n
        .upload(&dev(0), "secret", "o.txt", b"owner\n".to_vec())
        .await;
    assert_eq!(got.0, 201, "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_calls_without_the_token_are_401_unauthorized() {
    let n = node();
    let before = n.stats().await;
    let got = n.get("/api/v1/console/users").await;
    assert_error(&got, 401, "unauthorized");
    let got = n
        .post(
            "/api/v1/console/users",
            &json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    assert_error(&got, 401, "unauthorized");
    let r = n
        .http()
        .get(n.at("/api/v1/console/users"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .expect("get");
    assert_error(&crate::support::answer(r).await, 401, "unauthorized");
    let got = n.get("/api/v1/console/me").await;
    assert_error(&got, 401, "unauthorized");
    assert_unchanged(&n, &before, "refused admin calls").await;
    // With the token (the CLI reads it from the data dir) it works.
    let u1 = n.cli_json(&[
        "console-user",
        "create",
        "alice",
        "--password",
        "correct horse",
    ]);
    assert_eq!(u1["username"], "alice", "{u1}");
    assert!(
        u1["address"].as_str().is_some_and(|a| a.len() == 42),
        "{u1}"
    );
    let list = n.cli_json(&["console-user", "list"]);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    // And the CLI with a wrong token fails in one line.
    let line = n.cli_fails(&["--admin-token", "wrong", "console-user", "list"]);
    assert!(line.contains("unauthorized"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_failures_are_one_line_and_a_non_zero_exit() {
    let n = node();
    // No --key for a signing command.
    let line = n.cli_fails(&["datanet", "create", "x1", "--name", "X"]);
    assert!(line.contains("--key"), "{line}");
    // An unreadable file.
    let line = n.cli_fails(&[
        "--key",
        "dev0",
        "datanet",
        "contribute",
        "x1",
        "/nonexistent/file.txt",
    ]);
    assert!(line.contains("/nonexistent/file.txt"), "{line}");
    // A bad key.
    let line = n.cli_fails(&["--key", "dev10", "datanet", "create", "x1", "--name", "X"]);
    assert!(line.contains("dev10"), "{line}");
    // No node there: the port of a listener that is closed again.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c = crate::support::command();
    c.args([
        "--node",
        &format!("http://127.0.0.1:{port}"),
        "node",
        "info",
    ]);
    let out = crate::support::run_bounded(c, std::time::Duration::from_secs(60));
    let line = crate::support::failure_line(&out, &["node", "info"]);
    assert!(line.contains("cannot reach"), "{line}");
    // `check` on a dir without a database.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = crate::support::command();
    c.arg("check").arg("--data-dir").arg(tmp.path());
    let out = crate::support::run_bounded(c, std::time::Duration::from_secs(60));
    crate::support::failure_line(&out, &["check"]);
}

/// A datanet as the store holds it: without `ledger`, which the publisher moves on its own
/// (queued → sent → confirmed) while a test runs.
async fn datanet_record(n: &Node, slug: &str) -> serde_json::Value {
    let mut d = n.get_ok(&format!("/api/v1/datanets/{slug}")).await;
    if let Some(o) = d.as_object_mut() {
        o.remove("ledger");
    }
    d
}
