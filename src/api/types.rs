//! Wire shapes of the REST API (docs/API.md), converted from storage records. Only the edge
//! decides what clients see.

use alloy_primitives::{Address, U256};
use commons_storage::anchors::Anchor;
use commons_storage::model::{self, Membership};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::auth::Auth;

/// `0x`-prefixed lowercase hex address.
pub(crate) fn addr(a: &model::Address) -> String {
    format!("0x{}", hex::encode(a))
}

/// Parse an address, 400 when malformed.
pub(crate) fn parse_addr(s: &str) -> Result<model::Address, ApiError> {
    s.parse::<Address>()
        .map(|a| a.into_array())
        .map_err(|_| ApiError::bad_request(format!("'{s}' is not an Ethereum address")))
}

/// Parse a blake3 hash given as hex (with or without 0x).
pub(crate) fn parse_hash(s: &str) -> Result<model::Hash, ApiError> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out)
        .map_err(|_| ApiError::bad_request(format!("'{s}' is not a 32-byte hex hash")))?;
    Ok(out)
}

/// A paged list.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DatanetJson {
    id: u64,
    slug: String,
    name: String,
    summary: String,
    description: String,
    tags: Vec<String>,
    kind: &'static str,
    visibility: &'static str,
    owner: String,
    reviewers: Vec<String>,
    contributors: Vec<String>,
    created_at: u64,
    updated_at: u64,
    latest_version: u64,
    row_count: u64,
    contribution_count: u64,
    pending_count: u64,
    /// Its registration in DatanetRegistry (on the single-datanet view).
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<AnchorJson>,
}

impl DatanetJson {
    pub(crate) fn with_ledger(mut self, ledger: AnchorJson) -> Self {
        self.ledger = Some(ledger);
        self
    }
}

