//! SQL over HTTP (`POST /api/v1/sql`) and `commons sql`: a fixture node, the `.slt` files in
//! `tests/slt/` (queries beside their expected results), answer formats, parameters, errors,
//! read-only refusal and the time limit.
//!
//! The `.slt` format is sqllogictest's, trimmed: `query [rowsort]` + SQL + `----` + one line per
//! row (values joined by a space, `NULL` for null); `statement ok` / `statement error TEXT`
//! (TEXT is the API code or a part of the message). `UPDATE_EXPECT=1` rewrites the expected
//! rows from what the node answers.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Node, Opts, dev};

/// A node with two datanets: `med-qa` (rows 1–5; row 2 taken down in version 2; a pending
/// contribution with row 9) and `recipes` (rows 6–7 accepted, row 8 rejected).
pub(crate) async fn fixture(extra: &[&str]) -> Node {
    let mut args = vec!["--sql-time-limit-ms", "2000"];
    args.extend_from_slice(extra);
    let n = Node::start(Opts::args(&args));
    let (owner, c1, c2, c3) = (dev(0), dev(1), dev(2), dev(3));
    n.create_datanet(&owner, "med-qa", false).await;
    n.create_datanet(&owner, "recipes", false).await;
    n.contribute_ok(
        &c1,
        "med-qa",
        "a.txt",
        b"fever and cough\n\nheadache relief\n\nsleep well",
    )
    .await;
    n.contribute_ok(
        &c2,
        "med-qa",
        "b.jsonl",
        b"{\"q\":\"flu\"}\n{\"q\":\"cold\"}\n",
    )
    .await;
    n.contribute_ok(&c1, "recipes", "c.txt", b"fresh bread\n\ntomato soup")
        .await;
    n.contribute_ok(&c2, "recipes", "d.txt", b"spam spam").await;
    n.review_ok(&owner, "med-qa", &[1, 2], true, "").await;
    n.review_ok(&owner, "recipes", &[3], true, "").await;
    n.review_ok(&owner, "recipes", &[4], false, "spam").await;
    let out = n.cli(&[
        "--key",
        "dev0",
        "datanet",
        "takedown",
        "med-qa",
        "2",
        "--reason",
        "duplicate",
    ]);
    assert!(
        out.status.success(),
        "takedown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    n.contribute_ok(&c3, "med-qa", "e.txt", b"pending row")
        .await;
    n
}

/// POST SQL; status and JSON answer.
pub(crate) async fn sql(n: &Node, q: &str) -> (u16, Value) {
    n.post("/api/v1/sql", &json!({ "sql": q })).await
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => s.replace('\n', "\\n"),
        other => other.to_string(),
    }
}

