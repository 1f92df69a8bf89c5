//! The store: opens the database, runs writes through group commit, and hands out
//! snapshots for reads.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::error::{Error, Result};
use crate::merkle;
use crate::model::*;
use crate::parse::Format;
use crate::tables::{self, meta};
use crate::writer::{WriteCtx, Writer};
use crate::{BLOB_CHUNK, SCHEMA_VERSION, decode, encode};

const DAY_MS: u64 = 86_400_000;

/// Upload limits and daily quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single upload, bytes.
    pub max_upload_bytes: u64,
    /// Bytes one contributor may upload per UTC day.
    pub daily_bytes_per_contributor: u64,
    /// Files one contributor may upload per UTC day.
    pub daily_files_per_contributor: u64,
    /// Bytes one datanet may receive per UTC day.
    pub daily_bytes_per_datanet: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 5 << 20,
            daily_bytes_per_contributor: 10 << 20,
            daily_files_per_contributor: 20,
            daily_bytes_per_datanet: 10 << 20,
        }
    }
}

/// The Commons database.
pub struct Store {
    db: Arc<Database>,
    writer: Writer,
    limits: Limits,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A datanet to create.
#[derive(Debug, Clone)]
pub struct NewDatanet {
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// One-line summary.
    pub summary: String,
    /// Markdown description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Kind.
    pub kind: DataKind,
    /// Private?
    pub private: bool,
    /// The creator's signature; the signer becomes the owner.
    pub signed: SignedBy,
}

/// A file to contribute, already parsed into rows by the caller (parsing is CPU work that
/// should not run on the writer thread).
#[derive(Debug, Clone)]
pub struct NewContribution {
    /// Datanet slug.
    pub datanet: String,
    /// File name.
    pub file_name: String,
    /// File bytes.
    pub bytes: Vec<u8>,
    /// blake3 of `bytes`, as signed.
    pub file_hash: Hash,
    /// Format.
    pub format: Format,
    /// Rows parsed from the file.
    pub rows: Vec<String>,
    /// The contributor's signature.
    pub signed: SignedBy,
}

/// A review of pending contributions.
#[derive(Debug, Clone)]
pub struct ReviewRequest {
    /// Datanet slug.
    pub datanet: String,
    /// Contribution ids, all of this datanet and pending.
    pub contributions: Vec<u64>,
    /// Accept (new version) or reject.
    pub accept: bool,
    /// Reason, kept on each contribution.
    pub reason: Option<String>,
    /// Reviewer's signature.
    pub signed: SignedBy,
}

/// What a review did.
#[derive(Debug, Clone)]
pub struct ReviewOutcome {
    /// The version created, when contributions were accepted.
    pub version: Option<Version>,
    /// The reviewed contributions, updated.
    pub contributions: Vec<Contribution>,
}

/// Metadata edit.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// Datanet slug.
    pub datanet: String,
    /// New metadata.
    pub metadata: Metadata,
    /// Owner's signature.
    pub signed: SignedBy,
}

/// Reviewer and contributor lists.
#[derive(Debug, Clone)]
pub struct RolesRequest {
    /// Datanet slug.
    pub datanet: String,
    /// Reviewers besides the owner.
    pub reviewers: Vec<Address>,
    /// Contributors allowed on a private datanet.
    pub contributors: Vec<Address>,
    /// Owner's signature.
    pub signed: SignedBy,
}

/// Take rows down in a new version.
#[derive(Debug, Clone)]
pub struct TakeDownRequest {
    /// Datanet slug.
    pub datanet: String,
    /// Row ids, all in the latest version.
    pub rows: Vec<u64>,
    /// Why.
    pub reason: String,
    /// Owner's or reviewer's signature.
    pub signed: SignedBy,
}

/// Validate a datanet slug.
pub fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && !b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || *c == b'-')
}

impl Store {
    /// Open a database whose schema is already [`SCHEMA_VERSION`] (the migrations crate
    /// creates and upgrades it).
    pub fn from_database(db: Database, limits: Limits) -> Result<Self> {
        let found = {
            let r = db.begin_read()?;
            match r.open_table(tables::META) {
                Ok(t) => t.get(meta::SCHEMA_VERSION)?.map(|v| v.value()).unwrap_or(0),
                Err(redb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => return Err(e.into()),
            }
        };
        if found != SCHEMA_VERSION {
            return Err(Error::Schema {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        let db = Arc::new(db);
        Ok(Store {
            writer: Writer::start(db.clone()),
            db,
            limits,
        })
    }

    /// Create a fresh database at `path` with the current schema; for tests and benchmarks.
    /// The appliance opens through the migrations crate instead.
    pub fn create_fresh(path: &Path, limits: Limits) -> Result<Self> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        tables::create_all(&txn)?;
        tables::create_v2(&txn)?;
        tables::create_v3(&txn)?;
        {
            let mut t = txn.open_table(tables::META)?;
            t.insert(meta::SCHEMA_VERSION, SCHEMA_VERSION)?;
        }
        txn.commit()?;
        Self::from_database(db, limits)
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A consistent read-only view as of now.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            txn: self.db.begin_read()?,
        })
    }

    /// The underlying database, for derived indexes that keep tables of their own.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// Run an arbitrary write through group commit. The closure must check before it writes.
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.write(f)
    }

    /// Create a datanet owned by its signer.
    pub fn create_datanet(&self, d: NewDatanet) -> Result<Datanet> {
        if !valid_slug(&d.slug) {
            return Err(Error::InvalidSlug(d.slug));
        }
        self.write(move |ctx| {
            use_nonce_check(ctx, &d.signed)?;
            {
                let slugs = &ctx.t.datanet_slugs;
                if slugs.get(d.slug.as_str())?.is_some() {
                    return Err(Error::SlugTaken(d.slug));
                }
            }
            use_nonce(ctx, &d.signed)?;
            let id = ctx.next_id(meta::NEXT_DATANET, 1)?;
            let dn = Datanet {
                id,
                slug: d.slug,
                name: d.name,
                summary: d.summary,
                description: d.description,
                tags: d.tags,
                kind: d.kind,
                private: d.private,
                owner: d.signed.signer,
                reviewers: vec![],
                contributors: vec![],
                created_at: ctx.now_ms,
                updated_at: ctx.now_ms,
                latest_version: 0,
                row_count: 0,
                contribution_count: 0,
                pending_count: 0,
                edit_count: 0,
            };
            ctx.t.datanet_slugs.insert(dn.slug.as_str(), id)?;
            put_datanet(ctx, &dn)?;
            ctx.record(Change::DatanetCreated { datanet: id })?;
            Ok(dn)
        })
    }

