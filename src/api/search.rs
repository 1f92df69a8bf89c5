//! `GET /api/v1/search`: full-text search over rows (BM25, snippets with `<mark>`).
//!
//! Only accepted rows of the requested (default: latest) versions, unless the caller asks for
//! `include_pending=true` with a console session or the admin token: then pending rows of the
//! datanets that session's address may review (the admin: of every datanet) are included.

use std::collections::HashMap;
use std::sync::Arc;

use commons_query::search::{Hit, SearchQuery};
use serde::Serialize;
use warp::http::StatusCode;

use super::types::{addr, parse_addr};
use super::{ApiError, Req, Resp, blocking};
use crate::node::Node;

const DEFAULT_LIMIT: usize = 10;

#[derive(Debug, Serialize)]
struct HitJson {
    row: u64,
    datanet: String,
    contribution: u64,
    contributor: String,
    score: f32,
    snippet: String,
    added_in: Option<u64>,
    removed_in: Option<u64>,
    pending: bool,
}

#[derive(Debug, Serialize)]
struct PageJson {
    items: Vec<HitJson>,
    next_cursor: Option<String>,
    total: usize,
    indexed_seq: u64,
}

/// A search error as the API answers it: a bad query is 400 `invalid_query`.
fn query_err(e: commons_query::Error) -> ApiError {
    use commons_query::Error as E;
    match e {
        E::InvalidSearch(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m),
        E::Storage(s) => s.into(),
        other => {
            tracing::error!(error = %other, "search failure");
            ApiError::internal(other.to_string())
        }
    }
}

/// Who the caller is for `include_pending`: `None` = the admin (every datanet).
fn reviewer(node: &Node, req: &Req) -> Result<Option<[u8; 20]>, ApiError> {
    if let Some(given) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        let ok = given.len() == node.admin_token.len()
            && given
                .bytes()
                .zip(node.admin_token.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        if ok {
            return Ok(None);
        }
        return Err(ApiError::unauthorized("wrong admin token"));
    }
    let token = req
        .header("x-commons-session")
        .and_then(|t| hex::decode(t).ok())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "include_pending needs a console session (X-Commons-Session) or the admin token",
            )
        })?;
    let snap = node.store.snapshot()?;
    let s = snap
        .session(blake3::hash(&token).as_bytes(), commons_storage::now_ms())?
        .ok_or_else(|| {
            ApiError::unauthorized("the session expired or does not exist; sign in again")
        })?;
    Ok(Some(snap.user(&s.username)?.address))
}

pub(super) async fn search(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let text = req
        .q("q")
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "the query parameter 'q' is missing",
            )
        })?
        .to_string();
    let limit = req.q_parse::<usize>("limit")?.unwrap_or(DEFAULT_LIMIT);
    let version = req.q_parse::<u64>("version")?;
    let contributor = req
        .q("contributor")
        .filter(|s| !s.is_empty())
        .map(parse_addr)
        .transpose()?;
    let tag = req.q("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let cursor = req
        .q("cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let slug = req
        .q("datanet")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let include_pending = match req.q("include_pending") {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "include_pending must be true or false, not '{v}'"
            )));
        }
    };
    let who = if include_pending {
        Some(reviewer(node, req)?)
    } else {
        None
    };
    let n = node.clone();
    let (page, slugs, seq) = blocking(move || {
        let snap = n.store.snapshot()?;
        let datanet = match &slug {
            Some(s) => Some(snap.datanet(s)?.id),
            None => None,
        };
        let pending_for = match who {
            None => vec![],
            Some(who) => snap
                .datanets(0, usize::MAX, |d| match &who {
                    None => true,
                    Some(a) => d.may_review(a),
                })?
                .into_iter()
                .map(|d| d.id)
                .collect(),
        };
        drop(snap);
        let q = SearchQuery {
            text,
            datanet,
            version,
            contributor,
            tag,
            pending_for,
            limit,
            cursor,
        };
        let page = n.search.search(&q).map_err(query_err)?;
        let snap = n.store.snapshot()?;
        let mut slugs: HashMap<u64, String> = HashMap::new();
        for h in &page.hits {
            if let std::collections::hash_map::Entry::Vacant(e) = slugs.entry(h.datanet) {
                e.insert(snap.datanet_by_id(h.datanet)?.slug);
            }
        }
        Ok((page, slugs, n.search.indexed_seq()))
    })
    .await?;
    let item = |h: Hit| HitJson {
        row: h.row_id,
        datanet: slugs.get(&h.datanet).cloned().unwrap_or_default(),
        contribution: h.contribution,
        contributor: addr(&h.contributor),
        score: h.score,
        snippet: h.snippet,
        added_in: h.added_in,
        removed_in: h.removed_in,
        pending: h.pending,
    };
    Ok(super::json(
        StatusCode::OK,
        &PageJson {
            items: page.hits.into_iter().map(item).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
            indexed_seq: seq,
        },
    ))
}
