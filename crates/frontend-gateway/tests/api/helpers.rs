//! A gateway on port 0 against a fresh database, in front of either the real backend-api or an
//! echo upstream; a cookie-keeping browser; raw HTTP for paths no URL library would send.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use frontend_gateway::identity::password::Hasher;
use frontend_gateway::mail::SmtpUrl;
use frontend_gateway::session::Sessions;
use frontend_gateway::{Application, Settings};
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;
use test_support::TestDatabase;
use test_support::smtp::MailSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web_common::trace::Tracing;

pub const API_SECRET: &str = "integration-test api secret, long enough for HS256";
pub const SESSION_KEY: &str =
    "integration-test session key: sixty-four bytes or more are required here!";
/// Deliberately not the address tests connect to: every absolute URL must come from here.
pub const ORIGIN: &str = "http://gateway.test";
pub const PASSWORD: &str = "correct horse battery";

/// A running gateway.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The gateway's `GET /metrics` URL ([`TestApp::spawn_observed`] only).
    pub metrics: Option<String>,
    /// The backend's `GET /metrics` URL ([`TestApp::spawn_observed`] with the real backend).
    pub backend_metrics: Option<String>,
    pub db: TestDatabase,
    /// The gateway's password hasher (its load: running, waiting, started).
    pub hasher: Hasher,
    settings: Settings,
}

/// How a test watches the services: metrics on a port of their own (port 0), and spans made
/// by these tracers (the SDK's in-memory exporter).
pub struct Observed {
    pub gateway: Tracing,
    pub backend: Tracing,
}

impl Observed {
    /// Metrics only: both services' tracers off.
    pub fn metrics_only() -> Self {
        Self {
            gateway: Tracing::off(),
            backend: Tracing::off(),
        }
    }
}

/// What the gateway forwards `/api/*` to.
pub enum Upstream {
    /// A real backend-api on the same database.
    Backend,
    /// Anything else (the echo server, a closed port...).
    Url(String),
}

impl TestApp {
    /// A gateway in front of a real backend-api.
    pub async fn spawn() -> Self {
        Self::spawn_with(Upstream::Backend, |_| {}).await
    }

    /// A gateway in front of `upstream`, with `tweak` applied to its settings.
    pub async fn spawn_with(upstream: Upstream, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(TestDatabase::new().await, upstream, tweak).await
    }

    /// A gateway in front of `upstream` sending its mail to a new [`MailSink`] (polling every
    /// 500 ms, retrying after 200 ms, doubling), with `tweak` applied after that.
    pub async fn spawn_with_mail(
        upstream: Upstream,
        tweak: impl FnOnce(&mut Settings),
    ) -> (Self, MailSink) {
        Self::spawn_with_mail_on(TestDatabase::new().await, upstream, tweak).await
    }

    /// [`TestApp::spawn_with_mail`] on `db` (rows already in it are sent once it starts).
    pub async fn spawn_with_mail_on(
        db: TestDatabase,
        upstream: Upstream,
        tweak: impl FnOnce(&mut Settings),
    ) -> (Self, MailSink) {
        let sink = MailSink::start().await;
        let smtp: SmtpUrl = sink
            .smtp_url()
            .parse()
            .expect("the sink's URL is an SMTP URL");
        let app = Self::spawn_on(db, upstream, |s| {
            s.mail.smtp = Some(smtp);
            s.mail.poll_interval = Duration::from_millis(500);
            s.mail.base_backoff = Duration::from_millis(200);
            s.mail.max_backoff = Duration::from_secs(2);
            tweak(s);
        })
        .await;
        (app, sink)
    }

    /// A gateway on `db` in front of `upstream`, with `tweak` applied to its settings.
    pub async fn spawn_on(
        db: TestDatabase,
        upstream: Upstream,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_watched(db, upstream, tweak, None).await
    }

    /// A gateway (and backend, for [`Upstream::Backend`]) serving `/metrics` on ports of their
    /// own and tracing with `observed`'s tracers.
    pub async fn spawn_observed(
        upstream: Upstream,
        observed: Observed,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_watched(TestDatabase::new().await, upstream, tweak, Some(observed)).await
    }

