//! API errors: an HTTP status, a stable code and a readable message, answered as
//! `{"error":{"code","message"}}`. The codes are the table in docs/API.md.

use commons_storage::Error as StoreError;
use commons_storage::parse::ParseError;
use warp::http::StatusCode;

use super::{Resp, json};
use crate::auth::AuthError;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Readable message.
    pub message: String,
    /// For 429: when the quota resets, unix ms.
    pub reset_at: Option<u64>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            reset_at: None,
        }
    }

    /// 400 bad_request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 not_found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 413 too_large.
    pub fn too_large(size: u64, limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is {size} bytes, over the limit of {limit} bytes"),
        )
    }

    /// 500 internal.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP response.
    pub fn into_response(self) -> Resp {
        let mut body = serde_json::json!({
            "error": {"code": self.code, "message": self.message}
        });
        if let Some(r) = self.reset_at {
            body["error"]["reset_at"] = r.into();
        }
        let mut resp = json(self.status, &body);
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The unread body stays on the wire: tell the client not to reuse the connection.
            resp.headers_mut()
                .insert("connection", warp::http::HeaderValue::from_static("close"));
        }
        if let Some(r) = self.reset_at {
            let secs = r.saturating_sub(commons_storage::now_ms()).div_ceil(1000);
            if let Ok(v) = warp::http::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        let code = match &e {
            ParseError::Unsupported { .. } => "unsupported_type",
            ParseError::Empty => "empty_file",
            ParseError::InvalidUtf8 { .. } => "invalid_utf8",
            ParseError::TypeMismatch { .. } => "type_mismatch",
            ParseError::MalformedRecord { .. } => "malformed_record",
            ParseError::NoRows => "no_rows",
            ParseError::Extract { .. } => "unreadable_file",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        match e {
            StoreError::NotFound { .. } => ApiError::new(S::NOT_FOUND, "not_found", e.to_string()),
            StoreError::SlugTaken(_) => ApiError::new(S::CONFLICT, "slug_taken", e.to_string()),
            StoreError::InvalidSlug(_) => {
                ApiError::new(S::BAD_REQUEST, "invalid_slug", e.to_string())
            }
            StoreError::Forbidden(_) => ApiError::new(S::FORBIDDEN, "forbidden", e.to_string()),
            StoreError::InvalidState(_) => {
                ApiError::new(S::CONFLICT, "invalid_state", e.to_string())
            }
            StoreError::Invalid(_) => ApiError::bad_request(e.to_string()),
            StoreError::NonceReused { .. } => {
                ApiError::new(S::UNAUTHORIZED, "nonce_reused", e.to_string())
            }
            StoreError::QuotaExceeded { reset_at_ms, .. } => ApiError {
                reset_at: Some(reset_at_ms),
                ..ApiError::new(S::TOO_MANY_REQUESTS, "quota_exceeded", e.to_string())
            },
            StoreError::TooLarge { .. } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            StoreError::Parse(p) => p.into(),
            StoreError::Db(_)
            | StoreError::Commit(_)
            | StoreError::Corrupt(_)
            | StoreError::Schema { .. }
            | StoreError::Internal(_) => {
                tracing::error!(error = %e, "storage failure");
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::SignerMismatch { .. } => "signer_mismatch",
            AuthError::Expired { .. } => "signature_expired",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
    }
}
