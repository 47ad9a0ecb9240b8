//! Liveness and readiness of the gateway, without a session.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use web_common::Problem;

use crate::state::AppState;

/// `/healthz` and `/readyz`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database (users and sessions) answers within 2 s.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database error");
            Err(Problem::unavailable("The database is not reachable."))
        }
        Err(_) => Err(Problem::unavailable("The database did not answer in time.")),
    }
}
