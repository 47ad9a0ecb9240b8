//! Ending sessions everywhere at once: every statement that deletes session rows also notifies
//! `sessions_ended` (delivered on commit), and every instance, hearing it through its one
//! listener ([`web_common::notify::Hub`]), drops those sessions from its cache and cuts their
//! open streams ([`super::Liveness`]). When notifications may have been missed (the listener
//! reconnected, or fell behind), an instance forgets its whole cache and has every stream check
//! its session again; the cache's time bound (`SESSION_CACHE_MS`) stays the fallback for the
//! moment a notification is in flight.

use uuid::Uuid;

/// The channel of ended sessions.
pub const CHANNEL: &str = "sessions_ended";

/// What ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every session of a user.
    User(Uuid),
    /// One session, by the SHA-256 of its key.
    Key([u8; 32]),
    /// Unknown: notifications may have been missed.
    Unknown,
}

impl Ended {
    /// What a notification's payload says ended (`u:<uuid>`, `k:<hex of the key's hash>`);
    /// anything else counts as [`Ended::Unknown`].
    pub fn parse(payload: &str) -> Self {
        let parsed = match payload.split_once(':') {
            Some(("u", user)) => user.parse().ok().map(Self::User),
            Some(("k", hash)) => hex::decode(hash)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(Self::Key),
            _ => None,
        };
        parsed.unwrap_or(Self::Unknown)
    }

    /// Whether a session of `user` whose key hashes to `key` is one of those that ended (or may
    /// have).
    pub fn covers(&self, user: Option<Uuid>, key: &[u8]) -> bool {
        match self {
            Self::User(ended) => user == Some(*ended),
            Self::Key(ended) => ended[..] == *key,
            Self::Unknown => true,
        }
    }
}

/// The payload announcing that every session of `user` ended (the SQL builds the one of a
/// single key: `'k:' || encode(key_hash, 'hex')`).
pub fn user_payload(user: Uuid) -> String {
    format!("u:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_anything_else_is_unknown() {
        let user = Uuid::new_v4();
        assert_eq!(Ended::parse(&user_payload(user)), Ended::User(user));
        let hash = [7u8; 32];
        assert_eq!(
            Ended::parse(&format!("k:{}", hex::encode(hash))),
            Ended::Key(hash)
        );
        for junk in ["", "u:", "u:nope", "k:00", "x:1", "k:zz"] {
            assert_eq!(Ended::parse(junk), Ended::Unknown, "{junk:?}");
        }
    }

    #[test]
    fn what_an_end_covers() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(Ended::User(ada).covers(Some(ada), &[1; 32]));
        assert!(!Ended::User(ada).covers(Some(bob), &[1; 32]));
        assert!(!Ended::User(ada).covers(None, &[1; 32]));
        assert!(Ended::Key([1; 32]).covers(Some(bob), &[1; 32]));
        assert!(!Ended::Key([1; 32]).covers(Some(bob), &[2; 32]));
        assert!(Ended::Unknown.covers(None, &[]));
    }
}
