//! Typed settings from the environment (and `.env` in development).
//!
//! Every variable is documented in `.env.example`. Secrets (`API_SECRET`, `SESSION_KEY`) are
//! wrapped so `Debug` never prints them, and errors name the variable, never its value.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::Uri;
use auth_contract::Secret;
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use web_common::env::{AppEnv, ConfigError, ProcessEnv, Source, parsed_or, required};

use crate::forwarded::TrustedProxies;
use crate::rewrite::{Rule, RuleConfig, RuleError, Rules};
use crate::throttle::Limits;

/// The shortest `SESSION_KEY` accepted, in bytes (what the cookie key derivation needs).
pub const MIN_SESSION_KEY_LEN: usize = 64;

/// Everything the gateway needs to start. `Debug` shows no secret (not even the database
/// password, which `PgConnectOptions`'s own `Debug` would print).
#[derive(Clone)]
pub struct Settings {
    /// `GATEWAY_ADDR`: where to listen (default `0.0.0.0:3000`).
    pub addr: SocketAddr,
    /// `DATABASE_URL`: the Postgres holding users and sessions.
    pub database: PgConnectOptions,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub db_max_connections: u32,
    /// `HTTP_WORKERS` (default: the number of CPUs).
    pub http_workers: std::num::NonZeroUsize,
    /// `API_SECRET`: signs the tokens handed to the backend.
    pub api_secret: Secret,
    /// `BACKEND_API_URL` (default `http://127.0.0.1:8080`), without a trailing slash.
    pub backend_api_url: String,
    /// `SESSION_KEY`: encrypts the session cookie and keys the CSRF hash.
    pub session_key: SessionKey,
    /// `PUBLIC_ORIGIN`: the origin browsers use; every absolute URL is built from it.
    pub public_origin: PublicOrigin,
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// `SESSION_IDLE_TIMEOUT_SECS` (default 86 400, one day): a session unused this long ends.
    pub session_idle_timeout: Duration,
    /// `SESSION_ABSOLUTE_TIMEOUT_SECS` (default 604 800, seven days): a session ends this long
    /// after sign-in, however busy.
    pub session_absolute_timeout: Duration,
    /// `PROXY_CONNECT_TIMEOUT_SECS` (default 5): connecting to an upstream; past it, 502.
    pub proxy_connect_timeout: Duration,
    /// `PROXY_TIMEOUT_SECS` (default 30): sending a request and receiving the response head;
    /// past it, 504.
    pub proxy_timeout: Duration,
    /// `GATEWAY_REWRITES`: extra rules (JSON), tried after `/api/auth/*` and before the default
    /// `/api/:path*` rule.
    pub extra_rewrites: Vec<RuleConfig>,
    /// `TRUSTED_PROXIES` (default none): comma-separated IPs/CIDRs whose `X-Forwarded-For`,
    /// `-Proto` and `-Host` are believed.
    pub trusted_proxies: TrustedProxies,
    /// `SIGNIN_MAX_FAILURES_PER_ACCOUNT` (5) per `SIGNIN_ACCOUNT_WINDOW_SECS` (900),
    /// `SIGNIN_MAX_ATTEMPTS_PER_IP` (20) per `SIGNIN_IP_WINDOW_SECS` (60); 0 switches a limit off.
    pub signin_limits: Limits,
    /// `PROXY_MAX_BODY_BYTES` (default 104 857 600, 100 MiB): the largest request body
    /// forwarded; past it, 413.
    pub proxy_max_body_bytes: u64,
    /// `PROXY_STREAM_IDLE_TIMEOUT_SECS` (default 60): a response body (an event stream, a
    /// download) that sends nothing for this long is cut. It replaces `PROXY_TIMEOUT_SECS`
    /// once the response head has arrived.
    pub proxy_stream_idle_timeout: Duration,
    /// `PROXY_STREAM_SESSION_CHECK_SECS` (default 5): while a response streams for a signed-in
    /// user, their session row is re-checked this often, and the stream cut once it is gone.
    pub proxy_stream_session_check: Duration,
    /// `CLIENT_REQUEST_TIMEOUT_SECS` (default 5): a client must send its whole request head
    /// within this (slow-loris); past it, 408 and the connection is closed.
    pub client_request_timeout: Duration,
}

