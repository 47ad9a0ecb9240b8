use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

use crate::claims::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, unix_now};
use crate::keys::Secret;

/// Clock skew tolerated between the gateway and the backend, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// The longest lifetime (`exp - iat`) a verified token may claim: five times what the gateway
/// mints ([`crate::DEFAULT_TTL`]), so that someone holding a leaked signing key cannot mint
/// tokens that stay valid for a year, and such tokens are refused where they are used.
pub const MAX_LIFETIME_SECS: u64 = 300;

/// Why a token was refused. No variant carries the token or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed JWT, or claims of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// A known algorithm other than HS256 (`HS512`, `RS256`...). A header naming no algorithm
    /// jsonwebtoken knows (such as `none`) is [`VerifyError::Malformed`].
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// A `kid` that is not in the key ring.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The signature does not match the key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `iat` or `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` is not the expected audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A required claim is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// `exp - iat` is longer than [`MAX_LIFETIME_SECS`] (or `exp` is before `iat`).
    #[error("the token's lifetime is not accepted")]
    LifetimeNotAccepted,
    /// The header names critical extensions (`crit`, RFC 7515 section 4.1.11): we understand
    /// none, so a token that needs one must be refused.
    #[error("the token's header names a critical extension")]
    CriticalExtension,
}

/// Whether `header` names any critical extension (`crit`). RFC 7515 has the recipient refuse a
/// token whose `crit` lists an extension it does not understand; this project understands none,
/// so a `crit` entry of any content refuses the token. jsonwebtoken parses the field but does
/// not act on it; every verifier here (the backend's, the gateway's for identity providers)
/// asks this first.
pub fn has_critical_extension(header: &jsonwebtoken::Header) -> bool {
    header.crit.is_some()
}

/// Verifies gateway tokens against a key ring: the current secret and any previous ones.
///
/// A token whose header names a `kid` is checked with that key only, and refused when the kid
/// is not in the ring; a token without a `kid` is checked against the current key only.
#[derive(Clone)]
pub struct Verifier {
    /// `(kid, key)`, the current key first.
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
    leeway: u64,
}

/// What the token says, before we know every claim is present.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<Uuid>,
    email: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
    iss: Option<String>,
    aud: Option<String>,
    jti: Option<Uuid>,
    /// Optional, and checked by jsonwebtoken; declared only so that a `nbf` that is not a
    /// number is refused as malformed instead of being ignored.
    #[serde(rename = "nbf")]
    _nbf: Option<u64>,
}

impl Verifier {
    /// A verifier for tokens signed with `current` or any of `previous`, issued by
    /// [`DEFAULT_ISSUER`] for [`DEFAULT_AUDIENCE`].
    pub fn new(current: &Secret, previous: &[Secret]) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|s| (s.kid().to_owned(), DecodingKey::from_secret(s.bytes())))
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[DEFAULT_ISSUER]);
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        Self {
            keys,
            validation,
            leeway: LEEWAY_SECS,
        }
    }

    /// Accept tokens from `issuer` instead of [`DEFAULT_ISSUER`].
    #[must_use]
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self
    }

    /// Accept tokens for `audience` instead of [`DEFAULT_AUDIENCE`].
    #[must_use]
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self
    }

    /// The key ids in the ring, the current one first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(kid, _)| kid.as_str())
    }

    /// Checks `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(VerifyError::UnsupportedAlgorithm);
        }
        if has_critical_extension(&header) {
            return Err(VerifyError::CriticalExtension);
        }
        let key = match header.kid.as_deref() {
            None => &self.keys[0].1,
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| key)
                .ok_or(VerifyError::UnknownKey)?,
        };
        let raw = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(|e| map_error(e.kind()))?
            .claims;
        let claims = Claims {
            sub: raw.sub.ok_or(VerifyError::MissingClaim("sub"))?,
            email: raw.email.ok_or(VerifyError::MissingClaim("email"))?,
            iat: raw.iat.ok_or(VerifyError::MissingClaim("iat"))?,
            exp: raw.exp.ok_or(VerifyError::MissingClaim("exp"))?,
            iss: raw.iss.ok_or(VerifyError::MissingClaim("iss"))?,
            aud: raw.aud.ok_or(VerifyError::MissingClaim("aud"))?,
            jti: raw.jti.ok_or(VerifyError::MissingClaim("jti"))?,
        };
        if claims.iat > unix_now().saturating_add(self.leeway) {
            return Err(VerifyError::NotYetValid);
        }
        if claims.exp < claims.iat || claims.exp - claims.iat > MAX_LIFETIME_SECS {
            return Err(VerifyError::LifetimeNotAccepted);
        }
        Ok(claims)
    }
}

fn map_error(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            VerifyError::UnsupportedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => VerifyError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "sub" => "sub",
            "iss" => "iss",
            "aud" => "aud",
            "nbf" => "nbf",
            _ => "unknown",
        }),
        _ => VerifyError::Malformed,
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
