//! `contributors`: per address, what it contributed and how much of it was accepted.

use std::sync::Arc;

use commons_storage::model::ContributorStats;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::{ReadTransaction, ReadableTable};

use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, field, key};

#[derive(Debug)]
pub(crate) struct Contributors(SchemaRef);

impl Contributors {
    pub(crate) fn new() -> Self {
        Contributors(Arc::new(Schema::new(vec![
            key("address", DataType::Utf8),
            field("contributions", DataType::Int64),
            field("accepted", DataType::Int64),
            field("rejected", DataType::Int64),
            field("pending", DataType::Int64),
            field("rows", DataType::Int64),
            field("accepted_rows", DataType::Int64),
            field("bytes", DataType::Int64),
            field("acceptance_ratio", DataType::Float64),
        ])))
    }
}

fn emit(a: &[u8; 20], s: &ContributorStats, out: &mut Out) -> bool {
    out.addr(0, Some(a));
    out.int(1, Some(s.contributions));
    out.int(2, Some(s.accepted));
    out.int(3, Some(s.rejected));
    out.int(4, Some(s.pending));
    out.int(5, Some(s.rows));
    out.int(6, Some(s.accepted_rows));
    out.int(7, Some(s.bytes));
    let reviewed = s.accepted + s.rejected;
    out.float(
        8,
        (reviewed > 0).then(|| s.accepted as f64 / reviewed as f64),
    );
    out.row()
}

impl Table for Contributors {
    fn name(&self) -> &'static str {
        "contributors"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[("address", KeyKind::Text)]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let t = txn.open_table(tables::CONTRIBUTORS)?;
        if let Some(addrs) = keys.addrs("address") {
            for a in addrs {
                if let Some(g) = t.get(a)?
                    && !emit(&a, &decode(g.value())?, out)
                {
                    break;
                }
            }
            return Ok(());
        }
        for e in t.iter()? {
            let (k, v) = e?;
            if !emit(&k.value(), &decode(v.value())?, out) {
                break;
            }
        }
        Ok(())
    }
}
