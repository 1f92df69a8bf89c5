//! The HTTP edge: REST under `/api/v1`, `/metrics`, and the console's files at `/`.
//!
//! One warp filter takes every request and [`dispatch`] routes it by method and path
//! segments. This keeps error handling in one place (every failure is
//! `{"error":{"code","message"}}`), and a panic in a handler is caught here and answered as an
//! internal error instead of taking the connection down.

mod adapters;
mod console;
mod datanets;
mod error;
mod ledger;
mod openai;
mod search;
mod sql;
mod types;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::{FutureExt, Stream, StreamExt};
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};

pub use error::ApiError;

use crate::node::Node;

/// The body of a request, read lazily so uploads can be bounded as they stream in.
pub(crate) type BodyStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send + Sync + 'static>>;

/// A request as handlers see it.
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    body: Option<BodyStream>,
}

impl Req {
    /// Query parameter `name`.
    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Query parameter `name` parsed, with a 400 when malformed.
    pub(crate) fn q_parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.q(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter '{name}' has an invalid value '{v}'"
                ))
            }),
        }
    }

    /// Header `name` as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Read the whole body, refusing more than `limit` bytes with 413.
    pub(crate) async fn body(&mut self, limit: u64) -> Result<Vec<u8>, ApiError> {
        if let Some(len) = self
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            && len > limit
        {
            return Err(ApiError::too_large(len, limit));
        }
        let mut out = Vec::new();
        let Some(mut s) = self.body.take() else {
            return Ok(out);
        };
        while let Some(chunk) = s.next().await {
            let mut chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
            if out.len() as u64 + chunk.remaining() as u64 > limit {
                return Err(ApiError::too_large(
                    out.len() as u64 + chunk.remaining() as u64,
                    limit,
                ));
            }
            while chunk.has_remaining() {
                let c = chunk.chunk();
                out.extend_from_slice(c);
                let n = c.len();
                chunk.advance(n);
            }
        }
        Ok(out)
    }

    /// The body as a stream, for handlers that parse it as it arrives.
    pub(crate) fn take_body(&mut self) -> BodyStream {
        self.body
            .take()
            .unwrap_or_else(|| Box::pin(futures_util::stream::empty()))
    }

    /// Read a JSON body (at most 1 MiB).
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let b = self.body(1 << 20).await?;
        serde_json::from_slice(&b)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A response.
pub(crate) type Resp = warp::reply::Response;

/// A response with a status, a content type and a body.
pub(crate) fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Resp::new(body.into().into());
    *r.status_mut() = status;
    if let Ok(v) = warp::http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert("content-type", v);
    }
    r
}

/// JSON response with a status.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    respond(status, "application/json", body)
}

/// All routes of the node.
pub fn routes(
    node: Arc<Node>,
) -> impl Filter<Extract = (Resp,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::any()
        .map(move || node.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream().map(boxed_body))
        .then(
            |node: Arc<Node>,
             method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body: BodyStream| async move {
                let query = parse_query(&query);
                let req = Req {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    body: Some(body),
                };
                handle(node, req).await
            },
        )
}

fn boxed_body<S, B>(s: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Sync + 'static,
    B: Buf,
{
    Box::pin(s.map(|r| r.map(|mut b| b.copy_to_bytes(b.remaining()))))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

async fn handle(node: Arc<Node>, req: Req) -> Resp {
    let started = Instant::now();
    let method = req.method.clone();
    let path = req.path.clone();
    let result = AssertUnwindSafe(dispatch(node, req)).catch_unwind().await;
    let resp = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            tracing::error!(%method, %path, "handler panicked");
            ApiError::internal("the handler panicked; this is a bug in Commons").into_response()
        }
    };
    let status = resp.status().as_u16().to_string();
    let route = route_label(&path);
    metrics::counter!("commons_http_requests_total", "method" => method.to_string(), "route" => route, "status" => status).increment(1);
    metrics::histogram!("commons_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// Low-cardinality route label for metrics.
fn route_label(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "v1", "datanets"] => "datanets",
        ["api", "v1", "datanets", _] => "datanet",
        ["api", "v1", "datanets", _, "contributions"] => "contributions",
        ["api", "v1", "datanets", _, "rows"] => "rows",
        ["api", "v1", "datanets", _, "review"] => "review",
        ["api", "v1", "datanets", _, ..] => "datanet_sub",
        ["api", "v1", "console", ..] => "console",
        ["api", "v1", "search"] => "search",
        ["api", "v1", "sql"] => "sql",
        ["api", "v1", "adapters", ..] => "adapters",
        ["v1", "chat", "completions"] => "chat_completions",
        ["v1", "completions"] => "completions",
        ["v1", ..] => "openai_other",
        ["api", "v1", "ledger", ..] => "ledger",
        ["rpc"] => "rpc",
        ["api", "v1", ..] => "api_other",
        ["metrics"] => "metrics",
        _ => "console_files",
    }
}

