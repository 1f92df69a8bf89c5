//! SQL over the store (DataFusion): read-only, time- and memory-bounded.
//!
//! [`SqlEngine`] holds one DataFusion session with a table per store record (`datanets`,
//! `datanet_tags`, `contributions`, `rows`, `versions`, `version_rows`, `contributors`,
//! `edits`; one module each under `tables/`), the `search('query', limit)` table function,
//! `information_schema`, and `pg_catalog` for PostgreSQL clients. Tables read redb snapshots
//! and stream record batches ([`scan`]); filters on key columns narrow the walk and `EXPLAIN`
//! shows them as `CommonsScan: table=…, keys=[…]`.
//!
//! Only `SELECT`, `WITH`, `EXPLAIN` (of a query) and `SHOW` run; anything that writes is
//! refused with SQLSTATE `25006`. Every query runs under the configured time limit and shares
//! one DataFusion memory pool of the configured size; a query past either is cancelled with an
//! error ([`SqlError`]) and the node keeps serving.

mod errors;
mod info_schema;
pub(crate) mod scan;
mod search_fn;
mod tables;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::config::Dialect;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Stream, StreamExt};

pub use datafusion::arrow;
pub use datafusion::common::ScalarValue;
pub use errors::SqlError;
pub use search_fn::{FullText, TextHit};

/// The catalog name SQL clients see (`current_database()`).
pub const CATALOG: &str = "commons";

/// Limits of SQL queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlConfig {
    /// Longest a query may run, planning and streaming its results included.
    pub time_limit: Duration,
    /// Size of the memory pool that queries draw from (bytes).
    pub memory_limit: usize,
    /// Threads a query may use; 0 = the number of CPUs.
    pub threads: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            time_limit: Duration::from_secs(10),
            memory_limit: 512 << 20,
            threads: 0,
        }
    }
}

/// The SQL engine of a node.
pub struct SqlEngine {
    ctx: Arc<SessionContext>,
    config: SqlConfig,
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine")
            .field("config", &self.config)
            .finish()
    }
}

/// A running query: its schema and its batches, cancelled when dropped or past its time limit.
pub struct QueryStream {
    /// Result columns.
    pub schema: SchemaRef,
    /// The batches.
    pub stream: SendableRecordBatchStream,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .finish()
    }
}

/// A finished query, collected.
#[derive(Debug)]
pub struct QueryResult {
    /// Result columns.
    pub schema: SchemaRef,
    /// The batches, in order.
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub rows: usize,
    /// Whether rows past `max_rows` were left out.
    pub truncated: bool,
}

impl SqlEngine {
    /// An engine over `db`, with full-text search when `search` is given.
    pub fn new(
        db: Arc<redb::Database>,
        config: SqlConfig,
        search: Option<Arc<dyn FullText>>,
    ) -> Result<Self, SqlError> {
        // No spilling: a query over the memory limit fails at once instead of writing
        // temporary files on the node's disk from async threads.
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .with_memory_limit(config.memory_limit, 1.0)
            .build_arc()
            .map_err(SqlError::from_df)?;
        let mut session = SessionConfig::new()
            // Ours (PostgreSQL type names) is registered below in place of DataFusion's.
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_create_default_catalog_and_schema(true);
        if config.threads > 0 {
            session = session.with_target_partitions(config.threads);
        }
        let ctx = SessionContext::new_with_config_rt(session, runtime);
        let catalogs = ctx.state().catalog_list().clone();
        ctx.catalog(CATALOG)
            .ok_or_else(|| {
                SqlError::from_df(DataFusionError::Internal(format!(
                    "catalog {CATALOG} is missing"
                )))
            })?
            .register_schema(
                info_schema::NAME,
                Arc::new(info_schema::PgInformationSchema::new(catalogs)),
            )
            .map_err(SqlError::from_df)?;
        for t in tables::all() {
            let name = t.name();
            ctx.register_table(
                name,
                Arc::new(scan::Provider {
                    table: t,
                    db: db.clone(),
                }),
            )
            .map_err(SqlError::from_df)?;
        }
        ctx.register_udtf("search", Arc::new(search_fn::SearchFn::new(search)));
        datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog(
            &ctx,
            CATALOG,
            datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
        )
        .map_err(|e| SqlError::from_df(*e))?;
        // After the catalog setup, so that ours replaces DataFusion's `version()`.
        ctx.register_udf(version_udf());
        Ok(SqlEngine {
            ctx: Arc::new(ctx),
            config,
        })
    }

