//! The session wing's metrics: `gateway_session_loads_total{result}` (a request's session
//! found in this instance's cache, loaded from Postgres, or not loaded because Postgres
//! failed) and `gateway_session_revocations_received_total` (ended-session notices heard).

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};

/// The counters (label values resolved once: counting is one atomic add).
#[derive(Debug, Clone)]
pub struct SessionMetrics {
    loads: IntCounterVec,
    pub(super) cache_hit: IntCounter,
    pub(super) miss: IntCounter,
    pub(super) db_error: IntCounter,
    pub(super) revocations: IntCounter,
}

impl Default for SessionMetrics {
    fn default() -> Self {
        let loads = IntCounterVec::new(
            Opts::new(
                "gateway_session_loads_total",
                "Session loads of requests with a session cookie: cache_hit, miss (read from Postgres), db_error.",
            ),
            &["result"],
        )
        .expect("a valid metric");
        let revocations = IntCounter::new(
            "gateway_session_revocations_received_total",
            "Ended-session notices this instance heard (sign-outs, revocations, resets on any instance).",
        )
        .expect("a valid metric");
        Self {
            cache_hit: loads.with_label_values(&["cache_hit"]),
            miss: loads.with_label_values(&["miss"]),
            db_error: loads.with_label_values(&["db_error"]),
            loads,
            revocations,
        }
    }
}

impl SessionMetrics {
    /// The collectors, for the service's registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.loads.clone()),
            Box::new(self.revocations.clone()),
        ]
    }
}
