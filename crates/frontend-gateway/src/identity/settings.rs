//! What the identity wing is configured with (read by the gateway's `Settings`).

use std::num::NonZeroUsize;

use super::throttle::Limits;

/// The sign-in group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInSettings {
    /// `SIGNIN_MAX_FAILURES_PER_ACCOUNT` (5) per `SIGNIN_ACCOUNT_WINDOW_SECS` (900),
    /// `SIGNIN_MAX_ATTEMPTS_PER_IP` (20) per `SIGNIN_IP_WINDOW_SECS` (60); 0 switches a limit off.
    pub limits: Limits,
    /// `PASSWORD_HASH_CONCURRENCY` (default: half the cores, at least one): argon2 hashes at
    /// once; the rest wait for a turn.
    pub hash_concurrency: NonZeroUsize,
}
