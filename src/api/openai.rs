//! The OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`, `/v1/completions`
//! (with SSE streaming), and vLLM's admin routes `/v1/load_lora_adapter` and
//! `/v1/unload_lora_adapter`. `model` is the base model's id, or an adapter's name or id.

use std::sync::Arc;

use commons_compute::engine::{AdapterKey, Event, FinishReason, GenerateRequest};
use commons_compute::sampling::SamplingParams;
use commons_compute::tokenizer::ChatMessage;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Reply;
use warp::http::StatusCode;

use super::{ApiError, Req, Resp, blocking, json as reply};
use crate::node::Node;
use crate::serving::Serving;

/// Who is calling the model routes.
pub(super) struct Caller {
    pub(super) admin: bool,
    pub(super) name: String,
}

/// `Authorization: Bearer KEY` with a key from `commons apikey create`, the admin token, or
/// (in dev mode) `dev`; the console's session header works too.
pub(super) async fn caller(node: &Arc<Node>, req: &Req) -> Result<Caller, ApiError> {
    if let Some(user) = super::console::session_user(node, req) {
        return Ok(Caller {
            admin: false,
            name: user,
        });
    }
    let key = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(ApiError::unauthorized(
            "send an API key: Authorization: Bearer <key from `commons apikey create`>",
        ));
    }
    if super::console::constant_time_eq(key.as_bytes(), node.admin_token.as_bytes()) {
        return Ok(Caller {
            admin: true,
            name: "admin".into(),
        });
    }
    if node.config.dev && key == "dev" {
        return Ok(Caller {
            admin: true,
            name: "dev".into(),
        });
    }
    let hash = *blake3::hash(key.as_bytes()).as_bytes();
    let n = node.clone();
    let rec = blocking(move || Ok(n.store.snapshot()?.api_key(&hash)?)).await?;
    match rec {
        Some(r) => Ok(Caller {
            admin: r.admin,
            name: r.name,
        }),
        None => Err(ApiError::unauthorized("the API key is not valid")),
    }
}

pub(super) fn serving(node: &Node) -> Result<Arc<Serving>, ApiError> {
    use crate::serving::SlotState;
    let unavailable = |code, msg: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, msg);
    match node.serving.state() {
        SlotState::Ready(s) => Ok(s),
        SlotState::Off => Err(unavailable(
            "no_model",
            "this node serves no model: start it with --base-model DIR (or --dev)".into(),
        )),
        SlotState::Loading => Err(unavailable(
            "model_loading",
            "the base model is still loading; try again in a moment".into(),
        )),
        SlotState::Failed(e) => Err(unavailable(
            "model_failed",
            format!("the base model failed to load: {e}"),
        )),
    }
}

pub(super) fn compute_error(e: commons_compute::Error) -> ApiError {
    use commons_compute::Error as E;
    match e {
        E::BadRequest(m) => ApiError::bad_request(m),
        E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "model_not_found", m),
        E::Overloaded(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", m),
        E::EngineStopped => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "engine_stopped",
            "the inference engine has stopped",
        ),
        e @ (E::BadAdapter(_) | E::Unsupported(_)) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_adapter",
            e.to_string(),
        ),
        e => ApiError::internal(e.to_string()),
    }
}

/// The adapter `model` names (None for the base model).
async fn resolve(
    node: &Arc<Node>,
    s: &Serving,
    model: &str,
) -> Result<Option<AdapterKey>, ApiError> {
    if model == s.base_id || model == "base" {
        return Ok(None);
    }
    let n = node.clone();
    let m = model.to_string();
    let rec = blocking(move || Ok(n.store.snapshot()?.adapter(&m)?))
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "model_not_found",
                    format!("the model `{model}` does not exist (GET /v1/models lists them)"),
                )
            } else {
                e
            }
        })?;
    Ok(Some(AdapterKey {
        name: rec.name,
        hash: rec.hash,
    }))
}

