//! Prometheus metrics: one [`Metrics`] registry per service instance, served as the text format
//! by [`serve`] on a listener of its own (`METRICS_ADDR`), never on the public port.
//!
//! Every label value comes from a fixed set: route patterns (never raw paths), method names
//! (anything unusual counts as `other`), status classes, and the few enums each wing names
//! itself. So the number of series is bounded whatever clients send.
//!
//! A wing makes its own metric objects when it is built (unregistered metrics cost nothing
//! and need no registry, so tests build wings as before) and hands them to the service's
//! registry at start-up ([`Metrics::register`]); gauges that describe a state (pools, the
//! password-hash queue) are read when scraped ([`Metrics::on_scrape`]), off the request path.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::Method;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The commit this binary was built from (`build_info`'s `commit`; see `build.rs`).
pub const BUILD_COMMIT: &str = env!("BUILD_COMMIT");

/// Latency buckets (seconds) of every duration histogram: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A gauge refresh run before each scrape.
type Refresh = Box<dyn Fn() + Send + Sync>;

/// A service's registry, with the metrics every service has. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http: Arc<HttpMetrics>,
    /// `db_pool_connections` and `db_pool_max_connections`, shared by the service's pools.
    pools: (IntGaugeVec, IntGaugeVec),
    scrape: Arc<Mutex<Vec<Refresh>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The request metrics both services keep (see [`crate::request_id::middleware`]).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

impl HttpMetrics {
    /// A request is being served: `http_requests_in_flight` counts it until the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let labels = [route, method_label(method), status_class(status)];
        self.requests.with_label_values(&labels).inc();
        self.duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The series of one route, looked up once per method and status class: recording a
    /// request of it is then an atomic add and an observation, with no label hashing (for a
    /// service's busiest route, such as the gateway's `proxy`).
    pub fn route(self: &Arc<Self>, route: &'static str) -> RouteSeries {
        RouteSeries {
            metrics: Arc::clone(self),
            route,
            series: Default::default(),
        }
    }
}

/// The method labels, in [`RouteSeries`]'s order.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// One route's series by method (the standard ones, then `other`) and status class, each
/// resolved on first use (see [`HttpMetrics::route`]).
#[derive(Debug)]
pub struct RouteSeries {
    metrics: Arc<HttpMetrics>,
    route: &'static str,
    series: [[OnceLock<(IntCounter, Histogram)>; 5]; 8],
}

impl RouteSeries {
    /// The route's label.
    pub fn label(&self) -> &'static str {
        self.route
    }

    /// Records one answered request of this route.
    pub fn observe(&self, method: &Method, status: u16, elapsed: Duration) {
        let m = METHODS.iter().position(|m| m == method).unwrap_or(7);
        let class = status_class(status);
        let c = usize::from(class.as_bytes()[0] - b'1');
        let (requests, duration) = self.series[m][c].get_or_init(|| {
            let labels = [self.route, method_label(method), class];
            (
                self.metrics.requests.with_label_values(&labels),
                self.metrics.duration.with_label_values(&labels),
            )
        });
        requests.inc();
        duration.observe(elapsed.as_secs_f64());
    }
}

/// A response's route label, set by a handler that knows it (the gateway's proxy: `proxy`), so
/// the request middleware need not look the pattern up in the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(pub &'static str);

/// Counts a request in flight while it lives.
#[derive(Debug)]
pub struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `2xx`, `4xx`...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What a connection pool reports when scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolState {
    /// Open connections nobody holds.
    pub idle: usize,
    /// Open connections held by a caller.
    pub in_use: usize,
    /// Callers waiting for a connection, when the pool can tell.
    pub waiting: Option<usize>,
    /// The most connections the pool opens.
    pub max: usize,
}

impl PoolState {
    /// sqlx's pool: idle and in use (sqlx 0.8 does not publish how many callers wait).
    pub fn of_sqlx(pool: &sqlx::PgPool) -> Self {
        let size = pool.size() as usize;
        let idle = pool.num_idle().min(size);
        Self {
            idle,
            in_use: size - idle,
            waiting: None,
            max: pool.options().get_max_connections() as usize,
        }
    }
}

