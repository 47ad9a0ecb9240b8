//! The proxy's metrics: `gateway_proxy_requests_total{rule,outcome}`,
//! `gateway_proxy_upstream_duration_seconds{rule}` (from sending to the upstream's response
//! head) and `gateway_open_streams` (open-ended response bodies being streamed).
//!
//! The `rule` label is the rule's source pattern from the table (a fixed set); each rule's
//! series are resolved once, so counting a request is an atomic add and an observation.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};
use web_common::metrics::LATENCY_BUCKETS;

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered (whatever its status).
    Ok,
    /// The connection broke, or the answer could not be read.
    UpstreamError,
    /// No connection could be made (refused, unreachable, connect timeout).
    ConnectFailure,
    /// No answer within `PROXY_TIMEOUT_SECS` (504).
    Timeout,
    /// The client went away, or its body broke off, before the answer.
    ClientAbort,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::UpstreamError,
        Outcome::ConnectFailure,
        Outcome::Timeout,
        Outcome::ClientAbort,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::UpstreamError => "upstream_error",
            Outcome::ConnectFailure => "connect_failure",
            Outcome::Timeout => "timeout",
            Outcome::ClientAbort => "client_abort",
        }
    }
}

/// One rule's series.
#[derive(Debug, Clone)]
pub struct RuleMetrics {
    outcomes: [IntCounter; 5],
    upstream: Histogram,
}

impl RuleMetrics {
    /// Counts a request of this rule that ended with `outcome`.
    pub fn record(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].inc();
    }

    /// Observes the time to the upstream's response head.
    pub fn observe_upstream(&self, seconds: f64) {
        self.upstream.observe(seconds);
    }
}

/// The proxy's metrics.
#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    requests: IntCounterVec,
    upstream: HistogramVec,
    rules: Vec<RuleMetrics>,
    /// `gateway_open_streams`.
    pub open_streams: IntGauge,
}

impl ProxyMetrics {
    /// The series of each rule in `labels` (the table's, in order).
    pub fn new(labels: &[String]) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "gateway_proxy_requests_total",
                "Proxied requests by rule and outcome (ok, upstream_error, connect_failure, timeout, client_abort).",
            ),
            &["rule", "outcome"],
        )
        .expect("a valid metric");
        let upstream = HistogramVec::new(
            HistogramOpts::new(
                "gateway_proxy_upstream_duration_seconds",
                "Time from sending a proxied request to the upstream's response head, by rule.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["rule"],
        )
        .expect("a valid metric");
        let rules = labels
            .iter()
            .map(|rule| RuleMetrics {
                outcomes: Outcome::ALL
                    .map(|o| requests.with_label_values(&[rule.as_str(), o.label()])),
                upstream: upstream.with_label_values(&[rule.as_str()]),
            })
            .collect();
        let open_streams = IntGauge::new(
            "gateway_open_streams",
            "Open-ended proxied response bodies (event streams, chunked streams) being streamed.",
        )
        .expect("a valid metric");
        Self {
            requests,
            upstream,
            rules,
            open_streams,
        }
    }

    /// The series of the rule at `index` in the table.
    pub fn rule(&self, index: usize) -> Option<&RuleMetrics> {
        self.rules.get(index)
    }

    /// The collectors, for the service's registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.upstream.clone()),
            Box::new(self.open_streams.clone()),
        ]
    }
}

/// Counts a request as a client abort unless it is settled first (the handler's future is
/// dropped when the client goes away mid-request).
#[derive(Debug)]
pub struct Pending<'a> {
    rule: Option<&'a RuleMetrics>,
}

impl<'a> Pending<'a> {
    /// A request of `rule` on its way.
    pub fn new(rule: Option<&'a RuleMetrics>) -> Self {
        Self { rule }
    }

    /// Counts its outcome (once).
    pub fn settle(&mut self, outcome: Outcome) {
        if let Some(rule) = self.rule.take() {
            rule.record(outcome);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.settle(Outcome::ClientAbort);
    }
}
