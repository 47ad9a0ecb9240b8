//! frontend-gateway: the one origin browsers talk to.
//!
//! It signs people in (argon2id credentials in Postgres), keeps their session on the server
//! (actix-session backed by the `sessions` table), answers `/api/auth/*` in next-auth v4's wire
//! shapes, and forwards every other `/api/*` request to backend-api through a streaming awc
//! proxy that swaps the browser's cookie for a 60-second signed token.
//!
//! A tour, in request order:
//!
//! * [`guard`]: path checks (dot segments, encoded slashes, NUL, `//` -> 400), header size
//!   (431) and the cross-site checks for unsafe methods (`Sec-Fetch-Site`, `Origin`);
//! * [`forwarded`]: who the client is (`TRUSTED_PROXIES`), and [`throttle`]: sign-in limits;
//! * [`session`] and [`session_store`]: the typed session and its Postgres store;
//! * [`auth`]: `/api/auth/*` (with [`csrf`], [`password`] and [`users`]);
//! * [`rewrite`]: the rule table deciding where everything else goes;
//! * [`proxy`]: the upstream request, the streaming, the response filter, with [`streams`]:
//!   the upload cap, the response idle timeout and the session re-check of open-ended streams;
//! * [`pages`]: the web app (embedded HTML, CSS, JS) and [`health`]: `/healthz`, `/readyz`;
//! * [`config`] and [`startup`]: settings and [`Application`].

pub mod auth;
pub mod config;
pub mod csrf;
pub mod error;
pub mod forwarded;
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
pub mod streams;
pub mod throttle;
pub mod users;

pub use config::Settings;
pub use startup::{Application, StartupError};