pub(super) async fn models(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    caller(node, req).await?;
    let s = serving(node)?;
    let n = node.clone();
    let adapters = blocking(move || Ok(n.store.snapshot()?.adapters()?)).await?;
    let mut data = vec![json!({
        "id": s.base_id, "object": "model", "created": s.created, "owned_by": "commons",
        "root": s.base_dir.display().to_string(), "parent": null,
        "max_model_len": s.engine.model_config.max_position_embeddings,
    })];
    for a in adapters {
        data.push(json!({
            "id": a.name, "object": "model", "created": a.created_at / 1000, "owned_by": a.added_by,
            "root": a.id(), "parent": s.base_id,
        }));
    }
    Ok(reply(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Fields both endpoints take.
#[derive(Debug, Deserialize)]
struct Common {
    model: String,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    presence_penalty: Option<f32>,
    #[serde(default)]
    frequency_penalty: Option<f32>,
    #[serde(default)]
    ignore_eos: bool,
}

#[derive(Debug, Deserialize)]
struct ChatBody {
    #[serde(flatten)]
    common: Common,
    messages: Vec<InMessage>,
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
}

#[derive(Debug, Deserialize)]
struct CompletionBody {
    #[serde(flatten)]
    common: Common,
    prompt: Prompt,
    #[serde(default)]
    logprobs: Option<usize>,
    #[serde(default)]
    echo: bool,
    #[serde(default)]
    suffix: Option<String>,
}

fn sampling(c: &Common, top_logprobs: Option<usize>) -> Result<SamplingParams, ApiError> {
    let temperature = c.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_request("temperature must be between 0 and 2"));
    }
    let top_p = c.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_request("top_p must be in (0, 1]"));
    }
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only n = 1 is supported"));
    }
    if c.presence_penalty.is_some_and(|p| p != 0.0) || c.frequency_penalty.is_some_and(|p| p != 0.0)
    {
        return Err(ApiError::bad_request(
            "presence_penalty and frequency_penalty are not supported (leave them at 0)",
        ));
    }
    if top_logprobs.is_some_and(|k| k > 20) {
        return Err(ApiError::bad_request(
            "top_logprobs must be between 0 and 20",
        ));
    }
    Ok(SamplingParams {
        temperature,
        top_p,
        top_k: c.top_k.filter(|k| *k > 0).map(|k| k as usize).unwrap_or(0),
        seed: c.seed,
        top_logprobs,
    })
}

fn stops(c: &Common) -> Result<Vec<String>, ApiError> {
    let v = match &c.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if v.len() > 4 || v.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(
            "stop takes up to 4 non-empty strings",
        ));
    }
    Ok(v)
}

fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn max_tokens(c: &Common, s: &Serving, prompt: usize, default_cap: usize) -> usize {
    c.max_completion_tokens.or(c.max_tokens).unwrap_or_else(|| {
        let room = s
            .engine
            .model_config
            .max_position_embeddings
            .saturating_sub(prompt);
        room.min(s.engine.config().max_new_tokens)
            .min(default_cap)
            .max(1)
    })
}

fn finish(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

struct Job {
    id: String,
    model: String,
    created: u64,
    chat: bool,
    logprobs: bool,
    include_usage: bool,
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    engine: Arc<commons_compute::tokenizer::Tokenizer>,
}

pub(super) async fn chat(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    caller(node, req).await?;
    let s = serving(node)?;
    let body: ChatBody = parse_body(&req.body(4 << 20).await?)?;
    if body.messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let mut msgs = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.iter().enumerate() {
        if !matches!(
            m.role.as_str(),
            "system" | "user" | "assistant" | "tool" | "developer"
        ) {
            return Err(ApiError::bad_request(format!(
                "messages[{i}].role must be system, user, assistant or tool, not {:?}",
                m.role
            )));
        }
        let content = match &m.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut t = String::new();
                for p in parts {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(x)) => t.push_str(x),
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "messages[{i}]: only text content parts are supported"
                            )));
                        }
                    }
                }
                t
            }
        };
        let role = if m.role == "developer" {
            "system".into()
        } else {
            m.role.clone()
        };
        msgs.push(ChatMessage { role, content });
    }
    let adapter = resolve(node, &s, &body.common.model).await?;
    let tok = s.engine.tokenizer.clone();
    let text = tok.render_chat(&msgs).map_err(compute_error)?;
    let prompt = tok.encode(&text, false).map_err(compute_error)?;
    let top = if body.logprobs {
        Some(body.top_logprobs.unwrap_or(0))
    } else {
        None
    };
    let params = sampling(&body.common, top)?;
    let request = GenerateRequest {
        adapter,
        max_tokens: max_tokens(&body.common, &s, prompt.len(), usize::MAX),
        prompt,
        sampling: params,
        stop: stops(&body.common)?,
        ignore_eos: body.common.ignore_eos,
    };
    let rx = s.engine.submit(request).map_err(compute_error)?;
    let job = Job {
        id: format!("chatcmpl-{}", hex::encode(rand::random::<[u8; 12]>())),
        model: body.common.model.clone(),
        created: commons_storage::now_ms() / 1000,
        chat: true,
        logprobs: body.logprobs,
        include_usage: body
            .common
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage),
        rx,
        engine: tok,
    };
    if body.common.stream {
        Ok(stream(job))
    } else {
        whole(job).await
    }
}

