//! `/api/auth/*`: the routes, wire-compatible with the next-auth/react v4 client (see the
//! gateway's README for every shape).
//!
//! Every URL answered is absolute and built from `PUBLIC_ORIGIN`; every answer carries
//! `Cache-Control: no-store`. Sign-in methods are [`super::providers`]; account management
//! beyond next-auth (register, password, sign-out everywhere) is [`super::account`].

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use web_common::Problem;

use super::providers::oauth::OAuth;
use super::providers::oauth::http::ProviderHttp;
use super::providers::{EmailLinks, Provider, Providers, credentials};
use super::state::Identity;
use super::wire::{FormOrJson, SessionBody, fields, url_or_redirect, wants_json};
use super::{account, backchannel, recovery, verification};
use crate::pages;
use crate::session::UserSession;

/// Registers the `/api/auth` scope, with the wing's state and its providers.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) {
    cfg.service(
        web::scope("/api/auth")
            .app_data(identity)
            .app_data(providers)
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .route("/csrf", web::get().to(csrf))
            .route("/providers", web::get().to(list_providers))
            .route("/callback/{provider}", web::post().to(callback))
            .route("/callback/{provider}", web::get().to(provider_callback))
            .route("/signin", web::post().to(json_sign_in))
            .route("/signin", web::get().to(sign_in_page))
            .route("/signin/{provider}", web::post().to(provider_sign_in))
            .route("/signin/{provider}", web::get().to(sign_in_page))
            .route("/accounts", web::get().to(account::linked))
            .route("/accounts/{provider}", web::delete().to(account::unlink))
            .route(
                "/backchannel-logout/{provider}",
                web::post().to(backchannel::logout),
            )
            .route("/error", web::get().to(error_page))
            .route("/session", web::get().to(session))
            .route("/signout", web::post().to(sign_out))
            .route("/register", web::post().to(account::register))
            .route(
                "/verify-request",
                web::get().to(verification::verify_request),
            )
            .route("/verify-email", web::get().to(verification::page))
            .route("/verify-email", web::post().to(verification::verify))
            .route("/resend-verification", web::post().to(verification::resend))
            .route("/forgot-password", web::post().to(recovery::forgot))
            .route("/reset-password", web::get().to(recovery::page))
            .route("/reset-password", web::post().to(recovery::reset))
            .route("/account", web::delete().to(account::delete))
            .route("/password", web::post().to(account::change_password))
            .route(
                "/signout-everywhere",
                web::post().to(account::sign_out_everywhere),
            )
            .default_service(web::to(unknown_action)),
    );
}

fn no_such_action() -> Problem {
    Problem::not_found("There is no such /api/auth action.")
}

async fn unknown_action() -> Result<HttpResponse, Problem> {
    Err(no_such_action())
}

#[derive(Serialize)]
struct CsrfBody {
    #[serde(rename = "csrfToken")]
    csrf_token: String,
}

/// `GET /api/auth/csrf`: the double-submit token, and its cookie when there is no valid one.
async fn csrf(req: HttpRequest, identity: web::Data<Identity>) -> HttpResponse {
    let existing = req.cookie(identity.csrf.cookie_name());
    let (token, cookie) = identity.csrf.issue(existing.as_ref().map(|c| c.value()));
    let mut res = HttpResponse::Ok();
    if let Some(cookie) = cookie {
        res.cookie(cookie);
    }
    res.json(CsrfBody { csrf_token: token })
}

/// `GET /api/auth/providers`: what is configured, by id.
async fn list_providers(
    providers: web::Data<Providers>,
    identity: web::Data<Identity>,
) -> HttpResponse {
    HttpResponse::Ok().json(providers.listing(&identity.origin))
}

