//! frontend-gateway: the one origin browsers talk to.
//!
//! It signs people in, keeps their session on the server, answers `/api/auth/*` in next-auth
//! v4's wire shapes, serves the web app, and forwards every other `/api/*` request to
//! backend-api through a streaming proxy that swaps the browser's cookie for a 60-second signed
//! token. Three wings, each the only owner of its job:
//!
//! * [`identity`]: who someone is: `/api/auth/*`, the sign-in providers, accounts, CSRF,
//!   passwords and sign-in limits;
//! * [`session`]: remembering it: the `sessions` table, the cache, ending sessions, the
//!   liveness check of long responses;
//! * [`proxy`]: everything else goes upstream: the rewrite table, forwarding headers, the
//!   token-injecting hop and its streams.
//!
//! Around them: [`mail`] (the outbox's messages, sent over SMTP in the background), [`guard`] (the checks every request passes first: path, header size,
//! cross-site), [`deadline`] (the body deadline of what the gateway answers itself), [`pages`]
//! (the web app, embedded), [`health`] (`/healthz`, `/readyz`), [`origin`] (`PUBLIC_ORIGIN`,
//! HSTS), [`cookies`] (every cookie the gateway sets), [`error`] (the one error type),
//! [`config`] (every setting) and [`startup`] ([`Application`]).

pub mod config;
pub mod cookies;
pub mod deadline;
pub mod error;
pub mod guard;
pub mod health;
pub mod identity;
pub mod mail;
pub mod origin;
pub mod pages;
pub mod proxy;
pub mod session;
pub mod startup;

pub use config::Settings;
pub use startup::{Application, StartupError};
