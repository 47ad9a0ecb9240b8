//! The streaming reverse proxy (awc), in named phases:
//!
//! 1. decide: the rewrite table gives the upstream URL (or the gateway keeps the request);
//! 2. upstream request: built from scratch: the client's headers minus `Authorization`,
//!    `Cookie`, hop-by-hop headers (and those `Connection` names), `X-Forwarded-*`/`Forwarded`;
//!    plus `X-Forwarded-For/Proto/Host` from what the gateway believes (see
//!    [`super::forwarded`]), `x-request-id`, a freshly minted bearer token when there is a
//!    session and the rule opted in, and the browser's cookies minus the gateway's when the
//!    rule passes cookies (see [`super::filters`]);
//! 3. send: the body streams through (never buffered, capped at `PROXY_MAX_BODY_BYTES`), no
//!    redirects, no decompression; refused/unreachable -> 502, too slow -> 504; a client body
//!    that breaks off or is malformed -> 400 (the upstream's request is abandoned unfinished);
//!    retry: a GET, HEAD or OPTIONS without a body whose upstream connection failed before
//!    the response head was read (refused, reset, closed: see [`failed_before_answer`]) is
//!    sent once more, on another connection (awc's pool drops the failed one, and discards
//!    idle ones the upstream has closed), all within the same `PROXY_TIMEOUT_SECS`; never a
//!    request with a body, never once any of the answer has been read. The retry costs the
//!    successful path nothing: the second request is built only when the first failed;
//! 4. response filter: hop-by-hop headers dropped; `Set-Cookie` only on a rule that passes
//!    cookies, never one named like the gateway's; `Cache-Control: private, no-store` on an
//!    authenticated answer that set no caching header; the body streamed back under an idle
//!    timeout, and, for a signed-in user's open-ended stream, only while the session lives;
//!    an event stream ends cleanly when the gateway shuts down (see [`super::streams`]).

use std::time::Duration;

use actix_web::body::{BodyStream, SizedStream};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use auth_contract::{Claims, Signer};
use awc::error::{ConnectError, SendRequestError};
use bytes::Bytes;
use futures_util::Stream;
use opentelemetry::trace::SpanKind;
use prometheus::IntGauge;
use web_common::metrics::Route;
use web_common::problem::Untouched;
use web_common::shutdown::Shutdown;
use web_common::{Problem, RequestId, trace};

use super::filters;
use super::forwarded::{self, TrustedProxies};
use super::metrics::{Outcome, Pending, ProxyMetrics};
use super::rewrite::Decision;
use super::settings::ProxySettings;
use super::streams::{BodyError, GuardedBody, LimitedBody};
use crate::error::Error;
use crate::session::{Liveness, Sessions, UserSession};

/// What the proxy's handler shares (one per instance, behind `web::Data`).
#[derive(Debug)]
pub struct Proxy {
    settings: ProxySettings,
    signer: Signer,
    trusted_proxies: TrustedProxies,
    sessions: Sessions,
    shutdown: Shutdown,
    metrics: ProxyMetrics,
}

impl Proxy {
    /// A proxy configured by `settings`, believing `X-Forwarded-*` from `trusted_proxies` only,
    /// asking `sessions` whether a streaming response's session still lives, and ending event
    /// streams when `shutdown` stops the gateway.
    pub fn new(
        settings: ProxySettings,
        trusted_proxies: TrustedProxies,
        sessions: Sessions,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            signer: Signer::new(&settings.api_secret),
            metrics: ProxyMetrics::new(&settings.rules.labels()),
            settings,
            trusted_proxies,
            sessions,
            shutdown,
        }
    }
}

impl Proxy {
    /// The proxy's metrics (for the service's registry).
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }
}

