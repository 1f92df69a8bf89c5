//! `POST /api/v1/sql`: a read-only SQL query, answered as JSON rows, CSV or Arrow IPC by
//! `Accept` (or `?format=json|csv|arrow`).

use std::sync::Arc;
use std::time::Instant;

use commons_query::sql::ScalarValue;
use commons_query::sql::SqlError;
use commons_query::sql::arrow::array::{Array, ArrayRef, AsArray};
use commons_query::sql::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int32Type, Int64Type,
};
use commons_query::sql::arrow::ipc::writer::StreamWriter;
use commons_query::sql::arrow::record_batch::RecordBatch;
use commons_query::sql::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{ApiError, Req, Resp, respond};
use crate::node::Node;

/// Rows a JSON answer holds unless `max_rows` says otherwise.
const DEFAULT_JSON_ROWS: usize = 10_000;
/// Rows a CSV or Arrow answer holds unless `max_rows` says otherwise.
const DEFAULT_BULK_ROWS: usize = 1_000_000;
/// Largest `max_rows`.
const MAX_ROWS: usize = 10_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlBody {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
    #[serde(default)]
    max_rows: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Arrow,
}

const ARROW_TYPE: &str = "application/vnd.apache.arrow.stream";

fn format_of(req: &Req) -> Result<Format, ApiError> {
    if let Some(f) = req.q("format").filter(|f| !f.is_empty()) {
        return match f {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "arrow" => Ok(Format::Arrow),
            other => Err(ApiError::bad_request(format!(
                "format '{other}' is not one of json, csv, arrow"
            ))),
        };
    }
    let accept = req.header("accept").unwrap_or("").to_ascii_lowercase();
    Ok(if accept.contains(ARROW_TYPE) {
        Format::Arrow
    } else if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Json
    })
}

/// Map a SQL error to an API error: 400 with its stable code, 500 for a bug.
pub(crate) fn sql_error(e: SqlError) -> ApiError {
    let status = if e.is_internal() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code, e.message)
}

fn param(v: &Value, i: usize) -> Result<ScalarValue, ApiError> {
    Ok(match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        _ => {
            return Err(ApiError::bad_request(format!(
                "parameter ${} must be null, a boolean, a number or a string",
                i + 1
            )));
        }
    })
}

pub(super) async fn query(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let format = format_of(req)?;
    let ctype = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw = req.body(1 << 20).await?;
    let body: SqlBody = if ctype.starts_with("application/json") || raw.first() == Some(&b'{') {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    } else {
        SqlBody {
            sql: String::from_utf8(raw)
                .map_err(|_| ApiError::bad_request("the SQL is not UTF-8"))?,
            params: Vec::new(),
            max_rows: None,
        }
    };
    if body.sql.trim().is_empty() {
        return Err(ApiError::bad_request("the body holds no SQL"));
    }
    let params = body
        .params
        .iter()
        .enumerate()
        .map(|(i, v)| param(v, i))
        .collect::<Result<Vec<_>, _>>()?;
    let max_rows = body
        .max_rows
        .or(req.q_parse::<usize>("max_rows")?)
        .unwrap_or(match format {
            Format::Json => DEFAULT_JSON_ROWS,
            _ => DEFAULT_BULK_ROWS,
        });
    if max_rows == 0 || max_rows > MAX_ROWS {
        return Err(ApiError::bad_request(format!(
            "max_rows must be between 1 and {MAX_ROWS}"
        )));
    }
    let started = Instant::now();
    let result = node
        .sql
        .collect(&body.sql, params, max_rows)
        .await
        .map_err(sql_error)?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    metrics::histogram!("commons_sql_query_seconds").record(elapsed_ms / 1000.0);
    let mut resp = match format {
        Format::Json => json_answer(&result, elapsed_ms)?,
        Format::Csv => respond(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            csv(&result.schema, &result.batches)?,
        ),
        Format::Arrow => respond(StatusCode::OK, ARROW_TYPE, arrow_ipc(&result)?),
    };
    let h = resp.headers_mut();
    h.insert("x-commons-rows", result.rows.into());
    h.insert(
        "x-commons-truncated",
        warp::http::HeaderValue::from_static(if result.truncated { "true" } else { "false" }),
    );
    Ok(resp)
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int8 | DataType::Int16 => "smallint".into(),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", type_name(f.data_type())),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        DataType::Null => "unknown".into(),
        other => other.to_string().to_lowercase(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("cannot encode the result: {e}"))
}

