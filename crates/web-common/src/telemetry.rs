//! Tracing set-up shared by both services.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::settings::LogSettings;
use crate::trace::SqlSpans;

/// Installs the global subscriber: JSON lines or compact text, filtered as `log` says (its
/// filter was checked when the settings were read). With `sql_spans` (tracing is on), also the
/// layer that makes a span of each SQL statement of a sampled request
/// ([`crate::trace::SqlSpans`]); the log filter then applies to the log lines alone, so it
/// does not hide sqlx's statement events from that layer. Calling it twice is harmless.
pub fn init(log: &LogSettings, sql_spans: bool) {
    let filter = EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| EnvFilter::new(LogSettings::DEFAULT_FILTER));
    // `try_init` fails only when a subscriber is already set (tests start many apps).
    if !sql_spans {
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        let _ = if log.json {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .try_init()
        } else {
            builder.compact().try_init()
        };
        return;
    }
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if log.json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_filter(filter)
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(SqlSpans.with_filter(SqlSpans::filter()))
        .try_init();
}
