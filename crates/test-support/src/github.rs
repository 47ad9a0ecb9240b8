//! A stand-in for github.com and api.github.com: the OAuth app web flow and the two REST
//! endpoints a sign-in needs, answering in the shapes GitHub documents.
//!
//! One server plays both hosts. The web side sits at [`GitHub::url`]
//! (`/login/oauth/authorize`, `/login/oauth/access_token`) and the REST API under `/api/v3` at
//! [`GitHub::api_url`], the way GitHub Enterprise Server lays them out; a client that calls the
//! API on the web base (or the reverse) gets a 404.
//!
//! The person signing in approves at once ([`GitHub::deny_next`] makes them refuse once), and
//! is whoever [`GitHub::set_user`] named last (by default `octocat`, id 1, with one verified
//! primary address `octocat@github.com`). GitHub's rules are kept where a client can trip on
//! them:
//!
//! - the token endpoint answers its errors with **200** and an `error` field (JSON with
//!   `Accept: application/json`, form-encoded otherwise, like the success);
//! - codes are single use and expire after 10 minutes; a PKCE `code_challenge` (S256 only) binds
//!   the code to its verifier;
//! - the granted `scope` comes back comma-separated; `/user/emails` needs `user` or `user:email`
//!   and answers 404 without it (with `X-Accepted-OAuth-Scopes`);
//! - the API refuses a request without `User-Agent` (403), answers 401 "Requires
//!   authentication" without a token and "Bad credentials" with an unknown one, and takes both
//!   `Bearer <token>` and `token <token>`.
//!
//! Shapes from docs.github.com: "Authorizing OAuth apps", "Troubleshooting authorization
//! request errors", "Troubleshooting OAuth app access token request errors", REST "Get the
//! authenticated user", "List email addresses for the authenticated user", and "Getting started
//! with the REST API" (User-Agent required).
//!
//! The module also holds what the test peers share: [`Recorded`], a request as received, and
//! the runner that serves an actix-web app in the background of a `#[tokio::test]`.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{self, HeaderName};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// How long an authorization code may wait for its exchange (GitHub: 10 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// Where GitHub's token-endpoint errors point (`error_uri`, relative as GitHub sends it).
const TOKEN_ERRORS_URI: &str =
    "/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";

/// GitHub's answer to an API request without `User-Agent`.
const USER_AGENT_REQUIRED: &str = "Request forbidden by administrative rules. Please make sure \
     your request has a User-Agent header \
     (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
     Check https://developer.github.com for other possible causes.";

/// The GitHub account that signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUser {
    /// The numeric id, stable for the life of the account (what a relying party keys on).
    pub id: u64,
    /// The username, which the person may change.
    pub login: String,
    /// The display name, if the person set one.
    pub name: Option<String>,
}

/// One address of the account, as `GET /user/emails` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubEmail {
    /// The address.
    pub email: String,
    /// Whether it is the account's primary address.
    pub primary: bool,
    /// Whether GitHub has verified it.
    pub verified: bool,
}

/// A running GitHub stand-in; it stops when dropped.
#[derive(Debug)]
pub struct GitHub {
    shared: web::Data<Shared>,
    server: Background,
}

