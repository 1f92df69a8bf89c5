//! `versions`: every version of every datanet.

use std::sync::Arc;

use commons_storage::model::Version;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use super::datanet_ids;
use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, field, int_list, key, ts};

#[derive(Debug)]
pub(crate) struct Versions(SchemaRef);

impl Versions {
    pub(crate) fn new() -> Self {
        Versions(Arc::new(Schema::new(vec![
            key("datanet", DataType::Int64),
            key("number", DataType::Int64),
            field("parent", DataType::Int64),
            field("created_at", ts()),
            field("created_by", DataType::Utf8),
            field("rows_added", DataType::Int64),
            field("rows_removed", DataType::Int64),
            field("row_count", DataType::Int64),
            field("root", DataType::Utf8),
            field("contributions", int_list()),
            field("removed_rows", int_list()),
            field("reason", DataType::Utf8),
        ])))
    }
}

impl Table for Versions {
    fn name(&self) -> &'static str {
        "versions"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[("datanet", KeyKind::Num), ("number", KeyKind::Num)]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let t = txn.open_table(tables::VERSIONS)?;
        let num = keys.num("number");
        for d in datanet_ids(txn, &keys.num("datanet"))? {
            for e in t.range((d, num.lo)..=(d, num.hi.max(num.lo)))? {
                let (k, val) = e?;
                if !num.contains(k.value().1) {
                    continue;
                }
                let v: Version = decode(val.value())?;
                out.int(0, Some(d));
                out.int(1, Some(v.number));
                out.int(2, v.parent);
                out.time(3, Some(v.created_at));
                out.addr(4, Some(&v.created_by));
                out.int(5, Some(v.rows_added));
                out.int(6, Some(v.rows_removed));
                out.int(7, Some(v.row_count));
                out.hash(8, &v.root);
                out.ints(9, &v.contributions);
                out.ints(10, &v.removed_rows);
                out.text(11, v.reason.as_deref());
                if !out.row() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
