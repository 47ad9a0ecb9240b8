//! A provider sign-in in flight, between `POST /api/auth/signin/{id}` and the provider's
//! redirect to `/api/auth/callback/{id}`: kept server-side in `sign_in_flows`, single use,
//! ten minutes at most, bound to the browser that started it.
//!
//! The browser binding is a random value in an HttpOnly, `SameSite=Lax` cookie (`__Host-`
//! prefixed when secure); the row keeps its SHA-256. A `state` replayed, used twice, or
//! carried to another browser (login CSRF: an attacker's own code and state handed to a
//! victim) finds no row or a row for another browser, and signs nobody in.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// How long a flow may take, from the redirect to the provider to its callback.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// 32 random bytes, base64url (43 characters): a state, a nonce, a PKCE verifier (RFC 7636
/// allows 43 to 128 characters), a browser binding, a link marker.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn hash(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// The cookie that binds flows to a browser.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    secure: bool,
}

impl Binding {
    /// `secure`: `__Host-` prefix and `Secure` (production).
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// The cookie's name.
    pub fn cookie_name(self) -> &'static str {
        crate::cookies::AUTH_FLOW.name(self.secure)
    }

    /// This browser's binding value, when it has one.
    pub fn of(self, req: &HttpRequest) -> Option<String> {
        req.cookie(self.cookie_name())
            .map(|c| c.value().to_owned())
            .filter(|v| {
                v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// The binding to use for a new flow (the browser's own, so flows in two tabs both work)
    /// and the cookie that (re)sets it for the flow's lifetime.
    pub fn issue(self, req: &HttpRequest) -> (String, Cookie<'static>) {
        let value = self.of(req).unwrap_or_else(random_token);
        let cookie = Cookie::build(self.cookie_name(), value.clone())
            .path("/")
            .http_only(true)
            .secure(self.secure)
            // Lax: sent on the provider's top-level redirect back, never on cross-site posts.
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(FLOW_LIFETIME.as_secs() as i64))
            .finish();
        (value, cookie)
    }
}

/// A flow as started.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Flow {
    /// The provider's id.
    pub provider: String,
    /// The PKCE verifier.
    pub code_verifier: String,
    /// The OIDC nonce.
    pub nonce: String,
    /// Where to go after the sign-in (already checked to be on `PUBLIC_ORIGIN`).
    pub callback_url: String,
    /// For an explicit link: the signed-in user.
    pub link_user_id: Option<Uuid>,
    /// For an explicit link: the marker their session holds.
    pub link_marker: Option<String>,
}

/// Records a new flow under `state` for the browser bound by `binding`.
pub async fn insert(
    pool: &PgPool,
    state: &str,
    binding: &str,
    flow: &Flow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sign_in_flows
             (state_hash, browser_hash, provider, code_verifier, nonce, callback_url,
              link_user_id, link_marker, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))",
    )
    .bind(hash(state))
    .bind(hash(binding))
    .bind(&flow.provider)
    .bind(&flow.code_verifier)
    .bind(&flow.nonce)
    .bind(&flow.callback_url)
    .bind(flow.link_user_id)
    .bind(&flow.link_marker)
    .bind(FLOW_LIFETIME.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Why a callback's `state` did not lead to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// No such flow (never started, already used, or expired).
    #[error("no flow with this state (unknown, used or expired)")]
    Unknown,
    /// Started by another browser, or for another provider.
    #[error("the flow belongs to another browser or provider")]
    Foreign,
}

/// Takes the flow `state` names (deleting it: a flow is used once, whatever happens next), if
/// it is alive, was started by this browser and for `provider`.
pub async fn take(
    pool: &PgPool,
    state: &str,
    binding: Option<&str>,
    provider: &str,
) -> Result<Result<Flow, Mismatch>, sqlx::Error> {
    let row: Option<(Flow, Vec<u8>)> = sqlx::query_as(
        "DELETE FROM sign_in_flows WHERE state_hash = $1 AND expires_at > now()
         RETURNING provider, code_verifier, nonce, callback_url, link_user_id, link_marker,
                   browser_hash",
    )
    .bind(hash(state))
    .fetch_optional(pool)
    .await?
    .map(|row: FlowRow| (row.flow, row.browser_hash));
    let Some((flow, browser_hash)) = row else {
        return Ok(Err(Mismatch::Unknown));
    };
    let same_browser = binding.is_some_and(|b| {
        use subtle::ConstantTimeEq;
        bool::from(hash(b).ct_eq(&browser_hash))
    });
    if !same_browser || flow.provider != provider {
        return Ok(Err(Mismatch::Foreign));
    }
    Ok(Ok(flow))
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    #[sqlx(flatten)]
    flow: Flow,
    browser_hash: Vec<u8>,
}

/// Deletes flows past their expiry; returns how many.
pub async fn delete_expired(db: impl sqlx::PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let flows = sqlx::query("DELETE FROM sign_in_flows WHERE expires_at <= now()")
        .execute(db)
        .await?;
    Ok(flows.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636_s256() {
        // BASE64URL(SHA256(verifier)) without padding, computed independently:
        // `printf %s "$verifier" | sha256sum | xxd -r -p | base64 | tr '+/' '-_'`.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K9uhvdP7YbH3P8pOlovBjUZ7AM"),
            "dGmpO2c2j--QF8Y16tEsa-5mkNQY98kMa2V98H-tryg"
        );
    }

    #[test]
    fn random_tokens_are_43_url_safe_characters() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, random_token());
    }
}
