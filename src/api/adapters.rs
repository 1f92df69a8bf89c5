//! Adapters and API keys under `/api/v1` (reads are public, like datanets; writes need a key
//! or a console session): register (multipart upload of the two PEFT files),
//! list, show, remove, per-adapter stats, warm into / evict from memory; the base model's
//! description and engine figures; API keys for the `/v1` routes.

use std::sync::Arc;

use commons_compute::engine::AdapterFiles;
use commons_storage::serving::{AdapterRecord, ApiKeyRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::openai::{caller, compute_error, serving};
use super::{ApiError, Req, Resp, blocking, json as reply};
use crate::node::Node;

/// Largest adapter upload (rank 256 on every module of a 7B model in bf16 is ~1.3 GB; this
/// node's uploads are bounded lower, larger ones go through `commons adapter add` from disk).
const MAX_ADAPTER_BYTES: u64 = 1 << 30;

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
        && !n.starts_with('/')
}

fn adapter_json(node: &Node, a: &AdapterRecord) -> Value {
    let stats = node
        .serving
        .ready()
        .map(|s| serde_json::to_value(s.engine.adapter_stats(&a.hash)).unwrap_or(Value::Null));
    json!({
        "id": a.id(), "name": a.name, "hash": hex::encode(a.hash), "base_model": a.base_model,
        "rank": a.rank, "targets": a.targets, "size": a.size, "added_by": a.added_by,
        "created_at": a.created_at, "stats": stats,
    })
}

/// Vet and register adapter files (shared by the upload route, vLLM's load route and the CLI).
pub(super) async fn register(
    node: &Arc<Node>,
    files: AdapterFiles,
    name: &str,
    by: &str,
    replace: bool,
) -> Result<AdapterRecord, ApiError> {
    if !valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "adapter name {name:?} must be 1-64 characters of letters, digits and - _ . : /"
        )));
    }
    let s = serving(node)?;
    if name == s.base_id {
        return Err(ApiError::bad_request(
            "an adapter cannot take the base model's name",
        ));
    }
    let n = node.clone();
    let (name, by) = (name.to_string(), by.to_string());
    blocking(move || {
        let rec = s.vet(&files, &name, &by).map_err(compute_error)?;
        Ok(s.register(&n.store, rec, &files, replace)?)
    })
    .await
}

/// `POST /api/v1/adapters`: multipart with `name`, `adapter_config.json` and
/// `adapter_model.safetensors` parts (part names or file names), optional `replace=true`.
pub(super) async fn add(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let who = caller(node, req).await?;
    serving(node)?;
    const SHAPE: &str = "send multipart/form-data with parts 'name', 'adapter_config.json' and 'adapter_model.safetensors'";
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ApiError::bad_request(SHAPE))?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(MAX_ADAPTER_BYTES));
    let mut mp = multer::Multipart::with_constraints(req.take_body(), boundary, constraints);
    let (mut name, mut config, mut weights, mut replace) = (None, None, None, false);
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(super::datanets::multipart_error)?
    {
        let key = field
            .name()
            .map(str::to_string)
            .or_else(|| field.file_name().map(str::to_string))
            .unwrap_or_default();
        let file = field.file_name().map(str::to_string).unwrap_or_default();
        let bytes = field
            .bytes()
            .await
            .map_err(super::datanets::multipart_error)?;
        match (key.as_str(), file.as_str()) {
            ("name", _) => name = Some(String::from_utf8_lossy(&bytes).trim().to_string()),
            ("replace", _) => replace = matches!(&bytes[..], b"true" | b"1"),
            ("adapter_config.json" | "config", _) | (_, "adapter_config.json") => {
                config =
                    Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::bad_request("adapter_config.json is not UTF-8 text")
                    })?)
            }
            ("adapter_model.safetensors" | "weights", _) | (_, "adapter_model.safetensors") => {
                weights = Some(bytes.to_vec())
            }
            (_, f) if f.ends_with(".bin") || f.ends_with(".pt") => {
                return Err(ApiError::bad_request(
                    "only adapter_model.safetensors is accepted (pickled .bin/.pt weights are not loaded)",
                ));
            }
            (k, _) => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part {k:?}: {SHAPE}"
                )));
            }
        }
    }
    let (Some(name), Some(config), Some(weights)) = (name, config, weights) else {
        return Err(ApiError::bad_request(SHAPE));
    };
    let files = AdapterFiles {
        config,
        weights: Arc::new(weights),
    };
    let rec = register(node, files, &name, &who.name, replace).await?;
    metrics::counter!("commons_adapters_added_total").increment(1);
    Ok(reply(StatusCode::CREATED, &adapter_json(node, &rec)))
}

