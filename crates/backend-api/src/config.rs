//! Typed settings from the environment: every variable backend-api reads is read here, and
//! nowhere else. Fails fast, names the variable, never prints a secret.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use auth_contract::Secret;
use web_common::env::{AppEnv, ConfigError, Recorder, Source, parsed_or, required, secs};
use web_common::settings::{
    DatabaseSettings, LifecycleSettings, LogSettings, ServerSettings, TelemetrySettings,
};

/// The longest `INVITATION_TTL_SECS`: a year.
pub const MAX_INVITATION_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Everything backend-api needs to start.
#[derive(Clone)]
pub struct Settings {
    /// `BACKEND_API_ADDR` (default `0.0.0.0:8080`) and `HTTP_WORKERS`.
    pub server: ServerSettings,
    /// `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT_SECS`.
    pub database: DatabaseSettings,
    /// `API_SECRET`: verifies gateway tokens.
    pub api_secret: Secret,
    /// `API_SECRET_PREVIOUS`: comma-separated older secrets still accepted during a rotation.
    pub api_secret_previous: Vec<Secret>,
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// `RUST_LOG`; JSON lines in production.
    pub log: LogSettings,
    /// `INVITATION_TTL_SECS` (default 604800, 7 days; at most a year): how long a workspace
    /// invitation can be accepted.
    pub invitation_ttl: Duration,
    /// `MIGRATE_ON_START`, `SHUTDOWN_DRAIN_SECS`, `SHUTDOWN_TIMEOUT_SECS`.
    pub lifecycle: LifecycleSettings,
    /// `METRICS_ADDR` and the `OTEL_*` variables.
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// Reads `src` (the process environment, or a fixed list in tests).
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let database = DatabaseSettings::from_source(src)?;
        let api_secret = required(
            src,
            "API_SECRET",
            "set it to the gateway's shared secret, at least 32 bytes (openssl rand -base64 48)",
        )?;
        let api_secret = Secret::new(api_secret)
            .map_err(|e| ConfigError::invalid("API_SECRET", e.to_string()))?;
        let api_secret_previous = src
            .get("API_SECRET_PREVIOUS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Secret::new(s)
                    .map_err(|e| ConfigError::invalid("API_SECRET_PREVIOUS", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let server = ServerSettings::from_source(src, "BACKEND_API_ADDR", 8080)?;
        let app_env = parsed_or(src, "APP_ENV", AppEnv::Development)?;
        let log = LogSettings::from_source(src, app_env.is_production())?;
        let invitation_ttl = secs(src, "INVITATION_TTL_SECS", 604_800)?;
        if invitation_ttl > MAX_INVITATION_TTL {
            return Err(ConfigError::invalid(
                "INVITATION_TTL_SECS",
                "must be at most 31536000 (a year)",
            ));
        }
        let lifecycle = LifecycleSettings::from_source(src)?;
        let telemetry = TelemetrySettings::from_source(src)?;
        Ok(Self {
            server,
            database,
            api_secret,
            api_secret_previous,
            app_env,
            log,
            invitation_ttl,
            lifecycle,
            telemetry,
        })
    }

    /// The names of every variable [`Settings::from_source`] reads, sorted.
    pub fn variables() -> BTreeSet<String> {
        // The required variables, so that reading goes on past them to every optional one.
        let src = Recorder::new([
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app"),
            ("API_SECRET", "a-secret-of-at-least-32-bytes-0123456789"),
        ]);
        Self::from_source(&src).expect("the required variables alone make valid settings");
        src.names()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `DatabaseSettings` hides the password and `Secret` its bytes.
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("database", &self.database)
            .field("api_secret", &self.api_secret)
            .field("api_secret_previous", &self.api_secret_previous)
            .field("app_env", &self.app_env)
            .field("log", &self.log)
            .field("invitation_ttl", &self.invitation_ttl)
            .field("lifecycle", &self.lifecycle)
            .field("telemetry", &self.telemetry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://u:pw@db:5432/app"),
            ("API_SECRET", SECRET),
        ])
        .unwrap();
        assert_eq!(s.server.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.app_env, AppEnv::Development);
        assert!(s.api_secret_previous.is_empty());
        let cpus = std::thread::available_parallelism().unwrap();
        assert_eq!(s.server.workers, cpus);
        assert_eq!(s.database.max_connections, 10);
        assert_eq!(s.database.acquire_timeout, Duration::from_secs(5));
        assert_eq!(s.log, LogSettings::default());
        assert_eq!(s.invitation_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(s.lifecycle, LifecycleSettings::default());
    }

    #[test]
    fn missing_database_url_names_the_variable() {
        let err = Settings::from_source(&[("API_SECRET", SECRET)]).unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL is not set"),
            "{err}"
        );
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let err = Settings::from_source(&[
            ("DATABASE_URL", "postgres://db/app"),
            ("API_SECRET", "tooshort-secret"),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("API_SECRET") && msg.contains("32"), "{msg}");
        assert!(!msg.contains("tooshort-secret"));
    }

    #[test]
    fn previous_secrets_are_split_on_commas() {
        let previous = format!("{SECRET}x, {SECRET}y");
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://db/app"),
            ("API_SECRET", SECRET),
            ("API_SECRET_PREVIOUS", previous.as_str()),
        ])
        .unwrap();
        assert_eq!(s.api_secret_previous.len(), 2);
    }

