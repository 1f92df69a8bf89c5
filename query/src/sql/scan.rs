//! The machinery every SQL table shares: key constraints pulled out of `WHERE`, a
//! [`TableProvider`] over a [`Table`], and [`ScanExec`], which streams record batches that a
//! blocking thread builds from one redb read transaction.
//!
//! A table only says which of its columns are *keys* and how to walk the store for a set of
//! key constraints; filters on keys are pushed down as `Inexact` (DataFusion still applies
//! them), so a table that ignores a constraint stays correct, only slower. Batches are built on
//! a blocking thread and handed over through a channel of two batches: a `LIMIT` or a
//! cancelled query drops the receiver and the producer stops at its next batch.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::Session;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    SendableRecordBatchStream,
};
use redb::{ReadTransaction, ReadableDatabase};

/// What a table walk can fail with; becomes a DataFusion execution error.
pub(crate) type ScanResult<T = ()> = std::result::Result<T, commons_storage::Error>;

/// Rows of a `u64` key that a query can match: `lo..=hi`, and when known, an exact set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct U64Keys {
    /// Smallest value that may match.
    pub(crate) lo: u64,
    /// Largest value that may match.
    pub(crate) hi: u64,
    /// The exact values, when the query names them (`=`, `IN`, `OR` of `=`).
    pub(crate) set: Option<BTreeSet<u64>>,
}

impl Default for U64Keys {
    fn default() -> Self {
        U64Keys {
            lo: 0,
            hi: u64::MAX,
            set: None,
        }
    }
}

impl U64Keys {
    /// May `v` match?
    pub(crate) fn contains(&self, v: u64) -> bool {
        v >= self.lo && v <= self.hi && self.set.as_ref().is_none_or(|s| s.contains(&v))
    }

    /// Does this narrow anything at all?
    pub(crate) fn is_all(&self) -> bool {
        self.lo == 0 && self.hi == u64::MAX && self.set.is_none()
    }

    /// No value can match.
    pub(crate) fn is_empty(&self) -> bool {
        self.lo > self.hi || self.set.as_ref().is_some_and(|s| s.is_empty())
    }

    /// The values in the set that lie in range, or `None` when there is no set.
    pub(crate) fn values(&self) -> Option<Vec<u64>> {
        self.set.as_ref().map(|s| {
            s.range(self.lo..=self.hi.max(self.lo))
                .copied()
                .filter(|v| *v <= self.hi)
                .collect()
        })
    }

    fn intersect(&mut self, other: U64Keys) {
        self.lo = self.lo.max(other.lo);
        self.hi = self.hi.min(other.hi);
        self.set = match (self.set.take(), other.set) {
            (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
            (a, b) => a.or(b),
        };
    }
}

impl fmt::Display for U64Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.values() {
            let shown: Vec<String> = v.iter().take(8).map(u64::to_string).collect();
            let more = if v.len() > 8 { ", …" } else { "" };
            return write!(f, "in [{}{more}]", shown.join(", "));
        }
        match (self.lo, self.hi) {
            (0, u64::MAX) => f.write_str("all"),
            (lo, u64::MAX) => write!(f, ">= {lo}"),
            (0, hi) => write!(f, "<= {hi}"),
            (lo, hi) => write!(f, "{lo}..={hi}"),
        }
    }
}

/// The key constraints of one scan: per key column, the values that may match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    nums: BTreeMap<&'static str, U64Keys>,
    strs: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Keys {
    /// Constraint on the numeric (or timestamp, in ms) key `col`; everything when unconstrained.
    pub(crate) fn num(&self, col: &str) -> U64Keys {
        self.nums.get(col).cloned().unwrap_or_default()
    }

    /// Exact values of the text key `col`, when constrained.
    pub(crate) fn strs(&self, col: &str) -> Option<&BTreeSet<String>> {
        self.strs.get(col)
    }

    /// Exact addresses of the address key `col` (`0x…` text), when constrained. A value that
    /// is not an address matches nothing.
    pub(crate) fn addrs(&self, col: &str) -> Option<Vec<[u8; 20]>> {
        self.strs.get(col).map(|s| {
            s.iter()
                .filter_map(|a| {
                    let h = a.strip_prefix("0x").unwrap_or(a);
                    let mut out = [0u8; 20];
                    hex::decode_to_slice(h.to_ascii_lowercase(), &mut out)
                        .ok()
                        .map(|_| out)
                })
                .collect()
        })
    }

    /// Can no row match?
    pub(crate) fn is_empty(&self) -> bool {
        self.nums.values().any(U64Keys::is_empty) || self.strs.values().any(BTreeSet::is_empty)
    }

    fn add_num(&mut self, col: &'static str, k: U64Keys) {
        self.nums.entry(col).or_default().intersect(k);
    }

    fn add_strs(&mut self, col: &'static str, s: BTreeSet<String>) {
        match self.strs.get_mut(col) {
            Some(cur) => {
                cur.retain(|v| s.contains(v));
            }
            None => {
                self.strs.insert(col, s);
            }
        }
    }
}

