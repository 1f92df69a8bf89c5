//! SQL benchmark (`cargo bench --bench sql`): the same data in Commons and in SQLite.
//!
//! Builds `COMMONS_BENCH_ROWS` rows (default 1,000,000) of about 500 bytes in 50 datanets from
//! 10,000 contributors (contributions of 50 rows, all accepted) through `Store`, and the same
//! rows into SQLite (one table, the contributor on each row: plain SQL for the aggregate). Then:
//!
//! - **aggregate**: `SELECT contributor, count(*) FROM rows GROUP BY 1 ORDER BY 2 DESC LIMIT 10`
//!   (Commons: the SQL engine in process; SQLite: the same statement), best of 5;
//! - **point lookup**: `SELECT * FROM rows WHERE id = $1` for random ids, median of 1,000: in
//!   process for both, and over the PostgreSQL wire with psycopg when `target/pyenv` has it.
//!
//! Prints a table and one JSON line starting with `{"bench":"sql"`.

use std::time::{Duration, Instant};

use anyhow::Context;
use commons_query::sql::{ScalarValue, SqlConfig, SqlEngine};
use commons_storage::model::{DataKind, SignedBy};
use commons_storage::parse::Format;
use commons_storage::{Limits, NewContribution, NewDatanet, ReviewRequest, Store};
use serde_json::json;

const DATANETS: u64 = 50;
const CONTRIBUTORS: u64 = 10_000;
const ROWS_PER_CONTRIBUTION: u64 = 50;
const ROW_BYTES: usize = 500;
const AGG: &str = "SELECT contributor, count(*) FROM rows GROUP BY 1 ORDER BY 2 DESC LIMIT 10";

fn signed(signer: [u8; 20], nonce: u64) -> SignedBy {
    let mut n = [0u8; 32];
    n[24..].copy_from_slice(&nonce.to_be_bytes());
    SignedBy {
        signer,
        nonce: n,
        deadline: u64::MAX,
        signature: vec![0; 65],
    }
}

fn addr(i: u64) -> [u8; 20] {
    let mut a = [0u8; 20];
    a[..8].copy_from_slice(&(i + 1).to_be_bytes());
    a[19] = 0xc0;
    a
}

/// Deterministic filler text of about `ROW_BYTES` bytes.
fn text(seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "data", "model", "open", "row", "fever", "cough", "bread", "soup", "river", "stone",
        "light", "vector", "ledger", "token", "review", "version",
    ];
    let mut s = String::with_capacity(ROW_BYTES + 16);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    while s.len() < ROW_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(WORDS[(x % 16) as usize]);
        s.push(' ');
    }
    s.push_str(&seed.to_string());
    s
}

