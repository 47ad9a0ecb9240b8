//! Liveness and readiness of the gateway, without a session.

use actix_web::{HttpResponse, web};
use sqlx::PgPool;
use web_common::Problem;

/// `/healthz`, and `/readyz` asking `pool` (users and sessions).
pub fn configure(cfg: &mut web::ServiceConfig, pool: PgPool) {
    cfg.route("/healthz", web::get().to(healthz)).service(
        web::resource("/readyz")
            .app_data(web::Data::new(pool))
            .route(web::get().to(readyz)),
    );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database (users and sessions) answers within 2 s.
async fn readyz(pool: web::Data<PgPool>) -> Result<HttpResponse, Problem> {
    web_common::ready::database(&pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
