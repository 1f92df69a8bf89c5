//! Datanet routes: create, edit, contribute, review, take down, and every read.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolStruct;
use commons_storage::model::{self, DataKind, SignedBy, Status};
use commons_storage::parse::{self, Format};
use commons_storage::{
    ContributionFilter, EditRequest, NewContribution, NewDatanet, ReviewRequest, RolesRequest,
    TakeDownRequest,
};
use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;

use super::types::*;
use super::{ApiError, Req, Resp, blocking, respond};
use crate::auth::{self, Auth};
use crate::node::Node;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn now_s() -> u64 {
    commons_storage::now_ms() / 1000
}

fn check<T: SolStruct>(node: &Node, msg: &T, a: &Auth) -> Result<SignedBy, ApiError> {
    Ok(auth::verify(msg, &node.domain, a, now_s())?)
}

fn limit(req: &Req) -> Result<usize, ApiError> {
    let l = req.q_parse::<usize>("limit")?.unwrap_or(DEFAULT_LIMIT);
    if l == 0 || l > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(l)
}

fn cursor(req: &Req) -> Result<u64, ApiError> {
    Ok(req.q_parse::<u64>("cursor")?.unwrap_or(0))
}

fn id(s: &str, what: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} '{s}' is not a number")))
}

fn ok<T: serde::Serialize>(v: &T) -> Result<Resp, ApiError> {
    Ok(super::json(StatusCode::OK, v))
}

fn b256_blake3(s: &str) -> B256 {
    B256::from(*blake3::hash(s.as_bytes()).as_bytes())
}

pub(super) async fn node_info(node: &Arc<Node>) -> Result<Resp, ApiError> {
    let n = node.clone();
    let (stats, schema) = blocking(move || {
        let s = n.store.snapshot()?;
        Ok((s.stats()?, s.schema_version()?))
    })
    .await?;
    let c = &node.config;
    let l = &c.limits;
    ok(&json!({
        "name": "commons",
        "version": env!("CARGO_PKG_VERSION"),
        "peer_id": node.peer_id(),
        "public_key": hex::encode(node.identity.public().encode_protobuf()),
        "chain_id": c.chain_id,
        "eip712_domain": {"name": "Commons", "version": "1", "chainId": c.chain_id},
        "dev": c.dev,
        "data_dir": c.data_dir.display().to_string(),
        "http": node.http_addr.to_string(),
        "schema_version": schema,
        "limits": {
            "max_upload_bytes": l.max_upload_bytes,
            "daily_bytes_per_contributor": l.daily_bytes_per_contributor,
            "daily_files_per_contributor": l.daily_files_per_contributor,
            "daily_bytes_per_datanet": l.daily_bytes_per_datanet,
        },
        "stats": {
            "datanets": stats.datanets,
            "contributions": stats.contributions,
            "rows": stats.rows,
            "versions": stats.versions,
            "blobs": stats.blobs,
            "blob_bytes": stats.blob_bytes,
            "seq": stats.seq,
        },
    }))
}

