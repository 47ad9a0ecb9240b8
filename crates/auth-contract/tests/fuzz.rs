//! Fuzzing the token verifier on stable Rust: property-based suites run
//! for `FUZZ_CASES` cases each (default 256, so `cargo test` stays quick; `just fuzz` runs many
//! more).
//!
//! * arbitrary bytes, strings and JWT-shaped strings never panic and never verify;
//! * tokens with random headers and payloads verify only when HMAC-SHA256-signed with a key in
//!   the ring, and then only when the header says HS256 with a known (or no) kid and the payload
//!   holds exactly the claims the verifier promises to check;
//! * any mutation of a valid token (bit flips, insertions, deletions, truncation, segment
//!   swaps, re-encoding) never verifies.
//!
//! Tokens are built by hand (base64url + `hmac`), not with the code under test.

use auth_contract::{
    Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEEWAY_SECS, Secret, Signer, Verifier, unix_now,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const CURRENT: &str = "the current secret, comfortably longer than 32 bytes";
const PREVIOUS: &str = "the previous secret, also longer than thirty-two bytes";
const OTHER: &str = "a secret belonging to somebody else entirely, 32+ bytes";

/// Cases per property: `FUZZ_CASES`, default 256.
fn fuzz_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(256)
}

fn config() -> Config {
    Config {
        // Regressions are printed on failure; nothing is written next to the sources.
        failure_persistence: None,
        ..Config::with_cases(fuzz_cases())
    }
}

fn verifier() -> Verifier {
    Verifier::new(
        &Secret::new(CURRENT).unwrap(),
        &[Secret::new(PREVIOUS).unwrap()],
    )
}

fn kid_of(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..8])
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn sign(header: &Value, payload: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let sig = hs256(key, &input);
    format!("{input}.{}", b64(sig))
}

fn valid_token() -> String {
    Signer::new(&Secret::new(CURRENT).unwrap())
        .sign(&Claims::new(Uuid::new_v4(), "ada@example.com"))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A header: `alg` from the names attackers try (and garbage), `kid` right, wrong, absent or
/// of the wrong type, and sometimes extra fields (`jku`, `jwk`, `x5u`, `crit`...).
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        4 => Just(json!("HS256")),
        4 => prop::sample::select(vec![
            "none", "None", "NONE", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
            "ES256", "ES384", "EdDSA", "hs256", "HS256 ", "",
        ])
        .prop_map(|s| json!(s)),
        1 => any_json(),
    ];
    let kid = prop_oneof![
        3 => Just(Some(json!(kid_of(CURRENT)))),
        2 => Just(Some(json!(kid_of(PREVIOUS)))),
        2 => Just(Some(json!(kid_of(OTHER)))),
        2 => Just(None),
        1 => any_json().prop_map(Some),
        1 => "[0-9a-f]{16}".prop_map(|s| Some(json!(s))),
    ];
    let extra = prop::collection::btree_map(
        prop::sample::select(vec![
            "typ", "cty", "jku", "jwk", "x5u", "x5c", "crit", "b64",
        ]),
        any_json(),
        0..3,
    );
    (alg, kid, extra).prop_map(|(alg, kid, extra)| {
        let mut h = Map::new();
        for (k, v) in extra {
            h.insert(k.to_owned(), v);
        }
        h.insert("alg".into(), alg);
        if let Some(kid) = kid {
            h.insert("kid".into(), kid);
        }
        Value::Object(h)
    })
}

/// A claim's value: usually right, sometimes wrong in value or type, sometimes absent.
fn claim(good: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => Just(Some(good)),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
}

/// `now + offset`, with `now` read when the value is generated (a long run would otherwise
/// drift past every `exp`).
fn at(offset: i64) -> Value {
    json!((unix_now() as i64).saturating_add(offset))
}

fn time_claim(offset: i64) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => Just(offset).prop_map(|o| Some(at(o))),
        2 => (-100_000i64..100_000).prop_map(|d| Some(at(d))),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
}

