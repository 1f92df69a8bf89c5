//! Ingest and read benchmark of the foundation (`cargo bench --bench ingest`).
//!
//! Writes N text contributions of about 1 KB (2–4 paragraphs each, so 2–4 rows) six ways, all
//! with durable commits, and reads them back:
//!
//! - **http**: through the REST API of a node started in this process, from
//!   `COMMONS_BENCH_CLIENTS` concurrent clients, each a tokio task with its own keep-alive
//!   connection, one `POST …/contributions` per file. Uploads are signed (EIP-712
//!   `Contribute`) before the clock starts: signing is the client's cost; verifying is the
//!   node's and is measured.
//! - **http, batches**: the same clients, `POST …/contributions/batch` with
//!   `COMMONS_BENCH_BATCH` signed files per multipart request (a folder upload).
//! - **library**: `Store::contribute` from as many threads, rows parsed beforehand.
//! - **library, batches**: `Store::contribute_many` with `COMMONS_BENCH_BATCH` files per call.
//! - **sqlite**: the same records into SQLite (WAL, `synchronous=FULL`), one transaction per
//!   contribution, one connection per thread: the yardstick.
//! - **reads** (on the batch node's database): accept everything in versions of 1,000
//!   contributions, then page a whole version with `Snapshot::version_rows`, diff two
//!   versions ~100,000 rows apart, and page the same rows over HTTP.
//!
//! Environment: `COMMONS_BENCH_N` (contributions, default 100000), `COMMONS_BENCH_CLIENTS`
//! (default 8), `COMMONS_BENCH_BATCH` (files per batch, default 100). Prints a table and one
//! JSON line starting with `{"bench":"ingest"`.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use anyhow::{Context, bail};
use commons::config::Config;
use commons_storage::model::{DataKind, SignedBy};
use commons_storage::parse::{self, Format};
use commons_storage::{
    ContributionFilter, Limits, NewContribution, NewDatanet, ReviewRequest, Store,
};
use serde_json::{Value, json};

/// Contributions per accepted version in the read phase.
const REVIEW_BATCH: usize = 1000;
/// Page size of every paged read (the API's maximum).
const PAGE: usize = 1000;
/// Rows between the two versions that are diffed.
const DIFF_DISTANCE: u64 = 100_000;
/// Dev accounts 1..=CONTRIBUTORS contribute; dev0 owns the datanet.
const CONTRIBUTORS: u32 = 4;
const SLUG: &str = "bench";

fn main() -> anyhow::Result<()> {
    let n = env_usize("COMMONS_BENCH_N", 100_000)?;
    let clients = env_usize("COMMONS_BENCH_CLIENTS", 8)?.max(1);
    let batch = env_usize("COMMONS_BENCH_BATCH", 100)?.clamp(2, 1000);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let tmp = tempfile::tempdir().context("cannot create a temp dir")?;
    println!(
        "commons ingest bench: N={n} contributions, {clients} clients, batches of {batch}, {cores} cores"
    );
    println!(
        "data in {} (durable commits: redb Immediate, SQLite WAL + synchronous=FULL)",
        tmp.path().display()
    );

    let t = Instant::now();
    let corpus = Corpus::generate(n)?;
    println!(
        "corpus: {} contributions, {} rows, {:.1} MB in {:.1} s",
        corpus.items.len(),
        corpus.rows,
        corpus.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let lib = bench_library(&corpus, clients, &tmp.path().join("library.redb"), 1)?;
    print_ingest(&lib);
    let lib_batch = bench_library(
        &corpus,
        clients,
        &tmp.path().join("library-batch.redb"),
        batch,
    )?;
    print_ingest(&lib_batch);
    let sql = bench_sqlite(&corpus, clients, &tmp.path().join("sqlite.db"))?;
    print_ingest(&sql);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let (http, _) = rt.block_on(bench_node(
        &corpus,
        clients,
        &tmp.path().join("node"),
        1,
        false,
    ))?;
    print_ingest(&http);
    let (http_batch, reads) = rt.block_on(bench_node(
        &corpus,
        clients,
        &tmp.path().join("node-batch"),
        batch,
        true,
    ))?;
    print_ingest(&http_batch);
    let reads = reads.context("the read phase did not run")?;
    drop(corpus);

    let ingests = Ingests {
        http,
        http_batch,
        lib,
        lib_batch,
        sql,
    };
    report(n, clients, cores, batch, &ingests, &reads);
    Ok(())
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        Err(_) => Ok(default),
    }
}

// ---------------------------------------------------------------------------------------------
// Corpus

/// One file to contribute, parsed and hashed.
struct Item {
    name: String,
    bytes: Vec<u8>,
    hash: [u8; 32],
    rows: Vec<String>,
}

struct Corpus {
    items: Vec<Item>,
    rows: u64,
    bytes: u64,
}

