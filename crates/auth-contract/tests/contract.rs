//! The token contract between `frontend-gateway` and `backend-api`, tested from the outside.
//!
//! Tokens are either minted by [`Signer`] or built by hand here (base64url header, payload and
//! an HMAC computed with `hmac` + `sha2`), so the tests do not trust the code under test to
//! describe the wire format.

use std::time::Duration;

use auth_contract::{
    Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEEWAY_SECS, MAX_LIFETIME_SECS, MIN_SECRET_LEN,
    Secret, SecretError, Signer, Verifier, VerifyError, unix_now,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use uuid::Uuid;

const CURRENT: &str = "the current secret, comfortably longer than 32 bytes";
const PREVIOUS: &str = "the previous secret, also longer than thirty-two bytes";
const OTHER: &str = "a secret belonging to somebody else entirely, 32+ bytes";

fn secret(text: &str) -> Secret {
    Secret::new(text).expect("test secrets are long enough")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64_json(segment: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("segment is base64url");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

/// The three dot-separated segments of a compact JWT.
fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts.try_into().expect("a compact JWT has three segments")
}

/// An independent computation of the key id: hex of the first 8 bytes of SHA-256.
fn expected_kid(secret_text: &str) -> String {
    Sha256::digest(secret_text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha384(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha384>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `header.payload.` — the signing input plus the separating dot.
fn unsigned(header: &Value, payload: &Value) -> String {
    format!("{}.{}", b64(header.to_string()), b64(payload.to_string()))
}

/// A hand-built HS256 token signed with `key`.
fn hand_hs256(header: &Value, payload: &Value, key: &str) -> String {
    let input = unsigned(header, payload);
    let signature = hmac_sha256(key.as_bytes(), input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn header_with_kid(kid: &str) -> Value {
    json!({ "alg": "HS256", "typ": "JWT", "kid": kid })
}

fn header_without_kid() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

/// A complete, currently valid payload with the default issuer and audience.
fn valid_payload() -> Value {
    let now = unix_now();
    json!({
        "sub": Uuid::new_v4().to_string(),
        "email": "ada@example.com",
        "iat": now,
        "exp": now + 60,
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "jti": Uuid::new_v4().to_string(),
    })
}

fn payload_without(claim: &str) -> Value {
    let mut payload = valid_payload();
    payload
        .as_object_mut()
        .expect("payload is an object")
        .remove(claim)
        .expect("claim was present");
    payload
}

/// Hand-signs `payload` with the current secret and its kid, then verifies it.
fn verify_hand_built(payload: &Value) -> Result<Claims, VerifyError> {
    let token = hand_hs256(&header_with_kid(&expected_kid(CURRENT)), payload, CURRENT);
    Verifier::new(&secret(CURRENT), &[]).verify(&token)
}

fn claims_for_now() -> Claims {
    Claims::new(Uuid::new_v4(), "ada@example.com")
}

// ---------------------------------------------------------------------------------------------
// Round trip and key ids
// ---------------------------------------------------------------------------------------------

#[test]
fn signed_token_verifies_to_identical_claims() {
    let secret = secret(CURRENT);
    let claims = claims_for_now();
    let token = Signer::new(&secret).sign(&claims).unwrap();
    let verified = Verifier::new(&secret, &[]).verify(&token).unwrap();
    assert_eq!(verified, claims);
}

#[test]
fn token_header_carries_hs256_and_the_secrets_kid() {
    let secret = secret(CURRENT);
    let signer = Signer::new(&secret);
    let token = signer.sign(&claims_for_now()).unwrap();
    let header = unb64_json(segments(&token)[0]);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], secret.kid());
    assert_eq!(signer.kid(), secret.kid());
}

#[test]
fn kid_is_sixteen_lowercase_hex_chars_of_the_sha256_of_the_secret() {
    let secret = secret(CURRENT);
    let kid = secret.kid();
    assert_eq!(kid.len(), 16);
    assert!(
        kid.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "kid {kid:?} is not lowercase hex"
    );
    assert_eq!(kid, expected_kid(CURRENT));
}

#[test]
fn different_secrets_have_different_kids() {
    assert_ne!(secret(CURRENT).kid(), secret(PREVIOUS).kid());
    assert_eq!(secret(CURRENT).kid(), secret(CURRENT).kid());
}

#[test]
fn verifier_lists_the_current_kid_first() {
    let verifier = Verifier::new(&secret(CURRENT), &[secret(PREVIOUS)]);
    let kids: Vec<&str> = verifier.kids().collect();
    assert_eq!(kids, [expected_kid(CURRENT), expected_kid(PREVIOUS)]);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn secret_shorter_than_32_bytes_is_refused() {
    let short = "x".repeat(MIN_SECRET_LEN - 1);
    assert_eq!(
        Secret::new(&short).unwrap_err(),
        SecretError::TooShort { len: 31 }
    );
    assert_eq!(
        Secret::new("").unwrap_err(),
        SecretError::TooShort { len: 0 }
    );
}

#[test]
fn secret_of_exactly_32_bytes_is_accepted() {
    assert_eq!(MIN_SECRET_LEN, 32);
    let exact = "y".repeat(32);
    let secret = Secret::new(&exact).unwrap();
    assert_eq!(secret.kid(), expected_kid(&exact));
}

#[test]
fn debug_of_secret_signer_and_verifier_never_shows_the_secret() {
    let secret = secret(CURRENT);
    let rendered = [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        format!("{:?}", Signer::new(&secret)),
        format!("{:#?}", Signer::new(&secret)),
        format!("{:?}", Verifier::new(&secret, &[self::secret(PREVIOUS)])),
        format!("{:#?}", Verifier::new(&secret, &[self::secret(PREVIOUS)])),
    ];
    // The raw bytes as `Debug` of a `Vec<u8>` would print them.
    let as_byte_list = format!("{:?}", &CURRENT.as_bytes()[..4]);
    let as_byte_list = as_byte_list.trim_end_matches(']');
    for text in &rendered {
        for needle in [
            CURRENT,
            PREVIOUS,
            "the current secret",
            "the previous secret",
        ] {
            assert!(!text.contains(needle), "{text} shows the secret");
        }
        assert!(
            !text.contains(as_byte_list),
            "{text} shows the secret bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

#[test]
fn expired_token_is_rejected() {
    let secret = secret(CURRENT);
    let claims = Claims::issued_at(
        Uuid::new_v4(),
        "ada@example.com",
        unix_now() - 3600,
        Duration::from_secs(60),
    );
    let token = Signer::new(&secret).sign(&claims).unwrap();
    assert_eq!(
        Verifier::new(&secret, &[]).verify(&token),
        Err(VerifyError::Expired)
    );
}

#[test]
fn token_expired_within_the_leeway_is_still_accepted() {
    let secret = secret(CURRENT);
    // exp = now - 2, inside the 5 s leeway.
    let claims = Claims::issued_at(
        Uuid::new_v4(),
        "ada@example.com",
        unix_now() - 62,
        Duration::from_secs(60),
    );
    assert!(claims.exp + LEEWAY_SECS > unix_now());
    let token = Signer::new(&secret).sign(&claims).unwrap();
    assert_eq!(Verifier::new(&secret, &[]).verify(&token), Ok(claims));
}

#[test]
fn token_issued_in_the_future_beyond_the_leeway_is_not_yet_valid() {
    let secret = secret(CURRENT);
    let claims = Claims::issued_at(
        Uuid::new_v4(),
        "ada@example.com",
        unix_now() + 3600,
        Duration::from_secs(60),
    );
    let token = Signer::new(&secret).sign(&claims).unwrap();
    assert_eq!(
        Verifier::new(&secret, &[]).verify(&token),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn token_issued_slightly_in_the_future_within_the_leeway_is_accepted() {
    let secret = secret(CURRENT);
    let claims = Claims::issued_at(
        Uuid::new_v4(),
        "ada@example.com",
        unix_now() + 2,
        Duration::from_secs(60),
    );
    let token = Signer::new(&secret).sign(&claims).unwrap();
    assert_eq!(Verifier::new(&secret, &[]).verify(&token), Ok(claims));
}

#[test]
fn hand_built_token_with_a_future_nbf_is_not_yet_valid() {
    let mut payload = valid_payload();
    payload["nbf"] = json!(unix_now() + 3600);
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::NotYetValid));
}

#[test]
fn hand_built_token_with_a_past_nbf_is_accepted() {
    let mut payload = valid_payload();
    payload["nbf"] = json!(unix_now() - 10);
    assert!(verify_hand_built(&payload).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Signatures and keys
// ---------------------------------------------------------------------------------------------

#[test]
fn tampered_payload_is_rejected_as_bad_signature() {
    let secret = secret(CURRENT);
    let token = Signer::new(&secret).sign(&claims_for_now()).unwrap();
    let [header, payload, signature] = segments(&token);
    let mut claims = unb64_json(payload);
    claims["email"] = json!("mallory@example.com");
    claims["sub"] = json!(Uuid::new_v4().to_string());
    let forged = format!("{header}.{}.{signature}", b64(claims.to_string()));
    assert_eq!(
        Verifier::new(&secret, &[]).verify(&forged),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn tampered_signature_is_rejected_as_bad_signature() {
    let secret = secret(CURRENT);
    let token = Signer::new(&secret).sign(&claims_for_now()).unwrap();
    let [header, payload, signature] = segments(&token);
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    let forged = format!("{header}.{payload}.{}", b64(sig));
    assert_eq!(
        Verifier::new(&secret, &[]).verify(&forged),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn token_signed_with_another_key_under_our_kid_is_rejected_as_bad_signature() {
    let token = hand_hs256(
        &header_with_kid(&expected_kid(CURRENT)),
        &valid_payload(),
        OTHER,
    );
    assert_eq!(
        Verifier::new(&secret(CURRENT), &[secret(PREVIOUS)]).verify(&token),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn token_signed_with_another_key_and_its_own_kid_is_rejected_as_unknown_key() {
    let token = Signer::new(&secret(OTHER)).sign(&claims_for_now()).unwrap();
    assert_eq!(
        Verifier::new(&secret(CURRENT), &[secret(PREVIOUS)]).verify(&token),
        Err(VerifyError::UnknownKey)
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-built tokens and algorithms
// ---------------------------------------------------------------------------------------------

#[test]
fn hand_built_hs256_token_with_kid_verifies() {
    let payload = valid_payload();
    let claims = verify_hand_built(&payload).unwrap();
    assert_eq!(claims.sub.to_string(), payload["sub"]);
    assert_eq!(claims.jti.to_string(), payload["jti"]);
    assert_eq!(claims.email, "ada@example.com");
}

#[test]
fn alg_none_with_empty_signature_is_rejected() {
    let verifier = Verifier::new(&secret(CURRENT), &[]);
    for header in [
        json!({ "alg": "none", "typ": "JWT" }),
        json!({ "alg": "none", "typ": "JWT", "kid": expected_kid(CURRENT) }),
        json!({ "alg": "None" }),
        json!({ "alg": "NONE" }),
    ] {
        let token = format!("{}.", unsigned(&header, &valid_payload()));
        // jsonwebtoken's `Algorithm` has no `none`, so the header itself fails to parse.
        assert_eq!(
            verifier.verify(&token),
            Err(VerifyError::Malformed),
            "{header}"
        );
    }
}

#[test]
fn hs512_token_is_rejected_as_unsupported_algorithm() {
    let header = json!({ "alg": "HS512", "typ": "JWT", "kid": expected_kid(CURRENT) });
    let input = unsigned(&header, &valid_payload());
    let token = format!(
        "{input}.{}",
        b64(hmac_sha512(CURRENT.as_bytes(), input.as_bytes()))
    );
    let result = Verifier::new(&secret(CURRENT), &[]).verify(&token);
    assert!(result.is_err());
    assert_eq!(result, Err(VerifyError::UnsupportedAlgorithm));
}

#[test]
fn hs384_token_is_rejected_as_unsupported_algorithm() {
    let header = json!({ "alg": "HS384", "typ": "JWT", "kid": expected_kid(CURRENT) });
    let input = unsigned(&header, &valid_payload());
    let token = format!(
        "{input}.{}",
        b64(hmac_sha384(CURRENT.as_bytes(), input.as_bytes()))
    );
    let result = Verifier::new(&secret(CURRENT), &[]).verify(&token);
    assert!(result.is_err());
    assert_eq!(result, Err(VerifyError::UnsupportedAlgorithm));
}

#[test]
fn rs256_token_is_rejected_as_unsupported_algorithm() {
    // The classic confusion attack: an RS256 header with an HMAC signature.
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": expected_kid(CURRENT) });
    let input = unsigned(&header, &valid_payload());
    let token = format!(
        "{input}.{}",
        b64(hmac_sha256(CURRENT.as_bytes(), input.as_bytes()))
    );
    let result = Verifier::new(&secret(CURRENT), &[]).verify(&token);
    assert!(result.is_err());
    assert_eq!(result, Err(VerifyError::UnsupportedAlgorithm));
}

#[test]
fn unknown_algorithm_names_are_rejected_as_malformed() {
    let verifier = Verifier::new(&secret(CURRENT), &[]);
    for alg in ["hs256", "HS257", ""] {
        let header = json!({ "alg": alg, "kid": expected_kid(CURRENT) });
        let input = unsigned(&header, &valid_payload());
        let token = format!(
            "{input}.{}",
            b64(hmac_sha256(CURRENT.as_bytes(), input.as_bytes()))
        );
        assert_eq!(
            verifier.verify(&token),
            Err(VerifyError::Malformed),
            "{alg}"
        );
    }
}

#[test]
fn token_without_kid_signed_with_the_current_secret_verifies() {
    // Another gateway minting plain HS256 with the shared secret, without a kid.
    let payload = valid_payload();
    let token = hand_hs256(&header_without_kid(), &payload, CURRENT);
    let verifier = Verifier::new(&secret(CURRENT), &[secret(PREVIOUS)]);
    let claims = verifier.verify(&token).unwrap();
    assert_eq!(claims.sub.to_string(), payload["sub"]);
}

#[test]
fn token_without_kid_signed_with_a_previous_secret_is_rejected() {
    let token = hand_hs256(&header_without_kid(), &valid_payload(), PREVIOUS);
    let verifier = Verifier::new(&secret(CURRENT), &[secret(PREVIOUS)]);
    assert_eq!(verifier.verify(&token), Err(VerifyError::BadSignature));
}

// ---------------------------------------------------------------------------------------------
// Issuer and audience
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_issuer_is_rejected() {
    let mut payload = valid_payload();
    payload["iss"] = json!("evil-gateway");
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::WrongIssuer));
}

#[test]
fn wrong_audience_is_rejected() {
    let mut payload = valid_payload();
    payload["aud"] = json!("some-other-api");
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::WrongAudience));
}

#[test]
fn custom_issuer_and_audience_are_accepted_when_configured() {
    let secret = secret(CURRENT);
    let mut claims = claims_for_now();
    claims.iss = "mobile-gateway".to_owned();
    claims.aud = "billing-api".to_owned();
    let token = Signer::new(&secret).sign(&claims).unwrap();

    let custom = Verifier::new(&secret, &[])
        .with_issuer("mobile-gateway")
        .with_audience("billing-api");
    assert_eq!(custom.verify(&token), Ok(claims));

    let default = Verifier::new(&secret, &[]);
    assert_eq!(default.verify(&token), Err(VerifyError::WrongIssuer));
    let issuer_only = Verifier::new(&secret, &[]).with_issuer("mobile-gateway");
    assert_eq!(issuer_only.verify(&token), Err(VerifyError::WrongAudience));
}

#[test]
fn custom_verifier_rejects_the_default_issuer_and_audience() {
    let secret = secret(CURRENT);
    let token = Signer::new(&secret).sign(&claims_for_now()).unwrap();
    let custom_issuer = Verifier::new(&secret, &[]).with_issuer("mobile-gateway");
    assert_eq!(custom_issuer.verify(&token), Err(VerifyError::WrongIssuer));
    let custom_audience = Verifier::new(&secret, &[]).with_audience("billing-api");
    assert_eq!(
        custom_audience.verify(&token),
        Err(VerifyError::WrongAudience)
    );
}

// ---------------------------------------------------------------------------------------------
// Missing and ill-typed claims
// ---------------------------------------------------------------------------------------------

#[test]
fn complete_hand_built_payload_is_the_baseline_for_missing_claim_tests() {
    assert!(verify_hand_built(&valid_payload()).is_ok());
}

#[test]
fn token_without_sub_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("sub")),
        Err(VerifyError::MissingClaim("sub"))
    );
}

#[test]
fn token_without_email_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("email")),
        Err(VerifyError::MissingClaim("email"))
    );
}

#[test]
fn token_without_iat_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("iat")),
        Err(VerifyError::MissingClaim("iat"))
    );
}

#[test]
fn token_without_exp_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("exp")),
        Err(VerifyError::MissingClaim("exp"))
    );
}

#[test]
fn token_without_iss_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("iss")),
        Err(VerifyError::MissingClaim("iss"))
    );
}

