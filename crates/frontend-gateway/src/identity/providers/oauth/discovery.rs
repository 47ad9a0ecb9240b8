//! Discovering the OpenID providers in the background, from start-up: each provider's
//! discovery document and keys are read once and kept; one that fails is logged and retried
//! (1 s, 2 s, 4 s... at most a minute apart) until it answers. Meanwhile its sign-ins try
//! discovery themselves and answer `OAuthSignin` when it still fails, and the other providers
//! keep working: one provider being down is not an outage.
//!
//! awc needs an actix system (a thread-local runtime); the request workers have theirs, and
//! this work runs on a small thread of its own, which ends when every provider is discovered
//! or when the [`Discovery`] handle is dropped (the server stopped).

use std::sync::Arc;
use std::time::Duration;

use super::http::ProviderHttp;
use super::oidc::Oidc;

/// The longest wait between two attempts at one provider.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The running background discovery; dropping it stops it.
#[derive(Debug)]
pub struct Discovery {
    _stop: tokio::sync::watch::Sender<()>,
}

/// Starts discovering the OpenID providers `pending`; `None` when there are none.
pub fn start(pending: Vec<Arc<Oidc>>, timeout: Duration) -> Option<Discovery> {
    if pending.is_empty() {
        return None;
    }
    let (stop, stopped) = tokio::sync::watch::channel(());
    let spawned = std::thread::Builder::new()
        .name("oidc-discovery".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(discover_all(pending, timeout, stopped));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start OpenID discovery; sign-ins will discover on demand");
    }
    Some(Discovery { _stop: stop })
}

async fn discover_all(
    mut pending: Vec<Arc<Oidc>>,
    timeout: Duration,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    let http = ProviderHttp::new(timeout);
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut still = Vec::new();
        for oidc in pending {
            if oidc.discovered().is_some() {
                continue;
            }
            match oidc.discover(&http).await {
                Ok(d) => tracing::info!(
                    provider = %oidc.client.id,
                    issuer = %oidc.issuer,
                    rp_initiated_logout = d.metadata.end_session_endpoint.is_some(),
                    "OpenID provider discovered"
                ),
                Err(e) => {
                    tracing::warn!(
                        provider = %oidc.client.id,
                        error = %e,
                        retry_in_secs = backoff.as_secs(),
                        "OpenID provider discovery failed; its sign-ins fail until it answers"
                    );
                    still.push(oidc);
                }
            }
        }
        if still.is_empty() {
            return;
        }
        pending = still;
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
