//! `information_schema` as PostgreSQL clients read it.
//!
//! DataFusion's own provider names column types the Arrow way (`Int64`, `Utf8`,
//! `Timestamp(ms, "UTC")`); tools that pick columns by type — Grafana's query builder looks for
//! `timestamp with time zone`, `bigint`, `text` — then see nothing they know. This schema
//! serves `columns` with PostgreSQL type names (and `udt_name`), and hands every other view
//! (`tables`, `schemata`, `views`, `df_settings` behind `SHOW`, …) to DataFusion's provider.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// The schema's name, as SQL spells it.
pub(crate) const NAME: &str = "information_schema";

/// `information_schema` with PostgreSQL column types.
#[derive(Debug)]
pub(crate) struct PgInformationSchema {
    inner: InformationSchemaProvider,
    catalogs: Arc<dyn CatalogProviderList>,
}

impl PgInformationSchema {
    pub(crate) fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        PgInformationSchema {
            inner: InformationSchemaProvider::new(catalogs.clone()),
            catalogs,
        }
    }
}

#[async_trait]
impl SchemaProvider for PgInformationSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("columns") {
            return Ok(Some(Arc::new(Columns {
                catalogs: self.catalogs.clone(),
            })));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// `information_schema.columns`, built when scanned so it always lists the tables as they are.
#[derive(Debug)]
struct Columns {
    catalogs: Arc<dyn CatalogProviderList>,
}

fn columns_schema() -> SchemaRef {
    let text = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let int = |n: &str| Field::new(n, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        text("table_catalog", false),
        text("table_schema", false),
        text("table_name", false),
        text("column_name", false),
        Field::new("ordinal_position", DataType::Int64, false),
        text("column_default", true),
        text("is_nullable", false),
        text("data_type", false),
        int("character_maximum_length"),
        int("numeric_precision"),
        int("numeric_precision_radix"),
        int("numeric_scale"),
        int("datetime_precision"),
        text("udt_name", false),
    ]))
}

/// PostgreSQL's `data_type`, `udt_name`, numeric precision and scale, and datetime precision
/// for an Arrow type, as the wire listener also reports it.
pub(crate) fn pg_type(t: &DataType) -> (String, String, Option<i64>, Option<i64>, Option<i64>) {
    let named = |d: &str, u: &str| (d.to_string(), u.to_string(), None, None, None);
    let num = |d: &str, u: &str, p: i64| (d.to_string(), u.to_string(), Some(p), Some(0), None);
    match t {
        DataType::Boolean => named("boolean", "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => num("smallint", "int2", 16),
        DataType::Int32 | DataType::UInt16 => num("integer", "int4", 32),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => num("bigint", "int8", 64),
        DataType::Float16 | DataType::Float32 => {
            ("real".into(), "float4".into(), Some(24), None, None)
        }
        DataType::Float64 => (
            "double precision".into(),
            "float8".into(),
            Some(53),
            None,
            None,
        ),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (
            "numeric".into(),
            "numeric".into(),
            Some(i64::from(*p)),
            Some(i64::from(*s)),
            None,
        ),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => named("text", "text"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => named("bytea", "bytea"),
        DataType::FixedSizeBinary(_) => named("bytea", "bytea"),
        DataType::Date32 | DataType::Date64 => ("date".into(), "date".into(), None, None, Some(0)),
        DataType::Time32(u) | DataType::Time64(u) => (
            "time without time zone".into(),
            "time".into(),
            None,
            None,
            Some(precision(u)),
        ),
        DataType::Timestamp(u, Some(_)) => (
            "timestamp with time zone".into(),
            "timestamptz".into(),
            None,
            None,
            Some(precision(u)),
        ),
        DataType::Timestamp(u, None) => (
            "timestamp without time zone".into(),
            "timestamp".into(),
            None,
            None,
            Some(precision(u)),
        ),
        DataType::Interval(_) | DataType::Duration(_) => named("interval", "interval"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let (_, udt, ..) = pg_type(f.data_type());
            ("ARRAY".into(), format!("_{udt}"), None, None, None)
        }
        DataType::Dictionary(_, v) => pg_type(v),
        DataType::Struct(_) | DataType::Map(..) => named("json", "json"),
        _ => named("USER-DEFINED", "unknown"),
    }
}

fn precision(u: &TimeUnit) -> i64 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond | TimeUnit::Nanosecond => 6,
    }
}

#[async_trait]
impl TableProvider for Columns {
    fn schema(&self) -> SchemaRef {
        columns_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut s: Vec<StringBuilder> = (0..4).map(|_| StringBuilder::new()).collect();
        let mut position = Int64Builder::new();
        let mut default = StringBuilder::new();
        let mut nullable = StringBuilder::new();
        let mut data_type = StringBuilder::new();
        let mut char_len = Int64Builder::new();
        let mut num_precision = Int64Builder::new();
        let mut radix = Int64Builder::new();
        let mut scale = Int64Builder::new();
        let mut dt_precision = Int64Builder::new();
        let mut udt = StringBuilder::new();
        for catalog_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                if schema_name == NAME {
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    for (i, f) in table.schema().fields().iter().enumerate() {
                        let (dt, u, p, sc, dp) = pg_type(f.data_type());
                        s[0].append_value(&catalog_name);
                        s[1].append_value(&schema_name);
                        s[2].append_value(&table_name);
                        s[3].append_value(f.name());
                        position.append_value(i as i64 + 1);
                        default.append_null();
                        nullable.append_value(if f.is_nullable() { "YES" } else { "NO" });
                        data_type.append_value(dt);
                        char_len.append_null();
                        num_precision.append_option(p);
                        radix.append_option(p.map(|_| 2));
                        scale.append_option(sc);
                        dt_precision.append_option(dp);
                        udt.append_value(u);
                    }
                }
            }
        }
        let mut cols: Vec<ArrayRef> = s
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        cols.push(Arc::new(position.finish()));
        cols.push(Arc::new(default.finish()));
        cols.push(Arc::new(nullable.finish()));
        cols.push(Arc::new(data_type.finish()));
        cols.push(Arc::new(char_len.finish()));
        cols.push(Arc::new(num_precision.finish()));
        cols.push(Arc::new(radix.finish()));
        cols.push(Arc::new(scale.finish()));
        cols.push(Arc::new(dt_precision.finish()));
        cols.push(Arc::new(udt.finish()));
        let batch = RecordBatch::try_new(columns_schema(), cols)?;
        MemTable::try_new(columns_schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_get_postgres_names() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert_eq!(pg_type(&ts).0, "timestamp with time zone");
        assert_eq!(pg_type(&ts).1, "timestamptz");
        assert_eq!(pg_type(&ts).4, Some(3));
        assert_eq!(pg_type(&DataType::Int64).0, "bigint");
        assert_eq!(pg_type(&DataType::Utf8View).0, "text");
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(
            (pg_type(&list).0.as_str(), pg_type(&list).1.as_str()),
            ("ARRAY", "_int8")
        );
    }
}
