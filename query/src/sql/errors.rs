//! SQL errors with a PostgreSQL SQLSTATE and a stable API code, classified from DataFusion's.

use std::time::Duration;

use datafusion::error::DataFusionError;

/// Why a SQL query failed: what the HTTP API answers (`code`, 400 unless `internal`) and what
/// the wire protocol sends (`sqlstate`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// PostgreSQL SQLSTATE, e.g. `42601` for a syntax error.
    pub sqlstate: &'static str,
    /// Stable API error code, e.g. `sql_syntax`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl SqlError {
    fn new(sqlstate: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        SqlError {
            sqlstate,
            code,
            message: message.into(),
        }
    }

    /// A statement that would write.
    pub fn read_only(what: &str) -> Self {
        Self::new(
            "25006",
            "sql_read_only",
            format!(
                "SQL is read-only here: {what} is not allowed (only SELECT, WITH, EXPLAIN and SHOW run)"
            ),
        )
    }

    /// The query ran past its time limit.
    pub fn timeout(limit: Duration) -> Self {
        Self::new(
            "57014",
            "sql_timeout",
            format!(
                "canceling statement due to statement timeout: the query ran longer than the limit of {} ms",
                limit.as_millis()
            ),
        )
    }

    /// The client asked to cancel the query.
    pub fn cancelled() -> Self {
        Self::new(
            "57014",
            "sql_cancelled",
            "canceling statement due to user request",
        )
    }

    /// SQL that does not parse.
    pub fn syntax(parser_message: &str) -> Self {
        let m = parser_message
            .trim_start_matches("sql parser error: ")
            .trim_start_matches("SQL error: ");
        let at = if m.contains("found: EOF") {
            " at the end of the query"
        } else {
            ""
        };
        Self::new("42601", "sql_syntax", format!("syntax error: {m}{at}"))
    }

    /// Bad input that is not SQL (e.g. a malformed parameter).
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new("22023", "sql_error", message)
    }

    /// Is this a bug rather than bad input?
    pub fn is_internal(&self) -> bool {
        self.sqlstate.starts_with("XX")
    }

    /// Classify a DataFusion error.
    pub fn from_df(e: DataFusionError) -> Self {
        classify(&e)
    }
}

fn classify(e: &DataFusionError) -> SqlError {
    use DataFusionError as E;
    match e {
        E::External(b) => {
            if let Some(s) = b.downcast_ref::<SqlError>() {
                return s.clone();
            }
            if let Some(d) = b.downcast_ref::<DataFusionError>() {
                return classify(d);
            }
            SqlError::new("XX000", "internal", format!("internal error: {b}"))
        }
        E::Context(_, inner) | E::Diagnostic(_, inner) => classify(inner),
        E::Shared(inner) => classify(inner),
        E::Collection(v) => v
            .first()
            .map(classify)
            .unwrap_or_else(|| SqlError::new("XX000", "internal", e.to_string())),
        E::SQL(p, _) => SqlError::syntax(&p.to_string()),
        E::SchemaError(s, _) => {
            let msg = s.to_string();
            if msg.contains("No field named") || msg.contains("not found") {
                SqlError::new("42703", "sql_undefined", msg)
            } else if msg.contains("mbiguous") {
                SqlError::new("42702", "sql_undefined", msg)
            } else {
                SqlError::new("42P01", "sql_undefined", msg)
            }
        }
        E::Plan(msg) => plan_error(msg),
        E::NotImplemented(msg) => {
            SqlError::new("0A000", "sql_unsupported", format!("not supported: {msg}"))
        }
        E::ResourcesExhausted(msg) => SqlError::new(
            "53200",
            "sql_memory",
            format!("query cancelled: it needed more memory than the SQL memory limit ({msg})"),
        ),
        E::ArrowError(a, _) => {
            let msg = a.to_string();
            if msg.contains("ivide by zero") {
                SqlError::new("22012", "sql_type", msg)
            } else {
                SqlError::new("22P02", "sql_type", msg)
            }
        }
        E::Execution(msg) => {
            if msg.contains("Cannot cast") || msg.contains("cast") {
                SqlError::new("22P02", "sql_type", msg.clone())
            } else {
                SqlError::new("22000", "sql_error", msg.clone())
            }
        }
        E::Configuration(msg) => SqlError::new("22023", "sql_error", msg.clone()),
        other => SqlError::new("XX000", "internal", format!("internal error: {other}")),
    }
}

fn plan_error(msg: &str) -> SqlError {
    let lower = msg.to_lowercase();
    if lower.contains("table") && lower.contains("not found") {
        return SqlError::new("42P01", "sql_undefined", msg);
    }
    if lower.contains("no field named") || lower.contains("column") && lower.contains("not found") {
        return SqlError::new("42703", "sql_undefined", msg);
    }
    if lower.contains("invalid function")
        || lower.contains("function") && lower.contains("not found")
        || lower.contains("no function matches")
    {
        return SqlError::new("42883", "sql_undefined", msg);
    }
    if lower.contains("cannot infer common")
        || lower.contains("coerc")
        || lower.contains("type")
        || lower.contains("cast")
    {
        return SqlError::new("42804", "sql_type", msg);
    }
    SqlError::new("42000", "sql_error", msg)
}
