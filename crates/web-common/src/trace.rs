//! OpenTelemetry traces: W3C Trace Context in and out, the spans both services make, and their
//! export by OTLP over HTTP/protobuf.
//!
//! [`Tracing`] is a service's tracer: off ([`Tracing::off`]) unless `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set. The request middleware ([`crate::request_id::middleware`]) starts a server span per
//! request ([`Tracing::server`]), continuing an incoming `traceparent` only when the service
//! trusts where it came from, and runs the request inside that span's [`Context`] (attached at
//! every poll, so `Context::current()` is the request's wherever its future runs). Below it:
//!
//! * [`span`] opens a child span of the current one, only when the trace is sampled (an
//!   unsampled trace makes no span beyond the request's, which carries its ids anyway);
//! * [`ChildSpan::inject`] writes its span's `traceparent` (and `tracestate`) on an outgoing
//!   request, sampled or not (an unsampled one: the request span's), so the next hop continues
//!   the same trace;
//! * [`SqlSpans`], a `tracing` layer, turns each of sqlx's statement events (`sqlx::query`)
//!   into a span of the statement (its first words as the name and its text, never its
//!   parameters), under the request that ran it; it asks for those events only while a sampled
//!   span is current, so unsampled requests never format them.
//!
//! Spans leave through the SDK's batch processor, which exports from a thread of its own and
//! drops spans when its queue is full: a request never waits for the collector.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;

/// The headers of W3C Trace Context and Baggage: what an untrusted client may not set.
pub const HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("baggage"),
];

/// `true` for `traceparent`, `tracestate` or `baggage`.
pub fn is_trace_header(name: &HeaderName) -> bool {
    HEADERS.contains(name)
}

/// Which traces are recorded (`OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSetting {
    /// Follow the caller's decision when there is a (trusted) caller (`parentbased_*`).
    pub parent_based: bool,
    /// The share of new traces recorded, 0 to 1 (`always_on`: 1, `always_off`: 0).
    pub ratio: f64,
}

impl Default for SamplerSetting {
    fn default() -> Self {
        Self {
            parent_based: true,
            ratio: 0.01,
        }
    }
}

impl SamplerSetting {
    /// Parses `OTEL_TRACES_SAMPLER`'s value and its argument (the ratio, for the
    /// `*traceidratio` samplers; default 1 as the specification says, except for our default
    /// sampler, whose default ratio is 0.01).
    pub fn parse(name: Option<&str>, arg: Option<&str>) -> Result<Self, String> {
        let ratio = |default: f64| -> Result<f64, String> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("the ratio {a:?} is not a number from 0 to 1")),
            }
        };
        let (parent_based, ratio) = match name.map(str::trim) {
            None => (true, ratio(0.01)?),
            Some("always_on") => (false, 1.0),
            Some("always_off") => (false, 0.0),
            Some("traceidratio") => (false, ratio(1.0)?),
            Some("parentbased_always_on") => (true, 1.0),
            Some("parentbased_always_off") => (true, 0.0),
            Some("parentbased_traceidratio") => (true, ratio(1.0)?),
            Some(other) => {
                return Err(format!(
                    "{other:?} is not one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ));
            }
        };
        Ok(Self {
            parent_based,
            ratio,
        })
    }

    fn sampler(self) -> Sampler {
        let root = if self.ratio >= 1.0 {
            Sampler::AlwaysOn
        } else if self.ratio <= 0.0 {
            Sampler::AlwaysOff
        } else {
            Sampler::TraceIdRatioBased(self.ratio)
        };
        if self.parent_based {
            Sampler::ParentBased(Box::new(root))
        } else {
            root
        }
    }
}

/// Where and how spans are exported (the standard `OTEL_*` variables; see
/// [`crate::settings::TelemetrySettings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL; `None`: tracing off.
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: sent with every export.
    pub headers: Vec<(String, String)>,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: one export's timeout.
    pub timeout: Duration,
    /// `OTEL_SERVICE_NAME`: the spans' `service.name` (`None`: the service's own name).
    pub service_name: Option<String>,
    /// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerSetting,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            service_name: None,
            sampler: SamplerSetting::default(),
        }
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP exporter: {0}")]
pub struct TraceError(String);

/// A service's tracer (off, or an SDK provider and its tracer). Cheap to clone.
#[derive(Clone, Default)]
pub struct Tracing {
    inner: Option<Arc<Active>>,
}