impl Settings {
    /// Reads the process environment, after loading `.env` when it exists.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing `.env` is normal (production, CI); its variables never override real ones.
        let _ = dotenvy::dotenv();
        Self::from_source(&ProcessEnv)
    }

    /// Reads settings from `src`.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let app_env: AppEnv = parsed_or(src, "APP_ENV", AppEnv::Development)?;
        let addr = parsed_or(src, "GATEWAY_ADDR", SocketAddr::from(([0, 0, 0, 0], 3000)))?;
        let database = required(
            src,
            "DATABASE_URL",
            "set it to a Postgres URL, e.g. postgres://postgres@127.0.0.1:5432/app",
        )?
        .parse::<PgConnectOptions>()
        .map_err(|e| ConfigError::invalid("DATABASE_URL", format!("not a Postgres URL ({e})")))?;
        let api_secret = Secret::new(required(
            src,
            "API_SECRET",
            "set it to the secret backend-api uses (make one with `openssl rand -base64 48`)",
        )?)
        .map_err(|e| ConfigError::invalid("API_SECRET", e.to_string()))?;
        let backend_api_url = match src.get("BACKEND_API_URL") {
            None => "http://127.0.0.1:8080".to_owned(),
            Some(url) => {
                base_url(&url).map_err(|reason| ConfigError::invalid("BACKEND_API_URL", reason))?
            }
        };
        let session_key = match src.get("SESSION_KEY") {
            Some(key) => SessionKey::new(key.into_bytes())?,
            None if app_env.is_production() => {
                return Err(ConfigError::Missing {
                    name: "SESSION_KEY",
                    hint: "production needs a fixed key of at least 64 bytes (make one with `openssl rand -base64 64`)",
                });
            }
            None => {
                tracing::warn!(
                    "SESSION_KEY is not set: using a random key, so sessions end when the gateway restarts"
                );
                SessionKey::generate()
            }
        };
        let public_origin = match src.get("PUBLIC_ORIGIN") {
            Some(origin) => origin.parse()?,
            None if app_env.is_production() => {
                return Err(ConfigError::Missing {
                    name: "PUBLIC_ORIGIN",
                    hint: "set it to the origin browsers use, e.g. https://app.example.com",
                });
            }
            None => PublicOrigin::from_str("http://localhost:3000")?,
        };
        let extra_rewrites = match src.get("GATEWAY_REWRITES") {
            None => Vec::new(),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                ConfigError::invalid(
                    "GATEWAY_REWRITES",
                    format!("not a JSON list of rules ({e})"),
                )
            })?,
        };
        let settings = Self {
            addr,
            database,
            db_max_connections: parsed_or(src, "DATABASE_MAX_CONNECTIONS", 10)?,
            http_workers: web_common::env::http_workers(src)?,
            api_secret,
            backend_api_url,
            session_key,
            public_origin,
            app_env,
            session_idle_timeout: secs(src, "SESSION_IDLE_TIMEOUT_SECS", 86_400)?,
            session_absolute_timeout: secs(src, "SESSION_ABSOLUTE_TIMEOUT_SECS", 604_800)?,
            proxy_connect_timeout: secs(src, "PROXY_CONNECT_TIMEOUT_SECS", 5)?,
            proxy_timeout: secs(src, "PROXY_TIMEOUT_SECS", 30)?,
            extra_rewrites,
            trusted_proxies: match src.get("TRUSTED_PROXIES") {
                None => TrustedProxies::default(),
                Some(list) => list
                    .parse()
                    .map_err(|reason| ConfigError::invalid("TRUSTED_PROXIES", reason))?,
            },
            signin_limits: Limits {
                account_failures: parsed_or(src, "SIGNIN_MAX_FAILURES_PER_ACCOUNT", 5)?,
                account_window: secs(src, "SIGNIN_ACCOUNT_WINDOW_SECS", 900)?,
                ip_attempts: parsed_or(src, "SIGNIN_MAX_ATTEMPTS_PER_IP", 20)?,
                ip_window: secs(src, "SIGNIN_IP_WINDOW_SECS", 60)?,
            },
            proxy_max_body_bytes: parsed_or(src, "PROXY_MAX_BODY_BYTES", 100 * 1024 * 1024)?,
            proxy_stream_idle_timeout: secs(src, "PROXY_STREAM_IDLE_TIMEOUT_SECS", 60)?,
            proxy_stream_session_check: secs(src, "PROXY_STREAM_SESSION_CHECK_SECS", 5)?,
            client_request_timeout: secs(src, "CLIENT_REQUEST_TIMEOUT_SECS", 5)?,
        };
        if settings.session_idle_timeout > settings.session_absolute_timeout {
            return Err(ConfigError::invalid(
                "SESSION_IDLE_TIMEOUT_SECS",
                "must not exceed SESSION_ABSOLUTE_TIMEOUT_SECS",
            ));
        }
        settings
            .rules()
            .map_err(|e| ConfigError::invalid("GATEWAY_REWRITES", e.to_string()))?;
        Ok(settings)
    }

    /// The rewrite table: `/api/auth/:path*` (kept here), the configured rules, then
    /// `/api/:path*` to the backend with a token.
    pub fn rules(&self) -> Result<Rules, RuleError> {
        let mut rules = vec![Rule::gateway("/api/auth/:path*")?];
        for config in &self.extra_rewrites {
            rules.push(Rule::try_from(config)?);
        }
        rules.push(Rule::upstream(
            "/api/:path*",
            &format!("{}/:path*", self.backend_api_url),
            true,
        )?);
        Ok(Rules::new(rules))
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field(
                "database",
                &format_args!(
                    "{}:{}/{}",
                    self.database.get_host(),
                    self.database.get_port(),
                    self.database.get_database().unwrap_or_default()
                ),
            )
            .field("db_max_connections", &self.db_max_connections)
            .field("http_workers", &self.http_workers)
            .field("api_secret", &self.api_secret)
            .field("backend_api_url", &self.backend_api_url)
            .field("session_key", &self.session_key)
            .field("public_origin", &self.public_origin)
            .field("app_env", &self.app_env)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("session_absolute_timeout", &self.session_absolute_timeout)
            .field("proxy_connect_timeout", &self.proxy_connect_timeout)
            .field("proxy_timeout", &self.proxy_timeout)
            .field("extra_rewrites", &self.extra_rewrites)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("signin_limits", &self.signin_limits)
            .field("proxy_max_body_bytes", &self.proxy_max_body_bytes)
            .field("proxy_stream_idle_timeout", &self.proxy_stream_idle_timeout)
            .field(
                "proxy_stream_session_check",
                &self.proxy_stream_session_check,
            )
            .field("client_request_timeout", &self.client_request_timeout)
            .finish()
    }
}

