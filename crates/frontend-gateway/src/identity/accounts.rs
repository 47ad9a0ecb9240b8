//! The `accounts` rows: which identities at which providers sign a user in.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// A provider identity linked to a user, as the account page shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Linked {
    /// The provider's id.
    pub provider: String,
    /// The email the provider gave at the last sign-in.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: OffsetDateTime,
    /// The last sign-in through it.
    pub last_sign_in_at: OffsetDateTime,
}

/// The user `(provider, subject)` is linked to, locking the link until the transaction ends.
pub async fn owner(
    db: impl PgExecutor<'_>,
    provider: &str,
    subject: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM accounts WHERE provider = $1 AND subject = $2 FOR UPDATE",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(db)
    .await
}

/// Links `(provider, subject)` to `user`; `false` when the subject is linked already (to
/// anyone: a subject belongs to one user).
pub async fn insert(
    db: impl PgExecutor<'_>,
    provider: &str,
    subject: &str,
    user: Uuid,
    email: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO accounts (provider, subject, user_id, email) VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(provider)
    .bind(subject)
    .bind(user)
    .bind(email)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sign-in through `(provider, subject)` and the email it came with.
pub async fn touch(
    db: impl PgExecutor<'_>,
    provider: &str,
    subject: &str,
    email: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET last_sign_in_at = now(), email = $3
         WHERE provider = $1 AND subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .bind(email)
    .execute(db)
    .await?;
    Ok(())
}

/// `user`'s linked identities, by provider.
pub async fn of_user(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<Linked>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, email, created_at, last_sign_in_at FROM accounts
         WHERE user_id = $1 ORDER BY provider, created_at",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// Unlinks every identity of `user` at `provider`; returns how many there were.
pub async fn delete(
    db: impl PgExecutor<'_>,
    user: Uuid,
    provider: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM accounts WHERE user_id = $1 AND provider = $2")
        .bind(user)
        .bind(provider)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Unlinks every provider of `user` (an unverified account taken over by a sign-in link: no
/// link of it was proven to be the address's owner's); returns how many.
pub async fn delete_all(db: impl PgExecutor<'_>, user: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM accounts WHERE user_id = $1")
        .bind(user)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Unlinks every identity of `user` except `(provider, subject)`; returns how many went.
pub async fn delete_others(
    db: impl PgExecutor<'_>,
    user: Uuid,
    provider: &str,
    subject: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM accounts WHERE user_id = $1 AND NOT (provider = $2 AND subject = $3)",
    )
    .bind(user)
    .bind(provider)
    .bind(subject)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
