//! Sign-in with a real OpenID Provider (the certified `oidc-provider`, run by the tests on
//! Node.js): the whole flow, the linking rules, RP-initiated and back-channel logout.

use serde_json::Value;
use test_support::oidc_provider::{AccountConfig, ClientConfig, OidcProvider, ProviderConfig};

use crate::helpers::{Browser, ORIGIN, TestApp};

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

fn location(res: &reqwest::Response) -> &str {
    res.headers()["location"].to_str().unwrap()
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
    assert_eq!(location(&res), format!("{ORIGIN}/workspaces"));
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