/// The tracer of the request a [`Context`] belongs to (a context value, so [`span`] and
/// [`SqlSpans`] find it from `Context::current()`).
#[derive(Debug)]
struct Active {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

#[derive(Debug, Clone)]
struct ActiveTracer(Arc<Active>);

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("on", &self.is_on())
            .finish()
    }
}

impl Tracing {
    /// No spans, no export.
    pub fn off() -> Self {
        Self::default()
    }

    /// The tracer `settings` ask for: off without an endpoint, else spans batched to
    /// `{endpoint}/v1/traces`. Call [`Tracing::shutdown`] at exit to send what is queued.
    pub fn start(settings: &TraceSettings, service: &'static str) -> Result<Self, TraceError> {
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
        let Some(endpoint) = &settings.endpoint else {
            return Ok(Self::off());
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .with_timeout(settings.timeout)
            .with_headers(settings.headers.iter().cloned().collect())
            .build()
            .map_err(|e| TraceError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(settings.sampler.sampler())
            .with_resource(resource(settings, service))
            .build();
        Ok(Self::with_provider(provider))
    }

    /// A tracer exporting each span as it ends to `exporter` (tests: the SDK's in-memory
    /// exporter), sampled as `sampler` says.
    pub fn with_exporter(
        exporter: impl SpanExporter + 'static,
        sampler: SamplerSetting,
        service: &'static str,
    ) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_sampler(sampler.sampler())
            .with_resource(resource(&TraceSettings::default(), service))
            .build();
        Self::with_provider(provider)
    }

    fn with_provider(provider: SdkTracerProvider) -> Self {
        let tracer = provider.tracer("gateway-stack");
        Self {
            inner: Some(Arc::new(Active { provider, tracer })),
        }
    }

    /// Whether spans are made at all.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Starts a request's server span named `name`: a child of the trace in `incoming`'s
    /// `traceparent` when given (the caller decided it may be trusted), a new trace otherwise.
    /// `None` when tracing is off.
    pub fn server(&self, name: Cow<'static, str>, incoming: Option<&HeaderMap>) -> Option<Context> {
        let active = self.inner.as_ref()?;
        let parent = match incoming.and_then(incoming_context) {
            Some(remote) => Context::new().with_remote_span_context(remote),
            None => Context::new(),
        };
        let span = active
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&active.tracer, &parent);
        let sampled = span.span_context().is_sampled();
        let cx = parent.with_span(span);
        // Child spans are made only in sampled traces: only they need the tracer at hand (an
        // unsampled request saves the context's value map).
        Some(if sampled {
            cx.with_value(ActiveTracer(Arc::clone(active)))
        } else {
            cx
        })
    }

    /// Sends the spans still queued and stops the exporter (at exit).
    pub fn shutdown(&self) {
        if let Some(active) = &self.inner
            && let Err(e) = active.provider.shutdown()
        {
            tracing::debug!(error = %e, "the trace exporter did not shut down cleanly");
        }
    }
}