const WORDS: &[&str] = &[
    "patient",
    "reported",
    "symptoms",
    "after",
    "treatment",
    "with",
    "the",
    "dose",
    "was",
    "adjusted",
    "because",
    "of",
    "renal",
    "function",
    "and",
    "follow-up",
    "showed",
    "improvement",
    "in",
    "blood",
    "pressure",
    "a",
    "study",
    "compared",
    "outcomes",
    "between",
    "groups",
    "over",
    "twelve",
    "weeks",
    "results",
    "suggest",
    "that",
    "early",
    "intervention",
    "reduces",
    "risk",
    "for",
    "older",
    "adults",
    "clinical",
    "notes",
    "describe",
    "mild",
    "fever",
    "cough",
    "fatigue",
    "recovery",
    "data",
    "model",
    "training",
    "corpus",
    "open",
    "community",
    "review",
    "version",
    "evidence",
    "source",
    "license",
    "quality",
    "annotated",
    "sample",
];

/// A deterministic generator (splitmix64): the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// About 1 KB of text in 2–4 paragraphs; every paragraph names its contribution, so every
/// file and every row is unique.
fn text(i: usize, rng: &mut Rng) -> String {
    let paragraphs = 2 + rng.below(3);
    let per = 1000 / paragraphs;
    let mut s = String::with_capacity(1100);
    for p in 0..paragraphs {
        if p > 0 {
            s.push_str("\n\n");
        }
        let start = s.len();
        s.push_str(&format!("Record {i}.{p}:"));
        while s.len() - start < per {
            s.push(' ');
            s.push_str(WORDS[rng.below(WORDS.len())]);
        }
        s.push('.');
    }
    s.push('\n');
    s
}

