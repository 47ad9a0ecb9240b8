//! The redirect-based providers (OpenID Connect, GitHub): the flow they share.
//!
//! `POST /api/auth/signin/{id}` ([`start`]) records a [`flow`] (state, PKCE verifier, nonce,
//! callbackUrl) and answers the provider's authorization URL; the provider sends the browser
//! back to `GET /api/auth/callback/{id}` ([`callback`]), which takes the flow, asks the
//! provider who signed in ([`oidc`] verifies the ID token, [`github`] reads the REST API),
//! applies the linking rules ([`crate::identity::linking`]) and starts the session. Every
//! failure is a redirect to `/api/auth/error?error=<next-auth code>` that signs nobody in.

pub mod discovery;
pub mod flow;
pub mod github;
pub mod http;
pub mod oidc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use time::OffsetDateTime;
use web_common::Problem;

use self::flow::{Binding, Flow, Mismatch};
use self::github::GitHub;
use self::http::{ProviderHttp, printable};
use self::oidc::Oidc;
use crate::error::Error;
use crate::identity::attempts::{Method, Outcome};
use crate::identity::linking::{self, Refusal};
use crate::identity::settings::ClientSettings;
use crate::identity::sign_in::start_session;
use crate::identity::state::Identity;
use crate::identity::throttle;
use crate::identity::wire::{url_or_redirect, wants_json};
use crate::session::{SignInOrigin, UserSession};

/// How recent a sign-in must be to link a provider to it (or to set a first password).
pub const FRESH_SIGN_IN: Duration = Duration::from_secs(600);

/// A redirect-based provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuth {
    /// OpenID Connect.
    Oidc(Arc<Oidc>),
    /// GitHub.
    GitHub(Arc<GitHub>),
}

