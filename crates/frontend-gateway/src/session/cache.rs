//! What one gateway instance remembers of the sessions it loaded, so that a busy session costs
//! no query per request.
//!
//! An entry lives at most [`CACHE_TTL_MAX`] (500 ms; lower with `SESSION_CACHE_MS`), and never
//! longer than the store allows (see [`super::store`]): a session deleted by another instance
//! stops working here within that bound, and at once when this instance deletes it. Every
//! delete or update bumps an epoch, and a load that started before it does not cache what it
//! read, so a row that went away while it was being read is never put back. Only loads fill
//! the cache, keyed by the session key itself (a hit computes no SHA-256), and it holds at most
//! [`CACHE_CAPACITY`] entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A session's raw state, as actix-session keeps it.
pub type State = HashMap<String, String>;

/// The longest an instance serves a session from memory without asking the table.
pub const CACHE_TTL_MAX: Duration = Duration::from_millis(500);
/// The most sessions an instance keeps in memory (a few hundred bytes each).
pub const CACHE_CAPACITY: usize = 4096;

/// Sessions recently loaded by this instance (shared by its workers).
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<Inner>,
    /// One gate per session key being loaded: when an entry expires under load, the first
    /// request reads the row and the others wait for its answer instead of all querying at
    /// once (without it every cache expiry sent a burst of identical queries to the pool,
    /// twice a second, which showed as the proxy's tail latency).
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every delete/update: a load that started before one does not cache its row.
    epoch: u64,
    /// By session key (the cookie's decrypted value): the state, its user, and until when.
    entries: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    state: State,
    user: Option<Uuid>,
    until: Instant,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `key`'s state while its entry lives.
    pub fn get(&self, key: &str) -> Option<State> {
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

    /// The current epoch: pass it to [`Cache::insert`] once the load it started is done.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// The gate of `key`'s loads (created when none is held).
    pub fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(loading.entry(key.to_owned()).or_default())
    }

    /// Drops `key`'s gate once nobody but the map and the caller holds it.
    pub fn release(&self, key: &str, gate: &Arc<tokio::sync::Mutex<()>>) {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if Arc::strong_count(gate) <= 2 {
            loading.remove(key);
        }
    }

    /// Caches `state` (whose user is `user`) until `until`, unless a delete or an update
    /// happened since `epoch`.
    pub fn insert(&self, epoch: u64, key: &str, state: State, user: Option<Uuid>, until: Instant) {
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
        inner
            .entries
            .insert(key.to_owned(), Entry { state, user, until });
    }

    /// Forgets `key` (its row was updated or deleted).
    pub fn invalidate(&self, key: &str) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.remove(key);
    }

    /// Forgets the session whose key hashes to `hash` (its row was deleted, maybe elsewhere).
    pub fn forget_key_hash(&self, hash: &[u8; 32]) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner
            .entries
            .retain(|key, _| Sha256::digest(key.as_bytes())[..] != hash[..]);
    }

    /// Forgets everything (sessions may have ended unheard of).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.clear();
    }

    /// Forgets every session of `user` (their rows were deleted by user id).
    pub fn forget_user(&self, user: Uuid) {
        let mut inner = self.lock();
        inner.epoch = inner.epoch.wrapping_add(1);
        inner.entries.retain(|_, entry| entry.user != Some(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user: Uuid) -> State {
        HashMap::from([("user".to_owned(), user.to_string())])
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn entries_expire_and_deletes_win_over_loads_in_flight() {
        let cache = Cache::default();
        let ada = Uuid::new_v4();
        let epoch = cache.epoch();
        cache.insert(epoch, "a", state(ada), Some(ada), Instant::now());
        assert_eq!(cache.get("a"), None, "expired at once");
        cache.insert(epoch, "a", state(ada), Some(ada), later());
        assert_eq!(cache.get("a"), Some(state(ada)));
        cache.invalidate("a");
        assert_eq!(cache.get("a"), None);
        // A load that started before the delete does not put the row back.
        cache.insert(epoch, "a", state(ada), Some(ada), later());
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn forgetting_a_user_drops_only_their_sessions() {
        let cache = Cache::default();
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let epoch = cache.epoch();
        cache.insert(epoch, "a1", state(ada), Some(ada), later());
        cache.insert(epoch, "a2", state(ada), Some(ada), later());
        cache.insert(epoch, "b", state(bob), Some(bob), later());
        cache.forget_user(ada);
        assert_eq!(cache.get("a1"), None);
        assert_eq!(cache.get("a2"), None);
        assert_eq!(cache.get("b"), Some(state(bob)));
    }

    #[test]
    fn forgetting_a_key_hash_or_everything() {
        let cache = Cache::default();
        let ada = Uuid::new_v4();
        let epoch = cache.epoch();
        cache.insert(epoch, "a1", state(ada), Some(ada), later());
        cache.insert(epoch, "a2", state(ada), Some(ada), later());
        cache.forget_key_hash(&Sha256::digest(b"a1").into());
        assert_eq!(cache.get("a1"), None);
        assert_eq!(cache.get("a2"), Some(state(ada)));
        cache.clear();
        assert_eq!(cache.get("a2"), None);
    }

    #[test]
    fn the_cache_lives_at_most_half_a_second() {
        const { assert!(CACHE_TTL_MAX.as_millis() <= 1000) };
    }
}
