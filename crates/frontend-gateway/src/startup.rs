//! Building and running the server: the pool, the three wings' state, the middleware stack
//! and the routes. Binds its own listener so tests can use port 0. Runs until a graceful
//! shutdown (see [`web_common::shutdown`]).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use tokio::sync::broadcast;
use web_common::db::migrate_or_check;
use web_common::metrics::{self, Metrics, PoolState};
use web_common::notify::{Hub, Notice};
use web_common::request_id::Observer;
use web_common::settings::LifecycleSettings;
use web_common::shutdown::{self, Shutdown};
use web_common::trace::{TraceError, Tracing};

use crate::config::Settings;
use crate::identity::csrf::Csrf;
use crate::identity::password::{self, Hasher};
use crate::identity::providers::{Providers, oauth};
use crate::identity::{self, Identity};
use crate::mail::Sender;
use crate::proxy::{self, Proxy};
use crate::session::{self, Sessions};
use crate::{deadline, guard, health, origin, pages};

/// How often expired sessions are deleted.
const SESSION_CLEAN_UP_EVERY: Duration = Duration::from_secs(300);

/// The largest JSON or form body the gateway reads itself (`/api/auth/*`).
const OWN_BODY_LIMIT: usize = 16 * 1024;

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
    /// The dummy password hash could not be made.
    #[error("could not prepare the dummy password hash")]
    DummyHash,
    /// The migrations could not be applied (or, with `MIGRATE_ON_START=false`, are not).
    #[error("database migrations: {0}")]
    Migrate(#[from] web_common::db::MigrateError),
    /// The trace exporter could not be built.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    sessions: Sessions,
    providers: Providers,
    pool: sqlx::PgPool,
    provider_timeout: Duration,
    /// The longest window of any limit (what the identity upkeep keeps).
    longest_window: Duration,
    hasher: Hasher,
    mail: Sender,
    hub: Hub,
    ended_sessions: broadcast::Receiver<Notice>,
    shutdown: Shutdown,
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
    /// Connects (lazily) to Postgres, applies migrations (with `MIGRATE_ON_START=false`,
    /// checks that they are applied), binds `settings.server.addr` and
    /// builds the server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let tracing = Tracing::start(&settings.telemetry.trace, "frontend-gateway")?;
        Self::build_traced(settings, tracing).await
    }

    /// [`Application::build`] with the given tracer instead of the one the settings describe
    /// (tests: the SDK's in-memory exporter).
    pub async fn build_traced(settings: Settings, tracing: Tracing) -> Result<Self, StartupError> {
        if settings.session.key.is_generated() {
            tracing::warn!(
                "SESSION_KEY is not set: using a random key, so sessions end when the gateway restarts"
            );
        }
        let pool = settings.database.pool();
        migrate_or_check(&pool, settings.lifecycle.migrate_on_start).await?;
        // Make the dummy hash now, so the first sign-in with an unknown email costs no more
        // than any other (no timing difference to learn from).
        tokio::task::spawn_blocking(password::dummy_hash)
            .await
            .map_err(|_| StartupError::DummyHash)?;
        let addr = settings.server.addr;
        let bind_error = |source| StartupError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let secure = settings.app_env.is_production();
        let sessions = Sessions::new(pool.clone(), settings.session.clone(), secure);
        let providers = Providers::from_settings(&settings.auth);
        for provider in providers.listing(&settings.public_origin).0 {
            if provider.kind == "oauth" {
                tracing::info!(
                    provider = %provider.id,
                    redirect_uri = %provider.callback_url,
                    "identity provider configured: register this redirect URI with it"
                );
            }
        }
        let provider_timeout = settings.auth.provider_timeout;
        let longest_window = settings
            .sign_in
            .limits
            .longest_window()
            .max(settings.sign_in.mail_limits.longest_window());
        let identity = Identity::new(
            pool.clone(),
            settings.public_origin.clone(),
            Csrf::new(settings.session.key.expose(), sessions.secure()),
            settings.sign_in,
            settings.auth.allowed_email_domains.clone(),
            sessions.clone(),
            settings.trusted_proxies.clone(),
        );
        let hasher = identity.hasher.clone();
        // One LISTEN connection for the process: the outbox and ended sessions.
        let hub = Hub::new(
            settings.database.options.clone(),
            &[web_common::outbox::CHANNEL, session::ENDED_CHANNEL],
        );
        let ended_sessions = hub.subscribe(session::ENDED_CHANNEL);
        let mail = Sender::new(
            pool.clone(),
            &hub,
            settings.mail.clone(),
            settings.public_origin.clone(),
        );
        let (shutdown, lifecycle) = (Shutdown::new(), settings.lifecycle);
        let proxy = Proxy::new(
            settings.proxy.clone(),
            settings.trusted_proxies.clone(),
            sessions.clone(),
            shutdown.clone(),
        );
        let metrics = Metrics::new("frontend-gateway");
        metrics.register(sessions.metrics().collectors());
        metrics.register(proxy.metrics().collectors());
        metrics.register(vec![identity.attempts.collector()]);
        identity.hasher.report_to(&metrics);
        let main_pool = pool.clone();
        metrics.watch_pool("main", move || PoolState::of_sqlx(&main_pool));
        // An incoming trace is continued only from a trusted proxy; anyone else's trace
        // headers are dropped (see `proxy::handler`).
        let trusted = settings.trusted_proxies.clone();
        let observer = Observer::new(
            metrics.clone(),
            tracing.clone(),
            "proxy",
            Arc::new(move |req| req.peer_addr().is_some_and(|p| trusted.contains(p.ip()))),
        );
        let metrics_server = match settings.telemetry.metrics_addr {
            Some(addr) => {
                let bind_error = |source| StartupError::Bind { addr, source };
                let listener = TcpListener::bind(addr).map_err(bind_error)?;
                let port = listener.local_addr().map_err(bind_error)?.port();
                Some((metrics::serve(listener, metrics).map_err(bind_error)?, port))
            }
            None => None,
        };
        let server = server(
            listener,
            settings,
            pool.clone(),
            (sessions.clone(), identity),
            (proxy, observer),
            providers.clone(),
            shutdown.clone(),
        )
        .map_err(bind_error)?;
        Ok(Self {
            port,
            server,
            sessions,
            providers,
            pool,
            provider_timeout,
            longest_window,
            hasher,
            mail,
            hub,
            ended_sessions,
            shutdown,
            lifecycle,
            metrics_server,
            tracing,
        })
    }

    /// The port of `GET /metrics`, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// The password hasher the sign-ins of this gateway share (its load, for tests and
    /// diagnostics).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT and a graceful shutdown (see [`web_common::shutdown`]),
    /// deleting expired sessions and sign-in flows and sending the mail outbox meanwhile, and
    /// discovering the OpenID providers (retrying those that do not answer) in the background.
    /// Once the server stops taking work, the clean-ups stop, the mail sender finishes the
    /// message it is sending (and records it), and the database pool is closed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let oidc = self.providers.oidc().cloned().collect();
        let _discovery = oauth::discovery::start(oidc, self.provider_timeout);
        let stop = &self.shutdown;
        let serve = shutdown::serve(self.server, stop, &self.lifecycle, "frontend-gateway");
        // `/metrics` answers until the gateway has stopped.
        let (metrics, metrics_handle) = match self.metrics_server {
            Some((server, _)) => {
                let handle = server.handle();
                (Some(server), Some(handle))
            }
            None => (None, None),
        };
        let serve = async {
            let result = serve.await;
            if let Some(handle) = metrics_handle {
                handle.stop(true).await;
            }
            result
        };
        let metrics = async {
            if let Some(server) = metrics {
                let _ = server.await;
            }
        };
        let (result, ..) = tokio::join!(
            serve,
            metrics,
            stop.until_stopped(
                self.sessions
                    .clone()
                    .clean_up_periodically(SESSION_CLEAN_UP_EVERY)
            ),
            stop.until_stopped(identity::clean_up_periodically(
                self.pool.clone(),
                SESSION_CLEAN_UP_EVERY,
                self.longest_window,
            )),
            self.mail.run(stop.clone()),
            stop.until_stopped(self.hub.clone().run()),
            stop.until_stopped(self.sessions.follow(self.ended_sessions)),
        );
        self.hub.close().await;
        self.pool.close().await;
        let tracing = self.tracing;
        // The exporter's shutdown waits for its last export: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
        result
    }
}

