//! Sign-in links: next-auth's Email provider (id `email`, type `email`), on with
//! `AUTH_EMAIL_LINKS=true`.
//!
//! * `POST /api/auth/signin/email` (form or JSON: `email`, `csrfToken`, `callbackUrl`, `json`):
//!   mails a link valid for 10 minutes; `{url}` of the "check your email" step whatever the
//!   email (the lookup runs after the answer). Limited per address and per client.
//! * `GET /api/auth/callback/email?token&email`: the link's page; its form POSTs the token to
//!   the same path, which signs in and verifies the address. The `callbackUrl` is the one
//!   stored with the token, never one read from the link.
//!
//! An address without an account gets one (verified, without a password) when its link is
//! used. An unverified account signed in by a link loses its password, its provider links and
//! its sessions: the link proves the address, and nothing proved that whoever set that
//! password (or linked those providers) owns it (an attacker may have registered it first).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use web_common::{Problem, email};

use crate::error::Error;
use crate::identity::accounts;
use crate::identity::attempts::{Method, Outcome};
use crate::identity::link_page::{self, Confirm};
use crate::identity::outgoing;
use crate::identity::sign_in::{Verified, start_session};
use crate::identity::state::Identity;
use crate::identity::text;
use crate::identity::tokens::{self, Grant, Purpose};
use crate::identity::users::{self, Address};
use crate::identity::verification::{check_your_email, dead_post};
use crate::identity::wire::{url_or_redirect, wants_json};
use crate::session::UserSession;

/// The sign-in link provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmailLinks;

const WHAT: &str = "sign-in";

fn ask_again() -> (&'static str, &'static str) {
    ("Ask for a new link", "/signin")
}

impl EmailLinks {
    /// Its id in URLs and in `GET /providers`.
    pub const ID: &str = "email";
    /// Its name on the sign-in page.
    pub const NAME: &str = "Email";

    /// `POST /api/auth/signin/email` (fields already CSRF-checked): mails the link. 422 naming
    /// `email` for an address no account can have (or outside `AUTH_ALLOWED_EMAIL_DOMAINS`),
    /// 429 past the mail limits.
    pub async fn start(
        &self,
        req: &HttpRequest,
        fields: &HashMap<String, String>,
        identity: &web::Data<Identity>,
    ) -> Result<HttpResponse, Error> {
        let raw = fields.get("email").map_or("", String::as_str);
        let email = email::parse(raw)
            .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
        let domains = &identity.allowed_email_domains;
        if !domains.is_empty() && !domains.iter().any(|d| d == email.domain()) {
            return Err(
                Problem::invalid_field("email", "this email domain may not sign in here").into(),
            );
        }
        if let Err(refusal) = identity
            .mail_throttle
            .attempt(email.key(), identity.client_ip(req))
            .await
        {
            let refused = Error::from(refusal);
            identity
                .attempts
                .record(Method::Email, Outcome::of_error(&refused));
            return Err(refused);
        }
        let callback_url = identity
            .origin
            .same_origin_url(fields.get("callbackUrl").map(String::as_str));
        let work_identity = identity.clone();
        outgoing::later("sign-in link", async move {
            let identity = work_identity;
            let mut tx = identity.users.begin().await?;
            let account = users::find_by_email(&mut *tx, email.key()).await?;
            let grant = Grant {
                user_id: account.as_ref().map(|a| a.id),
                // Mail goes to the address as registered, or as typed for a new one.
                email: account.map_or_else(|| email.as_typed().to_owned(), |a| a.email),
                email_key: email.key().to_owned(),
                callback_url: Some(callback_url),
            };
            outgoing::sign_in_link(&mut tx, &grant).await?;
            tx.commit().await
        });
        let url = check_your_email(identity, Self::ID, "email");
        Ok(url_or_redirect(StatusCode::OK, wants_json(fields), &url))
    }

