//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{health, me, members, workspaces};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "backend-api",
        description = "Workspace API. Every route but /healthz, /readyz and /openapi.json needs a \
                       gateway token in `Authorization: Bearer`. Errors are RFC 9457 problem+json."
    ),
    paths(
        health::healthz, health::readyz, me::me,
        workspaces::list, workspaces::create, workspaces::get, workspaces::rename, workspaces::delete,
        members::list, members::add, members::change_role, members::remove,
    ),
    components(schemas(web_common::Problem, web_common::FieldError)),
    modifiers(&BearerScheme)
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
});

/// Serves the document.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}
