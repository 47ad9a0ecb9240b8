//! The contract between `frontend-gateway` and `backend-api`.
//!
//! The gateway turns "which browser is this" (its session) into "who is calling" by minting a
//! short-lived HS256 token; the backend trusts nothing else. This crate is the only code both
//! sides must agree on, so it is small and framework-free:
//!
//! * [`Claims`]: `{sub, email, iat, exp, iss, aud, jti}`;
//! * [`Secret`]: an `API_SECRET` of at least [`MIN_SECRET_LEN`] bytes, with its key id
//!   ([`Secret::kid`]: lowercase hex of the first 8 bytes of SHA-256 of the secret);
//! * [`Signer`]: mints tokens whose header carries that `kid`;
//! * [`Verifier`]: a key ring (current secret plus previous ones, so the secret can rotate
//!   without downtime) that pins HS256, requires every claim, checks issuer and audience,
//!   refuses lifetimes over [`MAX_LIFETIME_SECS`] and headers with critical extensions, and
//!   answers with a typed [`VerifyError`] that never carries the token.
//!
//! ```
//! use auth_contract::{Claims, Secret, Signer, Verifier};
//! let secret = Secret::new("an example secret of at least thirty-two bytes").unwrap();
//! let signer = Signer::new(&secret);
//! let verifier = Verifier::new(&secret, &[]);
//! let user = uuid::Uuid::new_v4();
//! let token = signer.sign(&Claims::new(user, "ada@example.com")).unwrap();
//! assert_eq!(verifier.verify(&token).unwrap().sub, user);
//! ```

mod claims;
mod keys;
mod verify;

pub use claims::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_TTL, unix_now};
pub use keys::{MIN_SECRET_LEN, Secret, SecretError, SignError, Signer};
pub use verify::{LEEWAY_SECS, MAX_LIFETIME_SECS, Verifier, VerifyError, has_critical_extension};
