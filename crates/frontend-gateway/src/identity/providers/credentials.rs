//! Email and password: the credentials provider.
//!
//! An unknown email and a wrong password take the same time (a dummy argon2 verification) and
//! get the same answer. The right password of an account whose address is not verified yet is
//! refused with 403 (`EmailNotVerified`), and signs nobody in. The email is checked first ([`web_common::email::parse`]: a refused
//! one is a 422 naming `email`, counted nowhere and never looked up); attempts are then
//! throttled per account (the email's key, what the lookup matches) and per client before any
//! lookup or argon2 work.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use web_common::{Problem, email};

use crate::error::Error;
use crate::identity::attempts::{Method, Outcome};
use crate::identity::sign_in::start_session;
use crate::identity::state::Identity;
use crate::identity::throttle::Refusal;
use crate::identity::users::{self, Account};
use crate::identity::wire::{SessionBody, url_or_redirect, wants_json};
use crate::session::UserSession;

/// The credentials provider (next-auth's `type: "credentials"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credentials;

impl Credentials {
    /// Its id in URLs (`/api/auth/callback/credentials`) and in `GET /providers`.
    pub const ID: &str = "credentials";
    /// Its name on a sign-in button.
    pub const NAME: &str = "Credentials";

    /// `POST /api/auth/callback/credentials` (a form or JSON: `email`, `password`,
    /// `csrfToken`, `callbackUrl`, `json`), as next-auth's `signIn('credentials')` sends it.
    pub async fn callback(
        &self,
        req: &HttpRequest,
        fields: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
    ) -> Result<HttpResponse, Error> {
        let json = wants_json(fields);
        let field = |name: &str| fields.get(name).map_or("", String::as_str);
        match authenticate(req, identity, field("email"), field("password")).await? {
            Some(account) if !account.email_verified => {
                let url = identity
                    .origin
                    .url("/api/auth/error?error=EmailNotVerified&provider=credentials");
                Ok(url_or_redirect(StatusCode::FORBIDDEN, json, &url))
            }
            Some(account) => {
                start_session(identity, session, account.into(), None).await?;
                let url = identity
                    .origin
                    .same_origin_url(fields.get("callbackUrl").map(String::as_str));
                Ok(url_or_redirect(StatusCode::OK, json, &url))
            }
            None => {
                let url = identity
                    .origin
                    .url("/api/auth/error?error=CredentialsSignin&provider=credentials");
                Ok(url_or_redirect(StatusCode::UNAUTHORIZED, json, &url))
            }
        }
    }
}

/// Body of `POST /api/auth/signin`. `Debug` leaves the password out.
#[derive(Deserialize)]
pub struct SignInBody {
    email: String,
    password: String,
}

impl std::fmt::Debug for SignInBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInBody")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// `POST /api/auth/signin` (JSON `{email, password}`): the same check as the callback, for
/// clients that are not next-auth's; the session body, a 401 problem, a 403 problem for an
/// unverified address, or a 422 naming `email`.
/// (Routed only while credentials are on.)
pub async fn sign_in(
    req: HttpRequest,
    body: web::Json<SignInBody>,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let Some(account) = authenticate(&req, &identity, &body.email, &body.password).await? else {
        return Err(Problem::new(StatusCode::UNAUTHORIZED)
            .detail("The email or password is wrong.")
            .into());
    };
    if !account.email_verified {
        return Err(unverified().into());
    }
    let user = start_session(&identity, &session, account.into(), None).await?;
    Ok(HttpResponse::Ok().json(SessionBody::new(&identity.sessions, &user)))
}

/// The right password for an account whose address is not verified yet.
fn unverified() -> Problem {
    Problem::forbidden(
        "Confirm your email first: use the link we mailed you (POST /api/auth/resend-verification sends a new one).",
    )
}

/// Checks an email and a password. `None` for an unknown email, a wrong password or a user
/// without a password (who signs in through providers), indistinguishably (argon2 runs against
/// a dummy hash when there is no hash to check). An email that breaks the rules (422 naming
/// `email`) and a throttled attempt (429) are refused before the database or argon2 is
/// touched; the first is not counted, nor is an attempt that ends without a verdict (503).
/// Every attempt but the malformed one counts in `gateway_sign_in_attempts_total`: a success
/// only for the right password of a verified address.
#[tracing::instrument(skip_all)]
async fn authenticate(
    req: &HttpRequest,
    identity: &Identity,
    email: &str,
    password: &str,
) -> Result<Option<Account>, Error> {
    let email = email::parse(email)
        .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
    let verdict = check(req, identity, &email, password).await;
    let outcome = match &verdict {
        Ok(Some(account)) if account.email_verified => Outcome::Success,
        Ok(_) => Outcome::Failure,
        Err(e) => Outcome::of_error(e),
    };
    identity.attempts.record(Method::Credentials, outcome);
    verdict
}

/// [`authenticate`] past the address's syntax.
async fn check(
    req: &HttpRequest,
    identity: &Identity,
    email: &email::Email,
    password: &str,
) -> Result<Option<Account>, Error> {
    let key = email.key();
    if let Err(refusal) = identity
        .throttle
        .attempt(key, identity.client_ip(req))
        .await
    {
        if let Refusal::Throttled(throttled) = &refusal {
            tracing::warn!(
                retry_after = throttled.retry_after_secs(),
                "sign-in throttled"
            );
        }
        return Err(refusal.into());
    }
    let verdict = async {
        let account = users::find_by_email(&identity.users, key).await?;
        let matches = identity
            .hasher
            .verify(
                password.to_owned(),
                account.as_ref().and_then(|a| a.password_hash.clone()),
            )
            .await?;
        Ok::<_, Error>(account.filter(|_| matches))
    };
    match verdict.await {
        Ok(Some(account)) => {
            identity.throttle.succeeded(key).await;
            Ok(Some(account))
        }
        Ok(None) => Ok(None),
        // No verdict (a full hashing queue, a database failure): not a failed guess.
        Err(e) => {
            identity.throttle.withdraw(key).await;
            Err(e)
        }
    }
}
