//! The flows that go through someone's mailbox, against a real SMTP server (the mail catcher
//! of `test_support::smtp`): registration and verification, password reset, sign-in links,
//! and account deletion. Every link is read from the mail received and followed over HTTP,
//! as a person would: its page first (which uses nothing up), then the page's form.

use std::time::{Duration, Instant};

use frontend_gateway::Settings;
use serde_json::{Value, json};
use test_support::smtp::{Mail, MailSink};

use crate::helpers::{Browser, ORIGIN, PASSWORD, TestApp, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// The mail to `to` whose subject contains `subject`.
async fn mail_to(sink: &MailSink, to: &str, subject: &str) -> Mail {
    let (to, subject) = (to.to_owned(), subject.to_owned());
    sink.wait_for(
        move |m| m.to.iter().any(|t| t.contains(&to)) && m.subject.contains(&subject),
        WAIT,
    )
    .await
}

/// The one link of `mail` under `path` on the gateway's origin.
fn link(mail: &Mail, path: &str) -> String {
    let prefix = format!("{ORIGIN}{path}");
    let found: Vec<String> = mail
        .links()
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "one {path} link in {:?}", mail.text);
    found.into_iter().next().unwrap()
}

/// The value of the `name` attribute-value pairs of the hidden inputs of a link page's form,
/// and its action.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(
            tag[start..end]
                .replace("&amp;", "&")
                .replace("&quot;", "\""),
        )
    };
    let form_tag = html
        .split("<form")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("a form");
    let action = attr(form_tag, "action").expect("an action");
    let hidden = html
        .split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains(r#"type="hidden""#))
        .map(|tag| (attr(tag, "name").unwrap(), attr(tag, "value").unwrap()))
        .collect();
    (action, hidden)
}

/// Opens `url` (a link from a mail) in `browser` and submits its page's form with `extra`
/// fields; the form's answer.
async fn use_link(browser: &Browser, url: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let page = browser.follow(url).await;
    assert_eq!(page.status(), 200, "the link's page opens");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    // The origin (so the form's POST carries `Origin`), never the path with its token.
    assert_eq!(page.headers()["referrer-policy"], "strict-origin");
    let html = page.text().await.unwrap();
    let (action, hidden) = form_of(&html);
    let mut form: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.extend_from_slice(extra);
    browser
        .send(
            browser
                .request(reqwest::Method::POST, &action)
                .header("origin", ORIGIN)
                .form(&form),
        )
        .await
}

/// A gateway in front of a real backend, mailing through a real SMTP server.
async fn mailing(tweak: impl FnOnce(&mut Settings)) -> (TestApp, MailSink) {
    TestApp::spawn_with_mail(Upstream::Backend, tweak).await
}

fn verify_request(kind: &str) -> Value {
    json!({"url": format!("{ORIGIN}/api/auth/verify-request?provider=credentials&type={kind}")})
}

