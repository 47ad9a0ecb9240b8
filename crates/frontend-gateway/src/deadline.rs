//! `CLIENT_BODY_TIMEOUT_SECS`: a request the gateway answers itself must have sent its whole
//! body within this of its head (actix-web's `CLIENT_REQUEST_TIMEOUT_SECS` covers only the
//! head, so a client dripping one byte every few seconds could hold a sign-in or a
//! registration open for minutes).
//!
//! One middleware, for every route: a request with a body gets it wrapped in a
//! [`DeadlineBody`], which fails the read once the deadline has passed; the answer is then a
//! 408 problem and the connection is closed (`Connection: close`), whatever the handler made of
//! the failed read. The proxy lifts the deadline ([`lift`]) for what it forwards: proxied bodies
//! stream, under limits of their own (`PROXY_MAX_BODY_BYTES`, `PROXY_TIMEOUT_SECS`). A request
//! without a body costs one check.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use web_common::Problem;

/// Where a request's body deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The body must arrive in time.
    Armed,
    /// No deadline (the proxy forwards this body).
    Lifted,
    /// The deadline passed while the body was read.
    Expired,
}

/// The deadline of the current request's body, in its extensions (for [`lift`]).
#[derive(Debug, Clone)]
struct Deadline(Rc<Cell<State>>);

/// Middleware: the request's body must arrive within `timeout` of now, or the answer is a 408
/// problem and the connection closes.
pub async fn middleware<B: MessageBody + 'static>(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let state = Rc::new(Cell::new(State::Armed));
    req.extensions_mut().insert(Deadline(Rc::clone(&state)));
    let body = DeadlineBody {
        inner: payload,
        deadline: Instant::now() + timeout,
        sleep: None,
        state: Rc::clone(&state),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let res = next.call(req).await?;
    if state.get() != State::Expired {
        return Ok(res.map_into_left_body());
    }
    tracing::warn!(
        timeout_secs = timeout.as_secs(),
        "a request body did not arrive in time"
    );
    let (request, _) = res.into_parts();
    let mut problem = Problem::new(StatusCode::REQUEST_TIMEOUT).detail(format!(
        "The request body did not arrive within {} s.",
        timeout.as_secs()
    ));
    // Built here, outside the problem middleware (which would drop `Connection: close`), so
    // with the fields it would have added.
    problem.instance = Some(request.path().to_owned());
    problem.request_id = request
        .extensions()
        .get::<web_common::RequestId>()
        .map(|id| id.as_str().to_owned());
    let mut answer = problem.error_response();
    answer.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(request, answer).map_into_right_body())
}

/// Lifts the body deadline of `req` (the proxy's bodies stream under limits of their own).
pub fn lift(req: &HttpRequest) {
    if let Some(deadline) = req.extensions().get::<Deadline>() {
        deadline.0.set(State::Lifted);
    }
}

/// A request body that fails once its deadline has passed (unless lifted).
struct DeadlineBody {
    inner: Payload,
    deadline: Instant,
    /// Made the first time the body has nothing to give (most bodies never need it).
    sleep: Option<Pin<Box<Sleep>>>,
    state: Rc<Cell<State>>,
}

impl DeadlineBody {
    fn expire(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.state.set(State::Expired);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.state.get() {
            State::Lifted => return Pin::new(&mut this.inner).poll_next(cx),
            State::Expired => return Poll::Ready(None),
            State::Armed => {}
        }
        // Checked on every read, not only when waiting: a byte at a time is never Pending
        // for long.
        if Instant::now() >= this.deadline {
            return this.expire();
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.expire(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
