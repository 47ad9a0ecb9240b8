//! The backend's own metrics, besides the request and pool metrics every service has
//! ([`web_common::metrics`]): refused tokens by reason and role denials by the role needed.
//!
//! Both are read off the answer: an [`ApiError`](crate::error::ApiError) puts its
//! [`TokenRefusal`] or [`RoleDenied`] in the response's extensions, and [`Refusals::count`]
//! counts them, so the checks themselves stay pure and know nothing of metrics.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts};

use crate::error::{RoleDenied, TokenRefusal};
use crate::roles::Role;

/// `backend_token_verification_failures_total{reason}` and `backend_role_denials_total{required}`.
#[derive(Debug, Clone)]
pub struct Refusals {
    tokens: IntCounterVec,
    roles: IntCounterVec,
}

impl Default for Refusals {
    fn default() -> Self {
        Self::new()
    }
}

impl Refusals {
    /// The two counters, every label value present from the start (at 0).
    pub fn new() -> Self {
        let tokens = IntCounterVec::new(
            Opts::new(
                "backend_token_verification_failures_total",
                "Requests refused 401 by reason: missing, malformed, expired, signature, claims, unknown_key, unknown_user.",
            ),
            &["reason"],
        )
        .expect("a valid metric");
        let roles = IntCounterVec::new(
            Opts::new(
                "backend_role_denials_total",
                "Requests refused 403 because the caller's workspace role is too low, by the role needed.",
            ),
            &["required"],
        )
        .expect("a valid metric");
        for why in TokenRefusal::ALL {
            tokens.with_label_values(&[why.as_str()]);
        }
        for role in Role::ALL {
            roles.with_label_values(&[role.as_str()]);
        }
        Self { tokens, roles }
    }

    /// The collectors, for the service's registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.tokens.clone()), Box::new(self.roles.clone())]
    }

    /// Middleware: counts the refusal an answer carries.
    pub async fn count(
        self,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        let res = next.call(req).await?;
        if res.status().is_client_error() {
            let extensions = res.response().extensions();
            if let Some(why) = extensions.get::<TokenRefusal>() {
                self.tokens.with_label_values(&[why.as_str()]).inc();
            }
            if let Some(RoleDenied(role)) = extensions.get::<RoleDenied>() {
                self.roles.with_label_values(&[*role]).inc();
            }
        }
        Ok(res)
    }
}