/// How a callback failed: the next-auth error code the browser is sent to, and why (logged).
#[derive(Debug)]
enum Failure {
    /// `OAuthSignin`: the sign-in could not start (the provider is unreachable).
    SignIn(String),
    /// `OAuthCallback`: the provider's answer was refused.
    Callback(String),
    /// `OAuthAccountNotLinked`.
    NotLinked(&'static str),
    /// `AccessDenied`.
    AccessDenied(String),
    /// `Callback`: the gateway itself failed.
    Internal(Error),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Self::SignIn(_) => "OAuthSignin",
            Self::Callback(_) => "OAuthCallback",
            Self::NotLinked(_) => "OAuthAccountNotLinked",
            Self::AccessDenied(_) => "AccessDenied",
            Self::Internal(_) => "Callback",
        }
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AccessDenied(why) => Self::AccessDenied(why.to_owned()),
            Refusal::NotLinked(why) => Self::NotLinked(why),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Internal(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl OAuth {
    /// Its registration and policy.
    pub fn client(&self) -> &ClientSettings {
        match self {
            Self::Oidc(p) => &p.client,
            Self::GitHub(p) => &p.client,
        }
    }

    fn redirect_uri(&self, identity: &Identity) -> String {
        identity
            .origin
            .url(&format!("/api/auth/callback/{}", self.client().id))
    }

    /// `POST /api/auth/signin/{id}` (the CSRF token already checked): records the flow and
    /// answers the authorization URL (`{url}` with `json=true`, else a 302); a client past its
    /// `SIGNIN_MAX_ATTEMPTS_PER_IP` gets a 429 first. With `link=true`,
    /// the flow links the provider to the signed-in user (a sign-in under
    /// [`FRESH_SIGN_IN`] old, else a 403 problem).
    pub async fn start(
        &self,
        req: &HttpRequest,
        fields: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
        http: &ProviderHttp,
    ) -> Result<HttpResponse, Error> {
        let json = wants_json(fields);
        let provider = self.client().id.as_str();
        // Each start writes a flow row: starts count against the client's sign-in attempts.
        if let Err(refusal) = identity
            .throttle
            .attempt_from(identity.client_ip(req))
            .await
        {
            if let throttle::Refusal::Throttled(throttled) = &refusal {
                tracing::warn!(
                    provider,
                    retry_after = throttled.retry_after_secs(),
                    "provider sign-in throttled"
                );
            }
            let refused = Error::from(refusal);
            identity
                .attempts
                .record(Method::OAuth, Outcome::of_error(&refused));
            return Err(refused);
        }
        let (link_user_id, link_marker) = if fields.get("link").is_some_and(|v| v == "true") {
            let Some(user) = session.user() else {
                return Err(Problem::new(StatusCode::UNAUTHORIZED)
                    .detail("Sign in first to link a provider.")
                    .into());
            };
            if !is_fresh(user.signed_in_at) {
                return Err(Problem::forbidden(
                    "Linking needs a recent sign-in: sign out, sign in again, then link within 10 minutes.",
                )
                .into());
            }
            let marker = flow::random_token();
            session.set_link_marker(&marker)?;
            (Some(user.id), Some(marker))
        } else {
            (None, None)
        };
        let (state, nonce, verifier) = (
            flow::random_token(),
            flow::random_token(),
            flow::random_token(),
        );
        let challenge = flow::challenge(&verifier);
        let redirect_uri = self.redirect_uri(identity);
        let url = match self {
            Self::Oidc(oidc) => match oidc.metadata(http).await {
                Ok(d) => {
                    oidc.authorization_url(&d.metadata, &redirect_uri, &state, &nonce, &challenge)
                }
                Err(e) => {
                    let failure = Failure::SignIn(e.to_string());
                    return Ok(failed(identity, provider, &failure, json));
                }
            },
            Self::GitHub(github) => github.authorization_url(&redirect_uri, &state, &challenge),
        };
        let url = match url {
            Ok(url) => url,
            Err(e) => {
                let failure = Failure::SignIn(format!("bad authorization endpoint ({e})"));
                return Ok(failed(identity, provider, &failure, json));
            }
        };
        let binding = Binding::new(identity.sessions.secure());
        let (browser, cookie) = binding.issue(req);
        let callback_url = identity
            .origin
            .same_origin_url(fields.get("callbackUrl").map(String::as_str));
        let record = Flow {
            provider: provider.to_owned(),
            code_verifier: verifier,
            nonce,
            callback_url,
            link_user_id,
            link_marker,
        };
        flow::insert(&identity.users, &state, &browser, &record).await?;
        let mut res = url_or_redirect(StatusCode::OK, json, &url);
        res.add_cookie(&cookie).map_err(|e| Error::Internal {
            what: "setting the flow cookie",
            source: Box::new(e),
        })?;
        Ok(res)
    }

    /// `GET /api/auth/callback/{id}`: the provider's answer. A 302 to the flow's callbackUrl
    /// with a new session, or to `/api/auth/error?error=<code>`.
    pub async fn callback(
        &self,
        req: &HttpRequest,
        query: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
        http: &ProviderHttp,
    ) -> HttpResponse {
        let provider = self.client().id.as_str();
        match self.complete(req, query, session, identity, http).await {
            Ok(url) => {
                identity.attempts.record(Method::OAuth, Outcome::Success);
                url_or_redirect(StatusCode::FOUND, false, &url)
            }
            Err(failure) => {
                let outcome = match &failure {
                    Failure::Internal(e) => Outcome::of_error(e),
                    _ => Outcome::Failure,
                };
                identity.attempts.record(Method::OAuth, outcome);
                failed(identity, provider, &failure, false)
            }
        }
    }

    async fn complete(
        &self,
        req: &HttpRequest,
        query: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
        http: &ProviderHttp,
    ) -> Result<String, Failure> {
        let client = self.client();
        let provider = client.id.as_str();
        let param = |name: &str| {
            query
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let state = param("state").ok_or_else(|| Failure::Callback("no state".into()))?;
        let binding = Binding::new(identity.sessions.secure());
        let flow = flow::take(&identity.users, state, binding.of(req).as_deref(), provider)
            .await?
            .map_err(|m: Mismatch| Failure::Callback(m.to_string()))?;
        if let Self::Oidc(oidc) = self {
            // RFC 9207: a response from another issuer (a mix-up) is refused before anything
            // else is read from it.
            let advertised = oidc
                .discovered()
                .is_some_and(|d| d.metadata.authorization_response_iss_parameter_supported);
            match param("iss") {
                Some(iss) if iss != oidc.issuer => {
                    return Err(Failure::Callback(format!(
                        "the response's iss is {:?}",
                        printable(iss, 200)
                    )));
                }
                None if advertised => {
                    return Err(Failure::Callback("the response has no iss".into()));
                }
                _ => {}
            }
        }
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or("");
            let why = format!(
                "the provider answered {} ({})",
                printable(error, 64),
                printable(description, 200)
            );
            return Err(if error == "access_denied" {
                Failure::AccessDenied(why)
            } else {
                Failure::Callback(why)
            });
        }
        let code = param("code").ok_or_else(|| Failure::Callback("no code".into()))?;
        let redirect_uri = self.redirect_uri(identity);
        let (who, id_token) = match self {
            Self::Oidc(oidc) => {
                let discovered = oidc
                    .metadata(http)
                    .await
                    .map_err(|e| Failure::Callback(e.to_string()))?;
                let metadata = &discovered.metadata;
                let tokens = oidc
                    .exchange(http, metadata, &redirect_uri, code, &flow.code_verifier)
                    .await
                    .map_err(|e| Failure::Callback(e.to_string()))?;
                let id_token = tokens
                    .id_token
                    .ok_or_else(|| Failure::Callback("no ID token".into()))?;
                let claims = oidc
                    .verify_id_token(http, metadata, &id_token, &flow.nonce)
                    .await
                    .map_err(|e| Failure::Callback(format!("ID token: {e}")))?;
                let who = oidc
                    .identity(http, metadata, claims, &tokens.access_token)
                    .await
                    .map_err(|e| Failure::Callback(format!("user info: {e}")))?;
                (who, oidc.end_session.then_some(id_token))
            }
            Self::GitHub(github) => {
                let who = github
                    .identity(http, &redirect_uri, code, &flow.code_verifier)
                    .await
                    .map_err(|e| Failure::Callback(e.to_string()))?
                    .ok_or_else(|| Failure::AccessDenied("no primary verified email".into()))?;
                (who, None)
            }
        };
        if let (Some(user), Some(marker)) = (flow.link_user_id, flow.link_marker.as_deref()) {
            let same_session = session.user().is_some_and(|u| u.id == user)
                && session.link_marker().as_deref() == Some(marker);
            if !same_session {
                return Err(Failure::Callback(
                    "the session that asked for the link is gone".into(),
                ));
            }
            linking::link(identity, client, &who, user).await??;
            session.renew().map_err(Error::from)?;
            return Ok(flow.callback_url);
        }
        let verified = linking::sign_in(identity, client, &who).await??;
        let origin = SignInOrigin {
            provider: provider.to_owned(),
            subject: who.subject.clone(),
            sid: who.sid.clone(),
            id_token,
        };
        start_session(identity, session, verified, Some(origin)).await?;
        Ok(flow.callback_url)
    }
}

/// Whether a sign-in at `signed_in_at` (Unix seconds) is under [`FRESH_SIGN_IN`] old.
pub fn is_fresh(signed_in_at: i64) -> bool {
    OffsetDateTime::now_utc().unix_timestamp() - signed_in_at < FRESH_SIGN_IN.as_secs() as i64
}

/// Logs `failure` and answers the next-auth error page for it.
fn failed(identity: &Identity, provider: &str, failure: &Failure, json: bool) -> HttpResponse {
    match failure {
        Failure::Internal(e) => tracing::error!(provider, error = %e, "provider sign-in failed"),
        Failure::SignIn(why) | Failure::Callback(why) | Failure::AccessDenied(why) => {
            tracing::warn!(provider, code = failure.code(), reason = %why, "provider sign-in refused");
        }
        Failure::NotLinked(why) => {
            tracing::warn!(provider, code = failure.code(), reason = %why, "provider sign-in refused");
        }
    }
    let url = identity.origin.url(&format!(
        "/api/auth/error?error={}&provider={provider}",
        failure.code()
    ));
    url_or_redirect(StatusCode::OK, json, &url)
}
