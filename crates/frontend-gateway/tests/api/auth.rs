//! `/api/auth/*` in next-auth v4's wire shapes.

use serde_json::{Value, json};

use crate::helpers::{ORIGIN, PASSWORD, TestApp, Upstream};

async fn app() -> TestApp {
    TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await
}

#[tokio::test]
async fn csrf_returns_a_token_and_sets_a_double_submit_cookie() {
    let app = app().await;
    let browser = app.browser();
    let res = browser.get("/api/auth/csrf").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("next-auth.csrf-token="),
        "{set_cookie}"
    );
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/")
    );
    let body: Value = res.json().await.unwrap();
    let token = body["csrfToken"].as_str().unwrap();
    let cookie = browser.cookie("next-auth.csrf-token").unwrap();
    assert!(
        cookie.starts_with(&format!("{token}%7C")) || cookie.starts_with(&format!("{token}|")),
        "{cookie}"
    );
    // The same browser gets the same token back.
    assert_eq!(browser.csrf_token().await, token);
}

#[tokio::test]
async fn a_get_with_a_json_content_type_and_no_body_is_fine() {
    let app = app().await;
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/auth/session")
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
}

#[tokio::test]
async fn providers_lists_credentials_with_urls_from_the_public_origin() {
    let app = app().await;
    let res = app
        .browser()
        .send(
            app.browser()
                .request(reqwest::Method::GET, "/api/auth/providers")
                .header("x-forwarded-host", "evil.example"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"credentials": {
            "id": "credentials",
            "name": "Credentials",
            "type": "credentials",
            "signinUrl": format!("{ORIGIN}/api/auth/signin/credentials"),
            "callbackUrl": format!("{ORIGIN}/api/auth/callback/credentials"),
        }})
    );
}

#[tokio::test]
async fn callback_with_good_credentials_and_json_answers_the_callback_url_and_signs_in() {
    let app = app().await;
    let (_, id) = app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let res = browser
        .sign_in_like_next_auth("ADA@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let set_cookie: Vec<_> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = set_cookie
        .iter()
        .find(|c| c.starts_with("session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            session_cookie.contains(flag),
            "{session_cookie} lacks {flag}"
        );
    }
    assert!(
        !session_cookie.contains("Secure"),
        "development cookies are not Secure"
    );
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/workspaces")})
    );
    let session = browser.session().await;
    assert_eq!(session["user"]["id"], id.to_string());
    assert_eq!(session["user"]["email"], "ada@example.com");
    assert_eq!(session["user"]["name"], "Test User");
    assert_eq!(session["user"]["image"], Value::Null);
    assert!(session["expires"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn callback_without_json_redirects_to_the_callback_url() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let token = browser.csrf_token().await;
    let res = browser
        .post_form(
            "/api/auth/callback/credentials",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrfToken", &token),
                ("callbackUrl", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], format!("{ORIGIN}/"));
}

#[tokio::test]
async fn callback_with_a_wrong_password_answers_401_with_the_error_url() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let res = browser
        .sign_in_like_next_auth("ada@example.com", "wrong password")
        .await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("session="))
    );
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/api/auth/error?error=CredentialsSignin&provider=credentials")})
    );
    assert_eq!(browser.session().await, json!({}));
}