/// A payload: each claim usually valid, sometimes wrong, absent or of another type; `nbf`
/// sometimes present.
fn payload() -> impl Strategy<Value = Value> {
    (
        claim(json!(Uuid::new_v4().to_string())),
        claim(json!("ada@example.com")),
        time_claim(0),
        time_claim(60),
        prop_oneof![
            6 => Just(Some(json!(DEFAULT_ISSUER))),
            1 => Just(None),
            1 => prop::sample::select(vec!["backend-api", "Frontend-Gateway", "", "frontend-gateway "])
                .prop_map(|s| Some(json!(s))),
            1 => any_json().prop_map(Some),
        ],
        prop_oneof![
            6 => Just(Some(json!(DEFAULT_AUDIENCE))),
            1 => Just(None),
            1 => prop::sample::select(vec!["some-other-api", "frontend-gateway", "", "BACKEND-API"])
                .prop_map(|s| Some(json!(s))),
            1 => Just(Some(json!([DEFAULT_AUDIENCE]))),
            1 => any_json().prop_map(Some),
        ],
        claim(json!(Uuid::new_v4().to_string())),
        prop_oneof![6 => Just(None), 1 => time_claim(0), 1 => time_claim(3600)],
    )
        .prop_map(|(sub, email, iat, exp, iss, aud, jti, nbf)| {
            let mut p = Map::new();
            for (k, v) in [
                ("sub", sub),
                ("email", email),
                ("iat", iat),
                ("exp", exp),
                ("iss", iss),
                ("aud", aud),
                ("jti", jti),
                ("nbf", nbf),
            ] {
                if let Some(v) = v {
                    p.insert(k.into(), v);
                }
            }
            Value::Object(p)
        })
}

/// A payload that is valid but for (at most) one claim: absent, null, of another type, or a
/// near miss (off-by-leeway times, look-alike issuer and audience, an extra `nbf`).
fn near_valid_payload() -> impl Strategy<Value = Value> {
    let leeway = LEEWAY_SECS as i64;
    // Times are offsets from the moment of generation, or absolute when marked `Abs`.
    #[derive(Debug, Clone)]
    enum Time {
        Rel(i64),
        Abs(i64),
    }
    let change = prop_oneof![
        2 => Just(None),
        1 => prop::sample::select(vec!["sub", "email", "iat", "exp", "iss", "aud", "jti"])
            .prop_map(|k| Some((k, None))),
        1 => (
            prop::sample::select(vec!["sub", "email", "iat", "exp", "iss", "aud", "jti", "nbf"]),
            any_json()
        )
            .prop_map(|(k, v)| Some((k, Some(v)))),
        2 => (
            prop::sample::select(vec!["iat", "exp", "nbf"]),
            prop_oneof![
                Just(Time::Rel(0)),
                Just(Time::Rel(-leeway - 2)),
                Just(Time::Rel(-leeway + 2)),
                Just(Time::Rel(leeway - 2)),
                Just(Time::Rel(leeway + 2)),
                Just(Time::Abs(0)),
                Just(Time::Abs(i64::MAX)),
            ]
        )
            .prop_map(|(k, t)| {
                let v = match t {
                    Time::Rel(o) => at(o),
                    Time::Abs(t) => json!(t),
                };
                Some((k, Some(v)))
            }),
        1 => (
            prop::sample::select(vec!["iss", "aud"]),
            prop::sample::select(vec![
                "frontend-gateway", "backend-api", "Frontend-Gateway", "backend-api ",
                "some-other-api", "",
            ])
        )
            .prop_map(|(k, v)| Some((k, Some(json!(v))))),
    ];
    change.prop_map(|change| {
        let mut p = json!({
            "sub": Uuid::new_v4().to_string(),
            "email": "ada@example.com",
            "iat": at(0),
            "exp": at(60),
            "iss": DEFAULT_ISSUER,
            "aud": DEFAULT_AUDIENCE,
            "jti": Uuid::new_v4().to_string(),
        });
        match change {
            None => {}
            Some((k, None)) => {
                p.as_object_mut().unwrap().remove(k);
            }
            Some((k, Some(v))) => p[k] = v,
        }
        p
    })
}