/// Builds the upstream client. One per worker (awc clients are not `Send`), so each worker
/// keeps its own pool of keep-alive connections to the backend.
///
/// It has no overall timeout: awc would apply it to the response BODY too, cutting event
/// streams and long downloads. [`handle`] bounds the request and response head with
/// `PROXY_TIMEOUT_SECS` instead, and [`GuardedBody`] the body with an idle timeout.
pub fn client(connect_timeout: Duration) -> awc::Client {
    // rustls needs one process-wide crypto provider for https upstreams; an `Err` only means
    // one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .timeout(connect_timeout)
                .conn_keep_alive(Duration::from_secs(30)),
        )
        .disable_timeout()
        .disable_redirects()
        .no_default_headers()
        .finish()
}

/// Headers that describe one hop, never forwarded (RFC 9110 section 7.6.1), besides any
/// `Proxy-*` and whatever `Connection` names.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `true` for a hop-by-hop header, any `Proxy-*`, or one `Connection` names.
fn is_hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name)
        || name.starts_with("proxy-")
        || headers
            .get_all(header::CONNECTION)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// Client headers that may reach the upstream. Names with `_` are dropped too: some servers
/// read `X_User_Id` as `X-User-Id`, so they could smuggle an identity header past this filter.
/// Trace context (`traceparent`, `tracestate`, `baggage`) is the gateway's to set (see
/// [`handle`]).
fn forwardable_request_header(name: &HeaderName, headers: &HeaderMap) -> bool {
    let n = name.as_str();
    !(is_hop_by_hop(name, headers)
        || trace::is_trace_header(name)
        || n.contains('_')
        || n == "authorization"
        || n == "cookie"
        || n == "host"
        || n == "content-length"
        || n == "expect"
        || n == "forwarded"
        || n == "x-real-ip"
        || n == "x-request-id"
        || n.starts_with("x-forwarded-"))
}

/// Upstream response headers that may reach the client.
fn forwardable_response_header(name: &HeaderName, headers: &HeaderMap) -> bool {
    !(is_hop_by_hop(name, headers) || name == header::CONTENT_LENGTH)
}

/// The default service: forwards what the rewrite table sends upstream; 404 otherwise.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    session: UserSession,
    proxy: web::Data<Proxy>,
    client: web::Data<awc::Client>,
    request_id: RequestId,
) -> Result<HttpResponse, Error> {
    let settings = &proxy.settings;
    let (rule, url, inject_token, pass_cookies) =
        match settings.rules.decide(req.path(), req.query_string()) {
            Decision::Upstream {
                rule,
                url,
                inject_token,
                pass_cookies,
            } => (rule, url, inject_token, pass_cookies),
            Decision::Gateway => {
                return Err(Problem::not_found("There is no such /api/auth action.").into());
            }
            Decision::NoMatch => {
                return Err(Problem::not_found("Nothing is served at this path.").into());
            }
        };
    // Forwarded bodies stream under the proxy's own limits, not the gateway's body deadline.
    crate::deadline::lift(&req);
    let max_body = settings.max_body_bytes;
    if content_length(&req).is_some_and(|len| len > max_body) {
        return Err(Error::BodyTooLarge { limit: max_body });
    }
    let user = session.user();
    let signed_in = user.is_some();
    let user_id = user.as_ref().map(|u| u.id);
    let token = match (inject_token, user) {
        (true, Some(user)) => Some(proxy.signer.sign(&Claims::new(user.id, user.email))?),
        _ => None,
    };
    let client_info = forwarded::client(&req, &proxy.trusted_proxies);
    let rule_metrics = proxy.metrics.rule(rule);
    let mut pending = Pending::new(rule_metrics);
    let hop = trace::span("proxy", SpanKind::Client);
    let build = || {
        let mut upstream = upstream_request(
            &client,
            &req,
            &url,
            token.as_deref(),
            &request_id,
            &client_info,
        );
        if pass_cookies && let Some(cookies) = filters::upstream_cookie(req.headers()) {
            upstream.headers_mut().insert(header::COOKIE, cookies);
        }
        // The trace goes on upstream; with tracing off, a trusted proxy's trace passes as it
        // came (nobody else's: see `forwardable_request_header`).
        if !hop.inject(upstream.headers_mut())
            && req
                .peer_addr()
                .is_some_and(|peer| proxy.trusted_proxies.contains(peer.ip()))
        {
            for name in &trace::HEADERS {
                for value in req.headers().get_all(name) {
                    upstream.headers_mut().append(name.clone(), value.clone());
                }
            }
        }
        upstream
    };
    let authenticated = token.is_some();
    let began = std::time::Instant::now();
    let sent = async {
        match send(build(), &req, payload, max_body).await {
            Err(Error::UpstreamUnreachable(e)) if retryable(&req) && failed_before_answer(&e) => {
                tracing::info!(error = %e, "the upstream connection failed before an answer; retrying once");
                build().send().await.map_err(|e| send_error(e, max_body))
            }
            sent => sent,
        }
    };
    let answered = tokio::time::timeout(settings.timeout, sent)
        .await
        .map_err(|_| Error::UpstreamTimeout)
        .flatten();
    let response = match answered {
        Ok(response) => {
            pending.settle(Outcome::Ok);
            if let Some(rule) = rule_metrics {
                rule.observe_upstream(began.elapsed().as_secs_f64());
            }
            hop.set(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
            response
        }
        Err(e) => {
            pending.settle(outcome_of(&e));
            hop.fail(e.to_string());
            return Err(e);
        }
    };
    drop(hop);
    // A signed-in user's open-ended stream lives only as long as their session (worked out
    // only for a body without a length: a sized one is bounded anyway).
    let session_check = || {
        signed_in
            .then(|| proxy.sessions.liveness(&req, user_id))
            .flatten()
            .map(|session| (session, settings.stream_session_check))
    };
    Ok(downstream_response(
        &req,
        response,
        Filter {
            pass_cookies,
            authenticated,
        },
        settings.stream_idle_timeout,
        session_check,
        (&proxy.shutdown, &proxy.metrics.open_streams),
    ))
}

/// How a failed proxied request ended, for `gateway_proxy_requests_total`.
fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::UpstreamTimeout => Outcome::Timeout,
        Error::UpstreamUnreachable(SendRequestError::Connect(_)) => Outcome::ConnectFailure,
        Error::UpstreamUnreachable(_) => Outcome::UpstreamError,
        _ => Outcome::ClientAbort,
    }
}

