//! Full-text search over rows: a tantivy index derived from the store's change log.
//!
//! One document per row that is pending or accepted (rejected rows are not indexed). The
//! indexer reads [`Snapshot::changes_after`], collects the rows those changes touch, and
//! re-derives each one's document from the same snapshot, so replaying a change twice is
//! harmless. It commits with `{"format","seq","max_row"}` as tantivy's commit payload; on open it
//! reads the payload back and catches up, and an index that is missing, unreadable, of another
//! format, or ahead of the store is rebuilt from scratch. The index is therefore only a cache:
//! deleting its directory costs a rebuild, nothing else.
//!
//! Answers never trust the index alone: every hit is checked against a store snapshot (the row
//! exists, its contribution is accepted — or pending and the caller may see it — and it is in
//! the requested version), and its version range and contributor come from the store.
//!
//! ```no_run
//! # fn main() -> commons_query::Result<()> {
//! # let store = std::sync::Arc::new(commons_storage::Store::create_fresh("db.redb".as_ref(), Default::default())?);
//! use commons_query::search::{SearchIndex, SearchQuery};
//! let index = SearchIndex::open("index".as_ref(), store)?;
//! let page = index.search(&SearchQuery::new("\"blood pressure\" AND renal"))?;
//! for hit in page.hits {
//!     println!("row {} score {:.2}: {}", hit.row_id, hit.score, hit.snippet);
//! }
//! # Ok(()) }
//! ```

mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use commons_storage::model::{Change, Contribution, Datanet, Row, Status};
use commons_storage::{ContributionFilter, Snapshot, Store, tables};
use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};

/// Version of the document layout; an index of another format is rebuilt.
const FORMAT: u64 = 1;
/// Changes absorbed per commit while catching up.
const CHANGES_PER_ROUND: usize = 200_000;
/// A search waits for the indexer when it lags by at most this many changes (read your
/// writes); a larger backlog is served from the index as it is, filtered by the store.
const FRESH_LAG: u64 = 10_000;
/// Most hits per page.
pub const MAX_LIMIT: usize = 1000;
/// Most prefix expansions highlighted per prefix term.
const MAX_EXPANSIONS: usize = 64;
/// Snippet length in characters.
const SNIPPET_CHARS: usize = 200;
const LOWER_RAW: &str = "lower_raw";
const STATE_PENDING: &str = "pending";
const STATE_LIVE: &str = "live";
const STATE_GONE: &str = "gone";

fn ix(e: impl std::fmt::Display) -> Error {
    Error::Index(e.to_string())
}

/// How the index runs.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// Indexing threads (tantivy segment writers).
    pub threads: usize,
    /// Indexing memory budget over all threads, bytes.
    pub heap_bytes: usize,
    /// Follow the store on a thread of its own after opening.
    pub follow: bool,
    /// How often the follower looks for new changes.
    pub poll: Duration,
}

impl Default for SearchConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let threads = cores.clamp(1, 4);
        SearchConfig {
            threads,
            heap_bytes: threads * (64 << 20),
            follow: true,
            poll: Duration::from_millis(100),
        }
    }
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// The query text (see the module docs of `parse` and docs/API.md).
    pub text: String,
    /// Only this datanet (id).
    pub datanet: Option<u64>,
    /// Only rows in this version of `datanet` (needs `datanet`); default: the latest versions.
    pub version: Option<u64>,
    /// Only rows by this contributor.
    pub contributor: Option<[u8; 20]>,
    /// Only rows of datanets with this tag.
    pub tag: Option<String>,
    /// Datanet ids whose pending rows the caller may see.
    pub pending_for: Vec<u64>,
    /// Hits per page, 1..=[`MAX_LIMIT`].
    pub limit: usize,
    /// Where the previous page ended ([`SearchPage::next_cursor`]).
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// A query for `text` over all datanets, 10 hits.
    pub fn new(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            limit: 10,
            ..Default::default()
        }
    }
}

/// One page of hits, best first.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    /// The hits.
    pub hits: Vec<Hit>,
    /// Cursor of the next page, if there may be one.
    pub next_cursor: Option<String>,
    /// Documents the index matched (before the store check drops any the index still holds
    /// stale).
    pub total: usize,
}

