//! `PUBLIC_ORIGIN`: the one origin browsers use. Every absolute URL the gateway answers with is
//! built from it (never from `Host` or `X-Forwarded-Host`), it is the only `Origin` unsafe
//! requests may carry, and a URL a client hands back to be redirected to must point at it.

use std::str::FromStr;

use actix_web::http::Uri;
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
