//! actix-session's [`SessionStore`] on Postgres (the `sessions` table).
//!
//! The cookie carries a random 64-character key (encrypted by actix-session); the table keeps
//! only its SHA-256. Each row has an absolute expiry, fixed when the session is created, and an
//! idle expiry that every request slides forward (never past the absolute one). Expired rows
//! are never loaded, and [`delete_expired`] removes them.

use std::collections::HashMap;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::session::SessionUser;

type State = HashMap<String, String>;

/// The Postgres session store.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    absolute: Duration,
}

impl PgSessionStore {
    /// A store whose sessions live at most `absolute` after creation.
    pub fn new(pool: PgPool, absolute: Duration) -> Self {
        Self { pool, absolute }
    }

    async fn insert(
        &self,
        state: &State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, anyhow::Error> {
        let raw: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        let key = SessionKey::try_from(raw)?;
        sqlx::query(
            "INSERT INTO sessions (key_hash, state, user_id, expires_at, idle_expires_at)
             SELECT $1, $2, $3, e, LEAST(now() + make_interval(secs => $5), e)
             FROM (SELECT now() + make_interval(secs => $4) AS e) AS absolute",
        )
        .bind(key_hash(&key))
        .bind(Json(state))
        .bind(user_id(state))
        .bind(self.absolute.as_secs_f64())
        .bind(secs(ttl))
        .execute(&self.pool)
        .await?;
        Ok(key)
    }
}

/// SHA-256 of the session key: what the table stores instead of the key.
pub fn key_hash(key: &SessionKey) -> Vec<u8> {
    Sha256::digest(key.as_ref().as_bytes()).to_vec()
}

fn user_id(state: &State) -> Option<Uuid> {
    SessionUser::from_state(state).map(|u| u.id)
}

fn secs(ttl: &CookieDuration) -> f64 {
    ttl.as_seconds_f64().max(0.0)
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let row: Option<(Json<State>,)> = sqlx::query_as(
            "SELECT state FROM sessions WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(key_hash(session_key))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        Ok(row.map(|(Json(state),)| state))
    }

    async fn save(
        &self,
        session_state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        self.insert(&session_state, ttl)
            .await
            .map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let updated = sqlx::query(
            "UPDATE sessions
             SET state = $2, user_id = $3, idle_expires_at = LEAST(now() + make_interval(secs => $4), expires_at)
             WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(key_hash(&session_key))
        .bind(Json(&session_state))
        .bind(user_id(&session_state))
        .bind(secs(ttl))
        .execute(&self.pool)
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        if updated.rows_affected() == 1 {
            return Ok(session_key);
        }
        // The row expired or was deleted while the request ran: start a new session rather than
        // resurrect the old key.
        self.insert(&session_state, ttl)
            .await
            .map_err(UpdateError::Other)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        sqlx::query(
            "UPDATE sessions SET idle_expires_at = LEAST(now() + make_interval(secs => $2), expires_at)
             WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(key_hash(session_key))
        .bind(secs(ttl))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE key_hash = $1")
            .bind(key_hash(session_key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Deletes every expired session; returns how many.
pub async fn delete_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE idle_expires_at <= now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes expired sessions every `every`, forever (run it next to the server).
pub async fn clean_up_periodically(pool: PgPool, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        match delete_expired(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
        }
    }
}
