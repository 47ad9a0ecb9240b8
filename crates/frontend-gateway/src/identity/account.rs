//! Account management beyond next-auth: registration, a password change (ending every other
//! session), signing out everywhere, and the providers linked to the account.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use web_common::Problem;
use web_common::email::{self, Email};

use super::providers::Providers;
use super::providers::oauth::is_fresh;
use super::sign_in::{Verified, start_session};
use super::state::Identity;
use super::wire::{FormOrJson, SessionBody, fields};
use super::{accounts, password, users};
use crate::error::Error;
use crate::session::{SessionUser, UserSession};

/// Body of `POST /api/auth/register`. `Debug` leaves the password out.
#[derive(Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
    name: String,
}

impl std::fmt::Debug for RegisterBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterBody")
            .field("email", &self.email)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The answer of every credentials endpoint while `AUTH_CREDENTIALS=false`.
pub fn credentials_off() -> Problem {
    Problem::not_found("Email and password sign-in is off.")
}

/// `POST /api/auth/register` (JSON `{email, password, name}`): creates the account and signs
/// it in (201 with the session body); 409 for a taken email (any spelling of it: emails are
/// compared by their key), 422 naming a bad field (checked before any database work); 404
/// when credentials are off.
pub async fn register(
    body: web::Json<RegisterBody>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, Error> {
    if !providers.credentials() {
        return Err(credentials_off().into());
    }
    let (email, name) = validate(&body)?;
    let domains = &identity.allowed_email_domains;
    if !domains.is_empty() && !domains.iter().any(|d| d == email.domain()) {
        return Err(
            Problem::invalid_field("email", "this email domain may not sign up here").into(),
        );
    }
    let hash = identity.hasher.hash(body.password.clone()).await?;
    let id = match users::insert(&identity.users, &email, &name, Some(&hash)).await {
        Ok(id) => id,
        Err(users::InsertError::DuplicateEmail) => {
            return Err(Problem::conflict("An account with this email already exists.").into());
        }
        Err(users::InsertError::Database(e)) => return Err(e.into()),
    };
    let email = email.into_typed();
    let user = start_session(&identity, &session, Verified { id, email, name }, None).await?;
    Ok(HttpResponse::Created().json(SessionBody::new(&identity.sessions, &user)))
}

fn validate(body: &RegisterBody) -> Result<(Email, String), Problem> {
    let refused = |field: &'static str| {
        move |refused: email::Refused| Problem::invalid_field(field, refused.to_string())
    };
    let email = email::parse(&body.email).map_err(refused("email"))?;
    let name = email::name(&body.name).map_err(refused("name"))?;
    validate_password("password", &body.password)?;
    Ok((email, name))
}

/// The password rules (registration and password change): 8 to 128 characters.
fn validate_password(field: &str, password: &str) -> Result<(), Problem> {
    let len = password.chars().count();
    if !(password::MIN_LEN..=password::MAX_LEN).contains(&len) {
        return Err(Problem::invalid_field(
            field,
            format!(
                "must be {} to {} characters",
                password::MIN_LEN,
                password::MAX_LEN
            ),
        ));
    }
    Ok(())
}

fn not_signed_in() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED).detail("Sign in first.")
}

/// Body of `POST /api/auth/password`. `Debug` shows neither password (nor the token).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    #[serde(default)]
    current_password: String,
    new_password: String,
    /// Needed without a same-origin signal (see [`super::csrf::Csrf::session_action`]).
    #[serde(default)]
    csrf_token: Option<String>,
}

impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordBody").finish_non_exhaustive()
    }
}