/// What the verifier must have checked before answering `Ok`, judged from the raw token parts.
/// `before` and `after` are the clock read just before and just after `verify`, so that the
/// time checks hold whenever in between the verifier read it.
fn assert_acceptance_is_justified(
    header: &Value,
    payload: &Value,
    claims: &Claims,
    (before, after): (u64, u64),
) {
    assert_eq!(
        header["alg"], "HS256",
        "accepted a non-HS256 header: {header}"
    );
    // `"kid": null` is the same as no kid (jsonwebtoken reads both as `None`): checked with the
    // current key only, which the property below asserts.
    match header.get("kid").filter(|k| !k.is_null()) {
        None => {}
        Some(kid) => assert!(
            *kid == json!(kid_of(CURRENT)) || *kid == json!(kid_of(PREVIOUS)),
            "accepted an unknown kid: {header}"
        ),
    }
    assert_eq!(payload["iss"], DEFAULT_ISSUER, "{payload}");
    assert_eq!(payload["aud"], DEFAULT_AUDIENCE, "{payload}");
    assert_eq!(payload["sub"], claims.sub.to_string(), "{payload}");
    assert_eq!(payload["jti"], claims.jti.to_string(), "{payload}");
    assert_eq!(payload["email"], claims.email, "{payload}");
    let exp = payload["exp"].as_u64().expect("accepted a non-integer exp");
    assert!(
        exp.saturating_add(LEEWAY_SECS) >= before,
        "accepted an expired token: {payload}"
    );
    let iat = payload["iat"].as_u64().expect("accepted a non-integer iat");
    assert!(
        iat <= after + LEEWAY_SECS,
        "accepted a future iat: {payload}"
    );
    if let Some(nbf) = payload.get("nbf").filter(|v| !v.is_null()) {
        let nbf = nbf.as_u64().expect("accepted a non-integer nbf");
        assert!(
            nbf <= after + LEEWAY_SECS,
            "accepted a future nbf: {payload}"
        );
    }
}

/// One way to damage a token.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
    Truncate(Index),
    SwapSegments(usize, usize),
    /// Re-encode a segment with padding or the standard alphabet.
    Reencode(usize, bool),
    /// Change a claim in the payload, keeping the signature.
    EditPayload(String, Value),
    /// Change the header, keeping the signature.
    EditHeader(String, Value),
    Append(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
        (0usize..3, any::<bool>()).prop_map(|(s, std)| Mutation::Reencode(s, std)),
        (
            prop::sample::select(vec![
                "sub", "email", "iat", "exp", "iss", "aud", "jti", "nbf", "admin"
            ]),
            any_json()
        )
            .prop_map(|(k, v)| Mutation::EditPayload(k.to_owned(), v)),
        (
            prop::sample::select(vec!["alg", "kid", "typ", "jku"]),
            any_json()
        )
            .prop_map(|(k, v)| Mutation::EditHeader(k.to_owned(), v)),
        "[ -~]{1,8}".prop_map(Mutation::Append),
    ]
}

