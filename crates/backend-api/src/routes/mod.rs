//! Routes, one module per resource.

pub mod health;
pub mod me;
pub mod members;
pub mod workspaces;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use web_common::Problem;

use crate::openapi;

/// 405 with an `Allow` header, for a known path and an unsupported method.
fn allow(methods: &'static str) -> actix_web::Route {
    web::to(move || async move {
        let mut res = actix_web::ResponseError::error_response(&Problem::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        ));
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(methods));
        res
    })
}

/// Every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::serve))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/me")
            .route(web::get().to(me::me))
            .default_service(allow("GET")),
    )
    .service(
        web::resource("/workspaces")
            .route(web::get().to(workspaces::list))
            .route(web::post().to(workspaces::create))
            .default_service(allow("GET, POST")),
    )
    .service(
        web::resource("/workspaces/{id}")
            .route(web::get().to(workspaces::get))
            .route(web::patch().to(workspaces::rename))
            .route(web::delete().to(workspaces::delete))
            .default_service(allow("GET, PATCH, DELETE")),
    )
    .service(
        web::resource("/workspaces/{id}/members")
            .route(web::get().to(members::list))
            .route(web::post().to(members::add))
            .default_service(allow("GET, POST")),
    )
    .service(
        web::resource("/workspaces/{id}/members/{user_id}")
            .route(web::patch().to(members::change_role))
            .route(web::delete().to(members::remove))
            .default_service(allow("PATCH, DELETE")),
    );
}

/// Unknown routes.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::not_found("No such route."))
}
