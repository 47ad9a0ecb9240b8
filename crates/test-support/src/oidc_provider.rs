//! The real OpenID Provider as a test peer, and a driver for it.
//!
//! [`OidcProvider::start`] runs `peers/oidc-provider/provider.mjs`: the OpenID-certified npm
//! package `oidc-provider` in a small Node program, configured for tests (development login and
//! consent pages, development keys, in-memory state, back-channel and RP-initiated logout, PKCE
//! required). Its npm packages are installed on first use under
//! `<target dir>/npm/oidc-provider-<first 16 hex of sha256(package-lock.json)>/` (`npm ci`, under
//! a file lock so test binaries starting together install once); `just peers` does the same.
//! The provider listens on 127.0.0.1, its issuer is `http://127.0.0.1:<port>`, and it stops when
//! the [`OidcProvider`] is dropped or the test process dies (it exits when its stdin closes).
//!
//! [`ProviderBrowser`] is one person's browser on the provider's own pages: it signs in and
//! consents, refuses, or confirms a logout, and hands back the redirect to the relying party
//! without following it.
//!
//! What a relying party sees from it: ID tokens carry `sub` (plus `sid` for clients with a
//! `backchannel_logout_uri`), not `email` or `name`; those come from userinfo, as OpenID Connect
//! Core says for claims requested by scope when an access token is issued.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Serialize;

use crate::npm;

const PACKAGE_JSON: &str = include_str!("../peers/oidc-provider/package.json");
const PACKAGE_LOCK: &str = include_str!("../peers/oidc-provider/package-lock.json");
const PROVIDER_MJS: &str = include_str!("../peers/oidc-provider/provider.mjs");

/// How long the provider may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many redirects and pages one browser action may pass through.
const MAX_HOPS: usize = 20;

/// How to configure the provider.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// The relying parties it knows.
    pub clients: Vec<ClientConfig>,
    /// The people who can sign in (by `id` on the development login page).
    pub accounts: Vec<AccountConfig>,
    /// A fixed port; `None` picks a free one.
    pub port: Option<u16>,
}

/// A registered relying party (authenticates at the token endpoint with `client_secret_basic`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientConfig {
    /// Its `client_id`.
    pub client_id: String,
    /// Its `client_secret`.
    pub client_secret: String,
    /// The `redirect_uri`s it may use (compared exactly).
    pub redirect_uris: Vec<String>,
    /// The `post_logout_redirect_uri`s it may use.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where logout tokens are POSTed when a session it took part in ends. With it, ID tokens
    /// carry `sid` and so do logout tokens (`backchannel_logout_session_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

/// A person the provider knows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountConfig {
    /// The account id: what the login page is given, and the `sub` claim.
    pub id: String,
    /// The `email` claim (scope `email`).
    pub email: String,
    /// The `email_verified` claim (scope `email`).
    pub email_verified: bool,
    /// The `name` claim (scope `profile`).
    pub name: String,
}

/// The configuration as `provider.mjs` reads it from `OIDC_PEER_CONFIG`.
#[derive(Serialize)]
struct WireConfig<'a> {
    port: u16,
    clients: &'a [ClientConfig],
    accounts: &'a [AccountConfig],
}

/// A running `oidc-provider`; dropping it stops the process.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    /// Held open: the provider exits when it closes (also when this process dies).
    _stdin: Option<ChildStdin>,
    issuer: String,
    log: Arc<Mutex<String>>,
}

