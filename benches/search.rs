//! Full-text search benchmark (`cargo bench --bench search`), against SQLite FTS5 on the same
//! rows.
//!
//! Builds a store of N rows of about 500 bytes (default 1,000,000) in 50 datanets from 10,000
//! contributors (fewer when N is small: 100 rows per contribution), every contribution accepted.
//! The text is drawn from a 30,000-word synthetic vocabulary with Zipf-distributed word
//! frequencies, so some words are in most rows and most words are rare, as in real text.
//!
//! - **indexing**: a fresh `SearchIndex` catching up with the whole store (what a node does
//!   when its index directory is deleted), and SQLite FTS5 indexing the same rows (one
//!   transaction, the `unicode61` tokenizer).
//! - **search**: 1,000 queries of 1, 2 or 3 words (a third each; all words must match), drawn
//!   uniformly from vocabulary ranks 1..3,000, top 10 by BM25, with snippets — through
//!   `SearchIndex::search` (parse, filters, the store check of every hit, highlighting) and
//!   through FTS5 (`MATCH … ORDER BY rank LIMIT 10` with `snippet()`, joined to the row table
//!   for the same "accepted and in the latest version" filter). One warm-up pass, then a timed
//!   pass; one thread.
//!
//! Environment: `COMMONS_BENCH_SEARCH_ROWS` (default 1000000), `COMMONS_BENCH_QUERIES`
//! (default 1000), `COMMONS_BENCH_THREADS` (indexing threads, default: cores up to 4). Prints a
//! table and one JSON line starting with `{"bench":"search"`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use commons_query::search::{SearchConfig, SearchIndex, SearchQuery};
use commons_storage::model::{DataKind, SignedBy, Status};
use commons_storage::parse::Format;
use commons_storage::{
    ContributionFilter, Limits, NewContribution, NewDatanet, ReviewRequest, Store,
};
use serde_json::json;

const DATANETS: u64 = 50;
const MAX_CONTRIBUTORS: u64 = 10_000;
const VOCAB: usize = 30_000;
const ROW_BYTES: usize = 500;
const QUERY_RANKS: usize = 3_000;
const TOP: usize = 10;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        Err(_) => Ok(default),
    }
}