fn resource(settings: &TraceSettings, service: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(
            settings
                .service_name
                .clone()
                .unwrap_or_else(|| service.to_owned()),
        )
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The trace id of `cx`, shown as 32 hex digits (for log lines).
pub fn trace_id(cx: &Context) -> opentelemetry::trace::TraceId {
    cx.span().span_context().trace_id()
}

/// Ends the request span of `cx` with the answer's status (an error from 500 on).
pub fn end_server(cx: &Context, route: &str, method: &str, status: u16) {
    let span = cx.span();
    if span.is_recording() {
        span.update_name(format!("{method} {route}"));
        span.set_attributes([
            KeyValue::new("http.request.method", method.to_owned()),
            KeyValue::new("http.route", route.to_owned()),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ]);
        if status >= 500 {
            span.set_status(Status::error(""));
        }
    }
    span.end();
}

/// A child span of the current one (see [`span`]); ends when dropped.
#[derive(Debug)]
pub struct ChildSpan {
    cx: Option<Context>,
}

impl ChildSpan {
    /// Runs `work` inside this span (its own spans and SQL statements become its children).
    pub async fn within<F: std::future::Future>(&self, work: F) -> F::Output {
        use opentelemetry::trace::FutureExt as _;
        match &self.cx {
            Some(cx) => work.with_context(cx.clone()).await,
            None => work.await,
        }
    }

    /// Writes this span's `traceparent` into `headers` (the current one's when no span was
    /// made: an unsampled trace goes on with the request span's ids); `false` when there is
    /// no trace at all.
    pub fn inject(&self, headers: &mut HeaderMap) -> bool {
        match &self.cx {
            Some(cx) => inject_from(cx, headers),
            None => inject(headers),
        }
    }

    /// Adds an attribute (when the span records).
    pub fn set(&self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(cx) = &self.cx {
            cx.span().set_attribute(KeyValue::new(key, value));
        }
    }

    /// Marks the span failed, with `description`.
    pub fn fail(&self, description: impl Into<Cow<'static, str>>) {
        if let Some(cx) = &self.cx {
            cx.span().set_status(Status::error(description));
        }
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}

/// Opens a child span of the current span named `name` when the current trace is sampled
/// and traced by this service; otherwise a no-op span (nothing is allocated).
pub fn span(name: &'static str, kind: SpanKind) -> ChildSpan {
    let cx = Context::map_current(|cx| {
        let active = cx.get::<ActiveTracer>()?;
        if !cx.span().span_context().is_sampled() {
            return None;
        }
        let tracer = &active.0.tracer;
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(tracer, cx);
        Some(cx.with_span(span))
    });
    ChildSpan { cx }
}

/// Writes the current span's `traceparent` (and a non-empty `tracestate`) into `headers`,
/// whether or not it is sampled; `false` (nothing written) when no span is current.
fn inject(headers: &mut HeaderMap) -> bool {
    Context::map_current(|cx| inject_from(cx, headers))
}

/// Writes `cx`'s span as `traceparent` (`00-{trace id}-{span id}-{flags}`, W3C Trace Context
/// level 1, lower-case hex) and its `tracestate` when it has one. Written here rather than by
/// the SDK's propagator, which formats a `String` and parses the header name on every request.
fn inject_from(cx: &Context, headers: &mut HeaderMap) -> bool {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return false;
    }
    let mut value = [0u8; 55];
    value[..3].copy_from_slice(b"00-");
    let _ = hex::encode_to_slice(sc.trace_id().to_bytes(), &mut value[3..35]);
    value[35] = b'-';
    let _ = hex::encode_to_slice(sc.span_id().to_bytes(), &mut value[36..52]);
    value[52] = b'-';
    value[53..].copy_from_slice(if sc.is_sampled() { b"01" } else { b"00" });
    if let Ok(value) = HeaderValue::from_bytes(&value) {
        headers.insert(HEADERS[0].clone(), value);
    }
    let state = sc.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = HeaderValue::from_str(&state)
    {
        headers.insert(HEADERS[1].clone(), value);
    }
    true
}

/// The caller's span from its `traceparent` (and `tracestate`), when well formed.
fn incoming_context(headers: &HeaderMap) -> Option<SpanContext> {
    let (trace_id, span_id, flags) = parse_traceparent(headers.get(&HEADERS[0])?.as_bytes())?;
    let state = match headers.get(&HEADERS[1]).map(HeaderValue::to_str) {
        None => TraceState::default(),
        Some(Ok(value)) => TraceState::from_str(value).unwrap_or_default(),
        Some(Err(_)) => TraceState::default(),
    };
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// `traceparent` as W3C Trace Context level 1 reads it: `{version}-{trace id}-{parent id}-{flags}`
/// in lower-case hex; version `ff` and all-zero ids are invalid; a later version may append
/// `-...` fields, which are ignored. (Parsed here rather than by the SDK's propagator, which
/// splits, allocates and looks each header name up again on every request.)
fn parse_traceparent(value: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
        let lower = text
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        let mut out = [0u8; N];
        (lower && text.len() == 2 * N && hex::decode_to_slice(text, &mut out).is_ok())
            .then_some(out)
    }
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let [version] = hex::<1>(&value[..2])?;
    if version == 0xff
        || (version == 0 && value.len() != 55)
        || (value.len() > 55 && value[55] != b'-')
    {
        return None;
    }
    let trace_id = TraceId::from_bytes(hex::<16>(&value[3..35])?);
    let span_id = SpanId::from_bytes(hex::<8>(&value[36..52])?);
    let [flags] = hex::<1>(&value[53..55])?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// Whether the current context is a sampled span of a service that traces.
fn sampling_now() -> bool {
    Context::map_current(|cx| {
        cx.get::<ActiveTracer>().is_some() && cx.span().span_context().is_sampled()
    })
}

/// The `tracing` layer that makes a span of each SQL statement (see the module's text).
/// Install it with its filter, [`SqlSpans::filter`], so sqlx builds its statement events only
/// for sampled requests.
#[derive(Debug, Default)]
pub struct SqlSpans;

impl SqlSpans {
    /// The layer's own filter: sqlx's statement events, while a sampled span is current. Every
    /// other call site is `never` for this layer once and for all, so the per-request question
    /// is asked only where sqlx logs a statement (asking it everywhere, as a filter that
    /// answers `sometimes` does, cost the gateway about 10,000 instructions per request).
    pub fn filter<S: tracing::Subscriber>() -> impl tracing_subscriber::layer::Filter<S> {
        tracing_subscriber::filter::DynFilterFn::new(|meta, _| {
            meta.target() == "sqlx::query" && sampling_now()
        })
        .with_callsite_filter(|meta| {
            if meta.target() == "sqlx::query" {
                tracing::subscriber::Interest::sometimes()
            } else {
                tracing::subscriber::Interest::never()
            }
        })
    }
}

impl<S: tracing::Subscriber> Layer<S> for SqlSpans {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut fields = Statement::default();
        event.record(&mut fields);
        let ended = SystemTime::now();
        let started = ended
            .checked_sub(Duration::from_secs_f64(fields.elapsed_secs.max(0.0)))
            .unwrap_or(ended);
        Context::map_current(|cx| {
            let Some(active) = cx.get::<ActiveTracer>() else {
                return;
            };
            if !cx.span().span_context().is_sampled() {
                return;
            }
            let tracer = &active.0.tracer;
            let name = fields.summary.trim_end_matches(" …").to_owned();
            let text = if fields.statement.trim().is_empty() {
                name.clone()
            } else {
                fields.statement.trim().to_owned()
            };
            let mut attributes = vec![
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", text),
            ];
            if let Some(rows) = fields.rows_returned {
                attributes.push(KeyValue::new("db.response.returned_rows", rows));
            }
            let mut span = tracer
                .span_builder(name)
                .with_kind(SpanKind::Client)
                .with_start_time(started)
                .with_attributes(attributes)
                .start_with_context(tracer, cx);
            span.end_with_timestamp(ended);
        });
    }
}

/// The fields of one of sqlx's statement events.
#[derive(Default)]
struct Statement {
    summary: String,
    statement: String,
    rows_returned: Option<i64>,
    elapsed_secs: f64,
}

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = i64::try_from(value).ok();
        }
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.summary.is_empty() {
            self.summary = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_as_w3c_trace_context_says() {
        let good = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let (trace, span, flags) = parse_traceparent(good).unwrap();
        assert_eq!(trace.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span.to_string(), "b7ad6b7169203331");
        assert!(flags.is_sampled());
        let (.., flags) =
            parse_traceparent(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02").unwrap();
        assert!(!flags.is_sampled(), "only the sampled bit is kept");
        // A later version may add fields.
        assert!(
            parse_traceparent(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")
                .is_some()
        );
        for bad in [
            &b"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"[..],
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
            b"00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            b"00-xaf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"",
        ] {
            assert!(
                parse_traceparent(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn what_is_injected_reads_back() {
        let mut headers = HeaderMap::new();
        let remote = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_str("vendor=value").unwrap(),
        );
        assert!(inject_from(
            &Context::new().with_remote_span_context(remote.clone()),
            &mut headers
        ));
        assert_eq!(
            headers.get("traceparent").unwrap(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(headers.get("tracestate").unwrap(), "vendor=value");
        assert_eq!(incoming_context(&headers).unwrap(), remote);
        assert!(!inject_from(&Context::new(), &mut HeaderMap::new()));
    }

    #[test]
    fn the_sampler_settings_parse_as_the_specification_says() {
        assert_eq!(
            SamplerSetting::parse(None, None).unwrap(),
            SamplerSetting::default()
        );
        let s = |n: &str, a: Option<&str>| SamplerSetting::parse(Some(n), a).unwrap();
        assert_eq!(s("always_on", None).ratio, 1.0);
        assert_eq!(s("always_off", None).ratio, 0.0);
        assert_eq!(s("traceidratio", None).ratio, 1.0);
        assert_eq!(s("traceidratio", Some("0.25")).ratio, 0.25);
        assert!(!s("traceidratio", Some("0.25")).parent_based);
        assert!(s("parentbased_traceidratio", Some("0.5")).parent_based);
        assert_eq!(s("parentbased_always_off", None).ratio, 0.0);
        assert_eq!(SamplerSetting::parse(None, Some("0.2")).unwrap().ratio, 0.2);
        for (name, arg) in [
            ("sometimes", None),
            ("traceidratio", Some("2")),
            ("traceidratio", Some("x")),
        ] {
            assert!(
                SamplerSetting::parse(Some(name), arg).is_err(),
                "{name} {arg:?}"
            );
        }
    }
}