pub(super) async fn list(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let owner = req.q("owner").map(parse_addr).transpose()?;
    let tag = req.q("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let (after, lim) = (cursor(req)?, limit(req)?);
    let n = node.clone();
    let items = blocking(move || {
        Ok(n.store.snapshot()?.datanets(after, lim + 1, |d| {
            owner.is_none_or(|o| o == d.owner) && tag.as_ref().is_none_or(|t| d.tags.contains(t))
        })?)
    })
    .await?;
    let more = items.len() > lim;
    let items: Vec<_> = items.iter().take(lim).collect();
    ok(&Page {
        next_cursor: more
            .then(|| items.last().map(|d| d.id.to_string()))
            .flatten(),
        items: items.into_iter().map(DatanetJson::from).collect(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    slug: String,
    name: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default)]
    private: bool,
    auth: AuthJson,
}

fn default_kind() -> String {
    "text".into()
}

fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if t.len() > 64 {
            return Err(ApiError::bad_request(format!(
                "tag '{t}' is longer than 64 characters"
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 32 {
        return Err(ApiError::bad_request("at most 32 tags"));
    }
    Ok(out)
}

pub(super) async fn create(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let b: CreateBody = req.json().await?;
    let a = b.auth.parse()?;
    let kind = DataKind::parse(&b.kind).ok_or_else(|| {
        ApiError::bad_request(format!("kind '{}' is not text, image or audio", b.kind))
    })?;
    if b.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    // The signature covers the tags as sent; they are normalised after the check.
    let msg = auth::CreateDatanet {
        slug: b.slug.clone(),
        name: b.name.clone(),
        summary: b.summary.clone(),
        descriptionHash: b256_blake3(&b.description),
        tags: b.tags.clone(),
        kind: b.kind.clone(),
        isPrivate: b.private,
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, &a)?;
    let tags = clean_tags(b.tags)?;
    let n = node.clone();
    let d = blocking(move || {
        Ok(n.store.create_datanet(NewDatanet {
            slug: b.slug,
            name: b.name.trim().to_string(),
            summary: b.summary,
            description: b.description,
            tags,
            kind,
            private: b.private,
            signed,
        })?)
    })
    .await?;
    metrics::counter!("commons_datanets_created_total").increment(1);
    Ok(super::json(StatusCode::CREATED, &DatanetJson::from(&d)))
}

pub(super) async fn show(node: &Arc<Node>, slug: &str) -> Result<Resp, ApiError> {
    let (n, slug) = (node.clone(), slug.to_string());
    let (d, reg) = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&slug)?;
        let reg = s.anchor(d.id, 0)?;
        Ok((d, reg))
    })
    .await?;
    let ledger = AnchorJson::new(reg.as_ref(), node.publisher.is_some());
    ok(&DatanetJson::from(&d).with_ledger(ledger))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    summary: String,
    description: String,
    tags: Vec<String>,
    auth: AuthJson,
}

pub(super) async fn edit(node: &Arc<Node>, slug: &str, req: &mut Req) -> Result<Resp, ApiError> {
    let b: EditBody = req.json().await?;
    let a = b.auth.parse()?;
    let msg = auth::EditDatanet {
        datanet: slug.to_string(),
        summary: b.summary.clone(),
        descriptionHash: b256_blake3(&b.description),
        tags: b.tags.clone(),
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, &a)?;
    let tags = clean_tags(b.tags)?;
    let (n, slug) = (node.clone(), slug.to_string());
    let d = blocking(move || {
        Ok(n.store.edit_datanet(EditRequest {
            datanet: slug,
            metadata: model::Metadata {
                summary: b.summary,
                description: b.description,
                tags,
            },
            signed,
        })?)
    })
    .await?;
    ok(&DatanetJson::from(&d))
}

pub(super) async fn edits(node: &Arc<Node>, slug: &str) -> Result<Resp, ApiError> {
    let (n, slug) = (node.clone(), slug.to_string());
    let edits = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&slug)?;
        Ok(s.edits(d.id)?)
    })
    .await?;
    let meta = |m: &model::Metadata| json!({"summary": m.summary, "description": m.description, "tags": m.tags});
    let items: Vec<_> = edits
        .iter()
        .map(|e| json!({"number": e.number, "at": e.at, "by": addr(&e.by), "before": meta(&e.before), "after": meta(&e.after)}))
        .collect();
    ok(&json!({ "items": items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    #[serde(default)]
    reviewers: Vec<String>,
    #[serde(default)]
    contributors: Vec<String>,
    auth: AuthJson,
}

pub(super) async fn roles(node: &Arc<Node>, slug: &str, req: &mut Req) -> Result<Resp, ApiError> {
    let b: RolesBody = req.json().await?;
    let a = b.auth.parse()?;
    let reviewers = b
        .reviewers
        .iter()
        .map(|s| parse_addr(s))
        .collect::<Result<Vec<_>, _>>()?;
    let contributors = b
        .contributors
        .iter()
        .map(|s| parse_addr(s))
        .collect::<Result<Vec<_>, _>>()?;
    let msg = auth::SetRoles {
        datanet: slug.to_string(),
        reviewers: reviewers.iter().map(|a| Address::from(*a)).collect(),
        contributors: contributors.iter().map(|a| Address::from(*a)).collect(),
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, &a)?;
    let (n, slug) = (node.clone(), slug.to_string());
    let d = blocking(move || {
        Ok(n.store.set_roles(RolesRequest {
            datanet: slug,
            reviewers,
            contributors,
            signed,
        })?)
    })
    .await?;
    ok(&DatanetJson::from(&d))
}

pub(super) async fn versions(node: &Arc<Node>, slug: &str) -> Result<Resp, ApiError> {
    let (n, s2) = (node.clone(), slug.to_string());
    let (vs, anchors) = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&s2)?;
        let anchors: std::collections::HashMap<u64, _> = s.anchors(d.id)?.into_iter().collect();
        Ok((s.versions(d.id)?, anchors))
    })
    .await?;
    let publishing = node.publisher.is_some();
    let items: Vec<_> = vs
        .iter()
        .map(|v| VersionJson::new(slug, v, AnchorJson::new(anchors.get(&v.number), publishing)))
        .collect();
    ok(&json!({ "items": items }))
}

