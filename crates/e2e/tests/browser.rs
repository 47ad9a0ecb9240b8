//! The web app in a real browser: headless Chromium, driven through chromedriver (WebDriver),
//! against the real gateway and backend started in-process on a fresh database.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`);
//! `CHROMIUM` and `CHROMEDRIVER` override their paths. On failure a screenshot is written to
//! `target/e2e-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use test_support::TestDatabase;
use test_support::oidc_provider::{AccountConfig, ClientConfig, OidcProvider, ProviderConfig};
use test_support::smtp::MailSink;

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const API_SECRET: &str = "e2e-api-secret-0123456789-0123456789-abcdef";
const SESSION_KEY: &str =
    "e2e-session-key-0123456789-0123456789-0123456789-0123456789-0123456789-abcdef";
const PASSWORD: &str = "correct horse battery staple";
const OIDC_CLIENT_ID: &str = "gateway";
const OIDC_CLIENT_SECRET: &str = "e2e-oidc-client-secret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// backend-api and frontend-gateway on a fresh database, the gateway on `port` (so that its
/// origin, `http://127.0.0.1:<port>`, can be registered somewhere before it starts) with
/// `extra` gateway settings; returns the gateway's origin.
async fn start_stack_on(db: &TestDatabase, port: u16, extra: &[(&str, &str)]) -> String {
    let backend = backend_api::Settings::from_source(&settings(&[
        ("DATABASE_URL", &db.url),
        ("API_SECRET", API_SECRET),
        ("BACKEND_API_ADDR", "127.0.0.1:0"),
    ]))
    .expect("backend settings");
    let backend = backend_api::Application::build(backend)
        .await
        .expect("backend starts");
    let backend_url = format!("http://127.0.0.1:{}", backend.port());
    tokio::spawn(backend.run_until_stopped());

    let origin = format!("http://127.0.0.1:{port}");
    let mut gateway = settings(&[
        ("DATABASE_URL", &db.url),
        ("API_SECRET", API_SECRET),
        ("SESSION_KEY", SESSION_KEY),
        ("GATEWAY_ADDR", &format!("127.0.0.1:{port}")),
        ("BACKEND_API_URL", &backend_url),
        ("PUBLIC_ORIGIN", &origin),
    ]);
    gateway.extend(settings(extra));
    let gateway = frontend_gateway::Settings::from_source(&gateway).expect("gateway settings");
    let gateway = frontend_gateway::Application::build(gateway)
        .await
        .expect("gateway starts");
    tokio::spawn(gateway.run_until_stopped());
    origin
}

/// A chromedriver process, killed on drop, and Chromium's profile folder, removed then.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn which(var: &str, candidates: &[&str]) -> String {
    if let Ok(path) = std::env::var(var) {
        return path;
    }
    candidates
        .iter()
        .find(|c| std::path::Path::new(c).exists())
        .map(|c| (*c).to_owned())
        .unwrap_or_else(|| {
            panic!(
                "{var}: none of {candidates:?} exists. Install Chromium and its driver \
                 (Debian: apt-get install chromium chromium-driver) or set {var}."
            )
        })
}

