//! `backend-api`: reads its settings from the environment (and `.env` in development), then
//! serves until stopped. `backend-api healthcheck` probes a running instance's `/healthz`
//! instead (for container health checks). A bad setting exits with status 78 (`EX_CONFIG`) and
//! a message naming the variable.

use std::process::ExitCode;

use backend_api::{Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match web_common::env::load("backend-api", Settings::from_source) {
        Ok(settings) => settings,
        Err(status) => return status,
    };
    if std::env::args().nth(1).is_some_and(|a| a == "healthcheck") {
        // Used by the container health check: is this instance answering on its address?
        return if web_common::probe::http_ok(settings.server.addr, "/healthz") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    web_common::telemetry::init(&settings.log, settings.telemetry.trace.endpoint.is_some());
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "backend-api could not start");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "backend-api stopped with an error");
            ExitCode::FAILURE
        }
    }
}
