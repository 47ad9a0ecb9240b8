//! The `users` rows the gateway reads and writes: accounts at sign-in, new accounts at
//! registration or at a first provider sign-in, a new (or no) password hash, a verified
//! address, a deleted account.

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
    /// Whether the address was proven to be theirs (`users.email_verified_at` is set).
    pub email_verified: bool,
}

/// The columns of an [`Account`].
const ACCOUNT: &str =
    "id, email, name, password_hash, email_verified_at IS NOT NULL AS email_verified";

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
    sqlx::query_as(&format!("SELECT {ACCOUNT} FROM users WHERE email_key = $1"))
        .bind(email_key)
        .fetch_optional(db)
        .await
}

/// Whether a new user's address is proven to be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Proven (a used sign-in link, a trusted provider's verified email, the demo user).
    Verified,
    /// Not yet (a registration, an untrusted provider's email).
    Unverified,
}

/// Creates a user (without a password when `password_hash` is `None`), with the email as
/// typed and its key.
pub async fn insert(
    db: impl PgExecutor<'_>,
    email: &Email,
    name: &str,
    password_hash: Option<&str>,
    address: Address,
) -> Result<Uuid, InsertError> {
    let id = Uuid::now_v7();
    // ON CONFLICT rather than catching the unique violation: the caller's transaction stays
    // usable (a registration mails the owner of a taken address in the same one).
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO users (id, email, email_key, name, password_hash, email_verified_at) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END) \
         ON CONFLICT (email_key) DO NOTHING RETURNING id",
    )
    .bind(id)
    .bind(email.as_typed())
    .bind(email.key())
    .bind(name)
    .bind(password_hash)
    .bind(address == Address::Verified)
    .fetch_optional(db)
    .await?;
    inserted.ok_or(InsertError::DuplicateEmail)
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
    sqlx::query_as(&format!("SELECT {ACCOUNT} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// [`find_by_id`], locking the row until the caller's transaction ends (what serialises
/// changes to one account: unlinking, deleting it).
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Records that `id`'s address is theirs (a link mailed to it was used, or a trusted provider
/// said so); an earlier verification time is kept.
pub async fn mark_verified(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()) WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
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