#[test]
fn token_without_aud_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("aud")),
        Err(VerifyError::MissingClaim("aud"))
    );
}

#[test]
fn token_without_jti_is_rejected() {
    assert_eq!(
        verify_hand_built(&payload_without("jti")),
        Err(VerifyError::MissingClaim("jti"))
    );
}

#[test]
fn null_claims_count_as_missing() {
    for claim in ["sub", "email", "iat", "exp", "iss", "aud", "jti"] {
        let mut payload = valid_payload();
        payload[claim] = Value::Null;
        let result = verify_hand_built(&payload);
        assert!(result.is_err(), "null {claim} was accepted");
        assert_eq!(result, Err(VerifyError::MissingClaim(claim)), "{claim}");
    }
}

#[test]
fn exp_as_a_string_is_rejected() {
    let mut payload = valid_payload();
    payload["exp"] = json!((unix_now() + 60).to_string());
    let result = verify_hand_built(&payload);
    assert!(result.is_err());
    // jsonwebtoken deserializes the claims type before it validates, so the type error wins
    // over "exp is missing".
    assert_eq!(result, Err(VerifyError::Malformed));
}

#[test]
fn nbf_as_a_numeric_string_in_the_future_is_rejected() {
    // CVE-2026-25537: jsonwebtoken before 10.3.0 treated a string `nbf` (or `exp`) as absent,
    // so a far-future "nbf" in quotes was never enforced.
    let mut payload = valid_payload();
    payload["nbf"] = json!((unix_now() + 86_400).to_string());
    assert!(verify_hand_built(&payload).is_err());
}

