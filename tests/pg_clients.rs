//! Real PostgreSQL clients against `commons serve --pg`: `psql` (Debian `postgresql-client`)
//! and psycopg (tests/pg_client.py). `cargo xtask prepare` installs both; without them these
//! tests say so and pass, unless `COMMONS_E2E_REQUIRED` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::sql::fixture;
use crate::support::{Node, run_bounded};

fn required() -> bool {
    std::env::var_os("COMMONS_E2E_REQUIRED").is_some()
}

fn skip(what: &str) {
    assert!(!required(), "{what} is missing (run `cargo xtask prepare`)");
    eprintln!("SKIPPED: {what} is missing; `cargo xtask prepare` installs it");
}

fn psql_path() -> Option<PathBuf> {
    ["/usr/bin/psql", "/usr/local/bin/psql"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    let candidates = [venv, PathBuf::from("python3")];
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import psycopg"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn pg_port(n: &Node) -> u16 {
    let addr = n.info["pg"]["addr"]
        .as_str()
        .expect("serve --json prints pg.addr");
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pg port")
}

fn psql(psql: &Path, port: u16, password: &str, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(psql);
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "commons",
        "-d",
        "commons",
    ])
    .args(["-X", "-v", "ON_ERROR_STOP=1"])
    .args(args)
    .env("PGPASSWORD", password)
    .env("PGCONNECT_TIMEOUT", "10");
    let out = run_bounded(c, Duration::from_secs(60));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn psql_lists_describes_and_queries() {
    let Some(bin) = psql_path() else {
        return skip("psql (postgresql-client)");
    };
    let n = fixture(&["--pg", "127.0.0.1:0"]).await;
    let port = pg_port(&n);

    let (ok, out, err) = psql(&bin, port, "commons", &["-c", "\\dt"]);
    assert!(ok, "\\dt failed: {err}");
    for t in [
        "datanets",
        "datanet_tags",
        "contributions",
        "rows",
        "versions",
        "version_rows",
        "contributors",
        "edits",
    ] {
        assert!(out.contains(t), "\\dt lacks {t}:\n{out}");
    }
    let (ok, out, err) = psql(&bin, port, "commons", &["-c", "\\d rows"]);
    assert!(ok, "\\d rows failed: {err}");
    for c in ["contributor", "text", "added_in", "removed_in"] {
        assert!(out.contains(c), "\\d rows lacks {c}:\n{out}");
    }
    let (ok, out, err) = psql(
        &bin,
        port,
        "commons",
        &["-A", "-t", "-c", "SELECT slug FROM datanets ORDER BY id"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "med-qa\nrecipes\n");

    // Refused writes, and the time limit, with their SQLSTATE (VERBOSITY verbose shows it).
    let (ok, _, err) = psql(
        &bin,
        port,
        "commons",
        &["-v", "VERBOSITY=verbose", "-c", "DROP TABLE rows"],
    );
    assert!(!ok && err.contains("25006"), "{err}");
    let (ok, _, err) = psql(
        &bin,
        port,
        "commons",
        &[
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "SELECT count(*) FROM range(1000000000000)",
        ],
    );
    assert!(!ok && err.contains("57014"), "{err}");
    let (ok, _, err) = psql(&bin, port, "commons", &["-c", "SELEC 1"]);
    assert!(!ok && err.contains("syntax error"), "{err}");

    // A wrong password is refused and logged; repeated failures are rate-limited.
    let (ok, _, err) = psql(&bin, port, "wrong", &["-c", "SELECT 1"]);
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    for _ in 0..5 {
        psql(&bin, port, "wrong", &["-c", "SELECT 1"]);
    }
    let (ok, _, err) = psql(&bin, port, "commons", &["-c", "SELECT 1"]);
    assert!(
        !ok && err.contains("too many failed password attempts"),
        "{err}"
    );
    assert!(
        n.log().contains("pg login failed"),
        "failed logins are logged"
    );
}

/// Run `tests/NAME` (a psycopg script) against a fixture node's PostgreSQL listener and parse
/// the one JSON line it prints; `None` (the test skips) without python3 and psycopg.
async fn python_script(name: &str) -> Option<Value> {
    let Some(py) = python() else {
        skip("python3 with psycopg");
        return None;
    };
    let n = fixture(&["--pg", "127.0.0.1:0"]).await;
    let port = pg_port(&n);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    let mut c = Command::new(py);
    c.arg(script)
        .args(["127.0.0.1", &port.to_string(), "commons"]);
    let out = run_bounded(c, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(stdout.trim()).expect("one JSON line"))
}

#[tokio::test]
async fn psycopg_params_search_timeout_and_cancel() {
    let Some(v) = python_script("pg_client.py").await else {
        return;
    };
    assert_eq!(v["param"], serde_json::json!([["recipes", 2]]), "{v}");
    assert_eq!(
        v["param2"],
        serde_json::json!([
            [3, "sleep well"],
            [4, "{\"q\":\"flu\"}"],
            [5, "{\"q\":\"cold\"}"]
        ]),
        "{v}"
    );
    assert_eq!(v["count"], 7, "{v}");
    assert_eq!(v["delete"], "25006", "{v}");
    assert_eq!(v["timeout"], "57014", "{v}");
    assert!(v["timeout_s"].as_f64().unwrap_or(99.0) < 10.0, "{v}");
    assert_eq!(v["after_timeout"], 1, "{v}");
    assert_eq!(v["cancel"], "57014", "{v}");
    assert!(
        v["cancel_message"]
            .as_str()
            .unwrap_or("")
            .contains("user request"),
        "{v}"
    );
    assert!(
        v["wrong_password"]
            .as_str()
            .unwrap_or("")
            .contains("password authentication failed"),
        "{v}"
    );
    if let Some(hits) = v["search"].as_array() {
        assert!(
            hits.iter().any(|h| h[0] == 1),
            "search('fever') finds row 1: {v}"
        );
    } else {
        let e = &v["search_error"];
        assert!(
            e[1].as_str().unwrap_or("").contains("no full-text index"),
            "search() fails only when the node has no index: {v}"
        );
    }
}

/// What DBeaver and Grafana send when they connect and browse (tests/pg_tools.py replays it
/// through psycopg): every statement answers, and the catalogs list our tables and columns.
#[tokio::test]
async fn dbeaver_and_grafana_catalog_queries() {
    let Some(v) = python_script("pg_tools.py").await else {
        return;
    };
    let steps = v.as_object().expect("an object of steps");
    let failed: Vec<String> = steps
        .iter()
        .filter(|(_, r)| r.get("error").is_some())
        .map(|(k, r)| format!("{k}: {r}"))
        .collect();
    assert!(
        failed.is_empty(),
        "statements refused:\n{}",
        failed.join("\n")
    );
    let first = |k: &str| -> Vec<Value> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k}: {v}"))
            .iter()
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(v["current_schema"][0][0], "public", "{v}");
    assert!(
        v["version"][0][0]
            .as_str()
            .unwrap_or("")
            .starts_with("PostgreSQL 16."),
        "clients parse the major version from version(): {v}"
    );
    assert_eq!(v["database"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["database"][0][1], "commons", "{v}");
    let namespaces: Vec<&str> = v["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|r| r[1].as_str())
        .collect();
    for ns in ["public", "pg_catalog", "information_schema"] {
        assert!(namespaces.contains(&ns), "namespace {ns}: {v}");
    }
    let tables: Vec<String> = v["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|r| r[1].as_str().map(str::to_string))
        .collect();
    let grafana: Vec<String> = first("grafana_tables")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let picker: Vec<String> = first("grafana_show_tables")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    // datafusion-postgres answers Grafana's search-path subquery with an empty set (it has no
    // `current_setting`), so the picker offers schema-qualified names; they query the same.
    let qualified: Vec<String> = grafana.iter().map(|t| format!("public.{t}")).collect();
    assert_eq!(
        picker, qualified,
        "Grafana's table picker lists the public tables: {v}"
    );
    for t in [
        "contributions",
        "contributors",
        "datanet_tags",
        "datanets",
        "edits",
        "rows",
        "version_rows",
        "versions",
    ] {
        assert!(tables.iter().any(|x| x == t), "pg_class lists {t}: {v}");
        assert!(
            grafana.iter().any(|x| x == t),
            "information_schema lists {t}: {v}"
        );
    }
    let cols: Vec<Value> = first("columns");
    for c in ["id", "datanet", "contribution", "contributor", "text"] {
        assert!(
            cols.iter().any(|x| x == c),
            "pg_attribute lists rows.{c}: {v}"
        );
    }
    let vcols = first("grafana_columns");
    for c in ["datanet", "number", "root", "row_count"] {
        assert!(
            vcols.iter().any(|x| x == c),
            "information_schema lists versions.{c}: {v}"
        );
    }
    // Grafana picks columns by their PostgreSQL type names.
    let types: std::collections::BTreeMap<String, String> = v["grafana_schema"]
        .as_array()
        .expect("schema")
        .iter()
        .filter_map(|r| Some((r[0].as_str()?.to_string(), r[1].as_str()?.to_string())))
        .collect();
    assert_eq!(types["created_at"], "timestamp with time zone", "{v}");
    assert_eq!(types["number"], "bigint", "{v}");
    assert_eq!(types["root"], "text", "{v}");
    assert_eq!(types["contributions"], "ARRAY", "{v}");
    let series = v["grafana_timeseries"].as_array().expect("series");
    let total: i64 = series.iter().filter_map(|r| r[1].as_i64()).sum();
    assert!(total > 0, "contributions per day: {v}");
}
