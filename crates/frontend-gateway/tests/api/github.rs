//! Sign-in with GitHub against a stand-in that answers in GitHub's documented shapes
//! (`test_support::github`): the whole flow, the subject (GitHub's numeric id), the email (the
//! primary verified one), names, refusals, and GitHub Enterprise Server from `AUTH_PROVIDERS`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use test_support::github::{GitHub, GitHubEmail, GitHubUser, Recorded};

use crate::helpers::{
    Browser, ORIGIN, TestApp, location_of, provider_error_url, provider_redirect, query_param,
};

const CLIENT_ID: &str = "Iv1.gateway-test";
const CLIENT_SECRET: &str = "the gateway's GitHub client secret";

async fn setup() -> (GitHub, TestApp) {
    let gh = GitHub::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = TestApp::spawn_with_auth(&[
        ("GITHUB_CLIENT_ID", CLIENT_ID),
        ("GITHUB_CLIENT_SECRET", CLIENT_SECRET),
        ("GITHUB_URL", &gh.url()),
        ("GITHUB_API_URL", &gh.api_url()),
    ])
    .await;
    (gh, app)
}

fn user(id: u64, login: &str, name: Option<&str>) -> GitHubUser {
    GitHubUser {
        id,
        login: login.to_owned(),
        name: name.map(str::to_owned),
    }
}

fn email(address: &str, primary: bool, verified: bool) -> GitHubEmail {
    GitHubEmail {
        email: address.to_owned(),
        primary,
        verified,
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn error_url(code: &str) -> String {
    provider_error_url(code, "github")
}

fn workspaces() -> String {
    format!("{ORIGIN}/workspaces")
}

/// Signs `browser` in through provider `id` at the stand-in; the gateway's answer.
async fn sign_in(browser: &Browser, id: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let url = browser.authorization_url(id, extra).await;
    assert!(!url.starts_with(ORIGIN), "the sign-in did not start: {url}");
    let back = provider_redirect(&url).await;
    browser.follow(&back).await
}

fn requests_to(gh: &GitHub, path: &str) -> Vec<Recorded> {
    gh.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

async fn rows(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM users").await,
        app.count("SELECT count(*) FROM accounts").await,
        app.count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
            .await,
    )
}

async fn assert_refused(browser: &Browser, res: reqwest::Response, code: &str, case: &str) {
    assert_eq!(res.status(), 302, "{case}");
    assert_eq!(location_of(&res), error_url(code), "{case}");
    assert_eq!(
        browser.session().await,
        json!({}),
        "{case}: nobody signed in"
    );
}

#[tokio::test]
async fn a_github_sign_in_creates_a_user_from_the_primary_verified_email() {
    let (gh, app) = setup().await;
    let providers: Value = app
        .browser()
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers["github"],
        json!({
            "id": "github", "name": "GitHub", "type": "oauth",
            "signinUrl": format!("{ORIGIN}/api/auth/signin/github"),
            "callbackUrl": format!("{ORIGIN}/api/auth/callback/github"),
        })
    );
    gh.set_user(
        user(4242, "ada-l", Some("Ada Lovelace")),
        vec![
            email("old@example.com", false, true),
            email("unverified@example.com", false, false),
            email("ada@example.com", true, true),
        ],
    );
    let browser = app.browser();
    let url = browser.authorization_url("github", &[]).await;
    assert!(
        url.starts_with(&format!("{}/login/oauth/authorize?", gh.url())),
        "{url}"
    );
    let redirect_uri = format!("{ORIGIN}/api/auth/callback/github");
    assert_eq!(query_param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_param(&url, "redirect_uri"),
        Some(redirect_uri.clone())
    );
    assert_eq!(
        query_param(&url, "scope").as_deref(),
        Some("read:user user:email")
    );
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let res = browser.follow(&provider_redirect(&url).await).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location_of(&res), workspaces());
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
        (None, "github", "4242", "ada@example.com")
    );
    assert_eq!(session["user"]["id"], row.4.to_string());

    // What GitHub was sent.
    let authorize = &requests_to(&gh, "/login/oauth/authorize")[0];
    assert_eq!(authorize.query_param("scope"), Some("read:user user:email"));
    let tokens = requests_to(&gh, "/login/oauth/access_token");
    assert_eq!(tokens.len(), 1);
    let token = &tokens[0];
    assert_eq!(token.form_field("client_id"), Some(CLIENT_ID));
    assert_eq!(token.form_field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        token.form_field("redirect_uri"),
        Some(redirect_uri.as_str())
    );
    let verifier = token.form_field("code_verifier").expect("a PKCE verifier");
    assert_eq!(
        Some(s256(verifier)),
        authorize.query_param("code_challenge").map(str::to_owned)
    );
    assert!(
        token
            .accept
            .as_deref()
            .is_some_and(|a| a.contains("application/json")),
        "{:?}",
        token.accept
    );
    for path in ["/api/v3/user", "/api/v3/user/emails"] {
        let calls = requests_to(&gh, path);
        assert_eq!(calls.len(), 1, "{path}");
        assert!(
            calls[0]
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer gho_")),
            "{path}: {:?}",
            calls[0].authorization
        );
        assert!(calls[0].user_agent.is_some(), "{path}");
    }
    // The proxied API knows this user.
    assert_eq!(browser.get("/api/workspaces").await.status(), 200);
}