async fn dispatch(node: Arc<Node>, mut req: Req) -> Result<Resp, ApiError> {
    let decoded: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    // HEAD is answered as GET; the server drops the body.
    let m = match req.method.clone() {
        Method::HEAD => Method::GET,
        m => m,
    };
    match (m.as_str(), segs.as_slice()) {
        ("GET", ["metrics"]) => Ok(metrics(&node).await),
        ("GET", ["api", "v1", "node"]) => datanets::node_info(&node).await,
        ("GET", ["api", "v1", "openapi.json"]) => Ok(respond(
            StatusCode::OK,
            "application/json",
            include_str!("../openapi.json"),
        )),
        ("GET", ["api", "v1", "datanets"]) => datanets::list(&node, &req).await,
        ("POST", ["api", "v1", "datanets"]) => datanets::create(&node, &mut req).await,
        ("GET", ["api", "v1", "datanets", slug]) => datanets::show(&node, slug).await,
        ("PATCH", ["api", "v1", "datanets", slug]) => datanets::edit(&node, slug, &mut req).await,
        ("GET", ["api", "v1", "datanets", slug, "edits"]) => datanets::edits(&node, slug).await,
        ("POST", ["api", "v1", "datanets", slug, "roles"]) => {
            datanets::roles(&node, slug, &mut req).await
        }
        ("GET", ["api", "v1", "datanets", slug, "versions"]) => {
            datanets::versions(&node, slug).await
        }
        ("GET", ["api", "v1", "datanets", slug, "versions", n]) => {
            datanets::version(&node, slug, n).await
        }
        ("GET", ["api", "v1", "datanets", slug, "rows"]) => datanets::rows(&node, slug, &req).await,
        ("GET", ["api", "v1", "datanets", slug, "diff"]) => datanets::diff(&node, slug, &req).await,
        ("POST", ["api", "v1", "datanets", slug, "contributions"]) => {
            datanets::contribute(&node, slug, &mut req).await
        }
        ("POST", ["api", "v1", "datanets", slug, "contributions", "batch"]) => {
            datanets::contribute_batch(&node, slug, &mut req).await
        }
        ("GET", ["api", "v1", "datanets", slug, "contributions"]) => {
            datanets::contributions(&node, slug, &req).await
        }
        ("POST", ["api", "v1", "datanets", slug, "review"]) => {
            datanets::review(&node, slug, &mut req).await
        }
        ("POST", ["api", "v1", "datanets", slug, "takedown"]) => {
            datanets::take_down(&node, slug, &mut req).await
        }
        ("GET", ["api", "v1", "contributions", id]) => datanets::contribution(&node, id).await,
        ("GET", ["api", "v1", "contributions", id, "rows"]) => {
            datanets::contribution_rows(&node, id, &req).await
        }
        ("GET", ["api", "v1", "rows", id]) => datanets::row(&node, id).await,
        ("GET", ["api", "v1", "blobs", hash]) => datanets::blob(&node, hash).await,
        ("GET", ["api", "v1", "search"]) => search::search(&node, &req).await,
        ("GET", ["api", "v1", "contributors", addr]) => {
            datanets::contributor(&node, addr, &req).await
        }
        ("POST", ["api", "v1", "console", "users"]) => console::create_user(&node, &mut req).await,
        ("GET", ["api", "v1", "console", "users"]) => console::list_users(&node, &req).await,
        ("POST", ["api", "v1", "console", "login"]) => console::login(&node, &mut req).await,
        ("POST", ["api", "v1", "console", "logout"]) => console::logout(&node, &req).await,
        ("GET", ["api", "v1", "console", "me"]) => console::me(&node, &req).await,
        ("POST", ["api", "v1", "console", "sign"]) => console::sign(&node, &mut req).await,
        ("POST", ["api", "v1", "sql"]) => sql::query(&node, &mut req).await,
        ("GET", ["api", "v1", "adapters"]) => adapters::list(&node, &req).await,
        ("POST", ["api", "v1", "adapters"]) => adapters::add(&node, &mut req).await,
        ("GET", ["api", "v1", "adapters", id]) => adapters::show(&node, id, &req).await,
        ("DELETE", ["api", "v1", "adapters", id]) => adapters::remove(&node, id, &req).await,
        ("GET", ["api", "v1", "adapters", id, "stats"]) => adapters::stats(&node, id, &req).await,
        ("POST", ["api", "v1", "adapters", id, "load"]) => {
            adapters::residency(&node, id, true, &req).await
        }
        ("POST", ["api", "v1", "adapters", id, "unload"]) => {
            adapters::residency(&node, id, false, &req).await
        }
        ("GET", ["api", "v1", "models", "base"]) => adapters::base(&node, &req).await,
        ("POST", ["api", "v1", "apikeys"]) => adapters::create_key(&node, &mut req).await,
        ("GET", ["api", "v1", "apikeys"]) => adapters::list_keys(&node, &req).await,
        ("DELETE", ["api", "v1", "apikeys", name]) => adapters::revoke_key(&node, name, &req).await,
        ("GET", ["v1", "models"]) => openai::models(&node, &req).await,
        ("POST", ["v1", "chat", "completions"]) => openai::chat(&node, &mut req).await,
        ("POST", ["v1", "completions"]) => openai::completions(&node, &mut req).await,
        ("POST", ["v1", "load_lora_adapter"]) => openai::load_lora(&node, &mut req).await,
        ("POST", ["v1", "unload_lora_adapter"]) => openai::unload_lora(&node, &mut req).await,
        (_, ["v1", ..]) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {} {}", req.method, req.path),
        )),
        ("POST", ["rpc"]) => {
            let body = req.body(crate::rpc::MAX_BODY).await?;
            let v = crate::rpc::handle_body(node.ledger.clone(), &body).await;
            Ok(json(StatusCode::OK, &v))
        }
        ("POST", ["api", "v1", "ledger", "deposits"]) => ledger_deposit(&node, &mut req).await,
        ("GET", ["api", "v1", "ledger"]) => ledger::status(&node).await,
        ("GET", ["api", "v1", "ledger", "blocks"]) => ledger::blocks(&node, &req).await,
        ("GET", ["api", "v1", "ledger", "blocks", id]) => ledger::block(&node, id).await,
        ("GET", ["api", "v1", "ledger", "transactions"]) => ledger::transactions(&node, &req).await,
        ("GET", ["api", "v1", "ledger", "transactions", hash]) => {
            ledger::transaction(&node, hash).await
        }
        ("GET", ["api", "v1", "ledger", "withdrawals", hash]) => {
            ledger::withdrawal(&node, hash, &req).await
        }
        ("GET", ["api", "v1", "ledger", "accounts", addr]) => {
            ledger::account(&node, addr, &req).await
        }
        ("GET", ["api", "v1", "ledger", "accounts", addr, "transactions"]) => {
            ledger::account_transactions(&node, addr, &req).await
        }
        ("GET", ["api", "v1", "ledger", "events"]) => ledger::events(&node, &req).await,
        ("GET", ["api", "v1", "ledger", "timings"]) => ledger::timings(&node, &req).await,
        ("POST", ["api", "v1", "ledger", "verify"]) => ledger::verify(&node, &req).await,
        (_, ["api", ..]) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {} {}", req.method, req.path),
        )),
        ("GET" | "HEAD", _) => Ok(crate::web::serve(&req.path)),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {}", req.method, req.path),
        )),
    }
}

