//! Adversarial tests of the backend, one named test per attack.
//!
//! * Tokens: hand-built (base64url + HMAC here, not the code under test) so that every field a
//!   forger controls can be set; each one must get the uniform 401 on every protected route.
//! * Cross-tenant access: every workspace and member route, tried by an outsider (404, the same
//!   404 as a workspace that does not exist), by a viewer or a member on admin actions (403),
//!   and with ids in the body that disagree with the path (the path wins). The database is
//!   snapshotted before and compared after: refused requests change nothing.
//! * Concurrency: 50 parallel role changes and 50 parallel removals on one workspace, with
//!   owners and admins racing to demote and remove each other and themselves.

use std::collections::{BTreeMap, BTreeSet};

use auth_contract::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Secret, Signer, unix_now};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, TestResponse, TestUser, read, without_request_fields};

// ---------------------------------------------------------------------------------------------
// Hand-built tokens
// ---------------------------------------------------------------------------------------------

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key id every party derives: hex of the first 8 bytes of SHA-256 of the secret.
fn kid_of(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..8])
}

fn hmac256(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hmac512(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `b64(header).b64(payload)`, the signing input.
fn signing_input(header: &Value, payload: &Value) -> String {
    format!("{}.{}", b64(header.to_string()), b64(payload.to_string()))
}

/// A compact JWT with an HMAC-SHA256 signature made with `key`, whatever the header says.
fn hs256_signed(header: &Value, payload: &Value, key: &[u8]) -> String {
    let input = signing_input(header, payload);
    let sig = hmac256(key, &input);
    format!("{input}.{}", b64(sig))
}

/// The header our gateway writes.
fn good_header() -> Value {
    json!({ "alg": "HS256", "typ": "JWT", "kid": kid_of(SECRET) })
}

/// A complete, currently valid payload for `user`.
fn good_payload(user: &TestUser) -> Value {
    let now = unix_now();
    json!({
        "sub": user.id.to_string(),
        "email": user.email,
        "iat": now,
        "exp": now + 60,
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "jti": Uuid::new_v4().to_string(),
    })
}

fn payload_with(user: &TestUser, claim: &str, value: Value) -> Value {
    let mut p = good_payload(user);
    p[claim] = value;
    p
}

fn payload_without(user: &TestUser, claim: &str) -> Value {
    let mut p = good_payload(user);
    p.as_object_mut().unwrap().remove(claim);
    p
}

/// Signed with the right secret and the right header: only the payload is wrong.
fn properly_signed(payload: &Value) -> String {
    hs256_signed(&good_header(), payload, SECRET.as_bytes())
}

/// A user with a workspace of their own (so that the refusals below are not "nothing to see").
async fn victim(app: &TestApp) -> (TestUser, Uuid) {
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Ada's").await;
    (ada, w)
}

/// The 401 body everyone gets (from a request with no credential at all).
async fn reference_401(app: &TestApp) -> Value {
    let res = app.send(Method::GET, "/me", None, None).await;
    res.problem(401);
    without_request_fields(&res.body)
}

/// Sends `token` to every kind of protected route (read, list, create, member change) and
/// asserts the uniform 401 each time; the create must not have happened.
async fn assert_token_refused(app: &TestApp, workspace: Uuid, token: &str, what: &str) {
    let reference = reference_401(app).await;
    let routes = [
        (Method::GET, "/me".to_owned(), None),
        (Method::GET, "/workspaces".to_owned(), None),
        (Method::GET, format!("/workspaces/{workspace}"), None),
        (
            Method::POST,
            "/workspaces".to_owned(),
            Some(json!({ "name": "forged" })),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{workspace}"),
            Some(json!({ "name": "forged" })),
        ),
    ];
    for (method, path, body) in routes {
        let mut req = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = read(req.send().await.unwrap()).await;
        res.problem(401);
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#),
            "{what}: {method} {path}"
        );
        assert_eq!(
            without_request_fields(&res.body),
            reference,
            "{what}: {method} {path}: every 401 says the same"
        );
    }
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM workspaces ORDER BY name")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(
        !names.iter().any(|n| n == "forged"),
        "{what}: a refused token changed data: {names:?}"
    );
}

