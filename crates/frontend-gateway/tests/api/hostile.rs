//! Sign-in against a deliberately misbehaving OpenID provider (`test_support::hostile`): every
//! way its ID tokens, its callbacks or the provider itself can be wrong is refused with the
//! right next-auth error code and signs nobody in; a provider down at start-up, slow, or asking
//! for `client_secret_post`; the linking rules and policies; back-channel logout tokens.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use test_support::hostile::{
    ClientAuth, DEFAULT_SUB, Hostile, HostileConfig, OTHER_CLIENT, Recorded, SigningAlg, Twist,
    WRONG_ISSUER, reserve_port,
};

use crate::helpers::{
    Browser, ORIGIN, PASSWORD, TestApp, location_of, provider_error_url, provider_redirect,
    query_param,
};

const CLIENT_ID: &str = "gateway-at-hostile";
const CLIENT_SECRET: &str = "the gateway's secret at the hostile provider";
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn config() -> HostileConfig {
    HostileConfig::new(CLIENT_ID, CLIENT_SECRET)
}

async fn idp() -> Hostile {
    Hostile::start(config()).await
}

/// A gateway whose `oidc` provider is at `issuer` (with this file's client), plus `extra`.
async fn gateway(issuer: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("OIDC_ISSUER", issuer),
        ("OIDC_CLIENT_ID", CLIENT_ID),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_NAME", "Hostile"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with_auth(&vars).await
}

/// One `AUTH_PROVIDERS` entry of type oidc at `issuer` with this file's client, plus `extra`.
fn entry(id: &str, issuer: &str, extra: Value) -> Value {
    let mut entry = json!({
        "id": id, "type": "oidc", "name": id, "issuer": issuer,
        "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
    });
    for (k, v) in extra.as_object().unwrap() {
        entry[k] = v.clone();
    }
    entry
}

/// ID-token claims complete enough that the gateway reads no user info.
fn person(sub: &str, email: &str, verified: bool, name: &str) -> Value {
    json!({"sub": sub, "email": email, "email_verified": verified, "name": name})
}

/// `base` with each member of `over` set (a `null` is kept: the provider then drops the claim).
fn with(base: &Value, over: &Value) -> Value {
    let mut merged = base.clone();
    for (k, v) in over.as_object().unwrap() {
        merged[k] = v.clone();
    }
    merged
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn error_url(code: &str) -> String {
    provider_error_url(code, "oidc")
}

/// Signs `browser` in through provider `id` (which approves at once); the gateway's answer to
/// the callback.
async fn sign_in(browser: &Browser, id: &str) -> reqwest::Response {
    sign_in_with(browser, id, &[]).await
}

async fn sign_in_with(browser: &Browser, id: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let url = browser.authorization_url(id, extra).await;
    assert!(!url.starts_with(ORIGIN), "the sign-in did not start: {url}");
    let back = provider_redirect(&url).await;
    browser.follow(&back).await
}

/// Asserts that `res` sent `browser` to the error page with `code` and signed nobody in.
async fn assert_refused(
    browser: &Browser,
    res: reqwest::Response,
    code: &str,
    id: &str,
    case: &str,
) {
    assert_eq!(res.status(), 302, "{case}");
    assert_eq!(location_of(&res), provider_error_url(code, id), "{case}");
    assert_eq!(
        browser.session().await,
        json!({}),
        "{case}: nobody signed in"
    );
}

async fn rows(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM users").await,
        app.count("SELECT count(*) FROM accounts").await,
        app.count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
            .await,
    )
}

