//! The one error type of the server and its `application/problem+json` (RFC 9457) form.
//!
//! Every failure a handler can meet becomes an `AppError`; the variant decides the status.
//! Client mistakes say what was wrong and how to fix it; server faults say as little as is
//! useful (the detail goes to the log, never a password or a query).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Result alias used across the crate.
pub type AppResult<T> = Result<T, AppError>;

/// What went wrong, by who can fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// The request is malformed: 400.
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method: 405 (the router adds `Allow`).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request body is larger than the route accepts: 413.
    #[error("{0}")]
    TooLarge(String),
    /// The source cannot answer now (database down, pool exhausted): 503 with `Retry-After`.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: 500, details only in the log.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// Shorthand for a 400 with a message.
    pub fn bad(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }

    /// Shorthand for a 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "Bad request",
            AppError::NotFound(_) => "Not found",
            AppError::MethodNotAllowed(_) => "Method not allowed",
            AppError::TooLarge(_) => "Content too large",
            AppError::Unavailable(_) => "Service unavailable",
            AppError::Internal(_) => "Internal error",
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                tracing::warn!(error = %e, "database unavailable");
                AppError::Unavailable("the database is unavailable; retry shortly".into())
            }
            // Cancelled by statement_timeout (57014), the server shutting down or starting
            // (57P01-57P03), or a broken connection (class 08): retrying later can work.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c == "57014" || c.starts_with("57P") || c.starts_with("08")
                }) =>
            {
                tracing::warn!(error = %e, "database query stopped");
                AppError::Unavailable("the database could not answer in time; retry shortly".into())
            }
            _ => {
                tracing::error!(error = %e, "database error");
                AppError::Internal("database query failed".into())
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            AppError::Internal(_) => "the server failed to answer; see its log".to_string(),
            other => other.to_string(),
        };
        if let AppError::Internal(msg) = &self {
            tracing::error!(%msg, "internal error");
        }
        let body = json!({
            "type": "about:blank",
            "title": self.title(),
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
