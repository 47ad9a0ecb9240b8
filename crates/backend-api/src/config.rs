//! Typed settings from the environment. Fails fast, names the variable, never prints a secret.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use auth_contract::Secret;
use sqlx::postgres::PgConnectOptions;
use web_common::env::{AppEnv, ConfigError, ProcessEnv, Source, parsed_or, required};

/// Everything backend-api needs to start.
#[derive(Clone)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database: PgConnectOptions,
    /// `BACKEND_API_ADDR`, default `0.0.0.0:8080`.
    pub addr: SocketAddr,
    /// `API_SECRET`: verifies gateway tokens.
    pub api_secret: Secret,
    /// `API_SECRET_PREVIOUS`: comma-separated older secrets still accepted during a rotation.
    pub api_secret_previous: Vec<Secret>,
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// `DATABASE_MAX_CONNECTIONS`, default 10.
    pub db_max_connections: u32,
    /// `HTTP_WORKERS`, default: the number of CPUs.
    pub http_workers: std::num::NonZeroUsize,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads `src` (the environment, or a fixed list in tests).
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let url = required(
            src,
            "DATABASE_URL",
            "set it to a Postgres URL, e.g. postgres://postgres@127.0.0.1:5432/app",
        )?;
        let database = PgConnectOptions::from_str(&url)
            .map_err(|_| ConfigError::invalid("DATABASE_URL", "not a valid postgres:// URL"))?;
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
        Ok(Self {
            database,
            addr: parsed_or(
                src,
                "BACKEND_API_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            api_secret,
            api_secret_previous,
            app_env: parsed_or(src, "APP_ENV", AppEnv::Development)?,
            db_max_connections: parsed_or(src, "DATABASE_MAX_CONNECTIONS", 10)?,
            http_workers: web_common::env::http_workers(src)?,
        })
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_host", &self.database.get_host())
            .field("database_name", &self.database.get_database())
            .field("addr", &self.addr)
            .field("api_secret", &self.api_secret)
            .field("api_secret_previous", &self.api_secret_previous)
            .field("app_env", &self.app_env)
            .field("db_max_connections", &self.db_max_connections)
            .field("http_workers", &self.http_workers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://u:pw@db:5432/app"),
            ("API_SECRET", SECRET),
        ])
        .unwrap();
        assert_eq!(s.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.app_env, AppEnv::Development);
        assert!(s.api_secret_previous.is_empty());
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
        let s = Settings::from_source(&[
            ("DATABASE_URL", "postgres://u:hunter2-password@db:5432/app"),
            ("API_SECRET", SECRET),
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
}
