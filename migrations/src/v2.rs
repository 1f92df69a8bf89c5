//! Schema 2: the serving tables — `adapters` (LoRA adapters registered for OpenLoRA, their
//! files kept as blobs) and `api_keys` (hashed keys for the OpenAI-compatible routes).
//! Nothing existing changes, so the step only creates the tables.

use redb::WriteTransaction;

pub(crate) fn up(txn: &WriteTransaction) -> crate::Result<()> {
    commons_storage::tables::create_v2(txn)?;
    Ok(())
}
