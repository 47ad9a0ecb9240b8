//! The checks every request passes before routing:
//!
//! 1. a path that cannot be misread (see [`crate::proxy::rewrite::check_path`]): 400;
//! 2. request headers of at most [`MAX_HEADER_BYTES`] in all: 431 (actix-web itself closes
//!    the connection past 128 KiB or 96 headers, with a bare 431);
//! 3. for unsafe methods (anything but GET, HEAD, OPTIONS), cross-site request forgery:
//!    * refused (403) whenever the browser says the request is cross-site: a `Sec-Fetch-Site`
//!      other than `same-origin`/`none`, or an `Origin` other than `PUBLIC_ORIGIN` (the
//!      configured one, never one derived from `Host` or `X-Forwarded-Host`);
//!    * a request carrying the session cookie to anything but `/api/auth/*` (the proxied API)
//!      must moreover PROVE it is same-origin: `Sec-Fetch-Site: same-origin`/`none` or
//!      `Origin: PUBLIC_ORIGIN`. Every current browser sends one of them on such requests;
//!      a script with a cookie jar has to send `Origin` itself.
//!
//! `/api/auth/backchannel-logout/*` is exempt from 3: identity providers post there from their
//! servers, and it acts on a signed token, never on cookies.
//!
//! Without signals, `/api/auth/*` stays open to non-browser clients (curl, scripts) for signing
//! in and registering: they have no ambient cookies to abuse, and the form endpoints still
//! check their csrfToken. What acts on an existing session (sign-out everywhere, a password
//! change, unlinking) needs a same-origin signal or the csrfToken even then
//! ([`crate::identity::csrf::Csrf::session_action`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use web_common::Problem;

use crate::origin::PublicOrigin;
use crate::proxy::rewrite::{check_path, is_auth_path};
use crate::session::Sessions;

/// The most request header bytes (names, values and 4 bytes of framing each) accepted.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Middleware: 400 for a bad path, 431 for oversized headers, 403 for a cross-site unsafe
/// request.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(problem) = refusal(&req) {
        // Answered as a response (not an `Err`) so the problem middleware adds the request id.
        let res = req.into_response(problem.error_response());
        return Ok(res.map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// What the browser's fetch metadata and `Origin` say about where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A signal says another site or origin (or a value we do not know).
    CrossSite,
    /// A signal says this origin (or a user-typed navigation), none says otherwise.
    SameOrigin,
    /// Neither `Sec-Fetch-Site` nor `Origin`: not a (current) browser.
    Unknown,
}

/// Classifies a request by `Sec-Fetch-Site` and `Origin` against the configured `origin`.
pub fn site(headers: &HeaderMap, origin: &PublicOrigin) -> Site {
    let fetch_site: Vec<_> = headers
        .get_all(HeaderName::from_static("sec-fetch-site"))
        .collect();
    let origins: Vec<_> = headers.get_all(header::ORIGIN).collect();
    let cross = fetch_site
        .iter()
        .any(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"))
        || origins
            .iter()
            .any(|v| v.as_bytes() != origin.as_str().as_bytes());
    if cross {
        Site::CrossSite
    } else if fetch_site.is_empty() && origins.is_empty() {
        Site::Unknown
    } else {
        Site::SameOrigin
    }
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn refusal(req: &ServiceRequest) -> Option<Problem> {
    if let Err(e) = check_path(req.path()) {
        return Some(Problem::bad_request(format!("Refused path: {e}.")));
    }
    if header_bytes(req.headers()) > MAX_HEADER_BYTES {
        return Some(
            Problem::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).detail(format!(
                "The request headers exceed {MAX_HEADER_BYTES} bytes."
            )),
        );
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || is_server_to_server(req.path())
    {
        return None;
    }
    let origin = req.app_data::<web::Data<PublicOrigin>>()?;
    match site(req.headers(), origin) {
        Site::CrossSite => Some(Problem::forbidden(
            "Cross-site requests that change state are refused.",
        )),
        Site::Unknown
            if !is_auth_path(req.path())
                && req
                    .app_data::<web::Data<Sessions>>()
                    .is_some_and(|sessions| req.cookie(sessions.cookie_name()).is_some()) =>
        {
            Some(Problem::forbidden(
                "A request that changes state with the session cookie must come from this origin \
                 (send `Origin` or `Sec-Fetch-Site: same-origin`).",
            ))
        }
        Site::SameOrigin | Site::Unknown => None,
    }
}

/// `/api/auth/backchannel-logout/*`: posted by an identity provider's server, which may send
/// any `Origin` or none. It reads no cookie (it acts on a signed logout token only), so there is
/// no ambient authority for a cross-site request to abuse.
fn is_server_to_server(path: &str) -> bool {
    path.starts_with("/api/auth/backchannel-logout/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn fetch_metadata_and_origin_classify_requests() {
        let origin: PublicOrigin = "https://app.example".parse().unwrap();
        let cases = [
            (vec![], Site::Unknown),
            (vec![("sec-fetch-site", "same-origin")], Site::SameOrigin),
            (vec![("sec-fetch-site", "none")], Site::SameOrigin),
            (vec![("origin", "https://app.example")], Site::SameOrigin),
            (vec![("sec-fetch-site", "same-site")], Site::CrossSite),
            (vec![("sec-fetch-site", "cross-site")], Site::CrossSite),
            (vec![("sec-fetch-site", "bogus")], Site::CrossSite),
            (vec![("origin", "null")], Site::CrossSite),
            (
                vec![("origin", "https://app.example.evil")],
                Site::CrossSite,
            ),
            (
                vec![
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://evil.example"),
                ],
                Site::CrossSite,
            ),
            (
                vec![
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://app.example"),
                ],
                Site::CrossSite,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(site(&headers(&pairs), &origin), expected, "{pairs:?}");
        }
    }
}
