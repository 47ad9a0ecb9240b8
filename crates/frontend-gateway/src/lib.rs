//! frontend-gateway: the one origin browsers talk to.
//!
//! It signs people in (argon2id credentials in Postgres), keeps their session on the server
//! (actix-session backed by the `sessions` table), answers `/api/auth/*` in next-auth v4's wire
//! shapes, and forwards every other `/api/*` request to backend-api through a streaming awc
//! proxy that swaps the browser's cookie for a 60-second signed token.
//!
//! A tour, in request order:
//!
//! * [`guard`]: path checks (dot segments, encoded slashes, NUL, `//` -> 400) and the `Origin`
//!   check for unsafe methods;
//! * [`session`] and [`session_store`]: the typed session and its Postgres store;
//! * [`auth`]: `/api/auth/*` (with [`csrf`], [`password`] and [`users`]);
//! * [`rewrite`]: the rule table deciding where everything else goes;
//! * [`proxy`]: the upstream request, the streaming, the response filter;
//! * [`pages`]: the web app (embedded HTML, CSS, JS) and [`health`]: `/healthz`, `/readyz`;
//! * [`config`] and [`startup`]: settings and [`Application`].

pub mod auth;
pub mod config;
pub mod csrf;
pub mod error;
pub mod guard;
pub mod health;
pub mod pages;
pub mod password;
pub mod proxy;
pub mod rewrite;
pub mod session;
pub mod session_store;
pub mod startup;
pub mod state;
pub mod users;

pub use config::Settings;
pub use startup::{Application, StartupError};
