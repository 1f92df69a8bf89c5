//! Schema 1: the first released schema — every table of `commons_storage::tables`.
//!
//! Fixture: `fixtures/v1/commons.redb`, written by `cargo run -p commons-migrations --example
//! make_fixture_v1` with this schema: one datanet `fixture-v1` with one accepted version.

use redb::WriteTransaction;

/// The rows of the fixture's version 1, in order.
#[cfg(test)]
pub(crate) const FIXTURE_ROWS: &[&str] = &["first paragraph", "second paragraph"];

pub(crate) fn up(txn: &WriteTransaction) -> crate::Result<()> {
    commons_storage::tables::create_all(txn)?;
    Ok(())
}
