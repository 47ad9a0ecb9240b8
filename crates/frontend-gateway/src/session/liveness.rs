//! Whether one session still lives: what a long-running response (an event stream, a chunked
//! download) waits on, so that it ends with its session: at once when the session is ended
//! (here or, through the `sessions_ended` notification, on any instance), and otherwise found
//! out by asking the table again and again.

use std::time::Duration;

use actix_session::storage::SessionKey;
use actix_web::HttpRequest;
use actix_web::cookie::{CookieJar, Key};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use uuid::Uuid;

use super::revocation::Ended;
use super::store::key_hash;

/// One session row, by the hash of its key.
#[derive(Debug, Clone)]
pub struct Liveness {
    pool: PgPool,
    key_hash: [u8; 32],
    user: Option<Uuid>,
    ended: broadcast::Sender<Ended>,
}

impl Liveness {
    /// The row of the session in `req`'s cookie `cookie_name` (of `user`), decrypted with
    /// `key` as the session middleware does, hearing of ended sessions from `ended`; `None`
    /// without such a cookie.
    pub(super) fn of(
        req: &HttpRequest,
        (cookie_name, key): (&str, &Key),
        user: Option<Uuid>,
        pool: &PgPool,
        ended: &broadcast::Sender<Ended>,
    ) -> Option<Self> {
        let cookie = req.cookie(cookie_name)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let value = jar.private(key).get(cookie_name)?.value().to_owned();
        let session_key = SessionKey::try_from(value).ok()?;
        Some(Self {
            pool: pool.clone(),
            key_hash: key_hash(&session_key),
            user,
            ended: ended.clone(),
        })
    }

    /// `true` while the session is neither signed out, revoked nor expired. A session that
    /// cannot be checked (the database is down) counts as ended: fail closed.
    pub async fn alive(&self) -> bool {
        let alive = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE key_hash = $1 AND idle_expires_at > now())",
        )
        .bind(&self.key_hash[..])
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

    /// Resolves once the session has ended: at once when its end is heard of, and otherwise
    /// when a check (every `every`, and whenever ends may have been missed) finds its row gone.
    pub async fn ended(self, every: Duration) {
        let mut heard = Some(self.ended.subscribe());
        let mut next = Instant::now() + every;
        loop {
            let check = match heard.as_mut() {
                Some(receiver) => tokio::select! {
                    () = tokio::time::sleep_until(next) => true,
                    ended = receiver.recv() => match ended {
                        Ok(ended) if ended.covers(self.user, &self.key_hash) => {
                            if ended != Ended::Unknown {
                                return;
                            }
                            true
                        }
                        Ok(_) => false,
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => {
                            heard = None;
                            false
                        }
                    },
                },
                None => {
                    tokio::time::sleep_until(next).await;
                    true
                }
            };
            if check {
                if !self.alive().await {
                    return;
                }
                next = Instant::now() + every;
            }
        }
    }
}
