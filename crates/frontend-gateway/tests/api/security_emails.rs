//! The adversarial suite, second round (issue 12): emails. SECURITY.md maps each attack to its test.
//!
//! One key per address (`web_common::email`): every spelling of an email is one account for
//! the lookup, for uniqueness and for the sign-in limiter; what could never be an address is
//! refused (422 naming the field) before the limiter or the database hears of it.

use std::time::Duration;

use frontend_gateway::identity::throttle::Limits;
use serde_json::Value;

use crate::helpers::{Browser, PASSWORD, TestApp, Upstream};
use crate::security::json_sign_in;

async fn app_with(limits: Limits) -> TestApp {
    TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = limits;
    })
    .await
}

pub(crate) fn limits(account_failures: u32, ip_attempts: u32) -> Limits {
    Limits {
        account_failures,
        account_window: Duration::from_secs(900),
        ip_attempts,
        ip_window: Duration::from_secs(60),
    }
}

/// A 422 problem naming `field`.
async fn assert_invalid(res: reqwest::Response, field: &str, context: &str) -> Value {
    assert_eq!(res.status(), 422, "{context}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{context}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], field, "{context}: {body}");
    body
}

/// The next `allowed` sign-ins from this client pass the limiter (a success, then failures),
/// and the one after is 429: nothing before them was counted against the client.
async fn exactly_these_attempts_are_left(app: &TestApp, email: &str, allowed: u32) {
    let res = json_sign_in(app, email, PASSWORD, None).await;
    assert_eq!(res.status(), 200, "the right password signs in");
    for _ in 1..allowed {
        let res = json_sign_in(app, email, "wrong password", None).await;
        assert_eq!(res.status(), 401);
    }
    let res = json_sign_in(app, email, PASSWORD, None).await;
    assert_eq!(
        res.status(),
        429,
        "the client's limit is {allowed}, all of them left"
    );
    assert!(res.headers().contains_key("retry-after"));
}

/// Spellings of `kate.strasse@example.com` that lower-casing tells apart.
const KATE: [&str; 6] = [
    "kate.strasse@example.com",
    "  Kate.Straße@Example.com ",
    "KATE.STRASSE@EXAMPLE.COM",
    "ｋａｔｅ．ｓｔｒａｓｓｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "\u{212A}ate.strasse@example.com",
    "kate.STRAẞE@example.com",
];

#[tokio::test]
async fn every_spelling_of_an_email_signs_in_to_one_account_and_shares_its_failure_limit() {
    let app = app_with(limits(5, 1000)).await;
    let (_, kate) = app.signed_in(KATE[0]).await;
    for spelling in KATE {
        let res = json_sign_in(&app, spelling, PASSWORD, None).await;
        assert_eq!(res.status(), 200, "{spelling:?} signs in");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["id"], kate.to_string(), "{spelling:?}");
        assert_eq!(body["user"]["email"], KATE[0], "the address as registered");
    }
    // Five failures in all, one per spelling (one through next-auth's form): the account's
    // limit is reached, whichever spelling comes next.
    for spelling in &KATE[1..5] {
        let res = json_sign_in(&app, spelling, "wrong password", None).await;
        assert_eq!(res.status(), 401, "{spelling:?}");
    }
    let res = app
        .browser()
        .sign_in_like_next_auth(KATE[5], "wrong password")
        .await;
    assert_eq!(res.status(), 401);
    for spelling in KATE {
        let res = json_sign_in(&app, spelling, PASSWORD, None).await;
        assert_eq!(
            res.status(),
            429,
            "{spelling:?} is the same throttled account"
        );
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((800..=900).contains(&wait), "Retry-After: {wait}");
    }
}

#[tokio::test]
async fn registering_a_look_alike_of_an_existing_email_is_a_duplicate() {
    // Every spelling is one address, so the per-address mail limit would stop the loop.
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.mail_limits.account_failures = 0;
    })
    .await;
    app.signed_in(KATE[0]).await;
    app.signed_in("ada@example.com").await;
    for spelling in KATE[1..].iter().copied().chain([
        "ＡＤＡ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "Ada@Example.COM",
        "ada@ｅｘａｍｐｌｅ.com",
    ]) {
        let res = app.browser().register(spelling, PASSWORD, "Mallory").await;
        assert_eq!(
            res.status(),
            202,
            "{spelling:?}: the same answer as a new address"
        );
    }
    // Each attempt tells the owner (after the answer), and creates nobody.
    let told = KATE.len() - 1 + 3;
    for _ in 0..200 {
        if app
            .count("SELECT count(*) FROM mail_outbox WHERE kind = 'account_exists'")
            .await
            == told as i64
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM mail_outbox WHERE kind = 'account_exists'")
            .await,
        told as i64
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email_key IN ('kate.strasse@example.com', 'ada@example.com')")
            .await,
        2
    );
}