async fn verified_at(app: &TestApp, email: &str) -> Option<time::OffsetDateTime> {
    sqlx::query_scalar("SELECT email_verified_at FROM users WHERE email_key = $1")
        .bind(web_common::email::key(email))
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_mails_a_link_whose_page_verifies_the_address_and_signs_in_once() {
    let (app, sink) = mailing(|_| {}).await;
    let res = app
        .browser()
        .register("Grace@Example.com", PASSWORD, "Grace")
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), verify_request("email"));

    let mail = mail_to(&sink, "Grace@Example.com", "Confirm").await;
    assert_eq!(mail.to, ["Grace@Example.com"], "to the address as typed");
    let url = link(&mail, "/api/auth/verify-email?token=");
    assert_eq!(verified_at(&app, "grace@example.com").await, None);

    // Opening the link (a mail scanner, a preview) uses nothing up.
    let browser = app.browser();
    for _ in 0..2 {
        let page = browser.follow(&url).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Grace@Example.com"));
    }
    assert_eq!(verified_at(&app, "grace@example.com").await, None);
    assert_eq!(browser.session().await, json!({}));

    let res = use_link(&browser, &url, &[]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], format!("{ORIGIN}/"));
    assert!(verified_at(&app, "grace@example.com").await.is_some());
    assert_eq!(
        browser.session().await["user"]["email"],
        "Grace@Example.com"
    );

    // Used: its page and its form say so, and sign nobody in.
    let other = app.browser();
    let page = other.follow(&url).await;
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("does not work"));
    let token = super::helpers::query_param(&url, "token").unwrap();
    let csrf = other.csrf_token().await;
    let res = other
        .post_form(
            "/api/auth/verify-email",
            &[("token", &token), ("csrfToken", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(other.session().await, json!({}));
    let res = other
        .post_form(
            "/api/auth/verify-email",
            &[("token", &token), ("csrfToken", &csrf), ("json", "true")],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/api/auth/error?error=Verification")})
    );
}

#[tokio::test]
async fn an_unverified_account_cannot_sign_in_until_it_uses_a_new_link() {
    let (app, sink) = mailing(|_| {}).await;
    app.registered("ada@example.com", PASSWORD, "Ada").await;
    let first = mail_to(&sink, "ada@example.com", "Confirm").await;

    let browser = app.browser();
    let res = browser
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/api/auth/error?error=EmailNotVerified&provider=credentials")})
    );
    let res = browser
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // A wrong password still reads as a wrong password.
    let res = browser
        .sign_in_like_next_auth("ada@example.com", "not the password")
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.session_rows().await, 0);

    let res = browser
        .post_json(
            "/api/auth/resend-verification",
            &json!({"email": "ADA@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), verify_request("email"));
    let second = sink
        .wait_for(
            |m| m.subject.contains("Confirm") && m.message_id != first.message_id,
            WAIT,
        )
        .await;
    let res = use_link(
        &app.browser(),
        &link(&second, "/api/auth/verify-email"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 302);
    let res = browser
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);

    // Verified: asking again mails nothing, and answers the same.
    sink.clear().await;
    let res = browser
        .post_json(
            "/api/auth/resend-verification",
            &json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let res = browser
        .post_json(
            "/api/auth/resend-verification",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(sink.messages().await.is_empty());
}

/// How long a registration of `email` takes to be answered (202, the same body), in ms.
async fn registration_time(app: &TestApp, email: &str) -> u128 {
    let started = Instant::now();
    let res = app.browser().register(email, PASSWORD, "Someone").await;
    let took = started.elapsed().as_millis();
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), verify_request("email"));
    took
}

#[tokio::test]
async fn a_taken_email_answers_like_a_new_one_in_similar_time_and_tells_its_owner() {
    let (app, sink) = mailing(|s| {
        s.sign_in.mail_limits.account_failures = 0;
    })
    .await;
    app.signed_in("ada@example.com").await;
    // Interleaved, so that the machine's load weighs on both alike.
    let (mut taken, mut new) = (Vec::new(), Vec::new());
    for i in 0..5 {
        taken.push(registration_time(&app, "Ada@Example.com").await);
        new.push(registration_time(&app, &format!("new{i}@example.com")).await);
    }
    taken.sort_unstable();
    new.sort_unstable();
    let (taken, new) = (taken[2], new[2]);
    // argon2 runs either way; the lookup and the writes happen after the answer.
    let (low, high) = (taken.min(new), taken.max(new));
    assert!(
        high <= low * 2 + 50,
        "taken {taken} ms vs new {new} ms: the answer's timing tells"
    );

    let mail = mail_to(&sink, "ada@example.com", "already have").await;
    assert_eq!(mail.to, ["ada@example.com"], "to the owner's address");
    link(&mail, "/signin");
    let reset = link(&mail, "/api/auth/reset-password?token=");
    for i in 0..5 {
        app.user_id(&format!("new{i}@example.com")).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 6);
    // The reset link in it works.
    let res = use_link(
        &app.browser(),
        &reset,
        &[("newPassword", "a new password!")],
    )
    .await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/signin?reset=1")
    );
}

#[tokio::test]
async fn requests_that_mail_are_limited_per_address_and_per_client() {
    let (app, _sink) = mailing(|s| {
        s.sign_in.mail_limits.account_failures = 2;
        s.sign_in.mail_limits.ip_attempts = 4;
    })
    .await;
    let browser = app.browser();
    for _ in 0..2 {
        let res = browser.register("ada@example.com", PASSWORD, "Ada").await;
        assert_eq!(res.status(), 202);
    }
    // Any spelling is the one address; any request that mails counts.
    let res = browser
        .post_json(
            "/api/auth/forgot-password",
            &json!({"email": "ADA@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "Retry-After: {wait}");
    // Per client: two more addresses, then the client is done for the window.
    for email in ["b@example.com", "c@example.com"] {
        let res = browser
            .post_json("/api/auth/forgot-password", &json!({"email": email}))
            .await;
        assert_eq!(res.status(), 202, "{email}");
    }
    let res = browser
        .post_json(
            "/api/auth/resend-verification",
            &json!({"email": "d@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 429);
    // A malformed email is a 422 and is not counted.
    let res = browser
        .post_json("/api/auth/forgot-password", &json!({"email": "nope"}))
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_password_reset_link_sets_a_new_password_ends_every_session_and_voids_other_links() {
    let (app, sink) = mailing(|_| {}).await;
    let (signed_in, _) = app.signed_in("ada@example.com").await;
    assert!(signed_in.session().await.get("user").is_some());

    // Unknown addresses answer the same and get nothing.
    let anonymous = app.browser();
    let res = anonymous
        .post_json(
            "/api/auth/forgot-password",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), verify_request("reset"));

    for _ in 0..2 {
        let res = anonymous
            .post_json(
                "/api/auth/forgot-password",
                &json!({"email": "ada@example.com"}),
            )
            .await;
        assert_eq!(res.status(), 202);
    }
    let mut links = Vec::new();
    for _ in 0..100 {
        let mails = sink.messages().await;
        links = mails
            .iter()
            .filter(|m| m.subject.contains("password"))
            .map(|m| link(m, "/api/auth/reset-password?token="))
            .collect();
        if links.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(links.len(), 2, "two reset mails");
    assert!(
        sink.messages()
            .await
            .iter()
            .all(|m| m.to == ["ada@example.com"]),
        "nothing to the unknown address"
    );

    // A password breaking the rules: 422, and the link still works.
    let browser = app.browser();
    let res = use_link(&browser, &links[0], &[("newPassword", "short")]).await;
    assert_eq!(res.status(), 422);
    let res = use_link(
        &browser,
        &links[0],
        &[("newPassword", "a brand new password")],
    )
    .await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/signin?reset=1")
    );
    assert_eq!(
        browser.session().await,
        json!({}),
        "a reset signs nobody in"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(signed_in.session().await, json!({}), "every session ended");
    assert_eq!(app.session_rows().await, 0);
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 401, "the old password is gone");
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", "a brand new password")
        .await;
    assert_eq!(res.status(), 200);

    // The same link again, and the other outstanding link: dead.
    for url in &links {
        let page = app.browser().follow(url).await;
        assert_eq!(page.status(), 400, "{url}");
    }
    assert_eq!(app.count("SELECT count(*) FROM email_tokens").await, 0);
}

#[tokio::test]
async fn expired_tampered_and_csrf_less_links_change_nothing() {
    let (app, sink) = mailing(|_| {}).await;
    app.registered("ada@example.com", PASSWORD, "Ada").await;
    let url = link(
        &mail_to(&sink, "ada@example.com", "Confirm").await,
        "/api/auth/verify-email",
    );
    let token = super::helpers::query_param(&url, "token").unwrap();
    let browser = app.browser();

    // No csrfToken (a cross-site form in a browser without Origin): refused, nothing used.
    let res = browser
        .send(
            browser
                .bare(reqwest::Method::POST, "/api/auth/verify-email")
                .form(&[("token", token.as_str()), ("json", "true")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("SELECT count(*) FROM email_tokens").await, 1);

    // Tampered: one character changed.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let page = browser
        .get(&format!("/api/auth/verify-email?token={tampered}"))
        .await;
    assert_eq!(page.status(), 400);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csrf = browser.csrf_token().await;
    let res = browser
        .post_form(
            "/api/auth/verify-email",
            &[("token", &tampered), ("csrfToken", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(verified_at(&app, "ada@example.com").await, None);

    // Expired: the page and the form say so; nobody is signed in.
    sqlx::query("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let page = browser.follow(&url).await;
    assert_eq!(page.status(), 400);
    let res = browser
        .post_form(
            "/api/auth/verify-email",
            &[("token", &token), ("csrfToken", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(verified_at(&app, "ada@example.com").await, None);
    assert_eq!(browser.session().await, json!({}));
    assert_eq!(app.session_rows().await, 0);
}

fn links_on(s: &mut Settings) {
    s.auth.email_links = true;
}

#[tokio::test]
async fn sign_in_links_sign_in_once_to_the_stored_callback_and_create_verified_users() {
    let (app, sink) = mailing(links_on).await;
    let providers: Value = app
        .browser()
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers["email"],
        json!({
            "id": "email", "name": "Email", "type": "email",
            "signinUrl": format!("{ORIGIN}/api/auth/signin/email"),
            "callbackUrl": format!("{ORIGIN}/api/auth/callback/email"),
        })
    );

    let browser = app.browser();
    let csrf = browser.csrf_token().await;
    let res = browser
        .post_form(
            "/api/auth/signin/email",
            &[
                ("email", "Newcomer@Example.com"),
                ("csrfToken", &csrf),
                ("callbackUrl", "/workspaces?from=mail"),
                ("json", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/api/auth/verify-request?provider=email&type=email")})
    );
    let mail = mail_to(&sink, "Newcomer@Example.com", "sign-in link").await;
    let url = link(&mail, "/api/auth/callback/email?token=");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    // A callbackUrl added to the link is never read.
    let doctored = format!("{url}&callbackUrl=https%3A%2F%2Fevil.example%2F");
    let res = use_link(&browser, &doctored, &[]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/workspaces?from=mail")
    );
    assert_eq!(
        browser.session().await["user"]["email"],
        "Newcomer@Example.com"
    );
    let (verified, password): (bool, Option<String>) = sqlx::query_as(
        "SELECT email_verified_at IS NOT NULL, password_hash FROM users WHERE email_key = 'newcomer@example.com'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(verified);
    assert_eq!(password, None);

    // Single use.
    let again = app.browser();
    assert_eq!(again.follow(&url).await.status(), 400);
    assert_eq!(again.session().await, json!({}));

    // The sign-in page's answer is the same for an unknown, a known and a malformed-but-valid
    // address alike; a bad csrfToken signs nothing in and mails nothing.
    sink.clear().await;
    let res = browser
        .post_form(
            "/api/auth/signin/email",
            &[
                ("email", "x@example.com"),
                ("csrfToken", "nope"),
                ("json", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.messages().await.is_empty());
}

#[tokio::test]
async fn a_sign_in_link_to_an_unverified_account_removes_the_password_someone_else_set() {
    let (app, sink) = mailing(links_on).await;
    // Someone registers an address that is not theirs, with a password they know.
    let squatter = app
        .registered("victim@example.com", PASSWORD, "Squatter")
        .await;
    mail_to(&sink, "victim@example.com", "Confirm").await;

    let owner = app.browser();
    let csrf = owner.csrf_token().await;
    let res = owner
        .post_form(
            "/api/auth/signin/email",
            &[
                ("email", "victim@example.com"),
                ("csrfToken", &csrf),
                ("json", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let url = link(
        &mail_to(&sink, "victim@example.com", "sign-in link").await,
        "/api/auth/callback/email",
    );
    let res = use_link(&owner, &url, &[]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(owner.session().await["user"]["id"], squatter.to_string());
    assert_eq!(app.password_hash("victim@example.com").await, None);
    let res = app
        .browser()
        .sign_in_like_next_auth("victim@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 401, "the squatter's password is gone");
}

#[tokio::test]
async fn sign_in_links_are_off_unless_configured() {
    let (app, _sink) = mailing(|_| {}).await;
    let providers: Value = app
        .browser()
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .unwrap();
    assert!(providers.get("email").is_none(), "{providers}");
    let browser = app.browser();
    let csrf = browser.csrf_token().await;
    let res = browser
        .post_form(
            "/api/auth/signin/email",
            &[("email", "a@example.com"), ("csrfToken", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = browser
        .get("/api/auth/callback/email?token=x&email=a%40example.com")
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn deleting_an_account_needs_a_fresh_sign_in_and_no_workspace_left_without_an_owner() {
    let (app, _sink) = mailing(|_| {}).await;
    let (ada, ada_id) = app.signed_in("ada@example.com").await;
    let (grace, grace_id) = app.signed_in("grace@example.com").await;
    let ws: Value = ada
        .post_json("/api/workspaces", &json!({"name": "Acme"}))
        .await
        .json()
        .await
        .unwrap();
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    // Grace joins as a member (an accepted invitation, here straight in the table).
    sqlx::query("INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1::uuid, $2, 'member')")
        .bind(&ws_id)
        .bind(grace_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO workspace_invitations (id, workspace_id, email, email_key, role, invited_by, expires_at) \
         VALUES (gen_random_uuid(), $1::uuid, 'Ada@example.com', 'ada@example.com', 'member', $2, now() + interval '1 day')",
    )
    .bind(&ws_id)
    .bind(grace_id)
    .execute(&app.db.pool)
    .await
    .unwrap();

    // A cross-site request, and one without a same-origin signal: refused.
    let res = ada
        .send(
            ada.bare(reqwest::Method::DELETE, "/api/auth/account")
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = ada
        .send(ada.bare(reqwest::Method::DELETE, "/api/auth/account"))
        .await;
    assert_eq!(res.status(), 403);

    // The only owner of Acme.
    let res = ada
        .send(ada.request(reqwest::Method::DELETE, "/api/auth/account"))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("Acme"),
        "{problem}"
    );
    assert_eq!(
        problem["workspaces"],
        json!([{"id": ws_id, "name": "Acme"}])
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);

    // Grace becomes an owner too: now Ada may go, once her sign-in is recent.
    sqlx::query("UPDATE workspace_members SET role = 'owner' WHERE user_id = $1")
        .bind(grace_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.age_sign_in(11 * 60).await;
    let res = ada
        .send(ada.request(reqwest::Method::DELETE, "/api/auth/account"))
        .await;
    assert_eq!(res.status(), 403, "a sign-in over 10 minutes old");
    let res = ada
        .post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = ada
        .send(ada.request(reqwest::Method::DELETE, "/api/auth/account"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/")})
    );
    assert_eq!(ada.session().await, json!({}));
    for (sql, left) in [
        ("SELECT count(*) FROM users", 1),
        ("SELECT count(*) FROM workspace_members", 1),
        ("SELECT count(*) FROM workspaces", 1),
        ("SELECT count(*) FROM workspace_invitations", 0),
    ] {
        assert_eq!(app.count(sql).await, left, "{sql}");
    }
    let sessions_of_ada: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
            .bind(ada_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(sessions_of_ada, 0);
    assert!(grace.session().await.get("user").is_some(), "others stay");
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 401);
}