#[tokio::test]
async fn token_baseline_hand_built_hs256_token_is_accepted() {
    // Proves the builder below is right, so every refusal in this module is about the one thing
    // each test changes.
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let token = properly_signed(&good_payload(&ada));
    let res = app
        .send(
            Method::GET,
            &format!("/workspaces/{w}"),
            Some(&TestUser {
                token,
                ..ada.clone()
            }),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

#[tokio::test]
async fn token_alg_none_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let payload = good_payload(&ada);
    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in [
            json!({ "alg": alg, "typ": "JWT" }),
            json!({ "alg": alg, "typ": "JWT", "kid": kid_of(SECRET) }),
        ] {
            let input = signing_input(&header, &payload);
            // Empty signature, and a "signature" that is a real HMAC (in case a verifier
            // ignored the algorithm but still compared something).
            for token in [
                format!("{input}."),
                input.clone(),
                format!("{input}.{}", b64(hmac256(SECRET.as_bytes(), &input))),
            ] {
                assert_token_refused(&app, w, &token, &format!("alg {alg}")).await;
            }
        }
    }
}

#[tokio::test]
async fn token_hs_rs_confusion_is_401() {
    // The classic confusion: an asymmetric algorithm in the header, and a "signature" that is
    // an HMAC keyed with what the verifier holds (our shared secret standing in for the public
    // key a confused verifier would feed to HMAC).
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let payload = good_payload(&ada);
    let public_key_pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(SECRET)
    );
    for alg in ["RS256", "RS512", "PS256", "ES256", "EdDSA"] {
        for header in [
            json!({ "alg": alg, "typ": "JWT", "kid": kid_of(SECRET) }),
            json!({ "alg": alg, "typ": "JWT" }),
        ] {
            for key in [SECRET.as_bytes(), public_key_pem.as_bytes()] {
                let token = hs256_signed(&header, &payload, key);
                assert_token_refused(&app, w, &token, &format!("{alg} + HMAC")).await;
            }
        }
    }
    // And the other way round: an HS256 header whose HMAC key is the "public key" PEM text.
    let token = hs256_signed(&good_header(), &payload, public_key_pem.as_bytes());
    assert_token_refused(&app, w, &token, "HS256 keyed with a PEM").await;
}

#[tokio::test]
async fn token_hs512_with_the_right_secret_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    for header in [
        json!({ "alg": "HS512", "typ": "JWT", "kid": kid_of(SECRET) }),
        json!({ "alg": "HS512", "typ": "JWT" }),
    ] {
        let input = signing_input(&header, &good_payload(&ada));
        let token = format!("{input}.{}", b64(hmac512(SECRET.as_bytes(), &input)));
        assert_token_refused(&app, w, &token, "HS512").await;
    }
}

#[tokio::test]
async fn token_exp_as_a_string_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let later = unix_now() + 3600;
    for exp in [
        json!(later.to_string()),
        json!("never"),
        json!(later as f64 + 0.5),
        json!(-1),
        json!([later]),
    ] {
        let token = properly_signed(&payload_with(&ada, "exp", exp.clone()));
        assert_token_refused(&app, w, &token, &format!("exp {exp}")).await;
    }
}

#[tokio::test]
async fn token_future_nbf_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let soon = unix_now() + 600;
    for nbf in [json!(soon), json!(soon.to_string())] {
        let token = properly_signed(&payload_with(&ada, "nbf", nbf.clone()));
        assert_token_refused(&app, w, &token, &format!("nbf {nbf}")).await;
    }
}

#[tokio::test]
async fn token_living_longer_than_300_seconds_is_401_even_when_validly_signed() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let now = unix_now();
    // The longest accepted lifetime still works: the refusals below are about the lifetime.
    let mut longest = good_payload(&ada);
    longest["exp"] = json!(now + 300);
    let res = app
        .send(
            Method::GET,
            &format!("/workspaces/{w}"),
            Some(&TestUser {
                token: properly_signed(&longest),
                ..ada.clone()
            }),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A leaked key's year-long token, and an exp before its iat.
    for (iat, exp) in [(now, now + 301), (now, now + 365 * 86_400), (now, now - 1)] {
        let mut payload = good_payload(&ada);
        payload["iat"] = json!(iat);
        payload["exp"] = json!(exp);
        let token = properly_signed(&payload);
        assert_token_refused(&app, w, &token, &format!("iat {iat} exp {exp}")).await;
    }
}

