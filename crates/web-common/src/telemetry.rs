//! Tracing set-up shared by both services.

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// Installs the global subscriber: JSON lines or compact text, filtered as `log` says (its
/// filter was checked when the settings were read). Calling it twice is harmless.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| EnvFilter::new(LogSettings::DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` fails only when a subscriber is already set (tests start many apps).
    let _ = if log.json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
