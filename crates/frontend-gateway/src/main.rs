//! Runs the gateway: settings from the environment, telemetry, then the server.
//! `frontend-gateway healthcheck` probes a running instance's `/healthz` instead (for
//! container health checks).

use frontend_gateway::{Application, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("frontend-gateway: configuration error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if std::env::args().nth(1).is_some_and(|a| a == "healthcheck") {
        return if web_common::probe::http_ok(settings.addr, "/healthz") {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        };
    }
    web_common::telemetry::init(settings.app_env.is_production());
    tracing::info!(addr = %settings.addr, backend = %settings.backend_api_url, "starting frontend-gateway");
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "could not start");
            return std::process::ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}
