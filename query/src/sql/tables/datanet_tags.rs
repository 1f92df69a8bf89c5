//! `datanet_tags`: one row per (datanet, tag).

use std::sync::Arc;

use commons_storage::model::Datanet;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use super::datanet_ids;
use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, key};

#[derive(Debug)]
pub(crate) struct DatanetTags(SchemaRef);

impl DatanetTags {
    pub(crate) fn new() -> Self {
        DatanetTags(Arc::new(Schema::new(vec![
            key("datanet", DataType::Int64),
            key("tag", DataType::Utf8),
        ])))
    }
}

impl Table for DatanetTags {
    fn name(&self) -> &'static str {
        "datanet_tags"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[("datanet", KeyKind::Num), ("tag", KeyKind::Text)]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let t = txn.open_table(tables::DATANETS)?;
        let tags = keys.strs("tag");
        for id in datanet_ids(txn, &keys.num("datanet"))? {
            let Some(g) = t.get(id)? else { continue };
            let d: Datanet = decode(g.value())?;
            for tag in &d.tags {
                if tags.is_some_and(|s| !s.contains(tag)) {
                    continue;
                }
                out.int(0, Some(d.id));
                out.text(1, Some(tag));
                if !out.row() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
