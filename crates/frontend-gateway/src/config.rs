//! The gateway's typed settings: every variable it reads is read here, from a [`Source`] (the
//! process environment after `.env`, or a fixed list in tests), and nowhere else.
//!
//! They come in groups, each handed whole to the part of the gateway it configures: where to
//! listen, the database, the logs (shared with the backend, see [`web_common::settings`]), the
//! sessions ([`SessionSettings`]), sign-in ([`SignInSettings`]), the sign-in methods and
//! identity providers ([`AuthSettings`], read by [`provider_config`]) and the proxy
//! ([`ProxySettings`], its rewrite table built once, here). Every variable is documented in
//! `.env.example`. Secrets (`API_SECRET`, `SESSION_KEY`, the database password) are wrapped so
//! `Debug` never prints them, and errors name the variable, never its value.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use auth_contract::Secret;
use web_common::env::{AppEnv, ConfigError, Recorder, Source, parsed_or, required, secs};
use web_common::settings::{
    DatabaseSettings, LifecycleSettings, LogSettings, ServerSettings, TelemetrySettings,
};

use crate::identity::password::{default_concurrency, default_queue};
use crate::identity::throttle::Limits;
use crate::identity::{AuthSettings, SignInSettings, provider_config};
use crate::mail::MailSettings;
use crate::origin::PublicOrigin;
use crate::proxy::ProxySettings;
use crate::proxy::forwarded::TrustedProxies;
use crate::proxy::rewrite::{RuleConfig, Rules, base_url};
use crate::session::{CACHE_TTL_MAX, SessionKey, SessionSettings};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `GATEWAY_ADDR` (default `0.0.0.0:3000`) and `HTTP_WORKERS`.
    pub server: ServerSettings,
    /// `CLIENT_REQUEST_TIMEOUT_SECS` (default 5): a client must send its whole request head
    /// within this (slow-loris); past it, 408 and the connection is closed.
    pub client_request_timeout: Duration,
    /// `CLIENT_BODY_TIMEOUT_SECS` (default 15): a request the gateway answers itself (not a
    /// proxied one) must have sent its whole body within this of its head; past it, 408 and
    /// the connection is closed.
    pub client_body_timeout: Duration,
    /// `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT_SECS`: the
    /// Postgres holding users and sessions.
    pub database: DatabaseSettings,
    /// `APP_ENV`: production means `Secure` cookies, required secrets and JSON logs.
    pub app_env: AppEnv,
    /// `RUST_LOG`.
    pub log: LogSettings,
    /// `PUBLIC_ORIGIN`: the origin browsers use; every absolute URL is built from it. In
    /// production it must be `https://` or loopback (`http://localhost`, `http://127.0.0.1`,
    /// `http://[::1]`, which browsers treat as secure) unless `ALLOW_INSECURE_ORIGIN=true`.
    pub public_origin: PublicOrigin,
    /// `TRUSTED_PROXIES` (default none): comma-separated IPs/CIDRs whose `X-Forwarded-For`,
    /// `-Proto` and `-Host` are believed.
    pub trusted_proxies: TrustedProxies,
    /// The sessions.
    pub session: SessionSettings,
    /// Sign-in limits and password hashing.
    pub sign_in: SignInSettings,
    /// The sign-in methods: credentials on or off, the identity providers, allowed domains.
    pub auth: AuthSettings,
    /// The upstreams, the rewrite table and the proxy's limits.
    pub proxy: ProxySettings,
    /// `SMTP_URL` (required in production) and `MAIL_FROM`: how the outbox's mail is sent.
    pub mail: MailSettings,
    /// `MIGRATE_ON_START`, `SHUTDOWN_DRAIN_SECS`, `SHUTDOWN_TIMEOUT_SECS` (shared with the
    /// backend, see [`web_common::settings`]).
    pub lifecycle: LifecycleSettings,
    /// `METRICS_ADDR` and the `OTEL_*` variables (shared with the backend).
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// Reads settings from `src`.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let app_env: AppEnv = parsed_or(src, "APP_ENV", AppEnv::Development)?;
        let public_origin = public_origin(src, app_env)?;
        let settings = Self {
            server: ServerSettings::from_source(src, "GATEWAY_ADDR", 3000)?,
            client_request_timeout: secs(src, "CLIENT_REQUEST_TIMEOUT_SECS", 5)?,
            client_body_timeout: secs(src, "CLIENT_BODY_TIMEOUT_SECS", 15)?,
            database: DatabaseSettings::from_source(src)?,
            app_env,
            log: LogSettings::from_source(src, app_env.is_production())?,
            public_origin: public_origin.clone(),
            trusted_proxies: match src.get("TRUSTED_PROXIES") {
                None => TrustedProxies::default(),
                Some(list) => list
                    .parse()
                    .map_err(|reason| ConfigError::invalid("TRUSTED_PROXIES", reason))?,
            },
            session: session(src, app_env)?,
            sign_in: sign_in(src)?,
            auth: provider_config::auth(src, app_env)?,
            proxy: proxy(src)?,
            mail: MailSettings::from_source(src, app_env, &public_origin)?,
            lifecycle: LifecycleSettings::from_source(src)?,
            telemetry: TelemetrySettings::from_source(src)?,
        };
        Ok(settings)
    }

    /// Every variable the gateway reads (for the check that the documentation lists each one).
    pub fn variables() -> BTreeSet<String> {
        let recorder = Recorder::new([
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app"),
            (
                "API_SECRET",
                "an api secret that is long enough to be accepted",
            ),
        ]);
        Self::from_source(&recorder).expect("the required variables are enough to start");
        recorder.names()
    }
}

