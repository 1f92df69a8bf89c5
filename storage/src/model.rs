//! Records the store keeps. These are the storage format (postcard), not a wire format: the
//! HTTP edge defines its own response types and converts.

use serde::{Deserialize, Serialize};

use crate::parse::Format;

/// A 20-byte Ethereum address.
pub type Address = [u8; 20];
/// A 32-byte hash (blake3 unless said otherwise).
pub type Hash = [u8; 32];

/// What a datanet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKind {
    /// Text rows.
    Text,
    /// Images (accepted as a kind; later issues fill it).
    Image,
    /// Audio (accepted as a kind; later issues fill it).
    Audio,
}

impl DataKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DataKind::Text => "text",
            DataKind::Image => "image",
            DataKind::Audio => "audio",
        }
    }

    /// Parse the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(DataKind::Text),
            "image" => Some(DataKind::Image),
            "audio" => Some(DataKind::Audio),
            _ => None,
        }
    }
}

/// A community-owned, versioned, thematic dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datanet {
    /// Id, assigned in creation order from 1.
    pub id: u64,
    /// Unique, URL-safe name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// One-line summary.
    pub summary: String,
    /// Markdown description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Kind of data.
    pub kind: DataKind,
    /// Private datanets accept contributions from the owner and listed contributors only.
    pub private: bool,
    /// Owner address (the creator's signer).
    pub owner: Address,
    /// Addresses allowed to review besides the owner.
    pub reviewers: Vec<Address>,
    /// Addresses allowed to contribute to a private datanet besides owner and reviewers.
    pub contributors: Vec<Address>,
    /// Creation time, unix ms.
    pub created_at: u64,
    /// Last metadata change, unix ms.
    pub updated_at: u64,
    /// Newest version number; 0 while nothing has been accepted.
    pub latest_version: u64,
    /// Rows in the newest version.
    pub row_count: u64,
    /// Contributions ever made.
    pub contribution_count: u64,
    /// Contributions waiting for review.
    pub pending_count: u64,
    /// Number of metadata edits made.
    pub edit_count: u64,
}

impl Datanet {
    /// May `who` review contributions of this datanet?
    pub fn may_review(&self, who: &Address) -> bool {
        &self.owner == who || self.reviewers.contains(who)
    }

    /// May `who` contribute to this datanet?
    pub fn may_contribute(&self, who: &Address) -> bool {
        !self.private || self.may_review(who) || self.contributors.contains(who)
    }
}

/// The editable metadata of a datanet, as recorded before and after an edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Summary.
    pub summary: String,
    /// Markdown description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// One metadata edit, kept as history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// Edit number within the datanet, from 1.
    pub number: u64,
    /// When, unix ms.
    pub at: u64,
    /// Who.
    pub by: Address,
    /// Metadata before.
    pub before: Metadata,
    /// Metadata after.
    pub after: Metadata,
}

/// Review state of a contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting for review.
    Pending,
    /// Accepted into a version.
    Accepted,
    /// Rejected.
    Rejected,
}

impl Status {
    /// Index code used in [`crate::tables::CONTRIBUTIONS_BY_DATANET`].
    pub fn code(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Accepted => 1,
            Status::Rejected => 2,
        }
    }

    /// Inverse of [`Status::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Status::Pending),
            1 => Some(Status::Accepted),
            2 => Some(Status::Rejected),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
        }
    }

    /// Parse the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Status::Pending),
            "accepted" => Some(Status::Accepted),
            "rejected" => Some(Status::Rejected),
            _ => None,
        }
    }
}

/// The signature that authorized a write, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBy {
    /// Signer address.
    pub signer: Address,
    /// Nonce (uint256, big-endian).
    pub nonce: Hash,
    /// Deadline, unix seconds.
    pub deadline: u64,
    /// 65-byte r ‖ s ‖ v signature.
    pub signature: Vec<u8>,
}

/// One uploaded file and its review state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Id, assigned in upload order from 1.
    pub id: u64,
    /// Datanet id.
    pub datanet: u64,
    /// Contributor address.
    pub contributor: Address,
    /// File name as uploaded.
    pub file_name: String,
    /// blake3 of the file.
    pub file_hash: Hash,
    /// File size in bytes.
    pub size: u64,
    /// File format.
    pub format: Format,
    /// Number of rows parsed from it.
    pub row_count: u64,
    /// Id of its first row; its rows are `first_row .. first_row + row_count`.
    pub first_row: u64,
    /// Review state.
    pub status: Status,
    /// Version that accepted it.
    pub version: Option<u64>,
    /// Reviewer's reason.
    pub reason: Option<String>,
    /// Reviewer.
    pub reviewed_by: Option<Address>,
    /// Review time, unix ms.
    pub reviewed_at: Option<u64>,
    /// Upload time, unix ms.
    pub created_at: u64,
    /// The upload's signature.
    pub signed: SignedBy,
}