/// `POST /api/auth/password` `{currentPassword, newPassword}`: checks the current password
/// (throttled like a sign-in), stores the new hash and deletes EVERY session of the user in
/// one transaction, then starts a fresh one for this client, which stays signed in. A user
/// without a password (signed up through a provider) sets one without `currentPassword`, from
/// a sign-in under ten minutes old (else 403). 404 when credentials are off; 403 without a
/// same-origin signal or the csrfToken (field `csrfToken` or header `X-CSRF-Token`).
pub async fn change_password(
    req: HttpRequest,
    body: web::Json<PasswordBody>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, Error> {
    identity
        .csrf
        .session_action(&req, &identity.origin, body.csrf_token.as_deref())?;
    if !providers.credentials() {
        return Err(credentials_off().into());
    }
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    validate_password("newPassword", &body.new_password)?;
    let account_key = email::key(&user.email);
    if let Err(throttled) = identity
        .throttle
        .attempt(&account_key, identity.client_ip(&req))
    {
        return Err(throttled.into());
    }
    // No verdict (a full hashing queue, a database failure) is not a failed guess.
    let withdraw = |e: Error| {
        identity.throttle.withdraw(&account_key);
        e
    };
    let found = users::find_by_id(&identity.users, user.id).await;
    let Some(account) = found.map_err(|e| withdraw(e.into()))? else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    match account.password_hash {
        Some(current_hash) => {
            let current = body.current_password.clone();
            let verified = identity.hasher.verify(current, Some(current_hash)).await;
            if !verified.map_err(|e| withdraw(e.into()))? {
                return Err(Problem::forbidden("The current password is wrong.").into());
            }
        }
        None if !is_fresh(user.signed_in_at) => {
            return Err(Problem::forbidden(
                "Setting a first password needs a recent sign-in: sign out, sign in again, then set it within 10 minutes.",
            )
            .into());
        }
        None => {}
    }
    identity.throttle.succeeded(&account_key);
    let hash = identity.hasher.hash(body.new_password.clone()).await?;
    let mut tx = identity.users.begin().await?;
    users::set_password(&mut tx, user.id, Some(&hash)).await?;
    identity.sessions.end_all(tx, user.id).await?;
    let user = SessionUser {
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
        ..user
    };
    session.sign_in(&user)?;
    tracing::info!(user_id = %user.id, "password changed; every other session ended");
    Ok(HttpResponse::Ok().json(SessionBody::new(&identity.sessions, &user)))
}

/// `POST /api/auth/signout-everywhere` (an optional form or JSON body: `csrfToken`): deletes
/// every session of the user (this one included) and clears the cookie; `{url}` like sign-out.
/// 403 without a same-origin signal or the csrfToken (the field, or header `X-CSRF-Token`).
pub async fn sign_out_everywhere(
    req: HttpRequest,
    body: Option<FormOrJson>,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let fields = body.map(fields).unwrap_or_default();
    identity.csrf.session_action(
        &req,
        &identity.origin,
        fields.get("csrfToken").map(String::as_str),
    )?;
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    let ended = identity.sessions.end_all_now(user.id).await?;
    session.sign_out();
    tracing::info!(user_id = %user.id, sessions = ended, "signed out everywhere");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": identity.origin.url("/") })))
}

/// One linked provider in `GET /api/auth/accounts`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkedItem {
    provider: String,
    email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_sign_in_at: OffsetDateTime,
}

/// `GET /api/auth/accounts`: `{"items": [{provider, email, createdAt, lastSignInAt}],
/// "hasPassword": bool}` for the signed-in user.
pub async fn linked(
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    let Some(account) = users::find_by_id(&identity.users, user.id).await? else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    let items: Vec<LinkedItem> = accounts::of_user(&identity.users, user.id)
        .await?
        .into_iter()
        .map(|l| LinkedItem {
            provider: l.provider,
            email: l.email,
            created_at: l.created_at,
            last_sign_in_at: l.last_sign_in_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "hasPassword": account.password_hash.is_some(),
    })))
}

/// `DELETE /api/auth/accounts/{provider}`: unlinks the provider from the signed-in user (204);
/// 404 when it is not linked; 409 when it would leave them no way to sign in (a password with
/// credentials on, or another configured provider); 403 without a same-origin signal or the
/// csrfToken (header `X-CSRF-Token`).
pub async fn unlink(
    req: HttpRequest,
    path: web::Path<String>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, Error> {
    identity.csrf.session_action(&req, &identity.origin, None)?;
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    let provider = path.into_inner();
    let mut tx = identity.users.begin().await?;
    // Serialises unlinks of one user, so two at once cannot both see "another way is left".
    let Some(account) = sqlx::query_as::<_, users::Account>(
        "SELECT id, email, name, password_hash FROM users WHERE id = $1 FOR UPDATE",
    )
    .bind(user.id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(not_signed_in().into());
    };
    let linked = accounts::of_user(&mut *tx, user.id).await?;
    if !linked.iter().any(|l| l.provider == provider) {
        return Err(Problem::not_found("This provider is not linked to your account.").into());
    }
    let other_ways = linked
        .iter()
        .filter(|l| l.provider != provider && providers.oauth(&l.provider).is_some())
        .count()
        + usize::from(account.password_hash.is_some() && providers.credentials());
    if other_ways == 0 {
        return Err(Problem::conflict(
            "This is your only way to sign in: set a password or link another provider first.",
        )
        .into());
    }
    accounts::delete(&mut *tx, user.id, &provider).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, provider, "provider unlinked");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules_are_enforced() {
        let body = |email: &str, password: &str, name: &str| RegisterBody {
            email: email.into(),
            password: password.into(),
            name: name.into(),
        };
        assert!(validate(&body("ada@example.com", "long enough", "Ada")).is_ok());
        assert!(validate(&body("not-an-email", "long enough", "Ada")).is_err());
        assert!(validate(&body("ada@example.com", "short", "Ada")).is_err());
        assert!(validate(&body("ada@example.com", &"x".repeat(129), "Ada")).is_err());
        assert!(validate(&body("ada@example.com", "long enough", "  ")).is_err());
        assert!(validate(&body("ada@example.com", "long enough", "A\u{202e}da")).is_err());
    }
}