#[tokio::test]
async fn token_whose_header_names_a_critical_extension_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    for crit in [json!(["b64"]), json!(["urn:example:policy"]), json!([])] {
        let mut header = good_header();
        header["crit"] = crit.clone();
        let token = hs256_signed(&header, &good_payload(&ada), SECRET.as_bytes());
        assert_token_refused(&app, w, &token, &format!("crit {crit}")).await;
    }
}

#[tokio::test]
async fn token_missing_iss_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let token = properly_signed(&payload_without(&ada, "iss"));
    assert_token_refused(&app, w, &token, "no iss").await;
    let token = properly_signed(&payload_with(&ada, "iss", Value::Null));
    assert_token_refused(&app, w, &token, "null iss").await;
}

#[tokio::test]
async fn token_missing_aud_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let token = properly_signed(&payload_without(&ada, "aud"));
    assert_token_refused(&app, w, &token, "no aud").await;
    let token = properly_signed(&payload_with(&ada, "aud", Value::Null));
    assert_token_refused(&app, w, &token, "null aud").await;
}

#[tokio::test]
async fn token_missing_sub_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let token = properly_signed(&payload_without(&ada, "sub"));
    assert_token_refused(&app, w, &token, "no sub").await;
    for sub in [Value::Null, json!(""), json!(ada.email), json!(0)] {
        let token = properly_signed(&payload_with(&ada, "sub", sub.clone()));
        assert_token_refused(&app, w, &token, &format!("sub {sub}")).await;
    }
}

#[tokio::test]
async fn token_wrong_audience_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    for aud in [
        json!("frontend-gateway"),
        json!("Backend-API"),
        json!("backend-api "),
        json!(""),
        json!(["some-other-api", DEFAULT_AUDIENCE]),
        json!([DEFAULT_AUDIENCE]),
    ] {
        let token = properly_signed(&payload_with(&ada, "aud", aud.clone()));
        assert_token_refused(&app, w, &token, &format!("aud {aud}")).await;
    }
    let token = properly_signed(&payload_with(&ada, "iss", json!("some-other-issuer")));
    assert_token_refused(&app, w, &token, "wrong iss").await;
}

#[tokio::test]
async fn token_unknown_kid_is_401() {
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let payload = good_payload(&ada);
    let attacker = "an attacker's own secret, comfortably over 32 bytes";
    for (kid, key) in [
        // Right secret, a kid the ring does not hold.
        (json!("0000000000000000"), SECRET),
        (json!(""), SECRET),
        (json!("../../etc/passwd"), SECRET),
        (json!(kid_of(SECRET).to_uppercase()), SECRET),
        // Another secret under its own kid.
        (json!(kid_of(attacker)), attacker),
        // Another secret under our kid.
        (json!(kid_of(SECRET)), attacker),
        // A kid of the wrong type.
        (json!(42), SECRET),
    ] {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
        let token = hs256_signed(&header, &payload, key.as_bytes());
        assert_token_refused(&app, w, &token, &format!("kid {kid}")).await;
    }
}

