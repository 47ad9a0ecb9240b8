//! Every cookie the gateway sets, in one list. The wings that set them take their names from
//! here ([`SESSION`] the session wing, [`CSRF`] and [`AUTH_FLOW`] the identity wing), and the
//! proxy uses [`is_gateway_cookie`] both ways: an upstream's `Set-Cookie` named like one of
//! them is dropped (it would shadow the user's session or CSRF token), and on a rule that
//! passes cookies the browser's own are sent upstream without them.
//!
//! A name counts as the gateway's whatever its case and however many `__Host-`/`__Secure-`
//! prefixes it wears (browsers compare prefixes case-insensitively, and some servers compare
//! names so too), and so does anything in next-auth's namespace (`next-auth.*`: the gateway
//! speaks next-auth's wire, so `next-auth.session-token` or `next-auth.callback-url` are its
//! names to give). A nameless cookie counts too: a browser sends its value as a bare name, so
//! `Set-Cookie: =session=x` would come back as `Cookie: session=x`.

/// A cookie of the gateway's: its plain name (development) and its `__Host-` name
/// (production: `Secure`, `Path=/`, no `Domain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayCookie {
    plain: &'static str,
    host: &'static str,
}

impl GatewayCookie {
    /// The name to use: `__Host-` prefixed when `secure`.
    pub const fn name(&self, secure: bool) -> &'static str {
        if secure { self.host } else { self.plain }
    }
}

/// The session cookie (`__Host-session` / `session`).
pub const SESSION: GatewayCookie = GatewayCookie {
    plain: "session",
    host: "__Host-session",
};

/// next-auth's double-submit CSRF token (`__Host-next-auth.csrf-token` / `next-auth.csrf-token`).
pub const CSRF: GatewayCookie = GatewayCookie {
    plain: "next-auth.csrf-token",
    host: "__Host-next-auth.csrf-token",
};

/// The browser binding of a provider sign-in in flight (`__Host-auth-flow` / `auth-flow`).
pub const AUTH_FLOW: GatewayCookie = GatewayCookie {
    plain: "auth-flow",
    host: "__Host-auth-flow",
};

/// Every cookie the gateway sets. A new one goes here, or upstreams may set it.
pub const ALL: [GatewayCookie; 3] = [SESSION, CSRF, AUTH_FLOW];

/// A namespace the gateway owns whole.
const NEXT_AUTH: &str = "next-auth.";

/// The cookie name prefixes browsers give meaning to.
const PREFIXES: [&str; 2] = ["__Host-", "__Secure-"];

/// `true` when a cookie named `name` (as a `Set-Cookie` or `Cookie` header spells it, spaces
/// around it ignored) is, or could be read as, one of the gateway's. Allocates nothing.
pub fn is_gateway_cookie(name: &str) -> bool {
    let mut name = name.trim();
    while let Some(rest) = PREFIXES
        .iter()
        .find_map(|prefix| strip_prefix_ignore_case(name, prefix))
    {
        name = rest;
    }
    name.is_empty()
        || strip_prefix_ignore_case(name, NEXT_AUTH).is_some()
        || ALL.iter().any(|c| c.plain.eq_ignore_ascii_case(name))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_names_count_in_any_case_behind_any_prefix() {
        for name in [
            "session",
            "Session",
            "SESSION",
            " session ",
            "__Host-session",
            "__host-session",
            "__HOST-SESSION",
            "__Secure-session",
            "__secure-__Host-session",
            "next-auth.csrf-token",
            "__Host-next-auth.csrf-token",
            "Next-Auth.Csrf-Token",
            "next-auth.session-token",
            "__Secure-next-auth.callback-url",
            "auth-flow",
            "__Host-Auth-Flow",
            "",
            "__Host-",
        ] {
            assert!(is_gateway_cookie(name), "{name:?}");
        }
    }

    #[test]
    fn other_names_do_not_count() {
        for name in [
            "sessions",
            "my-session",
            "session_id",
            "__Host-theme",
            "next-authx",
            "auth-flows",
            "é",
        ] {
            assert!(!is_gateway_cookie(name), "{name:?}");
        }
    }

    #[test]
    fn every_gateway_cookie_counts_in_both_spellings() {
        for cookie in ALL {
            assert!(is_gateway_cookie(cookie.name(false)));
            assert!(is_gateway_cookie(cookie.name(true)));
            assert!(cookie.name(true).starts_with("__Host-"));
        }
    }
}