impl Corpus {
    fn generate(n: usize) -> anyhow::Result<Corpus> {
        let mut rng = Rng(0x00C0_FFEE);
        let mut items = Vec::with_capacity(n);
        let (mut rows, mut bytes) = (0, 0);
        for i in 0..n {
            let b = text(i, &mut rng).into_bytes();
            let r = parse::parse(Format::Txt, &b).context("the generated text does not parse")?;
            rows += r.len() as u64;
            bytes += b.len() as u64;
            items.push(Item {
                name: format!("record-{i}.txt"),
                hash: *blake3::hash(&b).as_bytes(),
                bytes: b,
                rows: r,
            });
        }
        Ok(Corpus { items, rows, bytes })
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Every ingest run of one bench.
struct Ingests {
    http: Ingest,
    http_batch: Ingest,
    lib: Ingest,
    lib_batch: Ingest,
    sql: Ingest,
}

/// What one ingest run measured.
struct Ingest {
    name: String,
    contributions: u64,
    rows: u64,
    bytes: u64,
    wall: Duration,
    /// Acknowledgement latency of every contribution, microseconds, sorted.
    latencies_us: Vec<u64>,
    peak_rss_kib: Option<u64>,
}

impl Ingest {
    fn per_s(&self, v: u64) -> f64 {
        v as f64 / self.wall.as_secs_f64()
    }

    fn contributions_s(&self) -> f64 {
        self.per_s(self.contributions)
    }

    fn rows_s(&self) -> f64 {
        self.per_s(self.rows)
    }

    fn mb_s(&self) -> f64 {
        self.per_s(self.bytes) / 1e6
    }

    fn pct_ms(&self, q: f64) -> f64 {
        percentile(&self.latencies_us, q) as f64 / 1000.0
    }

    fn json(&self) -> Value {
        json!({
            "contributions": self.contributions,
            "rows": self.rows,
            "bytes": self.bytes,
            "wall_s": round3(self.wall.as_secs_f64()),
            "contributions_per_s": self.contributions_s().round(),
            "rows_per_s": self.rows_s().round(),
            "mb_per_s": round3(self.mb_s()),
            "p50_ms": round3(self.pct_ms(0.50)),
            "p99_ms": round3(self.pct_ms(0.99)),
            "peak_rss_mib": self.peak_rss_kib.map(|k| k / 1024),
        })
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Forget the process's peak RSS so that the next [`peak_rss_kib`] covers one phase only
/// (Linux: writing 5 to `clear_refs` resets `VmHWM`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of this process, KiB.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_ingest(r: &Ingest) {
    println!(
        "{:<8} {:>8} contributions in {:>7.2} s: {:>8.0} contributions/s {:>9.0} rows/s {:>6.2} MB/s  p50 {:>7.2} ms  p99 {:>7.2} ms  peak RSS {}",
        r.name,
        r.contributions,
        r.wall.as_secs_f64(),
        r.contributions_s(),
        r.rows_s(),
        r.mb_s(),
        r.pct_ms(0.50),
        r.pct_ms(0.99),
        r.peak_rss_kib
            .map_or("?".into(), |k| format!("{} MiB", k / 1024)),
    );
}

/// Which items client `c` of `clients` sends: every `clients`-th, from `c`.
fn share(c: usize, clients: usize, n: usize) -> impl Iterator<Item = usize> {
    (c..n).step_by(clients)
}

fn generous_limits() -> Limits {
    Limits {
        max_upload_bytes: 5 << 20,
        daily_bytes_per_contributor: u64::MAX / 4,
        daily_files_per_contributor: u64::MAX / 4,
        daily_bytes_per_datanet: u64::MAX / 4,
    }
}

/// Evidence for library writes: the library does not check signatures, only nonces.
fn dummy_signed(signer: [u8; 20], nonce: u64) -> SignedBy {
    let mut n = [0u8; 32];
    n[24..].copy_from_slice(&nonce.to_be_bytes());
    SignedBy {
        signer,
        nonce: n,
        deadline: u64::MAX,
        signature: vec![0; 65],
    }
}

fn contributor_addr(i: usize) -> [u8; 20] {
    let mut a = [0u8; 20];
    a[0] = 0xc0;
    a[19] = (i % CONTRIBUTORS as usize) as u8 + 1;
    a
}

// ---------------------------------------------------------------------------------------------
// (b) The storage library

/// `per_call` = 1: `Store::contribute` per file; more: `Store::contribute_many` with that many
/// files per call.
fn bench_library(
    corpus: &Corpus,
    clients: usize,
    path: &std::path::Path,
    per_call: usize,
) -> anyhow::Result<Ingest> {
    let store = Store::create_fresh(path, generous_limits())?;
    let owner = [0x0a; 20];
    store.create_datanet(NewDatanet {
        slug: SLUG.into(),
        name: "Bench".into(),
        summary: "ingest benchmark".into(),
        description: String::new(),
        tags: vec![],
        kind: DataKind::Text,
        private: false,
        signed: dummy_signed(owner, 0),
    })?;
    let n = corpus.items.len();
    // Everything a write needs is built before the clock starts.
    let work: Vec<Vec<NewContribution>> = (0..clients)
        .map(|c| {
            share(c, clients, n)
                .map(|i| {
                    let it = &corpus.items[i];
                    NewContribution {
                        datanet: SLUG.into(),
                        file_name: it.name.clone(),
                        bytes: it.bytes.clone(),
                        file_hash: it.hash,
                        format: Format::Txt,
                        rows: it.rows.clone(),
                        signed: dummy_signed(contributor_addr(i), i as u64 + 1),
                    }
                })
                .collect()
        })
        .collect();
    reset_peak_rss();
    let barrier = Barrier::new(clients + 1);
    let store = &store;
    let (wall, latencies) = std::thread::scope(|s| -> anyhow::Result<_> {
        let handles: Vec<_> = work
            .into_iter()
            .map(|batch| {
                let barrier = &barrier;
                s.spawn(move || -> anyhow::Result<Vec<u64>> {
                    let mut lat = Vec::with_capacity(batch.len());
                    barrier.wait();
                    if per_call == 1 {
                        for c in batch {
                            let t = Instant::now();
                            store.contribute(c)?;
                            lat.push(t.elapsed().as_micros() as u64);
                        }
                    } else {
                        let mut batch = batch.into_iter().peekable();
                        while batch.peek().is_some() {
                            let call: Vec<_> = batch.by_ref().take(per_call).collect();
                            let k = call.len();
                            let t = Instant::now();
                            for r in store.contribute_many(call)? {
                                r?;
                            }
                            let us = t.elapsed().as_micros() as u64;
                            lat.extend(std::iter::repeat_n(us, k));
                        }
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let all = join_writers(handles, n, "a library")?;
        Ok((start.elapsed(), all))
    })?;
    let peak = peak_rss_kib();
    let stats = store.snapshot()?.stats()?;
    if stats.contributions != n as u64 || stats.rows != corpus.rows {
        bail!(
            "the library stored {stats:?}, expected {n} contributions and {} rows",
            corpus.rows
        );
    }
    let name = if per_call == 1 {
        "library".to_string()
    } else {
        format!("library, {per_call} files per call")
    };
    Ok(finish(name, corpus, wall, latencies, peak))
}

/// Wait for every writer thread of a phase; all their latencies.
fn join_writers(
    handles: Vec<std::thread::ScopedJoinHandle<'_, anyhow::Result<Vec<u64>>>>,
    n: usize,
    what: &str,
) -> anyhow::Result<Vec<u64>> {
    let mut all = Vec::with_capacity(n);
    for h in handles {
        match h.join() {
            Ok(r) => all.extend(r?),
            Err(_) => bail!("{what} writer thread panicked"),
        }
    }
    Ok(all)
}

fn finish(
    name: String,
    corpus: &Corpus,
    wall: Duration,
    mut lat: Vec<u64>,
    peak: Option<u64>,
) -> Ingest {
    lat.sort_unstable();
    Ingest {
        name,
        contributions: corpus.items.len() as u64,
        rows: corpus.rows,
        bytes: corpus.bytes,
        wall,
        latencies_us: lat,
        peak_rss_kib: peak,
    }
}

// ---------------------------------------------------------------------------------------------
// (c) SQLite, the yardstick

const SQLITE_SCHEMA: &str = "
CREATE TABLE blobs (hash BLOB PRIMARY KEY, content_type TEXT NOT NULL, size INTEGER NOT NULL,
                    data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE nonces (signer BLOB NOT NULL, nonce BLOB NOT NULL, used_at INTEGER NOT NULL,
                     PRIMARY KEY (signer, nonce)) WITHOUT ROWID;
CREATE TABLE contributions (id INTEGER PRIMARY KEY, datanet INTEGER NOT NULL,
                            contributor BLOB NOT NULL, file_name TEXT NOT NULL,
                            file_hash BLOB NOT NULL REFERENCES blobs(hash), size INTEGER NOT NULL,
                            format TEXT NOT NULL, row_count INTEGER NOT NULL,
                            status INTEGER NOT NULL, created_at INTEGER NOT NULL,
                            nonce BLOB NOT NULL, signature BLOB NOT NULL);
CREATE INDEX contributions_by_datanet ON contributions (datanet, status, id);
CREATE INDEX contributions_by_contributor ON contributions (contributor, id);
CREATE TABLE rows (id INTEGER PRIMARY KEY, contribution INTEGER NOT NULL REFERENCES contributions(id),
                   ordinal INTEGER NOT NULL, hash BLOB NOT NULL, text TEXT NOT NULL);
CREATE UNIQUE INDEX rows_by_contribution ON rows (contribution, ordinal);
";

fn sqlite_open(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(60))?;
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("SQLite refused WAL mode (got {mode})");
    }
    c.execute_batch("PRAGMA synchronous=FULL;")?;
    Ok(c)
}

fn bench_sqlite(corpus: &Corpus, clients: usize, path: &std::path::Path) -> anyhow::Result<Ingest> {
    sqlite_open(path)?.execute_batch(SQLITE_SCHEMA)?;
    let n = corpus.items.len();
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(sqlite_open(path)?);
    }
    reset_peak_rss();
    let barrier = Barrier::new(clients + 1);
    let (wall, latencies) = std::thread::scope(|s| -> anyhow::Result<_> {
        let handles: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(c, mut conn)| {
                let barrier = &barrier;
                s.spawn(move || -> anyhow::Result<Vec<u64>> {
                    let mut lat = Vec::with_capacity(n / clients + 1);
                    barrier.wait();
                    for i in share(c, clients, n) {
                        let t = Instant::now();
                        sqlite_contribute(&mut conn, &corpus.items[i], i)?;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let all = join_writers(handles, n, "an SQLite")?;
        Ok((start.elapsed(), all))
    })?;
    let peak = peak_rss_kib();
    let rows: u64 = sqlite_open(path)?.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))?;
    if rows != corpus.rows {
        bail!("SQLite stored {rows} rows, expected {}", corpus.rows);
    }
    Ok(finish("sqlite".to_string(), corpus, wall, latencies, peak))
}

/// One contribution as one durable transaction, with the same work the store does on the
/// caller's side (row hashes) and the same checks (nonce unused; blob stored once).
fn sqlite_contribute(conn: &mut rusqlite::Connection, it: &Item, i: usize) -> anyhow::Result<()> {
    let hashes: Vec<[u8; 32]> = it
        .rows
        .iter()
        .map(|r| *blake3::hash(r.as_bytes()).as_bytes())
        .collect();
    let signed = dummy_signed(contributor_addr(i), i as u64 + 1);
    let now = commons_storage::now_ms() as i64;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.prepare_cached("INSERT INTO nonces (signer, nonce, used_at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![
            &signed.signer[..],
            &signed.nonce[..],
            now
        ])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO blobs (hash, content_type, size, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![
        &it.hash[..],
        "text/plain; charset=utf-8",
        it.bytes.len() as i64,
        &it.bytes
    ])?;
    tx.prepare_cached(
        "INSERT INTO contributions (datanet, contributor, file_name, file_hash, size, format,
                                    row_count, status, created_at, nonce, signature)
         VALUES (1, ?1, ?2, ?3, ?4, 'txt', ?5, 0, ?6, ?7, ?8)",
    )?
    .execute(rusqlite::params![
        &signed.signer[..],
        &it.name,
        &it.hash[..],
        it.bytes.len() as i64,
        it.rows.len() as i64,
        now,
        &signed.nonce[..],
        &signed.signature,
    ])?;
    let id = tx.last_insert_rowid();
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO rows (contribution, ordinal, hash, text) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (o, (text, h)) in it.rows.iter().zip(&hashes).enumerate() {
            ins.execute(rusqlite::params![id, o as i64, &h[..], text])?;
        }
    }
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (a) HTTP, and (d) reads, on the node's database

/// One pre-signed upload.
struct Upload {
    name: String,
    signer: String,
    nonce: String,
    deadline: String,
    signature: String,
    body: bytes::Bytes,
}

/// What the read phase measured.
struct Reads {
    versions: u64,
    review_wall: Duration,
    review_last: Duration,
    version_rows: u64,
    library_read: Duration,
    http_read: Duration,
    http_rows: u64,
    diff_from: u64,
    diff_to: u64,
    diff_rows: u64,
    diff_counts: Duration,
    diff_first_page: Duration,
    diff_paged: Duration,
    diff_pages: u64,
    diff_one_call: Duration,
    peak_rss_kib: Option<u64>,
}

impl Reads {
    fn library_rows_s(&self) -> f64 {
        self.version_rows as f64 / self.library_read.as_secs_f64()
    }

    fn http_rows_s(&self) -> f64 {
        self.http_rows as f64 / self.http_read.as_secs_f64()
    }
}

/// `per_request` = 1: one `POST …/contributions` per file; more: `POST …/contributions/batch`
/// with that many files per request. The read phase runs on this node when `reads`.
async fn bench_node(
    corpus: &Corpus,
    clients: usize,
    dir: &std::path::Path,
    per_request: usize,
    reads: bool,
) -> anyhow::Result<(Ingest, Option<Reads>)> {
    let mut config = Config::defaults(dir.to_path_buf());
    config.http = "127.0.0.1:0".parse()?;
    let l = generous_limits();
    config.limits.max_upload_bytes = l.max_upload_bytes;
    config.limits.daily_bytes_per_contributor = l.daily_bytes_per_contributor;
    config.limits.daily_files_per_contributor = l.daily_files_per_contributor;
    config.limits.daily_bytes_per_datanet = l.daily_bytes_per_datanet;
    let chain_id = config.chain_id;
    let running = commons::node::start(config).await?;
    let base = format!("http://{}", running.addr());
    let domain = commons::auth::domain(chain_id);
    let owner = commons::auth::dev_key(0).map_err(anyhow::Error::msg)?;
    commons::client::Client::new(&base, None)
        .create_datanet(
            &domain,
            &owner,
            SLUG,
            "Bench",
            "ingest benchmark",
            "",
            &[],
            "text",
            false,
        )
        .await?;

    let t = Instant::now();
    let uploads = presign(corpus, clients, chain_id)?;
    let requests: Vec<Vec<Request>> = uploads
        .into_iter()
        .map(|u| requests(&base, u, per_request))
        .collect();
    println!(
        "pre-signed {} uploads in {:.1} s (not timed)",
        corpus.items.len(),
        t.elapsed().as_secs_f64()
    );

    reset_peak_rss();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for batch in requests {
        tasks.spawn(upload_all(batch));
    }
    let mut latencies = Vec::with_capacity(corpus.items.len());
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r.context("an HTTP client task panicked")??);
    }
    let wall = start.elapsed();
    let peak = peak_rss_kib();
    let name = if per_request == 1 {
        "http".to_string()
    } else {
        format!("http, {per_request} files per request")
    };
    let http = finish(name, corpus, wall, latencies, peak);
    let stats = running.node.store.snapshot()?.stats()?;
    if stats.contributions != corpus.items.len() as u64 || stats.rows != corpus.rows {
        bail!(
            "the node stored {stats:?}, expected {} contributions and {} rows",
            corpus.items.len(),
            corpus.rows
        );
    }

    let reads = if reads {
        let owner_addr = owner.address().into_array();
        Some(bench_reads(&running.node.store, owner_addr, corpus, &base).await?)
    } else {
        None
    };
    running.stop().await;
    Ok((http, reads))
}

/// Sign every upload (EIP-712 `Contribute`, one unique nonce each) on all cores, split into
/// one batch per client.
fn presign(corpus: &Corpus, clients: usize, chain_id: u64) -> anyhow::Result<Vec<Vec<Upload>>> {
    let keys = (1..=CONTRIBUTORS)
        .map(|i| commons::auth::dev_key(i).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let domain = commons::auth::domain(chain_id);
    let deadline = commons_storage::now_ms() / 1000 + 24 * 3600;
    let n = corpus.items.len();
    let sign_one = |i: usize| -> anyhow::Result<Upload> {
        let it = &corpus.items[i];
        let key = &keys[i % keys.len()];
        let nonce = U256::from(i as u64 + 1);
        let msg = commons::auth::Contribute {
            datanet: SLUG.into(),
            fileHash: B256::from(it.hash),
            fileName: it.name.clone(),
            nonce,
            deadline: U256::from(deadline),
        };
        let sig = commons::auth::sign(&msg, &domain, key).context("signing failed")?;
        Ok(Upload {
            name: it.name.clone(),
            signer: format!("{:#x}", key.address()),
            nonce: nonce.to_string(),
            deadline: deadline.to_string(),
            signature: format!("0x{}", hex::encode(sig)),
            body: bytes::Bytes::from(it.bytes.clone()),
        })
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    share(c, clients, n)
                        .map(sign_one)
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))?
            })
            .collect()
    })
}