#[tokio::test]
async fn token_minted_for_another_audience_is_401() {
    // A genuine token from our own signer (valid signature, our kid) that was meant for a
    // different service sharing the secret: it must not be replayable against this one.
    let app = TestApp::spawn().await;
    let (ada, w) = victim(&app).await;
    let mut claims = Claims::new(ada.id, &ada.email);
    claims.aud = "some-other-api".into();
    let token = Signer::new(&Secret::new(SECRET).unwrap())
        .sign(&claims)
        .unwrap();
    assert_token_refused(&app, w, &token, "aud some-other-api").await;
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant access
// ---------------------------------------------------------------------------------------------

/// Everything the authorization rules protect: workspaces, memberships, invitations and the
/// mails they queue, sorted.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let workspaces: Vec<(Uuid, String, Option<Uuid>, String)> =
        sqlx::query_as("SELECT id, name, created_by, updated_at::text FROM workspaces ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let members: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT workspace_id, user_id, role::text, created_at::text FROM workspace_members \
         ORDER BY workspace_id, user_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let invitations: Vec<(Uuid, Uuid, String, String, String)> = sqlx::query_as(
        "SELECT id, workspace_id, email_key, role::text, status::text FROM workspace_invitations \
         ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mails: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, recipient FROM mail_outbox ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    workspaces
        .iter()
        .map(|w| format!("{w:?}"))
        .chain(members.iter().map(|m| format!("{m:?}")))
        .chain(invitations.iter().map(|i| format!("{i:?}")))
        .chain(mails.iter().map(|m| format!("{m:?}")))
        .collect()
}

/// Two tenants: Ada's workspace (ada owner, bob admin, carol member, dave viewer, erin owner)
/// and Mallory's (mallory owner, mick admin).
struct Tenants {
    ada: TestUser,
    bob: TestUser,
    carol: TestUser,
    dave: TestUser,
    erin: TestUser,
    mallory: TestUser,
    mick: TestUser,
    w: Uuid,
    m: Uuid,
}

async fn tenants(app: &TestApp) -> Tenants {
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let dave = app.user("dave@example.com").await;
    let erin = app.user("erin@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let mick = app.user("mick@example.com").await;
    let w = app.workspace(&ada, "Ada's").await;
    app.join(w, &bob, "admin").await;
    app.join(w, &carol, "member").await;
    app.join(w, &dave, "viewer").await;
    app.join(w, &erin, "owner").await;
    let m = app.workspace(&mallory, "Mallory's").await;
    app.join(m, &mick, "admin").await;
    Tenants {
        ada,
        bob,
        carol,
        dave,
        erin,
        mallory,
        mick,
        w,
        m,
    }
}

/// Every workspace, member and invitation route on workspace `w`, with a body that would
/// succeed for an owner; member and invitation routes target `target`.
fn every_route(w: Uuid, target: Uuid, email: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/workspaces/{w}"), None),
        (
            Method::PATCH,
            format!("/workspaces/{w}"),
            Some(json!({ "name": "pwned" })),
        ),
        (Method::DELETE, format!("/workspaces/{w}"), None),
        (Method::GET, format!("/workspaces/{w}/members"), None),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{target}"),
            Some(json!({ "role": "viewer" })),
        ),
        (
            Method::DELETE,
            format!("/workspaces/{w}/members/{target}"),
            None,
        ),
        (Method::GET, format!("/workspaces/{w}/invitations"), None),
        (
            Method::POST,
            format!("/workspaces/{w}/invitations"),
            Some(json!({ "email": email, "role": "owner" })),
        ),
        (
            Method::DELETE,
            format!("/workspaces/{w}/invitations/{target}"),
            None,
        ),
    ]
}

