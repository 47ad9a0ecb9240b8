//! Runs the gateway: settings (after `.env`), telemetry, then the server.
//! `frontend-gateway healthcheck` probes a running instance's `/healthz` instead (for
//! container health checks).

use std::process::ExitCode;

use frontend_gateway::{Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match web_common::env::load("frontend-gateway", Settings::from_source) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if std::env::args().nth(1).is_some_and(|a| a == "healthcheck") {
        return if web_common::probe::http_ok(settings.server.addr, "/healthz") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    web_common::telemetry::init(&settings.log, settings.telemetry.trace.endpoint.is_some());
    tracing::info!(
        addr = %settings.server.addr,
        backend = %settings.proxy.backend_api_url,
        env = %settings.app_env,
        "starting frontend-gateway"
    );
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "could not start");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
