//! What the proxy wing is configured with (read by the gateway's `Settings`).

use std::time::Duration;

use auth_contract::Secret;

use super::rewrite::Rules;

/// The proxy group.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `API_SECRET`: signs the tokens handed to the backend.
    pub api_secret: Secret,
    /// `BACKEND_API_URL` (default `http://127.0.0.1:8080`), without a trailing slash.
    pub backend_api_url: String,
    /// The rewrite table, built once: `/api/auth/:path*` (kept here), the rules of
    /// `GATEWAY_REWRITES`, then `/api/:path*` to the backend with a token.
    pub rules: Rules,
    /// `PROXY_CONNECT_TIMEOUT_SECS` (default 5): connecting to an upstream; past it, 502.
    pub connect_timeout: Duration,
    /// `PROXY_TIMEOUT_SECS` (default 30): sending a request and receiving the response head;
    /// past it, 504.
    pub timeout: Duration,
    /// `PROXY_MAX_BODY_BYTES` (default 104 857 600, 100 MiB): the largest request body
    /// forwarded; past it, 413.
    pub max_body_bytes: u64,
    /// `PROXY_STREAM_IDLE_TIMEOUT_SECS` (default 60): a response body (an event stream, a
    /// download) that sends nothing for this long is cut. It replaces `PROXY_TIMEOUT_SECS`
    /// once the response head has arrived.
    pub stream_idle_timeout: Duration,
    /// `PROXY_STREAM_SESSION_CHECK_SECS` (default 5): while a response streams for a signed-in
    /// user, their session row is re-checked this often, and the stream cut once it is gone.
    pub stream_session_check: Duration,
}
