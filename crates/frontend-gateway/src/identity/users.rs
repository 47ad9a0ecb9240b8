//! The `users` rows the gateway reads and writes: accounts at sign-in, new accounts at
//! registration or at a first provider sign-in, a new (or no) password hash.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;
use web_common::email::Email;

/// A user with their password hash (never leaves the identity wing).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    /// `users.id`.
    pub id: Uuid,
    /// As registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string; `None` for a user who signs in only through providers.
    pub password_hash: Option<String>,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The email (compared by its key: without case, look-alike forms folded) is taken.
    #[error("the email is already registered")]
    DuplicateEmail,
    /// Anything else.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The user whose email has the key `email_key` ([`Email::key`]: every spelling of one
/// address finds the same user).
pub async fn find_by_email(
    db: impl PgExecutor<'_>,
    email_key: &str,
) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, name, password_hash FROM users WHERE email_key = $1")
        .bind(email_key)
        .fetch_optional(db)
        .await
}

/// Creates a user (without a password when `password_hash` is `None`), with the email as
/// typed and its key.
pub async fn insert(
    db: impl PgExecutor<'_>,
    email: &Email,
    name: &str,
    password_hash: Option<&str>,
) -> Result<Uuid, InsertError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, email_key, name, password_hash) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(email.as_typed())
    .bind(email.key())
    .bind(name)
    .bind(password_hash)
    .execute(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key_key") => {
            InsertError::DuplicateEmail
        }
        _ => InsertError::Database(e),
    })?;
    Ok(id)
}

/// Records a successful sign-in.
pub async fn touch_sign_in(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_sign_in_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// The user whose id is `id`, with their password hash.
pub async fn find_by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, name, password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Sets (or, with `None`, removes) `id`'s password hash, in the caller's transaction: a
/// password change also ends the user's sessions, in the same one.
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}
