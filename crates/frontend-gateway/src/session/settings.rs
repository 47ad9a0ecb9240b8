//! What the session wing is configured with (read by the gateway's `Settings`).

use std::fmt;
use std::time::Duration;

use rand::RngCore;
use web_common::env::ConfigError;

/// The shortest `SESSION_KEY` accepted, in bytes (what the cookie key derivation needs).
pub const MIN_SESSION_KEY_LEN: usize = 64;

/// The sessions group.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `SESSION_KEY`: encrypts the session cookie (and keys the CSRF hash).
    pub key: SessionKey,
    /// `SESSION_IDLE_TIMEOUT_SECS` (default 86 400, one day): a session unused this long ends.
    pub idle_timeout: Duration,
    /// `SESSION_ABSOLUTE_TIMEOUT_SECS` (default 604 800, seven days): a session ends this long
    /// after sign-in, however busy.
    pub absolute_timeout: Duration,
    /// `SESSION_CACHE_MS` (0 to 500, default 500): how long an instance may serve a session it
    /// loaded from memory; 0 switches the cache off.
    pub cache_ttl: Duration,
    /// `SESSIONS_PER_USER_MAX` (at least 1, default 50): the most sessions one user keeps; a
    /// sign-in past it ends that user's least recently used ones.
    pub per_user_max: u32,
}

/// `SESSION_KEY`: at least [`MIN_SESSION_KEY_LEN`] bytes, or a random one in development.
/// `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey {
    bytes: Vec<u8>,
    generated: bool,
}

impl SessionKey {
    /// Accepts `bytes` when long enough.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_SESSION_KEY_LEN {
            return Err(ConfigError::invalid(
                "SESSION_KEY",
                format!(
                    "it is {} bytes long; at least {MIN_SESSION_KEY_LEN} are required (make one with `openssl rand -base64 64`)",
                    bytes.len()
                ),
            ));
        }
        Ok(Self {
            bytes,
            generated: false,
        })
    }

    /// A random key (development only: sessions then end when the gateway restarts).
    pub fn generate() -> Self {
        let mut bytes = vec![0; MIN_SESSION_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            bytes,
            generated: true,
        }
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// `true` for a key made by [`SessionKey::generate`]: sessions end when the process does.
    pub fn is_generated(&self) -> bool {
        self.generated
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}
