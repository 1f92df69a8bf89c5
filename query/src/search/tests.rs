//! Unit tests of the search index against a real store: version semantics, take-downs,
//! pending visibility, catch-up after reopening, rebuild after deleting the directory, bad
//! queries.

use std::sync::Arc;

use commons_storage::model::{DataKind, Metadata, SignedBy};
use commons_storage::parse::Format;
use commons_storage::{
    EditRequest, NewContribution, NewDatanet, ReviewRequest, Store, TakeDownRequest,
};

use super::*;

const OWNER: [u8; 20] = [1; 20];
const ALICE: [u8; 20] = [0xa1; 20];
const BOB: [u8; 20] = [0xb0; 20];

fn signed(by: [u8; 20]) -> SignedBy {
    SignedBy {
        signer: by,
        nonce: rand_nonce(),
        deadline: u64::MAX,
        signature: vec![0; 65],
    }
}

fn rand_nonce() -> [u8; 32] {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    let mut n = [0u8; 32];
    n[24..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    n
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: Arc<Store>,
    dir: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        Store::create_fresh(&tmp.path().join("db.redb"), Default::default()).expect("store"),
    );
    let dir = tmp.path().join("index");
    Fixture {
        _tmp: tmp,
        store,
        dir,
    }
}

fn no_follow() -> SearchConfig {
    SearchConfig {
        threads: 1,
        heap_bytes: 16 << 20,
        follow: false,
        ..Default::default()
    }
}

fn open(f: &Fixture) -> Arc<SearchIndex> {
    SearchIndex::open_with(&f.dir, f.store.clone(), no_follow()).expect("open index")
}

fn datanet(store: &Store, slug: &str, tags: &[&str]) -> u64 {
    store
        .create_datanet(NewDatanet {
            slug: slug.into(),
            name: slug.into(),
            summary: String::new(),
            description: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            kind: DataKind::Text,
            private: false,
            signed: signed(OWNER),
        })
        .expect("create datanet")
        .id
}

/// Contribute `rows` as `who`; returns (contribution id, first row id).
fn contribute(store: &Store, slug: &str, who: [u8; 20], rows: &[&str]) -> (u64, u64) {
    let bytes = rows.join("\n\n").into_bytes();
    let c = store
        .contribute(NewContribution {
            datanet: slug.into(),
            file_name: "f.txt".into(),
            file_hash: *blake3::hash(&bytes).as_bytes(),
            bytes,
            format: Format::Txt,
            rows: rows.iter().map(|r| r.to_string()).collect(),
            signed: signed(who),
        })
        .expect("contribute");
    (c.id, c.first_row)
}

fn review(store: &Store, slug: &str, ids: &[u64], accept: bool) -> Option<u64> {
    store
        .review(ReviewRequest {
            datanet: slug.into(),
            contributions: ids.to_vec(),
            accept,
            reason: None,
            signed: signed(OWNER),
        })
        .expect("review")
        .version
        .map(|v| v.number)
}

fn take_down(store: &Store, slug: &str, rows: &[u64]) -> u64 {
    store
        .take_down(TakeDownRequest {
            datanet: slug.into(),
            rows: rows.to_vec(),
            reason: "test".into(),
            signed: signed(OWNER),
        })
        .expect("take down")
        .number
}

fn ids(idx: &SearchIndex, q: &SearchQuery) -> Vec<u64> {
    let mut v: Vec<u64> = idx
        .search(q)
        .expect("search")
        .hits
        .iter()
        .map(|h| h.row_id)
        .collect();
    v.sort_unstable();
    v
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        limit: 100,
        ..SearchQuery::new(text)
    }
}