    async fn spawn_watched(
        db: TestDatabase,
        upstream: Upstream,
        tweak: impl FnOnce(&mut Settings),
        observed: Option<Observed>,
    ) -> Self {
        // With the layer that makes spans of SQL statements (it acts on sampled traces only).
        web_common::telemetry::init(&web_common::settings::LogSettings::default(), true);
        let (gateway_tracing, backend_tracing) = match observed {
            Some(o) => (Some(o.gateway), Some(o.backend)),
            None => (None, None),
        };
        let watched = gateway_tracing.is_some();
        let mut backend_metrics = None;
        let backend_url = match upstream {
            Upstream::Url(url) => url,
            Upstream::Backend => {
                let mut settings = backend_api::Settings::from_source(&[
                    ("DATABASE_URL", "postgres://unused@localhost/unused"),
                    ("API_SECRET", API_SECRET),
                ])
                .expect("backend settings");
                settings.database.options = db.options.clone();
                settings.server.addr = "127.0.0.1:0".parse().unwrap();
                settings.database.max_connections = 3;
                if watched {
                    settings.telemetry.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
                }
                let backend = backend_api::Application::build_traced(
                    settings,
                    backend_tracing.unwrap_or_default(),
                )
                .await
                .expect("backend starts");
                backend_metrics = backend
                    .metrics_port()
                    .map(|p| format!("http://127.0.0.1:{p}/metrics"));
                let url = format!("http://127.0.0.1:{}", backend.port());
                tokio::spawn(backend.run_until_stopped());
                url
            }
        };
        let mut settings = Settings::from_source(&vec![
            (
                "DATABASE_URL".to_owned(),
                "postgres://unused@localhost/unused".to_owned(),
            ),
            ("API_SECRET".to_owned(), API_SECRET.to_owned()),
            ("SESSION_KEY".to_owned(), SESSION_KEY.to_owned()),
            ("PUBLIC_ORIGIN".to_owned(), ORIGIN.to_owned()),
            ("BACKEND_API_URL".to_owned(), backend_url),
            ("GATEWAY_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("DATABASE_MAX_CONNECTIONS".to_owned(), "3".to_owned()),
        ])
        .expect("gateway settings");
        settings.database.options = db.options.clone();
        // Every test registers from 127.0.0.1: the per-client mail limit stays out of the way
        // (`email_flows` checks it with its own setting).
        settings.sign_in.mail_limits.ip_attempts = 0;
        if watched {
            settings.telemetry.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        }
        tweak(&mut settings);
        let app = Application::build_traced(settings.clone(), gateway_tracing.unwrap_or_default())
            .await
            .expect("gateway starts");
        let port = app.port();
        let hasher = app.hasher().clone();
        let metrics = app
            .metrics_port()
            .map(|p| format!("http://127.0.0.1:{p}/metrics"));
        tokio::spawn(app.run_until_stopped());
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            metrics,
            backend_metrics,
            db,
            hasher,
            settings,
        }
    }

    /// A gateway in front of a real backend-api whose sign-in methods are configured by `vars`
    /// (`OIDC_*`, `GITHUB_*`, `AUTH_*`), read the way the gateway reads them.
    pub async fn spawn_with_auth(vars: &[(&str, &str)]) -> Self {
        Self::spawn_with_auth_before(Upstream::Backend, vars).await
    }

    /// [`TestApp::spawn_with_auth`] in front of `upstream`.
    pub async fn spawn_with_auth_before(upstream: Upstream, vars: &[(&str, &str)]) -> Self {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let auth = frontend_gateway::identity::provider_config::auth(
            &vars,
            web_common::env::AppEnv::Development,
        )
        .expect("auth settings");
        // Every test's flows come from 127.0.0.1: the per-IP sign-in limit stays out of the way
        // (`oidc::provider_sign_ins_count_against_the_clients_attempts` checks it).
        Self::spawn_with(upstream, |s| {
            s.auth = auth;
            s.sign_in.limits.ip_attempts = 0;
        })
        .await
    }