fn public_origin(src: &impl Source, app_env: AppEnv) -> Result<PublicOrigin, ConfigError> {
    let allow_insecure: bool = parsed_or(src, "ALLOW_INSECURE_ORIGIN", false)?;
    let origin: PublicOrigin = match src.get("PUBLIC_ORIGIN") {
        Some(origin) => origin.parse()?,
        None if app_env.is_production() => {
            return Err(ConfigError::Missing {
                name: "PUBLIC_ORIGIN",
                hint: "set it to the origin browsers use, e.g. https://app.example.com",
            });
        }
        None => PublicOrigin::from_str("http://localhost:3000")?,
    };
    // The cookies are `Secure` in production: browsers would drop them on a plain http origin
    // (but for loopback, which they treat as secure), and nobody could sign in.
    if app_env.is_production() && !origin.is_https() && !origin.is_loopback() && !allow_insecure {
        return Err(ConfigError::invalid(
            "PUBLIC_ORIGIN",
            "must be https:// in production (the cookies are Secure; only loopback origins may be \
             http://); set ALLOW_INSECURE_ORIGIN=true to run on plain http anyway",
        ));
    }
    Ok(origin)
}

fn sign_in(src: &impl Source) -> Result<SignInSettings, ConfigError> {
    let hash_concurrency = parsed_or(src, "PASSWORD_HASH_CONCURRENCY", default_concurrency())?;
    Ok(SignInSettings {
        limits: Limits {
            account_failures: parsed_or(src, "SIGNIN_MAX_FAILURES_PER_ACCOUNT", 5)?,
            account_window: secs(src, "SIGNIN_ACCOUNT_WINDOW_SECS", 900)?,
            ip_attempts: parsed_or(src, "SIGNIN_MAX_ATTEMPTS_PER_IP", 20)?,
            ip_window: secs(src, "SIGNIN_IP_WINDOW_SECS", 60)?,
        },
        hash_concurrency,
        hash_queue: parsed_or(src, "PASSWORD_HASH_QUEUE", default_queue(hash_concurrency))?,
        mail_limits: {
            let window = secs(src, "MAIL_REQUESTS_WINDOW_SECS", 3600)?;
            Limits {
                account_failures: parsed_or(src, "MAIL_REQUESTS_MAX_PER_ADDRESS", 5)?,
                account_window: window,
                ip_attempts: parsed_or(src, "MAIL_REQUESTS_MAX_PER_IP", 20)?,
                ip_window: window,
            }
        },
    })
}