#[tokio::test]
async fn githubs_numeric_id_is_the_subject_whatever_the_login_or_email_becomes() {
    let (gh, app) = setup().await;
    gh.set_user(
        user(7, "old-login", Some("Seven")),
        vec![email("seven@example.com", true, true)],
    );
    let first = app.browser();
    assert_eq!(
        location_of(&sign_in(&first, "github", &[]).await),
        workspaces()
    );
    gh.set_user(
        user(7, "new-login", Some("Seven")),
        vec![email("seven@new.example", true, true)],
    );
    let second = app.browser();
    assert_eq!(
        location_of(&sign_in(&second, "github", &[]).await),
        workspaces()
    );
    assert_eq!(
        first.session().await["user"]["id"],
        second.session().await["user"]["id"]
    );
    let kept: String = sqlx::query_scalar("SELECT email FROM accounts WHERE subject = '7'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        kept, "seven@new.example",
        "the last sign-in's email is kept"
    );

    // Someone else who takes over the old login is someone else.
    gh.set_user(
        user(8, "old-login", Some("Eight")),
        vec![email("eight@example.com", true, true)],
    );
    let third = app.browser();
    assert_eq!(
        location_of(&sign_in(&third, "github", &[]).await),
        workspaces()
    );
    assert_ne!(
        third.session().await["user"]["id"],
        first.session().await["user"]["id"]
    );
    assert_eq!(rows(&app).await, (2, 2, 3));
}

#[tokio::test]
async fn a_github_name_is_cleaned_and_falls_back_to_the_login() {
    let (gh, app) = setup().await;
    let cases = [
        (Some("Grace \u{202E}Hopper\u{0}"), "Grace Hopper"),
        (None, "login-1"),
        (Some(""), "login-2"),
        (Some("   "), "login-3"),
        (Some("\u{200B}\u{202E}"), "login-4"),
    ];
    for (i, (name, expected)) in cases.into_iter().enumerate() {
        gh.set_user(
            user(100 + i as u64, &format!("login-{i}"), name),
            vec![email(&format!("person{i}@example.com"), true, true)],
        );
        let browser = app.browser();
        let res = sign_in(&browser, "github", &[]).await;
        assert_eq!(location_of(&res), workspaces(), "{name:?}");
        assert_eq!(
            browser.session().await["user"]["name"],
            expected,
            "GitHub name {name:?} (login login-{i}, email person{i}@example.com)"
        );
    }
}

#[tokio::test]
async fn a_refusal_at_github_is_access_denied() {
    let (gh, app) = setup().await;
    gh.deny_next();
    let browser = app.browser();
    let res = sign_in(&browser, "github", &[]).await;
    assert_refused(&browser, res, "AccessDenied", "denied at GitHub").await;
    assert!(requests_to(&gh, "/login/oauth/access_token").is_empty());
    assert_eq!(rows(&app).await, (0, 0, 0));
}