    /// Another gateway instance on this one's database, with this one's settings; returns its
    /// address.
    pub async fn second_instance(&self) -> String {
        let app = Application::build(self.settings.clone())
            .await
            .expect("second gateway starts");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        format!("http://127.0.0.1:{port}")
    }

    /// The session wing on this gateway's database, configured like the gateway.
    pub fn sessions(&self) -> Sessions {
        Sessions::new(
            self.db.pool.clone(),
            self.settings.session.clone(),
            self.settings.app_env.is_production(),
        )
    }

    /// A fresh browser (no cookies).
    pub fn browser(&self) -> Browser {
        Browser {
            base: self.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    /// A browser with a registered, verified, signed-in user; returns it and the user's id.
    pub async fn signed_in(&self, email: &str) -> (Browser, uuid::Uuid) {
        let id = self.registered(email, PASSWORD, "Test User").await;
        self.verify(id).await;
        let browser = self.browser();
        let res = browser
            .post_json(
                "/api/auth/signin",
                &serde_json::json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(res.status(), 200, "a verified user signs in");
        (browser, id)
    }

    /// Registers `email` through `POST /api/auth/register` (asserting its 202) and waits for
    /// the account it creates after answering; returns its id. The address is unverified.
    pub async fn registered(&self, email: &str, password: &str, name: &str) -> uuid::Uuid {
        let res = self.browser().register(email, password, name).await;
        assert_eq!(res.status(), 202, "registration is accepted");
        self.user_id(email).await
    }

    /// The id of the user whose email has the key of `email`, once it exists (a registration
    /// creates it just after answering); panics after 10 seconds.
    pub async fn user_id(&self, email: &str) -> uuid::Uuid {
        let key = web_common::email::key(email);
        for _ in 0..200 {
            let id: Option<uuid::Uuid> =
                sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1")
                    .bind(&key)
                    .fetch_optional(&self.db.pool)
                    .await
                    .unwrap();
            if let Some(id) = id {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no user {email} after 10 s");
    }

    /// Marks `user`'s address verified, as using their verification link does (the suites of
    /// the mailed links follow the real link; everyone else starts verified).
    pub async fn verify(&self, user: uuid::Uuid) {
        sqlx::query("UPDATE users SET email_verified_at = now() WHERE id = $1")
            .bind(user)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Sends a bodiless request for `path` as raw bytes (no URL library normalising it);
    /// returns the status code and the body.
    pub async fn raw(&self, method: &str, path: &str) -> (u16, String) {
        self.raw_bytes(&format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    /// Sends `request` as it is; returns the status code and the body.
    pub async fn raw_bytes(&self, request: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("the gateway answers")
            .unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// How many session rows exist.
    pub async fn session_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// A client that keeps cookies like a browser (by name; enough for one origin).
pub struct Browser {
    base: String,
    pub client: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    /// The same browser (its cookies copied) talking to another gateway instance at `address`.
    pub fn at(&self, address: &str) -> Browser {
        Browser {
            base: address.to_owned(),
            client: self.client.clone(),
            jar: Mutex::new(self.jar.lock().unwrap().clone()),
        }
    }

    /// The current value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    /// Sets cookie `name` (to replay a stolen one, say).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    /// A request to `path` carrying the jar's cookies and, like every current browser on a
    /// same-origin `fetch`, `Sec-Fetch-Site: same-origin`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.bare(method, path)
            .header("sec-fetch-site", "same-origin")
    }

    /// A request to `path` carrying the jar's cookies and nothing else (curl with a cookie
    /// jar, or a forged cross-site request once headers are added).
    pub fn bare(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let builder = self.client.request(method, format!("{}{path}", self.base));
        if cookies.is_empty() {
            builder
        } else {
            builder.header("cookie", cookies)
        }
    }

    /// Sends `request` and keeps the cookies it sets.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let res = request.send().await.expect("request sent");
        self.keep_cookies(res.headers());
        res
    }

    fn keep_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let first = value.split(';').next().unwrap();
            let (name, val) = first.split_once('=').unwrap();
            let expired = value.to_ascii_lowercase().contains("max-age=0");
            if expired || val.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), val.trim().to_owned());
            }
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.request(reqwest::Method::POST, path).form(form))
            .await
    }

    /// `GET /api/auth/csrf`'s token.
    pub async fn csrf_token(&self) -> String {
        let body: Value = self.get("/api/auth/csrf").await.json().await.unwrap();
        body["csrfToken"].as_str().unwrap().to_owned()
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/register",
            &serde_json::json!({ "email": email, "password": password, "name": name }),
        )
        .await
    }

    /// Signs in the way next-auth's client does: a form with `json=true` and the CSRF token.
    pub async fn sign_in_like_next_auth(&self, email: &str, password: &str) -> reqwest::Response {
        let token = self.csrf_token().await;
        self.post_form(
            "/api/auth/callback/credentials",
            &[
                ("email", email),
                ("password", password),
                ("csrfToken", &token),
                ("callbackUrl", "/workspaces"),
                ("json", "true"),
            ],
        )
        .await
    }

    pub async fn sign_out(&self) -> reqwest::Response {
        let token = self.csrf_token().await;
        self.post_form(
            "/api/auth/signout",
            &[("csrfToken", &token), ("json", "true")],
        )
        .await
    }

    /// `GET` of an absolute URL on the gateway's origin ([`ORIGIN`]): its path and query sent
    /// to this gateway, as a browser following a redirect there would.
    pub async fn follow(&self, url: &str) -> reqwest::Response {
        let path = url
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("{url} is not on the gateway's origin {ORIGIN}"));
        self.get(path).await
    }

    /// Starts a sign-in with identity provider `id` like next-auth's `signIn(id)` (a form with
    /// the CSRF token and `json=true`, plus `extra`); the answer.
    pub async fn start_sign_in(&self, id: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut form = vec![
            ("csrfToken", token.as_str()),
            ("callbackUrl", "/workspaces"),
            ("json", "true"),
        ];
        form.extend_from_slice(extra);
        self.post_form(&format!("/api/auth/signin/{id}"), &form)
            .await
    }

    /// [`Browser::start_sign_in`]'s authorization URL (asserting a 200 `{url}`).
    pub async fn authorization_url(&self, id: &str, extra: &[(&str, &str)]) -> String {
        let res = self.start_sign_in(id, extra).await;
        assert_eq!(res.status(), 200, "sign-in with {id} starts");
        let body: Value = res.json().await.unwrap();
        body["url"].as_str().unwrap().to_owned()
    }

    /// `GET /api/auth/session` as JSON.
    pub async fn session(&self) -> Value {
        self.get("/api/auth/session").await.json().await.unwrap()
    }
}

impl TestApp {
    /// The single number `sql` (a `SELECT count(*) ...`) answers on this gateway's database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Makes every session in `app` signed in `secs` seconds ago, past the session cache.
    pub async fn age_sign_in(&self, secs: i64) {
        let states: Vec<(Vec<u8>, Value)> = sqlx::query_as("SELECT key_hash, state FROM sessions")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        for (key, mut state) in states {
            let mut user: Value = serde_json::from_str(state["user"].as_str().unwrap()).unwrap();
            user["signed_in_at"] = (user["signed_in_at"].as_i64().unwrap() - secs).into();
            state["user"] = user.to_string().into();
            sqlx::query("UPDATE sessions SET state = $2 WHERE key_hash = $1")
                .bind(key)
                .bind(state)
                .execute(&self.db.pool)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    /// The password hash of the user whose email is `email` (`None`: no password).
    pub async fn password_hash(&self, email: &str) -> Option<String> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// The `Location` a provider's authorization endpoint (approving at once, like the test peers)
/// redirects to when `url` is opened: the callback URL the browser would follow.
pub async fn provider_redirect(url: &str) -> String {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url} answers: {e}"));
    assert_eq!(res.status(), 302, "{url} redirects back");
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The `Location` header of `res`.
pub fn location_of(res: &reqwest::Response) -> &str {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("a Location (status {})", res.status()))
}

/// The next-auth error page URL a failed sign-in with `provider` is sent to.
pub fn provider_error_url(code: &str, provider: &str) -> String {
    format!("{ORIGIN}/api/auth/error?error={code}&provider={provider}")
}

/// Query parameter `name` of the absolute `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