/// One HTTP request of a client, built before the clock starts.
struct Request {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: bytes::Bytes,
    /// Contributions it carries.
    files: usize,
    /// The status that means every file was stored.
    expect: reqwest::StatusCode,
}

const BOUNDARY: &str = "commons-bench-7d2f0c1e9a";

/// One client's uploads as requests: one per file, or multipart batches of `per_request`.
fn requests(base: &str, uploads: Vec<Upload>, per_request: usize) -> Vec<Request> {
    if per_request == 1 {
        return uploads
            .into_iter()
            .map(|u| Request {
                url: format!(
                    "{base}/api/v1/datanets/{SLUG}/contributions?name={}",
                    u.name
                ),
                headers: vec![
                    ("x-commons-signer", u.signer),
                    ("x-commons-nonce", u.nonce),
                    ("x-commons-deadline", u.deadline),
                    ("x-commons-signature", u.signature),
                ],
                body: u.body,
                files: 1,
                expect: reqwest::StatusCode::CREATED,
            })
            .collect();
    }
    let url = format!("{base}/api/v1/datanets/{SLUG}/contributions/batch");
    let mut out = Vec::new();
    let mut it = uploads.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<Upload> = it.by_ref().take(per_request).collect();
        let manifest = json!({"files": chunk.iter().map(|u| json!({
            "name": u.name,
            "signer": u.signer,
            "nonce": u.nonce,
            "deadline": u.deadline.parse::<u64>().unwrap_or(0),
            "signature": u.signature,
        })).collect::<Vec<_>>()});
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"manifest\"\r\n\
                 content-type: application/json\r\n\r\n{manifest}\r\n"
            )
            .as_bytes(),
        );
        for u in &chunk {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; \
                     filename=\"{}\"\r\ncontent-type: text/plain\r\n\r\n",
                    u.name
                )
                .as_bytes(),
            );
            body.extend_from_slice(&u.body);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out.push(Request {
            url: url.clone(),
            headers: vec![(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )],
            body: bytes::Bytes::from(body),
            files: chunk.len(),
            expect: reqwest::StatusCode::OK,
        });
    }
    out
}