fn requests_to(idp: &Hostile, path: &str) -> Vec<Recorded> {
    idp.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

#[tokio::test]
async fn an_honest_sign_in_creates_a_passwordless_user_using_pkce_a_nonce_and_basic_auth() {
    for alg in [SigningAlg::EdDsa, SigningAlg::Es256] {
        let idp = Hostile::start(HostileConfig { alg, ..config() }).await;
        idp.set_claims(
            person("ada-sub", "ada@example.com", true, "Ada Lovelace"),
            json!({}),
        );
        let app = gateway(&idp.issuer(), &[]).await;
        let browser = app.browser();
        let url = browser.authorization_url("oidc", &[]).await;
        assert!(
            url.starts_with(&format!("{}/authorize?", idp.issuer())),
            "{url}"
        );
        let param = |name| query_param(&url, name);
        let redirect_uri = format!("{ORIGIN}/api/auth/callback/oidc");
        assert_eq!(param("response_type").as_deref(), Some("code"));
        assert_eq!(param("client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(param("redirect_uri"), Some(redirect_uri.clone()));
        assert_eq!(param("scope").as_deref(), Some("openid email profile"));
        assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
        assert!(param("state").is_some() && param("nonce").is_some());
        let res = browser.follow(&provider_redirect(&url).await).await;
        assert_eq!(res.status(), 302, "{alg:?}");
        assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"), "{alg:?}");
        let session = browser.session().await;
        assert_eq!(session["user"]["email"], "ada@example.com");
        assert_eq!(session["user"]["name"], "Ada Lovelace");
        let row: (Option<String>, String, String, String, uuid::Uuid) = sqlx::query_as(
            "SELECT u.password_hash, a.provider, a.subject, a.email, u.id
             FROM users u JOIN accounts a ON a.user_id = u.id",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(
            (row.0, row.1.as_str(), row.2.as_str(), row.3.as_str()),
            (None, "oidc", "ada-sub", "ada@example.com")
        );
        assert_eq!(session["user"]["id"], row.4.to_string());

        let tokens = requests_to(&idp, "/token");
        assert_eq!(tokens.len(), 1);
        let token = &tokens[0];
        assert_eq!(token.client_auth(), ClientAuth::ClientSecretBasic);
        assert_eq!(
            token.basic_credentials(),
            Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
        );
        assert_eq!(token.form_field("client_secret"), None);
        assert_eq!(token.form_field("grant_type"), Some("authorization_code"));
        assert_eq!(
            token.form_field("redirect_uri"),
            Some(redirect_uri.as_str())
        );
        let verifier = token.form_field("code_verifier").expect("a PKCE verifier");
        assert_eq!(Some(s256(verifier)), param("code_challenge"));
        assert!(
            requests_to(&idp, "/userinfo").is_empty(),
            "the ID token had every claim"
        );
        // The proxied API knows this user.
        assert_eq!(browser.get("/api/workspaces").await.status(), 200);
    }
}

#[tokio::test]
async fn claims_missing_from_the_id_token_are_read_from_userinfo_whose_sub_must_match() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    idp.set_claims(
        json!({"sub": "grace-sub"}),
        json!({"email": "grace@example.com", "email_verified": true, "name": "Grace Hopper"}),
    );
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["name"], "Grace Hopper");
    assert_eq!(
        browser.session().await["user"]["email"],
        "grace@example.com"
    );
    let userinfo = requests_to(&idp, "/userinfo");
    assert_eq!(userinfo.len(), 1);
    assert!(
        userinfo[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{:?}",
        userinfo[0].authorization
    );

    // User info about someone else is refused.
    idp.set_claims(
        json!({"sub": "mallory-sub"}),
        json!({"email": "mallory@example.com", "email_verified": true, "name": "Mallory"}),
    );
    idp.twist(Twist::UserinfoOtherSub);
    let other = app.browser();
    let res = sign_in(&other, "oidc").await;
    assert_refused(
        &other,
        res,
        "OAuthCallback",
        "oidc",
        "userinfo about another sub",
    )
    .await;
    assert_eq!(requests_to(&idp, "/userinfo").len(), 2, "the twist was hit");
    assert_eq!(rows(&app).await, (1, 1, 1));

    // User info only fills in: what the (signed) ID token says wins.
    idp.set_claims(
        json!({"sub": "heidi-sub", "email": "heidi@example.com", "email_verified": false}),
        json!({"email": "grace@example.com", "email_verified": true, "name": "Heidi"}),
    );
    let heidi = app.browser();
    let res = sign_in(&heidi, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(heidi.session().await["user"]["email"], "heidi@example.com");
    assert_eq!(heidi.session().await["user"]["name"], "Heidi");
    assert_ne!(
        heidi.session().await["user"]["id"],
        browser.session().await["user"]["id"]
    );
}

#[tokio::test]
async fn every_bad_id_token_or_token_answer_is_oauth_callback_and_signs_nobody_in() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let issuer = idp.issuer();
    let eve = person(DEFAULT_SUB, "eve@example.com", true, "Eve");
    let t = now();
    let cases: Vec<(&str, Twist, Value)> = vec![
        ("bad signature", Twist::BadSignature, json!({})),
        ("unpublished key", Twist::UnpublishedKey, json!({})),
        ("expired", Twist::Expired, json!({})),
        ("issued in the future", Twist::IssuedInFuture, json!({})),
        ("wrong audience", Twist::WrongAudience, json!({})),
        ("wrong nonce", Twist::WrongNonce, json!({})),
        ("missing nonce", Twist::MissingNonce, json!({})),
        ("wrong issuer", Twist::WrongIssuer, json!({})),
        ("azp of another client", Twist::AzpMismatch, json!({})),
        ("alg none", Twist::NoneAlg, json!({})),
        (
            "a critical header extension",
            Twist::CriticalHeader,
            json!({}),
        ),
        ("token endpoint error", Twist::TokenError, json!({})),
        (
            "user info about another sub",
            Twist::UserinfoOtherSub,
            json!({"name": null}),
        ),
        (
            "iss parameter of another issuer",
            Twist::AuthorizationIss("https://attacker.invalid".into()),
            json!({}),
        ),
        (
            "iss parameter of the wrong issuer",
            Twist::AuthorizationIss(WRONG_ISSUER.into()),
            json!({}),
        ),
        ("nbf in the future", Twist::Honest, json!({"nbf": t + 600})),
        (
            "iat older than 600 s",
            Twist::Honest,
            json!({"iat": t - 700}),
        ),
        (
            "iat 90 s ahead",
            Twist::Honest,
            json!({"iat": t + 90, "exp": t + 400}),
        ),
        (
            "several audiences without azp",
            Twist::Honest,
            json!({"aud": [CLIENT_ID, OTHER_CLIENT]}),
        ),
        (
            "azp of another client, one aud",
            Twist::Honest,
            json!({"azp": OTHER_CLIENT}),
        ),
        ("no aud", Twist::Honest, json!({"aud": null})),
        ("no exp", Twist::Honest, json!({"exp": null})),
        ("no iat", Twist::Honest, json!({"iat": null})),
        ("no sub", Twist::Honest, json!({"sub": null})),
        ("empty sub", Twist::Honest, json!({"sub": ""})),
        (
            "iss with a trailing slash",
            Twist::Honest,
            json!({"iss": format!("{issuer}/")}),
        ),
        (
            "iat not a number",
            Twist::Honest,
            json!({"iat": "yesterday"}),
        ),
    ];
    for (case, twist, claims) in cases {
        idp.set_claims(with(&eve, &claims), json!({}));
        idp.twist(twist);
        let browser = app.browser();
        let res = sign_in(&browser, "oidc").await;
        assert_refused(&browser, res, "OAuthCallback", "oidc", case).await;
        assert_eq!(rows(&app).await, (0, 0, 0), "{case}: no rows");
    }

    // The same gateway and provider, honest (and with an iss parameter that is right): it works.
    idp.set_claims(eve, json!({}));
    idp.twist(Twist::AuthorizationIss(issuer));
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(rows(&app).await, (1, 1, 1));
}

#[tokio::test]
async fn a_callback_needs_a_live_state_of_this_browser_and_this_provider() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let providers = json!([entry("other", &idp.issuer(), json!({}))]).to_string();
    let app = gateway(&idp.issuer(), &[("AUTH_PROVIDERS", &providers)]).await;

    let browser = app.browser();
    let res = browser.get("/api/auth/callback/oidc?code=whatever").await;
    assert_refused(&browser, res, "OAuthCallback", "oidc", "no state").await;

    let res = browser
        .get("/api/auth/callback/oidc?code=whatever&state=made-up")
        .await;
    assert_refused(&browser, res, "OAuthCallback", "oidc", "unknown state").await;

    // An attacker's own code and state, handed to a victim (login CSRF).
    let attacker = app.browser();
    let back = provider_redirect(&attacker.authorization_url("oidc", &[]).await).await;
    let victim = app.browser();
    let res = victim.follow(&back).await;
    assert_refused(
        &victim,
        res,
        "OAuthCallback",
        "oidc",
        "another browser's state",
    )
    .await;
    let res = attacker.follow(&back).await;
    assert_refused(
        &attacker,
        res,
        "OAuthCallback",
        "oidc",
        "a state tried once",
    )
    .await;

    // A flow cookie that is not the one the flow was started with.
    let tampered = app.browser();
    let back = provider_redirect(&tampered.authorization_url("oidc", &[]).await).await;
    tampered.set_cookie("auth-flow", &"A".repeat(43));
    let res = tampered.follow(&back).await;
    assert_refused(
        &tampered,
        res,
        "OAuthCallback",
        "oidc",
        "another auth-flow cookie",
    )
    .await;

    // A flow of one provider brought to another provider's callback.
    let crossed = app.browser();
    let back = provider_redirect(&crossed.authorization_url("oidc", &[]).await).await;
    let path = back.replace("/api/auth/callback/oidc?", "/api/auth/callback/other?");
    let res = crossed.follow(&path).await;
    assert_refused(
        &crossed,
        res,
        "OAuthCallback",
        "other",
        "another provider's flow",
    )
    .await;
    assert_eq!(rows(&app).await, (0, 0, 0));

    // A callback that worked cannot be replayed, not even with the same flow cookie.
    let browser = app.browser();
    let back = provider_redirect(&browser.authorization_url("oidc", &[]).await).await;
    assert_eq!(
        location_of(&browser.follow(&back).await),
        format!("{ORIGIN}/workspaces")
    );
    let replay = app.browser();
    replay.set_cookie("auth-flow", &browser.cookie("auth-flow").unwrap());
    let res = replay.follow(&back).await;
    assert_refused(&replay, res, "OAuthCallback", "oidc", "a used state").await;
    assert_eq!(rows(&app).await, (1, 1, 1));
}

#[tokio::test]
async fn an_error_from_the_provider_is_access_denied_only_for_access_denied() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let cases = [
        ("access_denied", "AccessDenied"),
        ("server_error", "OAuthCallback"),
        ("invalid_scope", "OAuthCallback"),
    ];
    for (error, code) in cases {
        let browser = app.browser();
        let url = browser.authorization_url("oidc", &[]).await;
        let state = query_param(&url, "state").unwrap();
        let res = browser
            .get(&format!(
                "/api/auth/callback/oidc?error={error}&error_description=no&state={state}"
            ))
            .await;
        assert_refused(&browser, res, code, "oidc", error).await;
    }
    // An error for a flow that does not exist is a bad state first.
    let browser = app.browser();
    let res = browser
        .get("/api/auth/callback/oidc?error=access_denied&state=made-up")
        .await;
    assert_refused(
        &browser,
        res,
        "OAuthCallback",
        "oidc",
        "error without a flow",
    )
    .await;
    assert!(
        requests_to(&idp, "/token").is_empty(),
        "no code was exchanged"
    );
    assert_eq!(rows(&app).await, (0, 0, 0));
}

