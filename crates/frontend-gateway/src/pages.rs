//! The web app: plain HTML, CSS and JavaScript from `web/`, embedded in the binary (no build
//! step). It talks only to `/api/auth/*` and `/api/*` on this origin.
//!
//! App pages (`/workspaces`, `/workspaces/{id}`, `/invitations`, `/account`) need a session: a
//! signed-out visitor is sent to `/signin?callbackUrl=<the page>` and comes back after signing
//! in. `/signin`, `/register`, `/forgot-password` and `/verify-request` (where a mail was sent:
//! "check your email") are public. A browser that navigates
//! to a page that does not exist gets the app's own 404 page ([`not_found_page`]); API clients
//! keep their problem+json. Every page carries a Content-Security-Policy without inline script,
//! `frame-ancestors 'none'`, `nosniff` and a strict referrer policy.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use web_common::problem::Untouched;

use crate::origin::PublicOrigin;
use crate::session::UserSession;

/// The policy of every page: our own scripts, styles and API only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

const SIGNIN: &str = include_str!("../web/signin.html");
const REGISTER: &str = include_str!("../web/register.html");
const FORGOT_PASSWORD: &str = include_str!("../web/forgot-password.html");
const VERIFY_REQUEST: &str = include_str!("../web/verify-request.html");
const INVITATIONS: &str = include_str!("../web/invitations.html");
const WORKSPACES: &str = include_str!("../web/workspaces.html");
const WORKSPACE: &str = include_str!("../web/workspace.html");
const ACCOUNT: &str = include_str!("../web/account.html");
const NOT_FOUND: &str = include_str!("../web/not-found.html");
const APP_CSS: &str = include_str!("../web/assets/app.css");
const APP_JS: &str = include_str!("../web/assets/app.js");

/// The page routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/signin", web::get().to(|| async { page(SIGNIN) }))
        .route("/register", web::get().to(|| async { page(REGISTER) }))
        .route(
            "/forgot-password",
            web::get().to(|| async { page(FORGOT_PASSWORD) }),
        )
        .route(
            "/verify-request",
            web::get().to(|| async { page(VERIFY_REQUEST) }),
        )
        .route("/workspaces", web::get().to(workspaces))
        .route("/workspaces/{id}", web::get().to(workspace))
        .route("/invitations", web::get().to(invitations))
        .route("/account", web::get().to(account))
        .route(
            "/assets/app.css",
            web::get().to(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            web::get().to(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        );
}

async fn root(origin: web::Data<PublicOrigin>) -> HttpResponse {
    redirect(&origin.url("/workspaces"))
}

async fn workspaces(
    req: HttpRequest,
    session: UserSession,
    origin: web::Data<PublicOrigin>,
) -> HttpResponse {
    signed_in_page(&req, &session, &origin, WORKSPACES)
}

async fn workspace(
    req: HttpRequest,
    session: UserSession,
    origin: web::Data<PublicOrigin>,
) -> HttpResponse {
    signed_in_page(&req, &session, &origin, WORKSPACE)
}

async fn invitations(
    req: HttpRequest,
    session: UserSession,
    origin: web::Data<PublicOrigin>,
) -> HttpResponse {
    signed_in_page(&req, &session, &origin, INVITATIONS)
}

async fn account(
    req: HttpRequest,
    session: UserSession,
    origin: web::Data<PublicOrigin>,
) -> HttpResponse {
    signed_in_page(&req, &session, &origin, ACCOUNT)
}

/// The page for a signed-in visitor; a signed-out one goes to sign in and comes back here.
fn signed_in_page(
    req: &HttpRequest,
    session: &UserSession,
    origin: &PublicOrigin,
    html: &'static str,
) -> HttpResponse {
    if session.user().is_some() {
        return page(html);
    }
    let back = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    redirect(&origin.url(&format!("/signin?callbackUrl={}", encode_component(&back))))
}

fn page(html: &'static str) -> HttpResponse {
    page_with_status(StatusCode::OK, html)
}

fn page_with_status(status: StatusCode, html: &'static str) -> HttpResponse {
    let mut res = HttpResponse::build(status)
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

/// Middleware: a 404 the gateway itself answers (no route, no rewrite rule) to a browser's
/// navigation becomes the app's own "page not found" page. A navigation is a GET or HEAD
/// outside `/api/` whose `Accept` names `text/html` explicitly, as browsers send; `*/*` alone
/// does not count, so API clients keep their problem+json, and an upstream's own 404 passes
/// through untouched.
pub async fn not_found_page(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let navigation = is_navigation(req.method(), req.path(), req.headers());
    let res = next.call(req).await?;
    if !navigation
        || res.status() != StatusCode::NOT_FOUND
        || res.response().extensions().contains::<Untouched>()
    {
        return Ok(res.map_into_left_body());
    }
    let (req, _) = res.into_parts();
    let page = page_with_status(StatusCode::NOT_FOUND, NOT_FOUND);
    Ok(ServiceResponse::new(req, page).map_into_right_body())
}

/// `true` for a browser navigating to a page: see [`not_found_page`].
fn is_navigation(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && path != "/api"
        && !path.starts_with("/api/")
        && headers
            .get_all(header::ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(names_html)
}

/// `true` for a media range of `text/html` that is not refused (`q=0`).
fn names_html(range: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    let is_html = parts
        .next()
        .is_some_and(|media| media.eq_ignore_ascii_case("text/html"));
    is_html
        && !parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
            })
        })
}

