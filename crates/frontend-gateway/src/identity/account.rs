//! Account management beyond next-auth: registration, a password change (ending every other
//! session) and signing out everywhere.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use time::OffsetDateTime;
use web_common::Problem;

use super::password;
use super::sign_in::{Verified, start_session};
use super::state::Identity;
use super::users;
use super::wire::SessionBody;
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

/// `POST /api/auth/register` (JSON `{email, password, name}`): creates the account and signs
/// it in (201 with the session body); 409 for a taken email, 422 naming a bad field.
pub async fn register(
    body: web::Json<RegisterBody>,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let (email, name) = validate(&body)?;
    let hash = identity.hasher.hash(body.password.clone()).await?;
    let id = match users::insert(&identity.users, &email, &name, &hash).await {
        Ok(id) => id,
        Err(users::InsertError::DuplicateEmail) => {
            return Err(Problem::conflict("An account with this email already exists.").into());
        }
        Err(users::InsertError::Database(e)) => return Err(e.into()),
    };
    let user = start_session(&identity, &session, Verified { id, email, name }).await?;
    Ok(HttpResponse::Created().json(SessionBody::new(&identity.sessions, &user)))
}

fn validate(body: &RegisterBody) -> Result<(String, String), Problem> {
    let email = body.email.trim();
    let valid_email = (3..=254).contains(&email.chars().count())
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !valid_email {
        return Err(Problem::invalid_field("email", "must be an email address"));
    }
    let name = body.name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(Problem::invalid_field(
            "name",
            "must be 1 to 100 characters",
        ));
    }
    validate_password("password", &body.password)?;
    Ok((email.to_owned(), name.to_owned()))
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

/// Body of `POST /api/auth/password`. `Debug` shows neither password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordBody").finish_non_exhaustive()
    }
}

/// `POST /api/auth/password` `{currentPassword, newPassword}`: checks the current password
/// (throttled like a sign-in), stores the new hash and deletes EVERY session of the user in
/// one transaction, then starts a fresh one for this client, which stays signed in.
pub async fn change_password(
    req: HttpRequest,
    body: web::Json<PasswordBody>,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    validate_password("newPassword", &body.new_password)?;
    if let Err(throttled) = identity
        .throttle
        .attempt(&user.email, identity.client_ip(&req))
    {
        return Err(throttled.into());
    }
    let Some(account) = users::find_by_id(&identity.users, user.id).await? else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    let current = body.current_password.clone();
    if !identity
        .hasher
        .verify(current, Some(account.password_hash))
        .await?
    {
        return Err(Problem::forbidden("The current password is wrong.").into());
    }
    identity.throttle.succeeded(&user.email);
    let hash = identity.hasher.hash(body.new_password.clone()).await?;
    let mut tx = identity.users.begin().await?;
    users::set_password(&mut tx, user.id, &hash).await?;
    identity.sessions.end_all(tx, user.id).await?;
    let user = SessionUser {
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
        ..user
    };
    session.sign_in(&user)?;
    tracing::info!(user_id = %user.id, "password changed; every other session ended");
    Ok(HttpResponse::Ok().json(SessionBody::new(&identity.sessions, &user)))
}

/// `POST /api/auth/signout-everywhere`: deletes every session of the user (this one
/// included) and clears the cookie; `{url}` like sign-out.
pub async fn sign_out_everywhere(
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    let ended = identity.sessions.end_all_now(user.id).await?;
    session.sign_out();
    tracing::info!(user_id = %user.id, sessions = ended, "signed out everywhere");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": identity.origin.url("/") })))
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
    }
}
