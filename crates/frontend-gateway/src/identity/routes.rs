//! `/api/auth/*`: sign-in, sign-out, session and registration, wire-compatible with the
//! next-auth/react v4 client (see the README for every shape).
//!
//! Every URL answered is absolute and built from `PUBLIC_ORIGIN`; every answer carries
//! `Cache-Control: no-store`. An unknown email and a wrong password take the same time
//! (a dummy argon2 verification) and get the same answer. Password checks are throttled per
//! account and per client IP ([`crate::throttle`]) before any lookup or argon2 work. Beyond
//! next-auth: `POST /password` (change it, ending every other session) and
//! `POST /signout-everywhere`.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::{Either, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use web_common::Problem;
use web_common::problem::Untouched;

use crate::config::PublicOrigin;
use crate::error::Error;
use crate::session::{SessionUser, UserSession};
use crate::state::AppState;
use crate::{pages, password, session_store, users};

/// Registers the `/api/auth` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/auth")
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .route("/csrf", web::get().to(csrf))
            .route("/providers", web::get().to(providers))
            .route(
                "/callback/credentials",
                web::post().to(callback_credentials),
            )
            .route("/signin", web::post().to(sign_in))
            .route("/signin", web::get().to(sign_in_page))
            .route("/error", web::get().to(error_page))
            .route("/session", web::get().to(session))
            .route("/signout", web::post().to(sign_out))
            .route("/register", web::post().to(register))
            .route("/password", web::post().to(change_password))
            .route("/signout-everywhere", web::post().to(sign_out_everywhere))
            .default_service(web::to(unknown_action)),
    );
}

async fn unknown_action() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found("There is no such /api/auth action."))
}

/// A form (what next-auth's client posts) or a JSON object, as strings by field name.
type FormOrJson =
    Either<web::Json<HashMap<String, serde_json::Value>>, web::Form<HashMap<String, String>>>;

fn fields(body: FormOrJson) -> HashMap<String, String> {
    match body {
        Either::Left(json) => json
            .into_inner()
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Either::Right(form) => form.into_inner(),
    }
}

/// `{url}` (with `json=true`, what next-auth's client sends) or a 302 to `url`.
fn url_or_redirect(status: StatusCode, json: bool, url: &str) -> HttpResponse {
    let mut res = if json {
        HttpResponse::build(status).json(serde_json::json!({ "url": url }))
    } else {
        HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .finish()
    };
    res.extensions_mut().insert(Untouched);
    res
}

/// `candidate` when it points at `origin` (a path, or an absolute URL on the origin), else
/// the origin's root: no open redirects.
pub fn same_origin_url(origin: &PublicOrigin, candidate: Option<&str>) -> String {
    let fallback = origin.url("/");
    let Some(c) = candidate.map(str::trim).filter(|c| !c.is_empty()) else {
        return fallback;
    };
    if c.chars().any(|ch| ch == '\\' || ch.is_control()) {
        return fallback;
    }
    if c.starts_with('/') && !c.starts_with("//") {
        return origin.url(c);
    }
    let base = origin.as_str();
    if c == base
        || c.strip_prefix(base)
            .is_some_and(|rest| rest.starts_with(['/', '?', '#']))
    {
        return c.to_owned();
    }
    fallback
}

fn csrf_ok(req: &HttpRequest, state: &AppState, fields: &HashMap<String, String>) -> bool {
    let cookie = req.cookie(state.csrf.cookie_name());
    state.csrf.verify(
        cookie.as_ref().map(|c| c.value()),
        fields.get("csrfToken").map(String::as_str),
    )
}

#[derive(Serialize)]
struct CsrfBody {
    #[serde(rename = "csrfToken")]
    csrf_token: String,
}

async fn csrf(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let existing = req.cookie(state.csrf.cookie_name());
    let (token, cookie) = state.csrf.issue(existing.as_ref().map(|c| c.value()));
    let mut res = HttpResponse::Ok();
    if let Some(cookie) = cookie {
        res.cookie(cookie);
    }
    res.json(CsrfBody { csrf_token: token })
}

async fn providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "credentials": {
            "id": "credentials",
            "name": "Credentials",
            "type": "credentials",
            "signinUrl": state.origin.url("/api/auth/signin/credentials"),
            "callbackUrl": state.origin.url("/api/auth/callback/credentials"),
        }
    }))
}

/// `GET /api/auth/signin` (where next-auth sends people to sign in): our sign-in page, keeping
/// a same-origin `callbackUrl`.
async fn sign_in_page(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let back = same_origin_url(&state.origin, query.get("callbackUrl").map(String::as_str));
    let path = back
        .strip_prefix(state.origin.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    pages::redirect(&state.origin.url(&format!(
        "/signin?callbackUrl={}",
        pages::encode_component(path)
    )))
}

/// `GET /api/auth/error?error=CODE` (where failed next-auth flows land): the sign-in page,
/// told which error happened (only a short alphanumeric code is passed on).
async fn error_page(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let code = query
        .get("error")
        .map(String::as_str)
        .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("Default");
    pages::redirect(&state.origin.url(&format!("/signin?error={code}")))
}

/// The user part of a session answer (next-auth's `session.user`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicUser {
    /// `users.id`.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Always `null` (no avatars yet); next-auth's shape has it.
    pub image: Option<String>,
}

