//! What `backend-api` and `frontend-gateway` share on the web side.
//!
//! * [`problem`]: RFC 9457 `application/problem+json` bodies for every error, and the
//!   middleware that turns any error response (unknown route, 405, extractor failure) into one;
//! * [`request_id`]: honours or creates `x-request-id`, returns it, and runs each request in a
//!   span that carries it;
//! * [`telemetry`]: tracing set-up (JSON lines in production);
//! * [`metrics`]: the Prometheus registry, the request and pool metrics, `GET /metrics`;
//! * [`trace`]: OpenTelemetry traces (W3C Trace Context in and out, spans, OTLP export);
//! * [`ready`]: the database readiness check behind `/readyz`;
//! * [`email`]: the one normalisation of an email (its key) and the rules for emails and
//!   names, shared by sign-in, registration and adding members;
//! * [`db`]: the migrations, and a [`db::Lane`] of Postgres connections for the hot path's
//!   short reads;
//! * [`notify`]: one `LISTEN` connection per process, fanned out to its subscribers;
//! * [`outbox`]: the mail outbox both services write in their own transactions;
//! * [`env`]: reading typed settings from the environment, and how a service starts on them
//!   ([`env::load`]: `.env`, then the settings, exit status 78 on a bad value);
//! * [`settings`]: the settings groups both services share (listener, database, logs, start and
//!   stop);
//! * [`shutdown`]: the graceful shutdown both services run on SIGTERM (drain, then finish the
//!   requests in flight);
//! * [`probe`]: the `healthcheck` subcommand's HTTP probe, and [`tcp`]: socket options.

pub mod db;
pub mod email;
pub mod env;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod probe;
pub mod problem;
pub mod ready;
pub mod request_id;
pub mod settings;
pub mod shutdown;
pub mod tcp;
pub mod telemetry;
pub mod trace;

pub use problem::{FieldError, Problem};
pub use request_id::RequestId;
