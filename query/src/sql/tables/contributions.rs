//! `contributions`: every uploaded file and its review state; also the contribution walk that
//! `rows` shares (by id, datanet, contributor, status and upload time).

use std::collections::BTreeSet;
use std::sync::Arc;

use commons_storage::model::{Contribution, Status};
use commons_storage::{decode, tables};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use redb::{ReadTransaction, ReadableTable};

use crate::sql::scan::{KeyKind, Keys, Out, ScanResult, Table, U64Keys, field, key, ts};

#[derive(Debug)]
pub(crate) struct Contributions(SchemaRef);

impl Contributions {
    pub(crate) fn new() -> Self {
        Contributions(Arc::new(Schema::new(vec![
            key("id", DataType::Int64),
            key("datanet", DataType::Int64),
            key("contributor", DataType::Utf8),
            field("file_name", DataType::Utf8),
            field("file_hash", DataType::Utf8),
            field("size", DataType::Int64),
            field("format", DataType::Utf8),
            field("row_count", DataType::Int64),
            field("first_row", DataType::Int64),
            field("status", DataType::Utf8),
            field("version", DataType::Int64),
            field("reason", DataType::Utf8),
            field("reviewed_by", DataType::Utf8),
            field("reviewed_at", ts()),
            field("created_at", ts()),
        ])))
    }
}

/// Which contributions a walk visits.
#[derive(Debug, Default)]
pub(crate) struct Spec {
    /// Contribution ids.
    pub(crate) ids: U64Keys,
    /// Datanet ids.
    pub(crate) datanet: U64Keys,
    /// Contributor addresses.
    pub(crate) contributor: Option<Vec<[u8; 20]>>,
    /// Status codes.
    pub(crate) status: Option<BTreeSet<u8>>,
    /// Upload time range, unix ms.
    pub(crate) created: U64Keys,
}

/// Slack when walking contributions by upload time: ids follow commit order, and the clock
/// that stamps them could step back a little.
const TIME_SLACK_MS: u64 = 60_000;

/// Visit the contributions `spec` may match, in id order (by the most selective index);
/// `f` returns `false` to stop.
pub(crate) fn walk(
    txn: &ReadTransaction,
    spec: &Spec,
    mut f: impl FnMut(Contribution) -> ScanResult<bool>,
) -> ScanResult {
    let t = txn.open_table(tables::CONTRIBUTIONS)?;
    let keep = |c: &Contribution| {
        spec.ids.contains(c.id)
            && spec.datanet.contains(c.datanet)
            && spec
                .status
                .as_ref()
                .is_none_or(|s| s.contains(&c.status.code()))
            && spec
                .contributor
                .as_ref()
                .is_none_or(|a| a.contains(&c.contributor))
            && spec.created.contains(c.created_at)
    };
    let visit = |id: u64, f: &mut dyn FnMut(Contribution) -> ScanResult<bool>| {
        let Some(g) = t.get(id)? else {
            return Ok(true);
        };
        let c: Contribution = decode(g.value())?;
        if keep(&c) { f(c) } else { Ok(true) }
    };
    // 1. Named ids.
    if let Some(ids) = spec.ids.values() {
        for id in ids {
            if !visit(id, &mut f)? {
                break;
            }
        }
        return Ok(());
    }
    // 2. By contributor.
    if let Some(addrs) = &spec.contributor {
        let idx = txn.open_table(tables::CONTRIBUTIONS_BY_CONTRIBUTOR)?;
        let mut ids = BTreeSet::new();
        for a in addrs {
            for e in idx.range((*a, spec.ids.lo)..=(*a, spec.ids.hi.max(spec.ids.lo)))? {
                let (k, d) = e?;
                if spec.datanet.contains(d.value()) {
                    ids.insert(k.value().1);
                }
            }
        }
        for id in ids {
            if !visit(id, &mut f)? {
                break;
            }
        }
        return Ok(());
    }
    // 3. By datanet (the index holds the status, so others are skipped undecoded).
    if !spec.datanet.is_all() {
        let idx = txn.open_table(tables::CONTRIBUTIONS_BY_DATANET)?;
        for d in super::datanet_ids(txn, &spec.datanet)? {
            for e in idx.range((d, spec.ids.lo)..=(d, spec.ids.hi.max(spec.ids.lo)))? {
                let (k, st) = e?;
                if spec
                    .status
                    .as_ref()
                    .is_some_and(|s| !s.contains(&st.value()))
                {
                    continue;
                }
                if !visit(k.value().1, &mut f)? {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
    // 4. By upload time: binary search for the first id at or after the start.
    let (mut lo, hi) = (spec.ids.lo.max(1), spec.ids.hi);
    if !spec.created.is_all() && spec.created.lo > 0 {
        let last = t.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        let (mut a, mut b) = (lo, last.min(hi).saturating_add(1));
        let start = spec.created.lo.saturating_sub(TIME_SLACK_MS);
        while a < b {
            let mid = a + (b - a) / 2;
            let at = match t.get(mid)? {
                Some(g) => decode::<Contribution>(g.value())?.created_at,
                None => 0,
            };
            if at < start { a = mid + 1 } else { b = mid }
        }
        lo = a;
    }
    let stop_after = spec.created.hi.saturating_add(TIME_SLACK_MS);
    for e in t.range(lo..=hi.max(lo))? {
        let c: Contribution = decode(e?.1.value())?;
        if c.created_at > stop_after {
            break;
        }
        if keep(&c) && !f(c)? {
            break;
        }
    }
    Ok(())
}

/// Status codes named by a `status` constraint.
pub(crate) fn status_codes(keys: &Keys) -> Option<BTreeSet<u8>> {
    keys.strs("status").map(|s| {
        s.iter()
            .filter_map(|n| Status::parse(n).map(Status::code))
            .collect()
    })
}

impl Table for Contributions {
    fn name(&self) -> &'static str {
        "contributions"
    }

    fn schema(&self) -> SchemaRef {
        self.0.clone()
    }

    fn keys(&self) -> &'static [(&'static str, KeyKind)] {
        &[
            ("id", KeyKind::Num),
            ("datanet", KeyKind::Num),
            ("contributor", KeyKind::Text),
            ("status", KeyKind::Text),
            ("created_at", KeyKind::Time),
        ]
    }

    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult {
        let spec = Spec {
            ids: keys.num("id"),
            datanet: keys.num("datanet"),
            contributor: keys.addrs("contributor"),
            status: status_codes(keys),
            created: keys.num("created_at"),
        };
        walk(txn, &spec, |c| {
            out.int(0, Some(c.id));
            out.int(1, Some(c.datanet));
            out.addr(2, Some(&c.contributor));
            out.text(3, Some(&c.file_name));
            out.hash(4, &c.file_hash);
            out.int(5, Some(c.size));
            out.text(6, Some(c.format.as_str()));
            out.int(7, Some(c.row_count));
            out.int(8, Some(c.first_row));
            out.text(9, Some(c.status.as_str()));
            out.int(10, c.version);
            out.text(11, c.reason.as_deref());
            out.addr(12, c.reviewed_by.as_ref());
            out.time(13, c.reviewed_at);
            out.time(14, Some(c.created_at));
            Ok(out.row())
        })
    }
}