impl OidcProvider {
    /// Installs the npm packages if needed, starts the provider and waits (30 s at most) for it
    /// to listen. Panics with the provider's stderr if it does not.
    pub async fn start(config: ProviderConfig) -> OidcProvider {
        let dir = tokio::task::spawn_blocking(|| {
            npm::install(
                "oidc-provider",
                PACKAGE_JSON,
                PACKAGE_LOCK,
                &[("provider.mjs", PROVIDER_MJS)],
            )
        })
        .await
        .unwrap_or_else(|e| panic!("installing oidc-provider failed: {e}"));
        let wire = WireConfig {
            port: config.port.unwrap_or(0),
            clients: &config.clients,
            accounts: &config.accounts,
        };
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env(
                "OIDC_PEER_CONFIG",
                serde_json::to_string(&wire).expect("the configuration serialises"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `node` (Node.js 20 or later must be on PATH): {e}")
            });

        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_log = log.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = stderr_log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, listening) = tokio::sync::oneshot::channel::<String>();
        let stdout_log = log.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = ready.send(first);
            }
            // Nothing else should come; keep it (and keep the pipe drained) if it does.
            for line in lines {
                let mut log = stdout_log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&format!("stdout: {line}\n"));
            }
        });

        let outcome = tokio::time::timeout(START_TIMEOUT, listening).await;
        let issuer = match &outcome {
            Ok(Ok(line)) => line.strip_prefix("listening ").map(str::to_owned),
            _ => None,
        };
        let Some(issuer) = issuer else {
            let _ = child.kill();
            let status = child.wait();
            let _ = stderr_reader.join();
            let reason = match outcome {
                Err(_) => format!("no `listening` line within {START_TIMEOUT:?}"),
                Ok(Err(_)) => format!("it exited ({status:?}) without a `listening` line"),
                Ok(Ok(line)) => format!("its first line was {line:?}, not `listening <issuer>`"),
            };
            let log = log.lock().unwrap_or_else(|e| e.into_inner());
            panic!("oidc-provider did not start: {reason}; its stderr:\n{log}");
        };
        OidcProvider {
            _stdin: child.stdin.take(),
            child,
            issuer,
            log,
        }
    }

    /// The issuer, `http://127.0.0.1:<port>` (discovery is at
    /// `<issuer>/.well-known/openid-configuration`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A new person's browser on the provider's pages (its own cookies, so its own session).
    pub fn browser(&self) -> ProviderBrowser {
        ProviderBrowser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a reqwest client"),
            issuer: Url::parse(&self.issuer).expect("the issuer is a URL"),
        }
    }

    /// Everything the provider has written to stderr so far (its warnings, errors and one line
    /// per back-channel logout delivery, `backchannel.success: ...` or `backchannel.error: ...`).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("oidc-provider {} stderr:\n{}", self.issuer, self.log());
        }
    }
}

/// One person's browser on the provider's pages: it keeps the provider's cookies and follows
/// redirects by hand, stopping at the first one that leaves the provider.
#[derive(Debug, Clone)]
pub struct ProviderBrowser {
    client: reqwest::Client,
    issuer: Url,
}

/// Where a browser action stopped.
enum Landing {
    /// A redirect away from the provider (to a relying party), not followed.
    Away(String),
    /// A page of the provider's.
    Page { url: Url, html: String },
}

impl ProviderBrowser {
    /// Follows an authorization URL (as the gateway built it) through the provider's dev login
    /// and consent pages as `account_id`; returns the final redirect back to the relying party
    /// (the `redirect_uri?code=...&state=...&iss=...` URL), without following it.
    ///
    /// When this browser has signed in before, the provider's session may skip the login page
    /// (and its grant the consent page); the session's person is then the one signed in, whatever
    /// `account_id` says. A request the provider rejects with a redirect (say
    /// `error=invalid_request` without PKCE) is returned like any other; one it rejects with an
    /// error page (an unknown client or `redirect_uri`) panics with the page's error.
    pub async fn authorize(&self, authorization_url: &str, account_id: &str) -> String {
        let mut landing = self.land(self.client.get(authorization_url)).await;
        for _ in 0..MAX_HOPS {
            let (url, html) = match landing {
                Landing::Away(redirect) => return redirect,
                Landing::Page { url, html } => (url, html),
            };
            let Some(mut form) = Form::first(&html, &url) else {
                panic!("{url} shows no form:\n{}", error_summary(&html));
            };
            match form.field("prompt") {
                Some("login") => {
                    form.fields.push(("login".into(), account_id.into()));
                    form.fields.push(("password".into(), "any password".into()));
                }
                Some("consent") => {}
                _ => panic!("{url} is neither the login nor the consent page:\n{html}"),
            }
            landing = self.land(form.submit(&self.client)).await;
        }
        panic!("signing in at {authorization_url} took more than {MAX_HOPS} pages");
    }

