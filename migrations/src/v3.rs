//! Schema 3: `ledger_anchors` — for each datanet version, the DatanetRegistry transaction
//! that publishes its root (and for version 0, the datanet's registration). Nothing existing
//! changes, so the step only creates the table.

use redb::WriteTransaction;

pub(crate) fn up(txn: &WriteTransaction) -> crate::Result<()> {
    commons_storage::tables::create_v3(txn)?;
    Ok(())
}
