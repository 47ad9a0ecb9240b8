//! Liveness and readiness of the gateway, without a session.

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
    web_common::ready::database(&state.pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