#[tokio::test]
async fn cross_tenant_every_workspace_and_member_route_is_404_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = tenants(&app).await;
    let before = snapshot(&app).await;
    let nowhere = Uuid::now_v7();

    // Both an owner and an admin of another workspace; member routes aimed at an owner, at a
    // plain member, at themselves (a "leave" of a workspace they are not in) and at nobody.
    for outsider in [&t.mallory, &t.mick] {
        for target in [t.ada.id, t.carol.id, outsider.id, Uuid::now_v7()] {
            for ((method, path, body), (_, ghost_path, _)) in
                every_route(t.w, target, "mick@example.com")
                    .into_iter()
                    .zip(every_route(nowhere, target, "mick@example.com"))
            {
                let res = app
                    .send(method.clone(), &path, Some(outsider), body.clone())
                    .await;
                res.problem(404);
                // Exactly the answer for a workspace that does not exist: no existence oracle.
                let ghost = app
                    .send(method.clone(), &ghost_path, Some(outsider), body)
                    .await;
                ghost.problem(404);
                assert_eq!(
                    without_request_fields(&res.body),
                    without_request_fields(&ghost.body),
                    "{method} {path} by {}",
                    outsider.email
                );
            }
        }
    }
    assert_eq!(snapshot(&app).await, before, "an outsider changed data");

    // Their own workspace's routes do not reach into another tenant either: a member of
    // workspace W addressed through Mallory's workspace is "no such member".
    for (method, body) in [
        (Method::PATCH, Some(json!({ "role": "viewer" }))),
        (Method::DELETE, None),
    ] {
        for target in [t.ada.id, t.bob.id] {
            let res = app
                .send(
                    method.clone(),
                    &format!("/workspaces/{}/members/{target}", t.m),
                    Some(&t.mallory),
                    body.clone(),
                )
                .await;
            res.problem(404);
        }
    }
    let res = app
        .get(&format!("/workspaces/{}/members", t.m), &t.mallory)
        .await;
    let listed: BTreeSet<&str> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([
            t.mallory.id.to_string().as_str(),
            t.mick.id.to_string().as_str()
        ])
    );
    // Nor does the list of workspaces.
    let res = app.get("/workspaces?limit=100", &t.mallory).await;
    let ids: Vec<&str> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [t.m.to_string()]);
    assert_eq!(snapshot(&app).await, before, "an outsider changed data");
}

#[tokio::test]
async fn viewer_and_member_get_403_on_every_admin_action_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let t = tenants(&app).await;
    let before = snapshot(&app).await;
    for (low, other) in [(&t.dave, &t.carol), (&t.carol, &t.dave)] {
        // They can read...
        for path in [
            format!("/workspaces/{}", t.w),
            format!("/workspaces/{}/members", t.w),
        ] {
            assert_eq!(app.get(&path, low).await.status, StatusCode::OK, "{path}");
        }
        // ...but every admin action, on every kind of target, is 403.
        for target in [t.ada.id, t.bob.id, other.id] {
            for (method, path, body) in every_route(t.w, target, "mick@example.com") {
                if method == Method::GET {
                    continue;
                }
                for body in [
                    body.clone(),
                    // A role they could never grant, and a modest one: both refused.
                    body.map(|mut b| {
                        if b.get("role").is_some() {
                            b["role"] = json!("viewer");
                        }
                        b
                    }),
                ] {
                    let res = app.send(method.clone(), &path, Some(low), body).await;
                    res.problem(403);
                }
            }
        }
        // Promoting themselves is an admin action too.
        let res = app
            .patch(
                &format!("/workspaces/{}/members/{}", t.w, low.id),
                low,
                json!({ "role": "owner" }),
            )
            .await;
        res.problem(403);
        let res = app
            .patch(
                &format!("/workspaces/{}/members/{}", t.w, low.id),
                low,
                json!({ "role": "admin" }),
            )
            .await;
        res.problem(403);
    }
    assert_eq!(snapshot(&app).await, before, "a low role changed data");
}

#[tokio::test]
async fn admin_gets_403_on_owner_only_actions_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let t = tenants(&app).await;
    let before = snapshot(&app).await;
    let w = t.w;
    let cases = [
        (Method::DELETE, format!("/workspaces/{w}"), None),
        (
            Method::POST,
            format!("/workspaces/{w}/invitations"),
            Some(json!({ "email": "mick@example.com", "role": "owner" })),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", t.bob.id),
            Some(json!({ "role": "owner" })),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", t.carol.id),
            Some(json!({ "role": "owner" })),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", t.ada.id),
            Some(json!({ "role": "viewer" })),
        ),
        (
            Method::DELETE,
            format!("/workspaces/{w}/members/{}", t.erin.id),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let res = app.send(method.clone(), &path, Some(&t.bob), body).await;
        res.problem(403);
    }
    assert_eq!(snapshot(&app).await, before, "an admin did an owner's job");
}