/// A matching row.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Row id.
    pub row_id: u64,
    /// Datanet id.
    pub datanet: u64,
    /// Contribution id.
    pub contribution: u64,
    /// Contributor address.
    pub contributor: [u8; 20],
    /// BM25 score.
    pub score: f32,
    /// HTML-escaped text with `<mark>…</mark>` around matches.
    pub snippet: String,
    /// Version that added the row (None while pending).
    pub added_in: Option<u64>,
    /// Version that took it down, if any.
    pub removed_in: Option<u64>,
    /// The row's contribution is still pending review.
    pub pending: bool,
}

/// The index's schema fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) text: Field,
    pub(crate) datanet: Field,
    pub(crate) datanet_id: Field,
    pub(crate) contributor: Field,
    pub(crate) tag: Field,
    pub(crate) tags_key: Field,
    pub(crate) contribution: Field,
    pub(crate) row: Field,
    pub(crate) state: Field,
    pub(crate) added_in: Field,
    pub(crate) removed_in: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let keyword = |opt: IndexRecordOption| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(LOWER_RAW)
                .set_index_option(opt),
        )
    };
    let text = b.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        ),
    );
    let datanet = b.add_text_field("datanet", keyword(IndexRecordOption::Basic));
    let contributor = b.add_text_field("contributor", keyword(IndexRecordOption::Basic));
    let tag = b.add_text_field("tag", keyword(IndexRecordOption::Basic));
    let tags_key = b.add_text_field("tags_key", keyword(IndexRecordOption::Basic));
    // With frequencies, so `state:live` is a term scorer and joins block-max intersections.
    let state = b.add_text_field("state", keyword(IndexRecordOption::WithFreqs));
    let datanet_id = b.add_u64_field("datanet_id", INDEXED | FAST);
    let contribution = b.add_u64_field("contribution", INDEXED);
    let row = b.add_u64_field("row", INDEXED | FAST | STORED);
    let added_in = b.add_u64_field("added_in", FAST);
    let removed_in = b.add_u64_field("removed_in", FAST);
    (
        b.build(),
        Fields {
            text,
            datanet,
            datanet_id,
            contributor,
            tag,
            tags_key,
            contribution,
            row,
            state,
            added_in,
            removed_in,
        },
    )
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: u64,
    seq: u64,
    max_row: u64,
}

struct WriterState {
    writer: IndexWriter<TantivyDocument>,
    /// Highest row id ever added: rows above it need no delete before their add.
    max_row: u64,
}

struct Inner {
    store: Arc<Store>,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    writer: Mutex<WriterState>,
    indexed: AtomicU64,
}

/// The full-text index of rows. `Send + Sync`; share it as `Arc<SearchIndex>`.
pub struct SearchIndex {
    inner: Arc<Inner>,
    dir: PathBuf,
    follower: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .field("indexed_seq", &self.indexed_seq())
            .finish()
    }
}

fn register_tokenizers(index: &Index) {
    index.tokenizers().register(
        LOWER_RAW,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

/// Open the index in `dir` when it is usable; `None` when it must be rebuilt.
fn try_open(dir: &Path, schema: &Schema, store_seq: u64) -> Option<(Index, Payload)> {
    if !dir.join("meta.json").exists() {
        return None;
    }
    let index = match Index::open_in_dir(dir) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "search index unreadable; rebuilding");
            return None;
        }
    };
    if &index.schema() != schema {
        tracing::info!(dir = %dir.display(), "search index has another schema; rebuilding");
        return None;
    }
    let payload = match index.load_metas().map(|m| m.payload) {
        Ok(Some(p)) => serde_json::from_str::<Payload>(&p).ok(),
        Ok(None) => Some(Payload {
            format: FORMAT,
            seq: 0,
            max_row: 0,
        }),
        Err(_) => None,
    };
    match payload {
        Some(p) if p.format == FORMAT && p.seq <= store_seq => Some((index, p)),
        Some(p) if p.format == FORMAT => {
            tracing::warn!(
                index_seq = p.seq,
                store_seq,
                "search index is ahead of the store (restored database?); rebuilding"
            );
            None
        }
        _ => {
            tracing::info!(dir = %dir.display(), "search index of another format; rebuilding");
            None
        }
    }
}

