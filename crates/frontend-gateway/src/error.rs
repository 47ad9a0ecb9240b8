//! The crate's error type: what went wrong, tagged by where (the client, the upstream, or
//! inside the gateway), mapped to a problem+json answer. Causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use web_common::Problem;

/// Everything a gateway handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was wrong (4xx): answered as the problem says.
    #[error("{0}")]
    Client(Problem),
    /// The upstream refused the connection, reset it, or sent garbage: 502.
    #[error("the upstream could not be reached")]
    UpstreamUnreachable(#[source] awc::error::SendRequestError),
    /// The upstream took longer than `PROXY_TIMEOUT_SECS`: 504.
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    /// Postgres failed: 500.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// argon2 or its blocking task failed: 500.
    #[error("password hashing failed")]
    Password(#[from] crate::password::PasswordError),
    /// The session could not be written: 500.
    #[error("the session could not be updated")]
    Session(#[from] actix_session::SessionInsertError),
    /// A token could not be minted: 500.
    #[error("a token could not be minted")]
    Token(#[from] auth_contract::SignError),
    /// Too many sign-in attempts (per account or per IP): 429 with `Retry-After`.
    #[error("too many sign-in attempts")]
    Throttled(crate::throttle::Throttled),
    /// The request body is larger than `PROXY_MAX_BODY_BYTES`: 413.
    #[error("the request body is too large")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

impl From<crate::throttle::Throttled> for Error {
    fn from(t: crate::throttle::Throttled) -> Self {
        Self::Throttled(t)
    }
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
            Self::UpstreamUnreachable(_) => Problem::new(StatusCode::BAD_GATEWAY)
                .detail("The upstream service could not be reached."),
            Self::UpstreamTimeout => Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .detail("The upstream service did not answer in time."),
            Self::Throttled(_) => Problem::new(StatusCode::TOO_MANY_REQUESTS)
                .detail("Too many sign-in attempts; try again after the time in Retry-After."),
            Self::BodyTooLarge { limit } => Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .detail(format!("The body is larger than {limit} bytes.")),
            Self::Database(e) if web_common::db::is_unavailable(e) => database_unavailable(),
            Self::Database(_) | Self::Password(_) | Self::Session(_) | Self::Token(_) => {
                Problem::internal()
            }
        }
    }
}

/// 503: the database (users, sessions) is not answering. Nobody is signed in meanwhile.
pub fn database_unavailable() -> Problem {
    Problem::unavailable("The session store is unavailable; try again shortly.")
}

/// Middleware around the session middleware: a session that cannot be loaded or saved (the
/// database is down) fails closed, as a 503 problem carrying the request id, instead of an
/// opaque 500. (It stays an `Err`: the request cannot be cloned before routing, so there is no
/// request to build a response on.)
pub async fn session_failures(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let request_id = req
        .extensions()
        .get::<web_common::RequestId>()
        .map(|id| id.as_str().to_owned());
    let path = req.path().to_owned();
    next.call(req).await.map_err(|e| {
        tracing::error!(error = %e, "the session could not be loaded or saved");
        let mut problem = database_unavailable();
        problem.request_id = request_id;
        problem.instance = Some(path);
        problem.into()
    })
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Throttled(t) = self {
            let mut res = self.problem().error_response();
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(t.retry_after_secs()),
            );
            return res;
        }
        if !matches!(self, Self::Client(_) | Self::BodyTooLarge { .. }) {
            let mut chain = String::new();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %self, cause = %chain, "request failed");
        }
        self.problem().error_response()
    }
}