fn apply(token: &str, m: &Mutation) -> String {
    if token.is_empty() {
        return "x".to_owned();
    }
    let mut bytes = token.as_bytes().to_vec();
    let segments: Vec<&str> = token.split('.').collect();
    let edit = |seg: usize, key: &str, value: &Value| {
        let decoded = URL_SAFE_NO_PAD.decode(segments[seg]).unwrap();
        let mut json: Value = serde_json::from_slice(&decoded).unwrap();
        json[key] = value.clone();
        let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        parts[seg] = b64(json.to_string());
        parts.join(".")
    };
    match m {
        Mutation::FlipBit(i, bit) => {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Replace(i, c) => {
            let mut chars: Vec<char> = token.chars().collect();
            let i = i.index(chars.len());
            chars[i] = *c;
            chars.into_iter().collect()
        }
        Mutation::Insert(i, c) => {
            let mut chars: Vec<char> = token.chars().collect();
            let i = i.index(chars.len() + 1);
            chars.insert(i, *c);
            chars.into_iter().collect()
        }
        Mutation::Delete(i) => {
            let mut chars: Vec<char> = token.chars().collect();
            chars.remove(i.index(chars.len()));
            chars.into_iter().collect()
        }
        Mutation::Truncate(i) => {
            let chars: Vec<char> = token.chars().collect();
            chars[..i.index(chars.len())].iter().collect()
        }
        Mutation::SwapSegments(a, b) => {
            let mut parts = segments.clone();
            parts.swap(*a, *b);
            parts.join(".")
        }
        Mutation::Reencode(seg, standard) => {
            let raw = URL_SAFE_NO_PAD.decode(segments[*seg]).unwrap();
            let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
            parts[*seg] = if *standard {
                STANDARD.encode(raw)
            } else {
                URL_SAFE.encode(raw)
            };
            parts.join(".")
        }
        Mutation::EditPayload(k, v) => edit(1, k, v),
        Mutation::EditHeader(k, v) => edit(0, k, v),
        Mutation::Append(s) => format!("{token}{s}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic_and_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verifier().verify(&text).is_err());
    }

    #[test]
    fn fuzz_arbitrary_strings_never_panic_and_never_verify(text in any::<String>()) {
        prop_assert!(verifier().verify(&text).is_err());
    }

    #[test]
    fn fuzz_jwt_shaped_strings_never_panic_and_never_verify(
        parts in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200).prop_map(b64),
                any_json().prop_map(|v| b64(v.to_string())),
                "[A-Za-z0-9_=+/-]{0,80}",
                any::<String>(),
            ],
            1..6,
        ),
    ) {
        let token = parts.join(".");
        prop_assert!(verifier().verify(&token).is_err(), "{}", token);
    }

    #[test]
    fn fuzz_random_header_and_payload_with_a_random_signature_never_verify(
        header in header(),
        payload in payload(),
        sig in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80).prop_map(b64),
            Just(String::new()),
            "[A-Za-z0-9_-]{0,90}",
        ],
    ) {
        let token = format!("{}.{}.{sig}", b64(header.to_string()), b64(payload.to_string()));
        prop_assert!(verifier().verify(&token).is_err(), "{} {}", header, payload);
    }

    #[test]
    fn fuzz_random_header_and_payload_signed_with_a_foreign_key_never_verify(
        header in header(),
        payload in payload(),
        key in prop_oneof![
            Just(OTHER.as_bytes().to_vec()),
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 0..64),
            // Near misses of the real secret.
            Just(CURRENT.as_bytes()[..CURRENT.len() - 1].to_vec()),
            Just(format!("{CURRENT}\n").into_bytes()),
            Just(CURRENT.to_uppercase().into_bytes()),
            Just(kid_of(CURRENT).into_bytes()),
        ],
    ) {
        prop_assume!(key != CURRENT.as_bytes() && key != PREVIOUS.as_bytes());
        let token = sign(&header, &payload, &key);
        prop_assert!(verifier().verify(&token).is_err(), "{} {}", header, payload);
    }

    #[test]
    fn fuzz_random_header_and_payload_signed_with_a_ring_key_verify_only_when_everything_is_right(
        header in prop_oneof![
            1 => header(),
            1 => prop::sample::select(vec![Some(kid_of(CURRENT)), Some(kid_of(PREVIOUS)), None])
                .prop_map(|kid| match kid {
                    Some(kid) => json!({ "alg": "HS256", "typ": "JWT", "kid": kid }),
                    None => json!({ "alg": "HS256", "typ": "JWT" }),
                }),
        ],
        payload in prop_oneof![1 => payload(), 2 => near_valid_payload()],
        current in any::<bool>(),
    ) {
        let key = if current { CURRENT } else { PREVIOUS };
        let token = sign(&header, &payload, key.as_bytes());
        let verifier = verifier();
        let before = unix_now();
        let result = verifier.verify(&token);
        let after = unix_now();
        if let Ok(claims) = result {
            assert_acceptance_is_justified(&header, &payload, &claims, (before, after));
            // The right key for the kid: a token without kid is checked with the current key only.
            match header.get("kid").filter(|k| !k.is_null()) {
                None => prop_assert!(current, "no kid, previous key: accepted"),
                Some(kid) => prop_assert_eq!(kid, &json!(kid_of(key))),
            }
        }
    }

    #[test]
    fn fuzz_mutations_of_a_valid_token_never_verify(mutations in prop::collection::vec(mutation(), 1..4)) {
        let original = valid_token();
        prop_assert!(verifier().verify(&original).is_ok());
        let mut token = original.clone();
        for m in &mutations {
            // Some mutations need the three-segment shape; stop once it is gone.
            let shaped = token.split('.').count() == 3
                && token.split('.').all(|s| URL_SAFE_NO_PAD.decode(s).is_ok());
            let needs_shape = matches!(
                m,
                Mutation::Reencode(..) | Mutation::EditPayload(..) | Mutation::EditHeader(..)
                    | Mutation::SwapSegments(..)
            );
            if needs_shape && !shaped {
                continue;
            }
            if matches!(m, Mutation::EditPayload(..) | Mutation::EditHeader(..)) {
                let seg = if matches!(m, Mutation::EditPayload(..)) { 1 } else { 0 };
                let decoded = URL_SAFE_NO_PAD.decode(token.split('.').nth(seg).unwrap()).unwrap();
                if !serde_json::from_slice::<Value>(&decoded).is_ok_and(|v| v.is_object()) {
                    continue;
                }
            }
            token = apply(&token, m);
        }
        prop_assume!(token != original);
        prop_assert!(verifier().verify(&token).is_err(), "{:?} -> {}", mutations, token);
    }
}

#[test]
fn fuzz_suite_reads_the_number_of_cases_from_fuzz_cases() {
    // `just fuzz` relies on this: the suite is as deep as FUZZ_CASES says.
    assert_eq!(config().cases, fuzz_cases());
    assert!(fuzz_cases() >= 1);
}
