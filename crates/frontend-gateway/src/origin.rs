//! `PUBLIC_ORIGIN`: the one origin browsers use. Every absolute URL the gateway answers with is
//! built from it (never from `Host` or `X-Forwarded-Host`), it is the only `Origin` unsafe
//! requests may carry, and a URL a client hands back to be redirected to must point at it.
//!
//! In production on an `https://` origin every answer (the gateway's own, proxied ones, errors)
//! carries [`HSTS`] ([`hsts`]); nowhere else (a browser that saw it on a development or plain
//! http origin would refuse that origin's http for a year).

use std::str::FromStr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::Uri;
use actix_web::http::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use actix_web::middleware::Next;
use web_common::env::ConfigError;

use crate::proxy::rewrite::base_url;

/// `scheme://host[:port]`, lower-cased, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(String);

impl PublicOrigin {
    /// The origin, e.g. `https://app.example.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `true` for `https://`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `true` for a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`): browsers treat such an
    /// origin as secure even over plain http, so `Secure` cookies still work there.
    pub fn is_loopback(&self) -> bool {
        let Ok(uri) = self.0.parse::<Uri>() else {
            return false;
        };
        match uri.host() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        }
    }

    /// An absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// `candidate` when it points at this origin (a path, or an absolute URL on the origin),
    /// else the origin's root: what a `callbackUrl` may be, so there are no open redirects.
    pub fn same_origin_url(&self, candidate: Option<&str>) -> String {
        let fallback = self.url("/");
        let Some(c) = candidate.map(str::trim).filter(|c| !c.is_empty()) else {
            return fallback;
        };
        if c.chars().any(|ch| ch == '\\' || ch.is_control()) {
            return fallback;
        }
        if c.starts_with('/') && !c.starts_with("//") {
            return self.url(c);
        }
        if c == self.0
            || c.strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with(['/', '?', '#']))
        {
            return c.to_owned();
        }
        fallback
    }
}

/// The `Strict-Transport-Security` value: a year, this host only.
pub const HSTS: &str = "max-age=31536000";

/// Whether answers carry [`HSTS`]: in production, on an `https://` origin.
pub fn sends_hsts(production: bool, origin: &PublicOrigin) -> bool {
    production && origin.is_https()
}

/// Middleware (mounted only when [`sends_hsts`]): [`HSTS`] on every answer, an error that no
/// inner layer turned into a response (the session store down) included.
pub async fn hsts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let value = HeaderValue::from_static(HSTS);
    match next.call(req).await {
        Ok(mut res) => {
            res.headers_mut().insert(STRICT_TRANSPORT_SECURITY, value);
            Ok(res)
        }
        Err(e) => {
            let mut res = e.error_response();
            res.headers_mut().insert(STRICT_TRANSPORT_SECURITY, value);
            Err(InternalError::from_response(e, res).into())
        }
    }
}

impl FromStr for PublicOrigin {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConfigError::invalid("PUBLIC_ORIGIN", reason);
        // An upstream base URL (http(s), a host, no user info, no query) that is only an origin.
        let base = base_url(s).map_err(|reason| invalid(&reason))?;
        let uri: Uri = base.parse().map_err(|_| invalid("not a URL"))?;
        if !matches!(uri.path(), "" | "/") {
            return Err(invalid(
                "must be an origin (scheme, host and port) without a path",
            ));
        }
        Ok(Self(base.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port_only() {
        let origin: PublicOrigin = " HTTPS://App.Example:8443/ ".parse().unwrap();
        assert_eq!(origin.as_str(), "https://app.example:8443");
        assert!(origin.is_https());
        for bad in [
            "app.example",
            "ftp://app.example",
            "http://",
            "http://u:p@app.example",
            "http://app.example/app",
            "http://app.example/?q=1",
        ] {
            let err = bad.parse::<PublicOrigin>().unwrap_err();
            assert!(err.to_string().starts_with("PUBLIC_ORIGIN"), "{bad}: {err}");
        }
    }

    #[test]
    fn loopback_origins_are_localhost_127_0_0_0_8_and_ipv6_one() {
        for (origin, loopback) in [
            ("http://localhost:3000", true),
            ("http://localhost", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.8.9.10", true),
            ("http://[::1]:3000", true),
            ("http://localhost.example.com", false),
            ("http://example.com", false),
            ("http://128.0.0.1", false),
            ("http://[::2]", false),
            ("https://app.example", false),
        ] {
            let parsed: PublicOrigin = origin.parse().unwrap();
            assert_eq!(parsed.is_loopback(), loopback, "{origin}");
        }
    }

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
            assert_eq!(origin.same_origin_url(candidate), expected, "{candidate:?}");
        }
    }
}
