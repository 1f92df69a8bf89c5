//! End-to-end tests of full-text search through the real binary: `GET /api/v1/search` and
//! `commons search`, version semantics and take-downs, pending rows for reviewers, bad queries
//! as 400 `invalid_query`, and agreement between search and the rows the store lists — after a
//! restart, after deleting the index, and across SIGKILLs while writes are in flight.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Node, Opts, address, dev, u};

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn search(node: &Node, q: &str, extra: &str) -> Value {
    node.get_ok(&format!("/api/v1/search?q={}&limit=1000{extra}", enc(q)))
        .await
}

fn rows(v: &Value) -> BTreeSet<u64> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|h| u(h, "row"))
        .collect()
}

/// Every row id of a datanet's version `n` as the rows API lists it.
async fn listed(node: &Node, slug: &str, n: u64) -> BTreeSet<u64> {
    node.all_pages(&format!("/api/v1/datanets/{slug}/rows?version={n}"), 1000)
        .await
        .iter()
        .map(|r| u(r, "id"))
        .collect()
}

/// Every row id search finds in a datanet's version `n`, following cursors.
async fn found(node: &Node, slug: &str, n: u64) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let v = node
            .get_ok(&format!(
                "/api/v1/search?q=*&datanet={slug}&version={n}&limit=1000{cursor}"
            ))
            .await;
        out.extend(rows(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn take_down(node: &Node, slug: &str, row: u64) -> u64 {
    let r = row.to_string();
    let v = node.cli_json(&[
        "--key", "dev0", "datanet", "takedown", slug, &r, "--reason", "test",
    ]);
    u(&v, "number")
}

#[tokio::test(flavor = "multi_thread")]
async fn search_through_the_api_and_the_cli() {
    let n = Node::start(Opts::args(&[]));
    let owner = dev(0);
    n.create_datanet(&owner, "med", false).await;
    let c1 = n
        .contribute_ok(
            &dev(1),
            "med",
            "a.txt",
            b"The patient had a high fever.\n\nBlood pressure was <normal> & stable.",
        )
        .await;
    // Pending: invisible to the public, visible to the admin with include_pending.
    assert!(rows(&search(&n, "fever", "").await).is_empty());
    let (status, body) = n.get("/api/v1/search?q=fever&include_pending=true").await;
    assert_eq!(status, 401, "{body}");
    let r = n
        .http()
        .get(n.at("/api/v1/search?q=fever&include_pending=true"))
        .bearer_auth(n.admin_token())
        .send()
        .await
        .expect("GET");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["items"][0]["pending"], json!(true), "{v}");

    n.review_ok(&owner, "med", &[u(&c1, "id")], true, "").await;
    let first = u(&c1, "first_row");
    let v = search(&n, "fever", "").await;
    assert_eq!(rows(&v), BTreeSet::from([first]), "{v}");
    let hit = &v["items"][0];
    assert_eq!(hit["datanet"], "med");
    assert_eq!(hit["contributor"], json!(address(&dev(1))));
    assert_eq!(hit["added_in"], 1);
    assert_eq!(hit["removed_in"], Value::Null);
    assert!(
        hit["snippet"]
            .as_str()
            .expect("snippet")
            .contains("<mark>fever</mark>")
    );
    let v = search(&n, "\"blood pressure\"", "").await;
    let snip = v["items"][0]["snippet"].as_str().expect("snippet");
    assert!(snip.contains("&lt;normal&gt; &amp;"), "{snip}");

    // Take the fever row down: gone from v2 and the latest, still in v1.
    let v2 = take_down(&n, "med", first).await;
    assert_eq!(v2, 2);
    assert!(rows(&search(&n, "fever", "").await).is_empty());
    assert!(rows(&search(&n, "fever", "&datanet=med&version=2").await).is_empty());
    let old = search(&n, "fever", "&datanet=med&version=1").await;
    assert_eq!(rows(&old), BTreeSet::from([first]));
    assert_eq!(old["items"][0]["removed_in"], 2);

    // Bad input: 400 invalid_query with a readable message.
    for (q, needle) in [
        ("\"unclosed phrase", "unbalanced quotes"),
        ("colour:red", "unknown field 'colour'"),
        ("(a OR b", "unbalanced parenthesis"),
    ] {
        let (status, body) = n.get(&format!("/api/v1/search?q={}", enc(q))).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{q}: {body}");
        let msg = body["error"]["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{q}: {msg}");
    }
    let (status, body) = n.get("/api/v1/search?q=x&version=1").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_query"))
    );
    let (status, _) = n.get("/api/v1/search?q=x&datanet=nope").await;
    assert_eq!(status, 404);

    // The CLI.
    let v = n.cli_json(&["search", "pressure", "--datanet", "med"]);
    assert_eq!(rows(&v), BTreeSet::from([first + 1]), "{v}");
    let out = n.cli(&["search", "pressure"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[pressure]") && text.contains("row "),
        "{text}"
    );
    let line = n.cli_fails(&["search", "\"oops"]);
    assert!(line.contains("unbalanced quotes"), "{line}");
}

/// Search and the rows API agree on every version of every datanet.
async fn agree(n: &Node, slugs: &[&str]) {
    for slug in slugs {
        let d = n.get_ok(&format!("/api/v1/datanets/{slug}")).await;
        for v in 1..=u(&d, "latest_version") {
            assert_eq!(
                found(n, slug, v).await,
                listed(n, slug, v).await,
                "{slug} v{v}: search and the rows API disagree"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_agrees_with_the_store_across_restarts_and_kills() {
    let mut n = Node::start(Opts::args(&[]));
    let owner = dev(0);
    for slug in ["alpha", "beta"] {
        n.create_datanet(&owner, slug, false).await;
    }
    let mut round = 0u64;
    for _ in 0..4 {
        let slug = if round.is_multiple_of(2) {
            "alpha"
        } else {
            "beta"
        };
        let body = format!(
            "Round {round} first paragraph about rivers.\n\nRound {round} second about mountains."
        );
        let c = n
            .contribute_ok(&dev(1), slug, &format!("r{round}.txt"), body.as_bytes())
            .await;
        n.review_ok(&owner, slug, &[u(&c, "id")], true, "").await;
        round += 1;
    }
    let d = n.get_ok("/api/v1/datanets/alpha").await;
    let victim = listed(&n, "alpha", u(&d, "latest_version"))
        .await
        .into_iter()
        .next()
        .expect("a row");
    take_down(&n, "alpha", victim).await;
    agree(&n, &["alpha", "beta"]).await;

    // Graceful restart, then a restart without the index: rebuilt, same answers.
    n.stop();
    n.restart();
    agree(&n, &["alpha", "beta"]).await;
    n.kill();
    std::fs::remove_dir_all(n.data_dir.join("index").join("search")).expect("rm index");
    n.restart();
    agree(&n, &["alpha", "beta"]).await;

    // SIGKILL while contributions and reviews are in flight, a few times.
    for _ in 0..3 {
        let writer = {
            let client = n.client();
            let owner = owner.clone();
            let start = round;
            tokio::spawn(async move {
                let domain = crate::support::domain();
                let mut r = start;
                loop {
                    let slug = if r.is_multiple_of(2) { "alpha" } else { "beta" };
                    let body =
                        format!("Round {r} first about rivers.\n\nRound {r} second about hills.");
                    let Ok(c) = client
                        .contribute(
                            &domain,
                            &dev(1),
                            slug,
                            &format!("k{r}.txt"),
                            body.into_bytes(),
                        )
                        .await
                    else {
                        return;
                    };
                    if client
                        .review(&domain, &owner, slug, &[u(&c, "id")], true, "")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    r += 1;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        n.kill();
        let _ = writer.await;
        n.restart();
        agree(&n, &["alpha", "beta"]).await;
        // Pending rows left by the kill are visible to the admin and match the store's.
        let pending: BTreeSet<u64> = {
            let mut s = BTreeSet::new();
            for slug in ["alpha", "beta"] {
                for c in n
                    .all_pages(
                        &format!("/api/v1/datanets/{slug}/contributions?status=pending"),
                        100,
                    )
                    .await
                {
                    s.extend(u(&c, "first_row")..u(&c, "first_row") + u(&c, "row_count"));
                }
            }
            s
        };
        let r = n
            .http()
            .get(n.at("/api/v1/search?q=*&include_pending=true&limit=1000"))
            .bearer_auth(n.admin_token())
            .send()
            .await
            .expect("GET");
        let v: Value = r.json().await.expect("json");
        let got: BTreeSet<u64> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|h| h["pending"] == json!(true))
            .map(|h| u(h, "row"))
            .collect();
        assert_eq!(got, pending, "pending rows: search and the store disagree");
        round += 1000;
    }
}
