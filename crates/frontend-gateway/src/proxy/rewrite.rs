//! The rewrite table (the seed's `next.config.ts` `rewrites()`, at run time), and the path
//! checks every request goes through first. Pure code: no I/O, no actix types.
//!
//! A [`Rule`] maps a source pattern to either "the gateway answers" or an upstream URL
//! template. Patterns are `/`-separated segments: literals, `:name` (one segment), `:name*`
//! (zero or more, last only) and `:name+` (one or more, last only). Rules are tried in order;
//! the first match wins. Whatever the table says, a path under `/api/auth` (compared after
//! percent-decoding, ignoring case) is never sent upstream.

use std::fmt;

use actix_web::http::Uri;
use serde::Deserialize;

/// Why a path was refused (the gateway answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not starting with `/`.
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// `//` somewhere.
    #[error("the path contains an empty segment (`//`)")]
    EmptySegment,
    /// `.` or `..`, possibly percent-encoded, possibly behind a path parameter (`..;x`).
    #[error("the path contains a dot segment")]
    DotSegment,
    /// `/` or `\` hidden in a segment (`%2f`, `%5c`), or a raw backslash.
    #[error("the path contains an encoded slash or a backslash")]
    Slash,
    /// NUL or another control character.
    #[error("the path contains a control character")]
    ControlCharacter,
    /// Longer than [`MAX_PATH_LEN`] bytes.
    #[error("the path is too long")]
    TooLong,
    /// A `%` not followed by two hex digits.
    #[error("the path contains a malformed percent-encoding")]
    BadEncoding,
    /// An escape that decodes to another escape (`%252e`, `%25252f`, at any depth).
    #[error("the path is percent-encoded twice")]
    DoubleEncoding,
    /// Escapes that decode to bytes that are not UTF-8 (`%ff`, the overlong `%c0%ae`).
    #[error("the path does not decode to UTF-8")]
    InvalidUtf8,
    /// Path parameters on `/api/auth` (`/api/auth;x/session`): a server that drops them
    /// would read a path the gateway keeps.
    #[error("the path has parameters on /api/auth")]
    AuthParameter,
}

/// The longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 2048;

/// Refuses paths that could mean something else to the upstream than to this matcher. A
/// segment is checked as it is and, when it has escapes, once decoded (which must give UTF-8
/// without another escape in it); either way a dot segment is looked for in front of any `;`
/// too, since some servers (Tomcat, Spring) drop path parameters and read `..;x` as `..`.
/// Costs no allocation for a path without `%`.
pub fn check_path(path: &str) -> Result<(), PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if path.contains("//") {
        return Err(PathError::EmptySegment);
    }
    for segment in rest.split('/') {
        check_segment(segment)?;
    }
    if has_auth_parameters(rest) {
        return Err(PathError::AuthParameter);
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    check_text(segment.as_bytes(), false)?;
    if !segment.contains('%') {
        return Ok(());
    }
    let decoded = percent_decode(segment.as_bytes()).ok_or(PathError::BadEncoding)?;
    let text = std::str::from_utf8(&decoded).map_err(|_| PathError::InvalidUtf8)?;
    check_text(&decoded, true)?;
    if text.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if has_escape(&decoded) {
        return Err(PathError::DoubleEncoding);
    }
    Ok(())
}

/// The checks a segment passes raw and, when it has escapes, decoded.
fn check_text(text: &[u8], decoded: bool) -> Result<(), PathError> {
    let name = text.split(|&b| b == b';').next().unwrap_or_default();
    if name == b"." || name == b".." {
        return Err(PathError::DotSegment);
    }
    if text.iter().any(|&b| b == b'\\' || (decoded && b == b'/')) {
        return Err(PathError::Slash);
    }
    if text.iter().any(u8::is_ascii_control) {
        return Err(PathError::ControlCharacter);
    }
    Ok(())
}