impl fmt::Display for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .nums
            .iter()
            .filter(|(_, k)| !k.is_all())
            .map(|(c, k)| format!("{c} {k}"))
            .collect();
        for (c, s) in &self.strs {
            let v: Vec<&str> = s.iter().take(4).map(String::as_str).collect();
            parts.push(format!("{c} in [{}]", v.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("full scan")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// How a key column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// An integer id or number.
    Num,
    /// A timestamp column; constraints are in unix ms.
    Time,
    /// Text compared for equality (addresses, slugs, tags).
    Text,
}

/// One SQL table over the store. Adding a table is one module implementing this and a line in
/// `tables::all`.
pub(crate) trait Table: Send + Sync + fmt::Debug + 'static {
    /// The table's name in SQL.
    fn name(&self) -> &'static str;
    /// Its columns.
    fn schema(&self) -> SchemaRef;
    /// Columns whose constraints narrow the walk.
    fn keys(&self) -> &'static [(&'static str, KeyKind)];
    /// Walk the store for `keys`, appending rows to `out`; stop early when `out.row()` says so.
    fn scan(&self, txn: &ReadTransaction, keys: &Keys, out: &mut Out) -> ScanResult;
}

/// Column builders for one table, of which only the projected ones are filled.
pub(crate) struct Out {
    full: SchemaRef,
    proj: Vec<usize>,
    builders: Vec<Option<Box<dyn ArrayBuilder>>>,
    len: usize,
    batch_size: usize,
    limit: Option<usize>,
    emitted: usize,
    sink: Box<dyn FnMut(RecordBatch) -> bool + Send>,
    stopped: bool,
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Out").field("proj", &self.proj).finish()
    }
}

fn builder_for(dt: &DataType) -> Box<dyn ArrayBuilder> {
    match dt {
        DataType::Int64 => Box::new(Int64Builder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Boolean => Box::new(BooleanBuilder::new()),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            Box::new(TimestampMillisecondBuilder::new().with_timezone_opt(tz.clone()))
        }
        DataType::List(f) if f.data_type() == &DataType::Int64 => {
            Box::new(ListBuilder::new(Int64Builder::new()))
        }
        DataType::List(_) => Box::new(ListBuilder::new(StringBuilder::new())),
        _ => Box::new(StringBuilder::new()),
    }
}

macro_rules! put {
    ($self:ident, $col:ident, $ty:ty, |$b:ident| $e:expr) => {
        if let Some(Some(bx)) = $self.builders.get_mut($col)
            && let Some($b) = bx.as_any_mut().downcast_mut::<$ty>()
        {
            $e;
        }
    };
}

impl Out {
    pub(crate) fn new(
        full: SchemaRef,
        proj: Vec<usize>,
        batch_size: usize,
        limit: Option<usize>,
        sink: Box<dyn FnMut(RecordBatch) -> bool + Send>,
    ) -> Self {
        let mut builders: Vec<Option<Box<dyn ArrayBuilder>>> =
            (0..full.fields().len()).map(|_| None).collect();
        for &i in &proj {
            builders[i] = Some(builder_for(full.field(i).data_type()));
        }
        Out {
            full,
            proj,
            builders,
            len: 0,
            batch_size: batch_size.max(1),
            limit,
            emitted: 0,
            sink,
            stopped: false,
        }
    }

    /// Is column `col` projected? Tables skip expensive reads for columns nobody asked for.
    pub(crate) fn wants(&self, col: usize) -> bool {
        matches!(self.builders.get(col), Some(Some(_)))
    }

    /// Integer value.
    pub(crate) fn int(&mut self, col: usize, v: Option<u64>) {
        put!(self, col, Int64Builder, |b| b
            .append_option(v.map(|v| v as i64)));
    }

