//! The settings groups both services share: where to listen, the database, the logs, how the
//! service starts and stops ([`LifecycleSettings`]). Each
//! service's `Settings` holds these next to its own groups and reads them through a
//! [`Source`].

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing_subscriber::EnvFilter;

use crate::db::{Lane, LaneSettings};
use crate::env::{ConfigError, Source, parsed_or, required, secs};
use crate::trace::{SamplerSetting, TraceSettings};

/// Where a service listens and how many request workers it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The listen address (`GATEWAY_ADDR` or `BACKEND_API_ADDR`).
    pub addr: SocketAddr,
    /// `HTTP_WORKERS` (default: the number of CPUs this process may run on): actix worker
    /// threads, each a single-threaded runtime.
    pub workers: NonZeroUsize,
}

impl ServerSettings {
    /// Reads `addr_var` (default `0.0.0.0:<default_port>`) and `HTTP_WORKERS`.
    pub fn from_source(
        src: &impl Source,
        addr_var: &'static str,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            addr: parsed_or(
                src,
                addr_var,
                SocketAddr::from(([0, 0, 0, 0], default_port)),
            )?,
            workers: parsed_or(src, "HTTP_WORKERS", cpus)?,
        })
    }
}

/// The Postgres a service uses. `Debug` shows the host, port and database, never the password
/// (which `PgConnectOptions`'s own `Debug` would print).
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`.
    pub options: PgConnectOptions,
    /// `DATABASE_MAX_CONNECTIONS` (default 10): connections per pool.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS` (default 5): how long a request waits for a connection
    /// before it is answered 503.
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    /// Reads `DATABASE_URL` (required), `DATABASE_MAX_CONNECTIONS` and
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let url = required(
            src,
            "DATABASE_URL",
            "set it to a Postgres URL, e.g. postgres://postgres@127.0.0.1:5432/app",
        )?;
        let url = url.trim();
        // `PgConnectOptions` parses any scheme (a `mysql://` URL would be tried as Postgres).
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        let postgres = ["postgres", "postgresql"];
        if !postgres.iter().any(|p| scheme.eq_ignore_ascii_case(p)) {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "not a Postgres URL (expected postgres://...)",
            ));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            ConfigError::invalid("DATABASE_URL", format!("not a Postgres URL ({e})"))
        })?;
        let max_connections: u32 = parsed_or(src, "DATABASE_MAX_CONNECTIONS", 10)?;
        if max_connections == 0 {
            return Err(ConfigError::invalid(
                "DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            options,
            max_connections,
            acquire_timeout: secs(src, "DATABASE_ACQUIRE_TIMEOUT_SECS", 5)?,
        })
    }

    /// A pool of at most `max_connections`, which connects on first use.
    pub fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(self.options.clone())
    }

    /// A [`Lane`] of at most `max_connections`, with the same acquire timeout.
    pub fn lane(&self) -> Lane {
        Lane::new(
            self.options.clone(),
            LaneSettings {
                acquire_timeout: self.acquire_timeout,
                ..LaneSettings::new(self.max_connections)
            },
        )
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field(
                "server",
                &format_args!(
                    "{}:{}/{}",
                    self.options.get_host(),
                    self.options.get_port(),
                    self.options.get_database().unwrap_or_default()
                ),
            )
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// How a service starts and stops: whether it migrates the database, and its graceful
/// shutdown (see [`crate::shutdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// `MIGRATE_ON_START` (default `true`): apply the migrations at start-up; `false` leaves
    /// them to the `migrate` command (a Kubernetes Job or init container) and refuses to start
    /// on a database that lacks any of them.
    pub migrate_on_start: bool,
    /// `SHUTDOWN_DRAIN_SECS` (default 5, 0 allowed): after SIGTERM, how long `/readyz` answers
    /// 503 while everything else is still served, so load balancers stop sending requests.
    pub drain: Duration,
    /// `SHUTDOWN_TIMEOUT_SECS` (default 25, at least 1): after the drain, how long requests in
    /// flight have to finish before they are dropped.
    pub timeout: Duration,
}