/// `true` when `input` holds a `%XX` escape.
fn has_escape(input: &[u8]) -> bool {
    input
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// `true` for `api;x/auth...` or `api/auth;x...` (any case, any encoding): parameters that
/// would hide `/api/auth` from [`is_auth_path`]. Only a path whose first segments have a `;`
/// or a `%` is looked at closer.
fn has_auth_parameters(rest: &str) -> bool {
    let mut segments = rest.splitn(3, '/');
    let (Some(first), Some(second)) = (segments.next(), segments.next()) else {
        return false;
    };
    let suspicious = |s: &str| s.contains([';', '%']);
    if !suspicious(first) && !suspicious(second) {
        return false;
    }
    let named = |segment: &str, word: &str| {
        percent_decode(segment.as_bytes()).is_some_and(|decoded| {
            let name = decoded.split(|&b| b == b';').next().unwrap_or_default();
            name.eq_ignore_ascii_case(word.as_bytes())
        })
    };
    let has_parameter = |segment: &str| {
        percent_decode(segment.as_bytes()).is_some_and(|decoded| decoded.contains(&b';'))
    };
    named(first, "api") && named(second, "auth") && (has_parameter(first) || has_parameter(second))
}

/// Decodes `%XX` escapes; `None` when one is malformed.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `true` for `/api/auth` and anything below it, however it is encoded or cased.
pub fn is_auth_path(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').split('/').map(|s| {
        percent_decode(s.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).to_ascii_lowercase())
            .unwrap_or_default()
    });
    segments.next().as_deref() == Some("api") && segments.next().as_deref() == Some("auth")
}

/// Checks an upstream base URL (`http(s)://host[:port][/prefix]`, no user info, no query) and
/// drops any trailing slash.
pub fn base_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.trim().parse().map_err(|_| "not a URL".to_owned())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://".to_owned());
    }
    if uri
        .authority()
        .is_none_or(|a| a.host().is_empty() || a.as_str().contains('@'))
    {
        return Err("must name a host (and no user info)".to_owned());
    }
    if uri.query().is_some() {
        return Err("must not have a query string".to_owned());
    }
    Ok(url.trim().trim_end_matches('/').to_owned())
}

/// A rule as configured (`GATEWAY_REWRITES` is a JSON list of these; an unknown field, a typo
/// such as `passCookie`, is refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleConfig {
    /// A pattern such as `/api/files/:path*`.
    pub source: String,
    /// An `http(s)` URL template such as `http://files:9000/:path*`.
    pub destination: String,
    /// Whether requests with a session carry a freshly minted bearer token. Off unless set:
    /// a token never goes to a destination that did not opt in.
    #[serde(default, alias = "inject_token")]
    pub inject_token: bool,
    /// Whether cookies pass: the browser's (minus every cookie the gateway sets, see
    /// [`crate::cookies`]) to the upstream, and the upstream's `Set-Cookie`s (minus any named
    /// like a gateway cookie) back. Off unless set: an upstream neither reads the browser's
    /// cookies nor fills its jar.
    #[serde(default, alias = "pass_cookies")]
    pub pass_cookies: bool,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The source pattern is malformed.
    #[error("bad source pattern `{0}`: {1}")]
    Source(String, &'static str),
    /// The destination is malformed.
    #[error("bad destination `{0}`: {1}")]
    Destination(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One(String),
    ZeroOrMore(String),
    OneOrMore(String),
}

impl Segment {
    fn parse(s: &str) -> Result<Self, &'static str> {
        let Some(param) = s.strip_prefix(':') else {
            return if s.is_empty() {
                Err("empty segment")
            } else {
                Ok(Self::Literal(s.to_owned()))
            };
        };
        let (name, make): (&str, fn(String) -> Self) = if let Some(n) = param.strip_suffix('*') {
            (n, Self::ZeroOrMore)
        } else if let Some(n) = param.strip_suffix('+') {
            (n, Self::OneOrMore)
        } else {
            (param, Self::One)
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("parameter names are letters, digits and `_`");
        }
        Ok(make(name.to_owned()))
    }

    fn name(&self) -> Option<&str> {
        match self {
            Self::Literal(_) => None,
            Self::One(n) | Self::ZeroOrMore(n) | Self::OneOrMore(n) => Some(n),
        }
    }
}

