//! Metrics and traces: what operators see of both services.
//!
//! * `/metrics` of the gateway and the backend, on listeners of their own, pass
//!   `promtool check metrics` and move as requests are made;
//! * their label values come from fixed sets, whatever paths clients send;
//! * one trace runs from the gateway to the backend's SQL statements (the SDK's in-memory
//!   exporter), the upstream receives a valid `traceparent`, an untrusted client's is not
//!   continued, an unsampled trace still propagates, and the OTLP exporter reaches a local
//!   receiver.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use prost::Message;
use serde_json::{Value, json};
use uuid::Uuid;
use web_common::trace::{SamplerSetting, TraceSettings, Tracing};

use crate::helpers::{Observed, TestApp, Upstream};
use crate::upstream;

/// Every trace recorded (and continued: the gateway's decision is followed by the backend).
const ALWAYS: SamplerSetting = SamplerSetting {
    parent_based: true,
    ratio: 1.0,
};

/// A tracer exporting to memory, and the exporter to read.
fn in_memory(sampler: SamplerSetting, service: &'static str) -> (Tracing, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    (
        Tracing::with_exporter(exporter.clone(), sampler, service),
        exporter,
    )
}

async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.expect("/metrics answers");
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    res.text().await.unwrap()
}

/// The value of the series `series` (its name and labels exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            (name == series).then(|| v.parse().unwrap())
        })
        .unwrap_or(0.0)
}

/// The exposed series (name and labels), without comments.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
        .collect()
}

