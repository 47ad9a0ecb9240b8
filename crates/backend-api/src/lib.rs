//! `backend-api`: the workspace API behind the gateway.
//!
//! It trusts exactly one thing: a short-lived token minted by the gateway and verified with
//! [`auth_contract`] (see [`auth`]). Authorization is per workspace role ([`roles`]). Errors are
//! RFC 9457 problems ([`error::ApiError`], [`web_common::problem`]). Nobody is added to a
//! workspace directly: membership starts only with the invitee's consent, when the owner of
//! the invited (and verified) email accepts an invitation ([`routes::invitations`]).
//!
//! A code tour, each module depending only on those above it:
//!
//! * [`config`]: [`Settings`], every variable the service reads;
//! * [`state`]: [`state::AppState`], what the handlers share;
//! * [`error`]: [`error::ApiError`], the one error type (a refusal names its reason);
//! * [`metrics`]: the backend's own metrics (refused tokens, role denials), read off answers;
//! * [`auth`]: the extractors and the rule that a token's user must still exist;
//! * [`roles`]: workspace roles and the decisions of who may do what to whom;
//! * [`openapi`]: the OpenAPI document's frame and shared response sets;
//! * [`routes`]: one module per resource, and the one table that serves and documents them;
//! * [`startup`]: [`Application`], the bound server.
//!
//! `main.rs` only reads [`Settings`] and runs an [`Application`]; tests build the same
//! `Application` on port 0 against a fresh database.

pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod roles;
pub mod routes;
pub mod startup;
pub mod state;

pub use config::Settings;
pub use error::ApiError;
pub use startup::{Application, JSON_LIMIT, StartupError};
pub use state::AppState;