fn server(
    listener: TcpListener,
    settings: Settings,
    pool: sqlx::PgPool,
    (sessions, identity): (Sessions, Identity),
    (proxy, observer): (Proxy, Observer),
    providers: Providers,
    shutdown: Shutdown,
) -> std::io::Result<Server> {
    let identity = web::Data::new(identity);
    // Checked once: off the proxy's path entirely in development and on http origins.
    let hsts = origin::sends_hsts(settings.app_env.is_production(), &settings.public_origin);
    let body_timeout = settings.client_body_timeout;
    let lifecycle = settings.lifecycle;
    let providers = web::Data::new(providers);
    let provider_timeout = settings.auth.provider_timeout;
    let connect_timeout = settings.proxy.connect_timeout;
    let proxy = web::Data::new(proxy);
    let observer = Arc::new(observer);
    let origin = web::Data::new(settings.public_origin);
    let sessions = web::Data::new(sessions);
    let server = HttpServer::new(move || {
        let (identity, providers) = (identity.clone(), providers.clone());
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        App::new()
            .app_data(origin.clone())
            .app_data(sessions.clone())
            .app_data(proxy.clone())
            .app_data(web::Data::new(proxy::client(connect_timeout)))
            .app_data(web::Data::new(oauth::http::ProviderHttp::new(
                provider_timeout,
            )))
            .app_data(web_common::problem::json_config(OWN_BODY_LIMIT))
            .app_data(web::PayloadConfig::default().limit(OWN_BODY_LIMIT))
            .configure(|cfg| identity::configure(cfg, identity, providers))
            .configure(|cfg| health::configure(cfg, pool, shutdown))
            .configure(pages::configure)
            .default_service(web::to(proxy::handle))
            .wrap(session::layer(&sessions))
            .wrap(from_fn(session::failures))
            .wrap(from_fn(guard::middleware))
            .wrap(from_fn(web_common::problem::normalize))
            // Outside `normalize`, which would rebuild its 408 without `Connection: close`.
            .wrap(from_fn(move |req, next| {
                deadline::middleware(body_timeout, req, next)
            }))
            .wrap(from_fn(pages::not_found_page))
            .wrap(from_fn({
                let observer = observer.clone();
                move |req, next| web_common::request_id::middleware(observer.clone(), req, next)
            }))
            .wrap(Condition::new(hsts, from_fn(origin::hsts)))
    })
    .workers(settings.server.workers.get())
    .on_connect(web_common::tcp::no_delay)
    // Slow-loris: the whole request head must arrive within this, or 408 and close.
    .client_request_timeout(settings.client_request_timeout)
    // A client that closes its side has gone: its request is dropped (a sign-in waiting for a
    // password hash gives up its place) instead of running on for nobody.
    .h1_allow_half_closed(false)
    // Signals are `web_common::shutdown::serve`'s: it drains before it stops the server.
    .disable_signals()
    .shutdown_timeout(lifecycle.timeout.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