async fn browser() -> (Driver, Client) {
    let chromedriver = which(
        "CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/local/bin/chromedriver"],
    );
    let chromium = which(
        "CHROMIUM",
        &[
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ],
    );
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!("e2e-chromium-{}-{port}", std::process::id()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profile: profile.clone(),
    };

    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let caps = caps.as_object().cloned().unwrap_or_default();
    // Both of rustls's crypto back ends are compiled into this test binary (fantoccini brings
    // aws-lc-rs, the gateway ring), so rustls cannot pick one by itself: choose before use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connect = ClientBuilder::rustls()
            .expect("tls roots")
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await;
        match connect {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() > deadline => panic!("cannot start a browser session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until the page's path (and query, when `with_query`) is `expected`.
async fn wait_for_path(client: &Client, expected: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await?;
        let got = match url.query() {
            Some(q) if expected.contains('?') => format!("{}?{q}", url.path()),
            _ => url.path().to_owned(),
        };
        if got == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("expected to be at {expected}, still at {url}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's whole URL starts with `prefix` (a page on another origin, say).
async fn wait_for_url(client: &Client, prefix: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await?;
        if url.as_str().starts_with(prefix) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("expected to be at {prefix}..., still at {url}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ready(client: &Client) -> Result {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("body[data-ready=true]"))
        .await?;
    Ok(())
}

async fn fill(client: &Client, css: &str, text: &str) -> Result {
    let field = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

async fn click(client: &Client, css: &str) -> Result {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await?;
    Ok(())
}

async fn text_of(client: &Client, css: &str) -> Result<String> {
    Ok(client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await?
        .text()
        .await?)
}

/// Waits until `css` exists and its text is `expected`.
async fn wait_for_text(client: &Client, css: &str, expected: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(el) = client.find(Locator::Css(css)).await
            && el.text().await.is_ok_and(|t| t.trim() == expected)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{css} never read {expected:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("e2e-screenshots")
}

/// With `E2E_SCREENSHOTS=1`, saves a screenshot of the current page (for reviewing the UI).
async fn snap(client: &Client, name: &str) -> Result {
    if std::env::var_os("E2E_SCREENSHOTS").is_some() {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), client.screenshot().await?)?;
    }
    Ok(())
}

/// Runs a scenario; on failure saves a screenshot and the page source, then fails the test.
async fn run(name: &str, client: Client, scenario: impl AsyncFnOnce(&Client) -> Result) {
    let outcome = scenario(&client).await;
    if let Err(e) = outcome {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
        if let Ok(html) = client.source().await {
            let _ = std::fs::write(dir.join(format!("{name}.html")), html);
        }
        let _ = client.close().await;
        panic!("{name} failed: {e} (screenshot in {})", dir.display());
    }
    let _ = client.close().await;
}

/// The link under `path` (on `origin`) of the newest mail to `recipient` whose subject has
/// `subject`, waiting for the mail to arrive at the SMTP server.
async fn mailed_link(
    sink: &MailSink,
    origin: &str,
    recipient: &str,
    subject: &str,
    path: &str,
) -> Result<String> {
    let (to, subject_part) = (recipient.to_owned(), subject.to_owned());
    let mail = sink
        .wait_for(
            move |m| m.to.iter().any(|t| t == &to) && m.subject.contains(&subject_part),
            Duration::from_secs(15),
        )
        .await;
    let prefix = format!("{origin}{path}");
    mail.links()
        .into_iter()
        .find(|l| l.starts_with(&prefix))
        .ok_or_else(|| format!("no {prefix} link in the mail to {recipient}: {}", mail.text).into())
}

/// Signs in with email and password on the sign-in page the browser is at.
async fn sign_in_with_password(client: &Client, email: &str) -> Result {
    ready(client).await?;
    fill(client, "#email", email).await?;
    fill(client, "#password", PASSWORD).await?;
    click(client, "#signin-submit").await
}

/// Registers on `/register` (the browser is anywhere): ends on "check your email", signed out.
async fn register(client: &Client, origin: &str, name: &str, email: &str) -> Result {
    client.goto(&format!("{origin}/register")).await?;
    ready(client).await?;
    fill(client, "#name", name).await?;
    fill(client, "#email", email).await?;
    fill(client, "#password", PASSWORD).await?;
    click(client, "#register-submit").await?;
    wait_for_path(client, "/verify-request?provider=credentials&type=email").await?;
    ready(client).await?;
    wait_for_text(
        client,
        "#verify-request-message",
        "We sent you a link to confirm your address. Open it, then sign in.",
    )
    .await?;
    assert_eq!(session_in_page(client).await?, json!({}));
    Ok(())
}

/// Opens the verification link mailed to `email` and confirms on its page: signed in, on the
/// workspace list.
async fn confirm_from_mail(client: &Client, sink: &MailSink, origin: &str, email: &str) -> Result {
    let link = mailed_link(
        sink,
        origin,
        email,
        "Confirm",
        "/api/auth/verify-email?token=",
    )
    .await?;
    client.goto(&link).await?;
    wait_for_text(client, "[data-testid=link-title]", "Confirm your email").await?;
    snap(client, "verify_email_page").await?;
    click(client, "[data-testid=link-submit]").await?;
    wait_for_path(client, "/workspaces").await?;
    ready(client).await?;
    wait_for_text(client, "#user-email", email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_confirms_their_email_and_invites_someone_who_joins() {
    let db = TestDatabase::new().await;
    let sink = MailSink::start().await;
    let origin = start_stack_on(&db, free_port(), &[("SMTP_URL", &sink.smtp_url())]).await;
    let (_driver, client) = browser().await;
    let pool = db.pool.clone();

    run(
        "register_confirm_create_invite_join",
        client,
        async |c: &Client| {
            // Register: "check your email", nobody signed in yet.
            register(c, &origin, "Ada Lovelace", "ada@example.com").await?;
            snap(c, "verify_request").await?;

            // Signing in first says to confirm the address, and offers to send the link again.
            c.goto(&format!("{origin}/signin")).await?;
            sign_in_with_password(c, "ada@example.com").await?;
            wait_for_text(
                c,
                "#auth-error",
                "Confirm your email first: we sent you a link. Open it, then sign in.",
            )
            .await?;
            let typed = c
                .find(Locator::Css("#resend-email"))
                .await?
                .prop("value")
                .await?;
            assert_eq!(typed.as_deref(), Some("ada@example.com"));
            snap(c, "signin_unverified").await?;
            sink.clear().await;
            click(c, "#resend-submit").await?;
            wait_for_path(c, "/verify-request?provider=credentials&type=email").await?;
            ready(c).await?;

            // The link from the mail: its page confirms the address and signs in.
            confirm_from_mail(c, &sink, &origin, "ada@example.com").await?;

            // Create a workspace and see it listed.
            fill(c, "#workspace-name", "Apollo").await?;
            click(c, "#create-workspace-submit").await?;
            let row = c
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("#workspace-list li[data-workspace-id]"))
                .await?;
            let id = row
                .attr("data-workspace-id")
                .await?
                .ok_or("row without an id")?;
            wait_for_text(
                c,
                &format!("li[data-workspace-id='{id}'] a.workspace-link"),
                "Apollo",
            )
            .await?;

            // Rename it.
            click(
                c,
                &format!("li[data-workspace-id='{id}'] [data-action=rename]"),
            )
            .await?;
            fill(
                c,
                &format!("li[data-workspace-id='{id}'] input[name=name]"),
                "Apollo 11",
            )
            .await?;
            click(
                c,
                &format!("li[data-workspace-id='{id}'] [data-action=save]"),
            )
            .await?;
            wait_for_text(
                c,
                &format!("li[data-workspace-id='{id}'] a.workspace-link"),
                "Apollo 11",
            )
            .await?;
            snap(c, "workspaces").await?;
            let stored: String =
                sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await?;
            assert_eq!(stored, "Apollo 11");

            // Invite Grace, who has no account yet: a pending invitation, listed, and mailed.
            c.goto(&format!("{origin}/workspaces/{id}")).await?;
            ready(c).await?;
            assert_eq!(text_of(c, "#workspace-title").await?.trim(), "Apollo 11");
            fill(c, "#invite-email", "grace@example.com").await?;
            c.find(Locator::Css("#invite-role"))
                .await?
                .select_by_value("member")
                .await?;
            click(c, "#invite-submit").await?;
            c.wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(
                    "#pending-list li[data-email='grace@example.com']",
                ))
                .await?;
            snap(c, "workspace").await?;
            let (role, status): (String, String) = sqlx::query_as(
                "SELECT role::text, status::text FROM workspace_invitations \
             WHERE workspace_id = $1::uuid AND email = 'grace@example.com'",
            )
            .bind(&id)
            .fetch_one(&pool)
            .await?;
            assert_eq!((role.as_str(), status.as_str()), ("member", "pending"));
            let members: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM workspace_members WHERE workspace_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(&pool)
            .await?;
            assert_eq!(members, 1, "an invitation is not a membership");
            let invitations = mailed_link(
                &sink,
                &origin,
                "grace@example.com",
                "Apollo 11",
                "/invitations",
            )
            .await?;

            // Ada signs out. Grace follows the invitation: sign-in first, where she registers.
            click(c, "#sign-out").await?;
            wait_for_path(c, "/signin").await?;
            c.goto(&invitations).await?;
            wait_for_path(c, "/signin?callbackUrl=%2Finvitations").await?;
            register(c, &origin, "Grace Hopper", "grace@example.com").await?;
            confirm_from_mail(c, &sink, &origin, "grace@example.com").await?;

            // Verified and signed in, her invitation is there to accept.
            c.goto(&invitations).await?;
            wait_for_path(c, "/invitations").await?;
            ready(c).await?;
            let invitation = format!("#invitation-list li[data-workspace-id='{id}']");
            wait_for_text(
                c,
                &format!("{invitation} .invitation-workspace"),
                "Apollo 11",
            )
            .await?;
            snap(c, "invitations").await?;
            click(c, &format!("{invitation} [data-action=accept]")).await?;
            wait_for_path(c, &format!("/workspaces/{id}")).await?;
            ready(c).await?;
            wait_for_text(c, "#workspace-title", "Apollo 11").await?;
            wait_for_text(c, "#my-role", "Member").await?;
            let role: String = sqlx::query_scalar(
                "SELECT m.role::text FROM workspace_members m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1::uuid AND u.email = 'grace@example.com'",
            )
            .bind(&id)
            .fetch_one(&pool)
            .await?;
            assert_eq!(role, "member");
            let status: String = sqlx::query_scalar(
                "SELECT status::text FROM workspace_invitations \
             WHERE workspace_id = $1::uuid AND email = 'grace@example.com'",
            )
            .bind(&id)
            .fetch_one(&pool)
            .await?;
            assert_eq!(status, "accepted");

            // Grace deletes her account (after a confirmation): signed out, and gone.
            c.goto(&format!("{origin}/account")).await?;
            ready(c).await?;
            click(c, "#delete-account").await?;
            snap(c, "delete_account").await?;
            click(c, "#confirm-delete-account").await?;
            wait_for_path(c, "/signin").await?;
            ready(c).await?;
            assert_eq!(session_in_page(c).await?, json!({}));
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'grace@example.com'")
                    .fetch_one(&pool)
                    .await?;
            assert_eq!(left, 0);

            // Signed out, the workspace page sends Ada to sign in, and back afterwards.
            c.goto(&format!("{origin}/workspaces/{id}")).await?;
            wait_for_path(c, &format!("/signin?callbackUrl=%2Fworkspaces%2F{id}")).await?;
            ready(c).await?;
            snap(c, "signin").await?;
            sign_in_with_password(c, "ada@example.com").await?;
            wait_for_path(c, &format!("/workspaces/{id}")).await?;
            ready(c).await?;
            wait_for_text(c, "#workspace-title", "Apollo 11").await?;
            c.wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("#pending-empty:not([hidden])"))
                .await?;
            Ok(())
        },
    )
    .await;
}

/// `GET /api/auth/session` from the page (its cookies, its origin).
async fn session_in_page(client: &Client) -> Result<serde_json::Value> {
    let script = "const done = arguments[arguments.length - 1];
        fetch('/api/auth/session', { credentials: 'same-origin' })
            .then((r) => r.json())
            .then(done, (e) => done({ fetchFailed: String(e) }));";
    Ok(client.execute_async(script, vec![]).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_at_the_openid_provider_creates_a_workspace_and_signs_out_of_both() {
    let db = TestDatabase::new().await;
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let idp = OidcProvider::start(ProviderConfig {
        clients: vec![ClientConfig {
            client_id: OIDC_CLIENT_ID.into(),
            client_secret: OIDC_CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{origin}/api/auth/callback/oidc")],
            post_logout_redirect_uris: vec![format!("{origin}/")],
            backchannel_logout_uri: Some(format!("{origin}/api/auth/backchannel-logout/oidc")),
        }],
        accounts: vec![AccountConfig {
            id: "ada".into(),
            email: "ada@idp.example".into(),
            email_verified: true,
            name: "Ada Lovelace".into(),
        }],
        port: None,
    })
    .await;
    let issuer = idp.issuer().to_owned();
    start_stack_on(
        &db,
        port,
        &[
            ("OIDC_ISSUER", &issuer),
            ("OIDC_CLIENT_ID", OIDC_CLIENT_ID),
            ("OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET),
            ("OIDC_NAME", "Test IdP"),
            ("OIDC_END_SESSION", "true"),
        ],
    )
    .await;
    let (_driver, client) = browser().await;
    let pool = db.pool.clone();

    run("oidc_sign_in_sign_out", client, async |c: &Client| {
        // The sign-in page offers the provider; its button leads to the provider's login page.
        c.goto(&format!("{origin}/signin")).await?;
        ready(c).await?;
        wait_for_text(c, "[data-testid=provider-oidc]", "Continue with Test IdP").await?;
        snap(c, "oidc_signin").await?;
        click(c, "[data-testid=provider-oidc]").await?;
        wait_for_url(c, &format!("{issuer}/interaction/")).await?;

        // The provider's development login page: any password will do.
        fill(c, "input[name=login]", "ada").await?;
        fill(c, "input[name=password]", "any password").await?;
        snap(c, "oidc_provider_login").await?;
        click(c, "button[type=submit]").await?;

        // Its consent page (a new interaction), then back through the callback to the app.
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("input[name=prompt][value=consent]"))
            .await?;
        wait_for_url(c, &format!("{issuer}/interaction/")).await?;
        snap(c, "oidc_provider_consent").await?;
        click(c, "button[type=submit]").await?;
        wait_for_url(c, &format!("{origin}/workspaces")).await?;
        wait_for_path(c, "/workspaces").await?;
        ready(c).await?;
        wait_for_text(c, "#user-name", "Ada Lovelace").await?;
        wait_for_text(c, "#user-email", "ada@idp.example").await?;
        wait_for_text(
            c,
            "#workspaces-status",
            "No workspaces yet. Create one above.",
        )
        .await?;
        let session = session_in_page(c).await?;
        assert_eq!(session["user"]["email"], "ada@idp.example", "{session}");
        let (user_id, subject): (String, String) = sqlx::query_as(
            "SELECT u.id::text, a.subject FROM users u JOIN accounts a ON a.user_id = u.id \
             WHERE a.provider = 'oidc' AND u.email = 'ada@idp.example' AND u.password_hash IS NULL",
        )
        .fetch_one(&pool)
        .await?;
        assert_eq!(subject, "ada");

        // The proxied API works for a provider user: a workspace they own.
        fill(c, "#workspace-name", "Analytical Engine").await?;
        click(c, "#create-workspace-submit").await?;
        let row = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#workspace-list li[data-workspace-id]"))
            .await?;
        let id = row
            .attr("data-workspace-id")
            .await?
            .ok_or("row without an id")?;
        let link = format!("li[data-workspace-id='{id}'] a.workspace-link");
        wait_for_text(c, &link, "Analytical Engine").await?;
        snap(c, "oidc_workspaces").await?;
        let role: String = sqlx::query_scalar(
            "SELECT role::text FROM workspace_members \
             WHERE workspace_id = $1::uuid AND user_id = $2::uuid",
        )
        .bind(&id)
        .bind(&user_id)
        .fetch_one(&pool)
        .await?;
        assert_eq!(role, "owner");

        // Signing out goes through the provider's logout confirmation, and back to the app.
        click(c, "#sign-out").await?;
        wait_for_url(c, &format!("{issuer}/session/end")).await?;
        snap(c, "oidc_provider_logout").await?;
        click(c, "button[name=logout][value=yes]").await?;
        wait_for_url(c, &format!("{origin}/signin")).await?;
        ready(c).await?;
        assert_eq!(session_in_page(c).await?, json!({}));
        // The provider told the gateway over the back channel before sending the browser back
        // (the session was already gone: the gateway ends its own first).
        let log = idp.log();
        assert!(
            log.contains("backchannel.success: gateway sub=ada"),
            "{log}"
        );
        let sessions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1::uuid")
                .bind(&user_id)
                .fetch_one(&pool)
                .await?;
        assert_eq!(sessions, 0);
        c.goto(&format!("{origin}/workspaces")).await?;
        wait_for_path(c, "/signin?callbackUrl=%2Fworkspaces").await?;
        ready(c).await?;

        // The provider's session ended too: signing in again asks for the login once more.
        click(c, "[data-testid=provider-oidc]").await?;
        wait_for_url(c, &format!("{issuer}/interaction/")).await?;
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("input[name=login]"))
            .await?;
        Ok(())
    })
    .await;
}