/// One column of a batch as JSON values.
fn json_column(a: &ArrayRef) -> Result<Vec<Value>, ApiError> {
    let n = a.len();
    let mut out = Vec::with_capacity(n);
    let opts = FormatOptions::default().with_null("");
    match a.data_type() {
        DataType::Int64 => {
            let p = a.as_primitive::<Int64Type>();
            for i in 0..n {
                out.push(if p.is_null(i) {
                    Value::Null
                } else {
                    json!(p.value(i))
                });
            }
        }
        DataType::Int32 => {
            let p = a.as_primitive::<Int32Type>();
            for i in 0..n {
                out.push(if p.is_null(i) {
                    Value::Null
                } else {
                    json!(p.value(i))
                });
            }
        }
        DataType::Float64 => {
            let p = a.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push(if p.is_null(i) {
                    Value::Null
                } else {
                    json!(p.value(i))
                });
            }
        }
        DataType::Float32 => {
            let p = a.as_primitive::<Float32Type>();
            for i in 0..n {
                out.push(if p.is_null(i) {
                    Value::Null
                } else {
                    json!(p.value(i))
                });
            }
        }
        DataType::Boolean => {
            let p = a.as_boolean();
            for i in 0..n {
                out.push(if p.is_null(i) {
                    Value::Null
                } else {
                    json!(p.value(i))
                });
            }
        }
        dt if dt.is_integer() => {
            let f = ArrayFormatter::try_new(a.as_ref(), &opts).map_err(internal)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    let s = f.value(i).to_string();
                    s.parse::<i128>()
                        .ok()
                        .and_then(|v| i64::try_from(v).ok().map(|v| json!(v)))
                        .unwrap_or(Value::String(s))
                });
            }
        }
        _ => {
            let f = ArrayFormatter::try_new(a.as_ref(), &opts).map_err(internal)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::String(f.value(i).to_string())
                });
            }
        }
    }
    Ok(out)
}

fn json_answer(r: &commons_query::sql::QueryResult, elapsed_ms: f64) -> Result<Resp, ApiError> {
    let columns: Vec<Value> = r
        .schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": type_name(f.data_type())}))
        .collect();
    let mut rows: Vec<Value> = Vec::with_capacity(r.rows);
    for b in &r.batches {
        let cols = b
            .columns()
            .iter()
            .map(json_column)
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(Value::Array(cols.iter().map(|c| c[i].clone()).collect()));
        }
    }
    Ok(super::json(
        StatusCode::OK,
        &json!({
            "columns": columns,
            "rows": rows,
            "row_count": r.rows,
            "truncated": r.truncated,
            "elapsed_ms": (elapsed_ms * 1000.0).round() / 1000.0,
        }),
    ))
}

fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Batches as CSV with a header line; nulls are empty fields.
pub(crate) fn csv(
    schema: &commons_query::sql::arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
) -> Result<String, ApiError> {
    let mut out = String::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(f.name(), &mut out);
    }
    out.push('\n');
    let opts = FormatOptions::default().with_null("");
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        for row in 0..b.num_rows() {
            for (i, f) in fmts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&f.value(row).to_string(), &mut out);
            }
            out.push('\n');
        }
    }
    Ok(out)
}

fn arrow_ipc(r: &commons_query::sql::QueryResult) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, &r.schema).map_err(internal)?;
        for b in &r.batches {
            w.write(b).map_err(internal)?;
        }
        w.finish().map_err(internal)?;
    }
    Ok(buf)
}