impl LifecycleSettings {
    /// Reads `MIGRATE_ON_START`, `SHUTDOWN_DRAIN_SECS` and `SHUTDOWN_TIMEOUT_SECS`.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let drain: u64 = parsed_or(src, "SHUTDOWN_DRAIN_SECS", 5)?;
        Ok(Self {
            migrate_on_start: parsed_or(src, "MIGRATE_ON_START", true)?,
            drain: Duration::from_secs(drain),
            timeout: secs(src, "SHUTDOWN_TIMEOUT_SECS", 25)?,
        })
    }
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            migrate_on_start: true,
            drain: Duration::from_secs(5),
            timeout: Duration::from_secs(25),
        }
    }
}

/// What a service tells its operators besides logs: metrics (`METRICS_ADDR`) and traces (the
/// standard `OTEL_*` variables).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySettings {
    /// `METRICS_ADDR`: where `GET /metrics` listens (a listener of its own); `None`: off.
    pub metrics_addr: Option<SocketAddr>,
    /// Traces: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub trace: TraceSettings,
}

impl TelemetrySettings {
    /// Reads `METRICS_ADDR`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`
    /// and `OTEL_TRACES_SAMPLER_ARG`.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let metrics_addr = match src.get("METRICS_ADDR") {
            None => None,
            Some(v) => Some(v.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid("METRICS_ADDR", "not a socket address (e.g. 0.0.0.0:9464)")
            })?),
        };
        let endpoint = match src.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => None,
            Some(v) => {
                let v = v.trim().trim_end_matches('/').to_owned();
                let rest = v
                    .strip_prefix("http://")
                    .or_else(|| v.strip_prefix("https://"));
                if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
                    return Err(ConfigError::invalid(
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        "not an http(s) URL (e.g. http://otel-collector:4318)",
                    ));
                }
                Some(v)
            }
        };
        let headers = match src.get("OTEL_EXPORTER_OTLP_HEADERS") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .filter(|pair| !pair.trim().is_empty())
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                "OTEL_EXPORTER_OTLP_HEADERS",
                                "expected key=value pairs separated by commas",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let timeout_ms: u64 = parsed_or(src, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "must be at least 1 (milliseconds)",
            ));
        }
        let sampler_name = src.get("OTEL_TRACES_SAMPLER");
        let sampler_arg = src.get("OTEL_TRACES_SAMPLER_ARG");
        let sampler = SamplerSetting::parse(sampler_name.as_deref(), sampler_arg.as_deref())
            .map_err(|e| {
                let name = if e.starts_with("the ratio") {
                    "OTEL_TRACES_SAMPLER_ARG"
                } else {
                    "OTEL_TRACES_SAMPLER"
                };
                ConfigError::invalid(name, e)
            })?;
        Ok(Self {
            metrics_addr,
            trace: TraceSettings {
                endpoint,
                headers,
                timeout: Duration::from_millis(timeout_ms),
                service_name: src.get("OTEL_SERVICE_NAME").map(|n| n.trim().to_owned()),
                sampler,
            },
        })
    }
}

/// What a service logs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// JSON lines (production) instead of compact text.
    pub json: bool,
    /// `RUST_LOG` (tracing's `EnvFilter` syntax), default [`LogSettings::DEFAULT_FILTER`].
    pub filter: String,
}

impl LogSettings {
    /// The filter when `RUST_LOG` is unset.
    pub const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_server=warn";

