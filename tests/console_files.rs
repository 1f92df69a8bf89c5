//! The console's files and the API description: `/` is the console's HTML, unknown non-API
//! paths fall back to `index.html` (the console routes on the client), and
//! `/api/v1/openapi.json` describes every route of docs/API.md's tables.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Node, Opts};

/// GET `path`: status, content type, body.
async fn fetch(node: &Node, path: &str) -> (u16, String, String) {
    let r = node.http().get(node.at(path)).send().await.expect("GET");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_at_the_root_and_for_unknown_paths() {
    let node = Node::start(Opts::default());
    let (status, ct, index) = fetch(&node, "/").await;
    assert_eq!(status, 200, "GET / answered {status}: {index}");
    assert!(ct.starts_with("text/html"), "GET / content type {ct}");
    assert!(
        index.to_lowercase().contains("<html"),
        "GET / is not HTML: {index}"
    );
    for path in [
        "/datanets/med-qa",
        "/some/deep/console/route",
        "/index.html",
    ] {
        let (status, ct, body) = fetch(&node, path).await;
        assert_eq!(status, 200, "GET {path}");
        assert!(ct.starts_with("text/html"), "GET {path} content type {ct}");
        assert_eq!(body, index, "GET {path} falls back to index.html");
    }
    // A missing asset is a 404, not the HTML page.
    let (status, _, _) = fetch(&node, "/js/does-not-exist.js").await;
    assert_eq!(status, 404, "a missing asset");
    // API paths never fall back to the console.
    let (status, ct, body) = fetch(&node, "/api/v1/does-not-exist").await;
    assert_eq!(status, 404);
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: Value = serde_json::from_str(&body).expect("an API 404 is JSON");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    // Metrics are Prometheus text.
    let (status, ct, body) = fetch(&node, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(body.contains("commons_"), "{body}");
}

/// `{slug}`, `{n}`, `{id}` … all become `{}`, so parameter names do not matter.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(ch),
            _ => {}
        }
    }
    out.trim_end_matches('/').to_string()
}

/// The (method, path) pairs of docs/API.md's route tables: lines `| GET | `/api/v1/...` | …`.
fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("read docs/API.md");
    let mut routes = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| GET | `/api/v1/node` | ..." splits into ["", "GET", "`/api/v1/node`", ...].
        let [_, method, path, ..] = cells.as_slice() else {
            continue;
        };
        if !matches!(*method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let path = path.trim_matches('`');
        let path = path.split('?').next().unwrap_or(path);
        assert!(
            path.starts_with('/'),
            "a route line of docs/API.md without a path: {line}"
        );
        routes.insert((method.to_lowercase(), normalise(path)));
    }
    routes
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_describes_every_documented_route() {
    let routes = documented_routes();
    assert!(
        routes.len() >= 25,
        "docs/API.md's tables list the routes: {routes:?}"
    );
    let node = Node::start(Opts::default());
    let (status, ct, body) = fetch(&node, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: Value = serde_json::from_str(&body).expect("openapi.json is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        doc["openapi"]
    );
    // Paths may be written relative to a server URL such as `/api/v1`.
    let base = doc["servers"][0]["url"]
        .as_str()
        .map(|u| {
            let path = u
                .split_once("://")
                .map_or(u, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
            path.trim_end_matches('/').to_string()
        })
        .unwrap_or_default();
    let paths = doc["paths"].as_object().expect("openapi.json has paths");
    let mut described = BTreeSet::new();
    for (path, item) in paths {
        let full = if path.starts_with("/api/")
            || path.starts_with("/v1/")
            || path == "/metrics"
            || base.is_empty()
        {
            path.clone()
        } else {
            format!("{base}{path}")
        };
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            described.insert((method.to_lowercase(), normalise(&full)));
        }
    }
    let missing: Vec<_> = routes.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes of docs/API.md that openapi.json does not describe: {missing:#?}"
    );
    // Every operation answers something.
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
        }
    }
}