    /// Edit summary, description and tags; the edit is kept as history.
    pub fn edit_datanet(&self, e: EditRequest) -> Result<Datanet> {
        self.write(move |ctx| {
            let mut dn = datanet_by_slug_w(ctx, &e.datanet)?;
            if dn.owner != e.signed.signer {
                return Err(Error::Forbidden(format!(
                    "only the owner of '{}' may edit it",
                    dn.slug
                )));
            }
            use_nonce_check(ctx, &e.signed)?;
            use_nonce(ctx, &e.signed)?;
            let before = Metadata {
                summary: dn.summary.clone(),
                description: dn.description.clone(),
                tags: dn.tags.clone(),
            };
            dn.summary = e.metadata.summary.clone();
            dn.description = e.metadata.description.clone();
            dn.tags = e.metadata.tags.clone();
            dn.edit_count += 1;
            dn.updated_at = ctx.now_ms;
            let edit = Edit {
                number: dn.edit_count,
                at: ctx.now_ms,
                by: e.signed.signer,
                before,
                after: e.metadata,
            };
            ctx.t
                .edits
                .insert((dn.id, edit.number), encode(&edit).as_slice())?;
            put_datanet(ctx, &dn)?;
            ctx.record(Change::DatanetEdited { datanet: dn.id })?;
            Ok(dn)
        })
    }

    /// Set reviewers and (for private datanets) contributors.
    pub fn set_roles(&self, r: RolesRequest) -> Result<Datanet> {
        self.write(move |ctx| {
            let mut dn = datanet_by_slug_w(ctx, &r.datanet)?;
            if dn.owner != r.signed.signer {
                return Err(Error::Forbidden(format!(
                    "only the owner of '{}' may change its roles",
                    dn.slug
                )));
            }
            use_nonce_check(ctx, &r.signed)?;
            use_nonce(ctx, &r.signed)?;
            dn.reviewers = r.reviewers;
            dn.contributors = r.contributors;
            dn.updated_at = ctx.now_ms;
            put_datanet(ctx, &dn)?;
            ctx.record(Change::DatanetEdited { datanet: dn.id })?;
            Ok(dn)
        })
    }

    /// Store a contribution, its blob and its rows as pending.
    pub fn contribute(&self, c: NewContribution) -> Result<Contribution> {
        let p = Prepared::new(c, &self.limits)?;
        let limits = self.limits;
        self.write(move |ctx| contribute_in(ctx, &limits, p))
    }

    /// Store many contributions in one group commit (a folder upload, a bulk import). Each
    /// file is checked and stored on its own: the outer error is a database failure that
    /// stored none of them; an inner error refuses that file only and leaves no trace of it.
    pub fn contribute_many(
        &self,
        items: Vec<NewContribution>,
    ) -> Result<Vec<Result<Contribution>>> {
        let limits = self.limits;
        let prepared: Vec<Result<Prepared>> = items
            .into_iter()
            .map(|c| Prepared::new(c, &limits))
            .collect();
        self.write(move |ctx| {
            let mut out = Vec::with_capacity(prepared.len());
            for p in prepared {
                let r = p.and_then(|p| contribute_in(ctx, &limits, p));
                if let Err(e) = &r
                    && e.is_fatal_for_transaction()
                {
                    return Err(Error::Internal(format!(
                        "a write in this upload failed: {e}"
                    )));
                }
                out.push(r);
            }
            Ok(out)
        })
    }

    /// Accept (into a new version) or reject pending contributions.
    pub fn review(&self, r: ReviewRequest) -> Result<ReviewOutcome> {
        if r.contributions.is_empty() {
            return Err(Error::Invalid(
                "name at least one contribution to review".into(),
            ));
        }
        self.write(move |ctx| {
            let mut dn = datanet_by_slug_w(ctx, &r.datanet)?;
            let who = r.signed.signer;
            if !dn.may_review(&who) {
                return Err(Error::Forbidden(format!(
                    "{} is neither the owner nor a reviewer of '{}'",
                    hex_addr(&who),
                    dn.slug
                )));
            }
            let mut ids = r.contributions.clone();
            ids.sort_unstable();
            ids.dedup();
            let mut contributions = Vec::with_capacity(ids.len());
            {
                let t = &ctx.t.contributions;
                for id in &ids {
                    let c: Contribution = match t.get(id)? {
                        Some(v) => decode(v.value())?,
                        None => return Err(Error::not_found("contribution", id)),
                    };
                    if c.datanet != dn.id {
                        return Err(Error::Invalid(format!(
                            "contribution {id} belongs to another datanet"
                        )));
                    }
                    if c.status != Status::Pending {
                        return Err(Error::InvalidState(format!(
                            "contribution {id} is {} already; only pending contributions can be reviewed",
                            c.status.as_str()
                        )));
                    }
                    contributions.push(c);
                }
            }
            use_nonce_check(ctx, &r.signed)?;
            use_nonce(ctx, &r.signed)?;
            let version_no = if r.accept { Some(dn.latest_version + 1) } else { None };
            let mut added = 0;
            for c in &mut contributions {
                c.status = if r.accept { Status::Accepted } else { Status::Rejected };
                c.version = version_no;
                c.reason = r.reason.clone();
                c.reviewed_by = Some(who);
                c.reviewed_at = Some(ctx.now_ms);
                put_contribution(ctx, c)?;
                ctx.t.contributions_by_datanet
                    .insert((dn.id, c.id), c.status.code())?;
                let rows = c.row_count;
                update_contributor(ctx, &c.contributor, |s| {
                    s.pending = s.pending.saturating_sub(1);
                    if r.accept {
                        s.accepted += 1;
                        s.accepted_rows += rows;
                    } else {
                        s.rejected += 1;
                    }
                })?;
                if let Some(v) = version_no {
                    let rows_t = &ctx.t.rows;
                    let m = &mut ctx.t.membership;
                    for row_id in c.first_row..c.first_row + c.row_count {
                        let row: Row = match rows_t.get(row_id)? {
                            Some(g) => decode(g.value())?,
                            None => {
                                return Err(Error::Internal(format!(
                                    "row {row_id} of contribution {} is missing",
                                    c.id
                                )));
                            }
                        };
                        m.insert((dn.id, row_id), (v, u64::MAX, row.hash))?;
                        added += 1;
                    }
                }
            }
            dn.pending_count = dn.pending_count.saturating_sub(contributions.len() as u64);
            let version = match version_no {
                Some(number) => {
                    let (root, row_count) = version_root(ctx, dn.id, number)?;
                    let v = Version {
                        datanet: dn.id,
                        number,
                        parent: (number > 1).then(|| number - 1),
                        created_at: ctx.now_ms,
                        created_by: who,
                        rows_added: added,
                        rows_removed: 0,
                        row_count,
                        root,
                        contributions: ids.clone(),
                        removed_rows: vec![],
                        reason: r.reason.clone(),
                        signed: r.signed.clone(),
                    };
                    put_version(ctx, &v)?;
                    dn.latest_version = number;
                    dn.row_count = row_count;
                    Some(v)
                }
                None => None,
            };
            put_datanet(ctx, &dn)?;
            ctx.record(Change::Reviewed {
                datanet: dn.id,
                contributions: ids,
                accepted: r.accept,
                version: version_no,
            })?;
            Ok(ReviewOutcome {
                version,
                contributions,
            })
        })
    }

