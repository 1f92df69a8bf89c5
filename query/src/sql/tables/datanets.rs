//! `datanets`: one row per datanet.

use std::sync::Arc;

use commons_storage::model::Datanet;
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, field, key, ts};

#[derive(Debug)]
pub(crate) struct Datanets(SchemaRef);

impl Datanets {
    pub(crate) fn new() -> Self {
        Datanets(Arc::new(Schema::new(vec![
            key("id", DataType::Int64),
            key("slug", DataType::Utf8),
            field("name", DataType::Utf8),
            field("summary", DataType::Utf8),
            field("description", DataType::Utf8),
            field("kind", DataType::Utf8),
            field("visibility", DataType::Utf8),
            field("owner", DataType::Utf8),
            field("created_at", ts()),
            field("updated_at", ts()),
            field("latest_version", DataType::Int64),
            field("row_count", DataType::Int64),
            field("contribution_count", DataType::Int64),
            field("pending_count", DataType::Int64),
            field("edit_count", DataType::Int64),
        ])))
    }
}

impl Table for Datanets {
    fn name(&self) -> &'static str {
        "datanets"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[("id", KeyKind::Num), ("slug", KeyKind::Text)]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let t = txn.open_table(tables::DATANETS)?;
        let mut ids = keys.num("id");
        if let Some(slugs) = keys.strs("slug") {
            let s = txn.open_table(tables::DATANET_SLUGS)?;
            let mut set = std::collections::BTreeSet::new();
            for slug in slugs {
                if let Some(id) = s.get(slug.as_str())? {
                    set.insert(id.value());
                }
            }
            ids.set = Some(match ids.set.take() {
                Some(cur) => cur.intersection(&set).copied().collect(),
                None => set,
            });
        }
        let emit = |d: Datanet, out: &mut Out| {
            out.int(0, Some(d.id));
            out.text(1, Some(&d.slug));
            out.text(2, Some(&d.name));
            out.text(3, Some(&d.summary));
            out.text(4, Some(&d.description));
            out.text(5, Some(d.kind.as_str()));
            out.text(6, Some(if d.private { "private" } else { "public" }));
            out.addr(7, Some(&d.owner));
            out.time(8, Some(d.created_at));
            out.time(9, Some(d.updated_at));
            out.int(10, Some(d.latest_version));
            out.int(11, Some(d.row_count));
            out.int(12, Some(d.contribution_count));
            out.int(13, Some(d.pending_count));
            out.int(14, Some(d.edit_count));
            out.row()
        };
        if let Some(v) = ids.values() {
            for id in v {
                if let Some(g) = t.get(id)?
                    && !emit(decode(g.value())?, out)
                {
                    return Ok(());
                }
            }
            return Ok(());
        }
        for e in t.range(ids.lo..=ids.hi.max(ids.lo))? {
            if !emit(decode(e?.1.value())?, out) {
                break;
            }
        }
        Ok(())
    }
}
