//! `backend-api`: reads its settings from the environment (and `.env` in development), then
//! serves until stopped. `backend-api healthcheck` probes a running instance's `/healthz`
//! instead (for container health checks).

use std::process::ExitCode;

use backend_api::{Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal (production passes real environment variables).
    let _ = dotenvy::dotenv();
    let healthcheck = std::env::args().nth(1).is_some_and(|a| a == "healthcheck");
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("backend-api: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if healthcheck {
        // Used by the container health check: is this instance answering on its address?
        return if web_common::probe::http_ok(settings.addr, "/healthz") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    web_common::telemetry::init(settings.app_env.is_production());
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
