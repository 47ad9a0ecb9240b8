//! What every handler shares (one per server, behind `web::Data`).

use std::time::Duration;

use auth_contract::Signer;
use sqlx::PgPool;

use crate::config::PublicOrigin;
use crate::csrf::Csrf;
use crate::rewrite::Rules;

/// Shared, read-only state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Users and sessions.
    pub pool: PgPool,
    /// Where absolute URLs point, and what `Origin` unsafe requests must carry.
    pub origin: PublicOrigin,
    /// CSRF tokens for the next-auth forms.
    pub csrf: Csrf,
    /// The rewrite table.
    pub rules: Rules,
    /// Mints the tokens injected upstream.
    pub signer: Signer,
    /// Sliding idle timeout of a session.
    pub session_idle: Duration,
    /// Absolute lifetime of a session.
    pub session_absolute: Duration,
}