async fn metrics(node: &Node) -> Resp {
    let snap = node.store.snapshot().and_then(|s| s.stats());
    if let Ok(s) = snap {
        metrics::gauge!("commons_datanets").set(s.datanets as f64);
        metrics::gauge!("commons_contributions").set(s.contributions as f64);
        metrics::gauge!("commons_rows").set(s.rows as f64);
        metrics::gauge!("commons_versions").set(s.versions as f64);
        metrics::gauge!("commons_blob_bytes").set(s.blob_bytes as f64);
        metrics::gauge!("commons_change_seq").set(s.seq as f64);
    }
    // Which tier each adapter sits in: 2 = ready for the kernels, 1 = host memory, 0 = cold.
    if let Some(serving) = node.serving.ready()
        && let Ok(adapters) = node.store.snapshot().and_then(|s| s.adapters())
    {
        use commons_compute::engine::Tier;
        for a in adapters {
            let st = serving.engine.adapter_stats(&a.hash);
            let tier = match st.tier {
                Tier::Device => 2.0,
                Tier::Host => 1.0,
                Tier::Cold => 0.0,
            };
            metrics::gauge!("commons_adapter_tier", "adapter" => a.name.clone()).set(tier);
            metrics::gauge!("commons_adapter_resident_bytes", "adapter" => a.name)
                .set(st.resident_bytes as f64);
        }
    }
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        node.metrics.render(),
    )
}

/// `POST /api/v1/ledger/deposits` (dev only): queue an L1 deposit for the next block.
async fn ledger_deposit(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        from: Option<alloy_primitives::Address>,
        to: Option<alloy_primitives::Address>,
        #[serde(default)]
        mint: alloy_primitives::U256,
        value: Option<alloy_primitives::U256>,
        gas: Option<u64>,
        data: Option<alloy_primitives::Bytes>,
    }
    if !node.config.dev {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the local deposit queue exists in --dev only; deposits come from L1",
        ));
    }
    let b: Body = req.json().await?;
    let from = b.from.or(b.to).ok_or_else(|| {
        ApiError::bad_request("give 'to' (a recipient) or 'from' (for a contract creation)")
    })?;
    let mint = u128::try_from(b.mint)
        .map_err(|_| ApiError::bad_request("'mint' is larger than 2^128 wei"))?;
    let d = commons_ledger::chain::DepositRequest {
        from,
        to: b.to,
        mint,
        value: b.value.unwrap_or(b.mint),
        gas_limit: b.gas.unwrap_or(100_000),
        data: b.data.unwrap_or_default(),
    };
    let ledger = node.ledger.ledger.clone();
    let queued = blocking(move || {
        ledger
            .queue_deposit(&d)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"queued": queued, "from": from}),
    ))
}

/// Run blocking store work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
}