/// `promtool check metrics` (Debian's `prometheus` package) accepts `text`.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; `just test` and .ci/run install it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` for up to 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn both_services_export_valid_metrics_that_move_with_requests() {
    let app = TestApp::spawn_observed(Upstream::Backend, Observed::metrics_only(), |_| {}).await;
    let gateway = app.metrics.clone().expect("the gateway's /metrics");
    let backend = app.backend_metrics.clone().expect("the backend's /metrics");
    let g0 = scrape(&gateway).await;
    let b0 = scrape(&backend).await;

    let (ada, _) = app.signed_in("ada@example.com").await;
    for _ in 0..2 {
        assert_eq!(ada.get("/api/workspaces").await.status(), 200);
    }
    let wrong = app
        .browser()
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    // No session: no token, so the backend refuses it (reason `missing`).
    assert_eq!(app.browser().get("/api/me").await.status(), 401);
    // A viewer may not rename: a role denial.
    let created: Value = ada
        .post_json("/api/workspaces", &json!({"name": "Analytical Engine"}))
        .await
        .json()
        .await
        .unwrap();
    let workspace = created["id"].as_str().unwrap().to_owned();
    let (grace, grace_id) = app.signed_in("grace@example.com").await;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'viewer')",
    )
    .bind(Uuid::parse_str(&workspace).unwrap())
    .bind(grace_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let renamed = grace
        .send(
            grace
                .request(
                    reqwest::Method::PATCH,
                    &format!("/api/workspaces/{workspace}"),
                )
                .json(&json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(renamed.status(), 403);
    // Signing out ends a session: every instance hears of it.
    assert_eq!(ada.sign_out().await.status(), 200);

    let moved =
        |text: &str, before: &str, series: &str| value(text, series) - value(before, series);
    eventually("the gateway hears of the ended session", async || {
        let g = scrape(&gateway).await;
        moved(&g, &g0, "gateway_session_revocations_received_total") >= 1.0
    })
    .await;
    let g1 = scrape(&gateway).await;
    let b1 = scrape(&backend).await;
    promtool_accepts(&g1);
    promtool_accepts(&b1);

    let proxied_ok = r#"gateway_proxy_requests_total{outcome="ok",rule="/api/:path*"}"#;
    assert!(moved(&g1, &g0, proxied_ok) >= 5.0, "{g1}");
    assert!(
        moved(
            &g1,
            &g0,
            r#"http_requests_total{method="GET",route="proxy",status_class="2xx"}"#
        ) >= 2.0
    );
    assert!(
        moved(
            &g1,
            &g0,
            r#"http_requests_total{method="POST",route="/api/auth/signin",status_class="4xx"}"#
        ) == 1.0,
        "{g1}"
    );
    assert!(
        moved(
            &g1,
            &g0,
            r#"gateway_proxy_upstream_duration_seconds_count{rule="/api/:path*"}"#
        ) >= 5.0
    );
    let loads = moved(&g1, &g0, r#"gateway_session_loads_total{result="miss"}"#)
        + moved(
            &g1,
            &g0,
            r#"gateway_session_loads_total{result="cache_hit"}"#,
        );
    assert!(loads >= 4.0, "{g1}");
    assert_eq!(
        moved(
            &g1,
            &g0,
            r#"gateway_session_loads_total{result="db_error"}"#
        ),
        0.0
    );
    assert_eq!(
        moved(
            &g1,
            &g0,
            r#"gateway_sign_in_attempts_total{method="credentials",outcome="success"}"#
        ),
        2.0
    );
    assert_eq!(
        moved(
            &g1,
            &g0,
            r#"gateway_sign_in_attempts_total{method="credentials",outcome="failure"}"#
        ),
        1.0
    );
    // Two registrations and three sign-ins: five hashes or checks.
    assert!(moved(&g1, &g0, "gateway_password_hash_duration_seconds_count") >= 5.0);
    assert_eq!(value(&g1, "gateway_password_hash_queue_depth"), 0.0);
    assert_eq!(value(&g1, "gateway_open_streams"), 0.0);
    assert_eq!(value(&g1, "http_requests_in_flight"), 0.0);
    assert_eq!(
        value(&g1, r#"db_pool_max_connections{pool="main"}"#),
        3.0,
        "{g1}"
    );
    assert!(g1.contains(r#"db_pool_connections{pool="main",state="idle"}"#));
    assert!(g1.contains(r#"build_info{commit=""#));
    assert!(g1.contains(r#"service="frontend-gateway""#));
    assert!(value(&g1, "process_resident_memory_bytes") > 0.0);

    assert!(
        moved(
            &b1,
            &b0,
            r#"http_requests_total{method="GET",route="/workspaces",status_class="2xx"}"#
        ) >= 2.0,
        "{b1}"
    );
    assert_eq!(
        moved(
            &b1,
            &b0,
            r#"backend_token_verification_failures_total{reason="missing"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(&b1, &b0, r#"backend_role_denials_total{required="admin"}"#),
        1.0
    );
    for state in ["idle", "in_use", "waiting"] {
        assert!(
            b1.contains(&format!(
                r#"db_pool_connections{{pool="lane",state="{state}"}}"#
            )),
            "{state}: {b1}"
        );
    }
    assert!(b1.contains(r#"service="backend-api""#));

    // Never on the public port.
    let public = app.browser().get("/metrics").await;
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("http_requests_total"));
    // Nothing else on the metrics port.
    let other = reqwest::get(gateway.replace("/metrics", "/healthz"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn the_proxys_failures_and_open_streams_are_counted_by_outcome() {
    let echo = upstream::spawn();
    let app = TestApp::spawn_observed(Upstream::Url(echo), Observed::metrics_only(), |s| {
        s.proxy.timeout = Duration::from_secs(1)
    })
    .await;
    let gateway = app.metrics.clone().unwrap();
    let outcome =
        |o: &str| format!(r#"gateway_proxy_requests_total{{outcome="{o}",rule="/api/:path*"}}"#);
    let before = scrape(&gateway).await;
    assert_eq!(app.browser().get("/api/stall").await.status(), 504);
    let events = app.browser().get("/api/events").await;
    assert_eq!(events.status(), 200);
    eventually("the open stream is counted", async || {
        value(&scrape(&gateway).await, "gateway_open_streams") == 1.0
    })
    .await;
    drop(events);
    eventually("the closed stream is no longer counted", async || {
        value(&scrape(&gateway).await, "gateway_open_streams") == 0.0
    })
    .await;
    let after = scrape(&gateway).await;
    assert_eq!(
        value(&after, &outcome("timeout")) - value(&before, &outcome("timeout")),
        1.0
    );
    assert_eq!(
        value(&after, &outcome("ok")) - value(&before, &outcome("ok")),
        1.0
    );

    // Nothing listening: a connect failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = TestApp::spawn_observed(Upstream::Url(url), Observed::metrics_only(), |_| {}).await;
    assert_eq!(down.browser().get("/api/anything").await.status(), 502);
    let text = scrape(down.metrics.as_deref().unwrap()).await;
    assert_eq!(value(&text, &outcome("connect_failure")), 1.0, "{text}");
    promtool_accepts(&text);
}

#[tokio::test]
async fn label_values_stay_bounded_whatever_paths_clients_send() {
    let app = TestApp::spawn_observed(Upstream::Backend, Observed::metrics_only(), |_| {}).await;
    let (ada, _) = app.signed_in("ada@example.com").await;
    // Every route of both services (the backend's through the gateway), with ids and junk
    // that differ from round to round, and methods no route has.
    let round = async |junk: &str| -> Uuid {
        let id = Uuid::new_v4();
        let paths = [
            "/".to_owned(),
            "/signin".to_owned(),
            "/register".to_owned(),
            format!("/workspaces/{id}"),
            "/api/auth/csrf".to_owned(),
            "/api/auth/session".to_owned(),
            "/api/auth/providers".to_owned(),
            format!("/api/auth/signin/{junk}"),
            format!("/api/auth/callback/{junk}"),
            format!("/api/auth/error?error={junk}"),
            format!("/api/auth/{junk}"),
            "/api/me".to_owned(),
            "/api/workspaces".to_owned(),
            format!("/api/workspaces/{id}"),
            format!("/api/workspaces/{id}/members"),
            format!("/api/workspaces/{id}/members/{}", Uuid::new_v4()),
            format!("/api/workspaces/{id}/invitations"),
            format!("/api/workspaces/{junk}"),
            "/api/invitations".to_owned(),
            format!("/api/invitations/{id}/accept"),
            "/api/openapi.json".to_owned(),
            format!("/api/{junk}/{junk}"),
            format!("/{junk}"),
            format!("/{junk}/{junk}.js"),
            "/healthz".to_owned(),
            "/readyz".to_owned(),
        ];
        for path in &paths {
            for method in ["GET", "POST", "DELETE", "PURGE"] {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                ada.send(ada.request(method, path)).await;
            }
        }
        id
    };
    let mut ids = vec![round("first-a1b2c3").await];
    let g1 = scrape(app.metrics.as_deref().unwrap()).await;
    let b1 = scrape(app.backend_metrics.as_deref().unwrap()).await;
    ids.push(round("second-d4e5f6").await);
    ids.push(round("third-789abc").await);
    let g2 = scrape(app.metrics.as_deref().unwrap()).await;
    let b2 = scrape(app.backend_metrics.as_deref().unwrap()).await;
    assert_eq!(series(&g1), series(&g2), "the gateway's series grew");
    assert_eq!(series(&b1), series(&b2), "the backend's series grew");
    for text in [&g2, &b2] {
        for junk in ["a1b2c3", "d4e5f6", "789abc", "ada@", "/api/workspaces/"] {
            assert!(!text.contains(junk), "{junk} in a label: {text}");
        }
        for id in &ids {
            assert!(!text.contains(&id.to_string()), "{id} in a label");
        }
        assert!(text.contains(r#"method="other""#));
        promtool_accepts(text);
    }
    // Bounded, and small: route patterns x methods x status classes.
    assert!(series(&g2).len() < 1500, "{}", series(&g2).len());
    assert!(series(&b2).len() < 1500, "{}", series(&b2).len());
}

/// The spans named `name`.
fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name:?} span among {:?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn a_proxied_request_is_one_trace_from_the_gateway_to_the_backends_sql() {
    let (gateway, g) = in_memory(ALWAYS, "frontend-gateway");
    let (backend, b) = in_memory(ALWAYS, "backend-api");
    let app = TestApp::spawn_observed(
        Upstream::Backend,
        Observed { gateway, backend },
        // Every request reads its session from Postgres.
        |s| s.session.cache_ttl = Duration::ZERO,
    )
    .await;
    let (ada, ada_id) = app.signed_in("ada@example.com").await;
    // The sign-in checked the password inside its own trace.
    let signed_in = g.get_finished_spans().unwrap();
    let sign_in = one(&signed_in, "POST /api/auth/signin");
    let hashing: Vec<_> = named(&signed_in, "password.hash")
        .into_iter()
        .filter(|s| s.span_context.trace_id() == sign_in.span_context.trace_id())
        .collect();
    assert_eq!(hashing.len(), 1, "{:?}", names(&signed_in));
    assert_eq!(hashing[0].parent_span_id, sign_in.span_context.span_id());
    g.reset();
    b.reset();
    assert_eq!(ada.get("/api/workspaces").await.status(), 200);
    eventually("both services end their spans", async || {
        let (gs, bs) = (
            g.get_finished_spans().unwrap(),
            b.get_finished_spans().unwrap(),
        );
        !named(&gs, "GET proxy").is_empty() && !named(&bs, "GET /workspaces").is_empty()
    })
    .await;
    let gs = g.get_finished_spans().unwrap();
    let bs = b.get_finished_spans().unwrap();

    let server = one(&gs, "GET proxy");
    let trace = server.span_context.trace_id();
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, SpanId::INVALID, "a new trace");
    let hop = one(&gs, "proxy");
    assert_eq!(hop.span_kind, SpanKind::Client);
    assert_eq!(hop.parent_span_id, server.span_context.span_id());
    assert_eq!(
        attribute(hop, "http.response.status_code").as_deref(),
        Some("200")
    );
    let load = one(&gs, "session.load");
    assert_eq!(load.parent_span_id, server.span_context.span_id());
    // The session's own statement, under the load, by its text (placeholders, no values).
    let session_sql: Vec<_> = gs
        .iter()
        .filter(|s| s.parent_span_id == load.span_context.span_id())
        .collect();
    assert!(!session_sql.is_empty(), "{:?}", names(&gs));
    assert!(session_sql.iter().all(|s| {
        attribute(s, "db.system.name").as_deref() == Some("postgresql")
            && attribute(s, "db.query.text")
                .is_some_and(|q| q.contains("FROM sessions") && q.contains("$1"))
    }));

    let handled = one(&bs, "GET /workspaces");
    assert_eq!(handled.span_kind, SpanKind::Server);
    assert_eq!(handled.span_context.trace_id(), trace, "the same trace");
    assert_eq!(
        handled.parent_span_id,
        hop.span_context.span_id(),
        "the backend's span is a child of the gateway's hop"
    );
    assert!(handled.parent_span_is_remote);
    assert_eq!(
        attribute(handled, "http.route").as_deref(),
        Some("/workspaces")
    );
    let verify = one(&bs, "token.verify");
    assert_eq!(verify.parent_span_id, handled.span_context.span_id());
    let statements: Vec<_> = bs
        .iter()
        .filter(|s| attribute(s, "db.system.name").as_deref() == Some("postgresql"))
        .collect();
    assert!(!statements.is_empty(), "{:?}", names(&bs));
    for s in &statements {
        assert_eq!(s.parent_span_id, handled.span_context.span_id());
        assert_eq!(s.span_kind, SpanKind::Client);
        let text = attribute(s, "db.query.text").unwrap();
        assert!(!text.contains(&ada_id.to_string()), "no parameters: {text}");
        assert!(s.start_time <= s.end_time);
    }
    for s in gs.iter().chain(&bs) {
        assert_eq!(
            s.span_context.trace_id(),
            trace,
            "{} in another trace",
            s.name
        );
    }
}

/// The `traceparent` the echo upstream received (there must be exactly one).
fn received_traceparent(echo: &Value) -> (TraceId, SpanId, String) {
    let values = echo["headers"]["traceparent"]
        .as_array()
        .expect("a traceparent upstream");
    assert_eq!(values.len(), 1);
    let value = values[0].as_str().unwrap();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00");
    assert!(
        parts[1].len() == 32 && parts[2].len() == 16 && parts[3].len() == 2,
        "{value}"
    );
    assert!(
        value[3..]
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit())
            && !value.contains(char::is_uppercase),
        "{value}"
    );
    let trace = TraceId::from_hex(parts[1]).unwrap();
    let parent = SpanId::from_hex(parts[2]).unwrap();
    assert_ne!(trace, TraceId::INVALID);
    assert_ne!(parent, SpanId::INVALID);
    (trace, parent, parts[3].to_owned())
}

const FOREIGN_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const FOREIGN_PARENT: &str = "b7ad6b7169203331";

async fn echo_with_foreign_trace(app: &TestApp) -> Value {
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/traced")
                .header(
                    "traceparent",
                    format!("00-{FOREIGN_TRACE}-{FOREIGN_PARENT}-01"),
                )
                .header("tracestate", "vendor=secret")
                .header("baggage", "user=admin"),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_upstream_gets_a_traceparent_and_an_untrusted_clients_is_not_continued() {
    let echo = upstream::spawn();
    let (gateway, g) = in_memory(ALWAYS, "frontend-gateway");
    let app = TestApp::spawn_observed(
        Upstream::Url(echo.clone()),
        Observed {
            gateway,
            backend: Tracing::off(),
        },
        |_| {},
    )
    .await;
    let seen = echo_with_foreign_trace(&app).await;
    let (trace, parent, flags) = received_traceparent(&seen);
    assert_ne!(
        trace.to_string(),
        FOREIGN_TRACE,
        "not continued from an untrusted client"
    );
    assert_eq!(flags, "01");
    assert!(seen["headers"].get("tracestate").is_none(), "{seen}");
    assert!(seen["headers"].get("baggage").is_none(), "{seen}");
    eventually("the gateway ends its span", async || {
        !named(&g.get_finished_spans().unwrap(), "GET proxy").is_empty()
    })
    .await;
    let spans = g.get_finished_spans().unwrap();
    let server = one(&spans, "GET proxy");
    assert_eq!(server.parent_span_id, SpanId::INVALID);
    assert_eq!(server.span_context.trace_id(), trace);
    assert_eq!(one(&spans, "proxy").span_context.span_id(), parent);

    // From a trusted proxy, the trace goes on.
    let (gateway, g) = in_memory(ALWAYS, "frontend-gateway");
    let trusting = TestApp::spawn_observed(
        Upstream::Url(echo.clone()),
        Observed {
            gateway,
            backend: Tracing::off(),
        },
        |s| s.trusted_proxies = "127.0.0.1/32".parse().unwrap(),
    )
    .await;
    let seen = echo_with_foreign_trace(&trusting).await;
    let (trace, _, _) = received_traceparent(&seen);
    assert_eq!(trace.to_string(), FOREIGN_TRACE);
    eventually("the gateway ends its span", async || {
        !named(&g.get_finished_spans().unwrap(), "GET proxy").is_empty()
    })
    .await;
    let spans = g.get_finished_spans().unwrap();
    let server = one(&spans, "GET proxy");
    assert_eq!(server.parent_span_id.to_string(), FOREIGN_PARENT);
    assert!(server.parent_span_is_remote);

    // Not sampled: no span is exported, and the trace still goes upstream (flags 00).
    let (gateway, g) = in_memory(
        SamplerSetting {
            parent_based: true,
            ratio: 0.0,
        },
        "frontend-gateway",
    );
    let unsampled = TestApp::spawn_observed(
        Upstream::Url(echo.clone()),
        Observed {
            gateway,
            backend: Tracing::off(),
        },
        |_| {},
    )
    .await;
    let (browser, _) = (unsampled.browser(), ());
    let seen: Value = browser.get("/api/plain").await.json().await.unwrap();
    let (_, _, flags) = received_traceparent(&seen);
    assert_eq!(flags, "00");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(g.get_finished_spans().unwrap().is_empty());

    // Tracing off: an untrusted client's headers are still dropped, and nothing is added.
    let off = TestApp::spawn_with(Upstream::Url(echo), |_| {}).await;
    let seen = echo_with_foreign_trace(&off).await;
    for name in ["traceparent", "tracestate", "baggage"] {
        assert!(seen["headers"].get(name).is_none(), "{name}: {seen}");
    }
}

/// An OTLP/HTTP receiver on port 0: keeps each export request it decodes.
fn otlp_receiver() -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let kept = kept.clone();
                async move {
                    let kind = req
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if kind != "application/x-protobuf" {
                        return HttpResponse::UnsupportedMediaType().finish();
                    }
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(export) => {
                            kept.lock().unwrap().push(export);
                            HttpResponse::Ok()
                                .content_type("application/x-protobuf")
                                .finish()
                        }
                        Err(_) => HttpResponse::BadRequest().finish(),
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), received)
}

#[tokio::test]
async fn the_otlp_exporter_sends_the_spans_to_a_receiver() {
    let (endpoint, received) = otlp_receiver();
    let settings = TraceSettings {
        endpoint: Some(endpoint),
        sampler: ALWAYS,
        service_name: Some("edge-gateway".into()),
        ..TraceSettings::default()
    };
    let tracing = Tracing::start(&settings, "frontend-gateway").expect("the exporter builds");
    let echo = upstream::spawn();
    let app = TestApp::spawn_observed(
        Upstream::Url(echo),
        Observed {
            gateway: tracing.clone(),
            backend: Tracing::off(),
        },
        |_| {},
    )
    .await;
    assert_eq!(app.browser().get("/api/exported").await.status(), 200);
    // The batch goes out at shutdown at the latest (here, now).
    tokio::task::spawn_blocking(move || tracing.shutdown())
        .await
        .unwrap();
    let exports = received.lock().unwrap().clone();
    assert!(!exports.is_empty(), "the receiver got an export");
    let spans: Vec<(String, String)> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|rs| {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            rs.scope_spans
                .iter()
                .flat_map(|ss| &ss.spans)
                .map(move |s| (service.clone(), s.name.clone()))
        })
        .collect();
    let names: BTreeSet<&str> = spans.iter().map(|(_, n)| n.as_str()).collect();
    assert!(
        names.contains("GET proxy") && names.contains("proxy"),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .all(|(service, _)| service.contains("edge-gateway")),
        "{spans:?}"
    );
}

/// Every PromQL text of a Grafana dashboard: `expr`s and the variables' queries.
fn promql(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(q)) => out.push(q.clone()),
                    // A variable's query (a datasource's `query` is its name: no selector).
                    ("query" | "definition", Value::String(q)) if q.contains('{') => {
                        out.push(q.clone());
                    }
                    _ => promql(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| promql(v, out)),
        _ => {}
    }
}

/// The identifiers of `query` written before `open` (`{`: metric names; inside `{...}` and
/// `by (...)`: label names).
fn metric_and_label_names(query: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let bytes = query.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1]) && bytes[i - 1] != b'$') {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &query[start..i];
            let rest = query[i..].trim_start();
            if rest.starts_with('{') && !word.chars().next().unwrap().is_ascii_digit() {
                metrics.insert(word.to_owned());
                // The matchers' label names.
                let close = rest.find('}').unwrap();
                for matcher in rest[1..close].split(',') {
                    let name: String = matcher
                        .trim()
                        .chars()
                        .take_while(|c| ident(*c as u8))
                        .collect();
                    if !name.is_empty() {
                        labels.insert(name);
                    }
                }
            } else if matches!(word, "by" | "without") && rest.starts_with('(') {
                let close = rest.find(')').unwrap();
                labels.extend(rest[1..close].split(',').map(|l| l.trim().to_owned()));
            }
        } else {
            i += 1;
        }
    }
    (metrics, labels)
}

#[tokio::test]
async fn the_grafana_dashboards_use_only_what_the_services_export() {
    let app = TestApp::spawn_observed(Upstream::Backend, Observed::metrics_only(), |_| {}).await;
    let (ada, _) = app.signed_in("ada@example.com").await;
    assert_eq!(ada.get("/api/workspaces").await.status(), 200);
    let mut exported = BTreeSet::new();
    // Prometheus's own (`job`, `instance`) and the histograms' `le`.
    let mut labels: BTreeSet<String> = ["job", "instance", "le"].map(String::from).into();
    for url in [
        app.metrics.clone().unwrap(),
        app.backend_metrics.clone().unwrap(),
    ] {
        let text = scrape(&url).await;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                exported.insert(name.to_owned());
                if kind == "histogram" {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        exported.insert(format!("{name}{suffix}"));
                    }
                }
            } else if let Some((_, inner)) = line.split_once('{') {
                let inner = inner.split('}').next().unwrap();
                labels.extend(
                    inner
                        .split(',')
                        .filter_map(|kv| Some(kv.split_once('=')?.0.to_owned())),
                );
            }
        }
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana");
    let mut dashboards = 0;
    let mut used = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        dashboards += 1;
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut queries = Vec::new();
        promql(&dashboard, &mut queries);
        assert!(!queries.is_empty(), "{}: no queries", path.display());
        for query in &queries {
            let (metrics, query_labels) = metric_and_label_names(query);
            assert!(
                !metrics.is_empty(),
                "{}: {query} names no metric",
                path.display()
            );
            for metric in &metrics {
                assert!(
                    exported.contains(metric),
                    "{}: {metric} is not exported ({query})",
                    path.display()
                );
            }
            for label in &query_labels {
                assert!(
                    labels.contains(label),
                    "{}: no series has the label {label} ({query})",
                    path.display()
                );
            }
            used.extend(metrics);
        }
    }
    assert!(dashboards >= 1);
    // The dashboard covers what the issue names: rate, errors, latency, rules, sign-ins, pools.
    for needed in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "gateway_proxy_requests_total",
        "gateway_proxy_upstream_duration_seconds_bucket",
        "gateway_sign_in_attempts_total",
        "db_pool_connections",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}