    /// Reads `RUST_LOG`; `json` comes from `APP_ENV`.
    pub fn from_source(src: &impl Source, json: bool) -> Result<Self, ConfigError> {
        let filter = src
            .get("RUST_LOG")
            .map_or_else(|| Self::DEFAULT_FILTER.to_owned(), |f| f.trim().to_owned());
        EnvFilter::try_new(&filter)
            .map_err(|e| ConfigError::invalid("RUST_LOG", format!("not a tracing filter ({e})")))?;
        Ok(Self { json, filter })
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            json: false,
            filter: Self::DEFAULT_FILTER.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_group_reads_its_three_variables_and_hides_the_password() {
        let s = DatabaseSettings::from_source(&[
            ("DATABASE_URL", "postgres://u:hunter2@db:5433/app"),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(s.max_connections, 4);
        assert_eq!(s.acquire_timeout, Duration::from_secs(2));
        let shown = format!("{s:?}");
        assert!(
            shown.contains("db:5433/app") && !shown.contains("hunter2"),
            "{shown}"
        );
        let d = DatabaseSettings::from_source(&[("DATABASE_URL", "postgres://db/app")]).unwrap();
        assert_eq!(
            (d.max_connections, d.acquire_timeout),
            (10, Duration::from_secs(5))
        );
        for (name, value) in [
            ("DATABASE_URL", "mysql://db/app"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "soon"),
        ] {
            let src = vec![
                ("DATABASE_URL".to_owned(), "postgres://db/app".to_owned()),
                (name.to_owned(), value.to_owned()),
            ];
            let src: Vec<_> = src.into_iter().rev().collect();
            let err = DatabaseSettings::from_source(&src).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_lifecycle_group_reads_migrations_drain_and_deadline() {
        assert_eq!(
            LifecycleSettings::from_source(&[("A", "")]).unwrap(),
            LifecycleSettings::default()
        );
        let s = LifecycleSettings::from_source(&[
            ("MIGRATE_ON_START", "false"),
            ("SHUTDOWN_DRAIN_SECS", "0"),
            ("SHUTDOWN_TIMEOUT_SECS", "3"),
        ])
        .unwrap();
        assert!(!s.migrate_on_start);
        assert_eq!(
            (s.drain, s.timeout),
            (Duration::ZERO, Duration::from_secs(3))
        );
        for (name, value) in [
            ("MIGRATE_ON_START", "sometimes"),
            ("SHUTDOWN_DRAIN_SECS", "-1"),
            ("SHUTDOWN_TIMEOUT_SECS", "0"),
        ] {
            let err = LifecycleSettings::from_source(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_telemetry_group_reads_metrics_and_the_otel_variables() {
        let off = TelemetrySettings::from_source(&[("A", "")]).unwrap();
        assert_eq!(off, TelemetrySettings::default());
        let s = TelemetrySettings::from_source(&[
            ("METRICS_ADDR", "127.0.0.1:9464"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer x, team=a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_SERVICE_NAME", "edge"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ])
        .unwrap();
        assert_eq!(s.metrics_addr.unwrap().port(), 9464);
        assert_eq!(s.trace.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(s.trace.headers.len(), 2);
        assert_eq!(s.trace.timeout, Duration::from_millis(2500));
        assert_eq!(s.trace.service_name.as_deref(), Some("edge"));
        assert_eq!(s.trace.sampler.ratio, 1.0);
        for (name, value) in [
            ("METRICS_ADDR", "9464"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ] {
            let err = TelemetrySettings::from_source(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn a_bad_log_filter_names_rust_log() {
        assert!(LogSettings::from_source(&[("RUST_LOG", "debug,sqlx=warn")], false).is_ok());
        let err = LogSettings::from_source(&[("RUST_LOG", "app=loud")], false).unwrap_err();
        assert!(err.to_string().starts_with("RUST_LOG"), "{err}");
    }

    #[test]
    fn the_server_group_reads_the_named_address_and_the_workers() {
        let s = ServerSettings::from_source(
            &[("X_ADDR", "127.0.0.1:9"), ("HTTP_WORKERS", "3")],
            "X_ADDR",
            1,
        )
        .unwrap();
        assert_eq!((s.addr.port(), s.workers.get()), (9, 3));
        assert_eq!(
            ServerSettings::from_source(&[("A", "")], "X_ADDR", 8080)
                .unwrap()
                .addr
                .port(),
            8080
        );
        assert!(ServerSettings::from_source(&[("HTTP_WORKERS", "0")], "X_ADDR", 1).is_err());
    }
}
