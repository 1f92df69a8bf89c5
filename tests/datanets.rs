//! Datanets end to end, through the CLI and the REST API of a running node: create,
//! contribute every format, review, versions with Merkle roots, rows with cursor paging,
//! diffs, take-downs that leave older versions as they were, edit history, rows, blobs,
//! contributors, `node info`, `dev-keys` and the configuration precedence of `serve`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::support::{
    Node, Opts, address, assert_error, blake3_hex, command, dev, fixture, json_output, merkle_root,
    u,
};

/// The ids of a list of rows or contributions.
fn ids(items: &[Value]) -> Vec<u64> {
    items.iter().map(|v| u(v, "id")).collect()
}

/// Every row of version `n`, paging with `limit`; asserts ascending ids with no repeats.
async fn version_rows(node: &Node, slug: &str, n: u64, limit: usize) -> Vec<Value> {
    let rows = node
        .all_pages(&format!("/api/v1/datanets/{slug}/rows?version={n}"), limit)
        .await;
    let got = ids(&rows);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "rows of version {n} are not in strictly ascending id order (paging limit {limit}): {got:?}"
    );
    rows
}

/// Checks a version object against the rows it serves: count and Merkle root.
async fn check_version(node: &Node, slug: &str, v: &Value) -> Vec<Value> {
    let n = u(v, "number");
    let rows = version_rows(node, slug, n, 1000).await;
    assert_eq!(
        u(v, "row_count"),
        rows.len() as u64,
        "row_count of version {n}: {v}"
    );
    let hashes: Vec<String> = rows
        .iter()
        .map(|r| {
            let text = r["text"].as_str().expect("text");
            let h = r["hash"].as_str().expect("hash").to_string();
            assert_eq!(
                h,
                blake3_hex(text.as_bytes()),
                "row hash is blake3 of its text: {r}"
            );
            h
        })
        .collect();
    let root = v["root"].as_str().expect("root");
    assert_eq!(root.len(), 64, "root is 64 hex: {v}");
    assert_eq!(root, merkle_root(&hashes), "Merkle root of version {n}");
    rows
}

/// The parts of a row that must never change once it is in a version.
fn row_core(r: &Value) -> Value {
    json!({
        "id": r["id"], "datanet": r["datanet"], "contribution": r["contribution"],
        "contributor": r["contributor"], "ordinal": r["ordinal"], "hash": r["hash"],
        "text": r["text"], "added_in": r["added_in"],
    })
}

/// A test file: name, bytes, and (for our own text files) the rows expected from it.
struct TestFile {
    name: String,
    bytes: Vec<u8>,
    rows: Option<Vec<String>>,
    content_type: &'static str,
    /// A row must contain this (for the pdf and docx fixtures, whose exact rows the parser's
    /// own tests pin down).
    contains: Option<&'static str>,
}

fn text_file(name: &str, body: &str, rows: &[&str], content_type: &'static str) -> TestFile {
    TestFile {
        name: name.to_string(),
        bytes: body.as_bytes().to_vec(),
        rows: Some(rows.iter().map(|s| s.to_string()).collect()),
        content_type,
        contains: None,
    }
}

fn first_batch() -> Vec<TestFile> {
    vec![
        text_file(
            "notes.txt",
            "Aspirin thins the blood.\n\nIbuprofen reduces inflammation.\nIt is an NSAID.\n\n\nParacetamol lowers fever.\n",
            &[
                "Aspirin thins the blood.",
                "Ibuprofen reduces inflammation.\nIt is an NSAID.",
                "Paracetamol lowers fever.",
            ],
            "text/plain",
        ),
        text_file(
            "faq.md",
            "# Dosage\nTake one tablet.\n\n# Side effects\nRarely, a headache.\n",
            &[
                "# Dosage\nTake one tablet.",
                "# Side effects\nRarely, a headache.",
            ],
            "text/markdown",
        ),
        text_file(
            "records.jsonl",
            "{\"q\": \"What is a fever?\", \"a\": \"A raised temperature.\"}\n{\"q\": \"What is a cold?\", \"a\": \"A viral infection.\"}\n\n{\"z\": 1, \"a\": [1, 2]}\n",
            &[
                "{\"q\": \"What is a fever?\", \"a\": \"A raised temperature.\"}",
                "{\"q\": \"What is a cold?\", \"a\": \"A viral infection.\"}",
                "{\"z\": 1, \"a\": [1, 2]}",
            ],
            "application/",
        ),
        text_file(
            "table.csv",
            "question,answer\nIs water wet?,Yes\n\"A, B\",\"said \"\"hi\"\"\"\n",
            &[
                "{\"question\":\"Is water wet?\",\"answer\":\"Yes\"}",
                "{\"question\":\"A, B\",\"answer\":\"said \\\"hi\\\"\"}",
            ],
            "text/csv",
        ),
    ]
}

fn second_batch() -> Vec<TestFile> {
    let mut v = vec![text_file(
        "extra.txt",
        "Zinc may shorten a cold.\n\nVitamin C probably does not.\n",
        &["Zinc may shorten a cold.", "Vitamin C probably does not."],
        "text/plain",
    )];
    for (name, ct, contains) in [
        ("sample.pdf", "application/pdf", "attribution credits"),
        (
            "sample.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Last paragraph.",
        ),
    ] {
        match fixture(name) {
            Some(bytes) => v.push(TestFile {
                name: name.to_string(),
                bytes,
                rows: None,
                content_type: ct,
                contains: Some(contains),
            }),
            None => {
                println!("note: storage/tests/fixtures/{name} is absent; its format is not tested")
            }
        }
    }
    v
}

