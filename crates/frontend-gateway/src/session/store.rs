//! actix-session's [`SessionStore`] on Postgres (the `sessions` table).
//!
//! The cookie carries a random 64-character key (encrypted by actix-session); the table keeps
//! only its SHA-256. Each row has an absolute expiry, fixed when the session is created, and an
//! idle expiry that requests slide forward (never past the absolute one). Expired rows are
//! never loaded, and [`delete_expired`] removes them.
//!
//! Cost per request: loading a session is one primary-key `SELECT`. The idle expiry is written
//! only when it would move by more than [`extend_step`] (a minute for long timeouts, 1/20 of
//! short ones), not on every request, so a busy session costs one small `UPDATE` a minute
//! instead of one per request. Consequence: a session may end up to two steps before `idle`
//! has passed since its last request, never after.
//!
//! On top of that, each instance keeps what it loaded for at most [`CACHE_TTL_MAX`] (500 ms,
//! and never longer than a step or the row's remaining life): a session deleted elsewhere
//! (sign-out on another instance, a deleted user) stops working within 1 s everywhere (well
//! within: the cache lives half of that), and at once on the instance that deleted it:
//! [`SessionStore::delete`] drops the entry, and a load that was already running when the row
//! went away does not put it back. Code that deletes a user's rows by user id (sign-out
//! everywhere, password change) should call [`forget_user`] once committed for the same
//! effect; without it, this instance may serve those sessions for up to [`CACHE_TTL_MAX`].
//! Only loads fill the cache: a session just created is always read from the table first. The
//! cache is keyed by the session key itself (a hit computes no SHA-256). `SESSION_CACHE_MS`
//! (0..=500, default 500) lowers or disables it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// The longest an instance serves a session from memory without asking the table.
pub const CACHE_TTL_MAX: Duration = Duration::from_millis(500);
/// The most sessions an instance keeps in memory (a few hundred bytes each).
const CACHE_CAPACITY: usize = 4096;

/// How far the idle expiry must be able to move before a request writes it: a minute, or 1/20
/// of `idle` when that is shorter.
pub fn extend_step(idle: Duration) -> Duration {
    (idle / 20).min(Duration::from_secs(60))
}

/// `SESSION_CACHE_MS`, read once: the cache's lifetime cap (at most [`CACHE_TTL_MAX`]).
fn cache_ttl_cap() -> Duration {
    static CAP: LazyLock<Duration> = LazyLock::new(|| {
        std::env::var("SESSION_CACHE_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(CACHE_TTL_MAX, |ms| {
                Duration::from_millis(ms).min(CACHE_TTL_MAX)
            })
    });
    *CAP
}

/// Sessions recently loaded by this instance (shared by its workers).
#[derive(Debug, Default)]
struct Cache {
    inner: Mutex<CacheInner>,
    /// One gate per session key being loaded: when an entry expires under load, the first
    /// request reads the row and the others wait for its answer instead of all querying at
    /// once (without it every cache expiry sent a burst of identical queries to the pool,
    /// twice a second, which showed as the proxy's tail latency).
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// Bumped by every delete/update: a load that started before one does not cache its row.
    epoch: u64,
    /// By session key (the cookie's decrypted value): the state, its user, and until when.
    entries: HashMap<String, Entry>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<State> {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(entry) if entry.until > Instant::now() => Some(entry.state.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// The gate of `key`'s loads (created when none is held).
    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(loading.entry(key.to_owned()).or_default())
    }

    /// Drops `key`'s gate once nobody but the map and the caller holds it.
    fn release(&self, key: &str, gate: &Arc<tokio::sync::Mutex<()>>) {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if Arc::strong_count(gate) <= 2 {
            loading.remove(key);
        }
    }

    /// Caches `state` until `until`, unless a delete/update happened since `epoch`.
    fn insert(&self, epoch: u64, key: &str, state: State, until: Instant) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        if inner.entries.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            inner.entries.retain(|_, entry| entry.until > now);
            if inner.entries.len() >= CACHE_CAPACITY {
                return;
            }
        }
        let user = user_id(&state);
        inner
            .entries
            .insert(key.to_owned(), Entry { state, user, until });
    }

    fn invalidate(&self, key: &str) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.remove(key);
    }

    fn forget_user(&self, user: Uuid) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.retain(|_, entry| entry.user != Some(user));
    }
}

#[derive(Debug)]
struct Entry {
    state: State,
    user: Option<Uuid>,
    until: Instant,
}

/// The process's cache (every store and worker of this instance share it).
static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);