pub(super) async fn completions(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    caller(node, req).await?;
    let s = serving(node)?;
    let body: CompletionBody = parse_body(&req.body(4 << 20).await?)?;
    if body.echo {
        return Err(ApiError::bad_request("echo is not supported"));
    }
    if body.suffix.is_some() {
        return Err(ApiError::bad_request("suffix is not supported"));
    }
    let adapter = resolve(node, &s, &body.common.model).await?;
    let tok = s.engine.tokenizer.clone();
    let prompt = match &body.prompt {
        Prompt::One(p) => tok.encode(p, true).map_err(compute_error)?,
        Prompt::Many(v) if v.len() == 1 => tok.encode(&v[0], true).map_err(compute_error)?,
        Prompt::Many(_) => return Err(ApiError::bad_request("send one prompt per request")),
        Prompt::Tokens(t) => t.clone(),
    };
    let params = sampling(&body.common, body.logprobs)?;
    let request = GenerateRequest {
        adapter,
        max_tokens: max_tokens(&body.common, &s, prompt.len(), 16),
        prompt,
        sampling: params,
        stop: stops(&body.common)?,
        ignore_eos: body.common.ignore_eos,
    };
    let rx = s.engine.submit(request).map_err(compute_error)?;
    let job = Job {
        id: format!("cmpl-{}", hex::encode(rand::random::<[u8; 12]>())),
        model: body.common.model.clone(),
        created: commons_storage::now_ms() / 1000,
        chat: false,
        logprobs: body.logprobs.is_some(),
        include_usage: body
            .common
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage),
        rx,
        engine: tok,
    };
    if body.common.stream {
        Ok(stream(job))
    } else {
        whole(job).await
    }
}

fn lp_entry(
    tok: &commons_compute::tokenizer::Tokenizer,
    id: u32,
    lp: f32,
    top: &[(u32, f32)],
) -> Value {
    let t = tok.token_string(id);
    json!({
        "token": t, "logprob": lp, "bytes": t.as_bytes(),
        "top_logprobs": top.iter().map(|(i, l)| {
            let s = tok.token_string(*i);
            json!({"token": s, "logprob": l, "bytes": s.as_bytes()})
        }).collect::<Vec<_>>(),
    })
}

/// Collect the whole answer.
async fn whole(mut job: Job) -> Result<Resp, ApiError> {
    let mut text = String::new();
    let mut lps = Vec::new();
    loop {
        match job.rx.recv().await {
            Some(Event::Token {
                id,
                text: t,
                logprob,
                top,
            }) => {
                text.push_str(&t);
                if job.logprobs {
                    lps.push(lp_entry(&job.engine, id, logprob, &top));
                }
            }
            Some(Event::Done {
                reason,
                prompt_tokens,
                completion_tokens,
            }) => {
                let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens});
                let body = if job.chat {
                    json!({"id": job.id, "object": "chat.completion", "created": job.created, "model": job.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                            "logprobs": if job.logprobs { json!({"content": lps}) } else { Value::Null },
                            "finish_reason": finish(reason)}],
                        "usage": usage})
                } else {
                    json!({"id": job.id, "object": "text_completion", "created": job.created, "model": job.model,
                        "choices": [{"index": 0, "text": text,
                            "logprobs": if job.logprobs { legacy_logprobs(&lps) } else { Value::Null },
                            "finish_reason": finish(reason)}],
                        "usage": usage})
                };
                return Ok(reply(StatusCode::OK, &body));
            }
            Some(Event::Error(e)) => return Err(ApiError::internal(e)),
            None => return Err(ApiError::internal("the engine dropped the request")),
        }
    }
}

/// The completions endpoint's older logprobs shape.
fn legacy_logprobs(entries: &[Value]) -> Value {
    let tokens: Vec<&Value> = entries.iter().map(|e| &e["token"]).collect();
    let lps: Vec<&Value> = entries.iter().map(|e| &e["logprob"]).collect();
    let tops: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut m = serde_json::Map::new();
            if let Some(a) = e["top_logprobs"].as_array() {
                for t in a {
                    m.insert(
                        t["token"].as_str().unwrap_or_default().to_string(),
                        t["logprob"].clone(),
                    );
                }
            }
            Value::Object(m)
        })
        .collect();
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": []})
}