#[test]
fn versions_take_downs_and_pending() {
    let f = fixture();
    let s = &f.store;
    let d = datanet(s, "med", &["health"]);
    let (c1, r1) = contribute(
        s,
        "med",
        ALICE,
        &["the patient had a fever", "blood pressure was high"],
    );
    let idx = open(&f);
    // Pending rows are invisible unless the caller may review them.
    assert!(ids(&idx, &q("fever")).is_empty());
    let mut pq = q("fever");
    pq.pending_for = vec![d];
    let page = idx.search(&pq).expect("search");
    assert_eq!(page.hits.len(), 1);
    assert!(page.hits[0].pending);
    assert_eq!(page.hits[0].added_in, None);

    let v1 = review(s, "med", &[c1], true).expect("version");
    let (c2, r2) = contribute(s, "med", BOB, &["a second fever case"]);
    let v2 = review(s, "med", &[c2], true).expect("version");
    assert_eq!(ids(&idx, &q("fever")), vec![r1, r2]);

    let v3 = take_down(s, "med", &[r1]);
    // Gone from the latest and from the version that removes it; still in older ones.
    assert_eq!(ids(&idx, &q("fever")), vec![r2]);
    let at = |v: u64| SearchQuery {
        datanet: Some(d),
        version: Some(v),
        ..q("fever")
    };
    assert_eq!(ids(&idx, &at(v1)), vec![r1]);
    assert_eq!(ids(&idx, &at(v2)), vec![r1, r2]);
    assert_eq!(ids(&idx, &at(v3)), vec![r2]);
    let hit = &idx.search(&at(v2)).expect("search").hits;
    let removed = hit.iter().find(|h| h.row_id == r1).expect("r1");
    assert_eq!((removed.added_in, removed.removed_in), (Some(v1), Some(v3)));

    // Filters.
    let by = |who| SearchQuery {
        contributor: Some(who),
        ..q("fever")
    };
    assert_eq!(ids(&idx, &by(BOB)), vec![r2]);
    assert!(ids(&idx, &by(ALICE)).is_empty());
    let tagged = SearchQuery {
        tag: Some("Health".into()),
        ..q("fever")
    };
    assert_eq!(ids(&idx, &tagged), vec![r2]);
    assert_eq!(
        ids(&idx, &q(&format!("contributor:{}", hex_addr(&BOB)))),
        vec![r2]
    );
    assert_eq!(ids(&idx, &q("contributor:0xB0B0*")), vec![r2]);
    assert_eq!(ids(&idx, &q("datanet:med AND fev*")), vec![r2]);
    assert_eq!(ids(&idx, &q("\"second fever\"")), vec![r2]);
    assert!(ids(&idx, &q("\"fever second\"")).is_empty());
    assert_eq!(ids(&idx, &q("fever -second")), Vec::<u64>::new());
    assert_eq!(ids(&idx, &q("blood OR second")), vec![r1 + 1, r2]);
    assert_eq!(ids(&idx, &q("*")), vec![r1 + 1, r2]);

    // Rejected rows are never found.
    let (c3, _) = contribute(s, "med", ALICE, &["rejected fever note"]);
    review(s, "med", &[c3], false);
    let mut all = q("rejected");
    all.pending_for = vec![d];
    assert!(ids(&idx, &all).is_empty());
}

#[test]
fn snippets_highlight_and_escape() {
    let f = fixture();
    let s = &f.store;
    datanet(s, "web", &[]);
    let (c, _) = contribute(s, "web", ALICE, &["<b>renal</b> function & the kidney"]);
    review(s, "web", &[c], true);
    let idx = open(&f);
    let page = idx.search(&q("renal")).expect("search");
    assert_eq!(
        page.hits[0].snippet,
        "&lt;b&gt;<mark>renal</mark>&lt;/b&gt; function &amp; the kidney"
    );
    let page = idx.search(&q("kid*")).expect("search");
    assert!(
        page.hits[0].snippet.contains("<mark>kidney</mark>"),
        "{}",
        page.hits[0].snippet
    );
    assert!(page.hits[0].score > 0.0);
}

#[test]
fn catch_up_after_reopen_and_rebuild_after_delete() {
    let f = fixture();
    let s = &f.store;
    datanet(s, "aa", &["x"]);
    let (c1, r1) = contribute(s, "aa", ALICE, &["alpha beta"]);
    review(s, "aa", &[c1], true);
    let seq = {
        let idx = open(&f);
        assert_eq!(ids(&idx, &q("alpha")), vec![r1]);
        idx.indexed_seq()
    };
    assert_eq!(seq, s.snapshot().expect("snap").stats().expect("stats").seq);
    // Changes while the index is closed are absorbed on open.
    let (c2, r2) = contribute(s, "aa", BOB, &["alpha gamma"]);
    review(s, "aa", &[c2], true);
    let idx = open(&f);
    assert!(idx.indexed_seq() > seq);
    assert_eq!(ids(&idx, &q("alpha")), vec![r1, r2]);
    drop(idx);
    // Delete the index: it is rebuilt.
    std::fs::remove_dir_all(&f.dir).expect("rm");
    let idx = open(&f);
    assert_eq!(ids(&idx, &q("alpha")), vec![r1, r2]);
    assert_eq!(idx.num_docs(), 2);
    drop(idx);
    // A corrupt meta.json: rebuilt too.
    std::fs::write(f.dir.join("meta.json"), b"{not json").expect("write");
    let idx = open(&f);
    assert_eq!(ids(&idx, &q("alpha")), vec![r1, r2]);
}

