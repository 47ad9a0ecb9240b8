//! The backend's error type: a [`Problem`] to send, or a database failure to log and hide.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use web_common::Problem;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client-facing problem (validation, 403, 404, 409...), sent as is.
    #[error("{0}")]
    Problem(Problem),
    /// The database failed; the cause is logged, the client gets a bare 500 or 503.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl ApiError {
    /// 404 for a workspace the caller cannot see, whether or not it exists.
    pub fn workspace_not_found() -> Self {
        Problem::not_found("No such workspace.").into()
    }

    fn as_problem(&self) -> Problem {
        match self {
            Self::Problem(p) => p.clone(),
            Self::Database(e) if web_common::db::is_unavailable(e) => {
                Problem::unavailable("The database is not answering; try again shortly.")
            }
            Self::Database(_) => Problem::internal(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.as_problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Database(e) = self {
            tracing::error!(error = %e, "database error");
        }
        self.as_problem().error_response()
    }
}