pub(super) async fn version(node: &Arc<Node>, slug: &str, number: &str) -> Result<Resp, ApiError> {
    let number = id(number, "version")?;
    let (n, s2) = (node.clone(), slug.to_string());
    let (v, anchor) = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&s2)?;
        Ok((s.version(d.id, number)?, s.anchor(d.id, number)?))
    })
    .await?;
    let ledger = AnchorJson::new(anchor.as_ref(), node.publisher.is_some());
    ok(&VersionJson::new(slug, &v, ledger))
}

/// Rows with their contributors, looked up once per contribution.
fn rows_json(
    s: &commons_storage::Snapshot,
    slug: &str,
    rows: &[(model::Row, Option<model::Membership>)],
) -> Result<Vec<RowJson>, ApiError> {
    let mut cache: Option<(u64, model::Address)> = None;
    let mut out = Vec::with_capacity(rows.len());
    for (r, m) in rows {
        let who = match cache {
            Some((c, a)) if c == r.contribution => a,
            _ => {
                let a = s.contribution(r.contribution)?.contributor;
                cache = Some((r.contribution, a));
                a
            }
        };
        out.push(RowJson::new(slug, &who, r, *m));
    }
    Ok(out)
}

pub(super) async fn rows(node: &Arc<Node>, slug: &str, req: &Req) -> Result<Resp, ApiError> {
    let version = req.q_parse::<u64>("version")?;
    let (after, lim) = (cursor(req)?, limit(req)?);
    let (n, slug) = (node.clone(), slug.to_string());
    let page = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&slug)?;
        let v = version.unwrap_or(d.latest_version);
        if v == 0 || v > d.latest_version {
            return Err(ApiError::not_found(format!(
                "datanet '{slug}' has no version {v} (latest is {})",
                d.latest_version
            )));
        }
        let (rows, next) = s.version_rows(d.id, v, after, lim)?;
        let rows: Vec<_> = rows.into_iter().map(|(r, m)| (r, Some(m))).collect();
        Ok(Page {
            items: rows_json(&s, &slug, &rows)?,
            next_cursor: next.map(|c| c.to_string()),
        })
    })
    .await?;
    ok(&page)
}

pub(super) async fn diff(node: &Arc<Node>, slug: &str, req: &Req) -> Result<Resp, ApiError> {
    let from = req
        .q_parse::<u64>("from")?
        .ok_or_else(|| ApiError::bad_request("give ?from=A&to=B"))?;
    let to = req
        .q_parse::<u64>("to")?
        .ok_or_else(|| ApiError::bad_request("give ?from=A&to=B"))?;
    let (after, counts) = diff_cursor(req)?;
    let lim = limit(req)?;
    let (n, slug) = (node.clone(), slug.to_string());
    let body = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&slug)?;
        for v in [from, to] {
            if v > d.latest_version {
                return Err(ApiError::not_found(format!(
                    "datanet '{slug}' has no version {v} (latest is {})",
                    d.latest_version
                )));
            }
        }
        let diff = s.diff_page(d.id, from, to, after, lim, counts)?;
        let conv = |v: Vec<(model::Row, model::Membership)>| {
            let v: Vec<_> = v.into_iter().map(|(r, m)| (r, Some(m))).collect();
            rows_json(&s, &slug, &v)
        };
        Ok(json!({
            "from": from,
            "to": to,
            "added_count": diff.added_count,
            "removed_count": diff.removed_count,
            "added": conv(diff.added)?,
            "removed": conv(diff.removed)?,
            "next_cursor": diff
                .next_cursor
                .map(|c| format!("{c}.{}.{}", diff.added_count, diff.removed_count)),
        }))
    })
    .await?;
    ok(&body)
}

