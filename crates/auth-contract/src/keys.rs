use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::claims::Claims;

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
pub struct SignError(#[source] serde_json::Error);

/// Mints HS256 tokens whose header carries the secret's `kid`.
///
/// Everything that does not depend on the claims is prepared once: the encoded header and the
/// HMAC state keyed with the secret (cloned per token), so minting a token per proxied request
/// costs one JSON serialisation, two base64 encodings and the HMAC of the token itself.
#[derive(Clone)]
pub struct Signer {
    kid: String,
    /// `base64url(header) + "."`.
    header: String,
    mac: Hmac<Sha256>,
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: &Secret) -> Self {
        let header = serde_json::json!({ "typ": "JWT", "alg": "HS256", "kid": secret.kid() });
        let mut encoded = URL_SAFE_NO_PAD.encode(header.to_string());
        encoded.push('.');
        Self {
            kid: secret.kid().to_owned(),
            header: encoded,
            mac: Hmac::<Sha256>::new_from_slice(secret.bytes())
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        }
    }

    /// The key id written into every token.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` into a compact JWS (`header.payload.signature`, HS256).
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims).map_err(SignError)?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 48);
        token.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        Ok(token)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}
