//! What `backend-api` and `frontend-gateway` share on the web side.
//!
//! * [`problem`]: RFC 9457 `application/problem+json` bodies for every error, and the
//!   middleware that turns any error response (unknown route, 405, extractor failure) into one;
//! * [`request_id`]: honours or creates `x-request-id`, returns it, and runs each request in a
//!   span that carries it;
//! * [`telemetry`]: tracing set-up (JSON lines in production);
//! * [`ready`]: the database readiness check behind `/readyz`;
//! * [`db`]: a [`db::Lane`] of Postgres connections for the hot path's short reads;
//! * [`env`]: small helpers for typed configuration from the environment.

pub mod db;
pub mod env;
pub mod probe;
pub mod problem;
pub mod ready;
pub mod request_id;
pub mod tcp;
pub mod telemetry;

pub use problem::{FieldError, Problem};
pub use request_id::RequestId;