/// A diff cursor: the row id to continue after and, from the page that made it, the counts
/// (`ID.ADDED.REMOVED`), so that later pages need not count again. A bare id works too.
fn diff_cursor(req: &Req) -> Result<(u64, Option<(u64, u64)>), ApiError> {
    let Some(c) = req.q("cursor").filter(|c| !c.is_empty()) else {
        return Ok((0, None));
    };
    let bad = || {
        ApiError::bad_request(format!(
            "query parameter 'cursor' has an invalid value '{c}'"
        ))
    };
    let parts = c
        .split('.')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    match parts.as_slice() {
        [after] => Ok((*after, None)),
        [after, added, removed] => Ok((*after, Some((*added, *removed)))),
        _ => Err(bad()),
    }
}

/// The `X-Commons-*` signature headers of an upload.
fn header_auth(req: &Req) -> Result<Auth, ApiError> {
    let get = |name: &str| {
        req.header(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("the upload is not signed: header {name} is missing"),
            )
        })
    };
    let signer = parse_addr(get("x-commons-signer")?)?;
    let nonce = parse_u256(get("x-commons-nonce")?, "X-Commons-Nonce")?;
    let deadline = get("x-commons-deadline")?
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request("X-Commons-Deadline must be unix seconds"))?;
    Ok(Auth {
        signer: Address::from(signer),
        nonce,
        deadline,
        signature: parse_signature(get("x-commons-signature")?)?,
    })
}

/// Check a file name from a client: a plain name the format can be told from.
fn upload_name(file_name: &str) -> Result<Format, ApiError> {
    if file_name.is_empty()
        || file_name.len() > 255
        || file_name.contains('/')
        || file_name.contains('\\')
    {
        return Err(ApiError::bad_request(
            "the file name must be a plain name of at most 255 bytes",
        ));
    }
    Ok(Format::from_file_name(file_name)?)
}

/// Everything about one uploaded file that is CPU work: its hash, the contributor's
/// signature over it, and its rows. Runs on a blocking thread.
fn prepare_upload(
    node: &Node,
    slug: &str,
    file_name: String,
    bytes: Vec<u8>,
    a: &Auth,
) -> Result<NewContribution, ApiError> {
    let format = upload_name(&file_name)?;
    if bytes.is_empty() {
        return Err(parse::ParseError::Empty.into());
    }
    let file_hash = *blake3::hash(&bytes).as_bytes();
    let msg = auth::Contribute {
        datanet: slug.to_string(),
        fileHash: B256::from(file_hash),
        fileName: file_name.clone(),
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, a)?;
    let rows = parse::parse(format, &bytes)?;
    Ok(NewContribution {
        datanet: slug.to_string(),
        file_name,
        bytes,
        file_hash,
        format,
        rows,
        signed,
    })
}

pub(super) async fn contribute(
    node: &Arc<Node>,
    slug: &str,
    req: &mut Req,
) -> Result<Resp, ApiError> {
    let file_name = req
        .q("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the file name as ?name=FILE"))?
        .to_string();
    upload_name(&file_name)?;
    let a = header_auth(req)?;
    // Unknown datanets are answered before the body is read.
    let (n, s2) = (node.clone(), slug.to_string());
    blocking(move || Ok(n.store.snapshot()?.datanet(&s2).map(|_| ())?)).await?;
    let bytes = req.body(node.config.limits.max_upload_bytes).await?;
    let (n, slug) = (node.clone(), slug.to_string());
    let c = blocking(move || {
        let c = prepare_upload(&n, &slug, file_name, bytes, &a)?;
        Ok(n.store.contribute(c).map(|c| (slug, c))?)
    })
    .await?;
    metrics::counter!("commons_contributions_total").increment(1);
    metrics::counter!("commons_rows_ingested_total").increment(c.1.row_count);
    Ok(super::json(
        StatusCode::CREATED,
        &ContributionJson::new(&c.0, &c.1),
    ))
}