impl GitHub {
    /// Starts the stand-in on a free port of 127.0.0.1, with one registered OAuth app.
    pub async fn start(client_id: &str, client_secret: &str) -> GitHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a bound address").port();
        let web_url = format!("http://127.0.0.1:{port}");
        let shared = web::Data::new(Shared(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            api_url: format!("{web_url}/api/v3"),
            web_url,
            user: GitHubUser {
                id: 1,
                login: "octocat".into(),
                name: Some("The Octocat".into()),
            },
            emails: vec![GitHubEmail {
                email: "octocat@github.com".into(),
                primary: true,
                verified: true,
            }],
            deny_next: false,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            requests: Vec::new(),
        })));
        let data = shared.clone();
        let server = Background::start(listener, move |cfg| {
            cfg.app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .service(
                    web::scope("/api/v3")
                        .route("/user", web::get().to(api_user))
                        .route("/user/emails", web::get().to(api_emails))
                        .default_service(web::to(api_not_found)),
                )
                .default_service(web::to(web_not_found));
        });
        GitHub { shared, server }
    }

    /// The web base, like `https://github.com`: `/login/oauth/authorize` and
    /// `/login/oauth/access_token` live under it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// The REST API base, like `https://api.github.com` (here `<url>/api/v3`, as on GitHub
    /// Enterprise Server): `/user` and `/user/emails` live under it.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.url())
    }

    /// Who signs in at the next authorization, with their addresses. Codes and tokens issued
    /// before keep the account they were issued for.
    pub fn set_user(&self, user: GitHubUser, emails: Vec<GitHubEmail>) {
        let mut state = self.shared.lock();
        state.user = user;
        state.emails = emails;
    }

    /// The next authorization is refused: it redirects back with `error=access_denied`,
    /// `error_description`, `error_uri` and `state`, as when the person clicks "Cancel".
    pub fn deny_next(&self) {
        self.shared.lock().deny_next = true;
    }

    /// Every request received so far, in order (unknown paths included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }
}

/// The stand-in's state, behind one lock (no handler holds it across an `.await`).
#[derive(Debug)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take every later request down with it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request and hands back its parsed form.
    fn record(&self, req: &HttpRequest, body: &[u8]) -> Recorded {
        let recorded = Recorded::new(req, body);
        self.lock().requests.push(recorded.clone());
        recorded
    }
}

#[derive(Debug)]
struct State {
    client_id: String,
    client_secret: String,
    web_url: String,
    api_url: String,
    /// Who signs in next.
    user: GitHubUser,
    emails: Vec<GitHubEmail>,
    deny_next: bool,
    /// Outstanding authorization codes.
    codes: HashMap<String, Grant>,
    /// Issued access tokens.
    tokens: HashMap<String, Grant>,
    requests: Vec<Recorded>,
}

/// What a code (and then its access token) stands for.
#[derive(Debug, Clone)]
struct Grant {
    redirect_uri: String,
    scopes: Vec<String>,
    code_challenge: Option<String>,
    issued: Instant,
    user: GitHubUser,
    emails: Vec<GitHubEmail>,
}

/// `GET /login/oauth/authorize`: the person approves (or, after `deny_next`, refuses) at once.
async fn authorize(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let param = |name| recorded.query_param(name);
    let mut state = shared.lock();
    if param("client_id") != Some(state.client_id.as_str()) {
        // GitHub shows its 404 page for an unknown client_id; there is nobody to redirect to.
        return not_found_page();
    }
    // GitHub falls back to the app's registered callback URL; this stand-in registers none.
    let Some(redirect_uri) = param("redirect_uri") else {
        return bad_request_page("send redirect_uri: this stand-in has no registered callback");
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return bad_request_page("redirect_uri is not an absolute URL");
    };
    let challenge = param("code_challenge");
    if challenge.is_some() && param("code_challenge_method") != Some("S256") {
        return bad_request_page("code_challenge_method must be S256");
    }
    {
        let mut pairs = target.query_pairs_mut();
        if std::mem::take(&mut state.deny_next) {
            pairs
                .append_pair("error", "access_denied")
                .append_pair(
                    "error_description",
                    "The user has denied your application access.",
                )
                .append_pair(
                    "error_uri",
                    "/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
                );
        } else {
            let code = random_string(20);
            let grant = Grant {
                redirect_uri: redirect_uri.to_owned(),
                scopes: param("scope").map(split_scopes).unwrap_or_default(),
                code_challenge: challenge.map(str::to_owned),
                issued: Instant::now(),
                user: state.user.clone(),
                emails: state.emails.clone(),
            };
            state.codes.insert(code.clone(), grant);
            pairs.append_pair("code", &code);
        }
        if let Some(s) = param("state") {
            pairs.append_pair("state", s);
        }
    }
    found(target.as_str())
}