fn lines(answer: &Value) -> Vec<String> {
    answer["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|r| r.iter().map(cell).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
enum Record {
    Query {
        sql: String,
        rowsort: bool,
        expected: Vec<String>,
        at: usize,
    },
    Ok {
        sql: String,
        at: usize,
    },
    Error {
        sql: String,
        expect: String,
        at: usize,
    },
}

fn parse(text: &str) -> Vec<Record> {
    let all: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let line = all[i].trim_end();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let at = i + 1;
        let head: Vec<&str> = line.split_whitespace().collect();
        i += 1;
        let mut sql = Vec::new();
        while i < all.len() && !all[i].trim().is_empty() && all[i].trim() != "----" {
            sql.push(all[i]);
            i += 1;
        }
        let sql = sql.join("\n");
        match head.as_slice() {
            ["query", rest @ ..] => {
                let mut expected = Vec::new();
                if i < all.len() && all[i].trim() == "----" {
                    i += 1;
                    while i < all.len() && !all[i].trim().is_empty() {
                        expected.push(all[i].trim_end().to_string());
                        i += 1;
                    }
                }
                out.push(Record::Query {
                    sql,
                    rowsort: rest.contains(&"rowsort"),
                    expected,
                    at,
                });
            }
            ["statement", "ok"] => out.push(Record::Ok { sql, at }),
            ["statement", "error", rest @ ..] => out.push(Record::Error {
                sql,
                expect: rest.join(" "),
                at,
            }),
            other => panic!("line {at}: unknown record {other:?}"),
        }
    }
    out
}

fn render(records: &[Record], got: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut qi = 0;
    for r in records {
        match r {
            Record::Query { sql, rowsort, .. } => {
                out.push_str(if *rowsort {
                    "query rowsort\n"
                } else {
                    "query\n"
                });
                out.push_str(sql);
                out.push_str("\n----\n");
                for l in &got[qi] {
                    out.push_str(l);
                    out.push('\n');
                }
                qi += 1;
            }
            Record::Ok { sql, .. } => {
                out.push_str("statement ok\n");
                out.push_str(sql);
                out.push('\n');
            }
            Record::Error { sql, expect, .. } => {
                out.push_str(&format!("statement error {expect}\n{sql}\n"));
            }
        }
        out.push('\n');
    }
    out
}

async fn run_slt(n: &Node, path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read slt");
    let records = parse(&text);
    let mut failures = Vec::new();
    let mut got_all = Vec::new();
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    for r in &records {
        match r {
            Record::Query {
                sql: q,
                rowsort,
                expected,
                at,
            } => {
                let (st, v) = sql(n, q).await;
                let mut got = if st == 200 {
                    lines(&v)
                } else {
                    vec![format!(
                        "ERROR {}",
                        v["error"]["code"].as_str().unwrap_or("?")
                    )]
                };
                if *rowsort {
                    got.sort();
                }
                if &got != expected {
                    failures.push(format!(
                        "{name}:{at}: {q}\n  expected: {expected:?}\n  got:      {got:?}\n  answer: {v}"
                    ));
                }
                got_all.push(got);
            }
            Record::Ok { sql: q, at } => {
                let (st, v) = sql(n, q).await;
                if st != 200 {
                    failures.push(format!(
                        "{name}:{at}: {q}\n  expected success, got {st} {v}"
                    ));
                }
            }
            Record::Error { sql: q, expect, at } => {
                let (st, v) = sql(n, q).await;
                let code = v["error"]["code"].as_str().unwrap_or("");
                let msg = v["error"]["message"].as_str().unwrap_or("");
                if st != 400 || !(code == expect || msg.contains(expect.as_str())) {
                    failures.push(format!(
                        "{name}:{at}: {q}\n  expected a 400 error '{expect}', got {st} {v}"
                    ));
                }
            }
        }
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, render(&records, &got_all)).expect("write slt");
        return Vec::new();
    }
    failures
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn slt_suite_over_the_fixture() {
    let n = fixture(&[]).await;
    let mut failures = Vec::new();
    for f in slt_files() {
        failures.extend(run_slt(&n, &f).await);
    }
    assert!(
        failures.is_empty(),
        "{} slt failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn formats_params_errors_and_the_cli() {
    let n = fixture(&[]).await;
    // JSON: columns with types, rows as arrays.
    let (st, v) = sql(&n, "SELECT id, slug FROM datanets ORDER BY id").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["columns"][0], json!({"name": "id", "type": "bigint"}));
    assert_eq!(v["rows"], json!([[1, "med-qa"], [2, "recipes"]]));
    assert_eq!(v["row_count"], 2);
    assert_eq!(v["truncated"], false);

    // Parameters ($1…).
    let (st, v) = n
        .post(
            "/api/v1/sql",
            &json!({"sql": "SELECT slug FROM datanets WHERE id = $1", "params": [2]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rows"], json!([["recipes"]]));

    // max_rows truncates.
    let (_, v) = n
        .post(
            "/api/v1/sql",
            &json!({"sql": "SELECT id FROM rows ORDER BY id", "max_rows": 2}),
        )
        .await;
    assert_eq!(v["rows"], json!([[1], [2]]));
    assert_eq!(v["truncated"], true);

    // CSV and Arrow by Accept.
    let r = n
        .http()
        .post(n.at("/api/v1/sql"))
        .header("accept", "text/csv")
        .body("SELECT id, text FROM rows WHERE datanet = 2 ORDER BY id")
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert_eq!(
        r.text().await.expect("body"),
        "id,text\n6,fresh bread\n7,tomato soup\n"
    );
    let r = n
        .http()
        .post(n.at("/api/v1/sql"))
        .header("accept", "application/vnd.apache.arrow.stream")
        .body("SELECT id FROM rows")
        .send()
        .await
        .expect("arrow");
    assert_eq!(r.status(), 200);
    let b = r.bytes().await.expect("body");
    assert!(
        b.len() > 8 && b[..4] == [0xff, 0xff, 0xff, 0xff],
        "Arrow IPC stream"
    );

    // Errors: 400 with a stable code and a readable message.
    for (q, code, part) in [
        ("SELEC 1", "sql_syntax", "syntax error"),
        ("SELECT * FROM nope", "sql_undefined", "nope"),
        ("SELECT nope FROM rows", "sql_undefined", "nope"),
        ("SELECT 'a' + 1", "sql_type", ""),
        ("DROP TABLE rows", "sql_read_only", "read-only"),
        (
            "INSERT INTO datanets (id) VALUES (9)",
            "sql_read_only",
            "INSERT",
        ),
        ("CREATE TABLE t (a INT)", "sql_read_only", "CREATE"),
        (
            "EXPLAIN ANALYZE DELETE FROM rows",
            "sql_read_only",
            "DELETE",
        ),
        (
            "SELECT count(*) FROM range(1000000000000)",
            "sql_timeout",
            "2000 ms",
        ),
    ] {
        let (st, v) = sql(&n, q).await;
        assert_eq!(st, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], code, "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(part),
            "{q}: {v}"
        );
    }
    // The node keeps serving after a cancelled query.
    let (st, _) = sql(&n, "SELECT 1").await;
    assert_eq!(st, 200);

    // EXPLAIN shows the key ranges pushed into the scan.
    let (_, v) = sql(
        &n,
        "EXPLAIN SELECT text FROM rows WHERE datanet = 1 AND id BETWEEN 2 AND 4",
    )
    .await;
    let plan = v.to_string();
    assert!(plan.contains("CommonsScan: table=rows"), "{plan}");
    assert!(plan.contains("datanet in [1]"), "{plan}");
    assert!(plan.contains("id 2..=4"), "{plan}");

    // The CLI: a table, --csv, --json.
    let out = n.cli(&["sql", "SELECT slug, row_count FROM datanets ORDER BY id"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("slug") && text.contains("med-qa") && text.contains("(2 rows"),
        "{text}"
    );
    let out = n.cli(&["sql", "--csv", "SELECT slug FROM datanets ORDER BY id"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "slug\nmed-qa\nrecipes\n"
    );
    let v = n.cli_json(&["sql", "SELECT 1 AS one"]);
    assert_eq!(v["rows"], json!([[1]]));
    let err = n.cli_fails(&["sql", "SELECT * FROM nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[tokio::test]
async fn memory_limit_cancels_the_query_and_the_node_keeps_serving() {
    let n = Node::start(Opts::args(&[
        "--sql-memory-limit-bytes",
        "200000",
        "--sql-time-limit-ms",
        "120000",
    ]));
    let (st, v) = sql(
        &n,
        "SELECT x % 3000000 AS k, count(*) FROM range(6000000) t(x) GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "sql_memory", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("memory limit"),
        "{v}"
    );
    let (st, v) = sql(&n, "SELECT count(*) FROM datanets").await;
    assert_eq!((st, &v["rows"]), (200, &json!([[0]])));
}