/// A source pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses `/literal/:one/:rest*`.
    pub fn parse(source: &str) -> Result<Self, RuleError> {
        let bad = |why| RuleError::Source(source.to_owned(), why);
        let rest = source
            .strip_prefix('/')
            .ok_or_else(|| bad("must start with `/`"))?;
        let segments = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/')
                .map(Segment::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?
        };
        let last = segments.len().saturating_sub(1);
        for (i, segment) in segments.iter().enumerate() {
            if matches!(segment, Segment::ZeroOrMore(_) | Segment::OneOrMore(_)) && i != last {
                return Err(bad("`:name*` and `:name+` must be the last segment"));
            }
            if let Some(name) = segment.name()
                && segments[..i].iter().any(|s| s.name() == Some(name))
            {
                return Err(bad("a parameter name is used twice"));
            }
        }
        Ok(Self { segments })
    }

    /// The captures when `path` (raw, without query) matches.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        let mut captures = Vec::new();
        let mut remaining = Some(rest).filter(|r| !r.is_empty());
        for segment in &self.segments {
            match segment {
                Segment::ZeroOrMore(name) => {
                    captures.push((name.as_str(), remaining.take().unwrap_or("")));
                }
                Segment::OneOrMore(name) => {
                    captures.push((name.as_str(), remaining.take().filter(|r| !r.is_empty())?));
                }
                Segment::Literal(_) | Segment::One(_) => {
                    let current = remaining?;
                    let (head, tail) = match current.split_once('/') {
                        Some((head, tail)) => (head, Some(tail)),
                        None => (current, None),
                    };
                    match segment {
                        Segment::Literal(literal) if head != literal => return None,
                        Segment::One(name) if !head.is_empty() => {
                            captures.push((name.as_str(), head))
                        }
                        Segment::One(_) => return None,
                        _ => {}
                    }
                    remaining = tail;
                }
            }
        }
        remaining.is_none().then_some(captures)
    }

    fn has(&self, name: &str) -> bool {
        self.segments.iter().any(|s| s.name() == Some(name))
    }
}

/// A destination: `http(s)://authority` plus a path template using the source's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    base: String,
    path: Vec<Segment>,
}

impl Template {
    fn parse(destination: &str, source: &Pattern) -> Result<Self, RuleError> {
        let bad = |why: &str| RuleError::Destination(destination.to_owned(), why.to_owned());
        let after_scheme = destination
            .strip_prefix("http://")
            .or_else(|| destination.strip_prefix("https://"))
            .ok_or_else(|| bad("must start with http:// or https://"))?;
        let authority_len = after_scheme.find('/').unwrap_or(after_scheme.len());
        let base_len = destination.len() - after_scheme.len() + authority_len;
        let (base, path) = destination.split_at(base_len);
        base_url(base).map_err(|why| bad(&why))?;
        if path.contains(['?', '#']) {
            return Err(bad(
                "must not have a query or fragment (the request's query is kept)",
            ));
        }
        let path = match path.strip_prefix('/') {
            None | Some("") => Vec::new(),
            Some(p) => p
                .split('/')
                .map(Segment::parse)
                .collect::<Result<_, _>>()
                .map_err(bad)?,
        };
        for name in path.iter().filter_map(Segment::name) {
            if !source.has(name) {
                return Err(bad("uses a parameter the source does not capture"));
            }
        }
        Ok(Self {
            base: base.to_owned(),
            path,
        })
    }