/// Most files in one batch upload.
pub(crate) const MAX_BATCH_FILES: usize = 1000;
/// Largest batch upload body.
pub(crate) const MAX_BATCH_BYTES: u64 = 256 << 20;

/// The first part of a batch upload: one signed entry per file part that follows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchManifest {
    files: Vec<BatchEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEntry {
    name: String,
    signer: String,
    nonce: String,
    deadline: u64,
    signature: String,
}

impl BatchEntry {
    fn auth(&self) -> Result<Auth, ApiError> {
        Ok(Auth {
            signer: Address::from(parse_addr(&self.signer)?),
            nonce: parse_u256(&self.nonce, "nonce")?,
            deadline: self.deadline,
            signature: parse_signature(&self.signature)?,
        })
    }
}

pub(super) fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a part of the upload is over the limit of {limit} bytes"),
        ),
        multer::Error::StreamSizeExceeded { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the upload is over the limit of {limit} bytes"),
        ),
        e => ApiError::bad_request(format!("malformed multipart body: {e}")),
    }
}

/// Many files in one request (`multipart/form-data`: a `manifest` part, then one `file` part
/// per manifest entry, in order), stored in one group commit. Each file is signed, checked
/// and stored on its own; the answer says, per file, what became of it.
pub(super) async fn contribute_batch(
    node: &Arc<Node>,
    slug: &str,
    req: &mut Req,
) -> Result<Resp, ApiError> {
    const SHAPE: &str = "send multipart/form-data: a 'manifest' part with \
        {\"files\":[{name,signer,nonce,deadline,signature}]}, then one 'file' part per entry";
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ApiError::bad_request(SHAPE))?;
    let (n, s2) = (node.clone(), slug.to_string());
    blocking(move || Ok(n.store.snapshot()?.datanet(&s2).map(|_| ())?)).await?;
    let per_file = node.config.limits.max_upload_bytes;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_BATCH_BYTES.max(per_file))
            .per_field(per_file.max(1 << 20)),
    );
    let mut mp = multer::Multipart::with_constraints(req.take_body(), boundary, constraints);
    let first = mp
        .next_field()
        .await
        .map_err(multipart_error)?
        .ok_or_else(|| ApiError::bad_request(SHAPE))?;
    if first.name() != Some("manifest") {
        return Err(ApiError::bad_request(SHAPE));
    }
    let manifest: BatchManifest =
        serde_json::from_slice(&first.bytes().await.map_err(multipart_error)?)
            .map_err(|e| ApiError::bad_request(format!("invalid manifest: {e}")))?;
    let count = manifest.files.len();
    if count == 0 || count > MAX_BATCH_FILES {
        return Err(ApiError::bad_request(format!(
            "a batch holds 1 to {MAX_BATCH_FILES} files; the manifest lists {count}"
        )));
    }
    let mut files = Vec::with_capacity(count);
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let i = files.len();
        if field.name() != Some("file") || i >= count {
            return Err(ApiError::bad_request(format!(
                "part {} is not one of the {count} 'file' parts the manifest announces",
                i + 2
            )));
        }
        if let Some(f) = field.file_name()
            && f != manifest.files[i].name
        {
            return Err(ApiError::bad_request(format!(
                "file part {} is named '{f}' but manifest entry {} is '{}'",
                i + 1,
                i + 1,
                manifest.files[i].name
            )));
        }
        files.push(field.bytes().await.map_err(multipart_error)?.to_vec());
    }
    if files.len() != count {
        return Err(ApiError::bad_request(format!(
            "the manifest lists {count} files but {} file parts came",
            files.len()
        )));
    }
    let (n, s2) = (node.clone(), slug.to_string());
    let outcomes = blocking(move || {
        let mut outcomes: Vec<Option<Result<model::Contribution, ApiError>>> =
            Vec::with_capacity(count);
        let mut ready = Vec::with_capacity(count);
        let mut at = Vec::with_capacity(count);
        for (i, (entry, bytes)) in manifest.files.into_iter().zip(files).enumerate() {
            match entry
                .auth()
                .and_then(|a| prepare_upload(&n, &s2, entry.name, bytes, &a))
            {
                Ok(c) => {
                    ready.push(c);
                    at.push(i);
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Err(e))),
            }
        }
        if !ready.is_empty() {
            for (i, r) in at.into_iter().zip(n.store.contribute_many(ready)?) {
                outcomes[i] = Some(r.map_err(ApiError::from));
            }
        }
        Ok(outcomes)
    })
    .await?;
    let (mut created, mut rows) = (0u64, 0u64);
    let items: Vec<_> = outcomes
        .into_iter()
        .map(|o| match o {
            Some(Ok(c)) => {
                created += 1;
                rows += c.row_count;
                json!({"status": 201, "contribution": ContributionJson::new(slug, &c)})
            }
            Some(Err(e)) => {
                let mut err = json!({"code": e.code, "message": e.message});
                if let Some(r) = e.reset_at {
                    err["reset_at"] = r.into();
                }
                json!({"status": e.status.as_u16(), "error": err})
            }
            None => json!({"status": 500, "error": {"code": "internal", "message": "the file was not processed"}}),
        })
        .collect();
    metrics::counter!("commons_contributions_total").increment(created);
    metrics::counter!("commons_rows_ingested_total").increment(rows);
    ok(&json!({
        "created": created,
        "failed": count as u64 - created,
        "items": items,
    }))
}