    /// `GET /api/auth/callback/email?token&email`: the page whose form signs in.
    pub async fn page(
        &self,
        req: &HttpRequest,
        query: &HashMap<String, String>,
        identity: &Identity,
    ) -> Result<HttpResponse, Error> {
        let token = query.get("token").map_or("", String::as_str);
        let email = query.get("email").map_or("", String::as_str);
        let grant = tokens::peek(&identity.users, Purpose::SignInLink, token).await?;
        let Some(grant) = grant.filter(|g| email::key(email) == g.email_key) else {
            return Ok(link_page::dead_link(WHAT, ask_again()));
        };
        let message = format!("Sign in as {}.", grant.email);
        Ok(link_page::confirm(
            req,
            identity,
            &Confirm {
                title: "Sign in",
                message: &message,
                action: "/api/auth/callback/email",
                hidden: &[("token", token), ("email", email)],
                new_password: false,
                button: "Sign in",
            },
        ))
    }

    /// `POST /api/auth/callback/email` (fields already CSRF-checked: `token`, `email`, `json`):
    /// uses the link and signs in; `{url}` of the stored `callbackUrl` (or a 302 there). A dead
    /// link's page is a failed attempt.
    pub async fn callback(
        &self,
        fields: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
    ) -> Result<HttpResponse, Error> {
        let answer = self.use_link(fields, session, identity).await;
        let outcome = match &answer {
            Ok(res) if res.status().is_client_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::of_error(e),
        };
        identity.attempts.record(Method::Email, outcome);
        answer
    }

    async fn use_link(
        &self,
        fields: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
    ) -> Result<HttpResponse, Error> {
        let json = wants_json(fields);
        let token = fields.get("token").map_or("", String::as_str);
        let email_field = fields.get("email").map_or("", String::as_str);
        let mut tx = identity.users.begin().await?;
        let grant = tokens::consume(&mut tx, Purpose::SignInLink, token).await?;
        let Some(grant) = grant.filter(|g| email::key(email_field) == g.email_key) else {
            return Ok(dead_post(identity, json, WHAT, ask_again()));
        };
        let who = match users::find_by_email(&mut *tx, &grant.email_key).await? {
            Some(account) if account.email_verified => {
                tx.commit().await?;
                Verified::from(account)
            }
            Some(account) => {
                users::set_password(&mut tx, account.id, None).await?;
                let unlinked = accounts::delete_all(&mut *tx, account.id).await?;
                users::mark_verified(&mut *tx, account.id).await?;
                let ended = identity.sessions.end_all(tx, account.id).await?;
                tracing::warn!(
                    user_id = %account.id,
                    sessions_ended = ended,
                    providers_unlinked = unlinked,
                    "an unverified account signed in by a link: its password and provider links are removed, its sessions ended"
                );
                Verified::from(account)
            }
            None => {
                let Ok(email) = email::parse(&grant.email) else {
                    return Ok(dead_post(identity, json, WHAT, ask_again()));
                };
                let typed = email.as_typed();
                let name = text::clean_name(typed.split('@').next().unwrap_or(typed))
                    .unwrap_or_else(|| "User".to_owned());
                let id = match users::insert(&mut *tx, &email, &name, None, Address::Verified).await
                {
                    Ok(id) => id,
                    // Registered meanwhile: the link is used up; a new one finds the account.
                    Err(users::InsertError::DuplicateEmail) => {
                        return Ok(dead_post(identity, json, WHAT, ask_again()));
                    }
                    Err(users::InsertError::Database(e)) => return Err(e.into()),
                };
                tx.commit().await?;
                tracing::info!(user_id = %id, "user created by a sign-in link");
                Verified {
                    id,
                    email: email.into_typed(),
                    name,
                }
            }
        };
        start_session(identity, session, who, None).await?;
        let url = grant
            .callback_url
            .unwrap_or_else(|| identity.origin.url("/"));
        Ok(url_or_redirect(StatusCode::OK, json, &url))
    }
}