fn session(src: &impl Source, app_env: AppEnv) -> Result<SessionSettings, ConfigError> {
    let key = match src.get("SESSION_KEY") {
        Some(key) => SessionKey::new(key.into_bytes())?,
        None if app_env.is_production() => {
            return Err(ConfigError::Missing {
                name: "SESSION_KEY",
                hint: "production needs a fixed key of at least 64 bytes (make one with `openssl rand -base64 64`)",
            });
        }
        // Said at start-up (`Application::build`), once logging is set up.
        None => SessionKey::generate(),
    };
    let idle_timeout = secs(src, "SESSION_IDLE_TIMEOUT_SECS", 86_400)?;
    let absolute_timeout = secs(src, "SESSION_ABSOLUTE_TIMEOUT_SECS", 604_800)?;
    if idle_timeout > absolute_timeout {
        return Err(ConfigError::invalid(
            "SESSION_IDLE_TIMEOUT_SECS",
            "must not exceed SESSION_ABSOLUTE_TIMEOUT_SECS",
        ));
    }
    let max_ms = CACHE_TTL_MAX.as_millis();
    let cache_ms: u64 = parsed_or(src, "SESSION_CACHE_MS", 500)?;
    if u128::from(cache_ms) > max_ms {
        return Err(ConfigError::invalid(
            "SESSION_CACHE_MS",
            format!("must be 0 to {max_ms} (milliseconds)"),
        ));
    }
    let per_user_max: u32 = parsed_or(src, "SESSIONS_PER_USER_MAX", 50)?;
    if per_user_max == 0 {
        return Err(ConfigError::invalid(
            "SESSIONS_PER_USER_MAX",
            "must be at least 1",
        ));
    }
    Ok(SessionSettings {
        key,
        idle_timeout,
        absolute_timeout,
        cache_ttl: Duration::from_millis(cache_ms),
        per_user_max,
    })
}

