//! actix-session's [`SessionStore`] on Postgres (the `sessions` table).
//!
//! The cookie carries a random 64-character key (encrypted by actix-session); the table keeps
//! only its SHA-256. Each row has an absolute expiry, fixed when the session is created, and an
//! idle expiry that requests slide forward (never past the absolute one). Expired rows are
//! never loaded (and [`super::Sessions::delete_expired`] removes them).
//!
//! Cost per request: loading a session is one primary-key `SELECT`. The idle expiry is written
//! only when it would move by more than [`extend_step`] (a minute for long timeouts, 1/20 of
//! short ones), not on every request, so a busy session costs one small `UPDATE` a minute
//! instead of one per request. Consequence: a session may end up to two steps before `idle`
//! has passed since its last request, never after.
//!
//! On top of that, what a load finds is kept in the instance's [`Cache`] for at most the
//! configured cache lifetime (`SESSION_CACHE_MS`, at most 500 ms), never longer than a step or
//! the row's remaining life: a session deleted elsewhere (sign-out on another instance, a
//! deleted user) stops working within 1 s everywhere (well within: the cache lives half of
//! that), and at once on the instance that deleted it: [`SessionStore::delete`] drops the
//! entry, and ending a user's sessions ([`super::Sessions::end_all`]) drops theirs.
//!
//! A row is only ever created by [`SessionStore::save`], for a session that has none (a
//! sign-in, which always starts a new session). [`SessionStore::update`] never creates one: a
//! row that was deleted or expired while a request changed its session stays gone (the client
//! gets a key that loads nothing), and a key rotation ([`super::UserSession::renew`]) happens in
//! the row's own `UPDATE`. A user keeps at most `SESSIONS_PER_USER_MAX` sessions: a new one past
//! that ends their least recently used (by idle expiry, which requests slide forward).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use opentelemetry::trace::SpanKind;
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;
use web_common::trace;

use super::cache::{Cache, State};
use super::metrics::SessionMetrics;
use super::revocation::CHANNEL;
use super::user::{ROTATE_KEY, SessionUser, SignInOrigin};

/// How far the idle expiry must be able to move before a request writes it: a minute, or 1/20
/// of `idle` when that is shorter.
pub fn extend_step(idle: Duration) -> Duration {
    (idle / 20).min(Duration::from_secs(60))
}

/// The Postgres session store (made by [`super::Sessions::store`]).
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    absolute: Duration,
    idle: Duration,
    cache_ttl: Duration,
    cache: Arc<Cache>,
    per_user_max: u32,
    metrics: SessionMetrics,
}