    /// Remove rows in a new version; older versions keep them.
    pub fn take_down(&self, r: TakeDownRequest) -> Result<Version> {
        if r.rows.is_empty() {
            return Err(Error::Invalid("name at least one row to take down".into()));
        }
        self.write(move |ctx| {
            let mut dn = datanet_by_slug_w(ctx, &r.datanet)?;
            let who = r.signed.signer;
            if !dn.may_review(&who) {
                return Err(Error::Forbidden(format!(
                    "{} is neither the owner nor a reviewer of '{}'",
                    hex_addr(&who),
                    dn.slug
                )));
            }
            let mut ids = r.rows.clone();
            ids.sort_unstable();
            ids.dedup();
            let mut entries = Vec::with_capacity(ids.len());
            {
                let m = &ctx.t.membership;
                for id in &ids {
                    match m.get((dn.id, *id))? {
                        Some(g) if g.value().1 == u64::MAX => entries.push((*id, g.value())),
                        _ => {
                            return Err(Error::InvalidState(format!(
                                "row {id} is not in the latest version of '{}'",
                                dn.slug
                            )));
                        }
                    }
                }
            }
            use_nonce_check(ctx, &r.signed)?;
            use_nonce(ctx, &r.signed)?;
            let number = dn.latest_version + 1;
            {
                let m = &mut ctx.t.membership;
                for (id, (added, _, hash)) in &entries {
                    m.insert((dn.id, *id), (*added, number, *hash))?;
                }
            }
            let (root, row_count) = version_root(ctx, dn.id, number)?;
            let v = Version {
                datanet: dn.id,
                number,
                parent: Some(dn.latest_version),
                created_at: ctx.now_ms,
                created_by: who,
                rows_added: 0,
                rows_removed: ids.len() as u64,
                row_count,
                root,
                contributions: vec![],
                removed_rows: ids.clone(),
                reason: Some(r.reason),
                signed: r.signed,
            };
            put_version(ctx, &v)?;
            dn.latest_version = number;
            dn.row_count = row_count;
            put_datanet(ctx, &dn)?;
            ctx.record(Change::TakenDown {
                datanet: dn.id,
                version: number,
                rows: ids,
            })?;
            Ok(v)
        })
    }

    /// Add a custodial console user.
    pub fn create_user(&self, user: User) -> Result<User> {
        self.write(move |ctx| {
            let t = &mut ctx.t.users;
            if t.get(user.username.as_str())?.is_some() {
                return Err(Error::InvalidState(format!(
                    "user '{}' exists already",
                    user.username
                )));
            }
            t.insert(user.username.as_str(), encode(&user).as_slice())?;
            Ok(user)
        })
    }

    /// Store a session under the hash of its token.
    pub fn put_session(&self, token_hash: Hash, session: Session) -> Result<()> {
        self.write(move |ctx| {
            let t = &mut ctx.t.sessions;
            t.insert(token_hash, encode(&session).as_slice())?;
            Ok(())
        })
    }

    /// Remove a session (logout) and any that have expired.
    pub fn delete_session(&self, token_hash: Hash) -> Result<()> {
        self.write(move |ctx| {
            let t = &mut ctx.t.sessions;
            t.remove(token_hash)?;
            let now = ctx.now_ms;
            t.retain(|_, v| {
                decode::<Session>(v)
                    .map(|s| s.expires_at > now)
                    .unwrap_or(false)
            })?;
            Ok(())
        })
    }
}

/// A contribution checked and hashed on the caller's thread, ready for the writer.
struct Prepared {
    datanet: String,
    file_name: String,
    bytes: Vec<u8>,
    file_hash: Hash,
    format: Format,
    rows: Vec<(Hash, String)>,
    signed: SignedBy,
}

impl Prepared {
    fn new(c: NewContribution, limits: &Limits) -> Result<Self> {
        let size = c.bytes.len() as u64;
        if size > limits.max_upload_bytes {
            return Err(Error::TooLarge {
                size,
                limit: limits.max_upload_bytes,
            });
        }
        if c.rows.is_empty() {
            return Err(Error::Parse(crate::parse::ParseError::NoRows));
        }
        if blake3::hash(&c.bytes).as_bytes() != &c.file_hash {
            return Err(Error::Invalid(
                "the signed file hash does not match the uploaded bytes".into(),
            ));
        }
        let rows = c
            .rows
            .into_iter()
            .map(|t| (*blake3::hash(t.as_bytes()).as_bytes(), t))
            .collect();
        Ok(Prepared {
            datanet: c.datanet,
            file_name: c.file_name,
            bytes: c.bytes,
            file_hash: c.file_hash,
            format: c.format,
            rows,
            signed: c.signed,
        })
    }
}

/// The writer's half of a contribution: every check, then every write.
fn contribute_in(ctx: &mut WriteCtx<'_>, limits: &Limits, p: Prepared) -> Result<Contribution> {
    let Prepared {
        datanet,
        file_name,
        bytes,
        file_hash,
        format,
        rows,
        signed,
    } = p;
    let size = bytes.len() as u64;
    let mut dn = datanet_by_slug_w(ctx, &datanet)?;
    let who = signed.signer;
    if !dn.may_contribute(&who) {
        return Err(Error::Forbidden(format!(
            "'{}' is private and {} is not one of its contributors",
            dn.slug,
            hex_addr(&who)
        )));
    }
    use_nonce_check(ctx, &signed)?;
    let day = ctx.now_ms / DAY_MS;
    let reset_at_ms = (day + 1) * DAY_MS;
    let ckey = format!("c:{}", hex_addr(&who));
    let dkey = format!("d:{}", dn.id);
    let (c_bytes, c_files, d_bytes) = {
        let q = &ctx.t.quotas;
        let c = q
            .get((ckey.as_str(), day))?
            .map(|v| v.value())
            .unwrap_or((0, 0));
        let d = q
            .get((dkey.as_str(), day))?
            .map(|v| v.value())
            .unwrap_or((0, 0));
        (c.0, c.1, d.0)
    };
    if c_files + 1 > limits.daily_files_per_contributor {
        return Err(Error::QuotaExceeded {
            what: format!(
                "daily quota of {} files per contributor reached",
                limits.daily_files_per_contributor
            ),
            reset_at_ms,
        });
    }
    if c_bytes + size > limits.daily_bytes_per_contributor {
        return Err(Error::QuotaExceeded {
            what: format!(
                "daily quota of {} bytes per contributor would be exceeded ({} used)",
                limits.daily_bytes_per_contributor, c_bytes
            ),
            reset_at_ms,
        });
    }
    if d_bytes + size > limits.daily_bytes_per_datanet {
        return Err(Error::QuotaExceeded {
            what: format!(
                "daily quota of {} bytes for datanet '{}' would be exceeded ({} used)",
                limits.daily_bytes_per_datanet, dn.slug, d_bytes
            ),
            reset_at_ms,
        });
    }
    // Checks done: from here on only writes.
    use_nonce(ctx, &signed)?;
    {
        let q = &mut ctx.t.quotas;
        q.insert((ckey.as_str(), day), (c_bytes + size, c_files + 1))?;
        q.insert((dkey.as_str(), day), (d_bytes + size, 0))?;
    }
    put_blob(ctx, &file_hash, &bytes, format.content_type())?;
    let id = ctx.next_id(meta::NEXT_CONTRIBUTION, 1)?;
    let row_count = rows.len() as u64;
    let first_row = ctx.next_id(meta::NEXT_ROW, row_count)?;
    {
        let t = &mut ctx.t.rows;
        for (i, (hash, text)) in rows.into_iter().enumerate() {
            let row = Row {
                id: first_row + i as u64,
                datanet: dn.id,
                contribution: id,
                ordinal: i as u64,
                hash,
                text,
            };
            t.insert(row.id, encode(&row).as_slice())?;
        }
    }
    let contribution = Contribution {
        id,
        datanet: dn.id,
        contributor: who,
        file_name,
        file_hash,
        size,
        format,
        row_count,
        first_row,
        status: Status::Pending,
        version: None,
        reason: None,
        reviewed_by: None,
        reviewed_at: None,
        created_at: ctx.now_ms,
        signed,
    };
    put_contribution(ctx, &contribution)?;
    ctx.t
        .contributions_by_datanet
        .insert((dn.id, id), Status::Pending.code())?;
    ctx.t
        .contributions_by_contributor
        .insert((who, id), dn.id)?;
    update_contributor(ctx, &who, |s| {
        s.contributions += 1;
        s.pending += 1;
        s.rows += row_count;
        s.bytes += size;
    })?;
    dn.contribution_count += 1;
    dn.pending_count += 1;
    put_datanet(ctx, &dn)?;
    ctx.record(Change::Contributed {
        datanet: dn.id,
        contribution: id,
    })?;
    Ok(contribution)
}

