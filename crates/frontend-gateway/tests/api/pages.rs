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
        ("/account", "%2Faccount"),
        ("/invitations", "%2Finvitations"),
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
        ("/account", "data-page=\"account\""),
        ("/invitations", "data-page=\"invitations\""),
    ] {
        let res = browser.send(browser.request(Method::GET, path)).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_page_headers(&res);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert!(res.text().await.unwrap().contains(page), "{path}");
    }
}

#[tokio::test]
async fn the_account_page_needs_a_session_and_comes_back_after_sign_in() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let res = browser.get("/account?linked=github").await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/signin?callbackUrl=%2Faccount%3Flinked%3Dgithub").as_str()
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_page_headers(&res);

    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser.get("/account").await;
    assert_eq!(res.status(), 200);
    assert_page_headers(&res);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    for marker in [
        "data-page=\"account\"",
        "id=\"account-list\"",
        "id=\"password-form\"",
    ] {
        assert!(body.contains(marker), "{marker}");
    }

    // Signed out again, the page is gone with the session.
    assert_eq!(browser.sign_out().await.status(), 200);
    assert_eq!(browser.get("/account").await.status(), 302);
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
async fn the_email_flow_pages_are_public_with_strict_security_headers() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (path, markers) in [
        (
            "/forgot-password",
            &["data-page=\"forgot-password\"", "id=\"forgot-form\""][..],
        ),
        (
            "/verify-request?provider=credentials&type=email",
            &[
                "data-page=\"verify-request\"",
                "id=\"verify-request-message\"",
                "href=\"/signin\"",
            ][..],
        ),
        (
            "/verify-request?provider=credentials&type=reset",
            &["data-page=\"verify-request\""][..],
        ),
        (
            "/signin?error=EmailNotVerified",
            &[
                "id=\"resend-form\"",
                "id=\"email-signin-form\"",
                "href=\"/forgot-password\"",
            ][..],
        ),
    ] {
        let res = browser.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_page_headers(&res);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        let body = res.text().await.unwrap();
        for marker in markers {
            assert!(body.contains(marker), "{path}: {marker}");
        }
    }
}

#[tokio::test]
async fn the_invitations_page_needs_a_session_and_comes_back_after_sign_in() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let res = browser.get("/invitations").await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/signin?callbackUrl=%2Finvitations").as_str()
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_page_headers(&res);

    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser.get("/invitations").await;
    assert_eq!(res.status(), 200);
    assert_page_headers(&res);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    for marker in ["data-page=\"invitations\"", "id=\"invitation-list\""] {
        assert!(body.contains(marker), "{marker}");
    }
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

/// What a browser's navigation sends as `Accept`.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

#[tokio::test]
async fn a_browser_navigating_to_a_missing_page_gets_the_apps_own_404_page() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for path in ["/nope", "/workspaces/a/b", "/assets/nope.js", "/apis"] {
        let res = browser
            .send(
                browser
                    .request(Method::GET, path)
                    .header("accept", BROWSER_ACCEPT),
            )
            .await;
        assert_eq!(res.status(), 404, "{path}");
        assert_page_headers(&res);
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert!(res.headers().contains_key("x-request-id"), "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("data-testid=\"not-found\""), "{path}: {body}");
    }
    let res = browser
        .send(
            browser
                .request(Method::HEAD, "/nope")
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert!(res.bytes().await.unwrap().is_empty(), "HEAD has no body");
}

#[tokio::test]
async fn api_clients_and_api_paths_keep_their_problem_json_404() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (method, path, accept) in [
        (Method::GET, "/nope", None),
        (Method::GET, "/nope", Some("*/*")),
        (Method::GET, "/nope", Some("application/json")),
        (
            Method::GET,
            "/nope",
            Some("text/html;q=0, application/json"),
        ),
        (Method::POST, "/nope", Some(BROWSER_ACCEPT)),
        (Method::GET, "/api/auth/nope", Some(BROWSER_ACCEPT)),
        (Method::GET, "/api/nope", Some(BROWSER_ACCEPT)),
    ] {
        let mut req = browser.request(method.clone(), path);
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        let res = browser.send(req).await;
        assert_eq!(res.status(), 404, "{method} {path} {accept:?}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{method} {path} {accept:?}"
        );
        let problem: serde_json::Value = res.json().await.unwrap();
        assert_eq!(problem["status"], 404);
        // `/api/nope` is the backend's own problem (about its path `/nope`), passed through.
        let instance = path.strip_prefix("/api/nope").map_or(path, |_| "/nope");
        assert_eq!(problem["instance"], instance);
    }
}

#[tokio::test]
async fn an_upstreams_own_404_passes_through_a_navigation_untouched() {
    let upstream = crate::upstream::spawn();
    let rules = serde_json::json!([{ "source": "/docs/:path*", "destination": format!("{upstream}/:path*") }]);
    let app = TestApp::spawn_with(crate::helpers::Upstream::Url(upstream), |s| {
        let extra: Vec<frontend_gateway::proxy::rewrite::RuleConfig> =
            serde_json::from_value(rules).unwrap();
        s.proxy.rules =
            frontend_gateway::proxy::rewrite::Rules::standard(&s.proxy.backend_api_url, &extra)
                .unwrap();
    })
    .await;
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(Method::GET, "/docs/missing")
                .header("accept", BROWSER_ACCEPT),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.text().await.unwrap(), "the upstream has no such page");
}