#[tokio::test]
async fn ids_in_the_body_never_override_the_path() {
    let app = TestApp::spawn().await;
    let t = tenants(&app).await;
    let zoe = app.user("zoe@example.com").await;
    let (w, m) = (t.w, t.m);
    let smuggled = json!({
        "workspace_id": w, "user_id": t.ada.id, "id": w,
        "created_by": t.ada.id, "workspaceId": w, "userId": t.ada.id,
    });
    let with = |base: Value| {
        let mut b = smuggled.clone();
        b.as_object_mut()
            .unwrap()
            .extend(base.as_object().unwrap().clone());
        b
    };

    // Mallory invites zoe to HER workspace, naming Ada's in the body, and zoe accepts, naming
    // Ada's too: zoe lands in Mallory's only.
    let res = app
        .post(
            &format!("/workspaces/{m}/invitations"),
            &t.mallory,
            with(json!({ "email": "zoe@example.com", "role": "owner" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["workspace_id"], m.to_string());
    let invitation = res.body["id"].as_str().unwrap().to_owned();
    let res = app
        .post(
            &format!("/invitations/{invitation}/accept"),
            &zoe,
            with(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["id"], m.to_string());
    assert_eq!(app.role_in_db(m, &zoe).await.as_deref(), Some("owner"));
    assert_eq!(app.role_in_db(w, &zoe).await, None);

    // Mallory changes zoe's role in her workspace, naming Ada (and Ada's workspace) in the
    // body: zoe changes, Ada does not.
    let res = app
        .patch(
            &format!("/workspaces/{m}/members/{}", zoe.id),
            &t.mallory,
            with(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["user_id"], zoe.id.to_string());
    assert_eq!(app.role_in_db(m, &zoe).await.as_deref(), Some("viewer"));
    assert_eq!(app.role_in_db(w, &t.ada).await.as_deref(), Some("owner"));

    // Renaming her workspace with Ada's id in the body renames hers.
    let res = app
        .patch(
            &format!("/workspaces/{m}"),
            &t.mallory,
            with(json!({ "name": "Renamed" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["id"], m.to_string());
    let names: BTreeMap<Uuid, String> = sqlx::query_as("SELECT id, name FROM workspaces")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(names[&w], "Ada's");
    assert_eq!(names[&m], "Renamed");

    // Creating a workspace with an existing id, a creator and a role in the body: a fresh id,
    // created by the caller, who is its owner.
    let res = app
        .post(
            "/workspaces",
            &t.mallory,
            with(json!({ "name": "Fresh", "role": "viewer" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_ne!(res.body["id"], w.to_string());
    assert_eq!(res.body["created_by"], t.mallory.id.to_string());
    assert_eq!(res.body["role"], "owner");

    // Removing zoe from Mallory's workspace: Ada's memberships untouched.
    let before_w: Vec<_> = snapshot(&app)
        .await
        .into_iter()
        .filter(|row| row.contains(&w.to_string()))
        .collect();
    let res = app
        .send(
            Method::DELETE,
            &format!("/workspaces/{m}/members/{}", zoe.id),
            Some(&t.mallory),
            Some(smuggled.clone()),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_eq!(app.role_in_db(m, &zoe).await, None);

    // A low-privileged member of W smuggling a privileged role twice in one body, or an outsider
    // doing the same: refused, nothing changes.
    let dup = r#"{"role":"viewer","role":"owner"}"#;
    let res = read(
        app.client
            .patch(format!(
                "{}/workspaces/{w}/members/{}",
                app.base, t.carol.id
            ))
            .bearer_auth(&t.carol.token)
            .header("content-type", "application/json")
            .body(dup)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert_eq!(app.role_in_db(w, &t.carol).await.as_deref(), Some("member"));
    let after_w: Vec<_> = snapshot(&app)
        .await
        .into_iter()
        .filter(|row| row.contains(&w.to_string()))
        .collect();
    assert_eq!(after_w, before_w, "Ada's workspace changed");
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// A deterministic pseudo-random sequence (no dependency on `rand` for a fixed scenario).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.next(i + 1));
        }
    }
}

/// A workspace with 5 owners, 5 admins, 5 members and 5 viewers; returns them in that order.
async fn crowded(app: &TestApp, round: usize) -> (Uuid, Vec<(TestUser, &'static str)>) {
    let first = app.user(&format!("owner0.{round}@example.com")).await;
    let w = app.workspace(&first, "Crowded").await;
    let mut people = vec![(first, "owner")];
    for (role, n) in [("owner", 4), ("admin", 5), ("member", 5), ("viewer", 5)] {
        for i in 0..n {
            let u = app
                .user(&format!("{role}{}.{round}@example.com", i + 1))
                .await;
            app.join(w, &u, role).await;
            people.push((u, role));
        }
    }
    (w, people)
}

async fn members_in_db(app: &TestApp, w: Uuid) -> BTreeMap<Uuid, String> {
    sqlx::query_as::<_, (Uuid, String)>(
        "SELECT user_id, role::text FROM workspace_members WHERE workspace_id = $1",
    )
    .bind(w)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn assert_no_5xx(results: &[(String, TestResponse)], allowed: &[u16]) {
    for (what, res) in results {
        assert!(
            !res.status.is_server_error(),
            "{what}: {} {}",
            res.status,
            res.body
        );
        assert!(
            allowed.contains(&res.status.as_u16()),
            "{what}: unexpected {} {}",
            res.status,
            res.body
        );
        if res.status.is_client_error() {
            res.problem(res.status.as_u16());
        }
    }
}

#[tokio::test]
async fn fifty_parallel_role_changes_keep_the_rows_and_an_owner_and_no_5xx() {
    let app = &TestApp::spawn().await;
    for round in 0..3 {
        let (w, people) = crowded(app, round).await;
        let initial = members_in_db(app, w).await;
        let mut rng = Lcg(round as u64 + 1);
        let roles = ["owner", "admin", "member", "viewer"];
        let mut plan = Vec::new();
        // Every owner demotes themselves to admin (they can keep acting) and every admin to
        // member; the rest are owners and admins changing each other (two in three) or anyone
        // to random roles. Shuffled, so the races differ from round to round.
        for (u, role) in people.iter().take(10) {
            plan.push((
                u.clone(),
                u.id,
                if *role == "owner" { "admin" } else { "member" },
            ));
        }
        while plan.len() < 50 {
            let actor = &people[rng.next(10)].0;
            let target = if rng.next(3) < 2 {
                people[rng.next(10)].0.id
            } else {
                people[rng.next(people.len())].0.id
            };
            plan.push((actor.clone(), target, roles[rng.next(4)]));
        }
        rng.shuffle(&mut plan);
        let requests = plan.iter().map(|(actor, target, role)| async move {
            let res = app
                .patch(
                    &format!("/workspaces/{w}/members/{target}"),
                    actor,
                    json!({ "role": role }),
                )
                .await;
            (format!("{} sets {target} to {role}", actor.email), res)
        });
        let results = futures_util::future::join_all(requests).await;
        assert_no_5xx(&results, &[200, 403, 409]);

        let after = members_in_db(app, w).await;
        // The same people, nobody added or lost.
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            initial.keys().collect::<Vec<_>>(),
            "round {round}"
        );
        assert!(
            app.owner_count(w).await >= 1,
            "round {round}: no owner left"
        );
        // Each member's final role is the one a successful request set (the last to commit
        // wins), or the initial one if no request on them succeeded.
        for (user, role) in &after {
            let set: BTreeSet<&str> = plan
                .iter()
                .zip(&results)
                .filter(|((_, t, _), (_, res))| t == user && res.status == StatusCode::OK)
                .map(|((_, _, r), _)| *r)
                .collect();
            if set.is_empty() {
                assert_eq!(
                    role, &initial[user],
                    "round {round}: {user} changed silently"
                );
            } else {
                assert!(
                    set.contains(role.as_str()),
                    "round {round}: {user} is {role}, set {set:?}"
                );
            }
        }
        // 200 answers carry the role asked for.
        for ((_, _, role), (_, res)) in plan.iter().zip(&results) {
            if res.status == StatusCode::OK {
                assert_eq!(res.body["role"], *role);
            }
        }
    }
}

#[tokio::test]
async fn fifty_parallel_member_removals_keep_exactly_the_expected_rows_and_one_owner() {
    let app = &TestApp::spawn().await;
    for round in 0..3 {
        let (w, people) = crowded(app, round).await;
        let initial = members_in_db(app, w).await;
        let mut rng = Lcg(round as u64 + 100);
        let mut plan = Vec::new();
        // Every owner and admin tries to leave; owners and admins remove each other and the
        // others; some members and viewers leave.
        for (u, _) in people.iter().take(10) {
            plan.push((u.clone(), u.id));
        }
        for (u, _) in people.iter().skip(15).take(3) {
            plan.push((u.clone(), u.id));
        }
        while plan.len() < 50 {
            let actor = &people[rng.next(10)].0;
            let target = people[rng.next(people.len())].0.id;
            plan.push((actor.clone(), target));
        }
        rng.shuffle(&mut plan);
        let requests = plan.iter().map(|(actor, target)| async move {
            let res = app
                .delete(&format!("/workspaces/{w}/members/{target}"), actor)
                .await;
            (format!("{} removes {target}", actor.email), res)
        });
        let results = futures_util::future::join_all(requests).await;
        assert_no_5xx(&results, &[204, 403, 404, 409]);

        // Exactly the rows expected: the initial ones minus each target of a 204, and a target
        // is removed at most once.
        let removed: Vec<Uuid> = plan
            .iter()
            .zip(&results)
            .filter(|(_, (_, res))| res.status == StatusCode::NO_CONTENT)
            .map(|((_, t), _)| *t)
            .collect();
        let unique: BTreeSet<Uuid> = removed.iter().copied().collect();
        assert_eq!(unique.len(), removed.len(), "round {round}: removed twice");
        let mut expected = initial.clone();
        for t in &removed {
            expected.remove(t);
        }
        assert_eq!(members_in_db(app, w).await, expected, "round {round}");
        // Every owner tried to leave and owners only ever decrease here, so exactly one is left,
        // and its own attempt to leave was the 409 of the last owner.
        assert_eq!(app.owner_count(w).await, 1, "round {round}");
        assert!(
            results
                .iter()
                .any(|(_, r)| r.status == StatusCode::CONFLICT),
            "round {round}: the last owner's leaving was not refused"
        );
    }
}

#[tokio::test]
async fn fifty_parallel_mixed_role_changes_and_removals_keep_an_owner_and_no_5xx() {
    let app = &TestApp::spawn().await;
    for round in 0..3 {
        let (w, people) = crowded(app, round).await;
        let initial = members_in_db(app, w).await;
        let mut rng = Lcg(round as u64 + 1000);
        let roles = ["owner", "admin", "member", "viewer"];
        let requests = (0..50).map(|i| {
            let actor = people[rng.next(10)].0.clone();
            let target = if i % 5 == 0 {
                actor.id
            } else {
                people[rng.next(people.len())].0.id
            };
            let role = roles[rng.next(4)];
            async move {
                let path = format!("/workspaces/{w}/members/{target}");
                if i % 2 == 0 {
                    let res = app.patch(&path, &actor, json!({ "role": role })).await;
                    (
                        format!("{} sets {target} to {role}", actor.email),
                        target,
                        res,
                    )
                } else {
                    let res = app.delete(&path, &actor).await;
                    (format!("{} removes {target}", actor.email), target, res)
                }
            }
        });
        let results: Vec<_> = futures_util::future::join_all(requests).await;
        let removed: BTreeSet<Uuid> = results
            .iter()
            .filter(|(_, _, r)| r.status == StatusCode::NO_CONTENT)
            .map(|(_, t, _)| *t)
            .collect();
        let results: Vec<(String, TestResponse)> =
            results.into_iter().map(|(w, _, r)| (w, r)).collect();
        assert_no_5xx(&results, &[200, 204, 403, 404, 409]);
        let after = members_in_db(app, w).await;
        let expected: BTreeSet<&Uuid> = initial.keys().filter(|u| !removed.contains(u)).collect();
        assert_eq!(
            after.keys().collect::<BTreeSet<_>>(),
            expected,
            "round {round}"
        );
        assert!(
            app.owner_count(w).await >= 1,
            "round {round}: no owner left"
        );
    }
}