    /// Float value.
    pub(crate) fn float(&mut self, col: usize, v: Option<f64>) {
        put!(self, col, Float64Builder, |b| b.append_option(v));
    }

    /// Timestamp in unix ms.
    pub(crate) fn time(&mut self, col: usize, v: Option<u64>) {
        put!(self, col, TimestampMillisecondBuilder, |b| b
            .append_option(v.map(|v| v as i64)));
    }

    /// Text value.
    pub(crate) fn text(&mut self, col: usize, v: Option<&str>) {
        put!(self, col, StringBuilder, |b| b.append_option(v));
    }

    /// An address as `0x` + 40 lowercase hex.
    pub(crate) fn addr(&mut self, col: usize, v: Option<&[u8; 20]>) {
        if self.wants(col) {
            let s = v.map(|a| format!("0x{}", hex::encode(a)));
            self.text(col, s.as_deref());
        }
    }

    /// A hash as lowercase hex.
    pub(crate) fn hash(&mut self, col: usize, v: &[u8; 32]) {
        if self.wants(col) {
            self.text(col, Some(&hex::encode(v)));
        }
    }

    /// List of integers.
    pub(crate) fn ints(&mut self, col: usize, v: &[u64]) {
        put!(self, col, ListBuilder<Int64Builder>, |b| {
            for x in v {
                b.values().append_value(*x as i64);
            }
            b.append(true)
        });
    }

    /// List of text.
    pub(crate) fn texts(&mut self, col: usize, v: &[String]) {
        put!(self, col, ListBuilder<StringBuilder>, |b| {
            for x in v {
                b.values().append_value(x);
            }
            b.append(true)
        });
    }

    /// End a row. Returns `false` when the scan should stop (limit reached or nobody reads).
    pub(crate) fn row(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        self.len += 1;
        if self.limit.is_some_and(|l| self.emitted + self.len >= l) {
            self.flush();
            self.stopped = true;
            return false;
        }
        if self.len >= self.batch_size {
            self.flush();
        }
        !self.stopped
    }

    /// Hand the rows built so far downstream.
    pub(crate) fn flush(&mut self) {
        if self.len == 0 || self.stopped {
            return;
        }
        let cols: Vec<ArrayRef> = self
            .proj
            .iter()
            .filter_map(|&i| self.builders[i].as_mut().map(|b| b.finish()))
            .collect();
        let schema = Arc::new(
            self.full
                .project(&self.proj)
                .unwrap_or_else(|_| Schema::empty()),
        );
        let opts = RecordBatchOptions::new().with_row_count(Some(self.len));
        let n = self.len;
        self.len = 0;
        self.emitted += n;
        match RecordBatch::try_new_with_options(schema, cols, &opts) {
            Ok(b) => {
                if !(self.sink)(b) {
                    self.stopped = true;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "building a record batch failed");
                self.stopped = true;
            }
        }
    }
}

