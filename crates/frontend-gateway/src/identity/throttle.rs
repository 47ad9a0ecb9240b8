//! Sign-in throttling, in memory (per gateway instance: N instances allow N times the
//! attempts; a shared store would be needed to make the limits global).
//!
//! Two sliding windows, checked BEFORE any database lookup or argon2 work (and after the
//! email's rules, [`web_common::email::parse`]: a refused email is never counted):
//!
//! * per account, keyed by the email's key ([`web_common::email::Email::key`], the very value
//!   the user lookup matches `users.email_key` with, so every spelling of an address is one
//!   account here too): at most `SIGNIN_MAX_FAILURES_PER_ACCOUNT` failures per
//!   `SIGNIN_ACCOUNT_WINDOW_SECS`; a success clears the account's failures;
//! * per client (see [`crate::proxy::forwarded`]): an IPv4 address (an IPv4-mapped IPv6 one
//!   counts as its IPv4 address), or the /64 of an IPv6 address (one host usually holds a whole
//!   /64): at most `SIGNIN_MAX_ATTEMPTS_PER_IP` attempts, successful or not, per
//!   `SIGNIN_IP_WINDOW_SECS`.
//!
//! An attempt is counted against the account when it starts (and forgiven when it succeeds),
//! so parallel guesses cannot overshoot the limit.
//!
//! Memory is bounded whatever the input: a window holds at most [`MAX_KEYS`] keys, each of a
//! fixed size (an account is the first 16 bytes of the SHA-256 of its email key, never the
//! email; a client is at most 8 bytes), with at most `limit` timestamps of 16 bytes each. That
//! is about 100 bytes per key plus 16 per allowed attempt (some 20 MB per window at the
//! default limits). Past [`MAX_KEYS`] keys the expired ones are swept, then the least recently
//! used are evicted.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The most keys one window keeps (see the module docs for the bytes per key).
pub const MAX_KEYS: usize = 100_000;

/// An account in its window: the first 16 bytes of the SHA-256 of its email key.
type AccountKey = [u8; 16];

fn account_key(email_key: &str) -> AccountKey {
    let digest = Sha256::digest(email_key.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// A client in its window: an IPv4 address, or the /64 an IPv6 address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

fn client_key(ip: IpAddr) -> ClientKey {
    match ip {
        IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientKey::V4(v4.octets()),
            None => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                ClientKey::V6(prefix)
            }
        },
    }
}

/// The configured limits. A limit of 0 switches that window off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures allowed per account per `account_window`.
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

/// One sliding window of events per key.
#[derive(Debug)]
struct Window<K> {
    limit: u32,
    period: Duration,
    max_keys: usize,
    events: HashMap<K, VecDeque<Instant>>,
}

impl<K: std::hash::Hash + Eq + Clone> Window<K> {
    fn new(limit: u32, period: Duration, max_keys: usize) -> Self {
        Self {
            limit,
            period,
            max_keys,
            events: HashMap::new(),
        }
    }

    /// How long until `key` may try again (`None`: now).
    fn blocked_for(&mut self, key: &K, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let period = self.period;
        let events = self.events.get_mut(key)?;
        while events
            .front()
            .is_some_and(|t| now.duration_since(*t) >= period)
        {
            events.pop_front();
        }
        if events.len() < self.limit as usize {
            return None;
        }
        let oldest = *events.front()?;
        Some(period.saturating_sub(now.duration_since(oldest)))
    }

    fn record(&mut self, key: &K, now: Instant) {
        if self.limit == 0 {
            return;
        }
        if !self.events.contains_key(key) && self.events.len() >= self.max_keys {
            self.evict(now);
        }
        let events = self.events.entry(key.clone()).or_default();
        events.push_back(now);
        while events.len() > self.limit as usize {
            events.pop_front();
        }
    }

    fn forget(&mut self, key: &K) {
        self.events.remove(key);
    }

    /// Takes back the latest event of `key`.
    fn withdraw(&mut self, key: &K) {
        if let Some(events) = self.events.get_mut(key) {
            events.pop_back();
            if events.is_empty() {
                self.events.remove(key);
            }
        }
    }

