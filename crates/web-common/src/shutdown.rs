//! Graceful shutdown, the same for both services: restarts lose nothing.
//!
//! On SIGTERM or SIGINT, [`serve`]:
//! 1. marks the service draining ([`Shutdown::is_draining`]): `/readyz` answers 503 at once,
//!    `/healthz` stays 200, and everything else is served as before, for
//!    [`LifecycleSettings::drain`] (`SHUTDOWN_DRAIN_SECS`), so load balancers notice and send
//!    new requests elsewhere;
//! 2. then marks it stopping ([`Shutdown::stopped`] resolves: open event streams end, background
//!    tasks stop after the work they hold) and stops the server gracefully: the listener is
//!    closed (new connections are refused), keep-alive connections close after their current
//!    response, and in-flight requests have until [`LifecycleSettings::timeout`]
//!    (`SHUTDOWN_TIMEOUT_SECS`) to finish, after which they are dropped.
//!
//! A second signal during the drain skips the rest of it. The service then closes its pools
//! and exits 0. The server must be built with `HttpServer::disable_signals()` (the signals are
//! handled here) and `shutdown_timeout` set from [`LifecycleSettings::timeout`].

use std::sync::{Arc, Mutex, PoisonError};

use actix_web::dev::Server;
use tokio::sync::watch;

use crate::settings::LifecycleSettings;

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    Draining,
    Stopping,
}

/// A service's shutdown state, shared by its readiness route, its streams and its background
/// tasks; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    phase: Arc<watch::Sender<Phase>>,
    /// SIGTERM and SIGINT, listened for from [`Shutdown::new`] on (see [`Signals`]).
    signals: Arc<Mutex<Option<Signals>>>,
}

/// The process's SIGTERM and SIGINT listeners. Made when the service is built, before its
/// listener accepts anything: a signal that arrived between the first answered request and
/// the first poll of [`serve`] used to meet the default action (the process killed, no drain).
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Starts listening (inside a Tokio runtime; outside one, listening starts at [`serve`]).
    fn listen() -> Option<Self> {
        tokio::runtime::Handle::try_current().ok()?;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listeners = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            Some(Self { listeners })
        }
        #[cfg(not(unix))]
        Some(Self {})
    }

    /// The next SIGTERM or SIGINT (Ctrl-C); only SIGINT where there are no Unix signals.
    async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.listeners {
            Some((term, int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                tracing::error!("cannot listen for SIGTERM/SIGINT; serving until killed");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A service that is serving.
    pub fn new() -> Self {
        Self {
            phase: Arc::new(watch::Sender::new(Phase::Serving)),
            signals: Arc::new(Mutex::new(Signals::listen())),
        }
    }

    /// `true` from the shutdown signal on: the service is going away (`/readyz` answers 503).
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() >= Phase::Draining
    }

    /// `true` once the service stops taking new work (after the drain).
    pub fn is_stopping(&self) -> bool {
        *self.phase.borrow() == Phase::Stopping
    }

    /// Marks the service draining (the first step of [`serve`]'s sequence).
    pub fn drain(&self) {
        self.phase.send_if_modified(|p| advance(p, Phase::Draining));
    }

    /// Marks the service stopping: every [`Shutdown::stopped`] future resolves.
    pub fn stop(&self) {
        self.phase.send_if_modified(|p| advance(p, Phase::Stopping));
    }

    /// Resolves once the service stops serving new work (after the drain): open-ended streams
    /// end and background tasks stop when it does. Owns what it needs (`'static`).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut phase = self.phase.subscribe();
        async move {
            // An error means every `Shutdown` is gone: nothing can serve any more either.
            let _ = phase.wait_for(|p| *p == Phase::Stopping).await;
        }
    }

    /// Runs `work` until it ends or the service stops, whichever comes first (for background
    /// loops whose every step may be abandoned safely, such as a single `DELETE`).
    pub async fn until_stopped(&self, work: impl Future<Output = ()>) {
        tokio::select! {
            () = work => {}
            () = self.stopped() => {}
        }
    }
}

fn advance(phase: &mut Phase, to: Phase) -> bool {
    if *phase < to {
        *phase = to;
        true
    } else {
        false
    }
}

/// Serves `server` until SIGTERM or SIGINT, then shuts it down in [`Shutdown`]'s sequence
/// (see the module documentation); also ends (and marks `shutdown` stopping) when the server
/// stops on its own. `service` names it in the logs.
pub async fn serve(
    server: Server,
    shutdown: &Shutdown,
    settings: &LifecycleSettings,
    service: &str,
) -> std::io::Result<()> {
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    let taken = shutdown
        .signals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let mut signals = taken.or_else(Signals::listen);
    tokio::select! {
        result = &mut server => {
            shutdown.stop();
            return result;
        }
        () = next_signal(&mut signals) => {}
    }
    shutdown.drain();
    tracing::info!(
        service,
        drain = ?settings.drain,
        timeout = ?settings.timeout,
        "shutting down: not ready any more, serving for the drain delay"
    );
    tokio::select! {
        result = &mut server => {
            shutdown.stop();
            return result;
        }
        () = tokio::time::sleep(settings.drain) => {}
        () = next_signal(&mut signals) => tracing::info!(service, "a second signal: the drain is cut short"),
    }
    tracing::info!(
        service,
        "shutting down: refusing new connections, finishing requests in flight"
    );
    shutdown.stop();
    let ((), result) = tokio::join!(handle.stop(true), server);
    tracing::info!(service, "stopped");
    result
}

/// The next signal, or never when there is nothing to listen with.
async fn next_signal(signals: &mut Option<Signals>) {
    match signals {
        Some(signals) => signals.recv().await,
        None => {
            tracing::error!("cannot listen for SIGTERM/SIGINT; serving until killed");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn draining_comes_before_stopping_and_neither_goes_back() {
        let s = Shutdown::new();
        assert!(!s.is_draining());
        let stopped = tokio::spawn(s.stopped());
        s.drain();
        assert!(s.is_draining());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!stopped.is_finished(), "draining is not stopping");
        assert!(!s.is_stopping());
        s.stop();
        assert!(s.is_stopping());
        tokio::time::timeout(Duration::from_secs(1), stopped)
            .await
            .expect("stopped resolves")
            .unwrap();
        s.drain();
        assert!(s.is_draining());
        // Subscribed after the fact: resolves at once.
        tokio::time::timeout(Duration::from_secs(1), s.stopped())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn until_stopped_abandons_the_work_when_the_service_stops() {
        let s = Shutdown::new();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.until_stopped(std::future::pending()).await }
        });
        s.stop();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
    }
}