    /// Like [`authorize`](Self::authorize), but the person cancels on the first page the
    /// provider shows (the dev pages' "[ Cancel ]" link, on the login or the consent page);
    /// returns the redirect carrying `error=access_denied`. Panics when the provider shows no
    /// page (this browser's session and grant already cover the request): use a new browser.
    pub async fn deny(&self, authorization_url: &str) -> String {
        let (url, html) = match self.land(self.client.get(authorization_url)).await {
            Landing::Away(redirect) => panic!(
                "the provider answered {authorization_url} without showing a page to refuse \
                 on (redirected to {redirect}); deny with a new browser()"
            ),
            Landing::Page { url, html } => (url, html),
        };
        let abort = links(&html)
            .into_iter()
            .find(|href| href.ends_with("/abort"))
            .and_then(|href| url.join(&href).ok())
            .unwrap_or_else(|| panic!("{url} has no cancel link:\n{html}"));
        match self.land(self.client.get(abort)).await {
            Landing::Away(redirect) => redirect,
            Landing::Page { url, html } => {
                panic!("cancelling led to {url}, not back to the client:\n{html}")
            }
        }
    }

    /// Follows an RP-initiated logout URL (`end_session_endpoint?...`) through the provider's
    /// confirmation page, confirming ("Yes, sign me out": `logout=yes`, which ends the whole
    /// provider session); returns the final redirect (the `post_logout_redirect_uri`, with
    /// `state` when one was sent, or the provider's own success page when none was), without
    /// following it. The provider POSTs the back-channel logout tokens, to every client of the
    /// session that registered a `backchannel_logout_uri`, before it answers, so they have been
    /// delivered (or have failed: see [`OidcProvider::log`]) when this returns.
    pub async fn end_session(&self, logout_url: &str) -> String {
        let (url, html) = match self.land(self.client.get(logout_url)).await {
            Landing::Away(redirect) => {
                panic!("{logout_url} redirected to {redirect} without asking to confirm")
            }
            Landing::Page { url, html } => (url, html),
        };
        // With a session: a page whose `op.logoutForm` carries `xsrf`, confirmed by a button
        // `logout=yes`. Without one: a self-submitting form that already carries both.
        let Some(mut form) = Form::first(&html, &url).filter(|f| f.field("xsrf").is_some()) else {
            panic!(
                "{url} is not the logout confirmation:\n{}",
                error_summary(&html)
            );
        };
        if form.field("logout").is_none() {
            form.fields.push(("logout".into(), "yes".into()));
        }
        let response = form
            .submit(&self.client)
            .send()
            .await
            .unwrap_or_else(|e| panic!("confirming the logout at {url} failed: {e}"));
        match self.redirect_target(&url, &response) {
            Some(target) => target.into(),
            None => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                panic!(
                    "confirming the logout answered {status}:\n{}",
                    error_summary(&body)
                )
            }
        }
    }

    /// Sends `request` and follows redirects within the provider; stops at a redirect leaving
    /// it or at a page. Panics on an error page or status.
    async fn land(&self, mut request: RequestBuilder) -> Landing {
        for _ in 0..MAX_HOPS {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("a request to the provider failed: {e}"));
            let url = response.url().clone();
            if let Some(next) = self.redirect_target(&url, &response) {
                if next.origin() != self.issuer.origin() {
                    return Landing::Away(next.into());
                }
                request = self.client.get(next);
                continue;
            }
            let status = response.status();
            let html = response
                .text()
                .await
                .unwrap_or_else(|e| panic!("reading {url} failed: {e}"));
            if status != StatusCode::OK {
                panic!("{url} answered {status}:\n{}", error_summary(&html));
            }
            return Landing::Page { url, html };
        }
        panic!("more than {MAX_HOPS} redirects within the provider");
    }

    /// The absolute `Location` of a redirect response.
    fn redirect_target(&self, url: &Url, response: &reqwest::Response) -> Option<Url> {
        if !response.status().is_redirection() {
            return None;
        }
        let location = response.headers().get(reqwest::header::LOCATION)?;
        let location = location.to_str().expect("an ASCII Location");
        Some(
            url.join(location)
                .unwrap_or_else(|e| panic!("{url} redirected to a bad URL {location:?}: {e}")),
        )
    }
}

