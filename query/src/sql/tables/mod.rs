//! The SQL tables, one module each. Adding a table: write a module with a type implementing
//! [`Table`](super::scan::Table) and list it in [`all`].

use std::sync::Arc;

use super::scan::Table;

mod contributions;
mod contributors;
mod datanet_tags;
mod datanets;
mod edits;
mod rows;
mod version_rows;
mod versions;

/// Every table the SQL engine registers.
pub(crate) fn all() -> Vec<Arc<dyn Table>> {
    vec![
        Arc::new(datanets::Datanets::new()),
        Arc::new(datanet_tags::DatanetTags::new()),
        Arc::new(contributions::Contributions::new()),
        Arc::new(rows::Rows::new()),
        Arc::new(versions::Versions::new()),
        Arc::new(version_rows::VersionRows::new()),
        Arc::new(contributors::Contributors::new()),
        Arc::new(edits::Edits::new()),
    ]
}

/// Iterate the datanets a scan may touch: the named ids, or all of them.
pub(crate) fn datanet_ids(
    txn: &redb::ReadTransaction,
    keys: &super::scan::U64Keys,
) -> super::scan::ScanResult<Vec<u64>> {
    use commons_storage::tables;
    if let Some(v) = keys.values() {
        return Ok(v);
    }
    let t = txn.open_table(tables::DATANETS)?;
    let mut out = Vec::new();
    for e in t.range(keys.lo..=keys.hi.max(keys.lo))? {
        out.push(e?.0.value());
    }
    Ok(out)
}
