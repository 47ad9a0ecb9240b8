//! The session wing: server-side sessions in Postgres behind an actix-session cookie.
//!
//! * [`UserSession`] (an extractor) and [`SessionUser`]: the typed session handlers see;
//! * [`Sessions`]: the wing's handle: its store, its cookie, when a session expires, ending a
//!   user's sessions (the SQL and the cache in one call), the expired-row sweep, and the
//!   [`Liveness`] check that long responses repeat;
//! * [`layer`] and [`failures`]: the middleware, and the 503 when the store is unreachable;
//! * the revocation notices: every statement that ends sessions tells every instance
//!   ([`ENDED_CHANNEL`]), and [`Sessions::follow`] hears them;
//! * the store ([`PgSessionStore`]) and this instance's [`cache`](CACHE_TTL_MAX) inside;
//! * [`SessionMetrics`]: loads by result (cache hit, miss, database error), notices heard.
//!
//! No other code reads or writes the `sessions` table, and nothing here runs a sign-in
//! method: the identity wing decides who someone is, this wing remembers it.

mod cache;
mod liveness;
mod metrics;
mod middleware;
mod revocation;
mod sessions;
mod settings;
mod store;
mod user;

pub use cache::CACHE_TTL_MAX;
pub use liveness::Liveness;
pub use metrics::SessionMetrics;
pub use middleware::{failures, layer};
pub use revocation::CHANNEL as ENDED_CHANNEL;
pub use sessions::Sessions;
pub use settings::{MIN_SESSION_KEY_LEN, SessionKey, SessionSettings};
pub use store::PgSessionStore;
pub use user::{SessionUser, SignInOrigin, UserSession};
