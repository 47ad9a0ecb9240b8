//! The proxy's stream wrappers: a cap on request bodies that cannot be checked up front
//! (chunked uploads), and the guard on response bodies (idle timeout, session re-check).
//!
//! * [`LimitedBody`]: fails the upload once more than `PROXY_MAX_BODY_BYTES` went through. The
//!   upstream connection is then dropped mid-body (a chunked message without its last chunk),
//!   so the upstream never receives a complete, truncated request; the client gets a 413.
//! * [`GuardedBody`]: ends a response body that has been silent for
//!   `PROXY_STREAM_IDLE_TIMEOUT_SECS`, and, for a signed-in user's body of unknown length (an
//!   event stream, a chunked stream), asks the session wing every
//!   `PROXY_STREAM_SESSION_CHECK_SECS` whether the session still lives (not signed out, not
//!   revoked, not expired; see [`Liveness`]), cutting the stream when it does not. Cutting =
//!   the connection to the client is closed without the final chunk, so the client sees an
//!   incomplete body. (A body with a `Content-Length` is bounded by its size and the idle
//!   timeout, and is not re-checked.) An event stream also ends at shutdown
//!   ([`GuardedBody::ending_at`]): cleanly, with its final chunk, as a server closing an event
//!   stream does (the browser's `EventSource` reconnects, to another instance). Other bodies
//!   are not ended early at shutdown: a clean end would pass a truncated download off as
//!   complete; they finish as requests in flight do, or are cut at the shutdown deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use prometheus::IntGauge;
use tokio::time::{Instant, Sleep};

use crate::session::Liveness;

/// Why a proxied body stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Reading the body failed.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The request body went past the limit.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The response body was silent for too long.
    #[error("the upstream sent nothing for {0:?}")]
    Idle(Duration),
    /// The session behind the request ended (signed out, revoked, expired) or could not be
    /// checked.
    #[error("the session ended while the response was streaming")]
    SessionEnded,
}

/// A request body that fails once it exceeds `limit` bytes.
#[derive(Debug)]
pub struct LimitedBody<S> {
    inner: S,
    limit: u64,
    seen: u64,
}

impl<S> LimitedBody<S> {
    /// Caps `inner` at `limit` bytes.
    pub fn new(inner: S, limit: u64) -> Self {
        Self {
            inner,
            limit,
            seen: 0,
        }
    }
}

impl<S> Stream for LimitedBody<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.seen > this.limit {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.limit {
                    return Poll::Ready(Some(Err(BodyError::TooLarge { limit: this.limit })));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Something the body waits on beside its chunks: the end of its session, or the shutdown.
type Stop = Pin<Box<dyn Future<Output = ()>>>;

/// A response body with an idle timeout and, for a signed-in request, a session re-check.
pub struct GuardedBody<S> {
    inner: S,
    idle: Duration,
    last_chunk: Instant,
    /// Made at the first wait (a body that never waits costs no timer).
    idle_timer: Option<Pin<Box<Sleep>>>,
    /// Resolves once the session has ended ([`Liveness::ended`]: at once when its end is heard
    /// of, else found by a re-check every so often).
    session: Option<Stop>,
    /// Resolves when the body should end cleanly (the gateway is shutting down).
    stop: Option<Stop>,
    done: bool,
    /// Counted in `gateway_open_streams` while it lives ([`GuardedBody::counted`]).
    open: Option<OpenStream>,
}

/// One open stream in a gauge, until dropped.
#[derive(Debug)]
struct OpenStream(IntGauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl<S> std::fmt::Debug for GuardedBody<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedBody")
            .field("idle", &self.idle)
            .field("checks_session", &self.session.is_some())
            .field("ends_at_shutdown", &self.stop.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> GuardedBody<S> {
    /// Guards `inner`: cut after `idle` without a chunk; with `session` (the session and how
    /// often to ask), cut once the session has ended.
    pub fn new(inner: S, idle: Duration, session: Option<(Liveness, Duration)>) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            last_chunk: now,
            idle_timer: None,
            session: session.map(|(session, every)| -> Stop { Box::pin(session.ended(every)) }),
            stop: None,
            done: false,
            open: None,
        }
    }

    /// Counts this body in `open_streams` until it is dropped (finished, cut or abandoned).
    pub fn counted(mut self, open_streams: &IntGauge) -> Self {
        open_streams.inc();
        self.open = Some(OpenStream(open_streams.clone()));
        self
    }

    /// Ends the body cleanly (no error: the final chunk is sent) once `stop` resolves; for
    /// event streams, whose end is a close the client recovers from.
    pub fn ending_at(mut self, stop: impl Future<Output = ()> + 'static) -> Self {
        self.stop = Some(Box::pin(stop));
        self
    }
}

impl<S> Stream for GuardedBody<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(stop) = this.stop.as_mut()
            && stop.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            tracing::info!("an event stream was ended: the gateway is shutting down");
            return Poll::Ready(None);
        }
        if let Some(session) = this.session.as_mut()
            && session.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            tracing::info!("a streaming response was cut: its session ended");
            return Poll::Ready(Some(Err(BodyError::SessionEnded)));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // The timer is moved lazily (when it fires), not on every chunk.
                this.last_chunk = Instant::now();
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => loop {
                let deadline = this.last_chunk + this.idle;
                let timer = this
                    .idle_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) if Instant::now() >= deadline => {
                        this.done = true;
                        tracing::info!(idle = ?this.idle, "a streaming response was cut: idle");
                        return Poll::Ready(Some(Err(BodyError::Idle(this.idle))));
                    }
                    Poll::Ready(()) => {}
                    Poll::Pending => return Poll::Pending,
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn chunks(n: usize, size: usize) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin {
        futures_util::stream::iter((0..n).map(move |_| Ok(Bytes::from(vec![0u8; size]))))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes_and_one_past_it_fails() {
        let all: Vec<_> = LimitedBody::new(chunks(4, 10), 40).collect().await;
        assert!(all.iter().all(Result::is_ok));
        let all: Vec<_> = LimitedBody::new(chunks(5, 10), 40).collect().await;
        assert_eq!(all.len(), 5);
        assert!(matches!(all[4], Err(BodyError::TooLarge { limit: 40 })));
    }

    #[tokio::test]
    async fn a_silent_response_is_cut_after_the_idle_timeout() {
        let silent = futures_util::stream::pending::<Result<Bytes, PayloadError>>();
        let mut body = GuardedBody::new(silent, Duration::from_millis(300), None);
        let started = Instant::now();
        let item = body.next().await;
        assert!(matches!(item, Some(Err(BodyError::Idle(_)))));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2));
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_ending_at_shutdown_ends_cleanly_when_it_comes() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let open = futures_util::stream::iter([Ok(Bytes::from_static(b"data: 1\n\n"))])
            .chain(futures_util::stream::pending());
        let mut body = GuardedBody::new(open, Duration::from_secs(60), None).ending_at(async {
            let _ = rx.await;
        });
        assert!(matches!(body.next().await, Some(Ok(_))));
        tx.send(()).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(1), body.next()).await;
        assert!(matches!(end, Ok(None)), "a clean end, not an error");
        assert!(body.next().await.is_none());
    }
}