impl From<&model::Datanet> for DatanetJson {
    fn from(d: &model::Datanet) -> Self {
        DatanetJson {
            id: d.id,
            slug: d.slug.clone(),
            name: d.name.clone(),
            summary: d.summary.clone(),
            description: d.description.clone(),
            tags: d.tags.clone(),
            kind: d.kind.as_str(),
            visibility: if d.private { "private" } else { "public" },
            owner: addr(&d.owner),
            reviewers: d.reviewers.iter().map(addr).collect(),
            contributors: d.contributors.iter().map(addr).collect(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            latest_version: d.latest_version,
            row_count: d.row_count,
            contribution_count: d.contribution_count,
            pending_count: d.pending_count,
            ledger: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct VersionJson {
    datanet: String,
    number: u64,
    parent: Option<u64>,
    created_at: u64,
    created_by: String,
    rows_added: u64,
    rows_removed: u64,
    row_count: u64,
    root: String,
    contributions: Vec<u64>,
    removed_rows: Vec<u64>,
    reason: Option<String>,
    ledger: AnchorJson,
}

/// Where a datanet's registration or a version's publication in DatanetRegistry stands.
#[derive(Debug, Serialize)]
pub(crate) struct AnchorJson {
    /// `queued` (not sent yet), `sent`, `confirmed`, `failed`, or `off` (the node has no
    /// operator key, so nothing is published).
    status: &'static str,
    tx_hash: Option<String>,
    block: Option<u64>,
    /// The datanet's id in DatanetRegistry.
    datanet_id: Option<u64>,
    error: Option<String>,
}

impl AnchorJson {
    pub(crate) fn new(a: Option<&Anchor>, publishing: bool) -> Self {
        match a {
            None => AnchorJson {
                status: if publishing { "queued" } else { "off" },
                tx_hash: None,
                block: None,
                datanet_id: None,
                error: None,
            },
            Some(a) => AnchorJson {
                status: a.state.as_str(),
                tx_hash: Some(format!("0x{}", hex::encode(a.tx_hash))),
                block: a.block,
                datanet_id: a.chain_datanet,
                error: a.error.clone(),
            },
        }
    }
}

impl VersionJson {
    pub(crate) fn new(slug: &str, v: &model::Version, ledger: AnchorJson) -> Self {
        VersionJson {
            datanet: slug.to_string(),
            number: v.number,
            parent: v.parent,
            created_at: v.created_at,
            created_by: addr(&v.created_by),
            rows_added: v.rows_added,
            rows_removed: v.rows_removed,
            row_count: v.row_count,
            root: hex::encode(v.root),
            contributions: v.contributions.clone(),
            removed_rows: v.removed_rows.clone(),
            reason: v.reason.clone(),
            ledger,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ContributionJson {
    id: u64,
    datanet: String,
    contributor: String,
    file_name: String,
    file_hash: String,
    size: u64,
    content_type: &'static str,
    format: &'static str,
    row_count: u64,
    first_row: u64,
    status: &'static str,
    version: Option<u64>,
    reason: Option<String>,
    reviewed_by: Option<String>,
    reviewed_at: Option<u64>,
    created_at: u64,
}

impl ContributionJson {
    pub(crate) fn new(slug: &str, c: &model::Contribution) -> Self {
        ContributionJson {
            id: c.id,
            datanet: slug.to_string(),
            contributor: addr(&c.contributor),
            file_name: c.file_name.clone(),
            file_hash: hex::encode(c.file_hash),
            size: c.size,
            content_type: c.format.content_type(),
            format: c.format.as_str(),
            row_count: c.row_count,
            first_row: c.first_row,
            status: c.status.as_str(),
            version: c.version,
            reason: c.reason.clone(),
            reviewed_by: c.reviewed_by.as_ref().map(addr),
            reviewed_at: c.reviewed_at,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct RowJson {
    id: u64,
    datanet: String,
    contribution: u64,
    contributor: String,
    ordinal: u64,
    hash: String,
    text: String,
    added_in: Option<u64>,
    removed_in: Option<u64>,
}

impl RowJson {
    pub(crate) fn new(
        slug: &str,
        contributor: &model::Address,
        r: &model::Row,
        m: Option<Membership>,
    ) -> Self {
        RowJson {
            id: r.id,
            datanet: slug.to_string(),
            contribution: r.contribution,
            contributor: addr(contributor),
            ordinal: r.ordinal,
            hash: hex::encode(r.hash),
            text: r.text.clone(),
            added_in: m.map(|m| m.added_in),
            removed_in: m.and_then(|m| m.removed_in),
        }
    }
}

/// The signature fields of a JSON write.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthJson {
    signer: String,
    nonce: NumOrString,
    deadline: u64,
    signature: String,
}

/// A uint256 sent as a decimal string or a JSON number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum NumOrString {
    Num(u64),
    Str(String),
}

impl NumOrString {
    fn to_u256(&self, what: &str) -> Result<U256, ApiError> {
        match self {
            NumOrString::Num(n) => Ok(U256::from(*n)),
            NumOrString::Str(s) => parse_u256(s, what),
        }
    }
}

pub(crate) fn parse_u256(s: &str, what: &str) -> Result<U256, ApiError> {
    let r = match s.strip_prefix("0x") {
        Some(h) => U256::from_str_radix(h, 16),
        None => U256::from_str_radix(s, 10),
    };
    r.map_err(|_| ApiError::bad_request(format!("{what} '{s}' is not a uint256")))
}

pub(crate) fn parse_signature(s: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| {
        ApiError::new(
            warp::http::StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the signature is not hex",
        )
    })
}

impl AuthJson {
    pub(crate) fn parse(&self) -> Result<Auth, ApiError> {
        Ok(Auth {
            signer: parse_addr(&self.signer).map(Address::from).map_err(|_| {
                ApiError::bad_request(format!("auth.signer '{}' is not an address", self.signer))
            })?,
            nonce: self.nonce.to_u256("auth.nonce")?,
            deadline: self.deadline,
            signature: parse_signature(&self.signature)?,
        })
    }
}