/// Extract the key constraints from pushed-down filters.
pub(crate) fn keys_from_filters(keys: &[(&'static str, KeyKind)], filters: &[Expr]) -> Keys {
    let mut out = Keys::default();
    for f in filters {
        add_filter(keys, f, &mut out);
    }
    out
}

fn key_of(keys: &[(&'static str, KeyKind)], e: &Expr) -> Option<(&'static str, KeyKind)> {
    match e {
        Expr::Column(c) => keys.iter().find(|(n, _)| *n == c.name).copied(),
        Expr::Cast(c) => key_of(keys, &c.expr),
        Expr::TryCast(c) => key_of(keys, &c.expr),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

fn as_i128(v: &ScalarValue, kind: KeyKind) -> Option<i128> {
    use ScalarValue as S;
    let n: i128 = match v {
        S::Int8(Some(x)) => (*x).into(),
        S::Int16(Some(x)) => (*x).into(),
        S::Int32(Some(x)) => (*x).into(),
        S::Int64(Some(x)) => (*x).into(),
        S::UInt8(Some(x)) => (*x).into(),
        S::UInt16(Some(x)) => (*x).into(),
        S::UInt32(Some(x)) => (*x).into(),
        S::UInt64(Some(x)) => (*x).into(),
        S::TimestampSecond(Some(x), _) => i128::from(*x) * 1000,
        S::TimestampMillisecond(Some(x), _) => (*x).into(),
        S::TimestampMicrosecond(Some(x), _) => i128::from(*x).div_euclid(1000),
        S::TimestampNanosecond(Some(x), _) => i128::from(*x).div_euclid(1_000_000),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) if kind == KeyKind::Num => {
            s.trim().parse::<i128>().ok()?
        }
        _ => return None,
    };
    Some(n)
}

fn as_text(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

fn clamp(n: i128) -> u64 {
    n.clamp(0, i128::from(u64::MAX)) as u64
}

/// A numeric constraint from `col op n`.
fn num_range(op: Operator, n: i128) -> Option<U64Keys> {
    let all = U64Keys::default();
    let empty = U64Keys {
        lo: 1,
        hi: 0,
        set: None,
    };
    Some(match op {
        Operator::Eq => {
            if n < 0 || n > i128::from(u64::MAX) {
                empty
            } else {
                U64Keys {
                    set: Some([n as u64].into()),
                    ..all
                }
            }
        }
        Operator::Gt => U64Keys {
            lo: clamp(n + 1),
            ..all
        },
        Operator::GtEq => U64Keys {
            lo: clamp(n),
            ..all
        },
        Operator::Lt if n <= 0 => empty,
        Operator::Lt => U64Keys {
            hi: clamp(n - 1),
            ..all
        },
        Operator::LtEq if n < 0 => empty,
        Operator::LtEq => U64Keys {
            hi: clamp(n),
            ..all
        },
        _ => return None,
    })
}

fn swap(op: Operator) -> Operator {
    match op {
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        o => o,
    }
}

/// A single constraint from one filter expression, if it is one we understand.
enum One {
    Num(&'static str, U64Keys),
    Text(&'static str, BTreeSet<String>),
}

fn one(keys: &[(&'static str, KeyKind)], e: &Expr) -> Option<One> {
    match e {
        Expr::BinaryExpr(b) => {
            let (col, lit, op) = match (key_of(keys, &b.left), literal(&b.right)) {
                (Some(k), Some(v)) => (k, v, b.op),
                _ => match (literal(&b.left), key_of(keys, &b.right)) {
                    (Some(v), Some(k)) => (k, v, swap(b.op)),
                    _ => {
                        if b.op == Operator::Or {
                            return or(keys, &b.left, &b.right);
                        }
                        return None;
                    }
                },
            };
            let (name, kind) = col;
            match kind {
                KeyKind::Text if op == Operator::Eq => {
                    Some(One::Text(name, [as_text(lit)?].into()))
                }
                KeyKind::Text => None,
                _ => Some(One::Num(name, num_range(op, as_i128(lit, kind)?)?)),
            }
        }
        Expr::InList(l) if !l.negated => {
            let (name, kind) = key_of(keys, &l.expr)?;
            match kind {
                KeyKind::Text => {
                    let s: Option<BTreeSet<String>> = l
                        .list
                        .iter()
                        .map(|e| literal(e).and_then(as_text))
                        .collect();
                    Some(One::Text(name, s?))
                }
                _ => {
                    let s: Option<BTreeSet<u64>> = l
                        .list
                        .iter()
                        .map(|e| {
                            literal(e)
                                .and_then(|v| as_i128(v, kind))
                                .map(|n| clamp(n.max(-1)))
                        })
                        .collect();
                    Some(One::Num(
                        name,
                        U64Keys {
                            set: Some(s?),
                            ..U64Keys::default()
                        },
                    ))
                }
            }
        }
        Expr::Between(b) if !b.negated => {
            let (name, kind) = key_of(keys, &b.expr)?;
            if kind == KeyKind::Text {
                return None;
            }
            let lo = as_i128(literal(&b.low)?, kind)?;
            let hi = as_i128(literal(&b.high)?, kind)?;
            let mut k = num_range(Operator::GtEq, lo)?;
            k.intersect(num_range(Operator::LtEq, hi)?);
            Some(One::Num(name, k))
        }
        _ => None,
    }
}

/// `a OR b` on the same key column: the union of their constraints.
fn or(keys: &[(&'static str, KeyKind)], a: &Expr, b: &Expr) -> Option<One> {
    match (one(keys, a)?, one(keys, b)?) {
        (One::Text(n1, mut s1), One::Text(n2, s2)) if n1 == n2 => {
            s1.extend(s2);
            Some(One::Text(n1, s1))
        }
        (One::Num(n1, k1), One::Num(n2, k2)) if n1 == n2 => Some(One::Num(
            n1,
            match (k1.values(), k2.values()) {
                (Some(mut v1), Some(v2)) => {
                    v1.extend(v2);
                    U64Keys {
                        set: Some(v1.into_iter().collect()),
                        ..U64Keys::default()
                    }
                }
                _ => U64Keys {
                    lo: k1.lo.min(k2.lo),
                    hi: k1.hi.max(k2.hi),
                    set: None,
                },
            },
        )),
        _ => None,
    }
}

fn add_filter(keys: &[(&'static str, KeyKind)], e: &Expr, out: &mut Keys) {
    if let Expr::BinaryExpr(b) = e
        && b.op == Operator::And
    {
        add_filter(keys, &b.left, out);
        add_filter(keys, &b.right, out);
        return;
    }
    match one(keys, e) {
        Some(One::Num(n, k)) => out.add_num(n, k),
        Some(One::Text(n, s)) => out.add_strs(n, s),
        None => {}
    }
}

fn understood(keys: &[(&'static str, KeyKind)], e: &Expr) -> bool {
    if let Expr::BinaryExpr(b) = e
        && b.op == Operator::And
    {
        return understood(keys, &b.left) || understood(keys, &b.right);
    }
    one(keys, e).is_some()
}

/// A [`TableProvider`] over a [`Table`]; each scan reads one redb snapshot taken when the
/// query is planned.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) table: Arc<dyn Table>,
    pub(crate) db: Arc<redb::Database>,
}

#[async_trait]
impl TableProvider for Provider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        let keys = self.table.keys();
        Ok(filters
            .iter()
            .map(|f| {
                if understood(keys, f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let full = self.table.schema();
        let proj: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..full.fields().len()).collect(),
        };
        let keys = keys_from_filters(self.table.keys(), filters);
        let txn = self
            .db
            .begin_read()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(ScanExec::new(
            self.table.clone(),
            Arc::new(txn),
            proj,
            keys,
            limit,
            state.config().batch_size(),
        )))
    }
}

/// The physical scan of one [`Table`]: one partition, streamed from a blocking thread.
pub(crate) struct ScanExec {
    table: Arc<dyn Table>,
    txn: Arc<ReadTransaction>,
    proj: Vec<usize>,
    keys: Keys,
    limit: Option<usize>,
    batch_size: usize,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for ScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanExec")
            .field("table", &self.table.name())
            .field("keys", &self.keys)
            .finish()
    }
}

impl ScanExec {
    fn new(
        table: Arc<dyn Table>,
        txn: Arc<ReadTransaction>,
        proj: Vec<usize>,
        keys: Keys,
        limit: Option<usize>,
        batch_size: usize,
    ) -> Self {
        let schema = Arc::new(
            table
                .schema()
                .project(&proj)
                .unwrap_or_else(|_| Schema::empty()),
        );
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        ScanExec {
            table,
            txn,
            proj,
            keys,
            limit,
            batch_size,
            props: Arc::new(props),
        }
    }
}

impl DisplayAs for ScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.table.schema();
        let cols: Vec<&str> = self
            .proj
            .iter()
            .map(|&i| full.field(i).name().as_str())
            .collect();
        write!(
            f,
            "CommonsScan: table={}, keys=[{}], projection=[{}]",
            self.table.name(),
            self.keys,
            cols.join(", ")
        )?;
        if let Some(l) = self.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ScanExec {
    fn name(&self) -> &str {
        "CommonsScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let schema = ExecutionPlan::schema(self);
        let (tx, rx) = tokio::sync::mpsc::channel::<datafusion::error::Result<RecordBatch>>(2);
        let table = self.table.clone();
        let txn = self.txn.clone();
        let keys = self.keys.clone();
        let full = table.schema();
        let proj = self.proj.clone();
        let (limit, batch_size) = (self.limit, self.batch_size);
        let err_tx = tx.clone();
        tokio::task::spawn_blocking(move || {
            if keys.is_empty() {
                return;
            }
            let sink = Box::new(move |b: RecordBatch| tx.blocking_send(Ok(b)).is_ok());
            let mut out = Out::new(full, proj, batch_size, limit, sink);
            let r = table.scan(&txn, &keys, &mut out);
            out.flush();
            if let Err(e) = r {
                let _ = err_tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Shorthand for a nullable field.
pub(crate) fn field(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, true)
}

/// A non-null field.
pub(crate) fn key(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, false)
}

/// The timestamp type of every time column (unix ms, UTC).
pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A list of `BIGINT`.
pub(crate) fn int_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
}

/// A list of text.
pub(crate) fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}
