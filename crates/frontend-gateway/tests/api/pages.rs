//! The web app's pages, assets, redirects and health endpoints.

use reqwest::Method;

use crate::helpers::{ORIGIN, TestApp};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

fn assert_page_headers(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(h["content-security-policy"], CSP);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
}

#[tokio::test]
async fn signed_out_visitors_of_app_pages_are_sent_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (path, back) in [
        ("/workspaces", "%2Fworkspaces"),
        (
            "/workspaces/0190aa6e-0000-7000-8000-000000000000?tab=members",
            "%2Fworkspaces%2F0190aa6e-0000-7000-8000-000000000000%3Ftab%3Dmembers",
        ),
    ] {
        let res = browser.send(browser.request(Method::GET, path)).await;
        assert_eq!(res.status(), 302, "{path}");
        assert_eq!(
            res.headers()["location"],
            format!("{ORIGIN}/signin?callbackUrl={back}").as_str()
        );
        assert_page_headers(&res);
    }
}

#[tokio::test]
async fn signed_in_visitors_get_the_app_pages_with_strict_security_headers() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    for (path, page) in [
        ("/workspaces", "data-page=\"workspaces\""),
        ("/workspaces/anything", "data-page=\"workspace\""),
    ] {
        let res = browser.send(browser.request(Method::GET, path)).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_page_headers(&res);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert!(res.text().await.unwrap().contains(page), "{path}");
    }
}

#[tokio::test]
async fn sign_in_and_register_pages_and_assets_are_public_with_their_types() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (path, content_type, marker) in [
        ("/signin", "text/html; charset=utf-8", "id=\"signin-form\""),
        (
            "/register",
            "text/html; charset=utf-8",
            "id=\"register-form\"",
        ),
        ("/assets/app.css", "text/css; charset=utf-8", "{"),
        (
            "/assets/app.js",
            "text/javascript; charset=utf-8",
            "dataset.page",
        ),
    ] {
        let res = browser.send(browser.request(Method::GET, path)).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], content_type, "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert!(res.text().await.unwrap().contains(marker), "{path}");
    }
    let res = browser
        .send(browser.request(Method::GET, "/assets/nope.js"))
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn root_and_next_auth_page_urls_redirect_to_our_pages_on_the_public_origin() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (path, location) in [
        ("/", format!("{ORIGIN}/workspaces")),
        (
            "/api/auth/signin?callbackUrl=%2Fworkspaces%2Fx",
            format!("{ORIGIN}/signin?callbackUrl=%2Fworkspaces%2Fx"),
        ),
        (
            "/api/auth/signin?callbackUrl=https%3A%2F%2Fevil.example%2F",
            format!("{ORIGIN}/signin?callbackUrl=%2F"),
        ),
        (
            "/api/auth/error?error=CredentialsSignin&provider=credentials",
            format!("{ORIGIN}/signin?error=CredentialsSignin"),
        ),
        (
            "/api/auth/error?error=%3Cscript%3E",
            format!("{ORIGIN}/signin?error=Default"),
        ),
    ] {
        let res = browser
            .send(
                browser
                    .request(Method::GET, path)
                    .header("host", "evil.example"),
            )
            .await;
        assert_eq!(res.status(), 302, "{path}");
        assert_eq!(res.headers()["location"], location.as_str(), "{path}");
    }
}

#[tokio::test]
async fn health_answers_and_readiness_follows_the_database() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let res = browser.send(browser.request(Method::GET, "/healthz")).await;
    assert_eq!(res.status(), 200);
    let res = browser.send(browser.request(Method::GET, "/readyz")).await;
    assert_eq!(res.status(), 200);
    app.db.cut_off().await;
    let res = browser.send(browser.request(Method::GET, "/readyz")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    app.db.restore().await;
    let res = browser.send(browser.request(Method::GET, "/readyz")).await;
    assert_eq!(res.status(), 200);
}
