//! The header decisions of the hop that need more than a header's name: which cookies cross
//! it, and the caching default of an authenticated answer.
//!
//! * Cookies cross only on a rule with `"passCookies": true` (the backend's does not: it never
//!   reads one). There the browser's `Cookie` pairs go upstream minus every cookie the gateway
//!   sets ([`upstream_cookie`]), and the upstream's `Set-Cookie`s come back minus any named
//!   like one of the gateway's ([`upstream_may_set`]; see [`crate::cookies`]). A gateway-named
//!   `Set-Cookie` is dropped on every rule and logged: it would shadow the user's session or
//!   CSRF token.
//! * An authenticated answer (a token was injected) that says nothing about caching, neither
//!   `Cache-Control` nor `Expires`, gets [`PRIVATE_NO_STORE`]: a shared cache must never keep
//!   one user's data. `Pragma` does not count: it has no defined meaning in a response
//!   (RFC 9111 section 5.4), and caches obey `Cache-Control`. An upstream's own caching
//!   headers are kept, and unauthenticated answers are left alone.
//!
//! Nothing here runs, or allocates, for a request without cookies on such a rule or an answer
//! without `Set-Cookie`.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::cookies::is_gateway_cookie;

/// What an authenticated answer without caching headers gets.
pub const PRIVATE_NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");

/// The browser's cookies for a rule that passes them: the pairs of every `Cookie` header, minus
/// the gateway's (and any pair whose name is not text), as one header; `None` when none is
/// left.
pub fn upstream_cookie(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut kept: Vec<u8> = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() || is_gateway_pair(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&kept).ok()
}

/// Whether an upstream's `Set-Cookie` (`value`) may reach the browser: never when it is named
/// like a gateway cookie (dropped with a warning), otherwise only when the rule
/// `pass_cookies`.
pub fn upstream_may_set(value: &HeaderValue, pass_cookies: bool) -> bool {
    let bytes = value.as_bytes();
    let pair = bytes.split(|&b| b == b';').next().unwrap_or_default();
    if is_gateway_pair(pair) {
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        tracing::warn!(
            cookie = ?String::from_utf8_lossy(name.trim_ascii()),
            "an upstream tried to set a cookie named like the gateway's; dropped"
        );
        return false;
    }
    if !pass_cookies {
        tracing::debug!("an upstream cookie was dropped: its rule does not pass cookies");
    }
    pass_cookies
}

/// `true` for a header by which an upstream decided how its answer is cached.
pub fn is_caching_header(name: &HeaderName) -> bool {
    name == header::CACHE_CONTROL || name == header::EXPIRES
}

/// `true` when a `name=value` pair (of a `Cookie` or the start of a `Set-Cookie`) is, or could
/// be read as, a gateway cookie. A pair without `=` is nameless (browsers send its value as a
/// bare name), a name that is not text cannot be compared: both count.
fn is_gateway_pair(pair: &[u8]) -> bool {
    let Some(eq) = pair.iter().position(|&b| b == b'=') else {
        return true;
    };
    std::str::from_utf8(&pair[..eq]).map_or(true, is_gateway_cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::COOKIE, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn the_browsers_cookies_go_upstream_without_the_gateways() {
        let map = cookies(&[
            "theme=dark; session=s; __Host-session=h; next-auth.csrf-token=c",
            "lang=en;auth-flow=f; bare; =x; __Secure-next-auth.callback-url=u; cart=3",
        ]);
        assert_eq!(
            upstream_cookie(&map).unwrap(),
            "theme=dark; lang=en; cart=3"
        );
        assert_eq!(upstream_cookie(&cookies(&["session=s"])), None);
        assert_eq!(upstream_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn gateway_named_set_cookies_are_dropped_on_every_rule() {
        for value in [
            "session=evil; Path=/",
            "SESSION=evil",
            "__Host-session=evil; Secure; Path=/",
            "__host-SESSION=evil",
            "__Secure-session=evil",
            " next-auth.csrf-token =evil",
            "next-auth.session-token=evil",
            "__Host-auth-flow=evil",
            "=session=evil",
            "session",
        ] {
            let value = HeaderValue::from_static(value);
            assert!(!upstream_may_set(&value, true), "{value:?}");
            assert!(!upstream_may_set(&value, false), "{value:?}");
        }
    }

    #[test]
    fn other_set_cookies_pass_only_on_rules_that_pass_cookies() {
        let value = HeaderValue::from_static("files-pref=1; Path=/; HttpOnly");
        assert!(upstream_may_set(&value, true));
        assert!(!upstream_may_set(&value, false));
    }
}