    fn render(&self, captures: &[(&str, &str)], query: &str) -> String {
        let mut url = self.base.clone();
        for segment in &self.path {
            let text = match segment {
                Segment::Literal(l) => l.as_str(),
                _ => {
                    let name = segment.name().unwrap_or_default();
                    captures
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or("", |(_, v)| v)
                }
            };
            url.push('/');
            url.push_str(text);
        }
        if self.path.is_empty() {
            url.push('/');
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Gateway,
    Upstream {
        destination: Template,
        inject_token: bool,
        pass_cookies: bool,
    },
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    source: Pattern,
    /// The source as configured (the rule's label in metrics).
    label: String,
    target: Target,
}

impl Rule {
    /// Requests matching `source` are answered by the gateway itself.
    pub fn gateway(source: &str) -> Result<Self, RuleError> {
        Ok(Self {
            source: Pattern::parse(source)?,
            label: source.to_owned(),
            target: Target::Gateway,
        })
    }

    /// Requests matching `source` go to `destination`, with a token when `inject_token`, and
    /// no cookies either way (see [`Rule::passing_cookies`]).
    pub fn upstream(
        source: &str,
        destination: &str,
        inject_token: bool,
    ) -> Result<Self, RuleError> {
        let label = source.to_owned();
        let source = Pattern::parse(source)?;
        let destination = Template::parse(destination, &source)?;
        Ok(Self {
            source,
            label,
            target: Target::Upstream {
                destination,
                inject_token,
                pass_cookies: false,
            },
        })
    }

    /// This rule, letting cookies through (both ways, minus the gateway's) when `pass`.
    pub fn passing_cookies(mut self, pass: bool) -> Self {
        if let Target::Upstream { pass_cookies, .. } = &mut self.target {
            *pass_cookies = pass;
        }
        self
    }
}

impl TryFrom<&RuleConfig> for Rule {
    type Error = RuleError;

    fn try_from(config: &RuleConfig) -> Result<Self, RuleError> {
        if is_auth_path(&config.source) {
            return Err(RuleError::Source(
                config.source.clone(),
                "/api/auth is kept by the gateway",
            ));
        }
        Ok(
            Self::upstream(&config.source, &config.destination, config.inject_token)?
                .passing_cookies(config.pass_cookies),
        )
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The gateway answers (or 404s).
    Gateway,
    /// Forward to `url`, minting a token when `inject_token` and there is a session.
    Upstream {
        /// The rule's place in the table (see [`Rules::labels`]).
        rule: usize,
        /// The full upstream URL, query included.
        url: String,
        /// Whether the rule opted in to tokens.
        inject_token: bool,
        /// Whether the rule opted in to cookies.
        pass_cookies: bool,
    },
    /// No rule matched.
    NoMatch,
}

/// The ordered rule table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// A table tried in the given order.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self(rules)
    }

    /// The gateway's table: `/api/auth/:path*` (kept by the gateway), then `extra` (the rules
    /// of `GATEWAY_REWRITES`) in order, then `/api/:path*` to `backend` (a checked
    /// [`base_url`]) with a token and without cookies (the backend reads none, so one it set
    /// would only fill the browser's jar).
    pub fn standard(backend: &str, extra: &[RuleConfig]) -> Result<Self, RuleError> {
        let mut rules = vec![Rule::gateway("/api/auth/:path*")?];
        for config in extra {
            rules.push(Rule::try_from(config)?);
        }
        rules.push(Rule::upstream(
            "/api/:path*",
            &format!("{backend}/:path*"),
            true,
        )?);
        Ok(Self(rules))
    }

    /// Each rule's source as configured, in table order (the `rule` label of the proxy's
    /// metrics: a fixed set, whatever paths clients send).
    pub fn labels(&self) -> Vec<String> {
        self.0.iter().map(|r| r.label.clone()).collect()
    }

    /// Decides where a request for `path` (checked with [`check_path`]) and `query` goes.
    pub fn decide(&self, path: &str, query: &str) -> Decision {
        if is_auth_path(path) {
            return Decision::Gateway;
        }
        for (index, rule) in self.0.iter().enumerate() {
            let Some(captures) = rule.source.captures(path) else {
                continue;
            };
            return match &rule.target {
                Target::Gateway => Decision::Gateway,
                Target::Upstream {
                    destination,
                    inject_token,
                    pass_cookies,
                } => Decision::Upstream {
                    rule: index,
                    url: destination.render(&captures, query),
                    inject_token: *inject_token,
                    pass_cookies: *pass_cookies,
                },
            };
        }
        Decision::NoMatch
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gateway => f.write_str("gateway"),
            Self::Upstream { url, .. } => write!(f, "upstream {url}"),
            Self::NoMatch => f.write_str("no match"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BACKEND: &str = "http://backend:8080";

    fn defaults() -> Rules {
        Rules::new(vec![
            Rule::gateway("/api/auth/:path*").unwrap(),
            Rule::upstream("/api/:path*", &format!("{BACKEND}/:path*"), true).unwrap(),
        ])
    }

    fn upstream(url: &str) -> Decision {
        Decision::Upstream {
            rule: 1,
            url: url.to_owned(),
            inject_token: true,
            pass_cookies: false,
        }
    }

    #[test]
    fn api_paths_go_to_the_backend_without_the_prefix_and_keep_the_query() {
        let rules = defaults();
        assert_eq!(
            rules.decide("/api/workspaces", ""),
            upstream("http://backend:8080/workspaces")
        );
        assert_eq!(
            rules.decide("/api/workspaces/42/members", "limit=5&x=%20"),
            upstream("http://backend:8080/workspaces/42/members?limit=5&x=%20")
        );
        assert_eq!(rules.decide("/api", ""), upstream("http://backend:8080/"));
        assert_eq!(
            rules.decide("/api/me/", ""),
            upstream("http://backend:8080/me/")
        );
    }

    #[test]
    fn auth_paths_stay_in_the_gateway_however_they_are_spelled() {
        let rules = defaults();
        for path in [
            "/api/auth",
            "/api/auth/csrf",
            "/api/auth/x/y",
            "/API/Auth/csrf",
            "/api/%61uth/csrf",
        ] {
            assert_eq!(rules.decide(path, ""), Decision::Gateway, "{path}");
        }
        assert_eq!(
            rules.decide("/api/authors", ""),
            upstream("http://backend:8080/authors")
        );
    }

    #[test]
    fn paths_outside_every_rule_do_not_match() {
        assert_eq!(defaults().decide("/", ""), Decision::NoMatch);
        assert_eq!(defaults().decide("/apix/y", ""), Decision::NoMatch);
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = Rules::new(vec![
            Rule::upstream("/api/files/:id", "http://files/blob/:id", false).unwrap(),
            Rule::upstream("/api/:path*", "http://backend/:path*", true).unwrap(),
        ]);
        assert_eq!(
            rules.decide("/api/files/7", "v=1"),
            Decision::Upstream {
                rule: 0,
                url: "http://files/blob/7?v=1".into(),
                inject_token: false,
                pass_cookies: false,
            }
        );
        assert_eq!(
            rules.decide("/api/files/7/raw", ""),
            Decision::Upstream {
                rule: 1,
                url: "http://backend/files/7/raw".into(),
                inject_token: true,
                pass_cookies: false,
            }
        );
    }

    #[test]
    fn one_or_more_needs_a_segment_and_one_needs_exactly_one() {
        let plus = Pattern::parse("/a/:rest+").unwrap();
        assert_eq!(plus.captures("/a"), None);
        assert_eq!(plus.captures("/a/"), None);
        assert_eq!(plus.captures("/a/b/c"), Some(vec![("rest", "b/c")]));
        let one = Pattern::parse("/a/:id/b").unwrap();
        assert_eq!(one.captures("/a/1/b"), Some(vec![("id", "1")]));
        assert_eq!(one.captures("/a/1/2/b"), None);
        assert_eq!(one.captures("/a/1"), None);
        assert_eq!(one.captures("/a/1/b/"), None);
        let star = Pattern::parse("/a/:rest*").unwrap();
        assert_eq!(star.captures("/a"), Some(vec![("rest", "")]));
        assert_eq!(star.captures("/ab"), None);
    }

    #[test]
    fn malformed_rules_are_refused() {
        assert!(Pattern::parse("api").is_err());
        assert!(Pattern::parse("/a/:rest*/b").is_err());
        assert!(Pattern::parse("/a/:").is_err());
        assert!(Pattern::parse("/a/:x/:x").is_err());
        assert!(Pattern::parse("/a//b").is_err());
        assert!(Rule::upstream("/a/:x", "http://b/:y", false).is_err());
        assert!(Rule::upstream("/a", "ftp://b/", false).is_err());
        assert!(Rule::upstream("/a", "http://b/x?y=1", false).is_err());
        let auth = RuleConfig {
            source: "/api/auth/x".into(),
            destination: "http://b".into(),
            inject_token: false,
            pass_cookies: false,
        };
        assert!(Rule::try_from(&auth).is_err());
    }

    #[test]
    fn attack_paths_are_refused() {
        let cases = [
            ("/api/../admin", PathError::DotSegment),
            ("/api/./me", PathError::DotSegment),
            ("/api/%2e%2e/admin", PathError::DotSegment),
            ("/api/%2E./admin", PathError::DotSegment),
            ("/api/.%2e", PathError::DotSegment),
            ("/api/%252e%252e/admin", PathError::DoubleEncoding),
            ("/api/..;/admin", PathError::DotSegment),
            ("/api/.;x/me", PathError::DotSegment),
            ("/api/%2e%2e;x/admin", PathError::DotSegment),
            ("/api/..%3b/admin", PathError::DotSegment),
            ("/api/%25252f", PathError::DoubleEncoding),
            ("/api/%2525252e%2525252e", PathError::DoubleEncoding),
            ("/api/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
            ("/api/%ff", PathError::InvalidUtf8),
            ("/api/a%c2%85b", PathError::ControlCharacter),
            ("/api/auth;x/session", PathError::AuthParameter),
            ("/API/Auth;/session", PathError::AuthParameter),
            ("/api;x/auth/session", PathError::AuthParameter),
            ("/api/%61uth%3bx/session", PathError::AuthParameter),
            ("/api/a%2fb", PathError::Slash),
            ("/api/a%2Fb", PathError::Slash),
            ("/api/a%5cb", PathError::Slash),
            ("/api/a\\b", PathError::Slash),
            ("/api/a%00b", PathError::ControlCharacter),
            ("/api/a\0b", PathError::ControlCharacter),
            ("//evil.example/api", PathError::EmptySegment),
            ("/api//me", PathError::EmptySegment),
            ("/api/%zz", PathError::BadEncoding),
            ("api/me", PathError::NotAbsolute),
        ];
        let long = format!("/api/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(check_path(&long), Err(PathError::TooLong));
        for (path, error) in cases {
            assert_eq!(check_path(path), Err(error), "{path:?}");
        }
    }

    #[test]
    fn ordinary_paths_pass_the_checks() {
        for path in [
            "/",
            "/api/me",
            "/api/workspaces/",
            "/api/a.b/..c/%20x",
            "/api/%C3%A9",
            "/api/100%25",
            "/api/50%25off",
            "/api/a;b",
            "/api/authors;v=1",
            "/api/%61uth/csrf",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_~.-]{1,12}".prop_filter("not a dot segment", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn every_clean_api_path_is_forwarded_verbatim_with_its_query(
            segments in prop::collection::vec(segment(), 1..6),
            query in "[a-z0-9=&%]{0,20}",
        ) {
            prop_assume!(!segments[0].eq_ignore_ascii_case("auth"));
            let rest = segments.join("/");
            let path = format!("/api/{rest}");
            prop_assert_eq!(check_path(&path), Ok(()));
            let expected = if query.is_empty() {
                format!("{BACKEND}/{rest}")
            } else {
                format!("{BACKEND}/{rest}?{query}")
            };
            prop_assert_eq!(defaults().decide(&path, &query), upstream(&expected));
        }

        #[test]
        fn nothing_under_api_auth_is_ever_forwarded(
            segments in prop::collection::vec(segment(), 0..4),
            upper in any::<bool>(),
        ) {
            let auth = if upper { "AUTH" } else { "auth" };
            let path = format!("/api/{auth}/{}", segments.join("/"));
            prop_assert_eq!(defaults().decide(&path, ""), Decision::Gateway);
        }

        #[test]
        fn an_attack_token_anywhere_in_a_path_is_refused(
            before in prop::collection::vec(segment(), 0..3),
            after in prop::collection::vec(segment(), 0..3),
            attack in prop::sample::select(vec![
                "..", ".", "%2e%2e", "%2E%2e", ".%2E", "%2e", "a%2fb", "%2F", "a%5Cb", "a\\b",
                "%00", "%252e%252e", "%255c", "..;", ".;x", "%2e%2e;", "%25252f", "%c0%ae",
                "%ff",
            ]),
        ) {
            let mut segments = before;
            segments.push(attack.to_owned());
            segments.extend(after);
            let path = format!("/{}", segments.join("/"));
            prop_assert!(check_path(&path).is_err(), "{} was accepted", path);
        }

        #[test]
        fn the_matcher_never_panics(path in "\\PC{0,40}", query in "\\PC{0,10}") {
            let _ = check_path(&path);
            let _ = defaults().decide(&path, &query);
        }
    }
}