fn hex_addr(a: &Address) -> String {
    format!("0x{}", hex::encode(a))
}

fn datanet_by_slug_w(ctx: &WriteCtx<'_>, slug: &str) -> Result<Datanet> {
    let id = ctx
        .t
        .datanet_slugs
        .get(slug)?
        .map(|v| v.value())
        .ok_or_else(|| Error::not_found("datanet", slug))?;
    if let Some(d) = ctx.cache.datanets.get(&id) {
        return Ok(d.clone());
    }
    let v =
        ctx.t.datanets.get(id)?.ok_or_else(|| {
            Error::Internal(format!("slug {slug} points at missing datanet {id}"))
        })?;
    decode(v.value())
}

/// Written back to the table once per batch (see [`WriteCtx`]).
fn put_datanet(ctx: &mut WriteCtx<'_>, d: &Datanet) -> Result<()> {
    ctx.cache.datanets.insert(d.id, d.clone());
    Ok(())
}

fn put_contribution(ctx: &mut WriteCtx<'_>, c: &Contribution) -> Result<()> {
    ctx.t.contributions.insert(c.id, encode(c).as_slice())?;
    Ok(())
}

fn put_version(ctx: &mut WriteCtx<'_>, v: &Version) -> Result<()> {
    ctx.t
        .versions
        .insert((v.datanet, v.number), encode(v).as_slice())?;
    ctx.add(meta::VERSIONS, 1)
}

/// Contributor totals live in the batch cache and are written back once per batch.
fn update_contributor(
    ctx: &mut WriteCtx<'_>,
    who: &Address,
    f: impl FnOnce(&mut ContributorStats),
) -> Result<()> {
    if !ctx.cache.contributors.contains_key(who) {
        let s: ContributorStats = match ctx.t.contributors.get(who)? {
            Some(v) => decode(v.value())?,
            None => ContributorStats::default(),
        };
        ctx.cache.contributors.insert(*who, s);
    }
    if let Some(s) = ctx.cache.contributors.get_mut(who) {
        f(s);
    }
    Ok(())
}

fn use_nonce_check(ctx: &WriteCtx<'_>, s: &SignedBy) -> Result<()> {
    let t = &ctx.t.nonces;
    if t.get((s.signer, s.nonce))?.is_some() {
        return Err(Error::NonceReused {
            signer: hex_addr(&s.signer),
            nonce: crate::nonce_to_decimal(&s.nonce),
        });
    }
    Ok(())
}

fn use_nonce(ctx: &mut WriteCtx<'_>, s: &SignedBy) -> Result<()> {
    let now = ctx.now_ms;
    ctx.t.nonces.insert((s.signer, s.nonce), now)?;
    Ok(())
}

pub(crate) fn put_blob(
    ctx: &mut WriteCtx<'_>,
    hash: &Hash,
    bytes: &[u8],
    content_type: &str,
) -> Result<()> {
    {
        let t = &ctx.t.blobs;
        if t.get(hash)?.is_some() {
            return Ok(());
        }
    }
    let chunks = bytes.len().div_ceil(BLOB_CHUNK).max(1) as u32;
    {
        let c = &mut ctx.t.blob_chunks;
        for (i, chunk) in bytes.chunks(BLOB_CHUNK).enumerate() {
            c.insert((*hash, i as u32), chunk)?;
        }
    }
    let meta_rec = BlobMeta {
        size: bytes.len() as u64,
        content_type: content_type.to_string(),
        chunks,
        created_at: ctx.now_ms,
    };
    ctx.t.blobs.insert(hash, encode(&meta_rec).as_slice())?;
    ctx.add(meta::BLOBS, 1)?;
    ctx.add(meta::BLOB_BYTES, bytes.len() as u64)
}

/// Merkle root and row count of version `v` of a datanet, read inside the write.
fn version_root(ctx: &WriteCtx<'_>, datanet: u64, v: u64) -> Result<(Hash, u64)> {
    let m = &ctx.t.membership;
    let mut hashes = Vec::new();
    for e in m.range((datanet, 0)..=(datanet, u64::MAX))? {
        let (_, val) = e?;
        let (added, removed, hash) = val.value();
        if added <= v && v < removed {
            hashes.push(hash);
        }
    }
    let n = hashes.len() as u64;
    Ok((merkle::root(hashes), n))
}

/// A page of rows with their membership, and the row id to continue after when there may be
/// more.
pub type RowPage<M> = (Vec<(Row, M)>, Option<u64>);

/// A consistent read-only view of the store.
pub struct Snapshot {
    txn: ReadTransaction,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

/// Totals over the whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datanets.
    pub datanets: u64,
    /// Contributions.
    pub contributions: u64,
    /// Rows (pending and accepted).
    pub rows: u64,
    /// Versions over all datanets.
    pub versions: u64,
    /// Distinct blobs.
    pub blobs: u64,
    /// Bytes in distinct blobs.
    pub blob_bytes: u64,
    /// Last change sequence number.
    pub seq: u64,
}

/// Filter for listing contributions.
#[derive(Debug, Clone, Default)]
pub struct ContributionFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this contributor.
    pub contributor: Option<Address>,
}

/// The difference between two versions of a datanet.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Rows in `to` and not in `from` (this page).
    pub added: Vec<(Row, Membership)>,
    /// Rows in `from` and not in `to` (this page).
    pub removed: Vec<(Row, Membership)>,
    /// All rows added.
    pub added_count: u64,
    /// All rows removed.
    pub removed_count: u64,
    /// Row id to continue after, when the page is full.
    pub next_cursor: Option<u64>,
}

