//! The identity wing's periodic clean-up: sign-in flows past their ten minutes, used
//! back-channel logout token ids past their expiry, and mailed links past theirs.

use std::time::Duration;

use sqlx::PgPool;

use super::providers::oauth::flow;
use super::{backchannel, tokens};

/// Deletes expired flows and token ids every `every`, forever (run it next to the server).
pub async fn clean_up_periodically(pool: PgPool, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let deleted = async {
            Ok::<_, sqlx::Error>(
                flow::delete_expired(&pool).await?
                    + backchannel::delete_expired(&pool).await?
                    + tokens::delete_expired(&pool).await?,
            )
        };
        match deleted.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "expired sign-in flows, logout token ids and mailed links deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "could not delete expired sign-in flows"),
        }
    }
}