#[tokio::test]
async fn a_github_user_without_a_primary_verified_email_is_access_denied() {
    let (gh, app) = setup().await;
    let cases = [
        (
            vec![
                email("primary@example.com", true, false),
                email("verified@example.com", false, true),
            ],
            "the primary address is unverified",
        ),
        (vec![], "no addresses"),
    ];
    for (i, (emails, case)) in cases.into_iter().enumerate() {
        gh.set_user(user(200 + i as u64, "nomail", Some("No Mail")), emails);
        let browser = app.browser();
        let res = sign_in(&browser, "github", &[]).await;
        assert_refused(&browser, res, "AccessDenied", case).await;
        assert_eq!(rows(&app).await, (0, 0, 0), "{case}");
    }
    assert_eq!(
        requests_to(&gh, "/api/v3/user/emails").len(),
        2,
        "asked each time"
    );
}

#[tokio::test]
async fn a_code_github_refuses_or_a_replayed_callback_is_oauth_callback() {
    let (gh, app) = setup().await;
    // A live flow, but a code GitHub does not know (it answers 200 with an error).
    let browser = app.browser();
    let url = browser.authorization_url("github", &[]).await;
    let state = query_param(&url, "state").unwrap();
    let res = browser
        .get(&format!(
            "/api/auth/callback/github?code=not-a-code&state={state}"
        ))
        .await;
    assert_refused(&browser, res, "OAuthCallback", "a refused code").await;
    assert_eq!(requests_to(&gh, "/login/oauth/access_token").len(), 1);
    assert!(requests_to(&gh, "/api/v3/user").is_empty());

    // A callback that worked, replayed.
    let browser = app.browser();
    let back = provider_redirect(&browser.authorization_url("github", &[]).await).await;
    assert_eq!(location_of(&browser.follow(&back).await), workspaces());
    let replay = app.browser();
    replay.set_cookie("auth-flow", &browser.cookie("auth-flow").unwrap());
    let res = replay.follow(&back).await;
    assert_refused(&replay, res, "OAuthCallback", "a replayed callback").await;
    assert_eq!(rows(&app).await, (1, 1, 1));
}

#[tokio::test]
async fn githubs_email_never_takes_over_an_existing_user_but_an_explicit_link_does() {
    let (gh, app) = setup().await;
    gh.set_user(
        user(31, "ada", Some("Ada")),
        vec![email("ada@example.com", true, true)],
    );
    let (owner, id) = app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let res = sign_in(&browser, "github", &[]).await;
    assert_refused(&browser, res, "OAuthAccountNotLinked", "an existing email").await;
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 0);
    assert_eq!(owner.session().await["user"]["id"], id.to_string());

    let res = sign_in(&owner, "github", &[("link", "true")]).await;
    assert_eq!(location_of(&res), workspaces());
    let browser = app.browser();
    assert_eq!(
        location_of(&sign_in(&browser, "github", &[]).await),
        workspaces()
    );
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    let accounts: Value = browser
        .get("/api/auth/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["hasPassword"], true);
    assert_eq!(accounts["items"][0]["provider"], "github");
}

#[tokio::test]
async fn a_github_enterprise_server_from_auth_providers_signs_in_within_its_domains() {
    let gh = GitHub::start(CLIENT_ID, CLIENT_SECRET).await;
    let providers = json!([{
        "id": "ghe", "type": "github", "name": "Corp GitHub",
        "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
        "url": gh.url(), "apiUrl": gh.api_url(), "allowedDomains": ["corp.example"],
    }])
    .to_string();
    let app = TestApp::spawn_with_auth(&[("AUTH_PROVIDERS", &providers)]).await;
    gh.set_user(
        user(1, "octocat", None),
        vec![email("octocat@github.com", true, true)],
    );
    let browser = app.browser();
    let res = sign_in(&browser, "ghe", &[]).await;
    assert_eq!(location_of(&res), provider_error_url("AccessDenied", "ghe"));
    assert_eq!(rows(&app).await, (0, 0, 0));

    gh.set_user(
        user(2, "ada", None),
        vec![email("ada@corp.example", true, true)],
    );
    let res = sign_in(&browser, "ghe", &[]).await;
    assert_eq!(location_of(&res), workspaces());
    assert_eq!(browser.session().await["user"]["name"], "ada");
    let provider: String = sqlx::query_scalar("SELECT provider FROM accounts WHERE subject = '2'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(provider, "ghe");
}
