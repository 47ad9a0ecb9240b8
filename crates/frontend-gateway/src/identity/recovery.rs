//! A forgotten password: a reset link mailed on request, and the page that sets a new one.
//!
//! * `POST /api/auth/forgot-password {email}`: `202` whatever the email; the account (if any)
//!   is mailed a link valid for an hour (limited per address and per client).
//! * `GET /api/auth/reset-password?token`: the link's page (a new password field);
//!   `POST /api/auth/reset-password` (`token`, `newPassword`, `csrfToken`; a form or JSON) sets
//!   it, verifies the address (the link proved it), voids every other outstanding link of the
//!   user and ends every session of theirs. It signs nobody in: the person signs in with the
//!   new password.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use web_common::{Problem, email};

use super::account::{credentials_off, validate_password};
use super::link_page::{self, Confirm};
use super::providers::Providers;
use super::state::Identity;
use super::tokens::{self, Purpose};
use super::verification::{check_your_email, dead_post};
use super::wire::{FormOrJson, url_or_redirect, wants_json};
use super::{outgoing, users};
use crate::error::Error;

const WHAT: &str = "password reset";

fn ask_again() -> (&'static str, &'static str) {
    ("Ask for a new link", "/forgot-password")
}

/// Body of `POST /api/auth/forgot-password`.
#[derive(Debug, Deserialize)]
pub struct ForgotBody {
    email: String,
}

/// `POST /api/auth/forgot-password {email}`: `202` with the "check your email" `{url}`
/// whatever the email; 422 naming `email` for one no account can have, 429 past the mail
/// limits, 404 while credentials are off.
pub async fn forgot(
    req: HttpRequest,
    body: web::Json<ForgotBody>,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, Error> {
    if !providers.credentials() {
        return Err(credentials_off().into());
    }
    let email = email::parse(&body.email)
        .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
    identity
        .mail_throttle
        .attempt(email.key(), identity.client_ip(&req))
        .await?;
    let work_identity = identity.clone();
    outgoing::later("password reset request", async move {
        let identity = work_identity;
        let mut tx = identity.users.begin().await?;
        if let Some(account) = users::find_by_email(&mut *tx, email.key()).await? {
            outgoing::password_reset(&mut tx, &account, email.key()).await?;
        }
        tx.commit().await
    });
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "url": check_your_email(&identity, "credentials", "reset") })))
}

/// `GET /api/auth/reset-password?token`: the page whose form sets a new password.
pub async fn page(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let token = query.get("token").map_or("", String::as_str);
    let Some(grant) = tokens::peek(&identity.users, Purpose::PasswordReset, token).await? else {
        return Ok(link_page::dead_link(WHAT, ask_again()));
    };
    let message = format!(
        "Choose a new password for {}. Every session of the account ends; then sign in with it.",
        grant.email
    );
    Ok(link_page::confirm(
        &req,
        &identity,
        &Confirm {
            title: "Choose a new password",
            message: &message,
            action: "/api/auth/reset-password",
            hidden: &[("token", token)],
            new_password: true,
            button: "Set the new password",
        },
    ))
}

/// `POST /api/auth/reset-password` (form or JSON: `token`, `newPassword`, `csrfToken`,
/// `json`): sets the password; `{url}` of the sign-in page (`/signin?reset=1`), or a 302 there.
/// A link that does not work: the readable page (400), or `{url}` of the `Verification` error
/// with `json=true`; a password breaking the rules: 422 naming `newPassword` (the link stays
/// usable); a bad csrfToken: 403 `{url}`.
pub async fn reset(
    req: HttpRequest,
    body: Result<FormOrJson, actix_web::Error>,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, actix_web::Error> {
    if !providers.credentials() {
        return Err(Error::from(credentials_off()).into());
    }
    let fields = match identity.checked_form(&req, body?) {
        Ok(fields) => fields,
        Err(refused) => return Ok(refused),
    };
    let json = wants_json(&fields);
    let token = fields.get("token").map_or("", String::as_str);
    let new_password = fields.get("newPassword").map_or("", String::as_str);
    // A dead link costs no hashing; a live one is used up only below, once the hash is made.
    let live = tokens::peek(&identity.users, Purpose::PasswordReset, token)
        .await
        .map_err(Error::from)?;
    if live.is_none() {
        return Ok(dead_post(&identity, json, WHAT, ask_again()));
    }
    validate_password("newPassword", new_password).map_err(Error::from)?;
    let hash = identity
        .hasher
        .hash(new_password.to_owned())
        .await
        .map_err(Error::from)?;
    let mut tx = identity.users.begin().await.map_err(Error::from)?;
    let grant = tokens::consume(&mut tx, Purpose::PasswordReset, token)
        .await
        .map_err(Error::from)?;
    let account = match grant.as_ref().and_then(|g| g.user_id) {
        Some(id) => users::lock(&mut tx, id).await.map_err(Error::from)?,
        None => None,
    };
    let Some((account, grant)) = account.zip(grant) else {
        return Ok(dead_post(&identity, json, WHAT, ask_again()));
    };
    if email::key(&account.email) != grant.email_key {
        return Ok(dead_post(&identity, json, WHAT, ask_again()));
    }
    users::set_password(&mut tx, account.id, Some(&hash))
        .await
        .map_err(Error::from)?;
    users::mark_verified(&mut *tx, account.id)
        .await
        .map_err(Error::from)?;
    tokens::void_all(&mut tx, account.id, &grant.email_key)
        .await
        .map_err(Error::from)?;
    let ended = identity
        .sessions
        .end_all(tx, account.id)
        .await
        .map_err(Error::from)?;
    tracing::info!(user_id = %account.id, sessions_ended = ended, "password reset");
    Ok(url_or_redirect(
        StatusCode::OK,
        json,
        &identity.origin.url("/signin?reset=1"),
    ))
}