/// A page made at request time (the gateway's own pages for mailed links), with the page
/// security headers.
pub fn rendered(status: StatusCode, html: String) -> HttpResponse {
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html);
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

/// `text` safe in HTML text and in a double- or single-quoted attribute (the pages the gateway
/// renders, and the HTML of its mail).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

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
    fn only_explicit_html_navigations_outside_the_api_count() {
        let accept = |value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(header::ACCEPT, HeaderValue::from_static(value));
            map
        };
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(is_navigation(&Method::GET, "/nope", &accept(browser)));
        assert!(is_navigation(&Method::HEAD, "/a/b", &accept("TEXT/HTML")));
        assert!(is_navigation(&Method::GET, "/apis", &accept("text/html")));
        for (method, path, value) in [
            (Method::GET, "/nope", "*/*"),
            (Method::GET, "/nope", "application/json"),
            (Method::GET, "/nope", "text/html;q=0, */*"),
            (Method::GET, "/nope", "text/htmlx"),
            (Method::POST, "/nope", browser),
            (Method::GET, "/api/nope", browser),
            (Method::GET, "/api", browser),
        ] {
            assert!(
                !is_navigation(&method, path, &accept(value)),
                "{method} {path} {value}"
            );
        }
        assert!(!is_navigation(&Method::GET, "/nope", &HeaderMap::new()));
    }

    #[test]
    fn pages_load_only_same_origin_scripts_and_no_inline_code() {
        for html in [
            SIGNIN,
            REGISTER,
            FORGOT_PASSWORD,
            VERIFY_REQUEST,
            WORKSPACES,
            WORKSPACE,
            INVITATIONS,
            ACCOUNT,
            NOT_FOUND,
        ] {
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

    #[test]
    fn every_signed_in_page_links_to_the_account_and_invitations_pages_from_its_header() {
        for html in [WORKSPACES, WORKSPACE, INVITATIONS, ACCOUNT] {
            let header = html
                .split_once("<header")
                .and_then(|(_, rest)| rest.split_once("</header>"))
                .map(|(header, _)| header)
                .expect("a header");
            assert!(header.contains(r#"href="/account""#), "{header}");
            assert!(header.contains(r#"href="/invitations""#), "{header}");
        }
    }

    /// Every `id` once per page, and every `aria-describedby` naming ids that exist there.
    #[test]
    fn ids_are_unique_and_descriptions_point_at_them() {
        for html in [
            SIGNIN,
            REGISTER,
            FORGOT_PASSWORD,
            VERIFY_REQUEST,
            WORKSPACES,
            WORKSPACE,
            INVITATIONS,
            ACCOUNT,
            NOT_FOUND,
        ] {
            let values = |attr: &str| -> Vec<&str> {
                let needle = format!(" {attr}=\"");
                html.match_indices(&needle)
                    .filter_map(|(i, _)| html[i + needle.len()..].split('"').next())
                    .collect()
            };
            let ids = values("id");
            let mut seen = std::collections::HashSet::new();
            for id in &ids {
                assert!(seen.insert(*id), "id {id} twice");
            }
            for described in values("aria-describedby") {
                for id in described.split_whitespace() {
                    assert!(
                        seen.contains(id),
                        "aria-describedby names {id}, which is not there"
                    );
                }
            }
        }
    }
}