/// `GET /api/auth/session` (and the sign-in answers): the user and when the session ends.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionBody {
    /// Who is signed in.
    pub user: PublicUser,
    /// RFC 3339: the earlier of the idle and the absolute expiry.
    pub expires: String,
}

fn session_body(state: &AppState, user: &SessionUser) -> SessionBody {
    let now = OffsetDateTime::now_utc();
    let idle = now + state.session_idle;
    let absolute = OffsetDateTime::from_unix_timestamp(user.signed_in_at).unwrap_or(now)
        + state.session_absolute;
    SessionBody {
        user: PublicUser {
            id: user.id,
            name: user.name.clone(),
            email: user.email.clone(),
            image: None,
        },
        expires: idle.min(absolute).format(&Rfc3339).unwrap_or_default(),
    }
}

async fn session(session: UserSession, state: web::Data<AppState>) -> HttpResponse {
    match session.user() {
        Some(user) => HttpResponse::Ok().json(session_body(&state, &user)),
        None => HttpResponse::Ok().json(serde_json::json!({})),
    }
}

/// The client address sign-in attempts are counted against (see [`crate::forwarded`]).
fn client_ip(req: &HttpRequest, state: &AppState) -> Option<std::net::IpAddr> {
    crate::forwarded::client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.trusted_proxies,
    )
}

/// Checks credentials. `None` for an unknown email or a wrong password, indistinguishably.
/// Throttled attempts (429) are refused before the database or argon2 is touched.
#[tracing::instrument(skip_all)]
async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    email: &str,
    password: &str,
) -> Result<Option<users::Credentials>, Error> {
    if let Err(throttled) = state.throttle.attempt(email, client_ip(req, state)) {
        tracing::warn!(
            retry_after = throttled.retry_after_secs(),
            "sign-in throttled"
        );
        return Err(throttled.into());
    }
    let user = users::find_by_email(&state.pool, email.trim()).await?;
    let matches = password::verify(
        password.to_owned(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = user.filter(|_| matches);
    if user.is_some() {
        state.throttle.succeeded(email);
    }
    Ok(user)
}

/// Starts a fresh session for `user` and records the sign-in.
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn start_session(
    state: &AppState,
    session: &UserSession,
    id: Uuid,
    email: String,
    name: String,
) -> Result<SessionUser, Error> {
    users::touch_sign_in(&state.pool, id).await?;
    let user = SessionUser {
        id,
        email,
        name,
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    session.sign_in(&user)?;
    tracing::info!("signed in");
    Ok(user)
}

async fn callback_credentials(
    req: HttpRequest,
    body: FormOrJson,
    session: UserSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let fields = fields(body);
    let json = fields.get("json").is_some_and(|v| v == "true");
    if !csrf_ok(&req, &state, &fields) {
        let url = state.origin.url("/api/auth/signin?csrf=true");
        return Ok(url_or_redirect(StatusCode::FORBIDDEN, json, &url));
    }
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    match authenticate(&req, &state, field("email"), field("password")).await? {
        Some(user) => {
            start_session(&state, &session, user.id, user.email, user.name).await?;
            let url = same_origin_url(&state.origin, fields.get("callbackUrl").map(String::as_str));
            Ok(url_or_redirect(StatusCode::OK, json, &url))
        }
        None => {
            let url = state
                .origin
                .url("/api/auth/error?error=CredentialsSignin&provider=credentials");
            Ok(url_or_redirect(StatusCode::UNAUTHORIZED, json, &url))
        }
    }
}

#[derive(Deserialize)]
struct SignInBody {
    email: String,
    password: String,
}

fn wrong_credentials() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED).detail("The email or password is wrong.")
}

async fn sign_in(
    req: HttpRequest,
    body: web::Json<SignInBody>,
    session: UserSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let Some(user) = authenticate(&req, &state, &body.email, &body.password).await? else {
        return Err(wrong_credentials().into());
    };
    let user = start_session(&state, &session, user.id, user.email, user.name).await?;
    Ok(HttpResponse::Ok().json(session_body(&state, &user)))
}

async fn sign_out(
    req: HttpRequest,
    body: Option<FormOrJson>,
    session: UserSession,
    state: web::Data<AppState>,
) -> HttpResponse {
    let fields = body.map(fields).unwrap_or_default();
    let json = fields.get("json").is_some_and(|v| v == "true");
    if !csrf_ok(&req, &state, &fields) {
        let url = state.origin.url("/api/auth/signout?csrf=true");
        return url_or_redirect(StatusCode::FORBIDDEN, json, &url);
    }
    if let Some(user) = session.user() {
        tracing::info!(user_id = %user.id, "signed out");
    }
    session.sign_out();
    let url = same_origin_url(&state.origin, fields.get("callbackUrl").map(String::as_str));
    url_or_redirect(StatusCode::OK, json, &url)
}

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    name: String,
}

