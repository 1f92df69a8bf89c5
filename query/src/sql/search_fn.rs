//! `search('query', limit)`: full-text hits as a table of `(row_id, score, snippet)`, so they
//! join anything (`SELECT r.* FROM search('fever', 10) s JOIN rows r ON r.id = s.row_id`).
//!
//! The search runs when the query is planned and its hits (at most `limit`, default 10,
//! at most 10,000) become a small in-memory table.

use std::sync::Arc;

use datafusion::arrow::array::{Float32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;

/// Largest `limit` of `search()`.
pub(crate) const MAX_SEARCH_LIMIT: usize = 10_000;

/// One full-text hit, as SQL sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextHit {
    /// Row id.
    pub row_id: u64,
    /// Relevance score (higher is better).
    pub score: f32,
    /// Highlighted excerpt.
    pub snippet: String,
}

/// What SQL needs of the full-text index.
pub trait FullText: Send + Sync + std::fmt::Debug {
    /// Up to `limit` best hits for `query` over accepted rows.
    fn search_text(&self, query: &str, limit: usize) -> Result<Vec<TextHit>, String>;
}

impl FullText for crate::search::SearchIndex {
    fn search_text(&self, query: &str, limit: usize) -> Result<Vec<TextHit>, String> {
        let q = crate::search::SearchQuery {
            text: query.to_string(),
            datanet: None,
            version: None,
            contributor: None,
            tag: None,
            pending_for: Vec::new(),
            limit,
            cursor: None,
        };
        let page = self.search(&q).map_err(|e| e.to_string())?;
        Ok(page
            .hits
            .into_iter()
            .filter(|h| !h.pending)
            .map(|h| TextHit {
                row_id: h.row_id,
                score: h.score,
                snippet: h.snippet,
            })
            .collect())
    }
}

/// The `search` table function.
#[derive(Debug)]
pub(crate) struct SearchFn {
    index: Option<Arc<dyn FullText>>,
}

impl SearchFn {
    pub(crate) fn new(index: Option<Arc<dyn FullText>>) -> Self {
        SearchFn { index }
    }
}

fn arg_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Some(s.clone()),
        Expr::Cast(c) => arg_text(&c.expr),
        _ => None,
    }
}

fn arg_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int64(Some(n)) => Some(*n),
            ScalarValue::Int32(Some(n)) => Some((*n).into()),
            ScalarValue::Int16(Some(n)) => Some((*n).into()),
            ScalarValue::Int8(Some(n)) => Some((*n).into()),
            ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok(),
            ScalarValue::UInt32(Some(n)) => Some((*n).into()),
            _ => None,
        },
        Expr::Cast(c) => arg_int(&c.expr),
        _ => None,
    }
}

impl TableFunctionImpl for SearchFn {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let Some(query) = exprs.first().and_then(arg_text) else {
            return plan_err!("search('query', limit): the first argument must be a text literal");
        };
        let limit = match exprs.get(1) {
            None => 10,
            Some(e) => match arg_int(e) {
                Some(n) if n >= 1 && n as usize <= MAX_SEARCH_LIMIT => n as usize,
                _ => {
                    return plan_err!(
                        "search('query', limit): limit must be an integer from 1 to {MAX_SEARCH_LIMIT}"
                    );
                }
            },
        };
        if exprs.len() > 2 {
            return plan_err!("search('query', limit) takes at most two arguments");
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("row_id", DataType::Int64, false),
            Field::new("score", DataType::Float32, false),
            Field::new("snippet", DataType::Utf8, false),
        ]));
        let hits = match &self.index {
            Some(ix) => ix
                .search_text(&query, limit)
                .map_err(datafusion::error::DataFusionError::Plan)?,
            None => {
                return plan_err!("search() is not available: this node has no full-text index");
            }
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    hits.iter().map(|h| h.row_id as i64),
                )),
                Arc::new(Float32Array::from_iter_values(hits.iter().map(|h| h.score))),
                Arc::new(StringArray::from_iter_values(
                    hits.iter().map(|h| h.snippet.as_str()),
                )),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