impl Metrics {
    /// A registry with the request metrics, `build_info` and the process collector (RSS, CPU,
    /// open files) for `service`.
    pub fn new(service: &'static str) -> Self {
        let registry = Registry::new();
        let labels = ["route", "method", "status_class"];
        let http = HttpMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "Requests answered, by route pattern, method and status class.",
                ),
                &labels,
            )
            .expect("a valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "Time from the request's arrival to its response head, by route pattern, method and status class.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &labels,
            )
            .expect("a valid metric"),
            in_flight: IntGauge::new("http_requests_in_flight", "Requests being served.")
                .expect("a valid metric"),
        };
        let build = IntGaugeVec::new(
            Opts::new("build_info", "The running build (always 1)."),
            &["service", "version", "commit"],
        )
        .expect("a valid metric");
        build
            .with_label_values(&[service, env!("CARGO_PKG_VERSION"), BUILD_COMMIT])
            .set(1);
        let pools = (
            IntGaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Database connections by pool and state (idle, in_use; waiting: callers waiting for one, where the pool can tell).",
                ),
                &["pool", "state"],
            )
            .expect("a valid metric"),
            IntGaugeVec::new(
                Opts::new("db_pool_max_connections", "The most connections a pool opens."),
                &["pool"],
            )
            .expect("a valid metric"),
        );
        let metrics = Self {
            registry,
            http: Arc::new(http),
            pools,
            scrape: Arc::default(),
        };
        metrics.register(vec![
            Box::new(metrics.http.requests.clone()),
            Box::new(metrics.http.duration.clone()),
            Box::new(metrics.http.in_flight.clone()),
            Box::new(build),
            Box::new(metrics.pools.0.clone()),
            Box::new(metrics.pools.1.clone()),
        ]);
        #[cfg(target_os = "linux")]
        metrics.register(vec![Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )]);
        metrics
    }

    /// The request metrics.
    pub fn http(&self) -> &Arc<HttpMetrics> {
        &self.http
    }

    /// Adds a wing's metrics. Their names are fixed in the code and distinct, so a clash is a
    /// programming error (and fails every test that builds the service).
    pub fn register(&self, collectors: Vec<Box<dyn Collector>>) {
        for c in collectors {
            self.registry
                .register(c)
                .expect("metric names are distinct");
        }
    }

    /// Runs `refresh` before each scrape (gauges of a state read on demand).
    pub fn on_scrape(&self, refresh: impl Fn() + Send + Sync + 'static) {
        self.scrape
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(refresh));
    }

    /// Reports `db_pool_connections{pool,state}` and `db_pool_max_connections{pool}` for the
    /// pool `name`, read by `state` at each scrape.
    pub fn watch_pool(
        &self,
        name: &'static str,
        state: impl Fn() -> PoolState + Send + Sync + 'static,
    ) {
        let (connections, max) = (self.pools.0.clone(), self.pools.1.clone());
        self.on_scrape(move || {
            let s = state();
            connections
                .with_label_values(&[name, "idle"])
                .set(s.idle as i64);
            connections
                .with_label_values(&[name, "in_use"])
                .set(s.in_use as i64);
            if let Some(waiting) = s.waiting {
                connections
                    .with_label_values(&[name, "waiting"])
                    .set(waiting as i64);
            }
            max.with_label_values(&[name]).set(s.max as i64);
        });
    }

    /// The text exposition of every metric (after the scrape-time refreshes).
    pub fn render(&self) -> String {
        for refresh in self
            .scrape
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            refresh();
        }
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into memory fails only on a metric without a value, which cannot be made.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Serves `GET /metrics` (the text format, version 0.0.4) on `listener` with one worker; any
/// other path is a 404. It runs until its `ServerHandle::stop` (the service stops it after its own).
pub fn serve(listener: TcpListener, metrics: Metrics) -> std::io::Result<Server> {
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new().app_data(metrics.clone()).route(
            "/metrics",
            web::get().to(|metrics: web::Data<Metrics>| async move {
                HttpResponse::Ok()
                    .content_type(TextEncoder::new().format_type())
                    .body(metrics.render())
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_statuses_map_to_a_fixed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            "other"
        );
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(308), "3xx");
        assert_eq!(status_class(499), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(42), "5xx");
    }

    #[test]
    fn a_routes_own_series_count_like_the_family() {
        let metrics = Metrics::new("test-service");
        let proxy = metrics.http().route("proxy");
        proxy.observe(&Method::GET, 200, Duration::from_millis(3));
        proxy.observe(&Method::GET, 204, Duration::from_millis(3));
        proxy.observe(
            &Method::from_bytes(b"PURGE").unwrap(),
            502,
            Duration::from_secs(1),
        );
        metrics
            .http()
            .observe("proxy", &Method::GET, 200, Duration::from_millis(1));
        let text = metrics.render();
        for line in [
            r#"http_requests_total{method="GET",route="proxy",status_class="2xx"} 3"#,
            r#"http_requests_total{method="other",route="proxy",status_class="5xx"} 1"#,
            r#"http_request_duration_seconds_count{method="GET",route="proxy",status_class="2xx"} 3"#,
            r#"http_request_duration_seconds_bucket{method="other",route="proxy",status_class="5xx",le="1"} 1"#,
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }

    #[test]
    fn pools_are_read_at_each_scrape() {
        let metrics = Metrics::new("test-service");
        let state = Arc::new(Mutex::new(PoolState {
            idle: 1,
            in_use: 2,
            waiting: Some(3),
            max: 10,
        }));
        let read = state.clone();
        metrics.watch_pool("lane", move || *read.lock().unwrap());
        metrics.watch_pool("main", || PoolState {
            idle: 0,
            in_use: 4,
            waiting: None,
            max: 5,
        });
        let text = metrics.render();
        for line in [
            r#"db_pool_connections{pool="lane",state="idle"} 1"#,
            r#"db_pool_connections{pool="lane",state="in_use"} 2"#,
            r#"db_pool_connections{pool="lane",state="waiting"} 3"#,
            r#"db_pool_max_connections{pool="lane"} 10"#,
            r#"db_pool_connections{pool="main",state="in_use"} 4"#,
            r#"db_pool_max_connections{pool="main"} 5"#,
            r#"build_info{commit=""#,
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        assert!(!text.contains(r#"pool="main",state="waiting""#));
        state.lock().unwrap().in_use = 7;
        assert!(
            metrics
                .render()
                .contains(r#"db_pool_connections{pool="lane",state="in_use"} 7"#)
        );
    }
}
