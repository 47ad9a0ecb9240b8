//! Building and running the server: the pool, the session store, the middleware stack and the
//! routes. Binds its own listener so tests can use port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use auth_contract::Signer;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::Settings;
use crate::csrf::Csrf;
use crate::session::CookieSettings;
use crate::session_store::{PgSessionStore, clean_up_periodically};
use crate::state::AppState;
use crate::throttle::SignInThrottle;
use crate::{auth, error, guard, health, pages, proxy, session};

/// How often expired sessions are deleted.
const SESSION_CLEAN_UP_EVERY: Duration = Duration::from_secs(300);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A rewrite rule is malformed.
    #[error("bad rewrite rule")]
    Rules(#[from] crate::rewrite::RuleError),
    /// The dummy password hash could not be made.
    #[error("could not prepare the dummy password hash")]
    DummyHash,
    /// The migrations could not be applied.
    #[error("database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The project's migrations (the backend applies the same ones; sqlx serialises the two).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    pool: PgPool,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects (lazily) to Postgres, applies migrations, binds `settings.addr` and builds the
    /// server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(settings.database.clone());
        MIGRATOR.run(&pool).await?;
        // Make the dummy hash now, so the first sign-in with an unknown email costs no more
        // than any other (no timing difference to learn from).
        tokio::task::spawn_blocking(crate::password::dummy_hash)
            .await
            .map_err(|_| StartupError::DummyHash)?;
        let listener = TcpListener::bind(settings.addr).map_err(|source| StartupError::Bind {
            addr: settings.addr,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.addr,
                source,
            })?
            .port();
        let server = server(listener, &settings, pool.clone())?;
        Ok(Self { port, server, pool })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM), deleting expired sessions meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tokio::select! {
            result = self.server => result,
            () = clean_up_periodically(self.pool, SESSION_CLEAN_UP_EVERY) => Ok(()),
        }
    }
}

fn server(
    listener: TcpListener,
    settings: &Settings,
    pool: PgPool,
) -> Result<Server, StartupError> {
    let secure = settings.app_env.is_production();
    let cookies = CookieSettings {
        secure,
        idle: settings.session_idle_timeout,
    };
    let state = web::Data::new(AppState {
        pool: pool.clone(),
        origin: settings.public_origin.clone(),
        csrf: Csrf::new(settings.session_key.expose(), secure),
        rules: settings.rules()?,
        signer: Signer::new(&settings.api_secret),
        session_idle: settings.session_idle_timeout,
        session_absolute: settings.session_absolute_timeout,
        session_cookie: cookies.cookie_name(),
        session_cookie_key: Key::derive_from(settings.session_key.expose()),
        trusted_proxies: settings.trusted_proxies.clone(),
        throttle: Arc::new(SignInThrottle::new(settings.signin_limits)),
        proxy_max_body_bytes: settings.proxy_max_body_bytes,
        proxy_timeout: settings.proxy_timeout,
        proxy_stream_idle_timeout: settings.proxy_stream_idle_timeout,
        proxy_stream_session_check: settings.proxy_stream_session_check,
    });
    let store = PgSessionStore::new(pool, settings.session_absolute_timeout);
    let session_key = settings.session_key.clone();
    let connect_timeout = settings.proxy_connect_timeout;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::new(proxy::client(connect_timeout)))
            .app_data(web_common::problem::json_config(16 * 1024))
            .app_data(web::PayloadConfig::default().limit(16 * 1024))
            .configure(auth::configure)
            .configure(health::configure)
            .configure(pages::configure)
            .default_service(web::to(proxy::handle))
            .wrap(session::middleware(
                store.clone(),
                session_key.expose(),
                &cookies,
            ))
            .wrap(from_fn(error::session_failures))
            .wrap(from_fn(guard::middleware))
            .wrap(from_fn(web_common::problem::normalize))
            .wrap(from_fn(web_common::request_id::middleware))
    })
    .workers(settings.http_workers.get())
    .on_connect(web_common::tcp::no_delay)
    // Slow-loris: the whole request head must arrive within this, or 408 and close.
    .client_request_timeout(settings.client_request_timeout)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        addr: settings.addr,
        source,
    })?
    .run();
    Ok(server)
}
