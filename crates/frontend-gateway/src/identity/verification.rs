//! Proving an address: the verification link mailed at registration (or again on request),
//! and the "check your email" step every mailed link goes through.
//!
//! * `GET /api/auth/verify-request`: where next-auth sends the browser after a link was
//!   mailed; the web app's "check your email" page.
//! * `GET /api/auth/verify-email?token`: the link's page; `POST` (the page's form: `token`,
//!   `csrfToken`) uses it: the address is verified and the person signed in.
//! * `POST /api/auth/resend-verification {email}`: a new link for an unverified account; `202`
//!   whatever the email (limited per address and per client).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use web_common::{Problem, email};

use super::link_page::{self, Confirm};
use super::sign_in::start_session;
use super::state::Identity;
use super::tokens::{self, Purpose};
use super::wire::{FormOrJson, url_or_redirect, wants_json};
use super::{outgoing, users};
use crate::error::Error;
use crate::pages;
use crate::session::UserSession;

/// The URL a request that mailed (or would have mailed) a link answers (as `{url}`): the
/// "check your email" step for `provider` (`credentials` or `email`) and `kind` (`email` or
/// `reset`).
pub fn check_your_email(identity: &Identity, provider: &str, kind: &str) -> String {
    identity.origin.url(&format!(
        "/api/auth/verify-request?provider={provider}&type={kind}"
    ))
}

/// `GET /api/auth/verify-request?provider&type`: 302 to the web app's "check your email" page
/// (only a known `provider` and `type` are passed on).
pub async fn verify_request(
    query: web::Query<HashMap<String, String>>,
    identity: web::Data<Identity>,
) -> HttpResponse {
    let pick = |name: &str, allowed: &[&'static str]| {
        let value = query.get(name).map(String::as_str);
        allowed
            .iter()
            .copied()
            .find(|a| Some(*a) == value)
            .unwrap_or(allowed[0])
    };
    let provider = pick("provider", &["credentials", "email"]);
    let kind = pick("type", &["email", "reset"]);
    pages::redirect(
        &identity
            .origin
            .url(&format!("/verify-request?provider={provider}&type={kind}")),
    )
}

const WHAT: &str = "verification";

fn send_again() -> (&'static str, &'static str) {
    ("Ask for a new link", "/signin?error=EmailNotVerified")
}

/// `GET /api/auth/verify-email?token`: the page whose form verifies the address.
pub async fn page(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let token = query.get("token").map_or("", String::as_str);
    let Some(grant) = tokens::peek(&identity.users, Purpose::VerifyEmail, token).await? else {
        return Ok(link_page::dead_link(WHAT, send_again()));
    };
    let message = format!(
        "Confirm that {} is your address. You will be signed in to its account.",
        grant.email
    );
    Ok(link_page::confirm(
        &req,
        &identity,
        &Confirm {
            title: "Confirm your email",
            message: &message,
            action: "/api/auth/verify-email",
            hidden: &[("token", token)],
            new_password: false,
            button: "Confirm and sign in",
        },
    ))
}

/// What a POST with a link that does not work answers: `{url}` of next-auth's `Verification`
/// error with `json=true`, else the readable page.
pub fn dead_post(identity: &Identity, json: bool, what: &str, again: (&str, &str)) -> HttpResponse {
    if json {
        let url = identity.origin.url("/api/auth/error?error=Verification");
        return url_or_redirect(StatusCode::BAD_REQUEST, true, &url);
    }
    link_page::dead_link(what, again)
}

/// `POST /api/auth/verify-email` (form or JSON: `token`, `csrfToken`, `json`): uses the link,
/// verifies the address and signs its account in; `{url}` of `PUBLIC_ORIGIN/` (or a 302).
pub async fn verify(
    req: HttpRequest,
    body: Result<FormOrJson, actix_web::Error>,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, actix_web::Error> {
    let fields = match identity.checked_form(&req, body?) {
        Ok(fields) => fields,
        Err(refused) => return Ok(refused),
    };
    let json = wants_json(&fields);
    let token = fields.get("token").map_or("", String::as_str);
    let mut tx = identity.users.begin().await.map_err(Error::from)?;
    let grant = tokens::consume(&mut tx, Purpose::VerifyEmail, token)
        .await
        .map_err(Error::from)?;
    let account = match grant.as_ref().and_then(|g| g.user_id) {
        Some(id) => users::find_by_id(&mut *tx, id).await.map_err(Error::from)?,
        None => None,
    };
    // The account's address must still be the one the link went to.
    let Some(account) = account.filter(|a| {
        grant
            .as_ref()
            .is_some_and(|g| email::key(&a.email) == g.email_key)
    }) else {
        return Ok(dead_post(&identity, json, WHAT, send_again()));
    };
    users::mark_verified(&mut *tx, account.id)
        .await
        .map_err(Error::from)?;
    tx.commit().await.map_err(Error::from)?;
    tracing::info!(user_id = %account.id, "email verified");
    start_session(&identity, &session, account.into(), None).await?;
    Ok(url_or_redirect(
        StatusCode::OK,
        json,
        &identity.origin.url("/"),
    ))
}

/// Body of `POST /api/auth/resend-verification`.
#[derive(Debug, Deserialize)]
pub struct ResendBody {
    email: String,
}

/// `POST /api/auth/resend-verification {email}`: a new verification link when the address
/// has an unverified account; `202` with the "check your email" `{url}` whatever the email.
/// 422 naming `email` for one no account can have; 429 past the mail limits.
pub async fn resend(
    req: HttpRequest,
    body: web::Json<ResendBody>,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let email = email::parse(&body.email)
        .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
    identity
        .mail_throttle
        .attempt(email.key(), identity.client_ip(&req))
        .await?;
    let work_identity = identity.clone();
    outgoing::later("resend verification", async move {
        let identity = work_identity;
        let mut tx = identity.users.begin().await?;
        let account = users::find_by_email(&mut *tx, email.key()).await?;
        if let Some(account) = account.filter(|a| !a.email_verified) {
            outgoing::verification(&mut tx, &account, email.key()).await?;
        }
        tx.commit().await
    });
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "url": check_your_email(&identity, "credentials", "email") })))
}