pub(super) async fn list(node: &Arc<Node>, _req: &Req) -> Result<Resp, ApiError> {
    let n = node.clone();
    let all = blocking(move || Ok(n.store.snapshot()?.adapters()?)).await?;
    let items: Vec<Value> = all.iter().map(|a| adapter_json(node, a)).collect();
    Ok(reply(StatusCode::OK, &json!({"adapters": items})))
}

async fn find(node: &Arc<Node>, id: &str) -> Result<AdapterRecord, ApiError> {
    let n = node.clone();
    let id = id.to_string();
    blocking(move || Ok(n.store.snapshot()?.adapter(&id)?)).await
}

pub(super) async fn show(node: &Arc<Node>, id: &str, _req: &Req) -> Result<Resp, ApiError> {
    let a = find(node, id).await?;
    Ok(reply(StatusCode::OK, &adapter_json(node, &a)))
}

pub(super) async fn stats(node: &Arc<Node>, id: &str, _req: &Req) -> Result<Resp, ApiError> {
    let s = serving(node)?;
    let a = find(node, id).await?;
    let st = s.engine.adapter_stats(&a.hash);
    Ok(reply(
        StatusCode::OK,
        &json!({"id": a.id(), "name": a.name, "stats": st}),
    ))
}

pub(super) async fn remove(node: &Arc<Node>, id: &str, req: &Req) -> Result<Resp, ApiError> {
    let who = caller(node, req).await?;
    let a = find(node, id).await?;
    if !who.admin && who.name != a.added_by {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("only {} or an admin may remove this adapter", a.added_by),
        ));
    }
    let n = node.clone();
    let name = a.name.clone();
    let s = serving(node)?;
    let rec = blocking(move || Ok(s.remove(&n.store, &name)?)).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"removed": rec.name, "id": rec.id()}),
    ))
}

/// `POST /api/v1/adapters/{id}/load` (warm into memory) and `/unload` (free its memory; it
/// stays registered and loads again on its next request).
pub(super) async fn residency(
    node: &Arc<Node>,
    id: &str,
    load: bool,
    req: &Req,
) -> Result<Resp, ApiError> {
    caller(node, req).await?;
    let s = serving(node)?;
    let a = find(node, id).await?;
    if load {
        s.engine.prefetch(a.hash);
    } else {
        let engine = s.engine.clone();
        let hash = a.hash;
        blocking(move || {
            engine.evict(hash);
            Ok(())
        })
        .await?;
    }
    Ok(reply(StatusCode::OK, &adapter_json(node, &a)))
}

/// `GET /api/v1/models/base`: the base model and the engine's figures.
pub(super) async fn base(node: &Arc<Node>, _req: &Req) -> Result<Resp, ApiError> {
    let s = serving(node)?;
    let engine = s.engine.clone();
    let stats = tokio::task::spawn_blocking(move || engine.stats())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(compute_error)?;
    let c = &s.engine.model_config;
    Ok(reply(
        StatusCode::OK,
        &json!({
            "id": s.base_id, "dir": s.base_dir.display().to_string(), "arch": c.arch.name(),
            "parameters": s.parameters, "hidden_size": c.hidden_size, "layers": c.num_layers,
            "heads": c.num_heads, "kv_heads": c.num_kv_heads, "vocab_size": c.vocab_size,
            "max_position_embeddings": c.max_position_embeddings, "dtype": c.dtype,
            "chat_template": s.engine.tokenizer.has_chat_template(), "engine": stats,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    admin: bool,
}

/// `POST /api/v1/apikeys {name, admin}`: a new key, shown once.
pub(super) async fn create_key(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    super::console::admin(node, req)?;
    let k: NewKey = req.json().await?;
    if !valid_name(&k.name) {
        return Err(ApiError::bad_request(
            "name must be 1-64 letters, digits or - _ . : /",
        ));
    }
    let secret = format!("ck-{}", hex::encode(rand::random::<[u8; 24]>()));
    let hash = *blake3::hash(secret.as_bytes()).as_bytes();
    let rec = ApiKeyRecord {
        name: k.name,
        prefix: secret[..7].to_string(),
        admin: k.admin,
        created_at: 0,
    };
    let n = node.clone();
    let rec = blocking(move || Ok(n.store.put_api_key(hash, rec)?)).await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"key": secret, "name": rec.name, "admin": rec.admin, "created_at": rec.created_at}),
    ))
}

pub(super) async fn list_keys(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    super::console::admin(node, req)?;
    let n = node.clone();
    let keys = blocking(move || Ok(n.store.snapshot()?.api_keys()?)).await?;
    Ok(reply(StatusCode::OK, &json!({"keys": keys})))
}

pub(super) async fn revoke_key(node: &Arc<Node>, name: &str, req: &Req) -> Result<Resp, ApiError> {
    super::console::admin(node, req)?;
    let n = node.clone();
    let name = name.to_string();
    let gone = blocking(move || Ok(n.store.revoke_api_key(&name)?)).await?;
    Ok(reply(StatusCode::OK, &json!({"revoked": gone})))
}