#[tokio::test]
async fn when_the_provider_advertises_the_iss_parameter_the_callback_must_carry_its_issuer() {
    let idp = Hostile::start(HostileConfig {
        advertise_iss_parameter: true,
        ..config()
    })
    .await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[]).await;

    // Without iss (stripped on the way), with another one, with a near miss.
    let stripped = app.browser();
    let back = provider_redirect(&stripped.authorization_url("oidc", &[]).await).await;
    assert_eq!(query_param(&back, "iss"), Some(idp.issuer()));
    let mut url = reqwest::Url::parse(&back).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&kept);
    let res = stripped.follow(url.as_str()).await;
    assert_refused(&stripped, res, "OAuthCallback", "oidc", "iss missing").await;

    for iss in [
        "https://attacker.invalid".to_owned(),
        format!("{}/", idp.issuer()),
    ] {
        idp.twist(Twist::AuthorizationIss(iss.clone()));
        let browser = app.browser();
        let res = sign_in(&browser, "oidc").await;
        assert_refused(&browser, res, "OAuthCallback", "oidc", &iss).await;
    }
    assert!(
        requests_to(&idp, "/token").is_empty(),
        "refused before the code was used"
    );
    assert_eq!(rows(&app).await, (0, 0, 0));

    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_and_signs_in_on_a_fresh_gateway() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[]).await;
    // The gateway's discovery (in the background from start-up) reads the JWKS once; under
    // load it may still be running when the sign-in starts, so wait for it.
    for _ in 0..100 {
        if !requests_to(&idp, "/jwks").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    idp.twist(Twist::UnknownKid);
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    let jwks_reads = requests_to(&idp, "/jwks").len();
    assert_eq!(
        location_of(&res),
        format!("{ORIGIN}/workspaces"),
        "a token signed by a key published after the gateway read the JWKS \
         (the JWKS was read {jwks_reads} times)"
    );
    assert_eq!(jwks_reads, 2, "discovery, then one re-read for the new kid");

    // A key that is never published: refused, and the JWKS is not read again so soon.
    idp.twist(Twist::UnpublishedKey);
    let other = app.browser();
    let res = sign_in(&other, "oidc").await;
    assert_refused(&other, res, "OAuthCallback", "oidc", "unpublished key").await;
    assert_eq!(
        requests_to(&idp, "/jwks").len(),
        2,
        "re-reads are rate-limited"
    );

    // The rotated key signs from now on.
    let again = app.browser();
    let res = sign_in(&again, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
}

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_the_only_method_the_provider_lists() {
    let idp = Hostile::start(HostileConfig {
        auth_methods: vec!["client_secret_post".into()],
        ..config()
    })
    .await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[]).await;
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    let tokens = requests_to(&idp, "/token");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].client_auth(), ClientAuth::ClientSecretPost);
    assert_eq!(tokens[0].authorization, None);
    assert_eq!(tokens[0].form_field("client_id"), Some(CLIENT_ID));
    assert_eq!(tokens[0].form_field("client_secret"), Some(CLIENT_SECRET));
}

