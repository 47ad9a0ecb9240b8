//! [`Hub`]: one `LISTEN` connection per process for every Postgres notification channel it
//! follows (the mail outbox, ended sessions, ...), fanned out to in-process subscribers.
//!
//! The connection is its own (a pool of one, outside the service's pool), so listening never
//! takes a connection the requests need. Notifications sent while it is down are lost; so
//! whenever it (re)connects, every subscriber is told [`Notice::Missed`] and falls back to what
//! it would do without notifications (poll, forget its caches).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;

/// What a subscriber hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A notification's payload.
    Payload(String),
    /// The listener (re)connected: notifications may have been lost meanwhile.
    Missed,
}

/// How many notices a slow subscriber may fall behind before it is told it lagged.
const CAPACITY: usize = 1024;
/// How long to wait before connecting again after the connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The listener of one process: cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    pool: PgPool,
    channels: Arc<Vec<(&'static str, broadcast::Sender<Notice>)>>,
}

impl Hub {
    /// A hub for `channels`, connecting with `options` (not before [`Hub::run`]).
    pub fn new(options: PgConnectOptions, channels: &[&'static str]) -> Self {
        Self {
            pool: PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(options),
            channels: Arc::new(
                channels
                    .iter()
                    .map(|c| (*c, broadcast::channel(CAPACITY).0))
                    .collect(),
            ),
        }
    }

    /// The notices of `channel` from now on. Panics for a channel the hub was not made with (a
    /// programming error, found by any test that starts the service).
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Notice> {
        self.channels
            .iter()
            .find(|(name, _)| *name == channel)
            .map(|(_, sender)| sender.subscribe())
            .unwrap_or_else(|| panic!("the notification hub does not listen on {channel}"))
    }

    fn tell_all(&self, notice: &Notice) {
        for (_, sender) in self.channels.iter() {
            let _ = sender.send(notice.clone());
        }
    }

    /// Closes the listener's connection (at shutdown, once [`Hub::run`] has stopped).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Listens, forever (run it next to the server), connecting again whenever the
    /// connection is lost.
    pub async fn run(self) {
        let names: Vec<&str> = self.channels.iter().map(|(name, _)| *name).collect();
        loop {
            let listening = async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen_all(names.iter().copied()).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listening.await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for notifications; trying again");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            };
            self.tell_all(&Notice::Missed);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some((_, sender)) = self
                            .channels
                            .iter()
                            .find(|(name, _)| *name == notification.channel())
                        {
                            let _ = sender.send(Notice::Payload(notification.payload().to_owned()));
                        }
                    }
                    // The connection was lost and made again: what was sent meanwhile is lost.
                    Ok(None) => self.tell_all(&Notice::Missed),
                    Err(e) => {
                        tracing::warn!(error = %e, "the notification listener failed; connecting again");
                        tokio::time::sleep(RETRY_AFTER).await;
                        break;
                    }
                }
            }
        }
    }
}
