//! `edits`: the metadata edit history of every datanet.

use std::sync::Arc;

use commons_storage::model::Edit;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use super::datanet_ids;
use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, field, key, text_list, ts};

#[derive(Debug)]
pub(crate) struct Edits(SchemaRef);

impl Edits {
    pub(crate) fn new() -> Self {
        Edits(Arc::new(Schema::new(vec![
            key("datanet", DataType::Int64),
            key("number", DataType::Int64),
            field("at", ts()),
            field("by", DataType::Utf8),
            field("summary_before", DataType::Utf8),
            field("summary_after", DataType::Utf8),
            field("description_before", DataType::Utf8),
            field("description_after", DataType::Utf8),
            field("tags_before", text_list()),
            field("tags_after", text_list()),
        ])))
    }
}

impl Table for Edits {
    fn name(&self) -> &'static str {
        "edits"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[("datanet", KeyKind::Num), ("number", KeyKind::Num)]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let t = txn.open_table(tables::EDITS)?;
        let num = keys.num("number");
        for d in datanet_ids(txn, &keys.num("datanet"))? {
            for e in t.range((d, num.lo)..=(d, num.hi.max(num.lo)))? {
                let (k, v) = e?;
                if !num.contains(k.value().1) {
                    continue;
                }
                let ed: Edit = decode(v.value())?;
                out.int(0, Some(d));
                out.int(1, Some(ed.number));
                out.time(2, Some(ed.at));
                out.addr(3, Some(&ed.by));
                out.text(4, Some(&ed.before.summary));
                out.text(5, Some(&ed.after.summary));
                out.text(6, Some(&ed.before.description));
                out.text(7, Some(&ed.after.description));
                out.texts(8, &ed.before.tags);
                out.texts(9, &ed.after.tags);
                if !out.row() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
