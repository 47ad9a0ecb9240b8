//! Sign-in with a real OpenID Provider (the certified `oidc-provider`, run by the tests on
//! Node.js): the whole flow, the linking rules, RP-initiated and back-channel logout.

use serde_json::Value;
use test_support::oidc_provider::{AccountConfig, ClientConfig, OidcProvider, ProviderConfig};

use crate::helpers::{Browser, ORIGIN, TestApp, location_of, provider_error_url};

pub const CLIENT_ID: &str = "gateway";
pub const CLIENT_SECRET: &str = "a client secret for the test provider";

fn account(id: &str, email: &str, verified: bool) -> AccountConfig {
    AccountConfig {
        id: id.to_owned(),
        email: email.to_owned(),
        email_verified: verified,
        name: format!("Person {id}"),
    }
}

/// A provider that knows the gateway as a client (its back-channel logout URI at `gateway`,
/// when given) and the people `accounts`.
pub async fn provider(
    port: Option<u16>,
    backchannel: Option<&str>,
    accounts: Vec<AccountConfig>,
) -> OidcProvider {
    OidcProvider::start(ProviderConfig {
        clients: vec![ClientConfig {
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            redirect_uris: vec![format!("{ORIGIN}/api/auth/callback/oidc")],
            post_logout_redirect_uris: vec![format!("{ORIGIN}/")],
            backchannel_logout_uri: backchannel
                .map(|address| format!("{address}/api/auth/backchannel-logout/oidc")),
        }],
        accounts,
        port,
    })
    .await
}

/// A gateway whose `oidc` provider is at `issuer`, with `extra` settings.
pub async fn gateway(issuer: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("OIDC_ISSUER", issuer),
        ("OIDC_CLIENT_ID", CLIENT_ID),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_NAME", "Test IdP"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with_auth(&vars).await
}

/// Signs `browser` in through the provider as `account`; the gateway's final redirect.
async fn sign_in(browser: &Browser, idp: &OidcProvider, account: &str) -> reqwest::Response {
    let url = browser.authorization_url("oidc", &[]).await;
    let back = idp.browser().authorize(&url, account).await;
    browser.follow(&back).await
}

#[tokio::test]
async fn a_new_person_signs_in_through_the_provider_and_gets_a_user_and_a_session() {
    let idp = provider(None, None, vec![account("ada", "ada@example.com", true)]).await;
    let app = gateway(idp.issuer(), &[]).await;
    let providers: Value = app
        .browser()
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers["oidc"],
        serde_json::json!({
            "id": "oidc", "name": "Test IdP", "type": "oauth",
            "signinUrl": format!("{ORIGIN}/api/auth/signin/oidc"),
            "callbackUrl": format!("{ORIGIN}/api/auth/callback/oidc"),
        })
    );
    let browser = app.browser();
    let res = sign_in(&browser, &idp, "ada").await;
    assert_eq!(res.status(), 302);
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    let session = browser.session().await;
    assert_eq!(session["user"]["email"], "ada@example.com");
    assert_eq!(session["user"]["name"], "Person ada");
    let (hash, subject): (Option<String>, String) = sqlx::query_as(
        "SELECT u.password_hash, a.subject FROM users u JOIN accounts a ON a.user_id = u.id
         WHERE a.provider = 'oidc'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((hash, subject.as_str()), (None, "ada"));
    // The proxied API sees this user.
    let res = browser.get("/api/workspaces").await;
    assert_eq!(res.status(), 200);
}

/// A provider with `accounts` and a gateway for it with `extra` settings.
async fn setup(accounts: Vec<AccountConfig>, extra: &[(&str, &str)]) -> (OidcProvider, TestApp) {
    let idp = provider(None, None, accounts).await;
    let app = gateway(idp.issuer(), extra).await;
    (idp, app)
}

#[tokio::test]
async fn the_same_subject_signs_in_again_as_the_same_user() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let first = app.browser();
    assert_eq!(sign_in(&first, &idp, "ada").await.status(), 302);
    let second = app.browser();
    assert_eq!(sign_in(&second, &idp, "ada").await.status(), 302);
    assert_eq!(
        first.session().await["user"]["id"],
        second.session().await["user"]["id"]
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 2);
}