/// Check an uploaded contribution and its rows against the file.
async fn check_contribution(node: &Node, c: &Value, f: &TestFile, who: &str) {
    assert_eq!(c["file_name"], f.name.as_str(), "{c}");
    assert_eq!(c["file_hash"], blake3_hex(&f.bytes).as_str(), "{c}");
    assert_eq!(u(c, "size"), f.bytes.len() as u64, "{c}");
    assert_eq!(c["contributor"], who, "{c}");
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["datanet"], "med-qa", "{c}");
    let ext = f.name.rsplit('.').next().expect("extension");
    assert_eq!(c["format"], ext, "{c}");
    assert!(
        c["content_type"]
            .as_str()
            .is_some_and(|t| t.starts_with(f.content_type)),
        "content type of {}: {c}",
        f.name
    );
    let id = u(c, "id");
    let rows = node
        .all_pages(&format!("/api/v1/contributions/{id}/rows"), 2)
        .await;
    assert_eq!(
        rows.len() as u64,
        u(c, "row_count"),
        "rows of {}: {rows:?}",
        f.name
    );
    let first = u(c, "first_row");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            u(r, "id"),
            first + i as u64,
            "row ids are consecutive from first_row: {r}"
        );
        assert_eq!(u(r, "ordinal"), i as u64, "{r}");
        assert_eq!(u(r, "contribution"), id, "{r}");
        assert_eq!(r["contributor"], who, "{r}");
        assert!(
            r["added_in"].is_null(),
            "a pending row is in no version: {r}"
        );
        let text = r["text"].as_str().expect("text");
        assert!(!text.trim().is_empty(), "empty row in {}: {r}", f.name);
        assert_eq!(r["hash"], blake3_hex(text.as_bytes()).as_str(), "{r}");
    }
    let texts: Vec<&str> = rows
        .iter()
        .map(|r| r["text"].as_str().unwrap_or(""))
        .collect();
    if let Some(want) = &f.rows {
        if f.name.ends_with(".csv") {
            // Compare csv rows as JSON so key spacing does not matter; key order does.
            let got: Vec<Value> = texts
                .iter()
                .map(|t| serde_json::from_str(t).expect("a csv row is a JSON object"))
                .collect();
            let want: Vec<Value> = want
                .iter()
                .map(|t| serde_json::from_str(t).expect("expected row is JSON"))
                .collect();
            assert_eq!(got, want, "rows of {}", f.name);
            for t in &texts {
                let (q, a) = (t.find("\"question\""), t.find("\"answer\""));
                assert!(q < a, "csv keys in header order: {t}");
            }
        } else {
            assert_eq!(texts, *want, "rows of {}", f.name);
        }
    }
    if let Some(needle) = f.contains {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "no row of {} contains {needle:?}: {texts:?}",
            f.name
        );
    }
}