/// Drops whatever this instance has cached for `user`'s sessions. Call it right after deleting
/// a user's session rows by user id (password change, sign-out everywhere) has COMMITTED, so
/// that this instance stops serving them at once rather than within [`CACHE_TTL_MAX`]
/// (deleting one session through the store does this by itself).
pub fn forget_user(user: Uuid) {
    CACHE.forget_user(user);
}

/// The Postgres session store.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    absolute: Duration,
    idle: Duration,
    cache: &'static Cache,
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
        let ttl = cache_ttl_cap()
            .min(step)
            .min(Duration::try_from_secs_f64(remaining).unwrap_or(Duration::ZERO));
        if !ttl.is_zero() {
            self.cache
                .insert(epoch, session_key.as_ref(), state.clone(), started + ttl);
        }
        Ok(Some(state))
    }

    /// A store whose sessions live at most `absolute` after creation (and, until
    /// [`Self::with_idle`] says otherwise, as long idle).
    pub fn new(pool: PgPool, absolute: Duration) -> Self {
        Self {
            pool,
            absolute,
            idle: absolute,
            cache: &CACHE,
        }
    }

    /// The sliding idle timeout (capped at the absolute lifetime).
    #[must_use]
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle.min(self.absolute);
        self
    }

    /// The absolute lifetime.
    pub fn absolute(&self) -> Duration {
        self.absolute
    }

    async fn insert(&self, state: &State) -> Result<SessionKey, anyhow::Error> {
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
        .bind(&key_hash(&key)[..])
        .bind(Json(state))
        .bind(user_id(state))
        .bind(self.absolute.as_secs_f64())
        .bind(self.idle.as_secs_f64())
        .execute(&self.pool)
        .await?;
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
            return Ok(Some(state));
        }
        let gate = self.cache.gate(key);
        let turn = gate.lock().await;
        let loaded = match self.cache.get(key) {
            // Loaded by the request we waited for.
            Some(state) => Ok(Some(state)),
            None => self.load_row(session_key).await,
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
        session_state: State,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = key_hash(&session_key);
        let updated = sqlx::query(
            "UPDATE sessions
             SET state = $2, user_id = $3, idle_expires_at = LEAST(now() + make_interval(secs => $4), expires_at)
             WHERE key_hash = $1 AND idle_expires_at > now()",
        )
        .bind(&hash[..])
        .bind(Json(&session_state))
        .bind(user_id(&session_state))
        .bind(self.idle.as_secs_f64())
        .execute(&self.pool)
        .await;
        self.cache.invalidate(session_key.as_ref());
        if updated
            .map_err(|e| UpdateError::Other(e.into()))?
            .rows_affected()
            == 1
        {
            return Ok(session_key);
        }
        // The row expired or was deleted while the request ran: start a new session rather than
        // resurrect the old key.
        self.insert(&session_state)
            .await
            .map_err(UpdateError::Other)
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
        let deleted = sqlx::query("DELETE FROM sessions WHERE key_hash = $1")
            .bind(&hash[..])
            .execute(&self.pool)
            .await;
        // Again once the row is gone: a load that read it meanwhile must not cache it.
        self.cache.invalidate(session_key.as_ref());
        deleted?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user: Uuid) -> State {
        let user = SessionUser {
            id: user,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            signed_in_at: 0,
        };
        HashMap::from([("user".to_owned(), serde_json::to_string(&user).unwrap())])
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

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
        const { assert!(CACHE_TTL_MAX.as_millis() <= 1000) };
    }

    #[test]
    fn entries_expire_and_deletes_win_over_loads_in_flight() {
        let cache = Cache::default();
        let ada = Uuid::new_v4();
        let epoch = cache.epoch();
        cache.insert(epoch, "a", state(ada), Instant::now());
        assert_eq!(cache.get("a"), None, "expired at once");
        cache.insert(epoch, "a", state(ada), later());
        assert_eq!(cache.get("a"), Some(state(ada)));
        cache.invalidate("a");
        assert_eq!(cache.get("a"), None);
        // A load that started before the delete does not put the row back.
        cache.insert(epoch, "a", state(ada), later());
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn forgetting_a_user_drops_only_their_sessions() {
        let cache = Cache::default();
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let epoch = cache.epoch();
        cache.insert(epoch, "a1", state(ada), later());
        cache.insert(epoch, "a2", state(ada), later());
        cache.insert(epoch, "b", state(bob), later());
        cache.forget_user(ada);
        assert_eq!(cache.get("a1"), None);
        assert_eq!(cache.get("a2"), None);
        assert_eq!(cache.get("b"), Some(state(bob)));
    }
}