/// The first `<form>` of a page: its action and the inputs that carry a value.
#[derive(Debug)]
struct Form {
    action: Url,
    fields: Vec<(String, String)>,
}

impl Form {
    fn first(html: &str, base: &Url) -> Option<Form> {
        let start = html.find("<form")?;
        let rest = &html[start..];
        let end = rest.find("</form>").unwrap_or(rest.len());
        let form = &rest[..end];
        let open_tag = &form[..form.find('>')?];
        let action = base.join(&attribute(open_tag, "action")?).ok()?;
        let fields = form
            .split("<input")
            .skip(1)
            .filter_map(|input| {
                let tag = &input[..input.find('>')?];
                Some((attribute(tag, "name")?, attribute(tag, "value")?))
            })
            .collect();
        Some(Form { action, fields })
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn submit(&self, client: &reqwest::Client) -> RequestBuilder {
        client.post(self.action.clone()).form(&self.fields)
    }
}

/// The value of attribute `name="..."` in a tag's source, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let at = from + i;
        let value_start = at + needle.len();
        if tag[..at].ends_with(char::is_whitespace) {
            let value_end = value_start + tag[value_start..].find('"')?;
            return Some(unescape(&tag[value_start..value_end]));
        }
        from = value_start;
    }
    None
}

/// Every `href` on a page.
fn links(html: &str) -> Vec<String> {
    html.split("<a ")
        .skip(1)
        .filter_map(|a| attribute(&format!(" {}", &a[..a.find('>')?]), "href"))
        .collect()
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `<pre>` lines of the provider's error page (`error: ...`, `error_description: ...`), or
/// the page itself.
fn error_summary(html: &str) -> String {
    let lines: Vec<String> = html
        .split("<pre>")
        .skip(1)
        .filter_map(|pre| pre.split("</pre>").next())
        .map(|pre| unescape(&pre.replace("<strong>", "").replace("</strong>", "")))
        .collect();
    if lines.is_empty() {
        html.to_owned()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use actix_web::{App, HttpResponse, HttpServer, web};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngCore;
    use serde_json::Value;
    use sha2::{Digest, Sha256};
    use tokio::sync::mpsc;

    use super::*;

    const CLIENT_ID: &str = "gateway";
    const CLIENT_SECRET: &str = "gateway-test-secret";
    /// A port nobody listens on: the driver never follows the final redirect.
    const REDIRECT_URI: &str = "http://127.0.0.1:9/api/auth/callback/oidc";
    const POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:9/signed-out";

    fn alice() -> AccountConfig {
        AccountConfig {
            id: "alice".into(),
            email: "alice@example.com".into(),
            email_verified: true,
            name: "Alice Example".into(),
        }
    }

    async fn start(backchannel_logout_uri: Option<String>) -> OidcProvider {
        let started = Instant::now();
        let provider = OidcProvider::start(ProviderConfig {
            clients: vec![ClientConfig {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![REDIRECT_URI.into()],
                post_logout_redirect_uris: vec![POST_LOGOUT_REDIRECT_URI.into()],
                backchannel_logout_uri,
            }],
            accounts: vec![alice()],
            port: None,
        })
        .await;
        eprintln!("oidc-provider started in {:?}", started.elapsed());
        provider
    }

    async fn discovery(provider: &OidcProvider) -> Value {
        let url = format!("{}/.well-known/openid-configuration", provider.issuer());
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    fn random() -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An authorization request as a relying party makes it.
    struct Request {
        url: String,
        state: String,
        nonce: String,
        verifier: String,
    }

    fn authorization_request(discovery: &Value) -> Request {
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let url = Url::parse_with_params(
            discovery["authorization_endpoint"].as_str().unwrap(),
            [
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid email profile"),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        Request {
            url: url.into(),
            state,
            nonce,
            verifier,
        }
    }

    fn query(url: &str) -> HashMap<String, String> {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn jwt_payload(jwt: &str) -> Value {
        let payload = jwt.split('.').nth(1).expect("a compact JWT");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    /// Exchanges the code of `redirect` at the token endpoint; returns the token response.
    async fn redeem(discovery: &Value, request: &Request, redirect: &str) -> Value {
        let params = query(redirect);
        let response = reqwest::Client::new()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &request.verifier),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "token endpoint");
        response.json().await.unwrap()
    }

    /// Signs alice in with `browser`; returns the token response.
    async fn sign_in(provider: &OidcProvider, browser: &ProviderBrowser) -> Value {
        let discovery = discovery(provider).await;
        let request = authorization_request(&discovery);
        let redirect = browser.authorize(&request.url, "alice").await;
        assert!(redirect.starts_with(REDIRECT_URI), "{redirect}");
        redeem(&discovery, &request, &redirect).await
    }

    #[tokio::test]
    async fn signing_in_returns_a_code_that_redeems_for_an_id_token_and_userinfo() {
        let provider = start(None).await;
        let discovery = discovery(&provider).await;
        assert_eq!(discovery["issuer"], provider.issuer());
        let request = authorization_request(&discovery);

        let redirect = provider.browser().authorize(&request.url, "alice").await;

        assert!(
            redirect.starts_with(&format!("{REDIRECT_URI}?")),
            "{redirect}"
        );
        let params = query(&redirect);
        assert_eq!(params["state"], request.state);
        assert_eq!(params["iss"], provider.issuer());
        let tokens = redeem(&discovery, &request, &redirect).await;
        let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_token["iss"], provider.issuer());
        assert_eq!(id_token["aud"], CLIENT_ID);
        assert_eq!(id_token["nonce"], request.nonce.as_str());
        assert_eq!(id_token["sub"], "alice");
        // Scope-requested claims go to userinfo only (the ID token comes with an access token).
        assert!(id_token.get("email").is_none(), "{id_token}");
        assert!(id_token.get("sid").is_none(), "no back-channel: {id_token}");

        let userinfo: Value = reqwest::Client::new()
            .get(discovery["userinfo_endpoint"].as_str().unwrap())
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(userinfo["sub"], "alice");
        assert_eq!(userinfo["email"], "alice@example.com");
        assert_eq!(userinfo["email_verified"], true);
        assert_eq!(userinfo["name"], "Alice Example");
    }

    #[tokio::test]
    async fn a_second_sign_in_with_the_same_browser_rides_on_its_session() {
        // A back-channel client, for `sid` (the provider session) in its ID tokens.
        let provider = start(Some("http://127.0.0.1:9/backchannel-logout".into())).await;
        let browser = provider.browser();
        let first = sign_in(&provider, &browser).await;
        let second = sign_in(&provider, &browser).await;
        let (first, second) = (
            jwt_payload(first["id_token"].as_str().unwrap()),
            jwt_payload(second["id_token"].as_str().unwrap()),
        );
        eprintln!("ID token claims: {first}");
        assert_eq!(second["sub"], "alice");
        assert!(first["sid"].is_string(), "{first}");
        assert_eq!(first["sid"], second["sid"], "one provider session");
        let other = sign_in(&provider, &provider.browser()).await;
        let other = jwt_payload(other["id_token"].as_str().unwrap());
        assert_ne!(
            first["sid"], other["sid"],
            "another browser, another session"
        );
    }

    #[tokio::test]
    async fn cancelling_returns_access_denied_to_the_client() {
        let provider = start(None).await;
        let discovery = discovery(&provider).await;
        let request = authorization_request(&discovery);

        let redirect = provider.browser().deny(&request.url).await;

        assert!(
            redirect.starts_with(&format!("{REDIRECT_URI}?")),
            "{redirect}"
        );
        let params = query(&redirect);
        assert_eq!(params["error"], "access_denied");
        assert_eq!(params["state"], request.state);
        assert!(!params.contains_key("code"));
    }

    #[tokio::test]
    async fn a_request_without_pkce_is_refused() {
        let provider = start(None).await;
        let discovery = discovery(&provider).await;
        let mut url = Url::parse(&authorization_request(&discovery).url).unwrap();
        let without: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(without);

        let redirect = provider.browser().authorize(url.as_str(), "alice").await;

        assert_eq!(query(&redirect)["error"], "invalid_request", "{redirect}");
    }

    #[tokio::test]
    async fn ending_the_session_posts_a_logout_token_to_the_back_channel() {
        let (tokens_tx, mut logout_tokens) = mpsc::unbounded_channel::<String>();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let tokens_tx = tokens_tx.clone();
            App::new().route(
                "/backchannel-logout",
                web::post().to(move |form: web::Form<HashMap<String, String>>| {
                    let tokens_tx = tokens_tx.clone();
                    async move {
                        if let Some(token) = form.get("logout_token") {
                            let _ = tokens_tx.send(token.clone());
                        }
                        HttpResponse::Ok().finish()
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        let provider = start(Some(format!("http://127.0.0.1:{port}/backchannel-logout"))).await;
        let discovery = discovery(&provider).await;
        let browser = provider.browser();
        let tokens = sign_in(&provider, &browser).await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let sid = jwt_payload(id_token)["sid"].clone();
        assert!(sid.is_string(), "ID tokens carry sid with a back-channel");

        let logout_url = Url::parse_with_params(
            discovery["end_session_endpoint"].as_str().unwrap(),
            [
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
                ("state", "bye"),
            ],
        )
        .unwrap();
        let redirect = browser.end_session(logout_url.as_str()).await;

        assert_eq!(redirect, format!("{POST_LOGOUT_REDIRECT_URI}?state=bye"));
        let token = tokio::time::timeout(Duration::from_secs(5), logout_tokens.recv())
            .await
            .unwrap_or_else(|_| panic!("no logout token; provider log:\n{}", provider.log()))
            .unwrap();
        let claims = jwt_payload(&token);
        assert!(
            claims["events"]
                .get("http://schemas.openid.net/event/backchannel-logout")
                .is_some(),
            "{claims}"
        );
        assert_eq!(claims["iss"], provider.issuer());
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["sid"], sid);
        assert!(claims["jti"].is_string(), "{claims}");
        assert!(claims["iat"].is_number(), "{claims}");
        assert!(claims.get("nonce").is_none(), "{claims}");
        // The provider logs the delivery once our receiver has answered: a moment after the
        // token arrived here.
        for _ in 0..100 {
            if provider.log().contains("backchannel.success") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            provider.log().contains("backchannel.success"),
            "{}",
            provider.log()
        );

        // The provider session is over: signing in again shows the login page.
        let request = authorization_request(&discovery);
        let redirect = browser.deny(&request.url).await;
        assert_eq!(query(&redirect)["error"], "access_denied");
    }

    #[test]
    fn forms_and_links_are_read_from_the_dev_pages() {
        let base = Url::parse("http://127.0.0.1:1/interaction/x").unwrap();
        let form = Form::first(
            r#"<form id="op.logoutForm" method="post" action="/session/end/confirm?a=1&amp;b=2"><input type="hidden" name="xsrf" value="s&quot;"/></form>"#,
            &base,
        )
        .unwrap();
        assert_eq!(
            form.action.as_str(),
            "http://127.0.0.1:1/session/end/confirm?a=1&b=2"
        );
        assert_eq!(form.field("xsrf"), Some("s\""));
        assert_eq!(
            links(r#"<a href="http://h/interaction/x/abort">[ Cancel ]</a>"#),
            ["http://h/interaction/x/abort"]
        );
        assert_eq!(
            attribute(r#"<input data-name="a" name="b""#, "name"),
            Some("b".into())
        );
    }
}
