//! The double-submit CSRF token next-auth's client expects.
//!
//! `GET /api/auth/csrf` answers `{csrfToken}` and sets a cookie `token|hmac` where
//! `hmac = HMAC-SHA256(key, token)`: a cookie written by anyone without the key (a sibling
//! subdomain, a cookie-injection bug) does not verify. A form passes when its `csrfToken` equals
//! the cookie's token and the cookie's hash verifies, both compared in constant time.
//!
//! Every unsafe `/api/auth/*` request that acts on an existing session (sign-out everywhere, a
//! password change, unlinking a provider) passes [`Csrf::session_action`]: a browser's
//! same-origin signal, or else this token (a `csrfToken` field or the [`HEADER`]). A client
//! without a browser (no `Sec-Fetch-Site`, no `Origin`) fetches the token first; a cookie alone
//! is never enough.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::HeaderName;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use web_common::Problem;

use crate::guard::{Site, site};
use crate::origin::PublicOrigin;

type HmacSha256 = Hmac<Sha256>;

/// The header a request acting on a session may carry its CSRF token in (instead of a
/// `csrfToken` field).
pub const HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// Issues and checks CSRF tokens.
#[derive(Clone)]
pub struct Csrf {
    key: Vec<u8>,
    secure: bool,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csrf")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Csrf {
    /// Tokens keyed by `session_key` (a purpose-specific key is derived from it); `secure`
    /// gives the cookie the `__Host-` prefix and `Secure`.
    pub fn new(session_key: &[u8], secure: bool) -> Self {
        let mut mac = HmacSha256::new_from_slice(session_key).expect("HMAC takes any key length");
        mac.update(b"frontend-gateway csrf v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
            secure,
        }
    }

    /// The cookie's name (next-auth's, with `__Host-` when secure).
    pub fn cookie_name(&self) -> &'static str {
        crate::cookies::CSRF.name(self.secure)
    }

    fn mac(&self, token: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        mac
    }

    /// The token inside a cookie value, when its hash verifies.
    fn token_in<'c>(&self, cookie: &'c str) -> Option<&'c str> {
        let (token, hash) = cookie.split_once('|')?;
        let hash = hex::decode(hash).ok()?;
        self.mac(token).verify_slice(&hash).ok()?;
        Some(token)
    }

    /// The token to hand out: the one in a valid existing cookie, or a fresh one with the cookie
    /// to set.
    pub fn issue(&self, existing: Option<&str>) -> (String, Option<Cookie<'static>>) {
        if let Some(token) = existing.and_then(|c| self.token_in(c)) {
            return (token.to_owned(), None);
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let hash = hex::encode(self.mac(&token).finalize().into_bytes());
        let cookie = Cookie::build(self.cookie_name(), format!("{token}|{hash}"))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .finish();
        (token, Some(cookie))
    }

    /// `true` when a next-auth form's `csrfToken` field matches the token of `req`'s valid CSRF
    /// cookie.
    pub fn form_ok(&self, req: &HttpRequest, fields: &HashMap<String, String>) -> bool {
        let cookie = req.cookie(self.cookie_name());
        self.verify(
            cookie.as_ref().map(|c| c.value()),
            fields.get("csrfToken").map(String::as_str),
        )
    }

    /// Whether `req`, an unsafe request acting on the current session, may: it says it comes
    /// from `origin` (`Sec-Fetch-Site: same-origin`/`none`, or `Origin` equal to it; a
    /// cross-site signal never reaches here, the guard refuses it), or else it carries the token
    /// of its valid CSRF cookie as `submitted` (a body's `csrfToken`) or in [`HEADER`]. A 403
    /// problem otherwise.
    pub fn session_action(
        &self,
        req: &HttpRequest,
        origin: &PublicOrigin,
        submitted: Option<&str>,
    ) -> Result<(), Problem> {
        if site(req.headers(), origin) == Site::SameOrigin {
            return Ok(());
        }
        let header = req.headers().get(HEADER).and_then(|v| v.to_str().ok());
        let cookie = req.cookie(self.cookie_name());
        if self.verify(cookie.as_ref().map(|c| c.value()), submitted.or(header)) {
            return Ok(());
        }
        Err(Problem::forbidden(
            "A request acting on your session must come from this origin (Sec-Fetch-Site: \
             same-origin, or Origin) or carry the csrfToken of GET /api/auth/csrf (a csrfToken \
             field or the X-CSRF-Token header).",
        ))
    }

    /// `true` when `submitted` matches the token of a valid `cookie`.
    pub fn verify(&self, cookie: Option<&str>, submitted: Option<&str>) -> bool {
        let (Some(cookie), Some(submitted)) = (cookie, submitted) else {
            return false;
        };
        match self.token_in(cookie) {
            Some(token) => bool::from(token.as_bytes().ct_eq(submitted.as_bytes())),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csrf() -> Csrf {
        Csrf::new(&[7; 64], false)
    }

    #[test]
    fn an_issued_token_verifies_against_its_cookie() {
        let (token, cookie) = csrf().issue(None);
        let cookie = cookie.unwrap();
        assert!(csrf().verify(Some(cookie.value()), Some(&token)));
        assert!(cookie.http_only().unwrap_or(false));
        assert_eq!(cookie.path(), Some("/"));
    }

    #[test]
    fn a_valid_cookie_is_reused() {
        let (token, cookie) = csrf().issue(None);
        let (again, none) = csrf().issue(Some(cookie.unwrap().value()));
        assert_eq!(token, again);
        assert!(none.is_none());
    }

    #[test]
    fn a_wrong_token_or_a_forged_cookie_fails() {
        let (token, cookie) = csrf().issue(None);
        let value = cookie.unwrap().value().to_owned();
        assert!(!csrf().verify(Some(&value), Some("nope")));
        assert!(!csrf().verify(Some(&value), None));
        assert!(!csrf().verify(None, Some(&token)));
        let forged = format!("{token}|{}", "00".repeat(32));
        assert!(!csrf().verify(Some(&forged), Some(&token)));
        let other_key = Csrf::new(&[8; 64], false);
        assert!(!other_key.verify(Some(&value), Some(&token)));
    }

    #[test]
    fn a_secure_cookie_uses_the_host_prefix() {
        let (_, cookie) = Csrf::new(&[7; 64], true).issue(None);
        let cookie = cookie.unwrap();
        assert_eq!(cookie.name(), "__Host-next-auth.csrf-token");
        assert_eq!(cookie.secure(), Some(true));
    }
}