#[tokio::test]
async fn an_untrusted_provider_never_takes_over_an_existing_account_even_with_a_verified_email() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let (owner, _) = app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let res = sign_in(&browser, &idp, "ada").await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthAccountNotLinked", "oidc")
    );
    assert_eq!(browser.session().await, serde_json::json!({}));
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 0);
    assert!(app.password_hash("ada@example.com").await.is_some());
    assert_eq!(owner.session().await["user"]["email"], "ada@example.com");
}

#[tokio::test]
async fn a_trusted_provider_with_an_unverified_email_does_not_link_either() {
    let (idp, app) = setup(
        vec![account("ada", "ada@example.com", false)],
        &[("OIDC_TRUST_EMAIL", "true")],
    )
    .await;
    app.signed_in("ada@example.com").await;
    let res = sign_in(&app.browser(), &idp, "ada").await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthAccountNotLinked", "oidc")
    );
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 0);
}

#[tokio::test]
async fn a_trusted_verified_email_links_the_account_removes_its_password_and_ends_its_sessions() {
    let (idp, app) = setup(
        vec![account("ada", "Ada@Example.com", true)],
        &[("OIDC_TRUST_EMAIL", "true")],
    )
    .await;
    // Whoever registered the address first (perhaps not its owner) is signed in...
    let (squatter, id) = app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let res = sign_in(&browser, &idp, "ada").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    // ...and is signed out, and their password no longer works.
    assert_eq!(squatter.session().await, serde_json::json!({}));
    assert_eq!(app.password_hash("ada@example.com").await, None);
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(res.status(), 401);
    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["hasPassword"], false);
    assert_eq!(accounts["items"][0]["provider"], "oidc");
    assert_eq!(accounts["items"][0]["email"], "Ada@Example.com");
}

#[tokio::test]
async fn a_user_without_a_password_is_refused_by_credentials_exactly_like_a_wrong_password() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    sign_in(&app.browser(), &idp, "ada").await;
    let wrong = app
        .browser()
        .sign_in_like_next_auth("nobody@example.com", "x")
        .await;
    let (status, body) = (wrong.status(), wrong.text().await.unwrap());
    let passwordless = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", "x")
        .await;
    assert_eq!(passwordless.status(), status);
    assert_eq!(passwordless.text().await.unwrap(), body);
}

