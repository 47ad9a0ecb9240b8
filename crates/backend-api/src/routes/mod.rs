//! Routes, one module per resource, and the one table that serves them and documents them.
//!
//! `routes!` turns the table at the bottom of this file into [`configure`] (each path with its
//! handlers, and a 405 whose `Allow` lists exactly those methods for any other), [`ROUTES`]
//! (the same table as data, for tests) and the OpenAPI operations of every documented route
//! (merged into [`document`]). A route is added in one place.

pub mod health;
pub mod invitations;
pub mod me;
pub mod members;
pub mod workspaces;

use std::sync::LazyLock;

use actix_web::http::{Method, header};
use actix_web::{HttpResponse, ResponseError, web};
use utoipa::OpenApi;
use web_common::Problem;

use crate::openapi;

/// One path of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// Its methods, as in `Allow`.
    pub methods: &'static [&'static str],
    /// Whether the OpenAPI document describes it.
    pub documented: bool,
}

/// 405 with `Allow: <methods>`, for a known path and a method it does not serve.
fn method_not_allowed(methods: &[&str]) -> actix_web::Route {
    let allow = header::HeaderValue::from_str(&methods.join(", "))
        .expect("method names are valid header text");
    web::to(move || {
        let allow = allow.clone();
        async move {
            let mut res =
                Problem::new(actix_web::http::StatusCode::METHOD_NOT_ALLOWED).error_response();
            res.headers_mut().insert(header::ALLOW, allow);
            res
        }
    })
}

/// Unknown routes.
pub async fn not_found() -> HttpResponse {
    Problem::not_found("No such route.").error_response()
}

/// The route table: `"path" { method => module::handler, ... }`, documented routes first
/// (their handlers carry `#[utoipa::path]`), then the undocumented ones.
macro_rules! routes {
    (
        documented {
            $( $path:literal { $( $method:ident => $module:ident :: $handler:ident ),+ $(,)? } )*
        }
        undocumented {
            $( $upath:literal { $( $umethod:ident => $uhandler:ident ),+ $(,)? } )*
        }
    ) => {
        /// Every path the service answers, with its methods.
        pub const ROUTES: &[Resource] = &[
            $( Resource {
                path: $path,
                methods: &[ $( routes!(@name $method) ),+ ],
                documented: true,
            }, )*
            $( Resource {
                path: $upath,
                methods: &[ $( routes!(@name $umethod) ),+ ],
                documented: false,
            }, )*
        ];

        /// Every route of the service.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $( .route(web::method(routes!(@method $method)).to($module::$handler)) )+
                        .default_service(method_not_allowed(&[ $( routes!(@name $method) ),+ ])),
                );
            )*
            $(
                cfg.service(
                    web::resource($upath)
                        $( .route(web::method(routes!(@method $umethod)).to($uhandler)) )+
                        .default_service(method_not_allowed(&[ $( routes!(@name $umethod) ),+ ])),
                );
            )*
        }

        /// The operations of every documented route.
        #[derive(OpenApi)]
        #[openapi(paths( $( $( $module::$handler ),+ ),* ))]
        struct Operations;
    };
    (@name get) => { "GET" };
    (@name post) => { "POST" };
    (@name put) => { "PUT" };
    (@name patch) => { "PATCH" };
    (@name delete) => { "DELETE" };
    (@method get) => { Method::GET };
    (@method post) => { Method::POST };
    (@method put) => { Method::PUT };
    (@method patch) => { Method::PATCH };
    (@method delete) => { Method::DELETE };
}

routes! {
    documented {
        "/healthz" { get => health::healthz }
        "/readyz" { get => health::readyz }
        "/me" { get => me::me }
        "/workspaces" { get => workspaces::list, post => workspaces::create }
        "/workspaces/{id}" {
            get => workspaces::get,
            patch => workspaces::rename,
            delete => workspaces::delete,
        }
        "/workspaces/{id}/members" { get => members::list }
        "/workspaces/{id}/members/{user_id}" {
            patch => members::change_role,
            delete => members::remove,
        }
        "/workspaces/{id}/invitations" {
            get => invitations::list,
            post => invitations::create,
        }
        "/workspaces/{id}/invitations/{invitation_id}" { delete => invitations::revoke }
        "/invitations" { get => invitations::received }
        "/invitations/{invitation_id}/accept" { post => invitations::accept }
        "/invitations/{invitation_id}/decline" { post => invitations::decline }
    }
    undocumented {
        "/openapi.json" { get => openapi_json }
    }
}

/// The OpenAPI document: [`openapi::ApiDoc`] with the operations of every documented route.
pub fn document() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi().merge_from(Operations::openapi())
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document().to_json().unwrap_or_else(|_| "{}".to_owned()));

/// `GET /openapi.json`: the document.
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}
