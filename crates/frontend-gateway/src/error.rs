//! The crate's error type: what went wrong, tagged by where (the client, the upstream, or
//! inside the gateway), mapped to a problem+json answer. Causes are logged, never sent.
//!
//! It names only foreign types, so every wing can return it without this module knowing the
//! wings: a wing's own error converts into it where that error is defined.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use web_common::Problem;

/// Everything a gateway handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was wrong (4xx): answered as the problem says.
    #[error("{0}")]
    Client(Problem),
    /// Too many attempts (per account or per client): 429 with `Retry-After` in seconds.
    #[error("too many sign-in attempts")]
    Throttled {
        /// Whole seconds until the next attempt may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// Too many requests already wait for a password hash (`PASSWORD_HASH_QUEUE`): 503 with
    /// `Retry-After` in seconds, at once.
    #[error("the password hashing queue is full")]
    Busy {
        /// Whole seconds after which to try again.
        retry_after_secs: u64,
    },
    /// The request body is larger than `PROXY_MAX_BODY_BYTES`: 413.
    #[error("the request body is too large")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The client's request body broke off (a `Content-Length` body cut short) or was malformed
    /// (a bad chunk) while it streamed upstream: 400, logged at info (the upstream is not to
    /// blame, and anyone can send one).
    #[error("the request body broke off or was malformed")]
    ClientBody(#[source] actix_web::error::PayloadError),
    /// The upstream refused the connection, reset it, or sent garbage: 502.
    #[error("the upstream could not be reached")]
    UpstreamUnreachable(#[source] awc::error::SendRequestError),
    /// The upstream took longer than `PROXY_TIMEOUT_SECS`: 504.
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    /// Postgres failed: 503 when it cannot be reached, 500 otherwise.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The session could not be written: 500.
    #[error("the session could not be updated")]
    Session(#[from] actix_session::SessionInsertError),
    /// A token could not be minted: 500.
    #[error("a token could not be minted")]
    Token(#[from] auth_contract::SignError),
    /// Anything else inside the gateway (argon2, a thread that could not start): 500.
    #[error("{what} failed")]
    Internal {
        /// What failed, for the log.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Self::Client(problem)
    }
}

impl Error {
    fn problem(&self) -> Problem {
        match self {
            Self::Client(problem) => problem.clone(),
            Self::Throttled { .. } => Problem::new(StatusCode::TOO_MANY_REQUESTS)
                .detail("Too many sign-in attempts; try again after the time in Retry-After."),
            Self::Busy { .. } => Problem::unavailable(
                "Too many sign-ins at once; try again after the time in Retry-After.",
            ),
            Self::BodyTooLarge { limit } => Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .detail(format!("The body is larger than {limit} bytes.")),
            Self::ClientBody(_) => {
                Problem::bad_request("The request body broke off or was malformed.")
            }
            Self::UpstreamUnreachable(_) => Problem::new(StatusCode::BAD_GATEWAY)
                .detail("The upstream service could not be reached."),
            Self::UpstreamTimeout => Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .detail("The upstream service did not answer in time."),
            Self::Database(e) if web_common::db::is_unavailable(e) => database_unavailable(),
            Self::Database(_) | Self::Session(_) | Self::Token(_) | Self::Internal { .. } => {
                Problem::internal()
            }
        }
    }
}

/// 503: the database (users, sessions) is not answering. Nobody is signed in meanwhile.
pub fn database_unavailable() -> Problem {
    Problem::unavailable("The session store is unavailable; try again shortly.")
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.problem().error_response();
        match self {
            Self::Throttled { retry_after_secs } => {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Busy { retry_after_secs } => {
                tracing::warn!("the password hashing queue is full: answered 503");
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Client(_) | Self::BodyTooLarge { .. } => {}
            Self::ClientBody(cause) => {
                tracing::info!(%cause, "a client's request body broke off; answered 400");
            }
            _ => {
                let mut chain = String::new();
                let mut source = std::error::Error::source(self);
                while let Some(cause) = source {
                    chain.push_str(": ");
                    chain.push_str(&cause.to_string());
                    source = cause.source();
                }
                tracing::error!(error = %self, cause = %chain, "request failed");
            }
        }
        res
    }
}