/// Server-sent events, one chunk per token, ending with `data: [DONE]`.
fn stream(job: Job) -> Resp {
    let state = (job, 0u8);
    let s = futures_util::stream::unfold(state, |(mut job, phase)| async move {
        // phase 0: role chunk (chat) not yet sent; 1: streaming; 2: done.
        if phase == 2 {
            return None;
        }
        let chunk = |job: &Job, delta: Value, lp: Value, fin: Value| -> String {
            let choice = if job.chat {
                json!({"index": 0, "delta": delta, "logprobs": lp, "finish_reason": fin})
            } else {
                json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")), "logprobs": lp, "finish_reason": fin})
            };
            let obj = if job.chat {
                "chat.completion.chunk"
            } else {
                "text_completion"
            };
            let v = json!({"id": job.id, "object": obj, "created": job.created, "model": job.model, "choices": [choice]});
            format!("data: {v}\n\n")
        };
        if phase == 0 && job.chat {
            let c = chunk(
                &job,
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                Value::Null,
            );
            return Some((Ok::<_, std::convert::Infallible>(c), (job, 1)));
        }
        match job.rx.recv().await {
            Some(Event::Token {
                id,
                text,
                logprob,
                top,
            }) => {
                let lp = if job.logprobs {
                    let e = lp_entry(&job.engine, id, logprob, &top);
                    if job.chat {
                        json!({"content": [e]})
                    } else {
                        legacy_logprobs(&[e])
                    }
                } else {
                    Value::Null
                };
                let c = chunk(&job, json!({"content": text}), lp, Value::Null);
                Some((Ok(c), (job, 1)))
            }
            Some(Event::Done {
                reason,
                prompt_tokens,
                completion_tokens,
            }) => {
                let mut out = chunk(&job, json!({}), Value::Null, json!(finish(reason)));
                if job.include_usage {
                    let obj = if job.chat {
                        "chat.completion.chunk"
                    } else {
                        "text_completion"
                    };
                    let v = json!({"id": job.id, "object": obj, "created": job.created, "model": job.model, "choices": [],
                        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens}});
                    out.push_str(&format!("data: {v}\n\n"));
                }
                out.push_str("data: [DONE]\n\n");
                Some((Ok(out), (job, 2)))
            }
            Some(Event::Error(e)) => {
                let v = json!({"error": {"code": "internal", "message": e}});
                Some((Ok(format!("data: {v}\n\ndata: [DONE]\n\n")), (job, 2)))
            }
            None => None,
        }
    });
    let mut r = warp::reply::stream(s.map(|r| r.map(bytes::Bytes::from))).into_response();
    r.headers_mut().insert(
        "content-type",
        warp::http::HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut().insert(
        "cache-control",
        warp::http::HeaderValue::from_static("no-cache"),
    );
    r
}

#[derive(Debug, Deserialize)]
struct LoadBody {
    lora_name: String,
    #[serde(default)]
    lora_path: Option<String>,
}

/// vLLM's `POST /v1/load_lora_adapter {lora_name, lora_path}`: register the PEFT directory at
/// `lora_path` (on this machine) under `lora_name` and warm it into memory; without a path,
/// warm an adapter already registered.
pub(super) async fn load_lora(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let c = caller(node, req).await?;
    if !c.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "loading adapters needs an admin key",
        ));
    }
    let s = serving(node)?;
    let body: LoadBody = parse_body(&req.body(1 << 20).await?)?;
    let rec = match &body.lora_path {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            let files =
                tokio::task::spawn_blocking(move || crate::serving::read_adapter_dir(&path))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
            super::adapters::register(node, files, &body.lora_name, &c.name, false).await?
        }
        None => {
            let n = node.clone();
            let name = body.lora_name.clone();
            blocking(move || Ok(n.store.snapshot()?.adapter(&name)?)).await?
        }
    };
    s.engine.prefetch(rec.hash);
    Ok(reply(
        StatusCode::OK,
        &json!({"status": "loaded", "lora_name": rec.name, "id": rec.id()}),
    ))
}

/// vLLM's `POST /v1/unload_lora_adapter {lora_name}`: stop serving the adapter and free its
/// memory (its files stay in the blob store).
pub(super) async fn unload_lora(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let c = caller(node, req).await?;
    if !c.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "unloading adapters needs an admin key",
        ));
    }
    let s = serving(node)?;
    let body: LoadBody = parse_body(&req.body(1 << 20).await?)?;
    let n = node.clone();
    let name = body.lora_name.clone();
    let s2 = s.clone();
    let rec = blocking(move || Ok(s2.remove(&n.store, &name)?)).await?;
    let _ = s;
    Ok(reply(
        StatusCode::OK,
        &json!({"status": "unloaded", "lora_name": rec.name}),
    ))
}
