//! Password hashing and verification: argon2id with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane), always off the async workers (`spawn_blocking`).
//!
//! An unknown email is verified against [`dummy_hash`], made with the same parameters, so it
//! costs the same time as a wrong password and both answer the same.

use std::sync::LazyLock;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use rand::RngCore;

/// Passwords shorter than this are refused at registration.
pub const MIN_LEN: usize = 8;
/// Passwords longer than this are refused (argon2 would take them, but nobody types more, and
/// an unbounded input is a cheap way to burn CPU).
pub const MAX_LEN: usize = 128;

/// OWASP's argon2id recommendation: m=19456 KiB, t=2, p=1.
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("the OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password could not be hashed or checked (never "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// argon2 refused (a malformed stored hash, ...).
    #[error("argon2 failed: {0}")]
    Argon2(argon2::password_hash::Error),
    /// The blocking task panicked or was cancelled.
    #[error("the hashing task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A hash of a random password, made once with the real parameters.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let mut password = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut password);
        hash_blocking(&hex::encode(password)).expect("hashing a random password works")
    });
    &DUMMY
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Argon2)
}

fn verify_blocking(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(hash).map_err(PasswordError::Argon2)?;
    match hasher().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(PasswordError::Argon2(e)),
    }
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
#[tracing::instrument(skip_all)]
pub async fn hash(password: String) -> Result<String, PasswordError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| hash_blocking(&password))).await?
}

/// Checks `password` against `hash`, or against [`dummy_hash`] when there is no user. Returns
/// `Ok(false)` for a wrong password and always for a missing user.
#[tracing::instrument(skip_all)]
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, PasswordError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| match hash {
            Some(hash) => verify_blocking(&password, &hash),
            None => verify_blocking(&password, dummy_hash()).map(|_| false),
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_uses_argon2id_with_the_owasp_parameters_and_verifies() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_hash_with_the_same_parameters() {
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        assert!(verify("x".into(), Some("not a hash".into())).await.is_err());
    }
}