pub(super) async fn contributions(
    node: &Arc<Node>,
    slug: &str,
    req: &Req,
) -> Result<Resp, ApiError> {
    let status = match req.q("status").filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("status '{s}' is not pending, accepted or rejected"))
        })?),
        None => None,
    };
    let contributor = req
        .q("contributor")
        .filter(|s| !s.is_empty())
        .map(parse_addr)
        .transpose()?;
    let (after, lim) = (cursor(req)?, limit(req)?);
    let (n, slug) = (node.clone(), slug.to_string());
    let page = blocking(move || {
        let s = n.store.snapshot()?;
        let d = s.datanet(&slug)?;
        let (items, next) = s.contributions(
            d.id,
            &ContributionFilter {
                status,
                contributor,
            },
            after,
            lim,
        )?;
        Ok(Page {
            items: items
                .iter()
                .map(|c| ContributionJson::new(&slug, c))
                .collect(),
            next_cursor: next.map(|c| c.to_string()),
        })
    })
    .await?;
    ok(&page)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    contributions: Vec<u64>,
    accept: bool,
    #[serde(default)]
    reason: String,
    auth: AuthJson,
}

pub(super) async fn review(node: &Arc<Node>, slug: &str, req: &mut Req) -> Result<Resp, ApiError> {
    let b: ReviewBody = req.json().await?;
    let a = b.auth.parse()?;
    let msg = auth::Review {
        datanet: slug.to_string(),
        contributions: b.contributions.iter().map(|c| U256::from(*c)).collect(),
        accept: b.accept,
        reason: b.reason.clone(),
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, &a)?;
    let (n, slug) = (node.clone(), slug.to_string());
    let publishing = node.publisher.is_some();
    let out = blocking(move || {
        let o = n.store.review(ReviewRequest {
            datanet: slug.clone(),
            contributions: b.contributions,
            accept: b.accept,
            reason: (!b.reason.is_empty()).then_some(b.reason),
            signed,
        })?;
        Ok(json!({
            "version": o.version.as_ref().map(|v| VersionJson::new(&slug, v, AnchorJson::new(None, publishing))),
            "contributions": o.contributions.iter().map(|c| ContributionJson::new(&slug, c)).collect::<Vec<_>>(),
        }))
    })
    .await?;
    ok(&out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeDownBody {
    rows: Vec<u64>,
    reason: String,
    auth: AuthJson,
}

pub(super) async fn take_down(
    node: &Arc<Node>,
    slug: &str,
    req: &mut Req,
) -> Result<Resp, ApiError> {
    let b: TakeDownBody = req.json().await?;
    let a = b.auth.parse()?;
    let msg = auth::TakeDown {
        datanet: slug.to_string(),
        rows: b.rows.iter().map(|c| U256::from(*c)).collect(),
        reason: b.reason.clone(),
        nonce: a.nonce,
        deadline: U256::from(a.deadline),
    };
    let signed = check(node, &msg, &a)?;
    let (n, s2) = (node.clone(), slug.to_string());
    let v = blocking(move || {
        Ok(n.store.take_down(TakeDownRequest {
            datanet: s2,
            rows: b.rows,
            reason: b.reason,
            signed,
        })?)
    })
    .await?;
    let ledger = AnchorJson::new(None, node.publisher.is_some());
    ok(&VersionJson::new(slug, &v, ledger))
}

pub(super) async fn contribution(node: &Arc<Node>, cid: &str) -> Result<Resp, ApiError> {
    let cid = id(cid, "contribution")?;
    let n = node.clone();
    let out = blocking(move || {
        let s = n.store.snapshot()?;
        let c = s.contribution(cid)?;
        let d = s.datanet_by_id(c.datanet)?;
        Ok(ContributionJson::new(&d.slug, &c))
    })
    .await?;
    ok(&out)
}

pub(super) async fn contribution_rows(
    node: &Arc<Node>,
    cid: &str,
    req: &Req,
) -> Result<Resp, ApiError> {
    let cid = id(cid, "contribution")?;
    let (after, lim) = (cursor(req)?, limit(req)?);
    let n = node.clone();
    let page = blocking(move || {
        let s = n.store.snapshot()?;
        let c = s.contribution(cid)?;
        let d = s.datanet_by_id(c.datanet)?;
        let (rows, next) = s.contribution_rows(&c, after, lim)?;
        Ok(Page {
            items: rows_json(&s, &d.slug, &rows)?,
            next_cursor: next.map(|c| c.to_string()),
        })
    })
    .await?;
    ok(&page)
}

pub(super) async fn row(node: &Arc<Node>, rid: &str) -> Result<Resp, ApiError> {
    let rid = id(rid, "row")?;
    let n = node.clone();
    let out = blocking(move || {
        let s = n.store.snapshot()?;
        let r = s.row(rid)?;
        let c = s.contribution(r.contribution)?;
        let d = s.datanet_by_id(r.datanet)?;
        let m = s.membership(d.id, r.id)?;
        Ok(json!({
            "row": RowJson::new(&d.slug, &c.contributor, &r, m),
            "contribution": ContributionJson::new(&d.slug, &c),
        }))
    })
    .await?;
    ok(&out)
}

pub(super) async fn blob(node: &Arc<Node>, hash: &str) -> Result<Resp, ApiError> {
    let h = parse_hash(hash)?;
    let n = node.clone();
    let (meta, bytes) = blocking(move || Ok(n.store.snapshot()?.blob(&h)?)).await?;
    let mut r = respond(StatusCode::OK, &meta.content_type, bytes);
    if let Ok(v) = warp::http::HeaderValue::from_str(&format!("\"{}\"", hex::encode(h))) {
        r.headers_mut().insert("etag", v);
    }
    Ok(r)
}

pub(super) async fn contributor(node: &Arc<Node>, a: &str, req: &Req) -> Result<Resp, ApiError> {
    let who = parse_addr(a)?;
    let (after, lim) = (cursor(req)?, limit(req)?);
    let n = node.clone();
    let out = blocking(move || {
        let s = n.store.snapshot()?;
        let st = s.contributor(&who)?;
        let (items, next) = s.contributions_by(&who, after, lim)?;
        let mut slugs = std::collections::HashMap::new();
        let mut conv = Vec::with_capacity(items.len());
        for c in &items {
            if let std::collections::hash_map::Entry::Vacant(e) = slugs.entry(c.datanet) {
                e.insert(s.datanet_by_id(c.datanet)?.slug);
            }
            conv.push(ContributionJson::new(&slugs[&c.datanet], c));
        }
        Ok(json!({
            "address": addr(&who),
            "contributions": st.contributions,
            "accepted": st.accepted,
            "rejected": st.rejected,
            "pending": st.pending,
            "rows": st.rows,
            "accepted_rows": st.accepted_rows,
            "bytes": st.bytes,
            "items": conv,
            "next_cursor": next.map(|c| c.to_string()),
        }))
    })
    .await?;
    ok(&out)
}
