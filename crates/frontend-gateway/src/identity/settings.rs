//! What the identity wing is configured with (read by the gateway's `Settings`).

use std::num::NonZeroUsize;
use std::time::Duration;

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
    /// `PASSWORD_HASH_QUEUE` (default: four times the concurrency): how many more may wait for
    /// a turn; past it a sign-in, registration or password change is a 503 at once.
    pub hash_queue: usize,
    /// `MAIL_REQUESTS_MAX_PER_ADDRESS` (5) and `MAIL_REQUESTS_MAX_PER_IP` (20) per
    /// `MAIL_REQUESTS_WINDOW_SECS` (3600): requests that mail someone (registration, a new
    /// verification link, a password reset, a sign-in link), per address (its key) and per
    /// client; 0 switches a limit off. Every request counts (`account_failures` is the
    /// per-address limit here).
    pub mail_limits: Limits,
}

/// Which sign-in methods are on, and who may use them.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `AUTH_CREDENTIALS` (default true): email-and-password sign-in, registration and
    /// password change.
    pub credentials: bool,
    /// `AUTH_EMAIL_LINKS` (default false): sign-in links mailed to the address (next-auth's
    /// Email provider, id `email`).
    pub email_links: bool,
    /// `AUTH_ALLOWED_EMAIL_DOMAINS` (comma-separated, lower-cased; empty: any): the email
    /// domains a provider sign-in (or a registration) may have.
    pub allowed_email_domains: Vec<String>,
    /// The identity providers, in the order their buttons are shown.
    pub providers: Vec<ProviderSettings>,
    /// `AUTH_PROVIDER_TIMEOUT_SECS` (default 5): the most any one call to a provider (discovery,
    /// keys, token, user info) may take, connecting included.
    pub provider_timeout: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            credentials: true,
            email_links: false,
            allowed_email_domains: Vec::new(),
            providers: Vec::new(),
            provider_timeout: Duration::from_secs(5),
        }
    }
}

/// One identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// What every kind of provider has.
    pub client: ClientSettings,
    /// What kind it is.
    pub kind: ProviderKind,
}

/// The kinds of identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect, found by discovery at `issuer`.
    Oidc {
        /// The issuer identifier (`{issuer}/.well-known/openid-configuration`).
        issuer: String,
        /// Follow the provider's sign-out (RP-initiated logout) when signing out.
        end_session: bool,
    },
    /// GitHub (OAuth 2.0), or GitHub Enterprise Server.
    GitHub {
        /// The web base URL (`https://github.com`).
        url: String,
        /// The REST API base URL (`https://api.github.com`).
        api_url: String,
    },
}

/// A provider's client registration and sign-in policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The id in URLs (`[a-z0-9-]+`).
    pub id: String,
    /// The name on its button.
    pub name: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: ClientSecret,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// Whether this provider's verified emails are believed enough to link an existing user
    /// with that email automatically (an organisation's own IdP).
    pub trust_email: bool,
    /// The email domains it may sign in (empty: any), on top of `AUTH_ALLOWED_EMAIL_DOMAINS`.
    pub allowed_domains: Vec<String>,
    /// Whether a sign-in through it may create a user (false: only existing users).
    pub allow_sign_up: bool,
}

/// An OAuth client secret: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps `secret`.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself (for the token request only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}