/// A request that may be sent twice: `GET`, `HEAD` or `OPTIONS` (idempotent, RFC 9110
/// section 9.2.2) without a body (no `Content-Length`, no `Transfer-Encoding`: nothing of the
/// client's was consumed by the first attempt).
fn retryable(req: &HttpRequest) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !req.headers().contains_key(header::CONTENT_LENGTH)
        && !req.headers().contains_key(header::TRANSFER_ENCODING)
}

/// The upstream connection failed before any of the answer was read: the connection was
/// refused or reset while connecting, writing the request failed, or the connection closed
/// (or was reset) before a byte of the response head arrived (a pooled keep-alive connection
/// the upstream closed as it went away). Not: a timeout (trying again would double the wait),
/// a TLS or DNS failure (the same again), a response head that broke off part-way or could
/// not be parsed (`bytes remaining on stream`: the upstream answered something).
fn failed_before_answer(e: &SendRequestError) -> bool {
    use std::io::ErrorKind;
    let lost = |kind: ErrorKind| {
        matches!(
            kind,
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::NotConnected
        )
    };
    match e {
        SendRequestError::Connect(ConnectError::Disconnected) => true,
        SendRequestError::Connect(ConnectError::Io(io)) => lost(io.kind()),
        SendRequestError::Send(io) => lost(io.kind()),
        SendRequestError::Response(actix_web::error::ParseError::Io(io)) => lost(io.kind()),
        _ => false,
    }
}