#[tokio::test]
async fn callback_with_a_bad_csrf_token_never_signs_anyone_in() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let browser = app.browser();
    browser.csrf_token().await;
    for token in ["", "forged"] {
        let res = browser
            .post_form(
                "/api/auth/callback/credentials",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("csrfToken", token),
                    ("json", "true"),
                ],
            )
            .await;
        assert_eq!(res.status(), 403);
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"url": format!("{ORIGIN}/api/auth/signin?csrf=true")})
        );
    }
    // A token without its cookie is refused too.
    let token = browser.csrf_token().await;
    let res = app
        .browser()
        .post_form(
            "/api/auth/callback/credentials",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrfToken", &token),
                ("json", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(browser.session().await, json!({}));
    assert_eq!(
        app.session_rows().await,
        1,
        "only the registration's session exists"
    );
}

#[tokio::test]
async fn callback_accepts_json_and_ignores_unknown_fields() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let browser = app.browser();
    let token = browser.csrf_token().await;
    let res = browser
        .post_json(
            "/api/auth/callback/credentials",
            &json!({"email": "ada@example.com", "password": PASSWORD, "csrfToken": token, "json": true, "redirect": false, "extra": [1]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/")})
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_give_identical_responses() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let mut answers = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let res = app
            .browser()
            .sign_in_like_next_auth(email, "wrong password")
            .await;
        answers.push((res.status(), res.text().await.unwrap()));
        let res = app
            .browser()
            .post_json(
                "/api/auth/signin",
                &json!({"email": email, "password": "wrong password"}),
            )
            .await;
        let status = res.status();
        let mut body: Value = res.json().await.unwrap();
        body.as_object_mut().unwrap().remove("request_id");
        answers.push((status, body.to_string()));
    }
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[3]);
    assert_eq!(answers[1].0, 401);
}

#[tokio::test]
async fn json_sign_in_answers_the_user_and_records_the_sign_in() {
    let app = app().await;
    let (_, id) = app.signed_in("ada@example.com").await;
    sqlx::query("UPDATE users SET last_sign_in_at = NULL")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let browser = app.browser();
    let res = browser
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], id.to_string());
    assert_eq!(browser.session().await["user"]["id"], id.to_string());
    let signed_in: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT last_sign_in_at FROM users")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(signed_in.is_some());
}

#[tokio::test]
async fn json_sign_in_with_wrong_password_returns_401_problem() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let res = app
        .browser()
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": "nope nope"}),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn register_creates_an_unverified_argon2id_user_and_signs_nobody_in() {
    let app = app().await;
    let browser = app.browser();
    let res = browser
        .register(" grace@example.com ", PASSWORD, " Grace ")
        .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["url"],
        format!("{ORIGIN}/api/auth/verify-request?provider=credentials&type=email")
    );
    let id = app.user_id("grace@example.com").await;
    let (hash, name, email, verified): (String, String, String, bool) = sqlx::query_as(
        "SELECT password_hash, name, email, email_verified_at IS NOT NULL FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        (name.as_str(), email.as_str()),
        ("Grace", "grace@example.com")
    );
    assert!(!verified, "a new address is unverified");
    assert_eq!(browser.session().await, serde_json::json!({}));
    assert_eq!(app.session_rows().await, 0);
}

#[tokio::test]
async fn register_with_a_taken_email_in_any_case_answers_exactly_like_a_new_one() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    let res = app
        .browser()
        .register("ADA@EXAMPLE.COM", PASSWORD, "Ada again")
        .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["url"],
        format!("{ORIGIN}/api/auth/verify-request?provider=credentials&type=email")
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn register_refuses_a_short_password_with_422() {
    let app = app().await;
    let res = app
        .browser()
        .register("ada@example.com", "short", "Ada")
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "password");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn signout_deletes_the_session_clears_the_cookie_and_answers_a_url() {
    let app = app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    assert_eq!(app.session_rows().await, 1);
    let res = browser.sign_out().await;
    assert_eq!(res.status(), 200);
    let cleared = res.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("session=") && c.to_ascii_lowercase().contains("max-age=0")
    });
    assert!(cleared, "the session cookie is cleared");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/")})
    );
    assert_eq!(app.session_rows().await, 0);
    assert_eq!(browser.session().await, json!({}));
}

#[tokio::test]
async fn signout_with_a_bad_csrf_token_keeps_the_session() {
    let app = app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser
        .post_form(
            "/api/auth/signout",
            &[("csrfToken", "forged"), ("json", "true")],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.session_rows().await, 1);
    assert!(browser.session().await.get("user").is_some());
}

#[tokio::test]
async fn an_unknown_auth_action_is_a_404_problem() {
    let app = app().await;
    for path in ["/api/auth/nope", "/api/auth/callback/github", "/api/auth"] {
        let res = app.browser().get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_cross_origin_post_is_refused() {
    let app = app().await;
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::POST, "/api/auth/signin")
                .header("origin", "https://evil.example")
                .json(&json!({"email": "a@b.c", "password": "whatever1"})),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = browser
        .send(
            browser
                .request(reqwest::Method::POST, "/api/auth/signin")
                .header("origin", ORIGIN)
                .json(&json!({"email": "a@b.c", "password": "whatever1"})),
        )
        .await;
    assert_eq!(res.status(), 401);
}