/// Write files into the scratch dir; their paths as strings.
fn write_files(node: &Node, files: &[TestFile]) -> Vec<String> {
    let dir = node.scratch();
    files
        .iter()
        .map(|f| {
            let p = dir.join(&f.name);
            std::fs::write(&p, &f.bytes).expect("write test file");
            p.display().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn datanet_lifecycle_through_the_cli_and_the_api() {
    let node = Node::start(Opts::default());
    let (owner, contributor) = (address(&dev(0)), address(&dev(1)));
    let scratch = node.scratch();
    let desc = scratch.join("README.md");
    std::fs::write(&desc, "# Medical QA\n\nQuestions and answers.\n").expect("write");
    let desc_s = desc.display().to_string();

    // Create.
    let d = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "create",
        "med-qa",
        "--name",
        "Medical QA",
        "--summary",
        "Questions",
        "--description-file",
        &desc_s,
        "--tag",
        "health",
        "--tag",
        "QA",
    ]);
    assert_eq!(d["slug"], "med-qa", "{d}");
    assert_eq!(d["name"], "Medical QA", "{d}");
    assert_eq!(d["summary"], "Questions", "{d}");
    assert_eq!(
        d["description"], "# Medical QA\n\nQuestions and answers.\n",
        "{d}"
    );
    assert_eq!(d["owner"], owner.as_str(), "{d}");
    assert_eq!(d["visibility"], "public", "{d}");
    assert_eq!(d["kind"], "text", "{d}");
    assert_eq!(
        d["tags"],
        json!(["health", "qa"]),
        "tags are trimmed and lowercased: {d}"
    );
    assert_eq!(u(&d, "latest_version"), 0, "{d}");
    // The single-datanet view adds where its registration on the ledger stands.
    let mut shown = node.cli_json(&["datanet", "show", "med-qa"]);
    assert!(shown["ledger"]["status"].is_string(), "{shown}");
    if let Some(o) = shown.as_object_mut() {
        o.remove("ledger");
    }
    assert_eq!(shown, d, "show answers what create answered");
    let mut got = node.get_ok("/api/v1/datanets/med-qa").await;
    if let Some(o) = got.as_object_mut() {
        o.remove("ledger");
    }
    assert_eq!(got, d);
    let listed = node.cli_json(&["datanet", "list", "--tag", "health"]);
    assert_eq!(
        ids(listed["items"].as_array().expect("items")),
        vec![u(&d, "id")]
    );
    let none = node.cli_json(&["datanet", "list", "--owner", &contributor]);
    assert!(
        none["items"].as_array().expect("items").is_empty(),
        "{none}"
    );
    let mine = node
        .get_ok(&format!("/api/v1/datanets?owner={owner}"))
        .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");

    // Contribute every format through the CLI, as dev1.
    let batch1 = first_batch();
    let paths1 = write_files(&node, &batch1);
    let mut args = vec!["--key", "dev1", "datanet", "contribute", "med-qa"];
    args.extend(paths1.iter().map(String::as_str));
    let got = node.cli_json(&args);
    let got1 = got
        .as_array()
        .expect("contribute --json answers an array")
        .clone();
    assert_eq!(got1.len(), batch1.len(), "{got}");
    for (c, f) in got1.iter().zip(&batch1) {
        check_contribution(&node, c, f, &contributor).await;
    }
    let batch2 = second_batch();
    let paths2 = write_files(&node, &batch2);
    let mut args = vec!["--key", "dev1", "datanet", "contribute", "med-qa"];
    args.extend(paths2.iter().map(String::as_str));
    let got = node.cli_json(&args);
    let got2 = got.as_array().expect("array").clone();
    assert_eq!(got2.len(), batch2.len(), "{got}");
    for (c, f) in got2.iter().zip(&batch2) {
        check_contribution(&node, c, f, &contributor).await;
    }

    // List pending.
    let pending = node.cli_json(&["datanet", "contributions", "med-qa", "--status", "pending"]);
    let all_ids: Vec<u64> = ids(&got1).into_iter().chain(ids(&got2)).collect();
    assert_eq!(
        ids(pending["items"].as_array().expect("items")),
        all_ids,
        "{pending}"
    );
    let d = node.get_ok("/api/v1/datanets/med-qa").await;
    assert_eq!(u(&d, "pending_count"), all_ids.len() as u64, "{d}");
    assert_eq!(u(&d, "contribution_count"), all_ids.len() as u64, "{d}");

    // Accept txt, md, jsonl: version 1.
    let accept1: Vec<String> = ids(&got1[..3]).iter().map(u64::to_string).collect();
    let mut args = vec!["--key", "dev0", "datanet", "review", "med-qa"];
    args.extend(accept1.iter().map(String::as_str));
    args.push("--accept");
    let r = node.cli_json(&args);
    let v1 = r["version"].clone();
    assert_eq!(u(&v1, "number"), 1, "{r}");
    assert!(v1["parent"].is_null(), "{v1}");
    assert_eq!(v1["datanet"], "med-qa", "{v1}");
    assert_eq!(v1["created_by"], owner.as_str(), "{v1}");
    assert_eq!(v1["contributions"], json!(ids(&got1[..3])), "{v1}");
    let rows_in_1: u64 = got1[..3].iter().map(|c| u(c, "row_count")).sum();
    assert_eq!(u(&v1, "rows_added"), rows_in_1, "{v1}");
    assert_eq!(u(&v1, "rows_removed"), 0, "{v1}");
    for c in r["contributions"].as_array().expect("contributions") {
        assert_eq!(c["status"], "accepted", "{c}");
        assert_eq!(c["version"], 1, "{c}");
        assert_eq!(c["reviewed_by"], owner.as_str(), "{c}");
        assert!(c["reviewed_at"].is_u64(), "{c}");
    }
    let rows_v1 = check_version(&node, "med-qa", &v1).await;

    // Reject the csv with a reason.
    let csv_id = u(&got1[3], "id").to_string();
    let r = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "review",
        "med-qa",
        &csv_id,
        "--reject",
        "--reason",
        "duplicates",
    ]);
    assert!(r["version"].is_null(), "a rejection makes no version: {r}");
    let c = &r["contributions"][0];
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("rejected"), Some("duplicates")),
        "{r}"
    );
    assert!(c["version"].is_null(), "{c}");
    let c = node.cli_json(&["contribution", &csv_id]);
    assert_eq!(c["status"], "rejected", "{c}");
    assert_eq!(c["reason"], "duplicates", "{c}");
    let rejected = node
        .get_ok("/api/v1/datanets/med-qa/contributions?status=rejected")
        .await;
    assert_eq!(
        ids(rejected["items"].as_array().expect("items")),
        vec![u(&got1[3], "id")]
    );

    // Accept the second batch over HTTP: version 2.
    let r = node
        .review_ok(&dev(0), "med-qa", &ids(&got2), true, "")
        .await;
    let v2 = r["version"].clone();
    assert_eq!((u(&v2, "number"), u(&v2, "parent")), (2, 1), "{v2}");
    let rows_v2 = check_version(&node, "med-qa", &v2).await;
    let rows_in_2: u64 = got2.iter().map(|c| u(c, "row_count")).sum();
    assert_eq!(u(&v2, "row_count"), rows_in_1 + rows_in_2, "{v2}");
    let (set1, set2): (BTreeSet<u64>, BTreeSet<u64>) = (
        ids(&rows_v1).into_iter().collect(),
        ids(&rows_v2).into_iter().collect(),
    );
    assert!(
        set1.is_subset(&set2),
        "version 2 keeps every row of version 1"
    );
    for r in &rows_v2 {
        let want = if set1.contains(&u(r, "id")) { 1 } else { 2 };
        assert_eq!(r["added_in"], want, "{r}");
        assert!(r["removed_in"].is_null(), "{r}");
    }
    let pending = node
        .get_ok("/api/v1/datanets/med-qa/contributions?status=pending")
        .await;
    assert!(
        pending["items"].as_array().expect("items").is_empty(),
        "{pending}"
    );

    // Rows through the CLI, every page, equal the API's.
    let cli_rows = node.cli_json(&[
        "datanet",
        "rows",
        "med-qa",
        "--version",
        "2",
        "--limit",
        "3",
        "--all",
    ]);
    assert_eq!(
        cli_rows["items"].as_array().expect("items"),
        &rows_v2,
        "CLI rows --all"
    );
    assert!(cli_rows["next_cursor"].is_null(), "{cli_rows}");
    let latest = node.cli_json(&["datanet", "rows", "med-qa", "--limit", "1000"]);
    assert_eq!(
        latest["items"].as_array().expect("items"),
        &rows_v2,
        "rows default to the latest version"
    );

    // Diff 1 → 2.
    let diff = node.cli_json(&["datanet", "diff", "med-qa", "1", "2"]);
    let added: BTreeSet<u64> = set2.difference(&set1).copied().collect();
    assert_eq!(u(&diff, "added_count"), added.len() as u64, "{diff}");
    assert_eq!(u(&diff, "removed_count"), 0, "{diff}");
    assert_eq!(
        ids(diff["added"].as_array().expect("added"))
            .into_iter()
            .collect::<BTreeSet<_>>(),
        added,
        "{diff}"
    );
    let http_diff = node
        .get_ok("/api/v1/datanets/med-qa/diff?from=1&to=2&limit=1000")
        .await;
    assert_eq!(http_diff, diff, "the CLI prints the API's diff");
    // Paged two rows at a time: every page carries the same counts, together the same rows.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = node
            .get_ok(&format!(
                "/api/v1/datanets/med-qa/diff?from=1&to=2&limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(page["added_count"], diff["added_count"], "{page}");
        assert_eq!(page["removed_count"], diff["removed_count"], "{page}");
        paged.extend(page["added"].as_array().expect("added").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), diff["added"], "paged diff");
    let (s, bad) = node
        .get("/api/v1/datanets/med-qa/diff?from=1&to=2&cursor=1.x")
        .await;
    assert_error(&(s, bad), 400, "bad_request");

    // Take two rows of version 1 down: version 3 without them; version 2 reads as before.
    let v2_before = node.get_ok("/api/v1/datanets/med-qa/versions/2").await;
    let gone = [u(&rows_v1[0], "id"), u(&rows_v1[rows_v1.len() - 1], "id")];
    let (g0, g1) = (gone[0].to_string(), gone[1].to_string());
    let v3 = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "takedown",
        "med-qa",
        &g0,
        &g1,
        "--reason",
        "copyright",
    ]);
    assert_eq!((u(&v3, "number"), u(&v3, "parent")), (3, 2), "{v3}");
    assert_eq!(v3["removed_rows"], json!(gone), "{v3}");
    assert_eq!(v3["reason"], "copyright", "{v3}");
    assert_eq!(
        (u(&v3, "rows_added"), u(&v3, "rows_removed")),
        (0, 2),
        "{v3}"
    );
    assert_eq!(u(&v3, "row_count"), u(&v2, "row_count") - 2, "{v3}");
    let rows_v3 = check_version(&node, "med-qa", &v3).await;
    let set3: BTreeSet<u64> = ids(&rows_v3).into_iter().collect();
    let expect3: BTreeSet<u64> = set2
        .iter()
        .copied()
        .filter(|id| !gone.contains(id))
        .collect();
    assert_eq!(
        set3, expect3,
        "version 3 is version 2 without the taken-down rows"
    );
    assert_eq!(
        node.get_ok("/api/v1/datanets/med-qa/versions/2").await,
        v2_before,
        "version 2 is unchanged"
    );
    let rows_v2_after = check_version(&node, "med-qa", &v2_before).await;
    assert_eq!(
        rows_v2_after.iter().map(row_core).collect::<Vec<_>>(),
        rows_v2.iter().map(row_core).collect::<Vec<_>>(),
        "version 2 serves the same rows after the take-down"
    );
    let rows_v1_after = check_version(&node, "med-qa", &v1).await;
    assert_eq!(
        rows_v1_after.iter().map(row_core).collect::<Vec<_>>(),
        rows_v1.iter().map(row_core).collect::<Vec<_>>(),
        "version 1 serves the same rows after the take-down"
    );
    let diff = node
        .get_ok("/api/v1/datanets/med-qa/diff?from=2&to=3")
        .await;
    assert_eq!(
        (u(&diff, "added_count"), u(&diff, "removed_count")),
        (0, 2),
        "{diff}"
    );
    assert_eq!(
        ids(diff["removed"].as_array().expect("removed")),
        gone.to_vec(),
        "{diff}"
    );
    let versions = node.cli_json(&["datanet", "versions", "med-qa"]);
    let numbers: Vec<u64> = versions["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| u(v, "number"))
        .collect();
    assert_eq!(numbers, vec![3, 2, 1], "versions newest first");
    let d = node.get_ok("/api/v1/datanets/med-qa").await;
    assert_eq!(
        (u(&d, "latest_version"), u(&d, "row_count")),
        (3, u(&v3, "row_count")),
        "{d}"
    );

    // A row with its contribution and contributor; the taken-down row says when it went.
    let row = node.cli_json(&["row", &g0]);
    assert_eq!(row["row"]["text"], rows_v1[0]["text"], "{row}");
    assert_eq!(row["row"]["contributor"], contributor.as_str(), "{row}");
    assert_eq!(row["row"]["added_in"], 1, "{row}");
    assert_eq!(row["row"]["removed_in"], 3, "{row}");
    assert_eq!(
        row["contribution"]["id"], rows_v1[0]["contribution"],
        "{row}"
    );
    assert_eq!(
        row["contribution"]["contributor"],
        contributor.as_str(),
        "{row}"
    );

    // Edit metadata twice; the history keeps both edits.
    let e1 = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "edit",
        "med-qa",
        "--summary",
        "Medical questions",
        "--tag",
        "health",
        "--tag",
        "medicine",
    ]);
    assert_eq!(e1["summary"], "Medical questions", "{e1}");
    assert_eq!(e1["tags"], json!(["health", "medicine"]), "{e1}");
    assert_eq!(
        e1["description"], "# Medical QA\n\nQuestions and answers.\n",
        "{e1}"
    );
    std::fs::write(&desc, "# Medical QA\n\nRevised.\n").expect("write");
    let e2 = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "edit",
        "med-qa",
        "--description-file",
        &desc_s,
    ]);
    assert_eq!(e2["description"], "# Medical QA\n\nRevised.\n", "{e2}");
    assert_eq!(
        e2["summary"], "Medical questions",
        "an edit keeps what it does not change"
    );
    let edits = node.get_ok("/api/v1/datanets/med-qa/edits").await;
    let items = edits["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{edits}");
    assert_eq!(
        (u(&items[0], "number"), u(&items[1], "number")),
        (1, 2),
        "{edits}"
    );
    assert_eq!(items[0]["by"], owner.as_str(), "{edits}");
    assert_eq!(
        items[0]["before"],
        json!({"summary": "Questions", "description": "# Medical QA\n\nQuestions and answers.\n", "tags": ["health", "qa"]}),
        "{edits}"
    );
    assert_eq!(items[0]["after"], items[1]["before"], "{edits}");
    assert_eq!(
        items[1]["after"]["description"], "# Medical QA\n\nRevised.\n",
        "{edits}"
    );
    assert!(u(&items[0], "at") <= u(&items[1], "at"), "{edits}");
    let line = node.cli_fails(&[
        "--key",
        "dev1",
        "datanet",
        "edit",
        "med-qa",
        "--summary",
        "mine",
    ]);
    assert!(
        line.contains("forbidden"),
        "a non-owner's edit is refused: {line}"
    );
    let edits_after = node.get_ok("/api/v1/datanets/med-qa/edits").await;
    assert_eq!(edits_after, edits, "a refused edit leaves no history");

    // The original files by hash, with their content types; through the CLI too.
    let all_files: Vec<&TestFile> = batch1.iter().chain(&batch2).collect();
    let all_contribs: Vec<&Value> = got1.iter().chain(&got2).collect();
    for (f, c) in all_files.iter().zip(&all_contribs) {
        let hash = blake3_hex(&f.bytes);
        let resp = node
            .http()
            .get(node.at(&format!("/api/v1/blobs/{hash}")))
            .send()
            .await
            .expect("GET blob");
        assert_eq!(resp.status().as_u16(), 200, "blob of {}", f.name);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            ct.starts_with(f.content_type),
            "content type of {}: {ct}",
            f.name
        );
        assert_eq!(
            ct,
            c["content_type"].as_str().unwrap_or(""),
            "blob and contribution agree"
        );
        let body = resp.bytes().await.expect("blob bytes");
        assert_eq!(
            body.as_ref(),
            f.bytes.as_slice(),
            "blob of {} is the original",
            f.name
        );
        let out = scratch.join(format!("copy-{}", f.name));
        let o = node.cli(&["blob", &hash, "-o", &out.display().to_string()]);
        assert!(
            o.status.success(),
            "blob -o: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            std::fs::read(&out).expect("read copy"),
            f.bytes,
            "CLI blob -o {}",
            f.name
        );
    }

    // The contributor's record.
    let rec = node.cli_json(&["contributor", &contributor]);
    let n = all_contribs.len() as u64;
    assert_eq!(rec["address"], contributor.as_str(), "{rec}");
    assert_eq!(
        (
            u(&rec, "contributions"),
            u(&rec, "accepted"),
            u(&rec, "rejected"),
            u(&rec, "pending")
        ),
        (n, n - 1, 1, 0),
        "{rec}"
    );
    let total_rows: u64 = all_contribs.iter().map(|c| u(c, "row_count")).sum();
    let total_bytes: u64 = all_files.iter().map(|f| f.bytes.len() as u64).sum();
    assert_eq!(
        (u(&rec, "rows"), u(&rec, "bytes")),
        (total_rows, total_bytes),
        "{rec}"
    );
    assert_eq!(
        ids(rec["items"].as_array().expect("items")),
        all_ids,
        "{rec}"
    );
    let owner_rec = node.get_ok(&format!("/api/v1/contributors/{owner}")).await;
    assert_eq!(u(&owner_rec, "contributions"), 0, "{owner_rec}");

    // node info agrees with all of the above.
    let info = node.cli_json(&["node", "info"]);
    assert_eq!(info["chain_id"], 1612, "{info}");
    assert_eq!(info["dev"], true, "{info}");
    assert_eq!(
        info["eip712_domain"],
        json!({"name": "Commons", "version": "1", "chainId": 1612}),
        "{info}"
    );
    assert_eq!(info["peer_id"], node.info["peer_id"], "{info}");
    assert_eq!(
        format!("http://{}", info["http"].as_str().unwrap_or("")),
        node.url,
        "{info}"
    );
    let st = &info["stats"];
    assert_eq!(
        (
            u(st, "datanets"),
            u(st, "contributions"),
            u(st, "rows"),
            u(st, "versions"),
            u(st, "blobs")
        ),
        (1, n, total_rows, 3, n),
        "{info}"
    );
    assert_eq!(u(st, "blob_bytes"), total_bytes, "{info}");
    assert!(info["limits"]["max_upload_bytes"].is_u64(), "{info}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_page_with_a_cursor_in_a_stable_order() {
    let node = Node::start(Opts::default());
    node.create_datanet(&dev(0), "paging", false).await;
    // Two contributions so row ids of one version come from two files; a third stays
    // pending and must not appear.
    let a: String = (0..57).map(|i| format!("Paragraph A{i}.\n\n")).collect();
    let b: String = (0..30).map(|i| format!("Paragraph B{i}.\n\n")).collect();
    let c1 = node
        .contribute_ok(&dev(1), "paging", "a.txt", a.as_bytes())
        .await;
    let c2 = node
        .contribute_ok(&dev(2), "paging", "b.txt", b.as_bytes())
        .await;
    node.contribute_ok(&dev(3), "paging", "c.txt", b"pending row\n")
        .await;
    let r = node
        .review_ok(&dev(0), "paging", &[u(&c1, "id"), u(&c2, "id")], true, "")
        .await;
    let v = &r["version"];
    assert_eq!(u(v, "row_count"), 87, "{v}");
    let reference = version_rows(&node, "paging", 1, 1000).await;
    assert_eq!(reference.len(), 87);
    let texts: Vec<&str> = reference
        .iter()
        .map(|r| r["text"].as_str().unwrap_or(""))
        .collect();
    let want: Vec<String> = (0..57)
        .map(|i| format!("Paragraph A{i}."))
        .chain((0..30).map(|i| format!("Paragraph B{i}.")))
        .collect();
    assert_eq!(
        texts, want,
        "rows in row-id order, file order within a contribution"
    );
    for limit in [1, 2, 7, 86, 87, 88, 100] {
        let got = version_rows(&node, "paging", 1, limit).await;
        assert_eq!(got, reference, "paging with limit {limit}");
    }
    // Paging twice gives the same pages (a stable order).
    let p1 = node
        .get_ok("/api/v1/datanets/paging/rows?limit=10&cursor=5")
        .await;
    let p2 = node
        .get_ok("/api/v1/datanets/paging/rows?limit=10&cursor=5")
        .await;
    assert_eq!(p1, p2);
    assert!(
        p1["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|r| u(r, "id") > 5),
        "a cursor is exclusive: {p1}"
    );
    // A full last page says there is no more.
    let last = node.get_ok("/api/v1/datanets/paging/rows?limit=87").await;
    assert!(last["next_cursor"].is_null(), "{last}");
    let more = node.get_ok("/api/v1/datanets/paging/rows?limit=86").await;
    assert!(more["next_cursor"].is_string(), "{more}");
    // Contributions page the same way.
    let contribs = node
        .all_pages("/api/v1/datanets/paging/contributions", 1)
        .await;
    assert_eq!(contribs.len(), 3);
    assert_eq!(
        ids(&contribs),
        vec![u(&c1, "id"), u(&c2, "id"), u(&c2, "id") + 1]
    );
    // The rows of one contribution page too.
    let id = u(&c1, "id");
    let rows = node
        .all_pages(&format!("/api/v1/contributions/{id}/rows"), 10)
        .await;
    assert_eq!(rows, reference[..57].to_vec(), "rows of a contribution");
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_let_a_reviewer_review_and_only_listed_contributors_contribute_privately() {
    let node = Node::start(Opts::default());
    node.create_datanet(&dev(0), "closed", true).await;
    let (reviewer, member) = (address(&dev(2)), address(&dev(3)));
    let d = node.cli_json(&[
        "--key",
        "dev0",
        "datanet",
        "roles",
        "closed",
        "--reviewer",
        &reviewer,
        "--contributor",
        &member,
    ]);
    assert_eq!(d["visibility"], "private", "{d}");
    assert_eq!(d["reviewers"], json!([reviewer]), "{d}");
    assert_eq!(d["contributors"], json!([member]), "{d}");
    let c = node
        .contribute_ok(&dev(3), "closed", "m.txt", b"members only\n")
        .await;
    let own = node
        .contribute_ok(&dev(0), "closed", "o.txt", b"the owner may too\n")
        .await;
    let r = node
        .review_ok(&dev(2), "closed", &[u(&c, "id"), u(&own, "id")], true, "ok")
        .await;
    assert_eq!(r["version"]["created_by"], reviewer.as_str(), "{r}");
    assert_eq!(r["version"]["reason"], "ok", "{r}");
    let path = node.scratch().join("x.txt");
    std::fs::write(&path, "outsider\n").expect("write");
    let line = node.cli_fails(&[
        "--key",
        "dev4",
        "datanet",
        "contribute",
        "closed",
        &path.display().to_string(),
    ]);
    assert!(line.contains("forbidden"), "{line}");
}

/// The manifest entry of one file in a batch upload, signed by `key`.
fn batch_entry(
    key: &alloy_signer_local::PrivateKeySigner,
    slug: &str,
    name: &str,
    bytes: &[u8],
) -> Value {
    let h: BTreeMap<String, String> = crate::support::upload_headers(key, slug, name, bytes, None)
        .into_iter()
        .collect();
    json!({
        "name": name,
        "signer": h["x-commons-signer"],
        "nonce": h["x-commons-nonce"],
        "deadline": h["x-commons-deadline"].parse::<u64>().expect("deadline"),
        "signature": h["x-commons-signature"],
    })
}

async fn post_batch(
    node: &Node,
    slug: &str,
    manifest: Option<&Value>,
    files: &[(&str, &[u8])],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(m) = manifest {
        form = form.text("manifest", m.to_string());
    }
    for (name, bytes) in files {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    }
    let r = node
        .http()
        .post(node.at(&format!("/api/v1/datanets/{slug}/contributions/batch")))
        .multipart(form)
        .send()
        .await
        .expect("batch upload");
    crate::support::answer(r).await
}

#[tokio::test]
async fn a_batch_upload_stores_each_good_file_and_refuses_each_bad_one_alone() {
    let node = Node::start(Opts::default());
    node.create_datanet(&dev(0), "bulk", false).await;
    let before = node.stats().await;
    let good_a: &[u8] = b"first paragraph\n\nsecond paragraph\n";
    let good_b: &[u8] = b"{\"q\":\"one\"}\n{\"q\":\"two\"}\n{\"q\":\"three\"}\n";
    let bad_csv: &[u8] = b"a,b\n1,2\n\"open quote\n";
    let forged: &[u8] = b"signed by someone else\n";
    let mut forged_entry = batch_entry(&dev(2), "bulk", "f.txt", forged);
    forged_entry["signer"] = json!(address(&dev(3)));
    let manifest = json!({"files": [
        batch_entry(&dev(1), "bulk", "a.txt", good_a),
        batch_entry(&dev(1), "bulk", "bad.csv", bad_csv),
        forged_entry,
        batch_entry(&dev(2), "bulk", "b.jsonl", good_b),
    ]});
    let files = [
        ("a.txt", good_a),
        ("bad.csv", bad_csv),
        ("f.txt", forged),
        ("b.jsonl", good_b),
    ];
    let (status, v) = post_batch(&node, "bulk", Some(&manifest), &files).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((u(&v, "created"), u(&v, "failed")), (2, 2), "{v}");
    let items = v["items"].as_array().expect("items");
    let statuses: Vec<u64> = items.iter().map(|i| u(i, "status")).collect();
    assert_eq!(statuses, vec![201, 400, 401, 201], "{v}");
    assert_eq!(items[1]["error"]["code"], "malformed_record", "{v}");
    assert!(
        items[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 3")),
        "{v}"
    );
    assert_eq!(items[2]["error"]["code"], "signer_mismatch", "{v}");
    let a = &items[0]["contribution"];
    let b = &items[3]["contribution"];
    assert_eq!((u(a, "row_count"), u(b, "row_count")), (2, 3), "{v}");
    assert_eq!(a["status"], "pending", "{v}");
    assert_eq!(a["contributor"], address(&dev(1)).as_str(), "{v}");
    assert_eq!(b["contributor"], address(&dev(2)).as_str(), "{v}");
    // Each stored file reads back whole; the refused ones left nothing.
    assert_eq!(
        node.get_ok(&format!("/api/v1/contributions/{}", u(a, "id")))
            .await,
        *a
    );
    let (s, blob) = node
        .get(&format!("/api/v1/blobs/{}", blake3_hex(bad_csv)))
        .await;
    assert_eq!(s, 404, "{blob}");
    let after = node.stats().await;
    assert_eq!(
        u(&after, "contributions") - u(&before, "contributions"),
        2,
        "{after}"
    );
    assert_eq!(u(&after, "rows") - u(&before, "rows"), 5, "{after}");

    // A replayed manifest is refused file by file: every nonce is used.
    let replay = json!({"files": [manifest["files"][0].clone()]});
    let (status, v) = post_batch(&node, "bulk", Some(&replay), &files[..1]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["error"]["code"], "nonce_reused", "{v}");

    // Request-level mistakes are refused whole.
    let (s, v) = post_batch(&node, "bulk", None, &files[..1]).await;
    assert_error(&(s, v), 400, "bad_request");
    let two = json!({"files": [batch_entry(&dev(1), "bulk", "x.txt", b"x\n"), batch_entry(&dev(1), "bulk", "y.txt", b"y\n")]});
    let (s, v) = post_batch(&node, "bulk", Some(&two), &[("x.txt", b"x\n")]).await;
    assert_error(&(s, v), 400, "bad_request");
    let (s, v) = post_batch(
        &node,
        "bulk",
        Some(&two),
        &[("y.txt", b"y\n"), ("x.txt", b"x\n")],
    )
    .await;
    assert_error(&(s, v), 400, "bad_request");
    let (s, v) = post_batch(
        &node,
        "no-such",
        Some(&two),
        &[("x.txt", b"x\n"), ("y.txt", b"y\n")],
    )
    .await;
    assert_error(&(s, v), 404, "not_found");
    let r = node
        .http()
        .post(node.at("/api/v1/datanets/bulk/contributions/batch"))
        .body("not multipart")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        u(&node.stats().await, "contributions"),
        u(&after, "contributions")
    );

    // The CLI sends several files as batches and names each refused file.
    let dir = node.scratch();
    let ok_path = dir.join("ok.txt");
    let bad_path = dir.join("bad.jsonl");
    std::fs::write(&ok_path, "fine\n").expect("write");
    std::fs::write(&bad_path, "{\"a\":1}\nnot json\n").expect("write");
    let line = node.cli_fails(&[
        "--key",
        "dev1",
        "datanet",
        "contribute",
        "bulk",
        &ok_path.display().to_string(),
        &bad_path.display().to_string(),
    ]);
    assert!(line.contains("1 of 2 files were refused"), "{line}");
    assert_eq!(
        u(&node.stats().await, "contributions"),
        u(&after, "contributions") + 1
    );
}

#[test]
fn dev_keys_are_the_well_known_accounts() {
    let out = crate::support::run_bounded(
        {
            let mut c = command();
            c.args(["dev-keys", "--json"]);
            c
        },
        std::time::Duration::from_secs(60),
    );
    let v = json_output(&out, &["dev-keys", "--json"]);
    let accounts = v["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 10, "{v}");
    assert_eq!(
        accounts[0]["address"], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        "{v}"
    );
    assert_eq!(
        accounts[1]["address"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        "{v}"
    );
    let mut seen = BTreeSet::new();
    for (i, a) in accounts.iter().enumerate() {
        assert_eq!(a["name"], format!("dev{i}"), "{a}");
        let key = a["private_key"].as_str().expect("private_key");
        let parsed = commons::auth::parse_key(key, None).expect("a usable key");
        assert_eq!(a["address"], address(&parsed), "key and address agree: {a}");
        assert!(seen.insert(key.to_string()), "keys differ");
    }
    assert_eq!(
        v["mnemonic"], "test test test test test test test test test test test junk",
        "{v}"
    );
    // Without --json: a human table that names every account.
    let mut c = command();
    c.arg("dev-keys");
    let out = crate::support::run_bounded(c, std::time::Duration::from_secs(60));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for a in accounts {
        assert!(
            text.contains(a["address"].as_str().unwrap_or("?")),
            "{text}"
        );
    }
}

/// `serve --print-config` with the given env; the parsed TOML.
fn print_config(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> BTreeMap<String, toml::Value> {
    let mut c = command();
    c.arg("serve")
        .arg("--print-config")
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = crate::support::run_bounded(c, std::time::Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "serve --print-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&text)
        .unwrap_or_else(|e| panic!("--print-config printed invalid TOML ({e}):\n{text}"))
}

#[test]
fn print_config_shows_flags_over_env_over_file_over_defaults() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let defaults = print_config(dir, &[], &[]);
    let limits = |c: &BTreeMap<String, toml::Value>, k: &str| {
        c["limits"][k]
            .as_integer()
            .unwrap_or_else(|| panic!("limits.{k} in {c:?}"))
    };
    assert_eq!(
        defaults["chain_id"].as_integer(),
        Some(1612),
        "{defaults:?}"
    );
    assert_eq!(
        defaults["http"].as_str(),
        Some("127.0.0.1:8080"),
        "{defaults:?}"
    );
    assert_eq!(limits(&defaults, "max_upload_bytes"), 5 << 20);
    assert_eq!(limits(&defaults, "daily_files_per_contributor"), 20);
    assert!(
        !dir.join("commons.redb").exists(),
        "--print-config must not open the database"
    );

    std::fs::write(
        dir.join("commons.toml"),
        "chain_id = 7\nhttp = \"127.0.0.1:9999\"\nlog = \"warn\"\n[limits]\nmax_upload_bytes = 100\ndaily_files_per_contributor = 3\ndaily_bytes_per_datanet = 5000\n",
    )
    .expect("write commons.toml");
    let file = print_config(dir, &[], &[]);
    assert_eq!(
        file["chain_id"].as_integer(),
        Some(7),
        "file beats defaults"
    );
    assert_eq!(file["http"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(limits(&file, "max_upload_bytes"), 100);
    assert_eq!(
        limits(&file, "daily_bytes_per_contributor"),
        10 << 20,
        "default kept"
    );

    let env = [
        ("COMMONS_CHAIN_ID", "8"),
        ("COMMONS_MAX_UPLOAD_BYTES", "200"),
        ("COMMONS_LOG", "debug"),
    ];
    let with_env = print_config(dir, &[], &env);
    assert_eq!(with_env["chain_id"].as_integer(), Some(8), "env beats file");
    assert_eq!(limits(&with_env, "max_upload_bytes"), 200, "env beats file");
    assert_eq!(with_env["log"].as_str(), Some("debug"));
    assert_eq!(
        limits(&with_env, "daily_files_per_contributor"),
        3,
        "file still counts"
    );

    let flags = print_config(
        dir,
        &[
            "--chain-id",
            "9",
            "--daily-bytes-per-datanet",
            "6000",
            "--http",
            "127.0.0.1:7777",
        ],
        &env,
    );
    assert_eq!(flags["chain_id"].as_integer(), Some(9), "flag beats env");
    assert_eq!(
        limits(&flags, "daily_bytes_per_datanet"),
        6000,
        "flag beats file"
    );
    assert_eq!(flags["http"].as_str(), Some("127.0.0.1:7777"));
    assert_eq!(limits(&flags, "max_upload_bytes"), 200, "env still counts");
    assert_eq!(
        limits(&flags, "daily_files_per_contributor"),
        3,
        "file still counts"
    );
    assert_eq!(flags["dev"].as_bool(), Some(false));
    let dev = print_config(dir, &["--dev"], &[]);
    assert_eq!(dev["dev"].as_bool(), Some(true));
}

#[test]
fn print_config_with_json_prints_one_json_document() {
    // "Every command takes --json" (README): `serve --print-config --json` included.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = command();
    c.args([
        "serve",
        "--print-config",
        "--json",
        "--chain-id",
        "9",
        "--data-dir",
    ])
    .arg(tmp.path());
    let out = crate::support::run_bounded(c, std::time::Duration::from_secs(60));
    let v = json_output(&out, &["serve", "--print-config", "--json"]);
    assert_eq!(v["chain_id"], 9, "{v}");
    assert_eq!(v["limits"]["max_upload_bytes"], 5 << 20, "{v}");
}
