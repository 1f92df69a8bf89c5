//! `rows`: the accepted rows of every datanet (rows of pending or rejected contributions are
//! not here), with where they stand in the datanet's versions.
//!
//! Rows are walked by contribution (a contribution's rows have consecutive ids), so a query
//! that needs no text or hash never reads the `rows` table at all: `contributor`, `datanet`
//! and the version columns come from the contribution and the versions' take-down lists.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use commons_storage::model::{Row, Status, Version};
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::ReadTransaction;

use super::contributions::{Spec, walk};
use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, U64Keys, field, key, ts};

#[derive(Debug)]
pub(crate) struct Rows(SchemaRef);

impl Rows {
    pub(crate) fn new() -> Self {
        Rows(Arc::new(Schema::new(vec![
            key("id", DataType::Int64),
            key("datanet", DataType::Int64),
            key("contribution", DataType::Int64),
            key("contributor", DataType::Utf8),
            field("ordinal", DataType::Int64),
            field("hash", DataType::Utf8),
            field("text", DataType::Utf8),
            field("status", DataType::Utf8),
            field("added_in", DataType::Int64),
            field("removed_in", DataType::Int64),
            field("contributed_at", ts()),
        ])))
    }
}

const ID: usize = 0;
const HASH: usize = 5;
const TEXT: usize = 6;
const STATUS: usize = 7;
const REMOVED_IN: usize = 9;

/// Turn a row-id constraint into the contribution ids holding those rows.
fn contributions_of_rows(txn: &ReadTransaction, ids: &U64Keys) -> ScanResult<U64Keys> {
    let rows = txn.open_table(tables::ROWS)?;
    if let Some(v) = ids.values() {
        let mut set = BTreeSet::new();
        for id in v {
            if let Some(g) = rows.get(id)? {
                set.insert(decode::<Row>(g.value())?.contribution);
            }
        }
        return Ok(U64Keys {
            set: Some(set),
            ..U64Keys::default()
        });
    }
    let first = rows.range(ids.lo..)?.next().transpose()?;
    let last = rows.range(..=ids.hi)?.next_back().transpose()?;
    Ok(match (first, last) {
        (Some((_, a)), Some((_, b))) => U64Keys {
            lo: decode::<Row>(a.value())?.contribution,
            hi: decode::<Row>(b.value())?.contribution,
            set: None,
        },
        _ => U64Keys {
            lo: 1,
            hi: 0,
            set: None,
        },
    })
}

impl Table for Rows {
    fn name(&self) -> &'static str {
        "rows"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[
            ("id", KeyKind::Num),
            ("datanet", KeyKind::Num),
            ("contribution", KeyKind::Num),
            ("contributor", KeyKind::Text),
            ("contributed_at", KeyKind::Time),
        ]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let row_ids = keys.num("id");
        let mut contribution = keys.num("contribution");
        if !row_ids.is_all() {
            let c = contributions_of_rows(txn, &row_ids)?;
            if let (Some(a), Some(b)) = (&c.set, &contribution.set) {
                contribution.set = Some(a.intersection(b).copied().collect());
            } else {
                contribution.lo = contribution.lo.max(c.lo);
                contribution.hi = contribution.hi.min(c.hi);
                contribution.set = contribution.set.take().or(c.set);
            }
        }
        let spec = Spec {
            ids: contribution,
            datanet: keys.num("datanet"),
            contributor: keys.addrs("contributor"),
            status: Some([Status::Accepted.code()].into()),
            created: keys.num("contributed_at"),
        };
        let need_row = out.wants(HASH) || out.wants(TEXT);
        let need_removed = out.wants(STATUS) || out.wants(REMOVED_IN);
        let rows = txn.open_table(tables::ROWS)?;
        let versions = txn.open_table(tables::VERSIONS)?;
        // Row id → version that took it down, per datanet, built when first needed.
        let mut removed: HashMap<u64, HashMap<u64, u64>> = HashMap::new();
        let mut contributor = String::new();
        walk(txn, &spec, |c| {
            if out.wants(3) {
                contributor = format!("0x{}", hex::encode(c.contributor));
            }
            let taken = if need_removed {
                if let std::collections::hash_map::Entry::Vacant(slot) = removed.entry(c.datanet) {
                    let mut m = HashMap::new();
                    for e in versions.range((c.datanet, 0)..=(c.datanet, u64::MAX))? {
                        let v: Version = decode(e?.1.value())?;
                        for r in v.removed_rows {
                            m.insert(r, v.number);
                        }
                    }
                    slot.insert(m);
                }
                removed.get(&c.datanet)
            } else {
                None
            };
            let end = c.first_row + c.row_count;
            let (lo, hi) = (
                c.first_row.max(row_ids.lo),
                end.min(row_ids.hi.saturating_add(1)),
            );
            let ids: Box<dyn Iterator<Item = u64>> = match row_ids.values() {
                Some(v) => Box::new(v.into_iter().filter(move |id| *id >= lo && *id < hi)),
                None => Box::new(lo..hi.max(lo)),
            };
            let mut row_iter = if need_row && row_ids.set.is_none() {
                Some(rows.range(lo..hi.max(lo))?)
            } else {
                None
            };
            for id in ids {
                let row: Option<Row> = if !need_row {
                    None
                } else if let Some(it) = row_iter.as_mut() {
                    match it.next() {
                        Some(e) => Some(decode(e?.1.value())?),
                        None => None,
                    }
                } else {
                    match rows.get(id)? {
                        Some(g) => Some(decode(g.value())?),
                        None => None,
                    }
                };
                let gone = taken.and_then(|m| m.get(&id)).copied();
                out.int(ID, Some(id));
                out.int(1, Some(c.datanet));
                out.int(2, Some(c.id));
                out.text(3, Some(&contributor));
                out.int(4, Some(id - c.first_row));
                if let Some(r) = &row {
                    out.hash(HASH, &r.hash);
                    out.text(TEXT, Some(&r.text));
                } else {
                    out.text(HASH, None);
                    out.text(TEXT, None);
                }
                out.text(
                    STATUS,
                    Some(if gone.is_some() {
                        "removed"
                    } else {
                        "accepted"
                    }),
                );
                out.int(8, c.version);
                out.int(REMOVED_IN, gone);
                out.time(10, Some(c.created_at));
                if !out.row() {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}