fn secs(src: &impl Source, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let secs: u64 = parsed_or(src, name, default)?;
    if secs == 0 {
        return Err(ConfigError::invalid(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

/// Checks an upstream base URL (`http(s)://host[:port][/prefix]`, no query) and drops any
/// trailing slash.
pub fn base_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.trim().parse().map_err(|_| "not a URL".to_owned())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://".to_owned());
    }
    if uri
        .authority()
        .is_none_or(|a| a.host().is_empty() || a.as_str().contains('@'))
    {
        return Err("must name a host (and no user info)".to_owned());
    }
    if uri.query().is_some() {
        return Err("must not have a query string".to_owned());
    }
    Ok(url.trim().trim_end_matches('/').to_owned())
}

/// `SESSION_KEY`: at least [`MIN_SESSION_KEY_LEN`] bytes. `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

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
        Ok(Self(bytes))
    }

    /// A random key (development only).
    pub fn generate() -> Self {
        let mut bytes = vec![0; MIN_SESSION_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// `PUBLIC_ORIGIN`: `scheme://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(String);

impl PublicOrigin {
    /// The origin, e.g. `https://app.example.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `true` for `https://`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// An absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl FromStr for PublicOrigin {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConfigError::invalid("PUBLIC_ORIGIN", reason);
        let base = base_url(s).map_err(|r| invalid(&r))?;
        let uri: Uri = base.parse().map_err(|_| invalid("not a URL"))?;
        if !matches!(uri.path(), "" | "/") {
            return Err(invalid(
                "must be an origin (scheme, host and port) without a path",
            ));
        }
        Ok(Self(base.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(String, String)> {
        [
            (
                "DATABASE_URL",
                "postgres://postgres:db-password@127.0.0.1:5432/app",
            ),
            (
                "API_SECRET",
                "an api secret that is long enough to be accepted",
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn with(mut vars: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
        vars.insert(0, (name.to_owned(), value.to_owned()));
        vars
    }

    #[test]
    fn development_defaults_are_used_when_only_the_required_variables_are_set() {
        let s = Settings::from_source(&base()).unwrap();
        assert_eq!(s.addr, "0.0.0.0:3000".parse().unwrap());
        assert_eq!(s.backend_api_url, "http://127.0.0.1:8080");
        assert_eq!(s.public_origin.as_str(), "http://localhost:3000");
        assert_eq!(s.session_key.expose().len(), MIN_SESSION_KEY_LEN);
        assert_eq!(s.app_env, AppEnv::Development);
    }

    #[test]
    fn production_refuses_to_start_without_a_session_key() {
        let vars = with(
            with(base(), "APP_ENV", "production"),
            "PUBLIC_ORIGIN",
            "https://a.example",
        );
        let err = Settings::from_source(&vars).unwrap_err();
        assert!(err.to_string().contains("SESSION_KEY"), "{err}");
    }

    #[test]
    fn production_starts_with_a_session_key_and_origin() {
        let vars = with(
            with(
                with(base(), "APP_ENV", "production"),
                "PUBLIC_ORIGIN",
                "https://a.example/",
            ),
            "SESSION_KEY",
            KEY,
        );
        let s = Settings::from_source(&vars).unwrap();
        assert_eq!(s.public_origin.as_str(), "https://a.example");
        assert!(s.public_origin.is_https());
    }

    #[test]
    fn a_short_session_key_is_refused_without_echoing_it() {
        let err =
            Settings::from_source(&with(base(), "SESSION_KEY", "short-secret-value")).unwrap_err();
        assert!(err.to_string().contains("SESSION_KEY"));
        assert!(!err.to_string().contains("short-secret-value"));
    }

    #[test]
    fn backend_url_must_be_http_or_https() {
        for bad in [
            "ftp://backend",
            "backend:8080",
            "http://",
            "http://u:p@backend",
            "http://b/?q=1",
        ] {
            let err = Settings::from_source(&with(base(), "BACKEND_API_URL", bad));
            assert!(err.is_err(), "{bad} was accepted");
        }
        let s = Settings::from_source(&with(base(), "BACKEND_API_URL", "https://backend:8443/v1/"))
            .unwrap();
        assert_eq!(s.backend_api_url, "https://backend:8443/v1");
    }

    #[test]
    fn public_origin_must_not_have_a_path() {
        assert!(
            Settings::from_source(&with(base(), "PUBLIC_ORIGIN", "http://a.example/app")).is_err()
        );
    }

    #[test]
    fn a_short_api_secret_is_refused() {
        let vars = with(base(), "API_SECRET", "short");
        assert!(
            Settings::from_source(&vars)
                .unwrap_err()
                .to_string()
                .contains("API_SECRET")
        );
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let s = Settings::from_source(&with(base(), "SESSION_KEY", KEY)).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains(KEY));
        assert!(!debug.contains("an api secret that is long enough"));
        assert!(!debug.contains("db-password"));
    }

    #[test]
    fn extra_rewrites_are_read_from_json() {
        let rules =
            r#"[{"source": "/api/files/:path*", "destination": "http://files:9000/:path*"}]"#;
        let s = Settings::from_source(&with(base(), "GATEWAY_REWRITES", rules)).unwrap();
        assert_eq!(s.extra_rewrites.len(), 1);
        assert!(!s.extra_rewrites[0].inject_token);
        let bad = r#"[{"source": "/api/auth/:path*", "destination": "http://evil/:path*"}]"#;
        assert!(Settings::from_source(&with(base(), "GATEWAY_REWRITES", bad)).is_err());
    }
}
