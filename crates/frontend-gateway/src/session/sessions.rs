//! [`Sessions`]: the session wing as the rest of the gateway uses it. It is the only code that
//! reads or writes the `sessions` table (through the store it makes, or its own statements),
//! and the only owner of this instance's session cache, so ending sessions is one call that
//! does the SQL, the cache invalidation here, and the notice to every other instance (see
//! [`super::revocation`]), which [`Sessions::follow`] hears.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::Key;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;
use web_common::db::Job;
use web_common::notify::Notice;

use super::cache::Cache;
use super::liveness::Liveness;
use super::metrics::SessionMetrics;
use super::revocation::{CHANNEL, Ended, user_payload};
use super::settings::SessionSettings;
use super::store::PgSessionStore;
use super::user::SessionUser;

/// The session wing's handle: cheap to clone, shared by every worker of an instance.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    cache: Arc<Cache>,
    settings: SessionSettings,
    secure: bool,
    cookie_key: Key,
    /// Ended sessions, for this instance's open streams.
    ended: broadcast::Sender<Ended>,
    metrics: SessionMetrics,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("settings", &self.settings)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions in `pool`'s `sessions` table, configured by `settings`; `secure` (production)
    /// gives the cookie the `__Host-` prefix and `Secure`.
    pub fn new(pool: PgPool, settings: SessionSettings, secure: bool) -> Self {
        Self {
            cookie_key: Key::derive_from(settings.key.expose()),
            pool,
            cache: Arc::new(Cache::default()),
            settings,
            secure,
            ended: broadcast::channel(1024).0,
            metrics: SessionMetrics::default(),
        }
    }

    /// The wing's metrics (for the service's registry).
    pub fn metrics(&self) -> &SessionMetrics {
        &self.metrics
    }

    /// The settings this wing runs with.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Whether cookies are `Secure` (and `__Host-` prefixed).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The session cookie's name: `__Host-session` when secure (the prefix makes browsers insist
    /// on `Secure`, `Path=/` and no `Domain`), `session` otherwise.
    pub fn cookie_name(&self) -> &'static str {
        crate::cookies::SESSION.name(self.secure)
    }

    /// The key the session cookie is encrypted with.
    pub fn cookie_key(&self) -> &Key {
        &self.cookie_key
    }

    /// The store the session middleware loads and saves through (sharing this cache).
    pub fn store(&self) -> PgSessionStore {
        PgSessionStore::new(
            self.pool.clone(),
            Arc::clone(&self.cache),
            self.settings.absolute_timeout,
            self.settings.idle_timeout,
            self.settings.cache_ttl,
            self.settings.per_user_max,
            self.metrics.clone(),
        )
    }

    /// When `user`'s session ends if left alone from now: the earlier of its idle and its
    /// absolute expiry.
    pub fn expires_at(&self, user: &SessionUser) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let idle = now + self.settings.idle_timeout;
        let absolute = OffsetDateTime::from_unix_timestamp(user.signed_in_at).unwrap_or(now)
            + self.settings.absolute_timeout;
        idle.min(absolute)
    }

    /// Ends every session of `user` as part of `tx` (deleting their rows), commits it, and
    /// then drops them from this instance's cache, so none is served again here; returns how
    /// many there were. What else `tx` did (a new password hash, say) commits with it.
    pub async fn end_all(
        &self,
        mut tx: Transaction<'_, Postgres>,
        user: Uuid,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(user_payload(user))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.forget(Ended::User(user));
        Ok(done.rows_affected())
    }

    /// [`Sessions::end_all`] in a transaction of its own.
    pub async fn end_all_now(&self, user: Uuid) -> Result<u64, sqlx::Error> {
        self.end_all(self.pool.begin().await?, user).await
    }

    /// Ends the sessions that signed in through `provider` as `subject` (every one of them),
    /// or, with `sid`, those of that provider-side session (and `subject`, when given): a
    /// back-channel logout. Drops the users' entries from this instance's cache; returns how
    /// many sessions ended.
    pub async fn end_provider_sessions(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        if subject.is_none() && sid.is_none() {
            return Ok(0);
        }
        let ended: Vec<Vec<u8>> = sqlx::query_scalar(
            "WITH ended AS (
                 DELETE FROM sessions
                 WHERE provider = $1
                   AND ($2::text IS NULL OR provider_subject = $2)
                   AND ($3::text IS NULL OR provider_sid = $3)
                 RETURNING key_hash)
             SELECT key_hash FROM ended, pg_notify($4, 'k:' || encode(key_hash, 'hex'))",
        )
        .bind(provider)
        .bind(subject)
        .bind(sid)
        .bind(CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        for hash in &ended {
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                self.forget(Ended::Key(hash));
            }
        }
        Ok(ended.len() as u64)
    }

    /// The session (of `user`) that `req`'s cookie names, to wait on while a response
    /// streams; `None` without a (decryptable) session cookie.
    pub fn liveness(&self, req: &HttpRequest, user: Option<Uuid>) -> Option<Liveness> {
        Liveness::of(
            req,
            (self.cookie_name(), &self.cookie_key),
            user,
            &self.pool,
            &self.ended,
        )
    }

    /// Drops what ended from this instance's cache and tells its open streams.
    fn forget(&self, ended: Ended) {
        match ended {
            Ended::User(user) => self.cache.forget_user(user),
            Ended::Key(hash) => self.cache.forget_key_hash(&hash),
            Ended::Unknown => self.cache.clear(),
        }
        let _ = self.ended.send(ended);
    }

    /// Hears the sessions ended on any instance (`notices` of [`CHANNEL`], from the process's
    /// listener), forever (run it next to the server): each is forgotten here at once; when
    /// notices may have been missed, the whole cache is.
    pub async fn follow(self, mut notices: broadcast::Receiver<Notice>) {
        loop {
            let ended = match notices.recv().await {
                Ok(Notice::Payload(payload)) => {
                    self.metrics.revocations.inc();
                    Ended::parse(&payload)
                }
                Ok(Notice::Missed) | Err(RecvError::Lagged(_)) => Ended::Unknown,
                // No listener any more (the process is stopping): the cache's time bound stays.
                Err(RecvError::Closed) => return std::future::pending().await,
            };
            self.forget(ended);
        }
    }

    /// Deletes every expired session, once per cluster: `None` when another instance is doing
    /// it right now; else how many.
    pub async fn delete_expired(&self) -> Result<Option<u64>, sqlx::Error> {
        let Some(mut tx) = Job::SessionSweep.begin(&self.pool).await? else {
            return Ok(None);
        };
        let done = sqlx::query("DELETE FROM sessions WHERE idle_expires_at <= now()")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(done.rows_affected()))
    }

    /// Deletes expired sessions every `every`, forever (run it next to the server).
    pub async fn clean_up_periodically(self, every: Duration) {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            match self.delete_expired().await {
                Ok(None | Some(0)) => {}
                Ok(Some(n)) => tracing::info!(deleted = n, "expired sessions deleted"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
            }
        }
    }
}