#[test]
fn nbf_that_is_not_a_number_is_rejected() {
    for nbf in [
        json!((unix_now() + 3600).to_string()),
        json!("soon"),
        json!(-1),
    ] {
        let mut payload = valid_payload();
        payload["nbf"] = nbf.clone();
        let result = verify_hand_built(&payload);
        assert!(result.is_err(), "nbf {nbf} was accepted");
        assert_eq!(result, Err(VerifyError::Malformed), "{nbf}");
    }
}

#[test]
fn iat_as_a_string_is_rejected_as_malformed() {
    let mut payload = valid_payload();
    payload["iat"] = json!(unix_now().to_string());
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::Malformed));
}

#[test]
fn sub_that_is_not_a_uuid_is_rejected_as_malformed() {
    let mut payload = valid_payload();
    payload["sub"] = json!("not-a-uuid");
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::Malformed));
}

#[test]
fn jti_that_is_not_a_uuid_is_rejected_as_malformed() {
    let mut payload = valid_payload();
    payload["jti"] = json!("not-a-uuid");
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::Malformed));
}

#[test]
fn audience_as_an_array_is_rejected_as_malformed() {
    let mut payload = valid_payload();
    payload["aud"] = json!([DEFAULT_AUDIENCE]);
    assert_eq!(verify_hand_built(&payload), Err(VerifyError::Malformed));
}

