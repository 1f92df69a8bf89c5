//! `version_rows`: which rows each version of each datanet holds (a row is in version `v`
//! when `added_in <= v < removed_in`).

use std::sync::Arc;

use commons_storage::model::Datanet;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use super::datanet_ids;
use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, key};

#[derive(Debug)]
pub(crate) struct VersionRows(SchemaRef);

impl VersionRows {
    pub(crate) fn new() -> Self {
        VersionRows(Arc::new(Schema::new(vec![
            key("datanet", DataType::Int64),
            key("version", DataType::Int64),
            key("row_id", DataType::Int64),
        ])))
    }
}

impl Table for VersionRows {
    fn name(&self) -> &'static str {
        "version_rows"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[
            ("datanet", KeyKind::Num),
            ("version", KeyKind::Num),
            ("row_id", KeyKind::Num),
        ]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let m = txn.open_table(tables::MEMBERSHIP)?;
        let dn = txn.open_table(tables::DATANETS)?;
        let (ver, rid) = (keys.num("version"), keys.num("row_id"));
        for d in datanet_ids(txn, &keys.num("datanet"))? {
            let Some(g) = dn.get(d)? else { continue };
            let latest = decode::<Datanet>(g.value())?.latest_version;
            let visit = |row: u64, added: u64, removed: u64, out: &mut Out| {
                let last = removed.saturating_sub(1).min(latest).min(ver.hi);
                let mut v = added.max(ver.lo);
                while v <= last {
                    if ver.contains(v) {
                        out.int(0, Some(d));
                        out.int(1, Some(v));
                        out.int(2, Some(row));
                        if !out.row() {
                            return false;
                        }
                    }
                    v += 1;
                }
                true
            };
            if let Some(ids) = rid.values() {
                for id in ids {
                    if let Some(g) = m.get((d, id))? {
                        let (a, r, _) = g.value();
                        if !visit(id, a, r, out) {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            for e in m.range((d, rid.lo)..=(d, rid.hi.max(rid.lo)))? {
                let (k, v) = e?;
                let (a, r, _) = v.value();
                if !visit(k.value().1, a, r, out) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