/// `POST /login/oauth/access_token`: trades a code for a token. Errors, too, answer 200.
async fn access_token(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let as_json = recorded
        .accept
        .as_deref()
        .is_some_and(|accept| accept.contains("application/json"));
    let answer = match shared.lock().exchange(&recorded) {
        Ok(answer) | Err(answer) => answer,
    };
    if as_json {
        HttpResponse::Ok().json(answer)
    } else {
        // GitHub's default format: `access_token=...&scope=...&token_type=bearer`.
        let pairs: Vec<(String, String)> = answer
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded")
            .body(form_encode(&pairs))
    }
}

impl State {
    /// The token endpoint's checks, in GitHub's order: client credentials, then the code and
    /// what it is bound to. `Err` holds GitHub's error object.
    fn exchange(&mut self, request: &Recorded) -> Result<Value, Value> {
        let (id, secret) = match request.basic_credentials() {
            Some((id, secret)) => (Some(id), Some(secret)),
            None => (
                request.form_field("client_id").map(str::to_owned),
                request.form_field("client_secret").map(str::to_owned),
            ),
        };
        if id.as_deref() != Some(self.client_id.as_str())
            || secret.as_deref() != Some(self.client_secret.as_str())
        {
            return Err(token_error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                "#incorrect-client-credentials",
            ));
        }
        let bad_code = || {
            token_error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
                "#bad-verification-code",
            )
        };
        // Single use: the code is gone whatever happens next.
        let grant = request
            .form_field("code")
            .and_then(|code| self.codes.remove(code))
            .filter(|grant| grant.issued.elapsed() < CODE_LIFETIME)
            .ok_or_else(bad_code)?;
        // GitHub makes `redirect_uri` optional here; when sent it must be the authorize one.
        if request
            .form_field("redirect_uri")
            .is_some_and(|uri| uri != grant.redirect_uri)
        {
            return Err(token_error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "#redirect-uri-mismatch",
            ));
        }
        let verifier = request.form_field("code_verifier");
        let pkce_holds = match (&grant.code_challenge, verifier) {
            (None, None) => true,
            (Some(challenge), Some(verifier)) => s256(verifier) == *challenge,
            // A verifier for a code issued without a challenge is a downgrade: refused too.
            _ => false,
        };
        if !pkce_holds {
            return Err(bad_code());
        }
        let token = format!("gho_{}", random_string(36));
        let scope = grant.scopes.join(",");
        self.tokens.insert(token.clone(), grant);
        Ok(json!({ "access_token": token, "token_type": "bearer", "scope": scope }))
    }

    /// The grant behind the request's access token, or the API's 401/403 answer.
    fn authenticate(&self, request: &Recorded) -> Result<&Grant, HttpResponse> {
        if request.user_agent.as_deref().is_none_or(str::is_empty) {
            return Err(HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body(USER_AGENT_REQUIRED));
        }
        let Some(authorization) = &request.authorization else {
            return Err(HttpResponse::Unauthorized().json(json!({
                "message": "Requires authentication",
                "documentation_url": "https://docs.github.com/rest",
            })));
        };
        let token = ["bearer ", "token "].iter().find_map(|scheme| {
            let (given, rest) = authorization.split_at_checked(scheme.len())?;
            given.eq_ignore_ascii_case(scheme).then_some(rest.trim())
        });
        token
            .and_then(|token| self.tokens.get(token))
            .ok_or_else(|| {
                HttpResponse::Unauthorized().json(json!({
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                }))
            })
    }
}