#[tokio::test]
async fn a_provider_user_sets_a_first_password_from_a_fresh_session_and_may_then_unlink() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let browser = app.browser();
    sign_in(&browser, &idp, "ada").await;
    // The only way to sign in cannot go.
    let res = browser
        .send(browser.request(reqwest::Method::DELETE, "/api/auth/accounts/oidc"))
        .await;
    assert_eq!(res.status(), 409);
    let res = browser
        .post_json(
            "/api/auth/password",
            &serde_json::json!({"newPassword": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = browser
        .send(browser.request(reqwest::Method::DELETE, "/api/auth/accounts/oidc"))
        .await;
    assert_eq!(res.status(), 204);
    let res = browser
        .send(browser.request(reqwest::Method::DELETE, "/api/auth/accounts/oidc"))
        .await;
    assert_eq!(res.status(), 404);
    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        accounts,
        serde_json::json!({"items": [], "hasPassword": true})
    );
    // The provider is not trusted with emails: the password signs in once the address is
    // proven (a verification link; here straight in the table).
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", "a brand new password")
        .await;
    assert_eq!(res.status(), 403, "not before the address is verified");
    app.verify(app.user_id("ada@example.com").await).await;
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", "a brand new password")
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn setting_a_first_password_needs_a_sign_in_under_ten_minutes_old() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let browser = app.browser();
    sign_in(&browser, &idp, "ada").await;
    app.age_sign_in(11 * 60).await;
    let res = browser
        .post_json(
            "/api/auth/password",
            &serde_json::json!({"newPassword": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.password_hash("ada@example.com").await, None);
}

#[tokio::test]
async fn a_signed_in_user_links_a_provider_explicitly_and_the_session_key_is_renewed() {
    let (idp, app) = setup(vec![account("work", "ada@work.example", false)], &[]).await;
    let (browser, id) = app.signed_in("ada@example.com").await;
    let before = browser.cookie("session").unwrap();
    let url = browser.authorization_url("oidc", &[("link", "true")]).await;
    let back = idp.browser().authorize(&url, "work").await;
    let res = browser.follow(&back).await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_ne!(browser.cookie("session").unwrap(), before);
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    let owner: uuid::Uuid = sqlx::query_scalar(
        "SELECT user_id FROM accounts WHERE provider = 'oidc' AND subject = 'work'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(owner, id);
    // From now on the provider signs this user in, whatever its email says.
    let other = app.browser();
    sign_in(&other, &idp, "work").await;
    assert_eq!(other.session().await["user"]["id"], id.to_string());
}

#[tokio::test]
async fn linking_needs_a_fresh_sign_in_and_the_same_session_at_the_callback() {
    let (idp, app) = setup(vec![account("work", "ada@work.example", true)], &[]).await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    app.age_sign_in(11 * 60).await;
    let res = browser.start_sign_in("oidc", &[("link", "true")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    // Fresh again, but the session that asked is gone by the callback: nothing is linked.
    let (browser, _) = app.signed_in("bob@example.com").await;
    let url = browser.authorization_url("oidc", &[("link", "true")]).await;
    let back = idp.browser().authorize(&url, "work").await;
    browser.sign_out().await;
    let res = browser.follow(&back).await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthCallback", "oidc")
    );
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 0);
}

#[tokio::test]
async fn a_subject_linked_to_someone_else_cannot_be_linked_again() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    sign_in(&app.browser(), &idp, "ada").await;
    let (bob, bob_id) = app.signed_in("bob@example.com").await;
    let url = bob.authorization_url("oidc", &[("link", "true")]).await;
    let back = idp.browser().authorize(&url, "ada").await;
    let res = bob.follow(&back).await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthAccountNotLinked", "oidc")
    );
    assert_eq!(bob.session().await["user"]["id"], bob_id.to_string());
    assert_eq!(
        app.count("SELECT count(*) FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.email = 'ada@example.com'").await,
        1
    );
}

#[tokio::test]
async fn without_link_a_provider_sign_in_in_a_signed_in_browser_starts_a_new_session_as_the_provider_user()
 {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let (browser, bob) = app.signed_in("bob@example.com").await;
    sign_in(&browser, &idp, "ada").await;
    let session = browser.session().await;
    assert_eq!(session["user"]["email"], "ada@example.com");
    let linked_to_bob = app
        .count(&format!(
            "SELECT count(*) FROM accounts WHERE user_id = '{bob}'"
        ))
        .await;
    assert_eq!(linked_to_bob, 0);
}

#[tokio::test]
async fn a_callback_is_single_use_and_belongs_to_the_browser_that_started_it() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    // Another browser (login CSRF: an attacker's own code and state handed to a victim).
    let attacker = app.browser();
    let url = attacker.authorization_url("oidc", &[]).await;
    let back = idp.browser().authorize(&url, "ada").await;
    let victim = app.browser();
    let res = victim.follow(&back).await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthCallback", "oidc")
    );
    assert_eq!(victim.session().await, serde_json::json!({}));
    // The flow was used up by that attempt: not even its own browser can finish it now.
    let res = attacker.follow(&back).await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthCallback", "oidc")
    );

    // A callback that worked cannot be replayed.
    let browser = app.browser();
    let url = browser.authorization_url("oidc", &[]).await;
    let back = idp.browser().authorize(&url, "ada").await;
    assert_eq!(
        location_of(&browser.follow(&back).await),
        format!("{ORIGIN}/workspaces")
    );
    let replay = app.browser();
    replay.set_cookie("auth-flow", &browser.cookie("auth-flow").unwrap());
    assert_eq!(
        location_of(&replay.follow(&back).await),
        provider_error_url("OAuthCallback", "oidc")
    );
    assert_eq!(replay.session().await, serde_json::json!({}));
    // No state at all.
    let res = app.browser().get("/api/auth/callback/oidc?code=x").await;
    assert_eq!(
        location_of(&res),
        provider_error_url("OAuthCallback", "oidc")
    );
}