    #[test]
    fn debug_output_never_contains_secrets_or_the_database_password() {
        let previous = format!("{SECRET}-previous");
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://u:hunter2-password@db:5432/app"),
            ("API_SECRET", SECRET),
            ("API_SECRET_PREVIOUS", previous.as_str()),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn bad_listen_address_and_app_env_are_refused() {
        let base = [
            ("DATABASE_URL", "postgres://db/app"),
            ("API_SECRET", SECRET),
        ];
        let bad_addr = [base[0], base[1], ("BACKEND_API_ADDR", "not-an-address")];
        assert!(
            Settings::from_source(&bad_addr)
                .unwrap_err()
                .to_string()
                .contains("BACKEND_API_ADDR")
        );
        let bad_env = [base[0], base[1], ("APP_ENV", "staging-ish")];
        assert!(
            Settings::from_source(&bad_env)
                .unwrap_err()
                .to_string()
                .contains("APP_ENV")
        );
    }

    #[test]
    fn workers_pool_size_acquire_timeout_and_log_filter_are_read_into_their_groups() {
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://db/app"),
            ("API_SECRET", SECRET),
            ("BACKEND_API_ADDR", "127.0.0.1:9000"),
            ("HTTP_WORKERS", "3"),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "7"),
            ("RUST_LOG", "debug,sqlx=warn"),
            ("INVITATION_TTL_SECS", "3600"),
        ])
        .unwrap();
        assert_eq!(s.invitation_ttl, Duration::from_secs(3600));
        assert_eq!(s.server.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.server.workers.get(), 3);
        assert_eq!(s.database.max_connections, 4);
        assert_eq!(s.database.acquire_timeout, Duration::from_secs(7));
        assert_eq!(s.log.filter, "debug,sqlx=warn");
        assert!(!s.log.json);
    }

    #[test]
    fn production_logs_json_lines() {
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://db/app"),
            ("API_SECRET", SECRET),
            ("APP_ENV", "production"),
        ])
        .unwrap();
        assert!(s.app_env.is_production() && s.log.json);
    }

    #[test]
    fn bad_workers_pool_size_acquire_timeout_or_log_filter_name_their_variable() {
        for (name, value) in [
            ("HTTP_WORKERS", "0"),
            ("HTTP_WORKERS", "many"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "soon"),
            ("RUST_LOG", "app=loud"),
            ("INVITATION_TTL_SECS", "0"),
            ("INVITATION_TTL_SECS", "a week"),
            ("INVITATION_TTL_SECS", "31536001"),
        ] {
            let err = Settings::from_source(&[
                ("DATABASE_URL", "postgres://db/app"),
                ("API_SECRET", SECRET),
                (name, value),
            ])
            .unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn variables_lists_every_variable_read() {
        let names: Vec<String> = Settings::variables().into_iter().collect();
        assert_eq!(
            names,
            [
                "API_SECRET",
                "API_SECRET_PREVIOUS",
                "APP_ENV",
                "BACKEND_API_ADDR",
                "DATABASE_ACQUIRE_TIMEOUT_SECS",
                "DATABASE_MAX_CONNECTIONS",
                "DATABASE_URL",
                "HTTP_WORKERS",
                "INVITATION_TTL_SECS",
                "METRICS_ADDR",
                "MIGRATE_ON_START",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_SERVICE_NAME",
                "OTEL_TRACES_SAMPLER",
                "OTEL_TRACES_SAMPLER_ARG",
                "RUST_LOG",
                "SHUTDOWN_DRAIN_SECS",
                "SHUTDOWN_TIMEOUT_SECS",
            ]
        );
    }
}