impl Snapshot {
    pub(crate) fn txn(&self) -> &ReadTransaction {
        &self.txn
    }

    fn meta(&self, key: &str) -> Result<u64> {
        let t = self.txn.open_table(tables::META)?;
        Ok(t.get(key)?.map(|v| v.value()).unwrap_or(0))
    }

    /// Totals.
    pub fn stats(&self) -> Result<Stats> {
        Ok(Stats {
            datanets: self.meta(meta::NEXT_DATANET)?.saturating_sub(1),
            contributions: self.meta(meta::NEXT_CONTRIBUTION)?.saturating_sub(1),
            rows: self.meta(meta::NEXT_ROW)?.saturating_sub(1),
            versions: self.meta(meta::VERSIONS)?,
            blobs: self.meta(meta::BLOBS)?,
            blob_bytes: self.meta(meta::BLOB_BYTES)?,
            seq: self.meta(meta::SEQ)?,
        })
    }

    /// Schema version stamped in the database.
    pub fn schema_version(&self) -> Result<u64> {
        self.meta(meta::SCHEMA_VERSION)
    }

    /// Datanet by slug.
    pub fn datanet(&self, slug: &str) -> Result<Datanet> {
        let id = self
            .txn
            .open_table(tables::DATANET_SLUGS)?
            .get(slug)?
            .map(|v| v.value())
            .ok_or_else(|| Error::not_found("datanet", slug))?;
        self.datanet_by_id(id)
    }

    /// Datanet by id.
    pub fn datanet_by_id(&self, id: u64) -> Result<Datanet> {
        let t = self.txn.open_table(tables::DATANETS)?;
        let v = t.get(id)?.ok_or_else(|| Error::not_found("datanet", id))?;
        decode(v.value())
    }

