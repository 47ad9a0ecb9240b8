//! The readiness checks both services answer `/readyz` with: not shutting down, and the
//! database answers.

use std::time::Duration;

use sqlx::PgPool;

use crate::problem::Problem;
use crate::shutdown::Shutdown;

/// How long the database may take to answer the readiness query.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok` while the service is not shutting down; from the shutdown signal on, a 503 problem (at
/// once, without asking the database), so load balancers take the instance out of rotation.
pub fn serving(shutdown: &Shutdown) -> Result<(), Problem> {
    if shutdown.is_draining() {
        return Err(Problem::unavailable("The service is shutting down."));
    }
    Ok(())
}

/// `Ok` when the database answers `SELECT 1` within [`TIMEOUT`]; a 503 problem otherwise.
pub async fn database(pool: &PgPool) -> Result<(), Problem> {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
    match tokio::time::timeout(TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database error");
            Err(Problem::unavailable("The database is not reachable."))
        }
        Err(_) => Err(Problem::unavailable("The database did not answer in time.")),
    }
}