/// One row: the unit attribution credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Global id.
    pub id: u64,
    /// Datanet id.
    pub datanet: u64,
    /// Contribution id.
    pub contribution: u64,
    /// Position within the contribution, from 0.
    pub ordinal: u64,
    /// blake3 of the text.
    pub hash: Hash,
    /// The row's text (for jsonl/csv, a compact JSON record).
    pub text: String,
}

/// Where a row stands in a datanet's versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// Version that added it.
    pub added_in: u64,
    /// Version that removed it, if any.
    pub removed_in: Option<u64>,
}

impl Membership {
    /// Is the row part of version `v`?
    pub fn in_version(&self, v: u64) -> bool {
        self.added_in <= v && self.removed_in.is_none_or(|r| v < r)
    }
}

/// An immutable, numbered state of a datanet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Datanet id.
    pub datanet: u64,
    /// Number, from 1.
    pub number: u64,
    /// Previous version, if any.
    pub parent: Option<u64>,
    /// When, unix ms.
    pub created_at: u64,
    /// Who made it (the reviewer).
    pub created_by: Address,
    /// Rows added.
    pub rows_added: u64,
    /// Rows removed.
    pub rows_removed: u64,
    /// Rows in this version.
    pub row_count: u64,
    /// Merkle root over the row hashes in row-id order ([`crate::merkle`]).
    pub root: Hash,
    /// Contributions accepted by this version.
    pub contributions: Vec<u64>,
    /// Rows taken down by this version.
    pub removed_rows: Vec<u64>,
    /// Reason given for a take-down.
    pub reason: Option<String>,
    /// The review or take-down signature.
    pub signed: SignedBy,
}

/// Metadata of a content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
    /// Number of chunks.
    pub chunks: u32,
    /// First stored, unix ms.
    pub created_at: u64,
}

/// Per-contributor totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributorStats {
    /// Contributions made.
    pub contributions: u64,
    /// Accepted.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Pending.
    pub pending: u64,
    /// Rows uploaded.
    pub rows: u64,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Rows accepted.
    pub accepted_rows: u64,
}

/// A custodial console account: the node holds its key, encrypted with the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Its Ethereum address.
    pub address: Address,
    /// Argon2 PHC string of the password.
    pub password_hash: String,
    /// Salt for the key-encryption key.
    pub key_salt: Vec<u8>,
    /// AEAD nonce of the encrypted key.
    pub key_nonce: Vec<u8>,
    /// The secp256k1 secret key, encrypted.
    pub encrypted_key: Vec<u8>,
    /// Created, unix ms.
    pub created_at: u64,
}

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// User name.
    pub username: String,
    /// Expiry, unix ms.
    pub expires_at: u64,
    /// The user's decrypted key, encrypted again under the session token (so the node can sign
    /// for the session without keeping the password).
    pub key_nonce: Vec<u8>,
    /// See `key_nonce`.
    pub encrypted_key: Vec<u8>,
}

/// What a change-log entry records; derived indexes replay these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A datanet was created.
    DatanetCreated {
        /// Datanet id.
        datanet: u64,
    },
    /// A datanet's metadata or roles changed.
    DatanetEdited {
        /// Datanet id.
        datanet: u64,
    },
    /// A contribution arrived with its rows (pending).
    Contributed {
        /// Datanet id.
        datanet: u64,
        /// Contribution id.
        contribution: u64,
    },
    /// Contributions were reviewed; `version` is set when some were accepted.
    Reviewed {
        /// Datanet id.
        datanet: u64,
        /// Contribution ids.
        contributions: Vec<u64>,
        /// Whether they were accepted.
        accepted: bool,
        /// New version, when accepted.
        version: Option<u64>,
    },
    /// Rows were taken down in a new version.
    TakenDown {
        /// Datanet id.
        datanet: u64,
        /// The version removing them.
        version: u64,
        /// Row ids.
        rows: Vec<u64>,
    },
}

/// A change-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Sequence number.
    pub seq: u64,
    /// When, unix ms.
    pub at: u64,
    /// What changed.
    pub change: Change,
}