    /// Drops expired keys; if still full, the least recently used tenth.
    fn evict(&mut self, now: Instant) {
        let period = self.period;
        self.events.retain(|_, events| {
            events
                .back()
                .is_some_and(|t| now.duration_since(*t) < period)
        });
        if self.events.len() >= self.max_keys {
            let mut last_used: Vec<(Instant, K)> = self
                .events
                .iter()
                .filter_map(|(k, e)| e.back().map(|t| (*t, k.clone())))
                .collect();
            last_used.sort_by_key(|(t, _)| *t);
            let drop = (self.max_keys / 10).max(1);
            for (_, key) in last_used.into_iter().take(drop) {
                self.events.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.events.len()
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

impl From<Throttled> for crate::error::Error {
    fn from(t: Throttled) -> Self {
        Self::Throttled {
            retry_after_secs: t.retry_after_secs(),
        }
    }
}

/// The sign-in throttle (shared by every worker).
#[derive(Debug)]
pub struct SignInThrottle {
    accounts: Mutex<Window<AccountKey>>,
    ips: Mutex<Window<ClientKey>>,
}

impl SignInThrottle {
    /// A throttle with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::with_capacity(limits, MAX_KEYS)
    }

    fn with_capacity(limits: Limits, max_keys: usize) -> Self {
        Self {
            accounts: Mutex::new(Window::new(
                limits.account_failures,
                limits.account_window,
                max_keys,
            )),
            ips: Mutex::new(Window::new(limits.ip_attempts, limits.ip_window, max_keys)),
        }
    }

    /// Starts an attempt on the account whose email key is `email_key`
    /// ([`web_common::email::Email::key`]) from `ip`: refused when either window is full
    /// (nothing is recorded then); otherwise counted against both (call [`Self::succeeded`] on
    /// success).
    pub fn attempt(&self, email_key: &str, ip: Option<IpAddr>) -> Result<(), Throttled> {
        let now = Instant::now();
        let account = account_key(email_key);
        let ip = ip.map(client_key);
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let mut ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
        let wait = [
            accounts.blocked_for(&account, now),
            ip.and_then(|ip| ips.blocked_for(&ip, now)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after) = wait {
            return Err(Throttled { retry_after });
        }
        accounts.record(&account, now);
        if let Some(ip) = ip {
            ips.record(&ip, now);
        }
        Ok(())
    }

    /// Starts an attempt with no account yet (a sign-in at an identity provider, whose account
    /// is known only at its callback): counted against `ip`'s window alone.
    pub fn attempt_from(&self, ip: Option<IpAddr>) -> Result<(), Throttled> {
        let Some(ip) = ip.map(client_key) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(retry_after) = ips.blocked_for(&ip, now) {
            return Err(Throttled { retry_after });
        }
        ips.record(&ip, now);
        Ok(())
    }

    /// The attempt on `email_key` succeeded: its account failures are forgotten (the IP's
    /// attempts are not).
    pub fn succeeded(&self, email_key: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(&account_key(email_key));
    }

    /// The attempt on `email_key` ended without a verdict (the hashing queue was full, the
    /// database failed): it is taken back from the account's window, so a user retrying
    /// through a sign-in storm or an outage does not lock their own account. (The IP's attempt
    /// stays counted; an attempt whose client went away mid-way stays counted too.)
    pub fn withdraw(&self, email_key: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .withdraw(&account_key(email_key));
    }

    /// How many keys are held (accounts, IPs).
    pub fn len(&self) -> (usize, usize) {
        (
            self.accounts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            self.ips.lock().unwrap_or_else(|e| e.into_inner()).len(),
        )
    }

    /// `true` when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(account_failures: u32, ip_attempts: u32) -> Limits {
        Limits {
            account_failures,
            account_window: Duration::from_secs(900),
            ip_attempts,
            ip_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn an_account_is_throttled_after_its_failures() {
        let t = SignInThrottle::new(limits(3, 100));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.attempt("ada@example.com", Some(ip)).is_ok());
        }
        let refused = t.attempt("ada@example.com", Some(ip)).unwrap_err();
        assert!(refused.retry_after_secs() > 800 && refused.retry_after_secs() <= 900);
        assert!(t.attempt("bob@example.com", Some(ip)).is_ok());
    }

    #[test]
    fn a_success_forgives_the_account_but_not_the_ip() {
        let t = SignInThrottle::new(limits(2, 3));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        t.attempt("a@x", Some(ip)).unwrap();
        t.succeeded("a@x");
        t.attempt("a@x", Some(ip)).unwrap();
        t.attempt("b@x", Some(ip)).unwrap();
        let refused = t.attempt("c@x", Some(ip)).unwrap_err();
        assert!(refused.retry_after_secs() <= 60);
        assert!(t.attempt("c@x", Some("192.0.2.2".parse().unwrap())).is_ok());
    }

    #[test]
    fn a_zero_limit_switches_the_window_off() {
        let t = SignInThrottle::new(limits(0, 0));
        for _ in 0..100 {
            assert!(t.attempt("a@x", Some("192.0.2.1".parse().unwrap())).is_ok());
        }
        assert!(t.is_empty());
    }

    #[test]
    fn memory_stays_bounded() {
        let t = SignInThrottle::with_capacity(limits(5, 5), 1000);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            t.attempt(&format!("user{i}@example.com"), Some(ip))
                .unwrap();
        }
        let (accounts, ips) = t.len();
        assert!(accounts <= 1000 && ips <= 1000, "{accounts} {ips}");
    }

    #[test]
    fn keys_are_fixed_size_so_huge_emails_keep_the_map_at_its_cap() {
        assert_eq!(std::mem::size_of::<AccountKey>(), 16);
        assert!(std::mem::size_of::<ClientKey>() <= 9);
        let t = SignInThrottle::with_capacity(limits(5, 0), 100);
        for i in 0..1_000u32 {
            let huge = format!("{i}{}", "x".repeat(64 * 1024));
            t.attempt(&huge, None).unwrap();
        }
        assert_eq!(t.len().0, 100);
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_client_its_ipv4_address() {
        let t = SignInThrottle::new(limits(100, 2));
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        t.attempt("a@x", ip("2001:db8:1:2::1")).unwrap();
        t.attempt("b@x", ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .unwrap();
        assert!(t.attempt("c@x", ip("2001:db8:1:2::abcd")).is_err());
        assert!(t.attempt("c@x", ip("2001:db8:1:3::1")).is_ok());

        t.attempt("a@x", ip("192.0.2.7")).unwrap();
        t.attempt("b@x", ip("::ffff:192.0.2.7")).unwrap();
        assert!(t.attempt("c@x", ip("192.0.2.7")).is_err());
        assert!(t.attempt_from(ip("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn expired_events_free_the_window() {
        let mut w = Window::new(1, Duration::from_millis(10), 10);
        let now = Instant::now();
        w.record(&"k", now);
        assert!(w.blocked_for(&"k", now).is_some());
        assert!(
            w.blocked_for(&"k", now + Duration::from_millis(11))
                .is_none()
        );
    }
}
