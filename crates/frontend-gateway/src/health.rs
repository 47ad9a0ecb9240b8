//! Liveness and readiness of the gateway, without a session.

use actix_web::{HttpResponse, web};
use sqlx::PgPool;
use web_common::Problem;
use web_common::shutdown::Shutdown;

/// `/healthz`, and `/readyz` asking `shutdown` (503 from the shutdown signal on) and `pool`
/// (users and sessions).
pub fn configure(cfg: &mut web::ServiceConfig, pool: PgPool, shutdown: Shutdown) {
    cfg.route("/healthz", web::get().to(healthz)).service(
        web::resource("/readyz")
            .app_data(web::Data::new((pool, shutdown)))
            .route(web::get().to(readyz)),
    );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the gateway is not shutting down and the database (users and sessions) answers
/// within 2 s.
async fn readyz(state: web::Data<(PgPool, Shutdown)>) -> Result<HttpResponse, Problem> {
    let (pool, shutdown) = &**state;
    web_common::ready::serving(shutdown)?;
    web_common::ready::database(pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
