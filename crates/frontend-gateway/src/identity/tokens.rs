//! The single-use links the gateway mails (`email_tokens`): email verification (24 hours),
//! password reset (1 hour) and sign-in links (10 minutes).
//!
//! A token is 32 random bytes (256 bits) in URL-safe base64; the table keeps only its
//! SHA-256, so a leaked row cannot be turned back into a link. A link is used up by deleting
//! its row ([`consume`]), once, and only by the POST of the page the link opens (a mail
//! scanner fetching the link reads the page and burns nothing). A used, expired, unknown or
//! tampered token finds no row: every case reads the same.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Prove the address belongs to the account (and sign in): 24 hours.
    VerifyEmail,
    /// Set a new password: 1 hour.
    PasswordReset,
    /// Sign in (and prove the address): 10 minutes.
    SignInLink,
}

impl Purpose {
    /// `email_tokens.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::SignInLink => "signin_link",
        }
    }

    /// How long a link lives.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::from_secs(24 * 3600),
            Self::PasswordReset => Duration::from_secs(3600),
            Self::SignInLink => Duration::from_secs(600),
        }
    }
}

/// What a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Grant {
    /// The user; `None` for a sign-in link to an address without an account.
    pub user_id: Option<Uuid>,
    /// The address as typed where it was mailed.
    pub email: String,
    /// Its key (`web_common::email::key`).
    pub email_key: String,
    /// Where a sign-in link leads once used.
    pub callback_url: Option<String>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The longest token [`peek`] and [`consume`] hash (ours are 43 characters); anything longer
/// is refused unread.
const MAX_TOKEN_LEN: usize = 128;

/// Issues a token for `purpose` and `grant`, in the caller's transaction (with the mail that
/// carries it); returns the token, for the link only.
pub async fn issue(
    conn: &mut PgConnection,
    purpose: Purpose,
    grant: &Grant,
) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let lifetime = i64::try_from(purpose.lifetime().as_secs()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, purpose, user_id, email, email_key, callback_url, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
    )
    .bind(&hash(&token)[..])
    .bind(purpose.as_str())
    .bind(grant.user_id)
    .bind(&grant.email)
    .bind(&grant.email_key)
    .bind(&grant.callback_url)
    .bind(lifetime as f64)
    .execute(conn)
    .await?;
    Ok(token)
}

/// What a live token of `purpose` grants, without using it up (the page a link opens).
pub async fn peek(
    db: impl PgExecutor<'_>,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Grant>, sqlx::Error> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT user_id, email, email_key, callback_url FROM email_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND expires_at > now()",
    )
    .bind(&hash(token)[..])
    .bind(purpose.as_str())
    .fetch_optional(db)
    .await
}

/// Uses up a live token of `purpose`, in the caller's transaction: what it granted, or `None`
/// (used, expired, unknown or tampered). Two requests racing for one token: one gets it.
pub async fn consume(
    conn: &mut PgConnection,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Grant>, sqlx::Error> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    sqlx::query_as(
        "DELETE FROM email_tokens WHERE token_hash = $1 AND purpose = $2 AND expires_at > now() \
         RETURNING user_id, email, email_key, callback_url",
    )
    .bind(&hash(token)[..])
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// Voids every outstanding token of `user` (a password reset, a deleted account), and the
/// sign-in links mailed to `email_key` before the account existed.
pub async fn void_all(
    conn: &mut PgConnection,
    user: Uuid,
    email_key: &str,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 OR email_key = $2")
            .bind(user)
            .bind(email_key)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes expired tokens (the periodic clean-up).
pub async fn delete_expired(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM email_tokens WHERE expires_at <= now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_the_documented_ones() {
        assert_eq!(Purpose::VerifyEmail.lifetime(), Duration::from_secs(86_400));
        assert_eq!(
            Purpose::PasswordReset.lifetime(),
            Duration::from_secs(3_600)
        );
        assert_eq!(Purpose::SignInLink.lifetime(), Duration::from_secs(600));
    }

    #[test]
    fn the_hash_is_of_the_whole_token() {
        assert_ne!(hash("abc"), hash("abd"));
        assert_eq!(hash("abc"), hash("abc"));
    }
}