fn proxy(src: &impl Source) -> Result<ProxySettings, ConfigError> {
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
    let extra: Vec<RuleConfig> = match src.get("GATEWAY_REWRITES") {
        None => Vec::new(),
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            ConfigError::invalid(
                "GATEWAY_REWRITES",
                format!("not a JSON list of rules ({e})"),
            )
        })?,
    };
    let rules = Rules::standard(&backend_api_url, &extra)
        .map_err(|e| ConfigError::invalid("GATEWAY_REWRITES", e.to_string()))?;
    Ok(ProxySettings {
        api_secret,
        backend_api_url,
        rules,
        connect_timeout: secs(src, "PROXY_CONNECT_TIMEOUT_SECS", 5)?,
        timeout: secs(src, "PROXY_TIMEOUT_SECS", 30)?,
        max_body_bytes: parsed_or(src, "PROXY_MAX_BODY_BYTES", 100 * 1024 * 1024)?,
        stream_idle_timeout: secs(src, "PROXY_STREAM_IDLE_TIMEOUT_SECS", 60)?,
        stream_session_check: secs(src, "PROXY_STREAM_SESSION_CHECK_SECS", 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::rewrite::Decision;
    use crate::session::MIN_SESSION_KEY_LEN;

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
        assert_eq!(s.server.addr, "0.0.0.0:3000".parse().unwrap());
        assert_eq!(s.proxy.backend_api_url, "http://127.0.0.1:8080");
        assert_eq!(s.public_origin.as_str(), "http://localhost:3000");
        assert_eq!(s.session.key.expose().len(), MIN_SESSION_KEY_LEN);
        assert_eq!(s.session.cache_ttl, CACHE_TTL_MAX);
        assert_eq!(s.sign_in.hash_concurrency, default_concurrency());
        assert_eq!(s.sign_in.hash_queue, 4 * default_concurrency().get());
        assert_eq!(s.session.per_user_max, 50);
        assert_eq!(s.client_body_timeout, Duration::from_secs(15));
        assert_eq!(s.database.acquire_timeout, Duration::from_secs(5));
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
        let err = Settings::from_source(&vars).unwrap_err();
        assert!(err.to_string().contains("SMTP_URL"), "{err}");
        let vars = with(vars, "SMTP_URL", "smtp://mail.a.example:587?tls=required");
        let s = Settings::from_source(&vars).unwrap();
        assert_eq!(s.public_origin.as_str(), "https://a.example");
        assert!(s.public_origin.is_https());
        assert!(s.log.json, "production logs JSON lines");
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
        assert_eq!(s.proxy.backend_api_url, "https://backend:8443/v1");
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
    fn extra_rewrites_are_read_from_json_into_the_one_table() {
        let rules =
            r#"[{"source": "/api/files/:path*", "destination": "http://files:9000/:path*"}]"#;
        let s = Settings::from_source(&with(base(), "GATEWAY_REWRITES", rules)).unwrap();
        assert_eq!(
            s.proxy.rules.decide("/api/files/a", ""),
            Decision::Upstream {
                rule: 1,
                url: "http://files:9000/a".into(),
                inject_token: false,
                pass_cookies: false,
            }
        );
        assert_eq!(
            s.proxy.rules.decide("/api/me", ""),
            Decision::Upstream {
                rule: 2,
                url: "http://127.0.0.1:8080/me".into(),
                inject_token: true,
                pass_cookies: false,
            }
        );
        let bad = r#"[{"source": "/api/auth/:path*", "destination": "http://evil/:path*"}]"#;
        assert!(Settings::from_source(&with(base(), "GATEWAY_REWRITES", bad)).is_err());
    }

    #[test]
    fn pass_cookies_is_read_off_by_default_and_unknown_rule_fields_are_refused() {
        let rules = r#"[{"source": "/api/files/:path*", "destination": "http://files/:path*",
                         "passCookies": true},
                        {"source": "/api/hooks/:path*", "destination": "http://hooks/:path*",
                         "pass_cookies": false}]"#;
        let s = Settings::from_source(&with(base(), "GATEWAY_REWRITES", rules)).unwrap();
        let passes = |path| match s.proxy.rules.decide(path, "") {
            Decision::Upstream { pass_cookies, .. } => pass_cookies,
            other => panic!("{path}: {other}"),
        };
        assert!(passes("/api/files/a"));
        assert!(!passes("/api/hooks/a"));
        assert!(
            !passes("/api/me"),
            "the backend's rule never passes cookies"
        );
        let typo =
            r#"[{"source": "/api/f/:p*", "destination": "http://f/:p*", "passCookie": true}]"#;
        let err = Settings::from_source(&with(base(), "GATEWAY_REWRITES", typo)).unwrap_err();
        assert!(err.to_string().contains("passCookie"), "{err}");
    }

    #[test]
    fn the_session_cache_and_the_hashing_concurrency_refuse_bad_values_by_name() {
        let s = Settings::from_source(&with(
            with(base(), "SESSION_CACHE_MS", "0"),
            "PASSWORD_HASH_CONCURRENCY",
            "3",
        ))
        .unwrap();
        assert_eq!(s.session.cache_ttl, Duration::ZERO);
        assert_eq!(s.sign_in.hash_concurrency.get(), 3);
        assert_eq!(s.sign_in.hash_queue, 12, "four times the concurrency");
        for (name, value) in [
            ("PASSWORD_HASH_QUEUE", "-1"),
            ("PASSWORD_HASH_QUEUE", "some"),
            ("SESSIONS_PER_USER_MAX", "0"),
            ("SESSIONS_PER_USER_MAX", "lots"),
            ("CLIENT_BODY_TIMEOUT_SECS", "0"),
            ("ALLOW_INSECURE_ORIGIN", "yes please"),
            ("SESSION_CACHE_MS", "501"),
            ("SESSION_CACHE_MS", "soon"),
            ("PASSWORD_HASH_CONCURRENCY", "0"),
            ("PASSWORD_HASH_CONCURRENCY", "many"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
            ("RUST_LOG", "app=loud"),
        ] {
            let err = Settings::from_source(&with(base(), name, value)).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_variable_list_is_read_off_the_code() {
        let names = Settings::variables();
        for name in [
            "GATEWAY_ADDR",
            "HTTP_WORKERS",
            "DATABASE_URL",
            "DATABASE_ACQUIRE_TIMEOUT_SECS",
            "SESSION_CACHE_MS",
            "PASSWORD_HASH_CONCURRENCY",
            "RUST_LOG",
            "GATEWAY_REWRITES",
            "MIGRATE_ON_START",
            "SHUTDOWN_DRAIN_SECS",
            "SHUTDOWN_TIMEOUT_SECS",
        ] {
            assert!(names.contains(name), "{name} is missing from {names:?}");
        }
        assert!(!names.contains("BACKEND_API_ADDR"));
    }
}