    /// The limits queries run under.
    pub fn config(&self) -> SqlConfig {
        self.config
    }

    /// The DataFusion session (the PostgreSQL listener serves it).
    pub fn context(&self) -> Arc<SessionContext> {
        self.ctx.clone()
    }

    /// Plan and start `sql` with `$1…` bound to `params`. The stream ends with an error when
    /// the time limit passes or `cancel` resolves.
    pub async fn query(
        &self,
        sql: &str,
        params: Vec<ScalarValue>,
        cancel: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ) -> Result<QueryStream, SqlError> {
        let limit = self.config.time_limit;
        let start = tokio::time::Instant::now();
        let planned = tokio::time::timeout(limit, self.plan(sql, params)).await;
        let df = match planned {
            Ok(r) => r?,
            Err(_) => return Err(SqlError::timeout(limit)),
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(SqlError::from_df)?;
        let guarded = Guarded {
            inner: Some(stream),
            deadline: Box::pin(tokio::time::sleep_until(start + limit)),
            cancel,
            limit,
        };
        Ok(QueryStream {
            schema: schema.clone(),
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, guarded)),
        })
    }

    /// Run `sql` to the end, keeping at most `max_rows` rows.
    pub async fn collect(
        &self,
        sql: &str,
        params: Vec<ScalarValue>,
        max_rows: usize,
    ) -> Result<QueryResult, SqlError> {
        let mut q = self.query(sql, params, None).await?;
        let mut out = QueryResult {
            schema: q.schema.clone(),
            batches: Vec::new(),
            rows: 0,
            truncated: false,
        };
        while let Some(b) = q.stream.next().await {
            let b = b.map_err(SqlError::from_df)?;
            let room = max_rows - out.rows;
            if b.num_rows() > room {
                out.batches.push(b.slice(0, room));
                out.rows += room;
                out.truncated = true;
                break;
            }
            out.rows += b.num_rows();
            out.batches.push(b);
        }
        Ok(out)
    }

    async fn plan(
        &self,
        sql: &str,
        params: Vec<ScalarValue>,
    ) -> Result<datafusion::prelude::DataFrame, SqlError> {
        let state = self.ctx.state();
        let stmt = state
            .sql_to_statement(sql, &Dialect::PostgreSQL)
            .map_err(SqlError::from_df)?;
        check_read_only_df(&stmt)?;
        let plan = state
            .statement_to_plan(stmt)
            .await
            .map_err(SqlError::from_df)?;
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| SqlError::read_only(&e.to_string()))?;
        let mut df = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(SqlError::from_df)?;
        if !params.is_empty() {
            df = df.with_param_values(params).map_err(SqlError::from_df)?;
        }
        Ok(df)
    }
}

/// Refuse a statement that is not a read (a query, `EXPLAIN` of one, `SHOW`, `DESCRIBE`).
pub fn check_read_only(stmt: &Statement) -> Result<(), SqlError> {
    match stmt {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariable { .. }
        | Statement::ExplainTable { .. } => Ok(()),
        Statement::Explain { statement, .. } => check_read_only(statement),
        other => {
            let text = other.to_string();
            let verb: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(SqlError::read_only(&verb))
        }
    }
}

fn check_read_only_df(stmt: &DfStatement) -> Result<(), SqlError> {
    match stmt {
        DfStatement::Statement(s) => check_read_only(s),
        DfStatement::Explain(e) => check_read_only_df(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(SqlError::read_only("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(SqlError::read_only("COPY")),
        DfStatement::Reset(_) => Err(SqlError::read_only("RESET")),
    }
}

/// A batch stream that ends with an error at its deadline or when `cancel` resolves; the inner
/// stream (and the scans feeding it) is dropped at that moment.
struct Guarded {
    inner: Option<SendableRecordBatchStream>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    cancel: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    limit: Duration,
}

impl Stream for Guarded {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.inner = None;
            let e = SqlError::timeout(self.limit);
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
        }
        if let Some(c) = self.cancel.as_mut()
            && c.as_mut().poll(cx).is_ready()
        {
            self.inner = None;
            let e = SqlError::cancelled();
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// `version()` as PostgreSQL clients parse it: tools such as DBeaver, Grafana and SQLAlchemy
/// read the server's major version from a leading `PostgreSQL N.M`. The number is the one the
/// wire listener announces as `server_version`; what really answers follows.
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility};
    let text = format!(
        "PostgreSQL 16.6 on {}-{}, Commons {} (Apache DataFusion {})",
        std::env::consts::ARCH,
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION,
    );
    datafusion::prelude::create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))
        }),
    )
}
