//! Sign-in and mail limits, shared by every gateway instance through Postgres (the `throttle`
//! table and its `throttle_attempt` function): N instances allow the attempts one allows.
//!
//! Two sliding windows, checked BEFORE any other database lookup or argon2 work (and after the
//! email's rules, [`web_common::email::parse`]: a refused email is never counted), in one
//! statement per attempt:
//!
//! * per account, keyed by the email's key ([`web_common::email::Email::key`], the very value
//!   the user lookup matches `users.email_key` with, so every spelling of an address is one
//!   account here too): for sign-ins at most `SIGNIN_MAX_FAILURES_PER_ACCOUNT` failures per
//!   `SIGNIN_ACCOUNT_WINDOW_SECS` (a success clears the account's failures); for requests that
//!   mail someone, `MAIL_REQUESTS_MAX_PER_ADDRESS` per `MAIL_REQUESTS_WINDOW_SECS`;
//! * per client (see [`crate::proxy::forwarded`]): an IPv4 address (an IPv4-mapped IPv6 one
//!   counts as its IPv4 address), or the /64 of an IPv6 address (one host usually holds a whole
//!   /64): at most `SIGNIN_MAX_ATTEMPTS_PER_IP` attempts, successful or not, per
//!   `SIGNIN_IP_WINDOW_SECS` (mail: `MAIL_REQUESTS_MAX_PER_IP`).
//!
//! An attempt is counted against the account when it starts (and forgiven when it succeeds);
//! the rows are locked while it is decided, so parallel guesses, on any instances, cannot
//! overshoot a limit. A refused attempt records nothing.
//!
//! Storage is bounded whatever the input: a key has a fixed size (an account is the first 16
//! bytes of the SHA-256 of its email key, never the email; a client is at most 8 bytes) and
//! holds at most `limit` timestamps; keys whose attempts are all past every window are deleted
//! by the periodic clean-up ([`delete_expired`]).

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};

/// An account in its window: the first 16 bytes of the SHA-256 of its email key.
fn account_key(email_key: &str) -> [u8; 16] {
    let digest = Sha256::digest(email_key.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// A client in its window: an IPv4 address, or the /64 an IPv6 address is in.
fn client_key(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

/// The configured limits. A limit of 0 switches that window off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures (mail: requests) allowed per account per `account_window`.
    pub account_failures: u32,
    /// The account window.
    pub account_window: Duration,
    /// Attempts allowed per client IP per `ip_window`.
    pub ip_attempts: u32,
    /// The IP window.
    pub ip_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            account_failures: 5,
            account_window: Duration::from_secs(15 * 60),
            ip_attempts: 20,
            ip_window: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The longest of the two windows.
    pub fn longest_window(&self) -> Duration {
        self.account_window.max(self.ip_window)
    }
}

/// What a throttle counts: its two scopes' names in the `throttle` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Sign-in attempts (`signin:account`, `signin:ip`).
    SignIn,
    /// Requests that mail someone (`mail:address`, `mail:ip`).
    Mail,
}

impl Scope {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::SignIn => ("signin:account", "signin:ip"),
            Self::Mail => ("mail:address", "mail:ip"),
        }
    }
}

/// A refused attempt: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// For `Retry-After` (whole seconds, rounded up, at least 1).
    pub retry_after: Duration,
}

impl Throttled {
    /// `Retry-After`'s value in seconds.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Why an attempt may not go on.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A window is full (429).
    #[error("throttled for {}s", .0.retry_after_secs())]
    Throttled(Throttled),
    /// The limits could not be read (503: without them nothing is let through).
    #[error(transparent)]
    Unavailable(#[from] sqlx::Error),
}

impl From<Refusal> for crate::error::Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(t) => Self::Throttled {
                retry_after_secs: t.retry_after_secs(),
            },
            Refusal::Unavailable(e) => e.into(),
        }
    }
}

/// One throttle (sign-ins, or requests that mail): its limits, kept in Postgres.
#[derive(Debug, Clone)]
pub struct Throttle {
    pool: PgPool,
    limits: Limits,
    scope: Scope,
}