/// `POST /api/auth/callback/credentials`: next-auth's credentials sign-in (a form or JSON with
/// its CSRF token). Identity providers come back with a GET instead.
async fn callback(
    path: web::Path<String>,
    req: HttpRequest,
    body: Result<FormOrJson, actix_web::Error>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, actix_web::Error> {
    // An unknown provider is an unknown action, whatever its body.
    let provider = match providers.get(&path) {
        Some(p @ (Provider::Credentials(_) | Provider::Email(_))) => p,
        _ => return Err(no_such_action().into()),
    };
    let fields = match identity.checked_form(&req, body?) {
        Ok(fields) => fields,
        Err(refused) => return Ok(refused),
    };
    Ok(match provider {
        Provider::Email(links) => links.callback(&fields, &session, &identity).await?,
        _ => {
            credentials::Credentials
                .callback(&req, &fields, &session, &identity)
                .await?
        }
    })
}

/// `POST /api/auth/signin` (JSON): [`credentials::sign_in`] while credentials are on, else a
/// 404 problem.
async fn json_sign_in(
    req: HttpRequest,
    body: web::Json<credentials::SignInBody>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> Result<HttpResponse, crate::error::Error> {
    if !providers.credentials() {
        return Err(account::credentials_off().into());
    }
    credentials::sign_in(req, body, session, identity).await
}

/// `POST /api/auth/signin/{provider}` (form: `csrfToken`, `callbackUrl`, `json`, `link`): starts
/// a sign-in at an identity provider (see [`OAuth::start`]).
async fn provider_sign_in(
    path: web::Path<String>,
    req: HttpRequest,
    body: Result<FormOrJson, actix_web::Error>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
    http: web::Data<ProviderHttp>,
) -> Result<HttpResponse, actix_web::Error> {
    let email = providers
        .email()
        .filter(|_| path.as_str() == EmailLinks::ID);
    let oauth = providers.oauth(&path);
    if email.is_none() && oauth.is_none() {
        return Err(no_such_action().into());
    }
    let fields = match identity.checked_form(&req, body?) {
        Ok(fields) => fields,
        Err(refused) => return Ok(refused),
    };
    if let Some(links) = email {
        return Ok(links.start(&req, &fields, &identity).await?);
    }
    match oauth {
        Some(provider) => Ok(provider
            .start(&req, &fields, &session, &identity, &http)
            .await?),
        None => Err(no_such_action().into()),
    }
}

/// `GET /api/auth/callback/{provider}?code&state` (or the provider's `error`): see
/// [`OAuth::callback`].
async fn provider_callback(
    path: web::Path<String>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
    http: web::Data<ProviderHttp>,
) -> Result<HttpResponse, actix_web::Error> {
    if let Some(links) = providers
        .email()
        .filter(|_| path.as_str() == EmailLinks::ID)
    {
        return Ok(links.page(&req, &query, &identity).await?);
    }
    let Some(provider) = providers.oauth(&path) else {
        return Err(no_such_action().into());
    };
    Ok(provider
        .callback(&req, &query, &session, &identity, &http)
        .await)
}

/// `GET /api/auth/signin` (where next-auth sends people to sign in): our sign-in page, keeping
/// a same-origin `callbackUrl`.
async fn sign_in_page(
    query: web::Query<HashMap<String, String>>,
    identity: web::Data<Identity>,
) -> HttpResponse {
    let origin = &identity.origin;
    let back = origin.same_origin_url(query.get("callbackUrl").map(String::as_str));
    let path = back
        .strip_prefix(origin.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    pages::redirect(&origin.url(&format!(
        "/signin?callbackUrl={}",
        pages::encode_component(path)
    )))
}

/// `GET /api/auth/error?error=CODE` (where failed next-auth flows land): the sign-in page,
/// told which error happened (only a short alphanumeric code is passed on).
async fn error_page(
    query: web::Query<HashMap<String, String>>,
    identity: web::Data<Identity>,
) -> HttpResponse {
    let code = query
        .get("error")
        .map(String::as_str)
        .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("Default");
    pages::redirect(&identity.origin.url(&format!("/signin?error={code}")))
}

/// `GET /api/auth/session`: the session body, or `{}` when nobody is signed in.
async fn session(session: UserSession, identity: web::Data<Identity>) -> HttpResponse {
    match session.user() {
        Some(user) => HttpResponse::Ok().json(SessionBody::new(&identity.sessions, &user)),
        None => HttpResponse::Ok().json(serde_json::json!({})),
    }
}

/// `POST /api/auth/signout` (form or JSON: `csrfToken`, `callbackUrl`, `json`): deletes the
/// session and clears the cookie; a bad CSRF token is a 403 `{url}` and keeps the session.
/// A session that began at an OpenID provider with `endSession` on answers the provider's
/// logout URL instead (RP-initiated logout), which comes back to `PUBLIC_ORIGIN/`.
async fn sign_out(
    req: HttpRequest,
    body: Option<FormOrJson>,
    session: UserSession,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
) -> HttpResponse {
    let fields = body.map(fields).unwrap_or_default();
    let json = wants_json(&fields);
    if !identity.csrf.form_ok(&req, &fields) {
        let url = identity.origin.url("/api/auth/signout?csrf=true");
        return url_or_redirect(StatusCode::FORBIDDEN, json, &url);
    }
    if let Some(user) = session.user() {
        tracing::info!(user_id = %user.id, "signed out");
    }
    let provider_logout = session.origin().and_then(|origin| {
        let Some(OAuth::Oidc(oidc)) = providers.oauth(&origin.provider) else {
            return None;
        };
        oidc.end_session_url(origin.id_token.as_deref()?, &identity.origin.url("/"))
    });
    session.sign_out();
    let url = provider_logout.unwrap_or_else(|| {
        identity
            .origin
            .same_origin_url(fields.get("callbackUrl").map(String::as_str))
    });
    url_or_redirect(StatusCode::OK, json, &url)
}