impl SearchIndex {
    /// Open (or create) the index in `dir`, catch up with the store, start following it.
    pub fn open(dir: &Path, store: Arc<Store>) -> Result<Arc<SearchIndex>> {
        Self::open_with(dir, store, SearchConfig::default())
    }

    /// [`SearchIndex::open`] with explicit settings.
    pub fn open_with(dir: &Path, store: Arc<Store>, cfg: SearchConfig) -> Result<Arc<SearchIndex>> {
        let (schema, fields) = schema();
        let store_seq = store.snapshot()?.stats()?.seq;
        let (index, payload) = match try_open(dir, &schema, store_seq) {
            Some(found) => found,
            None => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| {
                        ix(format!("cannot clear the index dir {}: {e}", dir.display()))
                    })?;
                }
                std::fs::create_dir_all(dir).map_err(|e| {
                    ix(format!(
                        "cannot create the index dir {}: {e}",
                        dir.display()
                    ))
                })?;
                let index = Index::create_in_dir(dir, schema).map_err(ix)?;
                let p = Payload {
                    format: FORMAT,
                    seq: 0,
                    max_row: 0,
                };
                (index, p)
            }
        };
        register_tokenizers(&index);
        let writer = index
            .writer_with_num_threads(
                cfg.threads.max(1),
                cfg.heap_bytes.max(cfg.threads * (16 << 20)),
            )
            .map_err(ix)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(ix)?;
        let inner = Arc::new(Inner {
            store,
            index,
            reader,
            fields,
            writer: Mutex::new(WriterState {
                writer,
                max_row: payload.max_row,
            }),
            indexed: AtomicU64::new(payload.seq),
        });
        let started = Instant::now();
        let from = payload.seq;
        let to = inner.catch_up()?;
        if to > from {
            tracing::info!(
                from,
                to,
                seconds = started.elapsed().as_secs_f64(),
                "search index caught up"
            );
        }
        let follower = if cfg.follow {
            let (tx, rx) = channel::<()>();
            let worker = inner.clone();
            let poll = cfg.poll;
            let handle = std::thread::Builder::new()
                .name("commons-search-indexer".into())
                .spawn(move || follow(worker, rx, poll))
                .map_err(|e| ix(format!("cannot start the indexer thread: {e}")))?;
            Some((tx, handle))
        } else {
            None
        };
        Ok(Arc::new(SearchIndex {
            inner,
            dir: dir.to_path_buf(),
            follower: Mutex::new(follower),
        }))
    }

    /// Absorb every change up to the store's current sequence now (tests, benchmarks).
    pub fn catch_up(&self) -> Result<u64> {
        self.inner.catch_up()
    }

    /// Search; see [`SearchQuery`].
    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        self.inner.search(q)
    }

    /// The last change sequence the index has absorbed.
    pub fn indexed_seq(&self) -> u64 {
        self.inner.indexed.load(Ordering::Acquire)
    }

    /// Number of row documents in the index (pending and accepted).
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// Stop following the store (idempotent); the index stays searchable.
    pub fn shutdown(&self) {
        let f = match self.follower.lock() {
            Ok(mut g) => g.take(),
            Err(_) => None,
        };
        if let Some((tx, handle)) = f {
            drop(tx);
            if handle.join().is_err() {
                tracing::error!("the search indexer thread panicked");
            }
        }
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn follow(inner: Arc<Inner>, stop: std::sync::mpsc::Receiver<()>, poll: Duration) {
    let mut backoff = poll;
    loop {
        match stop.recv_timeout(backoff) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let lagging = inner
            .store
            .snapshot()
            .and_then(|s| s.stats())
            .map(|s| s.seq > inner.indexed.load(Ordering::Acquire));
        match lagging {
            Ok(false) => backoff = poll,
            Ok(true) => match inner.catch_up() {
                Ok(_) => backoff = poll,
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "search indexer cannot read the store");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// What a round of changes touched.
#[derive(Debug, Default)]
struct Dirty {
    contributions: BTreeSet<u64>,
    rows: BTreeSet<u64>,
    datanets: BTreeSet<u64>,
}

fn hex_addr(a: &[u8; 20]) -> String {
    format!("0x{}", hex::encode(a))
}

fn tags_key(tags: &[String]) -> String {
    let mut t: Vec<&str> = tags.iter().map(String::as_str).collect();
    t.sort_unstable();
    t.join("\u{1f}")
}

impl Inner {
    fn lock_writer(&self) -> Result<MutexGuard<'_, WriterState>> {
        self.writer
            .lock()
            .map_err(|_| Error::Internal("the search index writer lock is poisoned".into()))
    }

    fn catch_up(&self) -> Result<u64> {
        let mut w = self.lock_writer()?;
        loop {
            let from = self.indexed.load(Ordering::Acquire);
            let snap = self.store.snapshot()?;
            let changes = snap.changes_after(from, CHANGES_PER_ROUND)?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                return Ok(from);
            };
            let mut dirty = Dirty::default();
            for c in changes {
                match c.change {
                    Change::Contributed { contribution, .. } => {
                        dirty.contributions.insert(contribution);
                    }
                    Change::Reviewed { contributions, .. } => {
                        dirty.contributions.extend(contributions)
                    }
                    Change::TakenDown { rows, .. } => dirty.rows.extend(rows),
                    Change::DatanetEdited { datanet } => {
                        dirty.datanets.insert(datanet);
                    }
                    Change::DatanetCreated { .. } => {}
                }
            }
            let max_before = w.max_row;
            let applied = self
                .apply(&snap, &mut w, dirty)
                .and_then(|()| self.commit(&mut w, last));
            if let Err(e) = applied {
                // Nothing of this round is committed: forget it and start over next time.
                let _ = w.writer.rollback();
                w.max_row = max_before;
                return Err(e);
            }
            self.indexed.store(last, Ordering::Release);
        }
    }

    fn commit(&self, w: &mut WriterState, seq: u64) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            format: FORMAT,
            seq,
            max_row: w.max_row,
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let mut prepared = w.writer.prepare_commit().map_err(ix)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(ix)?;
        self.reader.reload().map_err(ix)?;
        Ok(())
    }

    /// Re-derive the documents of every touched row from `snap`.
    fn apply(&self, snap: &Snapshot, w: &mut WriterState, mut dirty: Dirty) -> Result<()> {
        let mut datanets: HashMap<u64, Datanet> = HashMap::new();
        // A metadata edit matters when the tags in the index differ from the datanet's.
        for d in std::mem::take(&mut dirty.datanets) {
            let dn = snap.datanet_by_id(d)?;
            if self.stale_tags(&dn)? {
                let mut after = 0;
                loop {
                    let (page, next) =
                        snap.contributions(d, &ContributionFilter::default(), after, 10_000)?;
                    dirty.contributions.extend(page.iter().map(|c| c.id));
                    match next {
                        Some(n) => after = n,
                        None => break,
                    }
                }
            }
            datanets.insert(d, dn);
        }
        // Rows and memberships are read in ranges from a read transaction begun after `snap`:
        // state at least as new as the changes, which is all re-deriving needs.
        let txn = self.store.database().begin_read().map_err(ix)?;
        let mut contributions: HashMap<u64, Contribution> = HashMap::new();
        for id in &dirty.contributions {
            let c = snap.contribution(*id)?;
            let dn = match datanets.get(&c.datanet) {
                Some(d) => d.clone(),
                None => {
                    let d = snap.datanet_by_id(c.datanet)?;
                    datanets.insert(c.datanet, d.clone());
                    d
                }
            };
            if c.status == Status::Rejected {
                for r in c.first_row..c.first_row + c.row_count {
                    if r <= w.max_row {
                        w.writer
                            .delete_term(Term::from_field_u64(self.fields.row, r));
                    }
                }
            } else {
                self.put_contribution(&txn, w, &dn, &c)?;
            }
            contributions.insert(c.id, c);
        }
        for id in &dirty.rows {
            let row = snap.row(*id)?;
            if dirty.contributions.contains(&row.contribution) {
                continue;
            }
            let c = match contributions.get(&row.contribution) {
                Some(c) => c.clone(),
                None => {
                    let c = snap.contribution(row.contribution)?;
                    contributions.insert(c.id, c.clone());
                    c
                }
            };
            let dn = match datanets.get(&c.datanet) {
                Some(d) => d.clone(),
                None => {
                    let d = snap.datanet_by_id(c.datanet)?;
                    datanets.insert(c.datanet, d.clone());
                    d
                }
            };
            let (added, removed) = match snap.membership(row.datanet, row.id)? {
                Some(m) => (m.added_in, m.removed_in.unwrap_or(u64::MAX)),
                None => (u64::MAX, u64::MAX),
            };
            self.put(w, &dn, &c, &row, added, removed)?;
        }
        Ok(())
    }

    /// Replace the documents of every row of an accepted or pending contribution: one range
    /// read of its rows and one of their memberships.
    fn put_contribution(
        &self,
        txn: &redb::ReadTransaction,
        w: &mut WriterState,
        dn: &Datanet,
        c: &Contribution,
    ) -> Result<()> {
        let rows = txn.open_table(tables::ROWS).map_err(ix)?;
        let members = txn.open_table(tables::MEMBERSHIP).map_err(ix)?;
        let end = c.first_row + c.row_count;
        let mut m = members
            .range((c.datanet, c.first_row)..(c.datanet, end))
            .map_err(ix)?
            .peekable();
        for e in rows.range(c.first_row..end).map_err(ix)? {
            let (_, v) = e.map_err(ix)?;
            let row: Row = commons_storage::decode(v.value())?;
            let mut range = (u64::MAX, u64::MAX);
            while let Some(Ok((k, _))) = m.peek() {
                let id = k.value().1;
                if id > row.id {
                    break;
                }
                if let Some(Ok((_, v))) = m.next()
                    && id == row.id
                {
                    let (added, removed, _) = v.value();
                    range = (added, removed);
                }
            }
            if let Some(Err(_)) = m.peek()
                && let Some(Err(e)) = m.next()
            {
                return Err(ix(e));
            }
            self.put(w, dn, c, &row, range.0, range.1)?;
        }
        Ok(())
    }

    /// Replace the document of `row`.
    fn put(
        &self,
        w: &mut WriterState,
        dn: &Datanet,
        c: &Contribution,
        row: &Row,
        added: u64,
        removed: u64,
    ) -> Result<()> {
        let f = &self.fields;
        if row.id <= w.max_row {
            w.writer.delete_term(Term::from_field_u64(f.row, row.id));
        }
        if c.status == Status::Rejected {
            return Ok(());
        }
        let state = match (c.status, removed) {
            (Status::Pending, _) => STATE_PENDING,
            (_, u64::MAX) => STATE_LIVE,
            _ => STATE_GONE,
        };
        let mut d = TantivyDocument::default();
        d.add_u64(f.row, row.id);
        d.add_u64(f.datanet_id, dn.id);
        d.add_text(f.datanet, &dn.slug);
        d.add_u64(f.contribution, c.id);
        d.add_text(f.contributor, hex_addr(&c.contributor));
        for t in &dn.tags {
            d.add_text(f.tag, t);
        }
        d.add_text(f.tags_key, tags_key(&dn.tags));
        d.add_text(f.state, state);
        d.add_u64(f.added_in, added);
        d.add_u64(f.removed_in, removed);
        d.add_text(f.text, &row.text);
        w.writer.add_document(d).map_err(ix)?;
        w.max_row = w.max_row.max(row.id);
        Ok(())
    }

    /// Does the committed index hold documents of `dn` with other tags than it has now?
    fn stale_tags(&self, dn: &Datanet) -> Result<bool> {
        let f = &self.fields;
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.datanet_id, dn.id),
                    IndexRecordOption::Basic,
                )),
            ),
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tags_key, &tags_key(&dn.tags)),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let n = self.reader.searcher().search(&q, &Count).map_err(ix)?;
        Ok(n > 0)
    }

    fn filters(&self, q: &SearchQuery) -> Result<Vec<(Occur, Box<dyn Query>)>> {
        let f = &self.fields;
        let konst =
            |q: Box<dyn Query>| -> Box<dyn Query> { Box::new(ConstScoreQuery::new(q, 0.0)) };
        let term =
            |t: Term| -> Box<dyn Query> { Box::new(TermQuery::new(t, IndexRecordOption::Basic)) };
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(d) = q.datanet {
            out.push((
                Occur::Must,
                konst(term(Term::from_field_u64(f.datanet_id, d))),
            ));
        }
        match q.version {
            Some(v) => {
                if q.datanet.is_none() {
                    return Err(Error::InvalidSearch(
                        "version needs a datanet: versions are numbered per datanet".into(),
                    ));
                }
                out.push((
                    Occur::Must,
                    konst(parse::u64_range(
                        f.added_in,
                        Bound::Unbounded,
                        Bound::Included(v),
                    )),
                ));
                out.push((
                    Occur::Must,
                    konst(parse::u64_range(
                        f.removed_in,
                        Bound::Excluded(v),
                        Bound::Unbounded,
                    )),
                ));
            }
            None => {
                let live = Box::new(TermQuery::new(
                    Term::from_field_text(f.state, STATE_LIVE),
                    IndexRecordOption::WithFreqs,
                ));
                if q.pending_for.is_empty() {
                    out.push((Occur::Must, live));
                } else {
                    let mut ids: Vec<u64> = q.pending_for.clone();
                    ids.sort_unstable();
                    ids.dedup();
                    let of_datanets: Vec<(Occur, Box<dyn Query>)> = ids
                        .into_iter()
                        .map(|d| (Occur::Should, term(Term::from_field_u64(f.datanet_id, d))))
                        .collect();
                    let pending = BooleanQuery::new(vec![
                        (
                            Occur::Must,
                            term(Term::from_field_text(f.state, STATE_PENDING)),
                        ),
                        (Occur::Must, Box::new(BooleanQuery::new(of_datanets))),
                    ]);
                    out.push((
                        Occur::Must,
                        konst(Box::new(BooleanQuery::new(vec![
                            (Occur::Should, live),
                            (Occur::Should, Box::new(pending)),
                        ]))),
                    ));
                }
            }
        }
        if let Some(c) = &q.contributor {
            out.push((
                Occur::Must,
                konst(term(Term::from_field_text(f.contributor, &hex_addr(c)))),
            ));
        }
        if let Some(t) = &q.tag {
            let t = t.trim().to_lowercase();
            if !t.is_empty() {
                out.push((Occur::Must, konst(term(Term::from_field_text(f.tag, &t)))));
            }
        }
        Ok(out)
    }

    fn freshen(&self) -> Result<()> {
        let store_seq = self.store.snapshot()?.stats()?.seq;
        let indexed = self.indexed.load(Ordering::Acquire);
        if store_seq > indexed && store_seq - indexed <= FRESH_LAG {
            self.catch_up()?;
        }
        Ok(())
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        if q.limit == 0 || q.limit > MAX_LIMIT {
            return Err(Error::InvalidSearch(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let offset: usize = match q.cursor.as_deref() {
            None | Some("") => 0,
            Some(c) => c.parse().ok().filter(|o| *o <= 100_000).ok_or_else(|| {
                Error::InvalidSearch(format!("cursor '{c}' is not one this search handed out"))
            })?,
        };
        let compiled = parse::compile(&self.index, &self.fields, &q.text)?;
        let mut clauses = compiled.clauses;
        clauses.extend(self.filters(q)?);
        let query: Box<dyn Query> = if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
            Box::new(EmptyQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        self.freshen()?;
        let searcher = self.reader.searcher();
        let (top, total) = searcher
            .search(
                &*query,
                &(
                    TopDocs::with_limit(q.limit)
                        .and_offset(offset)
                        .order_by_score(),
                    Count,
                ),
            )
            .map_err(ix)?;
        let snippets = self.snippet_generator(&searcher, &compiled.highlights)?;
        // The store is the truth: a snapshot taken after the index search sees at least what
        // the index saw.
        let snap = self.store.snapshot()?;
        let mut datanet_tags: HashMap<u64, Vec<String>> = HashMap::new();
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let seg = searcher.segment_reader(addr.segment_ord);
            let col = seg.fast_fields().u64("row").map_err(ix)?;
            let Some(row_id) = col.first(addr.doc_id) else {
                continue;
            };
            if let Some(hit) = self.check(&snap, q, row_id, score, &snippets, &mut datanet_tags)? {
                hits.push(hit);
            }
        }
        let next = offset + q.limit;
        Ok(SearchPage {
            hits,
            next_cursor: (next < total).then(|| next.to_string()),
            total,
        })
    }

    /// The hit for `row_id` when the store agrees it matches `q`.
    fn check(
        &self,
        snap: &Snapshot,
        q: &SearchQuery,
        row_id: u64,
        score: f32,
        snippets: &SnippetGenerator,
        datanet_tags: &mut HashMap<u64, Vec<String>>,
    ) -> Result<Option<Hit>> {
        let row = match snap.row(row_id) {
            Ok(r) => r,
            Err(commons_storage::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if q.datanet.is_some_and(|d| d != row.datanet) {
            return Ok(None);
        }
        let c = snap.contribution(row.contribution)?;
        if q.contributor.is_some_and(|a| a != c.contributor) {
            return Ok(None);
        }
        if let Some(t) = &q.tag {
            let t = t.trim().to_lowercase();
            let tags = match datanet_tags.get(&row.datanet) {
                Some(t) => t,
                None => {
                    let tags = snap.datanet_by_id(row.datanet)?.tags;
                    datanet_tags.entry(row.datanet).or_insert(tags)
                }
            };
            if !t.is_empty() && !tags.contains(&t) {
                return Ok(None);
            }
        }
        let m = snap.membership(row.datanet, row.id)?;
        let visible = match (c.status, m, q.version) {
            (Status::Accepted, Some(m), Some(v)) => m.in_version(v),
            (Status::Accepted, Some(m), None) => m.removed_in.is_none(),
            (Status::Pending, _, None) => q.pending_for.contains(&row.datanet),
            _ => false,
        };
        if !visible {
            return Ok(None);
        }
        Ok(Some(Hit {
            row_id,
            datanet: row.datanet,
            contribution: row.contribution,
            contributor: c.contributor,
            score,
            snippet: snippet(snippets, &row.text),
            added_in: m.map(|m| m.added_in),
            removed_in: m.and_then(|m| m.removed_in),
            pending: c.status == Status::Pending,
        }))
    }

    fn snippet_generator(
        &self,
        searcher: &tantivy::Searcher,
        h: &parse::Highlights,
    ) -> Result<SnippetGenerator> {
        let field = self.fields.text;
        let mut terms: BTreeMap<String, f32> = BTreeMap::new();
        for t in &h.terms {
            let df = searcher
                .doc_freq(&Term::from_field_text(field, t))
                .map_err(ix)?;
            terms.insert(t.clone(), 1.0 / (1.0 + df as f32));
        }
        for p in &h.prefixes {
            let mut found = 0;
            'segments: for seg in searcher.segment_readers() {
                let inv = seg.inverted_index(field).map_err(ix)?;
                let mut stream = inv
                    .terms()
                    .range()
                    .ge(p.as_bytes())
                    .into_stream()
                    .map_err(ix)?;
                while stream.advance() {
                    let k = stream.key();
                    if !k.starts_with(p.as_bytes()) {
                        break;
                    }
                    if let Ok(s) = std::str::from_utf8(k)
                        && !terms.contains_key(s)
                    {
                        terms.insert(s.to_string(), 0.5);
                        found += 1;
                        if found >= MAX_EXPANSIONS {
                            break 'segments;
                        }
                    }
                }
            }
        }
        let tokenizer = self.index.tokenizer_for_field(field).map_err(ix)?;
        Ok(SnippetGenerator::new(
            terms,
            tokenizer,
            field,
            SNIPPET_CHARS,
        ))
    }
}

fn snippet(generator: &SnippetGenerator, text: &str) -> String {
    let mut s = generator.snippet(text);
    if s.fragment().is_empty() {
        let head: String = text.chars().take(SNIPPET_CHARS).collect();
        let more = head.len() < text.len();
        return format!("{}{}", escape_html(&head), if more { "…" } else { "" });
    }
    s.set_snippet_prefix_postfix("<mark>", "</mark>");
    let range = s.fragment_range();
    let mut out = String::new();
    if range.start > 0 {
        out.push('…');
    }
    out.push_str(&s.to_html());
    if range.end < text.len() {
        out.push('…');
    }
    out
}

/// Minimal HTML escaping, the same characters tantivy's snippets escape.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