fn main() -> anyhow::Result<()> {
    let rows: u64 = std::env::var("COMMONS_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let contributions = rows.div_ceil(ROWS_PER_CONTRIBUTION);
    let tmp = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "commons sql bench: {rows} rows, {DATANETS} datanets, {CONTRIBUTORS} contributors, {cores} cores"
    );

    // --- Commons ---
    let t = Instant::now();
    let limits = Limits {
        max_upload_bytes: u64::MAX,
        daily_bytes_per_contributor: u64::MAX,
        daily_files_per_contributor: u64::MAX,
        daily_bytes_per_datanet: u64::MAX,
    };
    let store = Store::create_fresh(&tmp.path().join("commons.redb"), limits)?;
    let owner = [0x0a; 20];
    for d in 0..DATANETS {
        store.create_datanet(NewDatanet {
            slug: format!("dn-{d}"),
            name: format!("Datanet {d}"),
            summary: String::new(),
            description: String::new(),
            tags: vec!["bench".into()],
            kind: DataKind::Text,
            private: false,
            signed: signed(owner, d + 1),
        })?;
    }
    let threads = cores.clamp(1, 8) as u64;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let store = &store;
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<()> {
                    let mut c = t;
                    while c < contributions {
                        let n = ROWS_PER_CONTRIBUTION.min(rows - c * ROWS_PER_CONTRIBUTION);
                        let rs: Vec<String> = (0..n)
                            .map(|k| text(c * ROWS_PER_CONTRIBUTION + k))
                            .collect();
                        let bytes = rs.join("\n\n").into_bytes();
                        store.contribute(NewContribution {
                            datanet: format!("dn-{}", c % DATANETS),
                            file_name: format!("c{c}.txt"),
                            file_hash: *blake3::hash(&bytes).as_bytes(),
                            bytes,
                            format: Format::Txt,
                            rows: rs,
                            signed: signed(addr(c % CONTRIBUTORS), c + 1),
                        })?;
                        c += threads;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    // Accept everything, per datanet in batches.
    for d in 0..DATANETS {
        let ids: Vec<u64> = (0..contributions)
            .filter(|c| c % DATANETS == d)
            .map(|c| c + 1)
            .collect();
        for (k, chunk) in ids.chunks(2000).enumerate() {
            let nonce_base = 1_000_000 + d * 1000 + k as u64;
            store.review(ReviewRequest {
                datanet: format!("dn-{d}"),
                contributions: chunk.to_vec(),
                accept: true,
                reason: None,
                signed: signed(owner, nonce_base),
            })?;
        }
    }
    let load_commons = t.elapsed();
    println!("loaded Commons in {:.1} s", load_commons.as_secs_f64());

    // --- SQLite ---
    let t = Instant::now();
    let mut db = rusqlite::Connection::open(tmp.path().join("sqlite.db"))?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE rows (id INTEGER PRIMARY KEY, datanet INTEGER, contribution INTEGER,
           contributor TEXT, ordinal INTEGER, hash TEXT, text TEXT);",
    )?;
    {
        let tx = db.transaction()?;
        {
            let mut ins = tx.prepare("INSERT INTO rows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
            for id in 1..=rows {
                let c = (id - 1) / ROWS_PER_CONTRIBUTION;
                let t = text(id - 1);
                ins.execute(rusqlite::params![
                    id as i64,
                    (c % DATANETS + 1) as i64,
                    (c + 1) as i64,
                    format!("0x{}", hex::encode(addr(c % CONTRIBUTORS))),
                    ((id - 1) % ROWS_PER_CONTRIBUTION) as i64,
                    hex::encode(blake3::hash(t.as_bytes()).as_bytes()),
                    t,
                ])?;
            }
        }
        tx.commit()?;
    }
    println!("loaded SQLite in {:.1} s", t.elapsed().as_secs_f64());

    // --- queries ---
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio")?;
    let engine = SqlEngine::new(
        store.database().clone(),
        SqlConfig {
            time_limit: Duration::from_secs(120),
            ..SqlConfig::default()
        },
        None,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let best = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut b = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            f()?;
            b = b.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(b)
    };
    let mut first = Vec::new();
    let commons_agg = best(&mut || {
        let r = rt
            .block_on(engine.collect(AGG, vec![], 100))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        first = r.batches;
        Ok(())
    })?;
    let mut sqlite_top = Vec::new();
    let sqlite_agg = best(&mut || {
        let mut st = db.prepare_cached(AGG)?;
        sqlite_top = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    })?;
    let commons_rows: usize = first.iter().map(|b| b.num_rows()).sum();
    anyhow::ensure!(commons_rows == sqlite_top.len(), "both answer the top 10");

    let ids: Vec<i64> = (0..1000u64)
        .map(|i| ((i * 2_654_435_761) % rows + 1) as i64)
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut lat = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let r = rt
            .block_on(engine.collect(
                "SELECT * FROM rows WHERE id = $1",
                vec![ScalarValue::Int64(Some(*id))],
                10,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(r.rows == 1, "row {id} found");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let commons_point = median(lat);
    let mut lat = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let mut st = db.prepare_cached("SELECT * FROM rows WHERE id = ?1")?;
        let n = st.query_map([id], |_| Ok(()))?.count();
        anyhow::ensure!(n == 1, "row {id} found");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let sqlite_point = median(lat);

    // Over the wire: psycopg against the PostgreSQL listener, when installed.
    let wire_point = rt.block_on(wire_point_lookup(&engine, rows))?;

    println!();
    println!("| query | Commons | SQLite | SQLite / Commons |");
    println!("|---|---|---|---|");
    println!(
        "| `{AGG}` | {commons_agg:.1} ms | {sqlite_agg:.1} ms | {:.2}× |",
        sqlite_agg / commons_agg
    );
    println!(
        "| point lookup by row id (in process, median) | {commons_point:.3} ms | {sqlite_point:.3} ms | {:.2}× |",
        sqlite_point / commons_point
    );
    match wire_point {
        Some(ms) => println!(
            "| point lookup by row id over the PostgreSQL wire (psycopg, median) | {ms:.3} ms | | |"
        ),
        None => println!(
            "| point lookup over the wire | skipped: no target/pyenv with psycopg (`cargo xtask prepare`) | | |"
        ),
    }
    println!(
        "{}",
        json!({
            "bench": "sql", "rows": rows, "cores": cores,
            "load_commons_s": load_commons.as_secs_f64(),
            "aggregate_ms": {"commons": commons_agg, "sqlite": sqlite_agg, "sqlite_over_commons": sqlite_agg / commons_agg},
            "point_ms": {"commons": commons_point, "sqlite": sqlite_point, "wire_psycopg": wire_point},
        })
    );
    Ok(())
}

async fn wire_point_lookup(engine: &SqlEngine, rows: u64) -> anyhow::Result<Option<f64>> {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    if !py.exists() {
        return Ok(None);
    }
    let server = commons_query::pg::PgServer::bind(
        "127.0.0.1:0".parse()?,
        engine,
        commons_query::pg::PgAuth {
            user: "commons".into(),
            password: "commons".into(),
        },
    )
    .await?;
    let port = server.local_addr()?.port();
    let task = tokio::spawn(server.serve());
    let script = format!(
        r#"
import psycopg, time, statistics
c = psycopg.connect(host="127.0.0.1", port={port}, user="commons", password="commons", dbname="commons", autocommit=True)
cur = c.cursor()
lat = []
for i in range(1000):
    rid = (i * 2654435761) % {rows} + 1
    t = time.perf_counter()
    cur.execute("SELECT * FROM rows WHERE id = %s", (rid,))
    assert len(cur.fetchall()) == 1
    lat.append((time.perf_counter() - t) * 1000)
print(statistics.median(lat))
"#
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py)
            .args(["-c", &script])
            .output()
    })
    .await??;
    task.abort();
    if !out.status.success() {
        anyhow::bail!(
            "psycopg lookup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
}
