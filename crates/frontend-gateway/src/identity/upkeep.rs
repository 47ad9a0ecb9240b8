//! The identity wing's periodic clean-up, once per cluster: sign-in flows past their ten
//! minutes, used back-channel logout token ids past their expiry, mailed links past theirs, and
//! the limits' keys whose attempts are all past every window.

use std::time::Duration;

use sqlx::PgPool;
use web_common::db::Job;

use super::providers::oauth::flow;
use super::{backchannel, throttle, tokens};

/// Deletes what expired every `every`, forever (run it next to the server); `longest_window`
/// is the longest window of any limit. While another instance does it, this one skips its turn.
pub async fn clean_up_periodically(pool: PgPool, every: Duration, longest_window: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        match clean_up(&pool, longest_window).await {
            Ok(None | Some(0)) => {}
            Ok(Some(n)) => tracing::info!(
                deleted = n,
                "expired sign-in flows, logout token ids, mailed links and limit keys deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "could not delete expired identity rows"),
        }
    }
}

/// One clean-up, in the job's transaction: `None` when another instance is doing it.
pub async fn clean_up(pool: &PgPool, longest_window: Duration) -> Result<Option<u64>, sqlx::Error> {
    let Some(mut tx) = Job::IdentityUpkeep.begin(pool).await? else {
        return Ok(None);
    };
    let deleted = flow::delete_expired(&mut *tx).await?
        + backchannel::delete_expired(&mut *tx).await?
        + tokens::delete_expired(&mut *tx).await?
        + throttle::delete_expired(&mut *tx, longest_window).await?;
    tx.commit().await?;
    Ok(Some(deleted))
}