#[tokio::test]
async fn a_refusal_at_the_provider_is_access_denied_and_signs_nobody_in() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let browser = app.browser();
    let url = browser.authorization_url("oidc", &[]).await;
    let back = idp.browser().deny(&url).await;
    let res = browser.follow(&back).await;
    assert_eq!(
        location_of(&res),
        provider_error_url("AccessDenied", "oidc")
    );
    assert_eq!(browser.session().await, serde_json::json!({}));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn the_upstream_token_of_a_provider_user_names_the_user_like_a_credentials_users() {
    let idp = provider(None, None, vec![account("ada", "ada@example.com", true)]).await;
    let echo = crate::upstream::spawn();
    let app = TestApp::spawn_with_auth_before(
        crate::helpers::Upstream::Url(echo),
        &[
            ("OIDC_ISSUER", idp.issuer()),
            ("OIDC_CLIENT_ID", CLIENT_ID),
            ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    )
    .await;
    let browser = app.browser();
    sign_in(&browser, &idp, "ada").await;
    let id = browser.session().await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let echo: Value = browser.get("/api/me").await.json().await.unwrap();
    let token = echo["headers"]["authorization"][0]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let claims = auth_contract::Verifier::new(
        &auth_contract::Secret::new(crate::helpers::API_SECRET).unwrap(),
        &[],
    )
    .verify(&token)
    .unwrap();
    let expected: uuid::Uuid = id;
    assert_eq!(claims.sub, expected);
    assert_eq!(claims.email, "ada@example.com");
}

#[tokio::test]
async fn signing_out_of_a_provider_session_with_end_session_leaves_the_provider_too() {
    let (idp, app) = setup(
        vec![account("ada", "ada@example.com", true)],
        &[("OIDC_END_SESSION", "true")],
    )
    .await;
    let browser = app.browser();
    let person = idp.browser();
    let url = browser.authorization_url("oidc", &[]).await;
    browser.follow(&person.authorize(&url, "ada").await).await;
    let res = browser.sign_out().await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let logout = body["url"].as_str().unwrap();
    let parsed = reqwest::Url::parse(logout).unwrap();
    assert!(logout.starts_with(idp.issuer()), "{logout}");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["post_logout_redirect_uri"], format!("{ORIGIN}/"));
    assert_eq!(query["client_id"], CLIENT_ID);
    assert!(query.contains_key("id_token_hint"));
    assert_eq!(browser.session().await, serde_json::json!({}));
    let back = person.end_session(logout).await;
    assert!(back.starts_with(&format!("{ORIGIN}/")), "{back}");
    // The provider's session is over: the next sign-in shows its login page again.
    let url = browser.authorization_url("oidc", &[]).await;
    let again = person.authorize(&url, "ada").await;
    assert_eq!(
        location_of(&browser.follow(&again).await),
        format!("{ORIGIN}/workspaces")
    );

    // A credentials session signs out as before.
    let (plain, _) = app.signed_in("bob@example.com").await;
    let body: Value = plain.sign_out().await.json().await.unwrap();
    assert_eq!(body["url"], format!("{ORIGIN}/"));
}

