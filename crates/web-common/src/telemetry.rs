//! Tracing set-up shared by both services.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON lines in production, compact text otherwise.
/// `RUST_LOG` overrides the default filter (`info`). Calling it twice is harmless.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` fails only when a subscriber is already set (tests start many apps).
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
