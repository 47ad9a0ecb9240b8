use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use crate::Claims;

/// The shortest `API_SECRET` accepted: 32 bytes, the size of an HS256 key.
pub const MIN_SECRET_LEN: usize = 32;

/// A shared HS256 secret. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    kid: String,
}

/// Why a secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_LEN`] bytes.
    #[error(
        "the secret is {len} bytes long; at least {MIN_SECRET_LEN} are required \
         (make one with `openssl rand -base64 48`)"
    )]
    TooShort {
        /// The length that was given.
        len: usize,
    },
}

impl Secret {
    /// Accepts `secret` when it is at least [`MIN_SECRET_LEN`] bytes long.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        let bytes = secret.as_ref().to_vec();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort { len: bytes.len() });
        }
        let digest = Sha256::digest(&bytes);
        let kid = hex::encode(&digest[..8]);
        Ok(Self { bytes, kid })
    }

    /// The key id: lowercase hex of the first 8 bytes of SHA-256 of the secret. Both services
    /// (and any other client) derive it the same way, so no extra setting is needed.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the token")]
pub struct SignError(#[source] jsonwebtoken::errors::Error);

/// Mints HS256 tokens whose header carries the secret's `kid`.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    header: Header,
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: &Secret) -> Self {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(secret.kid().to_owned());
        Self {
            key: EncodingKey::from_secret(secret.bytes()),
            header,
        }
    }

    /// The key id written into every token.
    pub fn kid(&self) -> &str {
        self.header.kid.as_deref().unwrap_or_default()
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        jsonwebtoken::encode(&self.header, claims, &self.key).map_err(SignError)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}