/// splitmix64: the corpus is the same on every run.
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

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Words and the cumulative Zipf(1.0) distribution over them.
struct Vocab {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Vocab {
    fn new() -> Self {
        const SYL: &[&str] = &[
            "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "fe", "gu", "hi",
            "ja", "be", "co", "da", "el", "fo", "ga", "ho", "in", "ju", "ke", "la", "ma", "no",
            "or", "pe", "qu", "re", "si", "to", "un", "ve", "wa", "xi", "yo", "zu",
        ];
        let mut rng = Rng(7);
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(VOCAB);
        while words.len() < VOCAB {
            let n = 1 + rng.below(4);
            let w: String = (0..n).map(|_| SYL[rng.below(SYL.len())]).collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut cdf = Vec::with_capacity(VOCAB);
        let mut acc = 0.0;
        for r in 1..=VOCAB {
            acc += 1.0 / r as f64;
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Vocab { words, cdf }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self.cdf.partition_point(|c| *c < u).min(VOCAB - 1);
        &self.words[i]
    }
}

/// The rows of contribution `i`.
fn rows_of(v: &Vocab, i: u64, n: usize) -> Vec<String> {
    let mut rng = Rng(i.wrapping_mul(0x1234_5678_9abc_def1) ^ 0x5eed);
    (0..n)
        .map(|_| {
            let mut s = String::with_capacity(ROW_BYTES + 16);
            while s.len() < ROW_BYTES {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(v.sample(&mut rng));
            }
            s
        })
        .collect()
}

fn addr(i: u64) -> [u8; 20] {
    let mut a = [0u8; 20];
    a[0] = 0xc0;
    a[12..].copy_from_slice(&i.to_be_bytes());
    a
}

fn signed(by: [u8; 20], nonce: u64) -> SignedBy {
    let mut n = [0u8; 32];
    n[24..].copy_from_slice(&nonce.to_be_bytes());
    SignedBy {
        signer: by,
        nonce: n,
        deadline: u64::MAX,
        signature: vec![0; 65],
    }
}

fn slug(d: u64) -> String {
    format!("net-{d:02}")
}

struct Layout {
    contributions: u64,
    per: usize,
}

/// Fill the store: every contribution accepted, one review per datanet.
fn build_store(store: &Arc<Store>, vocab: &Arc<Vocab>, l: &Layout) -> anyhow::Result<()> {
    let owner = addr(0);
    for d in 0..DATANETS {
        store.create_datanet(NewDatanet {
            slug: slug(d),
            name: format!("Datanet {d}"),
            summary: String::new(),
            description: String::new(),
            tags: vec![format!("topic{}", d % 5)],
            kind: DataKind::Text,
            private: false,
            signed: signed(owner, 1_000_000 + d),
        })?;
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |c| c.get())
        .max(2)
        * 2;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let mut handles = Vec::new();
        for t in 0..threads as u64 {
            let store = store.clone();
            let vocab = vocab.clone();
            let (n, per) = (l.contributions, l.per);
            handles.push(s.spawn(move || -> anyhow::Result<()> {
                let mut i = t;
                while i < n {
                    let rows = rows_of(&vocab, i, per);
                    let bytes = rows.join("\n\n").into_bytes();
                    store.contribute(NewContribution {
                        datanet: slug(i % DATANETS),
                        file_name: format!("c{i}.txt"),
                        file_hash: *blake3::hash(&bytes).as_bytes(),
                        bytes,
                        format: Format::Txt,
                        rows,
                        signed: signed(addr(1 + i % MAX_CONTRIBUTORS), i),
                    })?;
                    i += threads as u64;
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a loader panicked"))??;
        }
        Ok(())
    })?;
    for d in 0..DATANETS {
        let snap = store.snapshot()?;
        let dn = snap.datanet(&slug(d))?;
        let filter = ContributionFilter {
            status: Some(Status::Pending),
            contributor: None,
        };
        let (pending, _) = snap.contributions(dn.id, &filter, 0, usize::MAX)?;
        drop(snap);
        if pending.is_empty() {
            continue;
        }
        store.review(ReviewRequest {
            datanet: slug(d),
            contributions: pending.iter().map(|c| c.id).collect(),
            accept: true,
            reason: None,
            signed: signed(owner, 2_000_000 + d),
        })?;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Timing {
    p50: f64,
    p99: f64,
    mean: f64,
    hits: usize,
}

fn time_queries(
    queries: &[String],
    mut run: impl FnMut(&str) -> anyhow::Result<usize>,
) -> anyhow::Result<Timing> {
    for q in queries {
        run(q)?;
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = 0;
    for q in queries {
        let t = Instant::now();
        hits += run(q)?;
        times.push(t.elapsed());
    }
    let mean =
        times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len().max(1) as f64 * 1e3;
    times.sort_unstable();
    Ok(Timing {
        p50: percentile(&times, 0.50),
        p99: percentile(&times, 0.99),
        mean,
        hits,
    })
}

fn sqlite_index(
    path: &std::path::Path,
    vocab: &Vocab,
    l: &Layout,
) -> anyhow::Result<(rusqlite::Connection, f64)> {
    let mut db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE rows(id INTEGER PRIMARY KEY, datanet INTEGER, contribution INTEGER,
                           contributor BLOB, state INTEGER);
         CREATE VIRTUAL TABLE rows_fts USING fts5(text, tokenize='unicode61');",
    )?;
    let t = Instant::now();
    let tx = db.transaction()?;
    {
        let mut ins = tx.prepare("INSERT INTO rows(id, datanet, contribution, contributor, state) VALUES (?1, ?2, ?3, ?4, 1)")?;
        let mut fts = tx.prepare("INSERT INTO rows_fts(rowid, text) VALUES (?1, ?2)")?;
        let mut id = 1u64;
        for i in 0..l.contributions {
            for text in rows_of(vocab, i, l.per) {
                ins.execute(rusqlite::params![
                    id,
                    i % DATANETS + 1,
                    i + 1,
                    &addr(1 + i % MAX_CONTRIBUTORS)[..]
                ])?;
                fts.execute(rusqlite::params![id, text])?;
                id += 1;
            }
        }
    }
    tx.commit()?;
    let secs = t.elapsed().as_secs_f64();
    Ok((db, secs))
}

fn main() -> anyhow::Result<()> {
    let n_rows = env_usize("COMMONS_BENCH_SEARCH_ROWS", 1_000_000)?.max(100);
    let n_queries = env_usize("COMMONS_BENCH_QUERIES", 1000)?.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = env_usize("COMMONS_BENCH_THREADS", cores.clamp(1, 4))?.max(1);
    let contributors = (n_rows as u64 / 100).clamp(1, MAX_CONTRIBUTORS);
    let layout = Layout {
        contributions: contributors,
        per: n_rows / contributors as usize,
    };
    let rows = layout.contributions as usize * layout.per;
    let tmp = tempfile::tempdir().context("cannot create a temp dir")?;
    println!(
        "commons search bench: {rows} rows of ~{ROW_BYTES} bytes, {DATANETS} datanets, {contributors} contributors, {cores} cores, {threads} indexing threads"
    );
    let vocab = Arc::new(Vocab::new());

    let t = Instant::now();
    let limits = Limits {
        max_upload_bytes: u64::MAX / 4,
        daily_bytes_per_contributor: u64::MAX / 4,
        daily_files_per_contributor: u64::MAX / 4,
        daily_bytes_per_datanet: u64::MAX / 4,
    };
    let store = Arc::new(Store::create_fresh(&tmp.path().join("db.redb"), limits)?);
    build_store(&store, &vocab, &layout)?;
    println!(
        "store: {rows} rows written and accepted in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let cfg = SearchConfig {
        threads,
        heap_bytes: threads * (128 << 20),
        follow: false,
        ..Default::default()
    };
    let index = SearchIndex::open_with(&tmp.path().join("index"), store.clone(), cfg)?;
    let index_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        index.num_docs() as usize == rows,
        "indexed {} of {rows} rows",
        index.num_docs()
    );
    let index_rate = rows as f64 / index_secs;
    println!("commons index: {rows} rows in {index_secs:.1} s = {index_rate:.0} rows/s");

    let (sqlite, sqlite_secs) = sqlite_index(&tmp.path().join("fts.db"), &vocab, &layout)?;
    let sqlite_rate = rows as f64 / sqlite_secs;
    println!("sqlite fts5:   {rows} rows in {sqlite_secs:.1} s = {sqlite_rate:.0} rows/s");

    let mut rng = Rng(42);
    let queries: Vec<String> = (0..n_queries)
        .map(|i| {
            (0..1 + i % 3)
                .map(|_| vocab.words[rng.below(QUERY_RANKS)].clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();

    let ours = time_queries(&queries, |q| {
        let page = index.search(&SearchQuery {
            limit: TOP,
            ..SearchQuery::new(q)
        })?;
        Ok(page.hits.len())
    })?;
    let mut stmt = sqlite.prepare(
        "SELECT r.id, snippet(rows_fts, 0, '<mark>', '</mark>', '…', 24), bm25(rows_fts)
           FROM rows_fts JOIN rows r ON r.id = rows_fts.rowid
          WHERE rows_fts MATCH ?1 AND r.state = 1
          ORDER BY rank LIMIT 10",
    )?;
    let theirs = time_queries(&queries, |q| {
        let mut n = 0;
        let mut it = stmt.query([q])?;
        while let Some(row) = it.next()? {
            let _: (i64, String) = (row.get(0)?, row.get(1)?);
            n += 1;
        }
        Ok(n)
    })?;
    anyhow::ensure!(
        ours.hits == theirs.hits,
        "the engines disagree on the number of hits: {} vs {}",
        ours.hits,
        theirs.hits
    );

    println!();
    println!(
        "| {:<28} | {:>12} | {:>12} | {:>8} |",
        "", "Commons", "SQLite FTS5", "ratio"
    );
    println!("|{:-<30}|{:->14}|{:->14}|{:->10}|", "", "", "", "");
    println!(
        "| {:<28} | {:>12.0} | {:>12.0} | {:>7.1}x |",
        "indexing, rows/s",
        index_rate,
        sqlite_rate,
        index_rate / sqlite_rate
    );
    println!(
        "| {:<28} | {:>12.2} | {:>12.2} | {:>7.1}x |",
        "search p50, ms (top 10)",
        ours.p50,
        theirs.p50,
        theirs.p50 / ours.p50
    );
    println!(
        "| {:<28} | {:>12.2} | {:>12.2} | {:>7.1}x |",
        "search p99, ms",
        ours.p99,
        theirs.p99,
        theirs.p99 / ours.p99
    );
    println!(
        "| {:<28} | {:>12.2} | {:>12.2} | {:>7.1}x |",
        "search mean, ms",
        ours.mean,
        theirs.mean,
        theirs.mean / ours.mean
    );
    println!(
        "({n_queries} queries, {} hits in all on each side; ratio = how many times faster Commons is)",
        ours.hits
    );
    println!(
        "{}",
        json!({
            "bench": "search", "rows": rows, "datanets": DATANETS, "contributors": contributors,
            "cores": cores, "threads": threads, "queries": n_queries,
            "index_rows_per_s": index_rate, "sqlite_index_rows_per_s": sqlite_rate,
            "p50_ms": ours.p50, "p99_ms": ours.p99, "mean_ms": ours.mean,
            "sqlite_p50_ms": theirs.p50, "sqlite_p99_ms": theirs.p99, "sqlite_mean_ms": theirs.mean,
        })
    );
    Ok(())
}