fn validate(body: &RegisterBody) -> Result<(String, String), Problem> {
    let email = body.email.trim();
    let valid_email = (3..=254).contains(&email.chars().count())
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !valid_email {
        return Err(Problem::invalid_field("email", "must be an email address"));
    }
    let name = body.name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(Problem::invalid_field(
            "name",
            "must be 1 to 100 characters",
        ));
    }
    validate_password("password", &body.password)?;
    Ok((email.to_owned(), name.to_owned()))
}

/// The password rules (registration and password change): 8 to 128 characters.
fn validate_password(field: &str, password: &str) -> Result<(), Problem> {
    let len = password.chars().count();
    if !(password::MIN_LEN..=password::MAX_LEN).contains(&len) {
        return Err(Problem::invalid_field(
            field,
            format!(
                "must be {} to {} characters",
                password::MIN_LEN,
                password::MAX_LEN
            ),
        ));
    }
    Ok(())
}

fn not_signed_in() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED).detail("Sign in first.")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password` `{currentPassword, newPassword}`: checks the current password
/// (throttled like a sign-in), stores the new hash, deletes EVERY session of the user, then
/// starts a fresh one for this client, which stays signed in.
async fn change_password(
    req: HttpRequest,
    body: web::Json<PasswordBody>,
    session: UserSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    validate_password("newPassword", &body.new_password)?;
    if let Err(throttled) = state.throttle.attempt(&user.email, client_ip(&req, &state)) {
        return Err(throttled.into());
    }
    let Some(account) = users::find_by_id(&state.pool, user.id).await? else {
        session.sign_out();
        return Err(not_signed_in().into());
    };
    let current = body.current_password.clone();
    if !password::verify(current, Some(account.password_hash)).await? {
        return Err(Problem::forbidden("The current password is wrong.").into());
    }
    state.throttle.succeeded(&user.email);
    let hash = password::hash(body.new_password.clone()).await?;
    users::set_password_and_end_sessions(&state.pool, user.id, &hash).await?;
    // This instance stops serving the ended sessions at once (others within the cache TTL).
    session_store::forget_user(user.id);
    let user = SessionUser {
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
        ..user
    };
    session.sign_in(&user)?;
    tracing::info!(user_id = %user.id, "password changed; every other session ended");
    Ok(HttpResponse::Ok().json(session_body(&state, &user)))
}

/// `POST /api/auth/signout-everywhere`: deletes every session of the user (this one
/// included) and clears the cookie; `{url}` like sign-out.
async fn sign_out_everywhere(
    session: UserSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let Some(user) = session.user() else {
        return Err(not_signed_in().into());
    };
    let ended = users::end_sessions(&state.pool, user.id).await?;
    session_store::forget_user(user.id);
    session.sign_out();
    tracing::info!(user_id = %user.id, sessions = ended, "signed out everywhere");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": state.origin.url("/") })))
}

async fn register(
    body: web::Json<RegisterBody>,
    session: UserSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (email, name) = validate(&body)?;
    let hash = password::hash(body.password.clone()).await?;
    let id = match users::insert(&state.pool, &email, &name, &hash).await {
        Ok(id) => id,
        Err(users::InsertError::DuplicateEmail) => {
            return Err(Problem::conflict("An account with this email already exists.").into());
        }
        Err(users::InsertError::Database(e)) => return Err(e.into()),
    };
    let user = start_session(&state, &session, id, email, name).await?;
    Ok(HttpResponse::Created().json(session_body(&state, &user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_must_stay_on_the_public_origin() {
        let origin: PublicOrigin = "https://app.example".parse().unwrap();
        let cases = [
            (None, "https://app.example/"),
            (Some(""), "https://app.example/"),
            (
                Some("/workspaces?x=1"),
                "https://app.example/workspaces?x=1",
            ),
            (Some("https://app.example/a"), "https://app.example/a"),
            (Some("https://app.example"), "https://app.example"),
            (Some("//evil.example/a"), "https://app.example/"),
            (Some("/\\evil.example"), "https://app.example/"),
            (
                Some("https://app.example.evil.com/"),
                "https://app.example/",
            ),
            (
                Some("https://app.example@evil.com/"),
                "https://app.example/",
            ),
            (Some("http://app.example/"), "https://app.example/"),
            (Some("javascript:alert(1)"), "https://app.example/"),
            (Some("/a\r\nSet-Cookie: x"), "https://app.example/"),
        ];
        for (candidate, expected) in cases {
            assert_eq!(
                same_origin_url(&origin, candidate),
                expected,
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn registration_rules_are_enforced() {
        let body = |email: &str, password: &str, name: &str| RegisterBody {
            email: email.into(),
            password: password.into(),
            name: name.into(),
        };
        assert!(validate(&body("ada@example.com", "long enough", "Ada")).is_ok());
        assert!(validate(&body("not-an-email", "long enough", "Ada")).is_err());
        assert!(validate(&body("ada@example.com", "short", "Ada")).is_err());
        assert!(validate(&body("ada@example.com", &"x".repeat(129), "Ada")).is_err());
        assert!(validate(&body("ada@example.com", "long enough", "  ")).is_err());
    }
}