#[tokio::test]
async fn a_back_channel_logout_from_the_provider_ends_that_provider_session_on_every_instance() {
    let port = test_support::hostile::reserve_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = gateway(&issuer, &[]).await;
    let idp = provider(
        Some(port),
        Some(&app.address),
        vec![account("ada", "ada@example.com", true)],
    )
    .await;
    let other_instance = app.second_instance().await;
    // Two gateway sessions in one provider session (one `sid`), and one in another.
    let person = idp.browser();
    let (first, second, elsewhere) = (app.browser(), app.browser(), app.browser());
    for browser in [&first, &second] {
        let url = browser.authorization_url("oidc", &[]).await;
        browser.follow(&person.authorize(&url, "ada").await).await;
    }
    let url = elsewhere.authorization_url("oidc", &[]).await;
    elsewhere
        .follow(&idp.browser().authorize(&url, "ada").await)
        .await;
    let first_there = first.at(&other_instance);
    assert_eq!(first_there.get("/api/workspaces").await.status(), 200);
    assert_eq!(
        app.count("SELECT count(DISTINCT provider_sid) FROM sessions")
            .await,
        2
    );

    // The person signs out at the provider, which tells the gateway from its server.
    person
        .end_session(&format!("{}/session/end", idp.issuer()))
        .await;
    assert!(idp.log().contains("backchannel"), "{}", idp.log());
    assert_eq!(first.session().await, serde_json::json!({}));
    assert_eq!(second.session().await, serde_json::json!({}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while first_there.get("/api/workspaces").await.status() != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "still served on the other instance"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        elsewhere.session().await["user"]["email"],
        "ada@example.com"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM logout_tokens_used").await,
        1
    );
}

#[tokio::test]
async fn provider_sign_ins_count_against_the_clients_attempts() {
    let idp = provider(None, None, vec![]).await;
    let app = TestApp::spawn_with(crate::helpers::Upstream::Backend, |s| {
        s.auth = frontend_gateway::identity::provider_config::auth(
            &vec![
                ("OIDC_ISSUER".to_owned(), idp.issuer().to_owned()),
                ("OIDC_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
                ("OIDC_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
            ],
            web_common::env::AppEnv::Development,
        )
        .unwrap();
        s.sign_in.limits.ip_attempts = 3;
    })
    .await;
    let browser = app.browser();
    for _ in 0..3 {
        assert_eq!(browser.start_sign_in("oidc", &[]).await.status(), 200);
    }
    let res = browser.start_sign_in("oidc", &[]).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(app.count("SELECT count(*) FROM sign_in_flows").await, 3);
}

#[tokio::test]
async fn an_automatic_link_also_removes_the_users_other_provider_links() {
    let (idp, app) = setup(
        vec![account("ada", "ada@example.com", true)],
        &[("OIDC_TRUST_EMAIL", "true")],
    )
    .await;
    let (_, id) = app.signed_in("ada@example.com").await;
    // Whoever registered the address first had linked a provider identity of their own.
    sqlx::query("INSERT INTO accounts (provider, subject, user_id) VALUES ('github', '666', $1)")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let res = sign_in(&app.browser(), &idp, "ada").await;
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    let links: Vec<(String, String)> =
        sqlx::query_as("SELECT provider, subject FROM accounts WHERE user_id = $1")
            .bind(id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(links, [("oidc".to_owned(), "ada".to_owned())]);
}

#[tokio::test]
async fn allowed_email_domains_restrict_registration_too() {
    let (_idp, app) = setup(vec![], &[("AUTH_ALLOWED_EMAIL_DOMAINS", "corp.example")]).await;
    let res = app
        .browser()
        .register("ada@elsewhere.example", crate::helpers::PASSWORD, "Ada")
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    let res = app
        .browser()
        .register("ada@Corp.Example", crate::helpers::PASSWORD, "Ada")
        .await;
    assert_eq!(res.status(), 202);
    app.user_id("ada@corp.example").await;
}

#[tokio::test]
async fn a_cross_site_page_can_neither_start_a_provider_sign_in_nor_unlink() {
    let (idp, app) = setup(vec![account("ada", "ada@example.com", true)], &[]).await;
    let browser = app.browser();
    sign_in(&browser, &idp, "ada").await;
    browser
        .post_json(
            "/api/auth/password",
            &serde_json::json!({"newPassword": "a brand new password"}),
        )
        .await;
    let token = browser.csrf_token().await;
    let res = browser
        .send(
            browser
                .bare(reqwest::Method::POST, "/api/auth/signin/oidc")
                .header("origin", "https://evil.example")
                .form(&[
                    ("csrfToken", token.as_str()),
                    ("json", "true"),
                    ("link", "true"),
                ]),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = browser
        .send(
            browser
                .bare(reqwest::Method::DELETE, "/api/auth/accounts/oidc")
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(res.status(), 403);
    // The sign-in's own flow was used up; the refused start wrote none.
    assert_eq!(app.count("SELECT count(*) FROM sign_in_flows").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
}