/// One client: its own connection, one request at a time; the latency of each contribution
/// (its request's), in microseconds.
async fn upload_all(batch: Vec<Request>) -> anyhow::Result<Vec<u64>> {
    let http = reqwest::Client::builder().build()?;
    let mut lat = Vec::with_capacity(batch.len());
    for r in batch {
        let t = Instant::now();
        let mut rb = http.post(&r.url).body(r.body);
        for (k, v) in r.headers {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if status != r.expect {
            bail!(
                "upload answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if r.files > 1 {
            let v: Value = serde_json::from_slice(&body)?;
            if v["failed"].as_u64() != Some(0) {
                bail!("a batch upload refused files: {v}");
            }
        }
        let us = t.elapsed().as_micros() as u64;
        lat.extend(std::iter::repeat_n(us, r.files));
    }
    Ok(lat)
}

async fn bench_reads(
    store: &Store,
    owner: [u8; 20],
    corpus: &Corpus,
    base: &str,
) -> anyhow::Result<Reads> {
    // Accept everything, REVIEW_BATCH contributions per version, through the library.
    let snap = store.snapshot()?;
    let dn = snap.datanet(SLUG)?;
    let pending = ContributionFilter {
        status: Some(commons_storage::model::Status::Pending),
        contributor: None,
    };
    let mut ids = Vec::with_capacity(corpus.items.len());
    let mut after = 0;
    loop {
        let (page, next) = snap.contributions(dn.id, &pending, after, PAGE)?;
        ids.extend(page.iter().map(|c| c.id));
        match next {
            Some(c) => after = c,
            None => break,
        }
    }
    drop(snap);
    if ids.len() != corpus.items.len() {
        bail!(
            "the node holds {} pending contributions, expected {}",
            ids.len(),
            corpus.items.len()
        );
    }
    reset_peak_rss();
    let start = Instant::now();
    let mut review_last = Duration::ZERO;
    let mut versions = 0;
    for (k, chunk) in ids.chunks(REVIEW_BATCH).enumerate() {
        let t = Instant::now();
        store.review(ReviewRequest {
            datanet: SLUG.into(),
            contributions: chunk.to_vec(),
            accept: true,
            reason: None,
            signed: dummy_signed(owner, (1 << 40) | k as u64),
        })?;
        review_last = t.elapsed();
        versions += 1;
    }
    let review_wall = start.elapsed();
    println!(
        "reviewed: {versions} versions of {REVIEW_BATCH} contributions in {:.2} s (the last took {:.0} ms)",
        review_wall.as_secs_f64(),
        review_last.as_secs_f64() * 1e3
    );

    // A whole version, paged through the library.
    let snap = store.snapshot()?;
    let dn = snap.datanet(SLUG)?;
    let latest = dn.latest_version;
    let start = Instant::now();
    let (mut version_rows, mut text_bytes, mut after) = (0u64, 0u64, 0u64);
    loop {
        let (page, next) = snap.version_rows(dn.id, latest, after, PAGE)?;
        version_rows += page.len() as u64;
        text_bytes += page.iter().map(|(r, _)| r.text.len() as u64).sum::<u64>();
        match next {
            Some(c) => after = c,
            None => break,
        }
    }
    let library_read = start.elapsed();
    if version_rows != corpus.rows {
        bail!(
            "version {latest} has {version_rows} rows, expected {}",
            corpus.rows
        );
    }
    println!(
        "library read: {version_rows} rows ({:.1} MB of text) of version {latest} in {:.3} s",
        text_bytes as f64 / 1e6,
        library_read.as_secs_f64()
    );

    // Diff: the newest version against the newest one at least DIFF_DISTANCE rows behind it.
    let versions_list = snap.versions(dn.id)?;
    let row_count = |v: u64| {
        versions_list
            .iter()
            .find(|x| x.number == v)
            .map_or(0, |x| x.row_count)
    };
    let distance = DIFF_DISTANCE.min(row_count(latest));
    let diff_from = (0..latest)
        .rev()
        .find(|&v| row_count(latest) - row_count(v) >= distance)
        .unwrap_or(0);
    let diff_rows = row_count(latest) - row_count(diff_from);
    let t = Instant::now();
    let d = snap.diff(dn.id, diff_from, latest, 0, 0)?;
    let diff_counts = t.elapsed();
    if d.added_count != diff_rows || d.removed_count != 0 {
        bail!(
            "diff {diff_from}..{latest} counted +{} -{}, expected +{diff_rows}",
            d.added_count,
            d.removed_count
        );
    }
    let t = Instant::now();
    let first = snap.diff(dn.id, diff_from, latest, 0, PAGE)?;
    let diff_first_page = t.elapsed();
    let t = Instant::now();
    let (mut got, mut pages, mut cursor) = (first.added.len() as u64, 1u64, first.next_cursor);
    while let Some(c) = cursor {
        // As the API pages: the counts travel in the cursor after the first page.
        let counts = Some((first.added_count, first.removed_count));
        let p = snap.diff_page(dn.id, diff_from, latest, c, PAGE, counts)?;
        got += p.added.len() as u64;
        pages += 1;
        cursor = p.next_cursor;
    }
    let diff_paged = diff_first_page + t.elapsed();
    if got != diff_rows {
        bail!("paging the diff gave {got} rows, expected {diff_rows}");
    }
    let t = Instant::now();
    let all = snap.diff(dn.id, diff_from, latest, 0, usize::MAX)?;
    let diff_one_call = t.elapsed();
    if all.added.len() as u64 != diff_rows {
        bail!(
            "the one-call diff gave {} rows, expected {diff_rows}",
            all.added.len()
        );
    }
    drop((all, first, snap));
    println!(
        "diff {diff_from}..{latest} ({diff_rows} rows): counts {:.3} s, first page {:.3} s, all {pages} pages {:.3} s, one call {:.3} s",
        diff_counts.as_secs_f64(),
        diff_first_page.as_secs_f64(),
        diff_paged.as_secs_f64(),
        diff_one_call.as_secs_f64()
    );

    // The same version over HTTP, one client, PAGE rows a request.
    let http = reqwest::Client::new();
    let start = Instant::now();
    let (mut http_rows, mut cursor) = (0u64, String::new());
    loop {
        let url = format!(
            "{base}/api/v1/datanets/{SLUG}/rows?version={latest}&limit={PAGE}&cursor={cursor}"
        );
        let resp = http.get(&url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!(
                "GET rows answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: Value = serde_json::from_slice(&body)?;
        http_rows += v["items"].as_array().map_or(0, |a| a.len() as u64);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let http_read = start.elapsed();
    if http_rows != corpus.rows {
        bail!(
            "HTTP paging gave {http_rows} rows, expected {}",
            corpus.rows
        );
    }
    Ok(Reads {
        versions,
        review_wall,
        review_last,
        version_rows,
        library_read,
        http_read,
        http_rows,
        diff_from,
        diff_to: latest,
        diff_rows,
        diff_counts,
        diff_first_page,
        diff_paged,
        diff_pages: pages,
        diff_one_call,
        peak_rss_kib: peak_rss_kib(),
    })
}

// ---------------------------------------------------------------------------------------------
// Report

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

fn report(n: usize, clients: usize, cores: usize, batch: usize, x: &Ingests, r: &Reads) {
    let sql = &x.sql;
    println!();
    println!(
        "| ingest (N={n}, {clients} clients) | contributions/s | rows/s | MB/s | p50 ms | p99 ms | peak RSS MiB | vs SQLite | target | met |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let row = |x: &Ingest, target: &str, ok: Option<bool>| {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2}x | {} | {} |",
            x.name,
            x.contributions_s(),
            x.rows_s(),
            x.mb_s(),
            x.pct_ms(0.50),
            x.pct_ms(0.99),
            x.peak_rss_kib
                .map_or("?".into(), |k| (k / 1024).to_string()),
            x.contributions_s() / sql.contributions_s(),
            target,
            ok.map_or("", met),
        );
    };
    let http_ok = |x: &Ingest| Some(x.contributions_s() >= 5000.0);
    let lib_ok = |x: &Ingest| Some(x.rows_s() >= 20_000.0);
    row(&x.http, ">= 5,000 contributions/s", http_ok(&x.http));
    row(
        &x.http_batch,
        ">= 5,000 contributions/s",
        http_ok(&x.http_batch),
    );
    row(&x.lib, ">= 20,000 rows/s", lib_ok(&x.lib));
    row(&x.lib_batch, ">= 20,000 rows/s", lib_ok(&x.lib_batch));
    row(sql, "(yardstick)", None);
    println!();
    println!("| read | figure | target | met |");
    println!("|---|---:|---|---|");
    println!(
        "| accept {} contributions in {} versions of {REVIEW_BATCH} (library) | {:.2} s total, last version {:.0} ms | | |",
        n,
        r.versions,
        r.review_wall.as_secs_f64(),
        r.review_last.as_secs_f64() * 1e3
    );
    println!(
        "| version {} rows, pages of {PAGE} (library) | {:.0} rows/s ({} rows in {:.3} s) | >= 200,000 rows/s | {} |",
        r.diff_to,
        r.library_rows_s(),
        r.version_rows,
        r.library_read.as_secs_f64(),
        met(r.library_rows_s() >= 200_000.0)
    );
    println!(
        "| version {} rows over HTTP, pages of {PAGE}, one client | {:.0} rows/s ({} rows in {:.3} s) | | |",
        r.diff_to,
        r.http_rows_s(),
        r.http_rows,
        r.http_read.as_secs_f64()
    );
    let diff = format!(
        "diff v{}..v{} ({} rows)",
        r.diff_from, r.diff_to, r.diff_rows
    );
    println!(
        "| {diff}: counts only | {:.3} s | < 1 s | {} |",
        r.diff_counts.as_secs_f64(),
        met(r.diff_counts.as_secs_f64() < 1.0)
    );
    println!(
        "| {diff}: first page of {PAGE} rows + counts | {:.3} s | < 1 s | {} |",
        r.diff_first_page.as_secs_f64(),
        met(r.diff_first_page.as_secs_f64() < 1.0)
    );
    println!(
        "| {diff}: every row, in {} pages of {PAGE} | {:.3} s | < 1 s | {} |",
        r.diff_pages,
        r.diff_paged.as_secs_f64(),
        met(r.diff_paged.as_secs_f64() < 1.0)
    );
    println!(
        "| {diff}: every row, one call | {:.3} s | < 1 s | {} |",
        r.diff_one_call.as_secs_f64(),
        met(r.diff_one_call.as_secs_f64() < 1.0)
    );
    println!();
    let line = json!({
        "bench": "ingest",
        "n": n,
        "clients": clients,
        "cores": cores,
        "batch": batch,
        "http": x.http.json(),
        "http_batch": x.http_batch.json(),
        "library": x.lib.json(),
        "library_batch": x.lib_batch.json(),
        "sqlite": sql.json(),
        "http_vs_sqlite": round3(x.http.contributions_s() / sql.contributions_s()),
        "http_batch_vs_sqlite": round3(x.http_batch.contributions_s() / sql.contributions_s()),
        "library_vs_sqlite": round3(x.lib.contributions_s() / sql.contributions_s()),
        "library_batch_vs_sqlite": round3(x.lib_batch.contributions_s() / sql.contributions_s()),
        "reads": {
            "versions": r.versions,
            "review_s": round3(r.review_wall.as_secs_f64()),
            "review_last_ms": round3(r.review_last.as_secs_f64() * 1e3),
            "version_rows": r.version_rows,
            "library_rows_per_s": r.library_rows_s().round(),
            "http_rows_per_s": r.http_rows_s().round(),
            "diff_from": r.diff_from,
            "diff_to": r.diff_to,
            "diff_rows": r.diff_rows,
            "diff_counts_s": round3(r.diff_counts.as_secs_f64()),
            "diff_first_page_s": round3(r.diff_first_page.as_secs_f64()),
            "diff_paged_s": round3(r.diff_paged.as_secs_f64()),
            "diff_one_call_s": round3(r.diff_one_call.as_secs_f64()),
            "peak_rss_mib": r.peak_rss_kib.map(|k| k / 1024),
        },
        "targets_met": {
            "http_5000_contributions_per_s": x.http.contributions_s() >= 5000.0,
            "http_batch_5000_contributions_per_s": x.http_batch.contributions_s() >= 5000.0,
            "library_20000_rows_per_s": x.lib.rows_s() >= 20_000.0,
            "library_batch_20000_rows_per_s": x.lib_batch.rows_s() >= 20_000.0,
            "read_200000_rows_per_s": r.library_rows_s() >= 200_000.0,
            "diff_first_page_under_1s": r.diff_first_page.as_secs_f64() < 1.0,
            "diff_all_rows_under_1s": r.diff_one_call.as_secs_f64() < 1.0,
        },
    });
    println!("{line}");
}