#[tokio::test]
async fn a_provider_down_at_start_up_is_discovered_once_it_comes_up() {
    let port = reserve_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = gateway(&issuer, &[]).await;
    let browser = app.browser();
    let res = browser.start_sign_in("oidc", &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["url"], error_url("OAuthSignin"));
    assert_eq!(app.count("SELECT count(*) FROM sign_in_flows").await, 0);

    // It comes up; nobody signs in for a while: the background retry finds it by itself.
    let idp = Hostile::start(HostileConfig {
        port: Some(port),
        ..config()
    })
    .await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let deadline = Instant::now() + Duration::from_secs(5);
    while requests_to(&idp, "/.well-known/openid-configuration").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no background discovery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["email"], "ada@example.com");
    assert_eq!(
        requests_to(&idp, "/.well-known/openid-configuration").len(),
        1,
        "discovered once, kept"
    );
}

#[tokio::test]
async fn a_sign_in_discovers_on_demand_a_provider_that_came_up_after_a_failed_start() {
    let port = reserve_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = gateway(&issuer, &[]).await;
    let browser = app.browser();
    let body: Value = browser
        .start_sign_in("oidc", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["url"], error_url("OAuthSignin"));
    // The background discovery tries at start-up, then 1 s, 3 s, 7 s later: the provider comes
    // up between the third and the fourth try, and a sign-in right then discovers it itself.
    tokio::time::sleep(Duration::from_millis(3600)).await;
    let idp = Hostile::start(HostileConfig {
        port: Some(port),
        ..config()
    })
    .await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(
        requests_to(&idp, "/.well-known/openid-configuration").len(),
        1,
        "discovered by the sign-in"
    );
}

#[tokio::test]
async fn with_one_provider_down_the_other_still_signs_in() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let down = format!("http://127.0.0.1:{}", reserve_port());
    let providers = json!([
        entry("down", &down, json!({})),
        entry("up", &idp.issuer(), json!({})),
    ])
    .to_string();
    let app = TestApp::spawn_with_auth(&[("AUTH_PROVIDERS", &providers)]).await;
    let browser = app.browser();
    let body: Value = browser
        .start_sign_in("down", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["url"], provider_error_url("OAuthSignin", "down"));
    let res = sign_in(&browser, "up").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["email"], "ada@example.com");
    let subject: String = sqlx::query_scalar("SELECT subject FROM accounts WHERE provider = 'up'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(subject, "ada-sub");
}

#[tokio::test]
async fn a_token_endpoint_slower_than_the_provider_timeout_is_oauth_callback() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[("AUTH_PROVIDER_TIMEOUT_SECS", "1")]).await;
    let browser = app.browser();
    let back = provider_redirect(&browser.authorization_url("oidc", &[]).await).await;
    idp.twist(Twist::SlowToken(Duration::from_secs(10)));
    let started = Instant::now();
    let res = browser.follow(&back).await;
    let elapsed = started.elapsed();
    assert_refused(
        &browser,
        res,
        "OAuthCallback",
        "oidc",
        "slow token endpoint",
    )
    .await;
    assert!(
        elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );
    assert_eq!(requests_to(&idp, "/token").len(), 1);
    assert_eq!(rows(&app).await, (0, 0, 0));

    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
}

/// A gateway with credentials on and two providers at `idp`: `trusted` (trustEmail) and
/// `untrusted`.
async fn trust_gateway(idp: &Hostile) -> TestApp {
    let providers = json!([
        entry("trusted", &idp.issuer(), json!({"trustEmail": true})),
        entry("untrusted", &idp.issuer(), json!({})),
    ])
    .to_string();
    TestApp::spawn_with_auth(&[("AUTH_PROVIDERS", &providers)]).await
}

