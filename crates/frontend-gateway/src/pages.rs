//! The web app: plain HTML, CSS and JavaScript from `web/`, embedded in the binary (no build
//! step). It talks only to `/api/auth/*` and `/api/*` on this origin.
//!
//! App pages (`/workspaces`, `/workspaces/{id}`) need a session: a signed-out visitor is sent to
//! `/signin?callbackUrl=<the page>` and comes back after signing in. Every page carries a
//! Content-Security-Policy without inline script, `frame-ancestors 'none'`, `nosniff` and a
//! strict referrer policy.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::session::UserSession;
use crate::state::AppState;

/// The policy of every page: our own scripts, styles and API only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

const SIGNIN: &str = include_str!("../web/signin.html");
const REGISTER: &str = include_str!("../web/register.html");
const WORKSPACES: &str = include_str!("../web/workspaces.html");
const WORKSPACE: &str = include_str!("../web/workspace.html");
const APP_CSS: &str = include_str!("../web/assets/app.css");
const APP_JS: &str = include_str!("../web/assets/app.js");

/// The page routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/signin", web::get().to(|| async { page(SIGNIN) }))
        .route("/register", web::get().to(|| async { page(REGISTER) }))
        .route("/workspaces", web::get().to(workspaces))
        .route("/workspaces/{id}", web::get().to(workspace))
        .route(
            "/assets/app.css",
            web::get().to(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            web::get().to(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        );
}

async fn root(state: web::Data<AppState>) -> HttpResponse {
    redirect(&state.origin.url("/workspaces"))
}

async fn workspaces(
    req: HttpRequest,
    session: UserSession,
    state: web::Data<AppState>,
) -> HttpResponse {
    signed_in_page(&req, &session, &state, WORKSPACES)
}

async fn workspace(
    req: HttpRequest,
    session: UserSession,
    state: web::Data<AppState>,
) -> HttpResponse {
    signed_in_page(&req, &session, &state, WORKSPACE)
}

/// The page for a signed-in visitor; a signed-out one goes to sign in and comes back here.
fn signed_in_page(
    req: &HttpRequest,
    session: &UserSession,
    state: &AppState,
    html: &'static str,
) -> HttpResponse {
    if session.user().is_some() {
        return page(html);
    }
    let back = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    redirect(
        &state
            .origin
            .url(&format!("/signin?callbackUrl={}", encode_component(&back))),
    )
}

fn page(html: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html);
    security_headers(res.headers_mut());
    res
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type(content_type)
        // Revalidated on every use: a new binary's assets are never mixed with old pages.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body);
    security_headers(res.headers_mut());
    res
}

/// 302 to `location`, with the page security headers.
pub fn redirect(location: &str) -> HttpResponse {
    let mut res = HttpResponse::Found()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    security_headers(res.headers_mut());
    res
}

fn security_headers(headers: &mut header::HeaderMap) {
    let pairs = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_paths_are_encoded_as_one_query_component() {
        assert_eq!(
            encode_component("/workspaces/a-b?x=1&y=é"),
            "%2Fworkspaces%2Fa-b%3Fx%3D1%26y%3D%C3%A9"
        );
    }

    /// ` onclick=`, ` onload =`...: an attribute starting with `on` and made of letters.
    fn has_event_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        })
    }

    #[test]
    fn pages_load_only_same_origin_scripts_and_no_inline_code() {
        for html in [SIGNIN, REGISTER, WORKSPACES, WORKSPACE] {
            assert!(html.contains(r#"<script type="module" src="/assets/app.js"></script>"#));
            assert_eq!(html.matches("<script").count(), 1, "no inline script");
            assert!(
                !html.contains(" style=") && !html.contains("<style"),
                "no inline style"
            );
            assert!(
                !has_event_handler_attribute(html),
                "no inline event handlers"
            );
        }
    }
}