fn content_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn upstream_request(
    client: &awc::Client,
    req: &HttpRequest,
    url: &str,
    token: Option<&str>,
    request_id: &RequestId,
    client_info: &forwarded::Client,
) -> awc::ClientRequest {
    let mut upstream = client.request(req.method().clone(), url).no_decompress();
    let headers = upstream.headers_mut();
    for (name, value) in req.headers() {
        if forwardable_request_header(name, req.headers()) {
            headers.append(name.clone(), value.clone());
        }
    }
    // What the gateway believes (see `forwarded`: client headers only via a trusted proxy).
    if let Some(ip) = client_info.ip
        && let Ok(value) = HeaderValue::from_str(&ip.to_string())
    {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(client_info.proto),
    );
    if let Some(host) = &client_info.host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(web_common::request_id::HEADER, value);
    }
    if let Some(token) = token
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        headers.insert(header::AUTHORIZATION, value);
    }
    upstream
}

/// Sends the request, streaming the client's body when it has one (a chunked body is cut,
/// and answered 413, past `max_body` bytes).
async fn send(
    upstream: awc::ClientRequest,
    req: &HttpRequest,
    payload: web::Payload,
    max_body: u64,
) -> Result<awc::ClientResponse, Error> {
    let length = content_length(req);
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let sent = match length {
        Some(len) => upstream.send_body(SizedStream::new(len, payload)).await,
        None if chunked => {
            upstream
                .send_body(BodyStream::new(LimitedBody::new(payload, max_body)))
                .await
        }
        None => upstream.send().await,
    };
    sent.map_err(|e| send_error(e, max_body))
}

/// Whose fault a failed send was: the client's body (too large: 413; broken off or malformed
/// while it streamed: 400), or the upstream (too slow: 504; anything else: 502).
fn send_error(e: SendRequestError, max_body: u64) -> Error {
    match e {
        SendRequestError::Timeout => Error::UpstreamTimeout,
        SendRequestError::Body(body) => match body.downcast::<PayloadError>() {
            Ok(payload) => Error::ClientBody(*payload),
            Err(body) => match body.downcast::<BodyError>() {
                Ok(body) => match *body {
                    BodyError::TooLarge { .. } => Error::BodyTooLarge { limit: max_body },
                    BodyError::Payload(payload) => Error::ClientBody(payload),
                    other => Error::UpstreamUnreachable(SendRequestError::Body(Box::new(other))),
                },
                Err(body) => Error::UpstreamUnreachable(SendRequestError::Body(body)),
            },
        },
        e => {
            if let SendRequestError::Connect(ConnectError::Timeout) = e {
                tracing::warn!("connecting to the upstream timed out");
            }
            Error::UpstreamUnreachable(e)
        }
    }
}

/// What the response filter does beyond dropping hop-by-hop headers.
#[derive(Debug, Clone, Copy)]
struct Filter {
    /// The rule passes cookies: the upstream's `Set-Cookie`s may pass (minus the gateway's).
    pass_cookies: bool,
    /// A token was injected: no caching header from the upstream means `private, no-store`.
    authenticated: bool,
}

