//! The identity wing: who someone is. It answers `/api/auth/*` in next-auth v4's wire shapes
//! and owns the accounts.
//!
//! * [`routes`]: the `/api/auth` scope, and [`wire`]: next-auth's request and answer shapes;
//! * [`providers`]: the sign-in methods behind one seam ([`providers::Credentials`] first),
//!   each ending in [`sign_in::start_session`];
//! * [`account`]: registration, password change, sign-out everywhere;
//! * [`csrf`], [`password`] (argon2id), [`throttle`] (sign-in limits), [`users`] (the rows);
//! * [`state`] and [`settings`]: what the handlers share, and how the wing is configured.
//!
//! It never touches the `sessions` table: starting and ending sessions goes through the
//! session wing.

pub mod account;
pub mod csrf;
pub mod password;
pub mod providers;
pub mod routes;
pub mod settings;
pub mod sign_in;
pub mod state;
pub mod throttle;
pub mod users;
pub mod wire;

pub use routes::configure;
pub use settings::SignInSettings;
pub use state::Identity;