#[test]
fn tag_edits_reindex_the_datanet() {
    let f = fixture();
    let s = &f.store;
    datanet(s, "tt", &["old"]);
    let (c, r) = contribute(s, "tt", ALICE, &["tagged row"]);
    review(s, "tt", &[c], true);
    let idx = open(&f);
    assert_eq!(ids(&idx, &q("tag:old")), vec![r]);
    s.edit_datanet(EditRequest {
        datanet: "tt".into(),
        metadata: Metadata {
            summary: String::new(),
            description: String::new(),
            tags: vec!["new".into()],
        },
        signed: signed(OWNER),
    })
    .expect("edit");
    idx.catch_up().expect("catch up");
    assert!(ids(&idx, &q("tag:old")).is_empty());
    assert_eq!(ids(&idx, &q("tag:new AND tagged")), vec![r]);
}

#[test]
fn the_follower_absorbs_writes() {
    let f = fixture();
    let s = &f.store;
    datanet(s, "ff", &[]);
    let cfg = SearchConfig {
        follow: true,
        poll: Duration::from_millis(10),
        ..no_follow()
    };
    let idx = SearchIndex::open_with(&f.dir, s.clone(), cfg).expect("open");
    let (c, _) = contribute(s, "ff", ALICE, &["followed"]);
    review(s, "ff", &[c], true);
    let target = s.snapshot().expect("snap").stats().expect("stats").seq;
    let deadline = Instant::now() + Duration::from_secs(20);
    while idx.indexed_seq() < target {
        assert!(Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(Duration::from_millis(10));
    }
    idx.shutdown();
    assert_eq!(idx.search(&q("followed")).expect("search").hits.len(), 1);
}

#[test]
fn paging_with_cursor() {
    let f = fixture();
    let s = &f.store;
    datanet(s, "pp", &[]);
    let rows: Vec<String> = (0..25).map(|i| format!("common word number{i}")).collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (c, _) = contribute(s, "pp", ALICE, &refs);
    review(s, "pp", &[c], true);
    let idx = open(&f);
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = idx
            .search(&SearchQuery {
                limit: 10,
                cursor: cursor.clone(),
                ..SearchQuery::new("common")
            })
            .expect("search");
        assert_eq!(page.total, 25);
        seen.extend(page.hits.iter().map(|h| h.row_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
}

fn err(idx: &SearchIndex, text: &str) -> String {
    match idx.search(&q(text)) {
        Err(Error::InvalidSearch(m)) => m,
        other => panic!("{text:?}: expected InvalidSearch, got {other:?}"),
    }
}

#[test]
fn bad_queries_have_clear_errors() {
    let f = fixture();
    let idx = open(&f);
    assert!(err(&idx, "\"blood pressure").contains("unbalanced quotes"));
    assert!(err(&idx, "(a OR b").contains("unbalanced parenthesis"));
    assert!(err(&idx, "a)").contains("unbalanced parenthesis"));
    assert!(err(&idx, "color:red").contains("unknown field 'color'"));
    assert!(err(&idx, "state:pending").contains("unknown field 'state'"));
    assert!(err(&idx, "row:abc").contains("takes a number"));
    assert!(err(&idx, "   ").contains("empty"));
    assert!(err(&idx, "row:[1 TO 5]").contains("not supported"));
    let mut v = q("x");
    v.version = Some(1);
    assert!(
        matches!(idx.search(&v), Err(Error::InvalidSearch(m)) if m.contains("needs a datanet"))
    );
    let mut c = q("x");
    c.cursor = Some("zzz".into());
    assert!(matches!(idx.search(&c), Err(Error::InvalidSearch(_))));
    let mut l = q("x");
    l.limit = 0;
    assert!(matches!(idx.search(&l), Err(Error::InvalidSearch(_))));
    // Valid queries on an empty index simply find nothing.
    for ok in [
        "a AND b",
        "NOT a",
        "-a",
        "\"a b\"~2",
        "a^2 b",
        "ab*",
        "\"a b\"*",
        "tag:x",
    ] {
        assert!(idx.search(&q(ok)).expect(ok).hits.is_empty(), "{ok}");
    }
}

#[test]
fn the_index_never_leads_the_store() {
    // An index whose payload is ahead of the store (a restored database) is rebuilt.
    let f = fixture();
    let s = &f.store;
    datanet(s, "zz", &[]);
    let (c, r) = contribute(s, "zz", ALICE, &["zeta"]);
    review(s, "zz", &[c], true);
    drop(open(&f));
    let tmp2 = tempfile::tempdir().expect("tmp");
    let other = Arc::new(
        Store::create_fresh(&tmp2.path().join("db.redb"), Default::default()).expect("store"),
    );
    let idx = SearchIndex::open_with(&f.dir, other.clone(), no_follow()).expect("open");
    assert_eq!(idx.indexed_seq(), 0);
    assert!(ids(&idx, &q("zeta")).is_empty());
    drop(idx);
    let idx = open(&f);
    assert_eq!(ids(&idx, &q("zeta")), vec![r]);
}