#[test]
fn garbage_strings_are_rejected_as_malformed() {
    let verifier = Verifier::new(&secret(CURRENT), &[]);
    let valid = Signer::new(&secret(CURRENT))
        .sign(&claims_for_now())
        .unwrap();
    let garbage = [
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "a.b".to_owned(),
        "a.b.c".to_owned(),
        "a.b.c.d".to_owned(),
        "Bearer something".to_owned(),
        "this is not a token at all".to_owned(),
        "eyJhbGciOiJIUzI1NiJ9".to_owned(),
        "💥.💥.💥".to_owned(),
        format!("{valid}.extra"),
        format!("extra.{valid}"),
        format!("{}.{}.", b64("not json"), b64("{}")),
    ];
    for token in &garbage {
        assert_eq!(
            verifier.verify(token),
            Err(VerifyError::Malformed),
            "{token:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn during_rotation_tokens_from_old_and_new_signers_both_verify() {
    let new = secret(CURRENT);
    let old = secret(PREVIOUS);
    let verifier = Verifier::new(&new, std::slice::from_ref(&old));
    for signer in [Signer::new(&new), Signer::new(&old)] {
        let claims = claims_for_now();
        let token = signer.sign(&claims).unwrap();
        assert_eq!(verifier.verify(&token), Ok(claims), "{signer:?}");
    }
}

#[test]
fn after_rotation_tokens_from_the_old_signer_are_rejected_as_unknown_key() {
    let new = secret(CURRENT);
    let old = secret(PREVIOUS);
    let verifier = Verifier::new(&new, &[]);
    let token = Signer::new(&old).sign(&claims_for_now()).unwrap();
    assert_eq!(verifier.verify(&token), Err(VerifyError::UnknownKey));
    let fresh = claims_for_now();
    let token = Signer::new(&new).sign(&fresh).unwrap();
    assert_eq!(verifier.verify(&token), Ok(fresh));
}

// ---------------------------------------------------------------------------------------------
// Errors never leak the token
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_errors_never_contain_the_token() {
    let current = secret(CURRENT);
    let verifier = Verifier::new(&current, &[]);
    let now = unix_now();
    let expired = Signer::new(&current)
        .sign(&Claims::issued_at(
            Uuid::new_v4(),
            "leak@example.com",
            now - 3600,
            Duration::from_secs(60),
        ))
        .unwrap();
    let future = Signer::new(&current)
        .sign(&Claims::issued_at(
            Uuid::new_v4(),
            "leak@example.com",
            now + 3600,
            Duration::from_secs(60),
        ))
        .unwrap();
    let unknown = Signer::new(&secret(OTHER)).sign(&claims_for_now()).unwrap();
    let forged = hand_hs256(&header_with_kid(current.kid()), &valid_payload(), OTHER);
    let mut wrong_iss = valid_payload();
    wrong_iss["iss"] = json!("evil-gateway");
    let wrong_iss = hand_hs256(&header_with_kid(current.kid()), &wrong_iss, CURRENT);
    let no_jti = hand_hs256(
        &header_with_kid(current.kid()),
        &payload_without("jti"),
        CURRENT,
    );
    let rs256 = format!(
        "{}.sig",
        unsigned(&json!({ "alg": "RS256" }), &valid_payload())
    );
    let tokens = [
        expired,
        future,
        unknown,
        forged,
        wrong_iss,
        no_jti,
        rs256,
        "garbage-token-text-that-must-not-leak".to_owned(),
    ];
    for token in &tokens {
        let error = verifier.verify(token).unwrap_err();
        for text in [
            format!("{error}"),
            format!("{error:?}"),
            format!("{error:#?}"),
        ] {
            assert!(!text.contains(token.as_str()), "{text} contains the token");
            for segment in token.split('.').filter(|s| s.len() >= 8) {
                assert!(!text.contains(segment), "{text} contains part of the token");
            }
            assert!(!text.contains("leak@example.com"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lifetimes and critical header extensions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_lifetime_longer_than_the_maximum_is_refused_even_when_validly_signed() {
    let user = Uuid::new_v4();
    let signer = Signer::new(&secret(CURRENT));
    let verifier = Verifier::new(&secret(CURRENT), &[]);
    let longest = Claims::with_lifetime(user, "ada@example.com", Duration::from_secs(300));
    assert_eq!(MAX_LIFETIME_SECS, 300);
    assert_eq!(
        verifier.verify(&signer.sign(&longest).unwrap()),
        Ok(longest)
    );
    for lifetime in [301, 3600, 365 * 86_400] {
        let claims = Claims::with_lifetime(user, "ada@example.com", Duration::from_secs(lifetime));
        assert_eq!(
            verifier.verify(&signer.sign(&claims).unwrap()),
            Err(VerifyError::LifetimeNotAccepted),
            "{lifetime} s"
        );
    }
    // An `exp` before `iat` is no lifetime at all (and not an underflow).
    let mut payload = valid_payload();
    payload["iat"] = json!(unix_now());
    payload["exp"] = json!(unix_now() - 1);
    assert_eq!(
        verify_hand_built(&payload),
        Err(VerifyError::LifetimeNotAccepted)
    );
}

#[test]
fn a_header_naming_a_critical_extension_is_refused() {
    let kid = expected_kid(CURRENT);
    let verifier = Verifier::new(&secret(CURRENT), &[]);
    for crit in [
        json!(["b64"]),
        json!(["exp"]),
        json!(["urn:example:unknown"]),
    ] {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": kid, "crit": crit });
        let token = hand_hs256(&header, &valid_payload(), CURRENT);
        assert_eq!(
            verifier.verify(&token),
            Err(VerifyError::CriticalExtension),
            "{crit}"
        );
    }
    // A `crit` that is not a list of names is not a header at all.
    let header = json!({ "alg": "HS256", "kid": kid, "crit": "b64" });
    let token = hand_hs256(&header, &valid_payload(), CURRENT);
    assert_eq!(verifier.verify(&token), Err(VerifyError::Malformed));
}

// ---------------------------------------------------------------------------------------------
// Property: any user, any email, any lifetime up to the maximum round-trips
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn any_user_email_and_lifetime_round_trips(
        user in any::<u128>().prop_map(Uuid::from_u128),
        email in any::<String>(),
        lifetime in 1u64..=MAX_LIFETIME_SECS,
    ) {
        let secret = secret(CURRENT);
        let claims = Claims::with_lifetime(user, email, Duration::from_secs(lifetime));
        prop_assert_eq!(claims.exp - claims.iat, lifetime);
        let token = Signer::new(&secret).sign(&claims).unwrap();
        let verifier = Verifier::new(&secret, &[secret_previous()]);
        prop_assert_eq!(verifier.verify(&token), Ok(claims));
    }
}

fn secret_previous() -> Secret {
    secret(PREVIOUS)
}