#[tokio::test]
async fn an_existing_user_is_linked_only_by_a_verified_email_from_a_trusted_provider() {
    let idp = idp().await;
    let app = trust_gateway(&idp).await;
    let (owner, id) = app.signed_in("ada@example.com").await;
    let cases = [
        (
            "untrusted",
            json!({"email_verified": true}),
            "untrusted, verified",
        ),
        (
            "trusted",
            json!({"email_verified": false}),
            "trusted, unverified",
        ),
        (
            "trusted",
            json!({"email_verified": "no"}),
            "trusted, verified not true",
        ),
        (
            "trusted",
            json!({"email_verified": null}),
            "trusted, not said",
        ),
    ];
    for (i, (provider, claims, case)) in cases.into_iter().enumerate() {
        let base = person(&format!("sub-{i}"), "ada@example.com", true, "Ada");
        idp.set_claims(with(&base, &claims), json!({}));
        let browser = app.browser();
        let res = sign_in(&browser, provider).await;
        assert_refused(&browser, res, "OAuthAccountNotLinked", provider, case).await;
        assert_eq!(
            app.count("SELECT count(*) FROM accounts").await,
            0,
            "{case}"
        );
        assert!(
            app.password_hash("ada@example.com").await.is_some(),
            "{case}"
        );
        assert_eq!(
            owner.session().await["user"]["id"],
            id.to_string(),
            "{case}"
        );
    }

    // A second session of the owner, by password.
    let elsewhere = app.browser();
    assert_eq!(
        elsewhere
            .sign_in_like_next_auth("ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let other_instance = app.second_instance().await;
    let elsewhere_there = elsewhere.at(&other_instance);
    assert_eq!(elsewhere_there.get("/api/workspaces").await.status(), 200);
    idp.set_claims(
        person("ada-sub", "ADA@example.com", true, "Ada L."),
        json!({}),
    );
    let browser = app.browser();
    let res = sign_in(&browser, "trusted").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    assert_eq!(
        owner.session().await,
        json!({}),
        "the registering session ended"
    );
    assert_eq!(
        elsewhere.session().await,
        json!({}),
        "every other session ended"
    );
    let deadline = Instant::now() + Duration::from_millis(1500);
    while elsewhere_there.get("/api/workspaces").await.status() != 401 {
        assert!(
            Instant::now() < deadline,
            "still served on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.password_hash("ada@example.com").await, None);
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 401, "the password no longer signs in");
    let linked: (uuid::Uuid, String, String) =
        sqlx::query_as("SELECT user_id, provider, subject FROM accounts")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(linked, (id, "trusted".to_owned(), "ada-sub".to_owned()));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn emails_outside_the_allowed_domains_or_missing_are_access_denied() {
    let idp = idp().await;
    let providers = json!([entry(
        "corp",
        &idp.issuer(),
        json!({"allowedDomains": ["Corp.Example"]})
    )])
    .to_string();
    let app = gateway(
        &idp.issuer(),
        &[
            ("AUTH_PROVIDERS", &providers),
            ("AUTH_ALLOWED_EMAIL_DOMAINS", "example.com, corp.example"),
        ],
    )
    .await;
    let cases = [
        ("oidc", Some("eve@evil.example"), "another domain"),
        (
            "oidc",
            Some("eve@example.com.evil.example"),
            "a suffix of it",
        ),
        ("oidc", Some("eve@sub.example.com"), "a subdomain"),
        ("oidc", Some("eve@evilexample.com"), "a lookalike"),
        (
            "corp",
            Some("ada@example.com"),
            "allowed globally, not by the provider",
        ),
        ("corp", Some("eve@evil.example"), "allowed by neither"),
        ("oidc", None, "no email"),
        ("oidc", Some("not an email"), "not an email"),
    ];
    for (i, (provider, email, case)) in cases.into_iter().enumerate() {
        let mut claims = json!({"sub": format!("sub-{i}"), "email_verified": true, "name": "Eve"});
        claims["email"] = email.map_or(Value::Null, |e| json!(e));
        idp.set_claims(claims, json!({}));
        let browser = app.browser();
        let res = sign_in(&browser, provider).await;
        assert_refused(&browser, res, "AccessDenied", provider, case).await;
        assert_eq!(rows(&app).await, (0, 0, 0), "{case}");
    }
    for (provider, email) in [("corp", "bob@CORP.example"), ("oidc", "ada@Example.COM")] {
        idp.set_claims(
            person(&format!("{provider}-ok"), email, true, "Ok"),
            json!({}),
        );
        let browser = app.browser();
        let res = sign_in(&browser, provider).await;
        assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"), "{email}");
    }
    assert_eq!(rows(&app).await, (2, 2, 2));
}

#[tokio::test]
async fn with_sign_up_off_an_unknown_email_is_access_denied_but_a_linked_subject_signs_in() {
    let idp = idp().await;
    let providers = json!([entry(
        "closed",
        &idp.issuer(),
        json!({"allowSignUp": false})
    )])
    .to_string();
    let app = TestApp::spawn_with_auth(&[("AUTH_PROVIDERS", &providers)]).await;
    idp.set_claims(
        person("carol-sub", "carol@example.com", true, "Carol"),
        json!({}),
    );
    let stranger = app.browser();
    let res = sign_in(&stranger, "closed").await;
    assert_refused(&stranger, res, "AccessDenied", "closed", "sign-up off").await;
    assert_eq!(rows(&app).await, (0, 0, 0));

    // Carol registers, links the provider explicitly, and can then sign in through it.
    let (carol, id) = app.signed_in("carol@example.com").await;
    let res = sign_in_with(&carol, "closed", &[("link", "true")]).await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    idp.set_claims(
        person("carol-sub", "carol@elsewhere.example", false, "C"),
        json!({}),
    );
    let browser = app.browser();
    let res = sign_in(&browser, "closed").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_subject_linked_to_someone_else_is_not_linked_explicitly() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let ada = app.browser();
    assert_eq!(
        location_of(&sign_in(&ada, "oidc").await),
        format!("{ORIGIN}/workspaces")
    );
    let (bob, bob_id) = app.signed_in("bob@example.com").await;
    let res = sign_in_with(&bob, "oidc", &[("link", "true")]).await;
    assert_eq!(location_of(&res), error_url("OAuthAccountNotLinked"));
    assert_eq!(bob.session().await["user"]["id"], bob_id.to_string());
    let owner: String = sqlx::query_scalar(
        "SELECT u.email FROM accounts a JOIN users u ON u.id = a.user_id WHERE a.subject = 'ada-sub'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(owner, "ada@example.com");
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
}

#[tokio::test]
async fn names_from_the_provider_are_cleaned_and_default_to_the_emails_local_part() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let long = "é".repeat(150);
    let cases: Vec<(Option<&str>, String)> = vec![
        (
            Some("  Ada \u{202E}Love\u{200B}lace\u{0}\t\n Byron "),
            "Ada Lovelace Byron".to_owned(),
        ),
        (Some(long.as_str()), "é".repeat(100)),
        (Some("\u{200B}\u{202E}\u{0} "), "person2".to_owned()),
        (None, "person3".to_owned()),
        (Some("Bell\u{7}\u{1b}[31mRed"), "Bell[31mRed".to_owned()),
    ];
    for (i, (name, expected)) in cases.into_iter().enumerate() {
        let email = format!("person{i}@example.com");
        let mut claims = json!({"sub": format!("sub-{i}"), "email": email, "email_verified": true});
        claims["name"] = name.map_or(Value::Null, |n| json!(n));
        idp.set_claims(claims, json!({}));
        let browser = app.browser();
        let res = sign_in(&browser, "oidc").await;
        assert_eq!(
            location_of(&res),
            format!("{ORIGIN}/workspaces"),
            "{name:?}"
        );
        assert_eq!(
            browser.session().await["user"]["name"],
            expected,
            "{name:?}"
        );
        let stored: String = sqlx::query_scalar("SELECT name FROM users WHERE email = $1")
            .bind(&email)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        assert_eq!(stored, expected, "{name:?}");
    }
}

#[tokio::test]
async fn with_credentials_off_only_providers_sign_in_and_the_last_one_cannot_be_unlinked() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[("AUTH_CREDENTIALS", "false")]).await;
    let providers: Value = app
        .browser()
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .unwrap();
    assert!(providers.get("credentials").is_none(), "{providers}");
    assert_eq!(providers["oidc"]["type"], "oauth");

    let anonymous = app.browser();
    let res = anonymous.register("ada@example.com", PASSWORD, "Ada").await;
    assert_problem(res, 404, "register").await;
    let res = anonymous
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(res, 404, "JSON sign-in").await;
    let res = anonymous
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_problem(res, 404, "credentials callback").await;
    assert_eq!(rows(&app).await, (0, 0, 0));

    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let browser = app.browser();
    assert_eq!(
        location_of(&sign_in(&browser, "oidc").await),
        format!("{ORIGIN}/workspaces")
    );
    let res = browser
        .post_json(
            "/api/auth/password",
            &json!({"newPassword": "a brand new password"}),
        )
        .await;
    assert_problem(res, 404, "password").await;
    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["hasPassword"], false);
    assert_eq!(accounts["items"][0]["provider"], "oidc");
    let res = browser
        .send(browser.request(reqwest::Method::DELETE, "/api/auth/accounts/oidc"))
        .await;
    assert_problem(res, 409, "unlinking the only provider").await;

    // A password left from when credentials were on is no way to sign in now.
    sqlx::query(
        "UPDATE users SET password_hash = '$argon2id$v=19$m=19456,t=2,p=1$left-over$from-before'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["hasPassword"], true);
    let res = browser
        .send(browser.request(reqwest::Method::DELETE, "/api/auth/accounts/oidc"))
        .await;
    assert_problem(res, 409, "unlinking with only an unusable password").await;
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
}

async fn assert_problem(res: reqwest::Response, status: u16, case: &str) {
    assert_eq!(res.status(), status, "{case}");
    assert_eq!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "{case}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status, "{case}: {body}");
}

#[tokio::test]
async fn linked_providers_are_listed_and_unlinked_while_another_way_to_sign_in_remains() {
    let idp = idp().await;
    let providers = json!([entry("second", &idp.issuer(), json!({}))]).to_string();
    let app = gateway(&idp.issuer(), &[("AUTH_PROVIDERS", &providers)]).await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let browser = app.browser();
    sign_in(&browser, "oidc").await;
    idp.set_claims(
        person("ada-work", "ada@work.example", false, "Ada"),
        json!({}),
    );
    let res = sign_in_with(&browser, "second", &[("link", "true")]).await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));

    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["hasPassword"], false);
    let items = accounts["items"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["provider"].as_str().unwrap(),
                i["email"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("oidc", "ada@example.com"), ("second", "ada@work.example")]
    );
    for item in items {
        for field in ["createdAt", "lastSignInAt"] {
            let at = item[field].as_str().unwrap();
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{field} {at}: {e}"));
        }
    }

    let delete = |provider: &str| {
        browser.send(browser.request(
            reqwest::Method::DELETE,
            &format!("/api/auth/accounts/{provider}"),
        ))
    };
    assert_eq!(delete("second").await.status(), 204);
    assert_problem(delete("second").await, 404, "no longer linked").await;
    assert_problem(delete("github").await, 404, "never linked").await;
    assert_problem(delete("oidc").await, 409, "the last way to sign in").await;
    // A link to a provider that is no longer configured is no way to sign in either.
    sqlx::query(
        "INSERT INTO accounts (provider, subject, user_id, email)
         SELECT 'gone', 'ada-gone', user_id, email FROM accounts WHERE provider = 'oidc'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_problem(
        delete("oidc").await,
        409,
        "the other link is to no configured provider",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM accounts WHERE provider = 'oidc'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 2);
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout.
// ---------------------------------------------------------------------------------------------

/// Honest logout-token claims for `idp` naming `sub`, with `jti`.
fn logout_claims(idp: &Hostile, sub: &str, jti: &str) -> Value {
    json!({
        "iss": idp.issuer(), "aud": CLIENT_ID, "iat": now(), "exp": now() + 120, "jti": jti,
        "sub": sub, "events": {LOGOUT_EVENT: {}},
    })
}

/// Posts `token` to the gateway at `address` from a provider's server: no cookies unless
/// `browser` lends its jar, and cross-site headers.
async fn post_logout(address: &str, browser: Option<&Browser>, token: &str) -> reqwest::Response {
    let path = "/api/auth/backchannel-logout/oidc";
    let request = match browser {
        Some(browser) => browser.bare(reqwest::Method::POST, path),
        None => reqwest::Client::new().post(format!("{address}{path}")),
    };
    request
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

async fn sign_in_as(app: &TestApp, idp: &Hostile, sub: &str, sid: Option<&str>) -> Browser {
    let mut claims = person(sub, &format!("{sub}@example.com"), true, sub);
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    idp.set_claims(claims, json!({}));
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"), "{sub}");
    browser
}

async fn signed_out(browser: &Browser) -> bool {
    browser.session().await == json!({})
}

#[tokio::test]
async fn a_back_channel_logout_ends_every_session_of_that_sub_on_every_instance() {
    let idp = idp().await;
    let providers = json!([entry("second", &idp.issuer(), json!({}))]).to_string();
    let app = gateway(&idp.issuer(), &[("AUTH_PROVIDERS", &providers)]).await;
    let other_instance = app.second_instance().await;
    let first = sign_in_as(&app, &idp, "alice", None).await;
    let second = sign_in_as(&app, &idp, "alice", None).await;
    let bob = sign_in_as(&app, &idp, "bob", None).await;
    // The same sub through another provider of the gateway (at the same issuer, even).
    idp.set_claims(
        person("alice", "alice@second.example", true, "Alice"),
        json!({}),
    );
    let through_second = app.browser();
    let res = sign_in(&through_second, "second").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    let first_there = first.at(&other_instance);
    assert_eq!(first_there.get("/api/workspaces").await.status(), 200);
    assert_eq!(
        app.count(
            "SELECT count(DISTINCT provider_sid) FROM sessions
             WHERE provider = 'oidc' AND provider_subject = 'alice'"
        )
        .await,
        2,
        "each sign-in keeps its own provider session id"
    );

    // Posted cross-site, carrying bob's cookies: they are ignored.
    let token = idp.sign(Some("logout+jwt"), logout_claims(&idp, "alice", "jti-1"));
    let res = post_logout(&app.address, Some(&bob), &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(signed_out(&first).await);
    assert!(signed_out(&second).await);
    assert_eq!(first.get("/api/workspaces").await.status(), 401);
    assert_eq!(second.get("/api/workspaces").await.status(), 401);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while first_there.get("/api/workspaces").await.status() != 401 {
        assert!(
            Instant::now() < deadline,
            "still served on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed_out(&first_there).await);
    assert_eq!(bob.session().await["user"]["email"], "bob@example.com");
    assert_eq!(bob.get("/api/workspaces").await.status(), 200);
    assert_eq!(
        through_second.session().await["user"]["email"],
        "alice@second.example",
        "another provider's session of the same sub stays"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM sessions WHERE provider = 'oidc' AND provider_subject = 'alice'"
        )
        .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM logout_tokens_used").await,
        1
    );
}

#[tokio::test]
async fn a_logout_token_with_only_a_sid_ends_only_that_provider_session() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let one = sign_in_as(&app, &idp, "alice", Some("sid-one")).await;
    let two = sign_in_as(&app, &idp, "alice", Some("sid-two")).await;
    let mut claims = logout_claims(&idp, "unused", "jti-sid");
    claims.as_object_mut().unwrap().remove("sub");
    claims["sid"] = json!("sid-one");
    let res = post_logout(&app.address, None, &idp.sign(Some("logout+jwt"), claims)).await;
    assert_eq!(res.status(), 200);
    assert!(signed_out(&one).await);
    assert_eq!(two.session().await["user"]["email"], "alice@example.com");
    assert_eq!(two.get("/api/workspaces").await.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE provider_sid = 'sid-two'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_bad_logout_token_is_a_400_and_ends_nothing() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let alice = sign_in_as(&app, &idp, "alice", Some("sid-a")).await;
    let t = now();
    let good = |jti: &str| logout_claims(&idp, "alice", jti);
    let changed = |jti: &str, over: Value| {
        let mut claims = good(jti);
        for (k, v) in over.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let typ = Some("logout+jwt");
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("logout+jwt".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &good("j-hs256"),
        &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
    )
    .unwrap();
    let signed = idp.sign(typ, good("j-tampered"));
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(changed("j-tampered", json!({"sub": "bob"})).to_string());
    let tampered = parts.join(".");
    let cases: Vec<(&str, String)> = vec![
        (
            "unpublished key",
            idp.sign_with_unpublished_key(good("j-1")),
        ),
        ("HS256 with the client secret", hs256),
        ("claims changed after signing", tampered),
        (
            "wrong iss",
            idp.sign(typ, changed("j-2", json!({"iss": WRONG_ISSUER}))),
        ),
        (
            "wrong aud",
            idp.sign(typ, changed("j-3", json!({"aud": OTHER_CLIENT}))),
        ),
        (
            "no aud",
            idp.sign(typ, changed("j-4", json!({"aud": null}))),
        ),
        (
            "no iat",
            idp.sign(typ, changed("j-5", json!({"iat": null}))),
        ),
        (
            "iat in the future",
            idp.sign(typ, changed("j-6", json!({"iat": t + 600, "exp": t + 900}))),
        ),
        (
            "expired",
            idp.sign(typ, changed("j-7", json!({"iat": t - 900, "exp": t - 600}))),
        ),
        (
            "no exp, iat 300 s ago",
            idp.sign(typ, changed("j-8", json!({"exp": null, "iat": t - 300}))),
        ),
        (
            "no jti",
            idp.sign(typ, changed("j-9", json!({"jti": null}))),
        ),
        (
            "empty jti",
            idp.sign(typ, changed("j-10", json!({"jti": ""}))),
        ),
        (
            "no events",
            idp.sign(typ, changed("j-11", json!({"events": null}))),
        ),
        (
            "the event is not an object",
            idp.sign(
                typ,
                changed("j-12", json!({"events": {LOGOUT_EVENT: true}})),
            ),
        ),
        (
            "another event only",
            idp.sign(typ, changed("j-13", json!({"events": {"urn:other": {}}}))),
        ),
        (
            "events is a list",
            idp.sign(typ, changed("j-14", json!({"events": [LOGOUT_EVENT]}))),
        ),
        (
            "a nonce",
            idp.sign(typ, changed("j-15", json!({"nonce": "n"}))),
        ),
        (
            "neither sub nor sid",
            idp.sign(typ, changed("j-16", json!({"sub": null}))),
        ),
        ("typ JWT", idp.sign(Some("JWT"), good("j-17"))),
        (
            "typ of an ID token",
            idp.sign(Some("id_token+jwt"), good("j-18")),
        ),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (case, token) in &cases {
        let res = post_logout(&app.address, None, token).await;
        assert_eq!(res.status(), 400, "{case}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{case}");
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{case}"
        );
        assert!(
            !signed_out(&alice).await,
            "{case}: alice is still signed in"
        );
    }
    // No form at all.
    let res = reqwest::Client::new()
        .post(format!("{}/api/auth/backchannel-logout/oidc", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A provider that is not an OpenID one.
    let res = reqwest::Client::new()
        .post(format!("{}/api/auth/backchannel-logout/nope", app.address))
        .form(&[("logout_token", idp.sign(typ, good("j-nope")))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(!signed_out(&alice).await);
    assert_eq!(
        app.count("SELECT count(*) FROM logout_tokens_used").await,
        0
    );

    // The control: the same claims, honest, end the session (typ absent is accepted too).
    let res = post_logout(&app.address, None, &idp.sign(None, good("j-ok"))).await;
    assert_eq!(res.status(), 200);
    assert!(signed_out(&alice).await);
}

#[tokio::test]
async fn a_logout_token_is_used_once_on_every_instance_and_may_lack_exp_when_recent() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let other_instance = app.second_instance().await;
    let alice = sign_in_as(&app, &idp, "alice", None).await;
    let mut claims = logout_claims(&idp, "alice", "jti-once");
    claims.as_object_mut().unwrap().remove("exp");
    claims["iat"] = json!(now() - 30);
    let token = idp.sign(Some("logout+jwt"), claims);
    let res = post_logout(&app.address, None, &token).await;
    assert_eq!(res.status(), 200, "a recent token without exp");
    assert!(signed_out(&alice).await);

    // Replayed here and at the other instance, even for a sub that signed in again meanwhile.
    let again = sign_in_as(&app, &idp, "alice", None).await;
    let res = post_logout(&app.address, None, &token).await;
    assert_eq!(res.status(), 400, "replayed at the same instance");
    let res = post_logout(&other_instance, None, &token).await;
    assert_eq!(res.status(), 400, "replayed at another instance");
    assert_eq!(again.session().await["user"]["email"], "alice@example.com");
    assert_eq!(
        again
            .at(&other_instance)
            .get("/api/workspaces")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.count("SELECT count(*) FROM logout_tokens_used").await,
        1
    );
}

#[tokio::test]
async fn starting_a_sign_in_needs_the_csrf_token_and_keeps_the_callback_url_on_the_origin() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[]).await;
    let browser = app.browser();
    browser.csrf_token().await;
    for token in ["", "forged"] {
        let res = browser
            .post_form(
                "/api/auth/signin/oidc",
                &[
                    ("csrfToken", token),
                    ("callbackUrl", "/workspaces"),
                    ("json", "true"),
                ],
            )
            .await;
        assert_eq!(res.status(), 403, "{token:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["url"], format!("{ORIGIN}/api/auth/signin?csrf=true"));
    }
    assert_eq!(app.count("SELECT count(*) FROM sign_in_flows").await, 0);
    assert!(requests_to(&idp, "/authorize").is_empty());

    let cases = [
        ("https://evil.example/x", format!("{ORIGIN}/")),
        ("//evil.example/x", format!("{ORIGIN}/")),
        ("/\\evil.example/x", format!("{ORIGIN}/")),
        ("http://gateway.test.evil.example/x", format!("{ORIGIN}/")),
        ("http://gateway.test@evil.example/x", format!("{ORIGIN}/")),
        (
            "/account?tab=providers",
            format!("{ORIGIN}/account?tab=providers"),
        ),
        ("http://gateway.test/w/1", format!("{ORIGIN}/w/1")),
    ];
    for (callback_url, expected) in cases {
        let browser = app.browser();
        let token = browser.csrf_token().await;
        let res = browser
            .post_form(
                "/api/auth/signin/oidc",
                &[
                    ("csrfToken", &token),
                    ("callbackUrl", callback_url),
                    ("json", "true"),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "{callback_url}");
        let body: Value = res.json().await.unwrap();
        let back = provider_redirect(body["url"].as_str().unwrap()).await;
        let res = browser.follow(&back).await;
        assert_eq!(location_of(&res), expected, "{callback_url}");
        assert_eq!(browser.session().await["user"]["email"], "ada@example.com");
    }
}

#[tokio::test]
async fn an_internal_failure_during_the_callback_is_callback_and_signs_nobody_in() {
    let idp = idp().await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let app = gateway(&idp.issuer(), &[]).await;
    // The database refuses new users (as a full disk or a broken migration would).
    for sql in [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER refuse_users BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse()",
    ] {
        sqlx::query(sql).execute(&app.db.pool).await.unwrap();
    }
    let browser = app.browser();
    let res = sign_in(&browser, "oidc").await;
    assert_refused(&browser, res, "Callback", "oidc", "the database failed").await;
    assert_eq!(rows(&app).await, (0, 0, 0));

    sqlx::query("DROP TRIGGER refuse_users ON users")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let res = sign_in(&browser, "oidc").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
}

#[tokio::test]
async fn a_session_ended_by_back_channel_logout_is_not_revived_by_its_next_request_elsewhere() {
    let idp = idp().await;
    let app = gateway(&idp.issuer(), &[]).await;
    let other_instance = app.second_instance().await;
    let alice = sign_in_as(&app, &idp, "alice", None).await;
    let alice_there = alice.at(&other_instance);
    // The other instance holds alice's session in its cache (for up to 500 ms)...
    assert_eq!(alice_there.get("/api/workspaces").await.status(), 200);
    let token = idp.sign(
        Some("logout+jwt"),
        logout_claims(&idp, "alice", "jti-revive"),
    );
    assert_eq!(post_logout(&app.address, None, &token).await.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
            .await,
        0
    );
    // ...and alice's browser asks it for something that writes the session (starting a link).
    let res = alice_there.start_sign_in("oidc", &[("link", "true")]).await;
    let status = res.status();
    // Once the cache has let go, the session must be over, there and here.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let rows_back = app
        .count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
        .await;
    let there = alice_there.session().await;
    let here = alice_there.at(&app.address).session().await;
    assert!(
        rows_back == 0 && there == json!({}) && here == json!({}),
        "after the logout and a link start ({status}): {rows_back} session rows, \
         the session at the other instance {there}, at the first {here}"
    );
}

#[tokio::test]
async fn discovery_that_hangs_or_names_another_issuer_is_oauth_signin() {
    let idp = idp().await;
    // Accepts connections (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let port = idp.port();
    let providers = json!([
        entry("hangs", &silent, json!({})),
        entry("mixup", &format!("http://localhost:{port}"), json!({})),
        entry("slash", &format!("{}/", idp.issuer()), json!({})),
        entry("fine", &idp.issuer(), json!({})),
    ])
    .to_string();
    let app = TestApp::spawn_with_auth(&[
        ("AUTH_PROVIDERS", &providers),
        ("AUTH_PROVIDER_TIMEOUT_SECS", "1"),
    ])
    .await;
    idp.set_claims(person("ada-sub", "ada@example.com", true, "Ada"), json!({}));
    let browser = app.browser();
    for id in ["hangs", "mixup", "slash"] {
        let started = Instant::now();
        let res = browser.start_sign_in(id, &[]).await;
        let elapsed = started.elapsed();
        assert_eq!(res.status(), 200, "{id}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["url"], provider_error_url("OAuthSignin", id), "{id}");
        assert!(
            elapsed < Duration::from_secs(3),
            "{id}: answered after {elapsed:?}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM sign_in_flows").await, 0);
    assert!(
        requests_to(&idp, "/authorize").is_empty(),
        "nobody was sent to a provider that is not the configured issuer"
    );
    let res = sign_in(&browser, "fine").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
}