/// `GET /api/v3/user`: the authenticated user (a realistic subset of GitHub's fields; `email`
/// is the public address, null here, which is why clients ask `/user/emails`).
async fn api_user(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let state = shared.lock();
    let grant = match state.authenticate(&recorded) {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let GitHubUser { id, login, name } = &grant.user;
    let (web, api) = (&state.web_url, &state.api_url);
    let user = json!({
        "login": login,
        "id": id,
        // GitHub's legacy global node id: base64 of "04:User<id>".
        "node_id": STANDARD.encode(format!("04:User{id}")),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("{api}/users/{login}"),
        "html_url": format!("{web}/{login}"),
        "followers_url": format!("{api}/users/{login}/followers"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "type": "User",
        "site_admin": false,
        "name": name,
        "company": null,
        "blog": "",
        "location": null,
        "email": null,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2024-01-01T00:00:00Z",
    });
    api_ok(grant).json(user)
}

/// `GET /api/v3/user/emails`: the account's addresses; needs the `user` or `user:email` scope.
async fn api_emails(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let state = shared.lock();
    let grant = match state.authenticate(&recorded) {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    if !grant
        .scopes
        .iter()
        .any(|scope| scope == "user" || scope == "user:email")
    {
        // What GitHub answers for a token without the scope: a 404, not a 403.
        return HttpResponse::NotFound()
            .insert_header(("X-OAuth-Scopes", grant.scopes.join(", ")))
            .insert_header(("X-Accepted-OAuth-Scopes", "user, user:email"))
            .json(json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user",
            }));
    }
    let emails: Vec<Value> = grant
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "primary": e.primary,
                "verified": e.verified,
                // The primary address is kept private (so `/user` shows `email: null`).
                "visibility": if e.primary { Some("private") } else { None },
            })
        })
        .collect();
    api_ok(grant)
        .insert_header(("X-Accepted-OAuth-Scopes", "user, user:email"))
        .json(emails)
}

/// A 200 with the headers GitHub puts on API answers.
fn api_ok(grant: &Grant) -> actix_web::HttpResponseBuilder {
    let mut ok = HttpResponse::Ok();
    ok.insert_header(("X-OAuth-Scopes", grant.scopes.join(", ")))
        .insert_header(("X-GitHub-Media-Type", "github.v3; format=json"));
    ok
}

async fn api_not_found(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    shared.record(&req, &body);
    HttpResponse::NotFound().json(json!({
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
    }))
}

async fn web_not_found(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    shared.record(&req, &body);
    not_found_page()
}

fn not_found_page() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!DOCTYPE html><title>Page not found · GitHub</title><h1>404</h1>")
}

fn bad_request_page(why: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(why.to_owned())
}

/// GitHub's token-endpoint error object.
fn token_error(error: &str, description: &str, anchor: &str) -> Value {
    json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("{TOKEN_ERRORS_URI}{anchor}"),
    })
}

/// GitHub takes scopes separated by spaces or commas.
fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared by the test peers.
// ---------------------------------------------------------------------------------------------

/// One request as a peer received it, for assertions: what was asked, with which credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string's parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The body's fields when it is `application/x-www-form-urlencoded`, decoded.
    pub form: BTreeMap<String, String>,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

/// How a token request authenticated the client (OAuth 2.0 client authentication methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the URL-encoded id and secret (`client_secret_basic`).
    ClientSecretBasic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    ClientSecretPost,
    /// Neither: at most a `client_id` field (`none`, a public client).
    None,
}

impl ClientAuth {
    /// The method's registered name, as in `token_endpoint_auth_methods_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::None => "none",
        }
    }
}