    /// Datanets with id greater than `after`, at most `limit`, filtered.
    pub fn datanets(
        &self,
        after: u64,
        limit: usize,
        filter: impl Fn(&Datanet) -> bool,
    ) -> Result<Vec<Datanet>> {
        let t = self.txn.open_table(tables::DATANETS)?;
        let mut out = Vec::new();
        for e in t.range(after.saturating_add(1)..)? {
            let (_, v) = e?;
            let d: Datanet = decode(v.value())?;
            if filter(&d) {
                out.push(d);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The edit history of a datanet, oldest first.
    pub fn edits(&self, datanet: u64) -> Result<Vec<Edit>> {
        let t = self.txn.open_table(tables::EDITS)?;
        let mut out = Vec::new();
        for e in t.range((datanet, 0)..=(datanet, u64::MAX))? {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }

    /// All versions of a datanet, newest first.
    pub fn versions(&self, datanet: u64) -> Result<Vec<Version>> {
        let t = self.txn.open_table(tables::VERSIONS)?;
        let mut out = Vec::new();
        for e in t.range((datanet, 0)..=(datanet, u64::MAX))?.rev() {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }

    /// One version.
    pub fn version(&self, datanet: u64, number: u64) -> Result<Version> {
        let t = self.txn.open_table(tables::VERSIONS)?;
        let v = t
            .get((datanet, number))?
            .ok_or_else(|| Error::not_found("version", number))?;
        decode(v.value())
    }

    /// Row by id.
    pub fn row(&self, id: u64) -> Result<Row> {
        let t = self.txn.open_table(tables::ROWS)?;
        let v = t.get(id)?.ok_or_else(|| Error::not_found("row", id))?;
        decode(v.value())
    }

    /// Where a row stands in its datanet's versions (`None` while not accepted).
    pub fn membership(&self, datanet: u64, row: u64) -> Result<Option<Membership>> {
        let t = self.txn.open_table(tables::MEMBERSHIP)?;
        Ok(t.get((datanet, row))?.map(|g| {
            let (a, r, _) = g.value();
            Membership {
                added_in: a,
                removed_in: (r != u64::MAX).then_some(r),
            }
        }))
    }

    /// Rows of `version` with id greater than `after`, in id order, at most `limit`.
    /// Returns the page and the cursor to continue from when there may be more.
    pub fn version_rows(
        &self,
        datanet: u64,
        version: u64,
        after: u64,
        limit: usize,
    ) -> Result<RowPage<Membership>> {
        let m = self.txn.open_table(tables::MEMBERSHIP)?;
        let rows = self.txn.open_table(tables::ROWS)?;
        let mut out: Vec<(Row, Membership)> = Vec::with_capacity(limit.min(4096));
        for e in m.range((datanet, after.saturating_add(1))..=(datanet, u64::MAX))? {
            let (k, v) = e?;
            let (added, removed, _) = v.value();
            if !(added <= version && version < removed) {
                continue;
            }
            if out.len() == limit {
                let last = out[out.len() - 1].0.id;
                return Ok((out, Some(last)));
            }
            let id = k.value().1;
            let row: Row = match rows.get(id)? {
                Some(g) => decode(g.value())?,
                None => return Err(Error::Internal(format!("member row {id} is missing"))),
            };
            out.push((
                row,
                Membership {
                    added_in: added,
                    removed_in: (removed != u64::MAX).then_some(removed),
                },
            ));
        }
        Ok((out, None))
    }

    /// Rows of a contribution with id greater than `after`.
    pub fn contribution_rows(
        &self,
        c: &Contribution,
        after: u64,
        limit: usize,
    ) -> Result<RowPage<Option<Membership>>> {
        let rows = self.txn.open_table(tables::ROWS)?;
        let start = c.first_row.max(after.saturating_add(1));
        let end = c.first_row + c.row_count;
        let mut out = Vec::new();
        for e in rows.range(start..end)? {
            let (_, v) = e?;
            let row: Row = decode(v.value())?;
            let m = self.membership(c.datanet, row.id)?;
            out.push((row, m));
            if out.len() == limit {
                let last = out[out.len() - 1].0.id;
                return Ok((out, (last + 1 < end).then_some(last)));
            }
        }
        Ok((out, None))
    }

    /// Rows in `to` but not `from` and the other way round, by row id after `after`.
    pub fn diff(&self, datanet: u64, from: u64, to: u64, after: u64, limit: usize) -> Result<Diff> {
        self.diff_page(datanet, from, to, after, limit, None)
    }

    /// A page of [`Snapshot::diff`] when the counts are known from an earlier page (versions
    /// never change, so neither do the counts between two of them): the scan starts after
    /// the cursor and stops at the end of the page instead of walking the whole datanet.
    pub fn diff_page(
        &self,
        datanet: u64,
        from: u64,
        to: u64,
        after: u64,
        limit: usize,
        counts: Option<(u64, u64)>,
    ) -> Result<Diff> {
        let m = self.txn.open_table(tables::MEMBERSHIP)?;
        let rows = self.txn.open_table(tables::ROWS)?;
        let (added_count, removed_count) = counts.unwrap_or((0, 0));
        let mut d = Diff {
            added: vec![],
            removed: vec![],
            added_count,
            removed_count,
            next_cursor: None,
        };
        let start = match counts {
            Some(_) => after.saturating_add(1),
            None => 0,
        };
        for e in m.range((datanet, start)..=(datanet, u64::MAX))? {
            let (k, v) = e?;
            let (added, removed, _) = v.value();
            let mem = Membership {
                added_in: added,
                removed_in: (removed != u64::MAX).then_some(removed),
            };
            let (in_from, in_to) = (mem.in_version(from), mem.in_version(to));
            if in_from == in_to {
                continue;
            }
            if counts.is_none() {
                if in_to {
                    d.added_count += 1;
                } else {
                    d.removed_count += 1;
                }
            }
            let id = k.value().1;
            if id <= after || d.next_cursor.is_some() {
                continue;
            }
            if d.added.len() + d.removed.len() == limit {
                d.next_cursor = d
                    .added
                    .iter()
                    .chain(d.removed.iter())
                    .map(|(r, _)| r.id)
                    .max();
                if counts.is_some() {
                    break;
                }
                continue;
            }
            let row: Row = match rows.get(id)? {
                Some(g) => decode(g.value())?,
                None => return Err(Error::Internal(format!("member row {id} is missing"))),
            };
            if in_to {
                d.added.push((row, mem));
            } else {
                d.removed.push((row, mem));
            }
        }
        Ok(d)
    }

    /// Contribution by id.
    pub fn contribution(&self, id: u64) -> Result<Contribution> {
        let t = self.txn.open_table(tables::CONTRIBUTIONS)?;
        let v = t
            .get(id)?
            .ok_or_else(|| Error::not_found("contribution", id))?;
        decode(v.value())
    }

    /// Contributions of a datanet with id greater than `after`, filtered, at most `limit`.
    pub fn contributions(
        &self,
        datanet: u64,
        filter: &ContributionFilter,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Contribution>, Option<u64>)> {
        let idx = self.txn.open_table(tables::CONTRIBUTIONS_BY_DATANET)?;
        let mut out = Vec::new();
        for e in idx.range((datanet, after.saturating_add(1))..=(datanet, u64::MAX))? {
            let (k, v) = e?;
            if let Some(s) = filter.status
                && s.code() != v.value()
            {
                continue;
            }
            let c = self.contribution(k.value().1)?;
            if let Some(a) = filter.contributor
                && a != c.contributor
            {
                continue;
            }
            if out.len() == limit {
                let last = out.last().map(|c: &Contribution| c.id);
                return Ok((out, last));
            }
            out.push(c);
        }
        Ok((out, None))
    }

    /// A contributor's contributions over all datanets, id greater than `after`.
    pub fn contributions_by(
        &self,
        who: &Address,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Contribution>, Option<u64>)> {
        let idx = self.txn.open_table(tables::CONTRIBUTIONS_BY_CONTRIBUTOR)?;
        let mut out = Vec::new();
        for e in idx.range((*who, after.saturating_add(1))..=(*who, u64::MAX))? {
            let (k, _) = e?;
            if out.len() == limit {
                let last = out.last().map(|c: &Contribution| c.id);
                return Ok((out, last));
            }
            out.push(self.contribution(k.value().1)?);
        }
        Ok((out, None))
    }

    /// A contributor's totals.
    pub fn contributor(&self, who: &Address) -> Result<ContributorStats> {
        let t = self.txn.open_table(tables::CONTRIBUTORS)?;
        match t.get(who)? {
            Some(v) => decode(v.value()),
            None => Ok(ContributorStats::default()),
        }
    }

    /// Blob metadata.
    pub fn blob_meta(&self, hash: &Hash) -> Result<BlobMeta> {
        let t = self.txn.open_table(tables::BLOBS)?;
        let v = t
            .get(hash)?
            .ok_or_else(|| Error::not_found("blob", hex::encode(hash)))?;
        decode(v.value())
    }

    /// A blob's bytes, checked against its hash.
    pub fn blob(&self, hash: &Hash) -> Result<(BlobMeta, Vec<u8>)> {
        let meta_rec = self.blob_meta(hash)?;
        let t = self.txn.open_table(tables::BLOB_CHUNKS)?;
        let mut bytes = Vec::with_capacity(meta_rec.size as usize);
        for e in t.range((*hash, 0)..=(*hash, u32::MAX))? {
            bytes.extend_from_slice(e?.1.value());
        }
        if bytes.len() as u64 != meta_rec.size || blake3::hash(&bytes).as_bytes() != hash {
            return Err(Error::Corrupt(format!(
                "blob {} does not match its hash",
                hex::encode(hash)
            )));
        }
        Ok((meta_rec, bytes))
    }

    /// Console user by name.
    pub fn user(&self, username: &str) -> Result<User> {
        let t = self.txn.open_table(tables::USERS)?;
        let v = t
            .get(username)?
            .ok_or_else(|| Error::not_found("user", username))?;
        decode(v.value())
    }

    /// All console users.
    pub fn users(&self) -> Result<Vec<User>> {
        let t = self.txn.open_table(tables::USERS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }

    /// Session by token hash, if present and not expired.
    pub fn session(&self, token_hash: &Hash, now_ms: u64) -> Result<Option<Session>> {
        let t = self.txn.open_table(tables::SESSIONS)?;
        match t.get(token_hash)? {
            Some(v) => {
                let s: Session = decode(v.value())?;
                Ok((s.expires_at > now_ms).then_some(s))
            }
            None => Ok(None),
        }
    }

    /// Change-log entries after `seq`, at most `limit`.
    pub fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        let t = self.txn.open_table(tables::CHANGES)?;
        let mut out = Vec::new();
        for e in t.range(seq.saturating_add(1)..)? {
            out.push(decode(e?.1.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Number of rows stored (pending included).
    pub fn row_table_len(&self) -> Result<u64> {
        Ok(self.txn.open_table(tables::ROWS)?.len()?)
    }
}

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Contributions checked.
    pub contributions: u64,
    /// Rows checked.
    pub rows: u64,
    /// Blobs checked against their hashes.
    pub blobs: u64,
    /// Every inconsistency, in words.
    pub problems: Vec<String>,
}

impl Store {
    /// Check that every contribution has all its rows and its blob, every blob matches its
    /// hash, and the counters agree with the tables.
    pub fn verify(&self) -> Result<VerifyReport> {
        let snap = self.snapshot()?;
        let mut rep = VerifyReport::default();
        let contributions = snap.txn.open_table(tables::CONTRIBUTIONS)?;
        let rows = snap.txn.open_table(tables::ROWS)?;
        for e in contributions.iter()? {
            let (_, v) = e?;
            let c: Contribution = decode(v.value())?;
            rep.contributions += 1;
            for id in c.first_row..c.first_row + c.row_count {
                match rows.get(id)? {
                    Some(r) => {
                        let r: Row = decode(r.value())?;
                        if r.contribution != c.id
                            || blake3::hash(r.text.as_bytes()).as_bytes() != &r.hash
                        {
                            rep.problems.push(format!("row {id} does not belong to contribution {} or does not match its hash", c.id));
                        }
                        rep.rows += 1;
                    }
                    None => rep
                        .problems
                        .push(format!("contribution {} lacks row {id}", c.id)),
                }
            }
            if let Err(e) = snap.blob_meta(&c.file_hash) {
                rep.problems
                    .push(format!("contribution {} lacks its blob: {e}", c.id));
            }
        }
        let blobs = snap.txn.open_table(tables::BLOBS)?;
        for e in blobs.iter()? {
            let (k, _) = e?;
            rep.blobs += 1;
            if let Err(e) = snap.blob(&k.value()) {
                rep.problems.push(e.to_string());
            }
        }
        let stats = snap.stats()?;
        if stats.contributions != rep.contributions {
            rep.problems.push(format!(
                "counter says {} contributions, table has {}",
                stats.contributions, rep.contributions
            ));
        }
        if stats.rows != rows.len()? {
            rep.problems.push(format!(
                "counter says {} rows, table has {}",
                stats.rows,
                rows.len()?
            ));
        }
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn signed(n: u64) -> SignedBy {
        let mut nonce = [0u8; 32];
        nonce[24..].copy_from_slice(&n.to_be_bytes());
        SignedBy {
            signer: [1; 20],
            nonce,
            deadline: u64::MAX,
            signature: vec![0; 65],
        }
    }

    fn signed_by(who: u8, n: u64) -> SignedBy {
        SignedBy {
            signer: [who; 20],
            ..signed(n)
        }
    }

    fn store(limits: Limits) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::create_fresh(&dir.path().join("t.redb"), limits).expect("store");
        (dir, s)
    }

    fn datanet(s: &Store, slug: &str, n: u64) -> Datanet {
        s.create_datanet(NewDatanet {
            slug: slug.into(),
            name: slug.into(),
            summary: String::new(),
            description: String::new(),
            tags: vec![],
            kind: DataKind::Text,
            private: false,
            signed: signed(n),
        })
        .expect("create")
    }

    fn contribution(slug: &str, rows: &[String], n: u64) -> NewContribution {
        let bytes = rows.join("\n\n").into_bytes();
        NewContribution {
            datanet: slug.into(),
            file_name: "f.txt".into(),
            file_hash: *blake3::hash(&bytes).as_bytes(),
            bytes,
            format: Format::Txt,
            rows: rows.to_vec(),
            signed: signed_by(2, n),
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random contributions, reviews and take-downs against a model: every version, read at
    /// any later time, holds exactly the rows the model says, and its root commits to them.
    #[test]
    fn versions_read_the_same_forever() {
        let (_d, s) = store(Limits {
            daily_files_per_contributor: u64::MAX,
            daily_bytes_per_contributor: u64::MAX,
            daily_bytes_per_datanet: u64::MAX,
            ..Limits::default()
        });
        let dn = datanet(&s, "model", 1);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut nonce = 10;
        // model: version -> ordered row ids -> text
        let mut versions: BTreeMap<u64, BTreeMap<u64, String>> = BTreeMap::new();
        let mut current: BTreeMap<u64, String> = BTreeMap::new();
        let mut pending: Vec<(u64, Vec<(u64, String)>)> = vec![];
        for step in 0..300 {
            nonce += 1;
            match rng.next() % 4 {
                0 | 1 => {
                    let n = 1 + rng.next() % 4;
                    let rows: Vec<String> = (0..n).map(|i| format!("row {step}.{i}")).collect();
                    let c = s
                        .contribute(contribution("model", &rows, nonce))
                        .expect("contribute");
                    let ids = (c.first_row..c.first_row + c.row_count).zip(rows).collect();
                    pending.push((c.id, ids));
                }
                2 if !pending.is_empty() => {
                    let take = 1 + (rng.next() as usize % pending.len());
                    let batch: Vec<_> = pending.drain(..take).collect();
                    let accept = !rng.next().is_multiple_of(3);
                    let o = s
                        .review(ReviewRequest {
                            datanet: "model".into(),
                            contributions: batch.iter().map(|b| b.0).collect(),
                            accept,
                            reason: None,
                            signed: signed(nonce),
                        })
                        .expect("review");
                    if accept {
                        for (_, rows) in batch {
                            current.extend(rows);
                        }
                        let v = o.version.expect("version");
                        versions.insert(v.number, current.clone());
                    } else {
                        assert!(o.version.is_none());
                    }
                }
                3 if !current.is_empty() => {
                    let ids: Vec<u64> = current.keys().copied().collect();
                    let pick = ids[rng.next() as usize % ids.len()];
                    let v = s
                        .take_down(TakeDownRequest {
                            datanet: "model".into(),
                            rows: vec![pick],
                            reason: "test".into(),
                            signed: signed(nonce),
                        })
                        .expect("take down");
                    current.remove(&pick);
                    versions.insert(v.number, current.clone());
                }
                _ => {}
            }
            if step % 50 == 49 {
                let snap = s.snapshot().expect("snapshot");
                for (&number, want) in &versions {
                    let mut got = BTreeMap::new();
                    let mut cursor = 0;
                    loop {
                        let (page, next) =
                            snap.version_rows(dn.id, number, cursor, 7).expect("rows");
                        for (r, m) in page {
                            assert!(m.in_version(number));
                            got.insert(r.id, r.text);
                        }
                        match next {
                            Some(c) => cursor = c,
                            None => break,
                        }
                    }
                    assert_eq!(&got, want, "version {number}");
                    let v = snap.version(dn.id, number).expect("version");
                    let hashes = want
                        .values()
                        .map(|t| *blake3::hash(t.as_bytes()).as_bytes())
                        .collect();
                    assert_eq!(v.root, merkle::root(hashes), "root of version {number}");
                    assert_eq!(v.row_count, want.len() as u64);
                }
                // diffs between consecutive versions match the model
                let nums: Vec<u64> = versions.keys().copied().collect();
                for w in nums.windows(2) {
                    let d = snap.diff(dn.id, w[0], w[1], 0, 10_000).expect("diff");
                    let (a, b) = (&versions[&w[0]], &versions[&w[1]]);
                    let added: Vec<u64> =
                        b.keys().filter(|k| !a.contains_key(k)).copied().collect();
                    let removed: Vec<u64> =
                        a.keys().filter(|k| !b.contains_key(k)).copied().collect();
                    assert_eq!(d.added.iter().map(|r| r.0.id).collect::<Vec<_>>(), added);
                    assert_eq!(
                        d.removed.iter().map(|r| r.0.id).collect::<Vec<_>>(),
                        removed
                    );
                    assert_eq!(
                        (d.added_count, d.removed_count),
                        (added.len() as u64, removed.len() as u64)
                    );
                    // Paging, later pages with the counts known, gives the same rows.
                    let first = snap.diff(dn.id, w[0], w[1], 0, 3).expect("diff");
                    let counts = (first.added_count, first.removed_count);
                    let mut ids: Vec<u64> = first
                        .added
                        .iter()
                        .chain(&first.removed)
                        .map(|r| r.0.id)
                        .collect();
                    let mut cursor = first.next_cursor;
                    while let Some(c) = cursor {
                        let p = snap
                            .diff_page(dn.id, w[0], w[1], c, 3, Some(counts))
                            .expect("page");
                        assert_eq!((p.added_count, p.removed_count), counts);
                        assert!(p.added.len() + p.removed.len() <= 3);
                        ids.extend(p.added.iter().chain(&p.removed).map(|r| r.0.id));
                        cursor = p.next_cursor;
                    }
                    ids.sort_unstable();
                    let mut want: Vec<u64> = added.iter().chain(&removed).copied().collect();
                    want.sort_unstable();
                    assert_eq!(ids, want);
                }
            }
        }
        assert!(versions.len() > 10, "the walk made too few versions");
        let rep = s.verify().expect("verify");
        assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    }

    #[test]
    fn refusals_leave_no_trace() {
        let (_d, s) = store(Limits {
            daily_files_per_contributor: 2,
            ..Limits::default()
        });
        datanet(&s, "qq", 1);
        let before = s.snapshot().expect("snap").stats().expect("stats");
        // duplicate slug
        assert!(matches!(
            s.create_datanet(NewDatanet {
                slug: "qq".into(),
                name: "x".into(),
                summary: String::new(),
                description: String::new(),
                tags: vec![],
                kind: DataKind::Text,
                private: false,
                signed: signed(2),
            }),
            Err(Error::SlugTaken(_))
        ));
        // reused nonce
        assert!(matches!(
            s.create_datanet(NewDatanet {
                slug: "other".into(),
                name: "x".into(),
                summary: String::new(),
                description: String::new(),
                tags: vec![],
                kind: DataKind::Text,
                private: false,
                signed: signed(1),
            }),
            Err(Error::NonceReused { .. })
        ));
        assert_eq!(s.snapshot().expect("snap").stats().expect("stats"), before);
        s.contribute(contribution("qq", &["a".into()], 10))
            .expect("1");
        s.contribute(contribution("qq", &["b".into()], 11))
            .expect("2");
        let mid = s.snapshot().expect("snap").stats().expect("stats");
        match s.contribute(contribution("qq", &["c".into()], 12)) {
            Err(Error::QuotaExceeded { reset_at_ms, .. }) => assert!(reset_at_ms > crate::now_ms()),
            other => panic!("expected a quota error, got {other:?}"),
        }
        assert_eq!(s.snapshot().expect("snap").stats().expect("stats"), mid);
        // the quota refusal did not consume the nonce
        let rej = s
            .review(ReviewRequest {
                datanet: "qq".into(),
                contributions: vec![1],
                accept: false,
                reason: Some("no".into()),
                signed: signed(20),
            })
            .expect("reject");
        assert_eq!(rej.contributions[0].status, Status::Rejected);
        assert!(matches!(
            s.review(ReviewRequest {
                datanet: "qq".into(),
                contributions: vec![1],
                accept: true,
                reason: None,
                signed: signed(21),
            }),
            Err(Error::InvalidState(_))
        ));
        assert!(matches!(
            s.review(ReviewRequest {
                datanet: "qq".into(),
                contributions: vec![2],
                accept: true,
                reason: None,
                signed: signed_by(9, 22),
            }),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            s.contribute(NewContribution {
                file_hash: [0; 32],
                ..contribution("qq", &["z".into()], 30)
            }),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn a_batch_stores_each_file_on_its_own() {
        let (_d, s) = store(Limits {
            daily_files_per_contributor: 3,
            ..Limits::default()
        });
        let dn = datanet(&s, "bulk", 1);
        let before = s.snapshot().expect("snap").stats().expect("stats");
        let mut forged_hash = contribution("bulk", &["forged".into()], 13);
        forged_hash.file_hash = [7; 32];
        let out = s
            .contribute_many(vec![
                contribution("bulk", &["one".into(), "two".into()], 10),
                contribution("bulk", &["again".into()], 10),
                forged_hash,
                contribution("nope", &["x".into()], 14),
                contribution("bulk", &["three".into()], 11),
                contribution("bulk", &["four".into()], 12),
                contribution("bulk", &["five".into()], 15),
            ])
            .expect("batch");
        let kinds: Vec<&str> = out
            .iter()
            .map(|r| match r {
                Ok(_) => "ok",
                Err(Error::NonceReused { .. }) => "nonce",
                Err(Error::Invalid(_)) => "invalid",
                Err(Error::NotFound { .. }) => "not_found",
                Err(Error::QuotaExceeded { .. }) => "quota",
                Err(_) => "other",
            })
            .collect();
        // The nonce used earlier in the batch and the quota filled earlier in the batch count.
        assert_eq!(
            kinds,
            ["ok", "nonce", "invalid", "not_found", "ok", "ok", "quota"]
        );
        let snap = s.snapshot().expect("snap");
        let after = snap.stats().expect("stats");
        assert_eq!(after.contributions, before.contributions + 3);
        assert_eq!(after.rows, before.rows + 4);
        let d = snap.datanet("bulk").expect("datanet");
        assert_eq!((d.contribution_count, d.pending_count), (3, 3));
        assert_eq!(d.id, dn.id);
        let who = snap.contributor(&[2; 20]).expect("contributor");
        assert_eq!((who.contributions, who.pending, who.rows), (3, 3, 4));
        let ids: Vec<u64> = out.iter().flatten().map(|c| c.id).collect();
        for id in ids {
            let c = snap.contribution(id).expect("contribution");
            let rows = snap.contribution_rows(&c, 0, 100).expect("rows").0;
            assert_eq!(rows.len() as u64, c.row_count);
        }
    }

    #[test]
    fn blobs_are_stored_once_and_checked_on_read() {
        let (_d, s) = store(Limits::default());
        datanet(&s, "bb", 1);
        let big: String = "x".repeat(BLOB_CHUNK + 10);
        let c1 = s
            .contribute(contribution("bb", std::slice::from_ref(&big), 2))
            .expect("c1");
        let c2 = s.contribute(contribution("bb", &[big], 3)).expect("c2");
        assert_eq!(c1.file_hash, c2.file_hash);
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.stats().expect("stats").blobs, 1);
        let (m, bytes) = snap.blob(&c1.file_hash).expect("blob");
        assert_eq!(m.chunks, 2);
        assert_eq!(bytes.len() as u64, c1.size);
    }

    #[test]
    fn concurrent_writers_share_commits_and_lose_nothing() {
        let (_d, s) = store(Limits {
            daily_files_per_contributor: u64::MAX,
            daily_bytes_per_contributor: u64::MAX,
            daily_bytes_per_datanet: u64::MAX,
            ..Limits::default()
        });
        datanet(&s, "cc", 1);
        let s = std::sync::Arc::new(s);
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        s.contribute(contribution(
                            "cc",
                            &[format!("t{t} i{i}")],
                            1000 + t * 100 + i,
                        ))
                        .expect("contribute");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.stats().expect("stats").contributions, 400);
        assert_eq!(snap.changes_after(0, 10_000).expect("changes").len(), 401);
    }

    #[test]
    fn slugs() {
        assert!(valid_slug("med-qa"));
        assert!(valid_slug("a1"));
        assert!(!valid_slug("a"));
        assert!(!valid_slug("-a"));
        assert!(!valid_slug("Med"));
        assert!(!valid_slug("a_b"));
        assert!(!valid_slug(&"a".repeat(64)));
    }
}
