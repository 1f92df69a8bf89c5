//! Schema steps for the Commons redb database.
//!
//! [`open`] is how the appliance opens its data dir: it creates a new database at the current
//! schema, upgrades an older one — all steps in **one** write transaction, so a crash leaves
//! either the old schema or the new one — and refuses a database stamped by a newer binary.
//! Each step is a module with a fixture data dir written by the release that used that
//! schema; the tests open and upgrade those fixtures.

use std::path::Path;

use commons_storage::tables::{self, meta};
use redb::{Database, ReadableDatabase, WriteTransaction};

mod v1;
mod v2;
mod v3;

/// The schema this build writes; equal to the storage crate's.
pub const CURRENT: u64 = commons_storage::SCHEMA_VERSION;

/// What can go wrong while opening or upgrading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// redb could not open or write the file.
    #[error("database error: {0}")]
    Db(#[from] Box<redb::Error>),
    /// The database comes from a newer Commons.
    #[error(
        "the database at {path} has schema version {found}, newer than this binary's {CURRENT}: run a newer Commons or restore a backup"
    )]
    Newer {
        /// The database file.
        path: String,
        /// Its schema version.
        found: u64,
    },
    /// No step leads from this version.
    #[error("no upgrade step from schema version {0}")]
    NoStep(u64),
}

/// Result with the migrations [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// One upgrade step: from `to - 1` to `to`.
struct Step {
    to: u64,
    run: fn(&WriteTransaction) -> Result<()>,
}

const STEPS: &[Step] = &[
    Step { to: 1, run: v1::up },
    Step { to: 2, run: v2::up },
    Step { to: 3, run: v3::up },
];

/// Schema version stamped in `db` (0 for a new, empty database).
pub fn schema_version(db: &Database) -> Result<u64> {
    let r = db.begin_read()?;
    match r.open_table(tables::META) {
        Ok(t) => Ok(t.get(meta::SCHEMA_VERSION)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Open (or create) the database at `path` and bring it to [`CURRENT`]. Returns the database
/// and the version it had before.
pub fn open(path: &Path) -> Result<(Database, u64)> {
    let db = Database::create(path)?;
    let found = schema_version(&db)?;
    if found > CURRENT {
        return Err(Error::Newer {
            path: path.display().to_string(),
            found,
        });
    }
    if found < CURRENT {
        let txn = db.begin_write()?;
        let mut at = found;
        while at < CURRENT {
            let step = STEPS
                .iter()
                .find(|s| s.to == at + 1)
                .ok_or(Error::NoStep(at))?;
            (step.run)(&txn)?;
            at = step.to;
        }
        txn.open_table(tables::META)?
            .insert(meta::SCHEMA_VERSION, CURRENT)?;
        txn.commit()?;
        tracing::info!(from = found, to = CURRENT, "database schema upgraded");
    }
    Ok((db, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_database_gets_current_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("commons.redb");
        let (db, before) = open(&p).expect("open");
        assert_eq!(before, 0);
        assert_eq!(schema_version(&db).expect("version"), CURRENT);
        drop(db);
        let (_, before) = open(&p).expect("reopen");
        assert_eq!(before, CURRENT);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("commons.redb");
        {
            let db = Database::create(&p).expect("create");
            let w = db.begin_write().expect("write");
            w.open_table(tables::META)
                .expect("meta")
                .insert(meta::SCHEMA_VERSION, CURRENT + 1)
                .expect("insert");
            w.commit().expect("commit");
        }
        let err = open(&p).expect_err("newer must be refused");
        assert!(matches!(err, Error::Newer { found, .. } if found == CURRENT + 1));
        assert!(err.to_string().contains("newer than this binary"));
    }

    /// The fixture data dir written by schema 1 opens, reads and accepts writes.
    #[test]
    fn fixture_v1_opens_and_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("commons.redb");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/v1/commons.redb"),
            &p,
        )
        .expect("copy fixture");
        let (db, before) = open(&p).expect("open fixture");
        assert_eq!(before, 1);
        let store = commons_storage::Store::from_database(db, Default::default()).expect("store");
        let snap = store.snapshot().expect("snapshot");
        let dn = snap.datanet("fixture-v1").expect("fixture datanet");
        assert_eq!(dn.latest_version, 1);
        let (rows, _) = snap.version_rows(dn.id, 1, 0, 100).expect("rows");
        let texts: Vec<_> = rows.iter().map(|(r, _)| r.text.as_str()).collect();
        assert_eq!(texts, v1::FIXTURE_ROWS);
        let v = snap.version(dn.id, 1).expect("version");
        let hashes = rows.iter().map(|(r, _)| r.hash).collect();
        assert_eq!(v.root, commons_storage::merkle::root(hashes));
        // Schema 2's tables exist after the upgrade and take writes.
        assert!(snap.adapters().expect("adapters").is_empty());
        store
            .put_api_key(
                [3; 32],
                commons_storage::serving::ApiKeyRecord {
                    name: "k".into(),
                    prefix: "ck".into(),
                    admin: false,
                    created_at: 0,
                },
            )
            .expect("write to a v2 table");
    }
}
