//! Building the server: the database (migrated, or checked with `MIGRATE_ON_START=false`), the
//! shared state, the listener, the routes; running it until a graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use auth_contract::Verifier;
use web_common::db::migrate_or_check;
use web_common::metrics::{self, Metrics, PoolState};
use web_common::request_id::Observer;
use web_common::settings::LifecycleSettings;
use web_common::shutdown::{self, Shutdown};
use web_common::trace::{TraceError, Tracing};
use web_common::{Problem, problem, request_id};

use crate::config::Settings;
use crate::metrics::Refusals;
use crate::routes;
use crate::state::AppState;

/// The largest JSON body accepted.
pub const JSON_LIMIT: usize = 16 * 1024;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached.
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    /// The migrations failed (or, with `MIGRATE_ON_START=false`, are not applied).
    #[error("database migrations: {0}")]
    Migrate(#[from] web_common::db::MigrateError),
    /// The listen address (or `METRICS_ADDR`) could not be bound.
    #[error("cannot listen on the configured address: {0}")]
    Bind(#[from] std::io::Error),
    /// The trace exporter could not be built.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    lifecycle: LifecycleSettings,
    /// `GET /metrics` on `METRICS_ADDR`, and its port.
    metrics_server: Option<(Server, u16)>,
    tracing: Tracing,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database, applies the migrations (under sqlx's advisory lock, so
    /// several instances may start at once; with `MIGRATE_ON_START=false` only checks that
    /// they are applied), and binds the listen address (port 0: any free
    /// port, see [`Application::port`]). Serves `settings.server.workers` request workers.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let tracing = Tracing::start(&settings.telemetry.trace, "backend-api")?;
        Self::build_traced(settings, tracing).await
    }

    /// [`Application::build`] with the given tracer instead of the one the settings describe
    /// (tests: the SDK's in-memory exporter).
    pub async fn build_traced(settings: Settings, tracing: Tracing) -> Result<Self, StartupError> {
        let pool = settings.database.pool();
        // Fail here, named as a connection problem, rather than inside the migrations.
        drop(pool.acquire().await.map_err(StartupError::Database)?);
        migrate_or_check(&pool, settings.lifecycle.migrate_on_start).await?;
        let state = web::Data::new(AppState {
            pool,
            reads: settings.database.lane(),
            verifier: Verifier::new(&settings.api_secret, &settings.api_secret_previous),
            invitation_ttl: settings.invitation_ttl,
            shutdown: Shutdown::new(),
        });
        let app_state = state.clone();
        let metrics = Metrics::new("backend-api");
        let refusals = Refusals::new();
        metrics.register(refusals.collectors());
        let main_pool = state.pool.clone();
        metrics.watch_pool("main", move || PoolState::of_sqlx(&main_pool));
        let lane = state.reads.clone();
        metrics.watch_pool("lane", move || lane.state());
        // The backend's only caller is the gateway (it is not public): its trace is continued.
        let observer = Arc::new(Observer::new(
            metrics.clone(),
            tracing.clone(),
            "unmatched",
            Arc::new(|_| true),
        ));
        let metrics_server = match settings.telemetry.metrics_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)?;
                let port = listener.local_addr()?.port();
                Some((metrics::serve(listener, metrics)?, port))
            }
            None => None,
        };
        let listener = TcpListener::bind(settings.server.addr)?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            env = %settings.app_env,
            workers = settings.server.workers.get(),
            "backend-api listening"
        );
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(problem::json_config(JSON_LIMIT))
                .app_data(problem::query_config())
                .app_data(web::PathConfig::default().error_handler(|_, _| {
                    // A malformed id names nothing that exists: the same 404 as an unknown one.
                    Problem::not_found("No such resource.").into()
                }))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                .wrap(from_fn({
                    let refusals = refusals.clone();
                    move |req, next| refusals.clone().count(req, next)
                }))
                .wrap(from_fn(problem::normalize))
                .wrap(from_fn({
                    let observer = observer.clone();
                    move |req, next| request_id::middleware(observer.clone(), req, next)
                }))
        })
        .workers(settings.server.workers.get())
        .on_connect(web_common::tcp::no_delay)
        // Signals are `web_common::shutdown::serve`'s: it drains before it stops the server.
        .disable_signals()
        .shutdown_timeout(settings.lifecycle.timeout.as_secs())
        .listen(listener)?
        .run();
        Ok(Self {
            port: addr.port(),
            server,
            state: app_state,
            lifecycle: settings.lifecycle,
            metrics_server,
            tracing,
        })
    }

    /// The port of `GET /metrics`, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGTERM/SIGINT), then shuts down gracefully
    /// (see [`web_common::shutdown`]), closes the database connections, stops `/metrics` and
    /// sends the spans still queued.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state;
        let serve = shutdown::serve(self.server, &state.shutdown, &self.lifecycle, "backend-api");
        let result = match self.metrics_server {
            Some((metrics, _)) => {
                let handle = metrics.handle();
                let (result, _) = tokio::join!(
                    async {
                        let result = serve.await;
                        handle.stop(true).await;
                        result
                    },
                    metrics
                );
                result
            }
            None => serve.await,
        };
        state.pool.close().await;
        state.reads.close().await;
        let tracing = self.tracing;
        // The exporter's shutdown waits for its last export: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
        result
    }
}