impl Throttle {
    /// The `scope` throttle with `limits`, counting in `pool`'s `throttle` table.
    pub fn new(pool: PgPool, limits: Limits, scope: Scope) -> Self {
        Self {
            pool,
            limits,
            scope,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Starts an attempt on the account whose email key is `email_key`
    /// ([`web_common::email::Email::key`]) from `ip`: refused when either window is full
    /// (nothing is recorded then); otherwise counted against both (call [`Self::succeeded`] on
    /// success).
    pub async fn attempt(&self, email_key: &str, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let (account_scope, ip_scope) = self.scope.names();
        let mut scopes = vec![account_scope];
        let mut keys = vec![account_key(email_key).to_vec()];
        let mut limits = vec![self.limits.account_failures];
        let mut windows = vec![self.limits.account_window.as_secs_f64()];
        if let Some(ip) = ip {
            scopes.push(ip_scope);
            keys.push(client_key(ip));
            limits.push(self.limits.ip_attempts);
            windows.push(self.limits.ip_window.as_secs_f64());
        }
        self.run(&scopes, &keys, &limits, &windows).await
    }

    /// Starts an attempt with no account yet (a sign-in at an identity provider, whose account
    /// is known only at its callback): counted against `ip`'s window alone.
    pub async fn attempt_from(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let Some(ip) = ip else {
            return Ok(());
        };
        let (_, ip_scope) = self.scope.names();
        self.run(
            &[ip_scope],
            &[client_key(ip)],
            &[self.limits.ip_attempts],
            &[self.limits.ip_window.as_secs_f64()],
        )
        .await
    }

    async fn run(
        &self,
        scopes: &[&str],
        keys: &[Vec<u8>],
        limits: &[u32],
        windows: &[f64],
    ) -> Result<(), Refusal> {
        if limits.iter().all(|l| *l == 0) {
            return Ok(());
        }
        let limits: Vec<i32> = limits
            .iter()
            .map(|l| i32::try_from(*l).unwrap_or(i32::MAX))
            .collect();
        let wait: f64 = sqlx::query_scalar("SELECT throttle_attempt($1, $2, $3, $4)")
            .bind(scopes)
            .bind(keys)
            .bind(&limits)
            .bind(windows)
            .fetch_one(&self.pool)
            .await?;
        if wait > 0.0 {
            return Err(Refusal::Throttled(Throttled {
                retry_after: Duration::from_secs_f64(wait),
            }));
        }
        Ok(())
    }

    /// The attempt on `email_key` succeeded: its account failures are forgotten (the IP's
    /// attempts are not). A failure to forget is logged: it costs the user a failure, no more.
    pub async fn succeeded(&self, email_key: &str) {
        let (account_scope, _) = self.scope.names();
        let done = sqlx::query("DELETE FROM throttle WHERE scope = $1 AND key = $2")
            .bind(account_scope)
            .bind(&account_key(email_key)[..])
            .execute(&self.pool)
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not clear an account's sign-in failures");
        }
    }

    /// The attempt on `email_key` ended without a verdict (the hashing queue was full, the
    /// database failed): it is taken back from the account's window, so a user retrying
    /// through a sign-in storm or an outage does not lock their own account. (The IP's attempt
    /// stays counted; an attempt whose client went away mid-way stays counted too.)
    pub async fn withdraw(&self, email_key: &str) {
        let (account_scope, _) = self.scope.names();
        let done = sqlx::query(
            "UPDATE throttle SET events = events[1:cardinality(events) - 1] \
             WHERE scope = $1 AND key = $2 AND cardinality(events) > 0",
        )
        .bind(account_scope)
        .bind(&account_key(email_key)[..])
        .execute(&self.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not take back an attempt without a verdict");
        }
    }
}

/// Deletes the keys whose every attempt is older than `longest` (the longest window of any
/// throttle); returns how many (the periodic clean-up).
pub async fn delete_expired(
    db: impl PgExecutor<'_>,
    longest: Duration,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM throttle WHERE updated_at < now() - make_interval(secs => $1)")
            .bind(longest.as_secs_f64())
            .execute(db)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_fixed_size_whatever_the_input() {
        assert_eq!(account_key(&"x".repeat(64 * 1024)).len(), 16);
        let ip = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(ip("192.0.2.7"), [192, 0, 2, 7]);
        assert_eq!(
            ip("::ffff:192.0.2.7"),
            [192, 0, 2, 7],
            "IPv4-mapped is IPv4"
        );
        assert_eq!(
            ip("2001:db8:1:2::1"),
            ip("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("2001:db8:1:2::1").len(), 8, "an IPv6 client is its /64");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let t = |ms| Throttled {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(t(1).retry_after_secs(), 1);
        assert_eq!(t(1000).retry_after_secs(), 1);
        assert_eq!(t(1001).retry_after_secs(), 2);
        assert_eq!(t(0).retry_after_secs(), 1);
    }
}
