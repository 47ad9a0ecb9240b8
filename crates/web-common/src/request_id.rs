//! `x-request-id`: honoured when a caller (the gateway, a load balancer) sends a sane one,
//! generated otherwise, returned on every response, and carried by the request's span so every
//! log line of the request can be found by it.
//!
//! The same middleware observes the request for operators ([`Observer`]): its metrics
//! (`http_requests_total`, `http_request_duration_seconds` by route pattern, method and status
//! class, and `http_requests_in_flight`) and its trace (a server span, continuing an incoming
//! `traceparent` only from a caller the service trusts, whose `trace_id` every log line of the
//! request carries).

use std::borrow::Cow;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use opentelemetry::trace::FutureExt as _;
use tracing::Instrument;

use crate::metrics::{Metrics, Route, RouteSeries, method_label};
use crate::trace::{self, Tracing};

/// The header's name.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id that is honoured.
const MAX_LEN: usize = 128;

/// The id of the current request. Also an extractor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Rc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh id (a UUIDv7, so ids sort by time).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// An incoming id, when it is short and made of safe characters (it ends up in logs and
    /// headers, so anything else is replaced).
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let s = value.to_str().ok()?;
        let ok = !s.is_empty()
            && s.len() <= MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        ok.then(|| Self(s.into()))
    }
}

impl FromRequest for RequestId {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        ready(Ok(id.unwrap_or_else(RequestId::generate)))
    }
}

/// Whether a request's incoming `traceparent` may be continued (the gateway: only from its
/// trusted proxies; the backend: from the gateway, the only caller it serves).
pub type TrustTrace = Arc<dyn Fn(&ServiceRequest) -> bool + Send + Sync>;

/// What the request middleware records besides the id: the request metrics and the trace.
pub struct Observer {
    metrics: Metrics,
    tracing: Tracing,
    /// The series of requests no route matched (the gateway: every proxied request).
    unmatched: RouteSeries,
    trust: TrustTrace,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("tracing", &self.tracing)
            .field("unmatched", &self.unmatched.label())
            .finish_non_exhaustive()
    }
}

impl Observer {
    /// Records into `metrics` and traces with `tracing`. A request no route matched is labelled
    /// `unmatched` (the gateway's proxied requests: `proxy`); `trust` says whose `traceparent`
    /// is continued.
    pub fn new(
        metrics: Metrics,
        tracing: Tracing,
        unmatched: &'static str,
        trust: TrustTrace,
    ) -> Self {
        Self {
            unmatched: metrics.http().route(unmatched),
            metrics,
            tracing,
            trust,
        }
    }
}

/// Middleware: sets the request id, runs the request in a span carrying it (and, when tracing,
/// in its trace), logs its outcome, records its metrics, and returns the id in the response's
/// `x-request-id`.
pub async fn middleware(
    observer: Arc<Observer>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.path(),
        request_id = %id.as_str(),
        trace_id = tracing::field::Empty,
    );
    let http = observer.metrics.http();
    let _in_flight = http.start();
    let started = Instant::now();
    let trace = observer.tracing.is_on().then(|| {
        let incoming = (observer.trust)(&req).then(|| req.headers());
        observer
            .tracing
            .server(Cow::Borrowed(method_label(&method)), incoming)
    });
    let trace = trace.flatten();
    if let Some(cx) = &trace {
        span.record("trace_id", tracing::field::display(trace::trace_id(cx)));
    }
    let served = next.call(req).instrument(span.clone());
    let served = match &trace {
        Some(cx) => served.with_context(cx.clone()).await,
        None => served.await,
    };
    let elapsed = started.elapsed();
    let unmatched = observer.unmatched.label();
    let (status, route) = match &served {
        Ok(res) => {
            let known = res.response().extensions().get::<Route>().copied();
            let route = match known {
                Some(Route(label)) => Cow::Borrowed(label),
                None => res
                    .request()
                    .match_pattern()
                    .map_or(Cow::Borrowed(unmatched), Cow::Owned),
            };
            (res.status().as_u16(), route)
        }
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            Cow::Borrowed(unmatched),
        ),
    };
    if route == unmatched {
        observer.unmatched.observe(&method, status, elapsed);
    } else {
        http.observe(&route, &method, status, elapsed);
    }
    if let Some(cx) = &trace {
        trace::end_server(cx, &route, method_label(&method), status);
    }
    let mut res = served?;
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, web};
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;
    use crate::trace::SamplerSetting;

    /// Log lines written into memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    async fn logs_of_one_request(trusted: bool, sampled: bool) -> (Vec<serde_json::Value>, String) {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let sampler = SamplerSetting {
            parent_based: true,
            ratio: if sampled { 1.0 } else { 0.0 },
        };
        let tracing =
            Tracing::with_exporter(InMemorySpanExporter::default(), sampler, "test-service");
        let metrics = Metrics::new("test-service");
        let observer = Arc::new(Observer::new(
            metrics.clone(),
            tracing,
            "unmatched",
            Arc::new(move |_| trusted),
        ));
        let app = init_service(
            App::new()
                .route(
                    "/items/{id}",
                    web::get().to(|| async {
                        tracing::info!("inside the handler");
                        "ok"
                    }),
                )
                .wrap(from_fn(move |req, next| {
                    middleware(observer.clone(), req, next)
                })),
        )
        .await;
        let res = call_service(
            &app,
            TestRequest::get()
                .uri("/items/42")
                .insert_header(("x-request-id", "req-1"))
                .insert_header(("traceparent", format!("00-{TRACE}-b7ad6b7169203331-01")))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logs = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (logs, metrics.render())
    }

    #[actix_web::test]
    async fn every_log_line_of_a_traced_request_carries_its_trace_id_and_request_id() {
        for sampled in [true, false] {
            let (logs, _) = logs_of_one_request(true, sampled).await;
            assert_eq!(logs.len(), 2, "{logs:?}");
            for line in &logs {
                assert_eq!(line["span"]["trace_id"], TRACE, "{line}");
                assert_eq!(line["span"]["request_id"], "req-1", "{line}");
            }
        }
        // Untrusted: a trace of its own, still on every line.
        let (logs, _) = logs_of_one_request(false, true).await;
        let own = logs[0]["span"]["trace_id"].as_str().unwrap().to_owned();
        assert_eq!(own.len(), 32);
        assert_ne!(own, TRACE);
        assert!(logs.iter().all(|l| l["span"]["trace_id"] == own.as_str()));
    }

    #[actix_web::test]
    async fn a_request_is_counted_by_its_route_pattern_never_its_path() {
        let (_, text) = logs_of_one_request(true, false).await;
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/items/{id}",status_class="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"http_request_duration_seconds_count{method="GET",route="/items/{id}",status_class="2xx"} 1"#
        ));
        assert!(text.contains("http_requests_in_flight 0"));
        assert!(!text.contains("/items/42"));
    }
}
