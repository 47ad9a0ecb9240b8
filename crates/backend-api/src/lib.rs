//! `backend-api`: the workspace API behind the gateway.
//!
//! It trusts exactly one thing: a short-lived token minted by the gateway and verified with
//! [`auth_contract`] (see [`auth::AuthUser`]). Authorization is per workspace role
//! ([`roles`]). Errors are RFC 9457 problems ([`web_common::problem`]).
//!
//! `main.rs` only reads [`Settings`] and runs an [`Application`]; tests build the same
//! `Application` on port 0 against a fresh database.

pub mod auth;
pub mod config;
pub mod error;
pub mod openapi;
pub mod roles;
pub mod routes;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use auth_contract::Verifier;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use web_common::db::{Lane, LaneSettings};
use web_common::{Problem, problem, request_id};

pub use config::Settings;

/// The migrations in the top-level `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The largest JSON body accepted.
pub const JSON_LIMIT: usize = 16 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The Postgres pool: writes, transactions, readiness.
    pub pool: PgPool,
    /// Connections for the single-statement reads every request makes (no health pings on
    /// the hot path; see [`web_common::db`]).
    pub reads: Lane,
    /// Verifies gateway tokens.
    pub verifier: Verifier,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached.
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    /// The migrations failed.
    #[error("database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The listen address could not be bound.
    #[error("cannot listen on the configured address: {0}")]
    Bind(#[from] std::io::Error),
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
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
    /// several instances may start at once), and binds the listen address.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(settings.database.clone())
            .await
            .map_err(StartupError::Database)?;
        MIGRATOR.run(&pool).await?;
        let verifier = Verifier::new(&settings.api_secret, &settings.api_secret_previous);
        let listener = TcpListener::bind(settings.addr)?;
        let port = listener.local_addr()?.port();
        tracing::info!(addr = %listener.local_addr()?, env = %settings.app_env, "backend-api listening");
        let reads = Lane::new(
            settings.database.clone(),
            LaneSettings::new(settings.db_max_connections),
        );
        let state = web::Data::new(AppState {
            pool,
            reads,
            verifier,
        });
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
                .wrap(from_fn(problem::normalize))
                .wrap(from_fn(request_id::middleware))
        })
        .on_connect(web_common::tcp::no_delay)
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM: graceful shutdown).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
