//! Whether one session still lives: what a long-running response (an event stream, a chunked
//! download) asks again and again, so that it ends with its session.

use actix_session::storage::SessionKey;
use actix_web::HttpRequest;
use actix_web::cookie::{CookieJar, Key};
use sqlx::PgPool;

use super::store::key_hash;

/// One session row, by the hash of its key.
#[derive(Debug, Clone)]
pub struct Liveness {
    pool: PgPool,
    key_hash: Vec<u8>,
}

impl Liveness {
    /// The row of the session in `req`'s cookie `cookie_name`, decrypted with `key` as the
    /// session middleware does; `None` without such a cookie.
    pub(super) fn of(
        req: &HttpRequest,
        cookie_name: &str,
        key: &Key,
        pool: &PgPool,
    ) -> Option<Self> {
        let cookie = req.cookie(cookie_name)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let value = jar.private(key).get(cookie_name)?.value().to_owned();
        let session_key = SessionKey::try_from(value).ok()?;
        Some(Self {
            pool: pool.clone(),
            key_hash: key_hash(&session_key).to_vec(),
        })
    }

    /// `true` while the session is neither signed out, revoked nor expired. A session that
    /// cannot be checked (the database is down) counts as ended: fail closed.
    pub async fn alive(&self) -> bool {
        let alive = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE key_hash = $1 AND idle_expires_at > now())",
        )
        .bind(&self.key_hash)
        .fetch_one(&self.pool)
        .await;
        match alive {
            Ok(alive) => alive,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-check a streaming session");
                false
            }
        }
    }
}