impl Recorded {
    pub(crate) fn new(req: &HttpRequest, body: &[u8]) -> Self {
        let header = |name: HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(header::CONTENT_TYPE);
        let form = if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            form_decode(std::str::from_utf8(body).unwrap_or_default())
        } else {
            BTreeMap::new()
        };
        Recorded {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: form_decode(req.query_string()),
            form,
            authorization: header(header::AUTHORIZATION),
            accept: header(header::ACCEPT),
            user_agent: header(header::USER_AGENT),
            content_type,
        }
    }

    /// A query-string parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A form field of the body.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// The client id and secret of an `Authorization: Basic` header, each URL-decoded as
    /// RFC 6749 §2.3.1 prescribes.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        let authorization = self.authorization.as_deref()?;
        let (scheme, encoded) = authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode_one(id)?, form_decode_one(secret)?))
    }

    /// How the request authenticated the client: Basic wins over form fields (a request that
    /// sends both is still reported as Basic; the form fields are in [`Recorded::form`]).
    pub fn client_auth(&self) -> ClientAuth {
        if self.basic_credentials().is_some() {
            ClientAuth::ClientSecretBasic
        } else if self.form.contains_key("client_secret") {
            ClientAuth::ClientSecretPost
        } else {
            ClientAuth::None
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs (a query string or a form body).
fn form_decode(encoded: &str) -> BTreeMap<String, String> {
    web::Query::<Vec<(String, String)>>::from_query(encoded)
        .map(|pairs| pairs.into_inner().into_iter().collect())
        .unwrap_or_default()
}

/// Decodes one form-encoded value (`%XX` and `+`), through the same decoder as whole forms.
fn form_decode_one(encoded: &str) -> Option<String> {
    form_decode(&format!("v={encoded}")).remove("v")
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub(crate) fn form_encode(pairs: &[(String, String)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("a valid URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// `BASE64URL(SHA-256(verifier))`, the PKCE S256 challenge of a verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random alphanumeric string (codes, tokens).
pub(crate) fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A `302 Found` to `location`.
pub(crate) fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// An actix-web server with one worker, serving in the background of the current Tokio
/// runtime (a `#[tokio::test]` will do) until stopped or dropped.
#[derive(Debug)]
pub(crate) struct Background {
    handle: ServerHandle,
    /// The port it listens on (127.0.0.1).
    pub(crate) port: u16,
}

impl Background {
    /// Serves the routes that `configure` registers on `listener`.
    pub(crate) fn start<F>(listener: TcpListener, configure: F) -> Background
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let port = listener.local_addr().expect("a bound address").port();
        let server = HttpServer::new(move || App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listen on the bound socket")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Background { handle, port }
    }

    /// Stops accepting and drops open connections; the port is free again shortly after.
    pub(crate) fn stop(&self) {
        // `stop` sends its command at once; the future only waits for completion, which
        // nobody here needs (and `Drop` could not await).
        drop(self.handle.stop(false));
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use reqwest::StatusCode;
    use reqwest::redirect::Policy;

    const ID: &str = "gh-client-id";
    const SECRET: &str = "gh-client-secret";
    const CALLBACK: &str = "http://127.0.0.1:3000/api/auth/callback/github";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .user_agent("gateway-tests")
            .build()
            .expect("a client")
    }

    /// Runs the authorize step and returns the redirect's query parameters.
    async fn authorize(gh: &GitHub, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut query = BTreeMap::from([
            ("client_id", ID),
            ("redirect_uri", CALLBACK),
            ("scope", "read:user user:email"),
            ("state", "st-1"),
        ]);
        query.extend(extra.iter().copied());
        let response = client()
            .get(format!("{}/login/oauth/authorize", gh.url()))
            .query(&query)
            .send()
            .await
            .expect("authorize answers");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION.as_str()]
            .to_str()
            .expect("an ASCII location");
        let location = reqwest::Url::parse(location).expect("an absolute location");
        assert_eq!(
            location.as_str().split('?').next(),
            Some(CALLBACK),
            "redirects to the callback"
        );
        location.query_pairs().into_owned().collect()
    }

    /// Posts a token request with the form `fields` (JSON answer) and returns its JSON.
    async fn exchange(gh: &GitHub, fields: &[(&str, &str)]) -> Value {
        let response = client()
            .post(format!("{}/login/oauth/access_token", gh.url()))
            .header(header::ACCEPT.as_str(), "application/json")
            .form(fields)
            .send()
            .await
            .expect("the token endpoint answers");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GitHub answers 200, errors too"
        );
        response.json().await.expect("a JSON answer")
    }

    async fn signed_in_token(gh: &GitHub) -> String {
        let code = authorize(gh, &[]).await["code"].clone();
        let answer = exchange(
            gh,
            &[
                ("client_id", ID),
                ("client_secret", SECRET),
                ("code", &code),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await;
        answer["access_token"].as_str().expect("a token").to_owned()
    }

    async fn api_get(gh: &GitHub, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = client().get(format!("{}{path}", gh.api_url()));
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION.as_str(), authorization);
        }
        request.send().await.expect("the API answers")
    }

    #[tokio::test]
    async fn the_web_flow_yields_a_token_the_user_and_the_emails_in_githubs_shapes() {
        let gh = GitHub::start(ID, SECRET).await;
        assert_ne!(gh.url(), gh.api_url());
        gh.set_user(
            GitHubUser {
                id: 4242,
                login: "ada".into(),
                name: Some("Ada Lovelace".into()),
            },
            vec![
                GitHubEmail {
                    email: "ada@example.com".into(),
                    primary: true,
                    verified: true,
                },
                GitHubEmail {
                    email: "old@example.com".into(),
                    primary: false,
                    verified: false,
                },
            ],
        );

        let redirect = authorize(&gh, &[]).await;
        assert_eq!(redirect["state"], "st-1");
        let code = &redirect["code"];
        assert!(!code.is_empty());

        let answer = exchange(
            &gh,
            &[
                ("client_id", ID),
                ("client_secret", SECRET),
                ("code", code),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await;
        assert_eq!(answer["token_type"], "bearer");
        assert_eq!(answer["scope"], "read:user,user:email", "comma-separated");
        let token = answer["access_token"].as_str().expect("a token");
        assert!(token.starts_with("gho_"));

        let response = api_get(&gh, "/user", Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["x-oauth-scopes"],
            "read:user, user:email"
        );
        let user: Value = response.json().await.expect("JSON");
        assert_eq!(user["id"], 4242);
        assert_eq!(user["login"], "ada");
        assert_eq!(user["name"], "Ada Lovelace");
        assert_eq!(user["email"], Value::Null);
        assert_eq!(user["type"], "User");
        assert!(
            user["avatar_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://"))
        );
        assert_eq!(user["html_url"], format!("{}/ada", gh.url()));

        let response = api_get(&gh, "/user/emails", Some(&format!("token {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let emails: Value = response.json().await.expect("JSON");
        assert_eq!(
            emails,
            json!([
                {"email": "ada@example.com", "primary": true, "verified": true, "visibility": "private"},
                {"email": "old@example.com", "primary": false, "verified": false, "visibility": null},
            ])
        );

        let requests = gh.requests();
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/login/oauth/authorize",
                "/login/oauth/access_token",
                "/api/v3/user",
                "/api/v3/user/emails"
            ]
        );
        assert_eq!(
            requests[0].query_param("scope"),
            Some("read:user user:email")
        );
        assert_eq!(requests[1].client_auth(), ClientAuth::ClientSecretPost);
        assert_eq!(requests[1].accept.as_deref(), Some("application/json"));
        assert_eq!(requests[2].authorization, Some(format!("Bearer {token}")));
        assert_eq!(requests[2].user_agent.as_deref(), Some("gateway-tests"));
    }

    #[tokio::test]
    async fn basic_credentials_work_and_without_accept_json_the_answer_is_form_encoded() {
        let gh = GitHub::start(ID, "s3cr=t&+/").await;
        let code = authorize(&gh, &[]).await["code"].clone();
        // RFC 6749 §2.3.1: each part URL-encoded before the Basic encoding.
        let credentials = format!("{ID}:{}", "s3cr%3Dt%26%2B%2F");
        let response = client()
            .post(format!("{}/login/oauth/access_token", gh.url()))
            .header(
                header::AUTHORIZATION.as_str(),
                format!("Basic {}", STANDARD.encode(credentials)),
            )
            .form(&[("code", code.as_str())])
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE.as_str()],
            "application/x-www-form-urlencoded"
        );
        let answer = form_decode(&response.text().await.expect("a body"));
        assert!(answer["access_token"].starts_with("gho_"));
        assert_eq!(answer["token_type"], "bearer");
        assert_eq!(answer["scope"], "read:user,user:email");
        let recorded = &gh.requests()[1];
        assert_eq!(recorded.client_auth(), ClientAuth::ClientSecretBasic);
        assert_eq!(
            recorded.basic_credentials(),
            Some((ID.to_owned(), "s3cr=t&+/".to_owned()))
        );
    }

    #[tokio::test]
    async fn bad_exchanges_answer_200_with_githubs_error_objects() {
        let gh = GitHub::start(ID, SECRET).await;
        let code = authorize(&gh, &[]).await["code"].clone();

        let wrong_secret = exchange(
            &gh,
            &[
                ("client_id", ID),
                ("client_secret", "nope"),
                ("code", &code),
            ],
        )
        .await;
        assert_eq!(wrong_secret["error"], "incorrect_client_credentials");
        assert!(wrong_secret["error_description"].is_string());
        assert!(wrong_secret["error_uri"].is_string());

        let good = [
            ("client_id", ID),
            ("client_secret", SECRET),
            ("code", &code),
        ];
        assert!(exchange(&gh, &good).await["access_token"].is_string());
        let replayed = exchange(&gh, &good).await;
        assert_eq!(
            replayed["error"], "bad_verification_code",
            "codes are single use"
        );
        assert_eq!(
            replayed["error_description"],
            "The code passed is incorrect or expired."
        );

        let unknown = exchange(
            &gh,
            &[
                ("client_id", ID),
                ("client_secret", SECRET),
                ("code", "made-up"),
            ],
        )
        .await;
        assert_eq!(unknown["error"], "bad_verification_code");

        let code = authorize(&gh, &[]).await["code"].clone();
        let elsewhere = exchange(
            &gh,
            &[
                ("client_id", ID),
                ("client_secret", SECRET),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:3000/elsewhere"),
            ],
        )
        .await;
        assert_eq!(elsewhere["error"], "redirect_uri_mismatch");
    }

    #[tokio::test]
    async fn a_pkce_code_needs_its_own_verifier() {
        let gh = GitHub::start(ID, SECRET).await;
        let verifier = "a-verifier-of-at-least-forty-three-characters-long";
        let challenge = s256(verifier);
        let pkce = [
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let creds = [("client_id", ID), ("client_secret", SECRET)];

        for wrong in [Some("another-verifier-of-at-least-forty-three-chars"), None] {
            let code = authorize(&gh, &pkce).await["code"].clone();
            let mut fields = creds.to_vec();
            fields.push(("code", &code));
            fields.extend(wrong.map(|v| ("code_verifier", v)));
            assert_eq!(
                exchange(&gh, &fields).await["error"],
                "bad_verification_code"
            );
        }

        let code = authorize(&gh, &pkce).await["code"].clone();
        let mut fields = creds.to_vec();
        fields.extend([("code", code.as_str()), ("code_verifier", verifier)]);
        assert!(exchange(&gh, &fields).await["access_token"].is_string());
        let requests = gh.requests();
        let exchanged = requests.last().expect("the exchange was recorded");
        assert_eq!(exchanged.form_field("code_verifier"), Some(verifier));

        // A verifier for a code issued without a challenge is refused as well.
        let code = authorize(&gh, &[]).await["code"].clone();
        let mut fields = creds.to_vec();
        fields.extend([("code", code.as_str()), ("code_verifier", verifier)]);
        assert_eq!(
            exchange(&gh, &fields).await["error"],
            "bad_verification_code"
        );
    }

    #[tokio::test]
    async fn deny_next_refuses_once_with_access_denied_and_the_state() {
        let gh = GitHub::start(ID, SECRET).await;
        gh.deny_next();
        let refused = authorize(&gh, &[]).await;
        assert_eq!(refused["error"], "access_denied");
        assert_eq!(
            refused["error_description"],
            "The user has denied your application access."
        );
        assert!(refused.contains_key("error_uri"));
        assert_eq!(refused["state"], "st-1");
        assert!(!refused.contains_key("code"));

        assert!(authorize(&gh, &[]).await.contains_key("code"), "only once");
    }

    #[tokio::test]
    async fn an_unknown_client_id_gets_a_404_page() {
        let gh = GitHub::start(ID, SECRET).await;
        let response = client()
            .get(format!("{}/login/oauth/authorize", gh.url()))
            .query(&[("client_id", "someone-else"), ("redirect_uri", CALLBACK)])
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(!response.headers().contains_key(header::LOCATION.as_str()));
    }

    #[tokio::test]
    async fn the_api_wants_a_user_agent_and_a_valid_token() {
        let gh = GitHub::start(ID, SECRET).await;
        let token = signed_in_token(&gh).await;

        let anonymous_agent = reqwest::Client::new()
            .get(format!("{}/user", gh.api_url()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(anonymous_agent.status(), StatusCode::FORBIDDEN);
        assert!(
            anonymous_agent
                .text()
                .await
                .expect("a body")
                .starts_with("Request forbidden by administrative rules")
        );

        let no_token = api_get(&gh, "/user", None).await;
        assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
        let body: Value = no_token.json().await.expect("JSON");
        assert_eq!(body["message"], "Requires authentication");

        let bad_token = api_get(&gh, "/user/emails", Some("Bearer gho_nope")).await;
        assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
        let body: Value = bad_token.json().await.expect("JSON");
        assert_eq!(body["message"], "Bad credentials");
        assert!(body["documentation_url"].is_string());

        // The API lives under api_url(), not under the web base.
        let on_web_base = client()
            .get(format!("{}/user", gh.url()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(on_web_base.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_emails_need_the_user_email_scope() {
        let gh = GitHub::start(ID, SECRET).await;
        let code = authorize(&gh, &[("scope", "read:user")]).await["code"].clone();
        assert_eq!(gh.requests()[0].query_param("scope"), Some("read:user"));
        let answer = exchange(
            &gh,
            &[
                ("client_id", ID),
                ("client_secret", SECRET),
                ("code", &code),
            ],
        )
        .await;
        assert_eq!(answer["scope"], "read:user");
        let token = answer["access_token"].as_str().expect("a token");

        let user = api_get(&gh, "/user", Some(&format!("Bearer {token}"))).await;
        assert_eq!(user.status(), StatusCode::OK);
        let emails = api_get(&gh, "/user/emails", Some(&format!("Bearer {token}"))).await;
        assert_eq!(emails.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            emails.headers()["x-accepted-oauth-scopes"],
            "user, user:email"
        );
    }

    #[tokio::test]
    async fn a_token_keeps_the_user_it_was_issued_for() {
        let gh = GitHub::start(ID, SECRET).await;
        let first = signed_in_token(&gh).await;
        gh.set_user(
            GitHubUser {
                id: 7,
                login: "grace".into(),
                name: None,
            },
            vec![],
        );
        let second = signed_in_token(&gh).await;

        let login = async |token: &str| {
            let user: Value = api_get(&gh, "/user", Some(&format!("Bearer {token}")))
                .await
                .json()
                .await
                .expect("JSON");
            (user["login"].clone(), user["name"].clone())
        };
        assert_eq!(
            login(&first).await,
            (json!("octocat"), json!("The Octocat"))
        );
        assert_eq!(login(&second).await, (json!("grace"), Value::Null));
    }
}
