//! The backend's one error type: what a handler or an extractor fails with.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use web_common::Problem;

/// Everything a handler or an extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`: anything wrong with the
    /// credential (missing, malformed, expired, forged, or its user no longer exists). Every
    /// such refusal answers the same body; the reason is logged at debug level only.
    #[error("invalid or missing bearer token")]
    Unauthorized,
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

    /// The error of an extractor a handler takes as a `Result` (its configured problem, or a
    /// bare problem of its status).
    pub fn from_extractor(err: &actix_web::Error) -> Self {
        match err.as_error::<Problem>() {
            Some(problem) => problem.clone().into(),
            None => Problem::new(err.as_response_error().status_code()).into(),
        }
    }

    fn as_problem(&self) -> Problem {
        match self {
            Self::Unauthorized => {
                Problem::new(StatusCode::UNAUTHORIZED).detail("A valid bearer token is required.")
            }
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
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Problem(p) => p.status_code(),
            Self::Database(_) => self.as_problem().status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Database(e) = self {
            tracing::error!(error = %e, "database error");
        }
        let mut res = self.as_problem().error_response();
        if let Self::Unauthorized = self {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_is_a_401_problem_with_a_bearer_challenge() {
        let res = ApiError::Unauthorized.error_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="invalid_token""#
        );
        let problem = res.extensions().get::<Problem>().cloned().unwrap();
        assert_eq!(
            problem.detail.as_deref(),
            Some("A valid bearer token is required.")
        );
    }

    #[test]
    fn an_extractor_error_keeps_its_problem() {
        let problem = Problem::bad_request("`limit` is wrong.").field("limit", "is wrong");
        let err = ApiError::from_extractor(&actix_web::Error::from(problem.clone()));
        assert!(matches!(err, ApiError::Problem(p) if p == problem));
        let other = actix_web::error::ErrorPayloadTooLarge("too big");
        let err = ApiError::from_extractor(&other);
        assert!(matches!(err, ApiError::Problem(p) if p.status == 413));
    }
}
