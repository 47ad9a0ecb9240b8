//! The identity wing: who someone is. It answers `/api/auth/*` in next-auth v4's wire shapes
//! and owns the accounts.
//!
//! * [`routes`]: the `/api/auth` scope, and [`wire`]: next-auth's request and answer shapes;
//! * [`providers`]: the sign-in methods behind one seam ([`providers::Credentials`], and the
//!   identity providers of [`providers::oauth`]: OpenID Connect, GitHub), each ending in
//!   [`sign_in::start_session`]; [`linking`]: which user a provider sign-in is;
//! * [`account`]: registration, password change, sign-out everywhere, linked providers,
//!   deleting the account;
//! * mailed links: [`verification`] (proving an address), [`recovery`] (a forgotten
//!   password), sign-in links ([`providers::email`]); [`tokens`] (their single-use tokens),
//!   [`link_page`] (the pages they open), [`outgoing`] (every mail the wing sends, through the
//!   outbox);
//! * [`backchannel`]: OpenID Connect back-channel logout;
//! * [`attempts`]: the sign-in attempts metric;
//! * [`csrf`], [`password`] (argon2id), [`throttle`] (sign-in limits), [`text`] (what an email
//!   and a name may be), [`users`] and [`accounts`] (the rows);
//! * [`state`] and [`settings`]: what the handlers share, and how the wing is configured
//!   ([`provider_config`] reads the identity providers' variables).
//!
//! It never touches the `sessions` table: starting and ending sessions goes through the
//! session wing.

pub mod account;
pub mod accounts;
pub mod attempts;
pub mod backchannel;
pub mod csrf;
pub mod link_page;
pub mod linking;
pub mod outgoing;
pub mod password;
pub mod provider_config;
pub mod providers;
pub mod recovery;
pub mod routes;
pub mod settings;
pub mod sign_in;
pub mod state;
pub mod text;
pub mod throttle;
pub mod tokens;
pub mod upkeep;
pub mod users;
pub mod verification;
pub mod wire;

pub use routes::configure;
pub use settings::{AuthSettings, SignInSettings};
pub use state::Identity;
pub use upkeep::clean_up_periodically;
