//! What the identity wing's handlers share (one per instance, behind `web::Data`).

use std::collections::HashMap;
use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sqlx::PgPool;

use super::attempts::Attempts;
use super::csrf::Csrf;
use super::password::Hasher;
use super::settings::SignInSettings;
use super::throttle::{Scope, Throttle};
use super::wire::{FormOrJson, fields, url_or_redirect, wants_json};
use crate::origin::PublicOrigin;
use crate::proxy::forwarded::{self, TrustedProxies};
use crate::session::Sessions;

/// The identity wing's state.
#[derive(Debug)]
pub struct Identity {
    /// The `users` table.
    pub users: PgPool,
    /// Where every absolute URL points.
    pub origin: PublicOrigin,
    /// CSRF tokens for the next-auth forms.
    pub csrf: Csrf,
    /// Sign-in attempts, per account and per client (shared by every instance).
    pub throttle: Throttle,
    /// Requests that mail someone, per address and per client (the same two windows; every
    /// request counts).
    pub mail_throttle: Throttle,
    /// argon2id, a few at a time.
    pub hasher: Hasher,
    /// `gateway_sign_in_attempts_total`.
    pub attempts: Attempts,
    /// Where a sign-in is remembered, and how sessions end.
    pub sessions: Sessions,
    /// `AUTH_ALLOWED_EMAIL_DOMAINS`: the domains provider sign-ins may have (empty: any).
    pub allowed_email_domains: Vec<String>,
    trusted_proxies: TrustedProxies,
}

impl Identity {
    /// The wing's state: users in `users`, sessions in `sessions`, limits and hashing as
    /// `settings` say, provider sign-ins limited to `allowed_email_domains`, CSRF tokens keyed
    /// by `csrf`, clients found behind `trusted_proxies`.
    pub fn new(
        users: PgPool,
        origin: PublicOrigin,
        csrf: Csrf,
        settings: SignInSettings,
        allowed_email_domains: Vec<String>,
        sessions: Sessions,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        Self {
            throttle: Throttle::new(users.clone(), settings.limits, Scope::SignIn),
            mail_throttle: Throttle::new(users.clone(), settings.mail_limits, Scope::Mail),
            users,
            origin,
            csrf,
            hasher: Hasher::new(settings.hash_concurrency, settings.hash_queue),
            attempts: Attempts::default(),
            sessions,
            allowed_email_domains,
            trusted_proxies,
        }
    }

    /// The client address attempts are counted against (see [`forwarded::client_ip`]).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        forwarded::client_ip(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
        )
    }

    /// The fields of a next-auth form post (or JSON), when its `csrfToken` checks out; else
    /// the answer: 403 `{url}` (or a 302) to the sign-in page, nobody signed in.
    pub fn checked_form(
        &self,
        req: &HttpRequest,
        body: FormOrJson,
    ) -> Result<HashMap<String, String>, HttpResponse> {
        let fields = fields(body);
        if self.csrf.form_ok(req, &fields) {
            return Ok(fields);
        }
        let url = self.origin.url("/api/auth/signin?csrf=true");
        Err(url_or_redirect(
            StatusCode::FORBIDDEN,
            wants_json(&fields),
            &url,
        ))
    }
}