impl PgSessionStore {
    /// Reads the session row (and slides its idle expiry when due), caching what it finds.
    async fn load_row(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let hash = key_hash(session_key);
        let epoch = self.cache.epoch();
        let started = Instant::now();
        let step = extend_step(self.idle);
        // One primary-key lookup; `due` says whether the idle expiry has fallen more than a
        // step behind where this request would put it.
        let row: Option<(Json<State>, bool, f64)> = sqlx::query_as(
            "SELECT state,
                    idle_expires_at < LEAST(now() + make_interval(secs => $2), expires_at),
                    EXTRACT(EPOCH FROM idle_expires_at - now())::float8
             FROM sessions WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(&hash[..])
        .bind(self.idle.saturating_sub(step).as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        let Some((Json(state), due, remaining)) = row else {
            return Ok(None);
        };
        if due {
            self.extend(&hash)
                .await
                .map_err(|e| LoadError::Other(e.into()))?;
        }
        let ttl = self
            .cache_ttl
            .min(step)
            .min(Duration::try_from_secs_f64(remaining).unwrap_or(Duration::ZERO));
        if !ttl.is_zero() {
            let user = user_id(&state);
            self.cache.insert(
                epoch,
                session_key.as_ref(),
                state.clone(),
                user,
                started + ttl,
            );
        }
        Ok(Some(state))
    }

    /// A store whose sessions live at most `absolute` after creation and `idle` (capped at
    /// `absolute`) after their last request, at most `per_user_max` per user, remembering what
    /// it loads in `cache` for at most `cache_ttl`.
    pub(super) fn new(
        pool: PgPool,
        cache: Arc<Cache>,
        absolute: Duration,
        idle: Duration,
        cache_ttl: Duration,
        per_user_max: u32,
        metrics: SessionMetrics,
    ) -> Self {
        Self {
            pool,
            absolute,
            idle: idle.min(absolute),
            cache_ttl,
            cache,
            per_user_max,
            metrics,
        }
    }

    /// Creates the row of a new session, ending the user's least recently used sessions past
    /// `per_user_max` in the same transaction (one user's sign-ins take turns on an advisory
    /// lock, so two at once cannot both keep the cap's last place).
    async fn insert(&self, state: &State) -> Result<SessionKey, anyhow::Error> {
        let key = new_key()?;
        let hash = key_hash(&key);
        let user = user_id(state);
        let mut tx = self.pool.begin().await?;
        if let Some(user) = user {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7317))")
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        let origin = SignInOrigin::from_state(state);
        sqlx::query(
            "INSERT INTO sessions (key_hash, state, user_id, expires_at, idle_expires_at,
                                   provider, provider_subject, provider_sid)
             SELECT $1, $2, $3, e, LEAST(now() + make_interval(secs => $5), e), $6, $7, $8
             FROM (SELECT now() + make_interval(secs => $4) AS e) AS absolute",
        )
        .bind(&hash[..])
        .bind(Json(state))
        .bind(user)
        .bind(self.absolute.as_secs_f64())
        .bind(self.idle.as_secs_f64())
        .bind(origin.as_ref().map(|o| &o.provider))
        .bind(origin.as_ref().map(|o| &o.subject))
        .bind(origin.as_ref().and_then(|o| o.sid.as_ref()))
        .execute(&mut *tx)
        .await?;
        // Every instance hears which sessions the cap ended (see `super::revocation`).
        let ended = match user {
            Some(user) => sqlx::query(
                "WITH ended AS (
                     DELETE FROM sessions WHERE key_hash IN (
                         SELECT key_hash FROM sessions
                         WHERE user_id = $1 AND key_hash <> $2
                         ORDER BY idle_expires_at DESC
                         OFFSET $3)
                     RETURNING key_hash)
                 SELECT pg_notify($4, 'k:' || encode(key_hash, 'hex')) FROM ended",
            )
            .bind(user)
            .bind(&hash[..])
            .bind(i64::from(self.per_user_max) - 1)
            .bind(CHANNEL)
            .fetch_all(&mut *tx)
            .await?
            .len(),
            None => 0,
        };
        tx.commit().await?;
        if let (Some(user), 1..) = (user, ended) {
            // Their keys are not known here: drop all of the user's cached sessions.
            self.cache.forget_user(user);
            tracing::info!(
                user_id = %user,
                ended,
                "SESSIONS_PER_USER_MAX reached: the least recently used sessions ended"
            );
        }
        Ok(key)
    }

    /// Slides the idle expiry to `now + idle` (never past the absolute expiry).
    async fn extend(&self, hash: &[u8]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sessions SET idle_expires_at = LEAST(now() + make_interval(secs => $2), expires_at)
             WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(hash)
        .bind(self.idle.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A fresh random session key (64 alphanumeric characters).
fn new_key() -> Result<SessionKey, anyhow::Error> {
    let raw: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect();
    Ok(SessionKey::try_from(raw)?)
}

/// SHA-256 of the session key: what the table stores instead of the key.
pub fn key_hash(key: &SessionKey) -> [u8; 32] {
    Sha256::digest(key.as_ref().as_bytes()).into()
}

fn user_id(state: &State) -> Option<Uuid> {
    SessionUser::from_state(state).map(|u| u.id)
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let key = session_key.as_ref();
        if let Some(state) = self.cache.get(key) {
            self.metrics.cache_hit.inc();
            return Ok(Some(state));
        }
        let gate = self.cache.gate(key);
        let turn = gate.lock().await;
        let loaded = match self.cache.get(key) {
            // Loaded by the request we waited for.
            Some(state) => {
                self.metrics.cache_hit.inc();
                Ok(Some(state))
            }
            None => {
                let span = trace::span("session.load", SpanKind::Internal);
                let loaded = span.within(self.load_row(session_key)).await;
                match &loaded {
                    Ok(_) => self.metrics.miss.inc(),
                    Err(_) => {
                        span.fail("the session could not be read");
                        self.metrics.db_error.inc();
                    }
                }
                loaded
            }
        };
        drop(turn);
        self.cache.release(key, &gate);
        loaded
    }

    /// `_ttl` is the cookie's lifetime (the absolute one); the row's idle expiry uses `idle`.
    async fn save(
        &self,
        session_state: State,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        self.insert(&session_state).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        mut session_state: State,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = key_hash(&session_key);
        let rotated = match session_state.remove(ROTATE_KEY) {
            Some(_) => Some(new_key().map_err(UpdateError::Other)?),
            None => None,
        };
        let origin = SignInOrigin::from_state(&session_state);
        let updated = sqlx::query(
            "UPDATE sessions
             SET state = $2, user_id = $3, idle_expires_at = LEAST(now() + make_interval(secs => $4), expires_at),
                 provider = $5, provider_subject = $6, provider_sid = $7,
                 key_hash = COALESCE($8, key_hash)
             WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(&hash[..])
        .bind(Json(&session_state))
        .bind(user_id(&session_state))
        .bind(self.idle.as_secs_f64())
        .bind(origin.as_ref().map(|o| &o.provider))
        .bind(origin.as_ref().map(|o| &o.subject))
        .bind(origin.as_ref().and_then(|o| o.sid.as_ref()))
        .bind(rotated.as_ref().map(|key| key_hash(key).to_vec()))
        .execute(&self.pool)
        .await;
        self.cache.invalidate(session_key.as_ref());
        if updated
            .map_err(|e| UpdateError::Other(e.into()))?
            .rows_affected()
            == 1
        {
            return Ok(rotated.unwrap_or(session_key));
        }
        // The row expired or was deleted (signed out, ended everywhere, a back-channel logout,
        // the per-user cap) while this request ran, or after another instance cached it. It is
        // never written back, whatever the state: the client gets a key that loads nothing, so
        // it is signed out.
        tracing::info!("a session ended while a request changed it: not revived");
        new_key().map_err(UpdateError::Other)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        self.extend(&key_hash(session_key)).await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let hash = key_hash(session_key);
        self.cache.invalidate(session_key.as_ref());
        // Every instance hears that it ended (see `super::revocation`).
        let deleted = sqlx::query(
            "WITH ended AS (DELETE FROM sessions WHERE key_hash = $1 RETURNING key_hash)
             SELECT pg_notify($2, 'k:' || encode(key_hash, 'hex')) FROM ended",
        )
        .bind(&hash[..])
        .bind(CHANNEL)
        .execute(&self.pool)
        .await;
        // Again once the row is gone: a load that read it meanwhile must not cache it.
        self.cache.invalidate(session_key.as_ref());
        deleted?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_expiry_is_written_at_most_once_a_step() {
        assert_eq!(
            extend_step(Duration::from_secs(30 * 60)),
            Duration::from_secs(60)
        );
        assert_eq!(
            extend_step(Duration::from_secs(2)),
            Duration::from_millis(100)
        );
    }
}
