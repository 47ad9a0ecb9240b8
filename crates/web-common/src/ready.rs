//! The readiness check both services answer `/readyz` with.

use std::time::Duration;

use sqlx::PgPool;

use crate::problem::Problem;

/// How long the database may take to answer the readiness query.
pub const TIMEOUT: Duration = Duration::from_secs(2);

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
