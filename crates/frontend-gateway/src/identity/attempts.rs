//! `gateway_sign_in_attempts_total{method,outcome}`: every sign-in attempt, by how the user
//! tried (a password, a mailed link, an identity provider) and how it ended.

use actix_web::ResponseError;
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::error::Error;

/// How a user tried to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An email and a password.
    Credentials,
    /// A mailed sign-in link.
    Email,
    /// An identity provider (OpenID Connect, GitHub, ...): the start and the callback.
    OAuth,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Signed in.
    Success,
    /// Refused: a wrong password, an unverified address, a dead link, a refused provider answer.
    Failure,
    /// Refused by the sign-in (or mail) limits before any check.
    Throttled,
    /// No verdict: the database, the hashing queue or a provider did not answer.
    Unavailable,
}

impl Method {
    const ALL: [Method; 3] = [Method::Credentials, Method::Email, Method::OAuth];

    fn label(self) -> &'static str {
        match self {
            Method::Credentials => "credentials",
            Method::Email => "email",
            Method::OAuth => "oauth",
        }
    }
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Throttled,
        Outcome::Unavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Throttled => "throttled",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// The outcome of an attempt that failed with `error`: 429 throttled, a 5xx unavailable,
    /// anything else a failure.
    pub fn of_error(error: &Error) -> Self {
        match error.status_code().as_u16() {
            429 => Outcome::Throttled,
            500.. => Outcome::Unavailable,
            _ => Outcome::Failure,
        }
    }
}

/// The counters, one per method and outcome (resolved once: counting is one atomic add).
#[derive(Debug, Clone)]
pub struct Attempts {
    family: IntCounterVec,
    counters: [[IntCounter; 4]; 3],
}

impl Default for Attempts {
    fn default() -> Self {
        let family = IntCounterVec::new(
            Opts::new(
                "gateway_sign_in_attempts_total",
                "Sign-in attempts by method (credentials, email, oauth) and outcome (success, failure, throttled, unavailable).",
            ),
            &["method", "outcome"],
        )
        .expect("a valid metric");
        let counters = Method::ALL
            .map(|m| Outcome::ALL.map(|o| family.with_label_values(&[m.label(), o.label()])));
        Self { family, counters }
    }
}

impl Attempts {
    /// Counts one attempt.
    pub fn record(&self, method: Method, outcome: Outcome) {
        self.counters[method as usize][outcome as usize].inc();
    }

    /// The collector, for the service's registry.
    pub fn collector(&self) -> Box<dyn Collector> {
        Box::new(self.family.clone())
    }
}
