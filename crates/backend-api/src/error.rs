//! The backend's one error type: what a handler or an extractor fails with.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use web_common::Problem;

/// Why a bearer token was refused (the answer is the same 401 whatever the reason; the reason
/// is logged at debug level and counted by `backend_token_verification_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, or one with a critical extension.
    Malformed,
    /// Expired.
    Expired,
    /// A bad signature, or an algorithm other than HS256.
    Signature,
    /// A claim is wrong (issuer, audience, lifetime, not valid yet) or absent.
    Claims,
    /// A `kid` outside the key ring.
    UnknownKey,
    /// A valid token whose user no longer exists.
    UnknownUser,
}

impl TokenRefusal {
    /// Every reason (the metric's label values).
    pub const ALL: [TokenRefusal; 7] = [
        Self::Missing,
        Self::Malformed,
        Self::Expired,
        Self::Signature,
        Self::Claims,
        Self::UnknownKey,
        Self::UnknownUser,
    ];

    /// The reason as a label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::Signature => "signature",
            Self::Claims => "claims",
            Self::UnknownKey => "unknown_key",
            Self::UnknownUser => "unknown_user",
        }
    }
}

impl From<&auth_contract::VerifyError> for TokenRefusal {
    fn from(e: &auth_contract::VerifyError) -> Self {
        use auth_contract::VerifyError as V;
        match e {
            V::Malformed | V::CriticalExtension => Self::Malformed,
            V::UnsupportedAlgorithm | V::BadSignature => Self::Signature,
            V::UnknownKey => Self::UnknownKey,
            V::Expired => Self::Expired,
            V::NotYetValid
            | V::WrongIssuer
            | V::WrongAudience
            | V::MissingClaim(_)
            | V::LifetimeNotAccepted => Self::Claims,
        }
    }
}

/// A 403 for a role too low, naming the role that was needed (`owner`, `admin`...; a
/// response extension, for `backend_role_denials_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDenied(pub &'static str);

/// Everything a handler or an extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`: anything wrong with the
    /// credential (missing, malformed, expired, forged, or its user no longer exists). Every
    /// such refusal answers the same body; the reason is logged at debug level only.
    #[error("invalid or missing bearer token ({})", .0.as_str())]
    Unauthorized(TokenRefusal),
    /// A client-facing problem (validation, 403, 404, 409...), sent as is.
    #[error("{0}")]
    Problem(Problem),
    /// A member whose role is too low (403): the role needed, and the answer.
    #[error("{problem}")]
    Denied {
        /// The role the action needed, as on the wire (`Role::as_str`).
        needed: &'static str,
        /// The 403 problem.
        problem: Problem,
    },
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
            Self::Unauthorized(_) => {
                Problem::new(StatusCode::UNAUTHORIZED).detail("A valid bearer token is required.")
            }
            Self::Problem(p) | Self::Denied { problem: p, .. } => p.clone(),
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
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Denied { problem, .. } => problem.status_code(),
            Self::Problem(p) => p.status_code(),
            Self::Database(_) => self.as_problem().status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Database(e) = self {
            tracing::error!(error = %e, "database error");
        }
        let mut res = self.as_problem().error_response();
        match self {
            Self::Unauthorized(why) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
                // For `backend_token_verification_failures_total` (see `crate::metrics`).
                res.extensions_mut().insert(*why);
            }
            Self::Denied { needed, .. } => {
                // For `backend_role_denials_total`.
                res.extensions_mut().insert(RoleDenied(needed));
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_is_a_401_problem_with_a_bearer_challenge() {
        let res = ApiError::Unauthorized(TokenRefusal::Expired).error_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(
            res.extensions().get::<TokenRefusal>(),
            Some(&TokenRefusal::Expired)
        );
        let problem = res.extensions().get::<Problem>().cloned().unwrap();
        assert_eq!(
            problem.detail.as_deref(),
            Some("A valid bearer token is required.")
        );
    }

    #[test]
    fn every_verification_failure_has_its_reason() {
        use auth_contract::VerifyError as V;
        for (e, reason) in [
            (V::Malformed, "malformed"),
            (V::CriticalExtension, "malformed"),
            (V::UnsupportedAlgorithm, "signature"),
            (V::BadSignature, "signature"),
            (V::UnknownKey, "unknown_key"),
            (V::Expired, "expired"),
            (V::NotYetValid, "claims"),
            (V::WrongIssuer, "claims"),
            (V::WrongAudience, "claims"),
            (V::MissingClaim("sub"), "claims"),
            (V::LifetimeNotAccepted, "claims"),
        ] {
            assert_eq!(TokenRefusal::from(&e).as_str(), reason, "{e:?}");
        }
        let labels: Vec<_> = TokenRefusal::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "missing",
                "malformed",
                "expired",
                "signature",
                "claims",
                "unknown_key",
                "unknown_user"
            ]
        );
    }

    #[test]
    fn a_role_denial_names_the_role_on_the_answer() {
        let res = ApiError::Denied {
            needed: "admin",
            problem: Problem::forbidden("no"),
        }
        .error_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.extensions().get::<RoleDenied>(),
            Some(&RoleDenied("admin"))
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