/// Emails no account can have: a control character (NUL included), a bidirectional override,
/// an invisible format character.
const INVISIBLE: [&str; 6] = [
    "ada@example.com\u{0}",
    "\u{0}",
    "ada\u{1b}@example.com",
    "ada\u{7f}@example.com",
    "ad\u{202e}a@example.com",
    "ada\u{200b}@example.com",
];

#[tokio::test]
async fn invisible_characters_in_a_sign_in_email_are_422_naming_it_and_not_counted() {
    // `signed_in`'s own sign-in is the first of the client's four attempts.
    let app = app_with(limits(2, 4)).await;
    app.signed_in("ada@example.com").await;
    for email in INVISIBLE {
        let res = json_sign_in(&app, email, PASSWORD, None).await;
        assert_invalid(res, "email", &format!("JSON {email:?}")).await;
        let res = app.browser().sign_in_like_next_auth(email, PASSWORD).await;
        assert_invalid(res, "email", &format!("form {email:?}")).await;
    }
    // Neither the account nor the client lost an attempt.
    exactly_these_attempts_are_left(&app, "ada@example.com", 3).await;
}

#[tokio::test]
async fn invisible_characters_in_a_registered_email_or_name_are_422_naming_the_field() {
    let app = app_with(Limits::default()).await;
    let browser = app.browser();
    for email in INVISIBLE {
        let res = browser.register(email, PASSWORD, "Ada").await;
        assert_invalid(res, "email", &format!("{email:?}")).await;
    }
    for name in [
        "Ada\u{0}",
        "Ada\u{7}Lovelace",
        "\u{202e}adA",
        "A\u{200b}da",
        "Ada\u{2066}",
        "\u{feff}Ada",
    ] {
        let res = browser.register("ada@example.com", PASSWORD, name).await;
        assert_invalid(res, "name", &format!("{name:?}")).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    assert!(browser.session().await.get("user").is_none());
}

#[tokio::test]
async fn an_email_over_254_bytes_is_422_before_the_limiter_and_the_database() {
    // `signed_in`'s own sign-in is the first of the client's four attempts.
    let app = app_with(limits(2, 4)).await;
    app.signed_in("ada@example.com").await;
    // 255 bytes, and 255 bytes in 130 characters.
    let long = format!("{}@x.io", "a".repeat(250));
    let wide = format!("{}@x.io", "é".repeat(125));
    assert_eq!((long.len(), wide.len()), (255, 255));
    // The CSRF token needs no database: fetch it before the database goes.
    let form = app.browser();
    let token = form.csrf_token().await;
    app.db.cut_off().await;
    for email in [&long, &wide] {
        let res = json_sign_in(&app, email, PASSWORD, None).await;
        let body = assert_invalid(res, "email", "JSON sign-in").await;
        assert_eq!(body["errors"][0]["message"], "must be at most 254 bytes");
        let res = next_auth_form(&form, email, &token).await;
        assert_invalid(res, "email", "form sign-in").await;
        let res = app.browser().register(email, PASSWORD, "Ada").await;
        assert_invalid(res, "email", "register").await;
    }
    app.db.restore().await;
    exactly_these_attempts_are_left(&app, "ada@example.com", 3).await;
}

async fn next_auth_form(browser: &Browser, email: &str, token: &str) -> reqwest::Response {
    browser
        .post_form(
            "/api/auth/callback/credentials",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("csrfToken", token),
                ("callbackUrl", "/workspaces"),
                ("json", "true"),
            ],
        )
        .await
}

#[tokio::test]
async fn ipv6_clients_share_the_ip_limit_per_64_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = limits(1000, 2);
        s.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    for (i, xff) in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
        .iter()
        .enumerate()
    {
        let res = json_sign_in(
            &app,
            &format!("u{i}@example.com"),
            "wrong password",
            Some(xff),
        )
        .await;
        assert_eq!(res.status(), 401, "{xff}");
    }
    let res = json_sign_in(
        &app,
        "u9@example.com",
        "wrong password",
        Some("[2001:db8:1:2::abcd]:443"),
    )
    .await;
    assert_eq!(res.status(), 429, "another address in the same /64");
    let res = json_sign_in(
        &app,
        "u9@example.com",
        "wrong password",
        Some("2001:db8:1:3::1"),
    )
    .await;
    assert_eq!(res.status(), 401, "the next /64 is another client");
    // An IPv4-mapped address is its IPv4 client.
    for xff in ["198.51.100.7", "::ffff:198.51.100.7"] {
        let res = json_sign_in(&app, "u1@example.com", "wrong password", Some(xff)).await;
        assert_eq!(res.status(), 401, "{xff}");
    }
    let res = json_sign_in(
        &app,
        "u1@example.com",
        "wrong password",
        Some("198.51.100.7"),
    )
    .await;
    assert_eq!(res.status(), 429);
}
