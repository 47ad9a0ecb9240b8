//! Account management beyond next-auth: registration, a password change (ending every other
//! session), signing out everywhere, the providers linked to the account, and deleting it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use web_common::Problem;
use web_common::email::{self, Email};

use super::providers::Providers;
use super::providers::oauth::is_fresh;
use super::state::Identity;
use super::users::Address;
use super::verification::check_your_email;
use super::wire::{FormOrJson, SessionBody, fields};
use super::{accounts, outgoing, password, tokens, users};
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

/// `POST /api/auth/register` (JSON `{email, password, name}`): `202` with the "check your
/// email" `{url}`, whether the email is new or taken, in the same time (argon2 runs either
/// way; the lookup and the writes run after the answer, [`outgoing::later`]). New: the account
/// is created unverified and mailed a verification link. Taken (any spelling of it: emails are
/// compared by their key): its owner is mailed that someone tried, with a sign-in and a reset
/// link. Nobody is signed in. 422 naming a bad field (checked before any other work), 429 past
/// the mail limits (per address and per client), 404 when credentials are off.
pub async fn register(
    req: HttpRequest,
    body: web::Json<RegisterBody>,
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
    identity
        .mail_throttle
        .attempt(email.key(), identity.client_ip(&req))
        .await?;
    let hash = identity.hasher.hash(body.password.clone()).await?;
    let work_identity = identity.clone();
    outgoing::later("registration", async move {
        let identity = work_identity;
        let mut tx = identity.users.begin().await?;
        match users::insert(&mut *tx, &email, &name, Some(&hash), Address::Unverified).await {
            Ok(id) => {
                let account = users::Account {
                    id,
                    email: email.as_typed().to_owned(),
                    name,
                    password_hash: None,
                    email_verified: false,
                };
                outgoing::verification(&mut tx, &account, email.key()).await?;
                tracing::info!(user_id = %id, "registered; verification mailed");
            }
            Err(users::InsertError::DuplicateEmail) => {
                if let Some(owner) = users::find_by_email(&mut *tx, email.key()).await? {
                    outgoing::account_exists(&mut tx, &owner, email.key()).await?;
                    tracing::info!(user_id = %owner.id, "registration with a taken email; its owner is told");
                }
            }
            Err(users::InsertError::Database(e)) => return Err(e),
        }
        tx.commit().await
    });
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "url": check_your_email(&identity, "credentials", "email") })))
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
pub fn validate_password(field: &str, password: &str) -> Result<(), Problem> {
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
    identity
        .throttle
        .attempt(&account_key, identity.client_ip(&req))
        .await?;
    let found = users::find_by_id(&identity.users, user.id).await;
    let found = match found {
        Ok(found) => found,
        // No verdict (a database failure) is not a failed guess.
        Err(e) => {
            identity.throttle.withdraw(&account_key).await;
            return Err(e.into());
        }
    };
    let Some(account) = found else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    match account.password_hash {
        Some(current_hash) => {
            let current = body.current_password.clone();
            let verified = match identity.hasher.verify(current, Some(current_hash)).await {
                Ok(verified) => verified,
                // No verdict (a full hashing queue) is not a failed guess either.
                Err(e) => {
                    identity.throttle.withdraw(&account_key).await;
                    return Err(e.into());
                }
            };
            if !verified {
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
    identity.throttle.succeeded(&account_key).await;
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
    let Some(account) = users::lock(&mut tx, user.id).await? else {
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

/// A workspace the user is the only owner of (what stops their account's deletion).
#[derive(Debug, Serialize, sqlx::FromRow)]
struct SoleOwned {
    id: uuid::Uuid,
    name: String,
}

/// `DELETE /api/auth/account` (signed in under 10 minutes ago; a same-origin signal or the
/// `X-CSRF-Token` header): deletes the account with its memberships, linked providers, links
/// and the invitations addressed to it, ends every session of the user (on every instance's
/// next load; at once on this one) and clears the cookie: `200 {"url": PUBLIC_ORIGIN/}`.
/// `409` problem naming the workspaces (also as `workspaces: [{id, name}]`) where the user is
/// the only owner: they must hand them over or delete them first. `401` without a session,
/// `403` for an older sign-in or without the same-origin signal.
pub async fn delete(
    req: HttpRequest,
    session: UserSession,
    identity: web::Data<Identity>,
) -> Result<HttpResponse, Error> {
    identity.csrf.session_action(&req, &identity.origin, None)?;
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    if !is_fresh(user.signed_in_at) {
        return Err(Problem::forbidden(
            "Deleting your account needs a recent sign-in: sign out, sign in again, then delete it within 10 minutes.",
        )
        .into());
    }
    let mut tx = identity.users.begin().await?;
    let Some(account) = users::lock(&mut tx, user.id).await? else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    // The backend changes owners only under a lock on the workspace row: holding the rows of
    // every workspace this user owns, the count of their other owners cannot change under us.
    sqlx::query(
        "SELECT w.id FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id \
         WHERE m.user_id = $1 AND m.role = 'owner' ORDER BY w.id FOR UPDATE OF w",
    )
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    let sole: Vec<SoleOwned> = sqlx::query_as(
        "SELECT w.id, w.name FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id \
         WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS ( \
             SELECT 1 FROM workspace_members o \
             WHERE o.workspace_id = w.id AND o.role = 'owner' AND o.user_id <> $1) \
         ORDER BY w.name, w.id",
    )
    .bind(user.id)
    .fetch_all(&mut *tx)
    .await?;
    if !sole.is_empty() {
        let names: Vec<String> = sole.iter().map(|w| format!("“{}”", w.name)).collect();
        let problem = Problem::conflict(format!(
            "You are the only owner of {}: make someone else an owner, or delete {}, first.",
            names.join(", "),
            if sole.len() == 1 { "it" } else { "them" }
        ));
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        body["workspaces"] = serde_json::json!(sole);
        let mut res = HttpResponse::Conflict()
            .content_type("application/problem+json")
            .body(body.to_string());
        res.extensions_mut().insert(web_common::problem::Untouched);
        return Ok(res);
    }
    let key = email::key(&account.email);
    sqlx::query("DELETE FROM workspace_invitations WHERE email_key = $1")
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    tokens::void_all(&mut tx, user.id, &key).await?;
    // Memberships, linked providers and sessions go with the row (ON DELETE CASCADE).
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    identity.sessions.end_all(tx, user.id).await?;
    session.sign_out();
    tracing::info!(user_id = %user.id, "account deleted");
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
        assert!(validate(&body("ada@example.com", "long enough", "A\u{202e}da")).is_err());
    }
}