fn downstream_response<S>(
    req: &HttpRequest,
    upstream: awc::ClientResponse<S>,
    filter: Filter,
    idle: Duration,
    session_check: impl FnOnce() -> Option<(Liveness, Duration)>,
    (shutdown, open_streams): (&Shutdown, &IntGauge),
) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
{
    let status = upstream.status();
    let mut res = HttpResponse::build(status);
    let mut caching_decided = !filter.authenticated;
    for (name, value) in upstream.headers() {
        if !forwardable_response_header(name, upstream.headers())
            || (name == header::SET_COOKIE
                && !filters::upstream_may_set(value, filter.pass_cookies))
        {
            continue;
        }
        caching_decided = caching_decided || filters::is_caching_header(name);
        res.append_header((name.clone(), value.clone()));
    }
    if !caching_decided {
        res.insert_header((header::CACHE_CONTROL, filters::PRIVATE_NO_STORE));
    }
    let length = upstream
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let no_body = req.method() == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut res = match length {
        _ if no_body => res.finish(),
        Some(len) => res.body(SizedStream::new(
            len,
            GuardedBody::new(upstream, idle, None),
        )),
        None => {
            let event_stream = upstream
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = GuardedBody::new(upstream, idle, session_check()).counted(open_streams);
            match event_stream {
                true => res.body(BodyStream::new(body.ending_at(shutdown.stopped()))),
                false => res.body(BodyStream::new(body)),
            }
        }
    };
    res.extensions_mut().insert(Untouched);
    res.extensions_mut().insert(Route("proxy"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn credentials_hop_by_hop_and_forwarding_headers_are_not_forwarded() {
        let map = headers(&[("connection", "keep-alive, x-secret"), ("x-secret", "1")]);
        for name in [
            "authorization",
            "cookie",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "x-forwarded-for",
            "x-forwarded-host",
            "forwarded",
            "x-secret",
            "host",
            "x_forwarded_for",
            "x_user_id",
        ] {
            assert!(
                !forwardable_request_header(&HeaderName::from_static(name), &map),
                "{name}"
            );
        }
        for name in ["accept", "content-type", "user-agent", "if-none-match"] {
            assert!(
                forwardable_request_header(&HeaderName::from_static(name), &map),
                "{name}"
            );
        }
    }

    #[test]
    fn a_broken_client_body_is_the_clients_fault_and_an_upstream_failure_is_not() {
        let body = |e: Box<dyn std::error::Error>| send_error(SendRequestError::Body(e), 10);
        assert!(matches!(
            body(Box::new(PayloadError::Incomplete(None))),
            Error::ClientBody(_)
        ));
        assert!(matches!(
            body(Box::new(BodyError::Payload(
                PayloadError::EncodingCorrupted
            ))),
            Error::ClientBody(_)
        ));
        assert!(matches!(
            body(Box::new(BodyError::TooLarge { limit: 10 })),
            Error::BodyTooLarge { limit: 10 }
        ));
        assert!(matches!(
            body("something else".into()),
            Error::UpstreamUnreachable(_)
        ));
        assert!(matches!(
            send_error(SendRequestError::Timeout, 10),
            Error::UpstreamTimeout
        ));
        assert_eq!(
            actix_web::ResponseError::status_code(&body(Box::new(PayloadError::Incomplete(None)))),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn only_failures_before_any_answer_are_retried() {
        use std::io::{Error as IoError, ErrorKind};
        let io = |kind: ErrorKind| IoError::new(kind, "test");
        for e in [
            SendRequestError::Connect(ConnectError::Disconnected),
            SendRequestError::Connect(ConnectError::Io(io(ErrorKind::ConnectionRefused))),
            SendRequestError::Send(io(ErrorKind::BrokenPipe)),
            SendRequestError::Response(io(ErrorKind::ConnectionReset).into()),
        ] {
            assert!(failed_before_answer(&e), "{e:?}");
        }
        for e in [
            SendRequestError::Timeout,
            SendRequestError::Connect(ConnectError::Timeout),
            SendRequestError::Response(IoError::other("bytes remaining on stream").into()),
            SendRequestError::Response(actix_web::error::ParseError::Header),
            SendRequestError::Body("the client's body".into()),
        ] {
            assert!(!failed_before_answer(&e), "{e:?}");
        }
    }

    #[test]
    fn only_bodiless_get_head_and_options_are_retryable() {
        use actix_web::test::TestRequest;
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(retryable(
                &TestRequest::default()
                    .method(method.clone())
                    .to_http_request()
            ));
            let with_body = TestRequest::default()
                .method(method)
                .insert_header((header::CONTENT_LENGTH, "3"))
                .to_http_request();
            assert!(!retryable(&with_body));
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(!retryable(
                &TestRequest::default().method(method).to_http_request()
            ));
        }
        let chunked = TestRequest::get()
            .insert_header((header::TRANSFER_ENCODING, "chunked"))
            .to_http_request();
        assert!(!retryable(&chunked));
    }

    #[test]
    fn set_cookie_is_left_to_the_cookie_filter() {
        let map = headers(&[("connection", "close")]);
        assert!(forwardable_response_header(&header::SET_COOKIE, &map));
        assert!(!forwardable_response_header(&header::CONNECTION, &map));
        assert!(!forwardable_response_header(
            &header::TRANSFER_ENCODING,
            &map
        ));
    }
}
