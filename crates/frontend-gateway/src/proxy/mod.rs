//! The proxy wing: everything that is not the gateway's own goes upstream from here.
//!
//! * [`rewrite`]: the rule table deciding where a path goes (pure, property-tested), with the
//!   path checks every request passes first;
//! * [`forwarded`]: who the client is (`TRUSTED_PROXIES`) and what the upstream is told;
//! * [`filters`]: which cookies cross the hop (`passCookies`), and the caching default of an
//!   authenticated answer;
//! * [`handler`]: the streaming upstream hop (token injection, header hygiene, 502/504);
//! * [`streams`]: the upload cap, and the response guard (idle timeout, session re-check);
//! * [`metrics`]: requests by rule and outcome, upstream latency, open streams.
//!
//! It reads nothing of a user beyond the session's, and asks the session wing whether a
//! long-running response's session still lives.

pub mod filters;
pub mod forwarded;
pub mod handler;
pub mod metrics;
pub mod rewrite;
pub mod settings;
pub mod streams;

pub use handler::{Proxy, client, handle};
pub use settings::ProxySettings;
