//! What every handler shares.

use std::time::Duration;

use auth_contract::Verifier;
use sqlx::PgPool;
use web_common::db::Lane;
use web_common::shutdown::Shutdown;

/// The shared state, in `web::Data` on every worker.
#[derive(Debug)]
pub struct AppState {
    /// The Postgres pool: writes, transactions, readiness.
    pub pool: PgPool,
    /// Connections for the single-statement reads every request makes (no health pings on
    /// the hot path; see [`web_common::db`]).
    pub reads: Lane,
    /// Verifies gateway tokens.
    pub verifier: Verifier,
    /// How long a new workspace invitation can be accepted (`INVITATION_TTL_SECS`).
    pub invitation_ttl: Duration,
    /// Whether the service is shutting down (`/readyz` answers 503 from the signal on).
    pub shutdown: Shutdown,
}
