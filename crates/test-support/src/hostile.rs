//! A small, deliberately misbehaving OpenID provider, for the ID-token failures a certified
//! provider never produces.
//!
//! It serves discovery (`/.well-known/openid-configuration`), its keys (`/jwks`), `/authorize`,
//! `/token`, `/userinfo` and, when configured, `/logout`; it generates its own signing key
//! (Ed25519 or P-256) and signs its own tokens. Left alone it is honest: the person approves at
//! once, codes are single use and bound to their redirect URI and PKCE challenge, and the ID
//! token verifies against the published key set.
//!
//! [`Hostile::twist`] arms one [`Twist`]: the next response it concerns (the authorization
//! redirect, the token endpoint, the ID token, or userinfo) does that one thing wrong, then the
//! provider is honest again. Requests that a twist does not concern leave it armed, so
//! `twist(Twist::UserinfoOtherSub)` before a sign-in hits the userinfo call, not the token.
//!
//! [`reserve_port`] and [`HostileConfig::port`] give a provider that is down when the relying
//! party starts and comes up later (or goes down with [`Hostile::stop`] and comes back).

use std::collections::HashMap;
use std::fmt;
use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::github::{Background, found, random_string, s256};
pub use crate::github::{ClientAuth, Recorded};

/// The `sub` of the ID token and userinfo unless [`Hostile::set_claims`] sets another.
pub const DEFAULT_SUB: &str = "hostile-user-1";

/// The other client that [`Twist::WrongAudience`] and [`Twist::AzpMismatch`] name.
pub const OTHER_CLIENT: &str = "hostile-other-client";

/// The issuer that [`Twist::WrongIssuer`] claims.
pub const WRONG_ISSUER: &str = "https://wrong-issuer.invalid";

/// The nonce that [`Twist::WrongNonce`] puts in the ID token.
pub const WRONG_NONCE: &str = "not-the-nonce-you-sent";

/// How long ID and access tokens live (`expires_in`, `exp - iat`).
const TOKEN_LIFETIME: u64 = 300;

/// How long a code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The key type the provider generates and publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// Ed25519 keys, `alg: EdDSA` (JWK `kty: OKP`, `crv: Ed25519`).
    #[default]
    EdDsa,
    /// P-256 keys, `alg: ES256` (JWK `kty: EC`, `crv: P-256`).
    Es256,
}

impl SigningAlg {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Es256 => "ES256",
        }
    }

    /// The jsonwebtoken algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::EdDsa => Algorithm::EdDSA,
            SigningAlg::Es256 => Algorithm::ES256,
        }
    }
}

/// How the provider is registered and what it advertises.
#[derive(Debug, Clone)]
pub struct HostileConfig {
    /// The one client it knows.
    pub client_id: String,
    /// That client's secret.
    pub client_secret: String,
    /// The port to listen on (127.0.0.1), e.g. one from [`reserve_port`]; `None`: any free one.
    pub port: Option<u16>,
    /// The keys it generates, publishes and signs with.
    pub alg: SigningAlg,
    /// Advertise `authorization_response_iss_parameter_supported` and send `iss` with every
    /// authorization response (RFC 9207).
    pub advertise_iss_parameter: bool,
    /// `token_endpoint_auth_methods_supported`; the token endpoint accepts only these
    /// (`client_secret_basic`, `client_secret_post`, `none`).
    pub auth_methods: Vec<String>,
    /// Publish `end_session_endpoint` (`/logout`, which records the request and redirects to
    /// `post_logout_redirect_uri` with `state`).
    pub end_session: bool,
}

impl HostileConfig {
    /// The defaults for a client: any port, EdDSA, no `iss` parameter, `client_secret_basic`
    /// only, no end-session endpoint. Change fields with struct update syntax.
    pub fn new(client_id: &str, client_secret: &str) -> HostileConfig {
        HostileConfig {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            port: None,
            alg: SigningAlg::EdDsa,
            advertise_iss_parameter: false,
            auth_methods: vec!["client_secret_basic".to_owned()],
            end_session: false,
        }
    }
}

/// What the next response it concerns does wrong. Each applies once, then the provider is
/// [`Twist::Honest`] again; arming another replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Twist {
    /// Nothing wrong.
    #[default]
    Honest,
    /// The ID token carries the published `kid` but is signed by a throwaway key: the
    /// signature does not verify.
    BadSignature,
    /// The ID token is signed by a new key whose `kid` the JWKS does not list yet; the JWKS
    /// starts listing it once the token is issued, and it becomes the signing key from then on
    /// (a key rotation). A relying party that re-fetches the JWKS on an unknown `kid` succeeds.
    UnknownKid,
    /// The ID token is signed by a key that is never published (the one
    /// [`Hostile::sign_with_unpublished_key`] uses): it must fail, even after a re-fetch.
    UnpublishedKey,
    /// `exp` 10 minutes ago (`iat` 15 minutes ago), beyond any sane clock leeway.
    Expired,
    /// `iat` 10 minutes ahead (`exp` 15 minutes ahead).
    IssuedInFuture,
    /// `aud` is [`OTHER_CLIENT`] alone.
    WrongAudience,
    /// `nonce` is [`WRONG_NONCE`] instead of the one the authorization request sent.
    WrongNonce,
    /// No `nonce` claim although the authorization request sent one.
    MissingNonce,
    /// `iss` is [`WRONG_ISSUER`].
    WrongIssuer,
    /// `aud` is `[our client, OTHER_CLIENT]` and `azp` is [`OTHER_CLIENT`].
    AzpMismatch,
    /// The ID token is `{"alg":"none"}`, unsigned (an empty third part).
    NoneAlg,
    /// The ID token is properly signed, but its header names a critical extension
    /// (`"crit": ["urn:example:policy"]`, RFC 7515 section 4.1.11) no relying party here knows.
    CriticalHeader,
    /// The authorization redirect carries `iss=<this>` (an RFC 9207 mix-up), whether or not
    /// the `iss` parameter is advertised.
    AuthorizationIss(String),
    /// The token endpoint waits this long, then answers honestly.
    SlowToken(Duration),
    /// The token endpoint answers `400 {"error":"invalid_grant"}` (the code stays usable).
    TokenError,
    /// Userinfo answers a `sub` other than the ID token's (`<sub>-other`).
    UserinfoOtherSub,
}

/// Which response a twist concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Honest,
    Authorization,
    TokenEndpoint,
    IdToken,
    Userinfo,
}

impl Twist {
    fn phase(&self) -> Phase {
        match self {
            Twist::Honest => Phase::Honest,
            Twist::AuthorizationIss(_) => Phase::Authorization,
            Twist::SlowToken(_) | Twist::TokenError => Phase::TokenEndpoint,
            Twist::UserinfoOtherSub => Phase::Userinfo,
            Twist::BadSignature
            | Twist::UnknownKid
            | Twist::UnpublishedKey
            | Twist::Expired
            | Twist::IssuedInFuture
            | Twist::WrongAudience
            | Twist::WrongNonce
            | Twist::MissingNonce
            | Twist::WrongIssuer
            | Twist::AzpMismatch
            | Twist::NoneAlg
            | Twist::CriticalHeader => Phase::IdToken,
        }
    }
}

/// A free port on 127.0.0.1 (bound, read and released): hand it to the relying party before
/// the provider runs, then start the provider on it with [`HostileConfig::port`].
pub fn reserve_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A running hostile provider; it stops when dropped.
#[derive(Debug)]
pub struct Hostile {
    shared: web::Data<Shared>,
    server: Background,
}

impl Hostile {
    /// Generates a key and starts serving on 127.0.0.1 (on `config.port` when given, waiting up
    /// to 5 s for a provider stopped just before to release it).
    pub async fn start(config: HostileConfig) -> Hostile {
        let listener = bind(config.port).await;
        let port = listener.local_addr().expect("a bound address").port();
        let end_session = config.end_session;
        let shared = web::Data::new(Shared(Mutex::new(State {
            issuer: format!("http://127.0.0.1:{port}"),
            published: vec![Key::generate(config.alg)],
            unpublished: Key::generate(config.alg),
            config,
            twist: Twist::Honest,
            id_token_claims: json!({}),
            userinfo_claims: json!({}),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            requests: Vec::new(),
        })));
        let data = shared.clone();
        let server = Background::start(listener, move |cfg| {
            cfg.app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/userinfo", web::get().to(userinfo))
                .route("/userinfo", web::post().to(userinfo));
            if end_session {
                cfg.route("/logout", web::get().to(logout))
                    .route("/logout", web::post().to(logout));
            }
            cfg.default_service(web::to(not_found));
        });
        Hostile { shared, server }
    }

    /// `http://127.0.0.1:<port>`, the `iss` of its honest tokens and its discovery base.
    pub fn issuer(&self) -> String {
        self.shared.lock().issuer.clone()
    }

    /// The port it listens on (to start a successor on the same one after [`Hostile::stop`]).
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Arms `twist` for the next response it concerns (see [`Twist`]).
    pub fn twist(&self, twist: Twist) {
        self.shared.lock().twist = twist;
    }

    /// Claims merged into later ID tokens (over the standard ones: a `sub` here replaces
    /// [`DEFAULT_SUB`]; a `null` removes the claim) and into what userinfo returns (over
    /// `{"sub": <the ID token's sub>}`). Both must be JSON objects.
    pub fn set_claims(&self, id_token: Value, userinfo: Value) {
        assert!(
            id_token.is_object() && userinfo.is_object(),
            "set_claims takes two JSON objects"
        );
        let mut state = self.shared.lock();
        state.id_token_claims = id_token;
        state.userinfo_claims = userinfo;
    }

    /// A JWT of `claims` signed with the current published key (header `alg`, `kid`, and `typ`
    /// when given, e.g. `logout+jwt` for a back-channel logout token).
    pub fn sign(&self, header_typ: Option<&str>, claims: Value) -> String {
        let state = self.shared.lock();
        let key = state.signing_key();
        key.sign(state.config.alg, &key.kid, header_typ, &claims)
    }

    /// A JWT of `claims` signed with a key the JWKS never lists (its own `kid`, no `typ`).
    pub fn sign_with_unpublished_key(&self, claims: Value) -> String {
        let state = self.shared.lock();
        let key = &state.unpublished;
        key.sign(state.config.alg, &key.kid, None, &claims)
    }

    /// Every request received so far, in order: for a token request, [`Recorded::client_auth`]
    /// tells Basic from post, and its form holds `code_verifier` and `redirect_uri`.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Stops serving (connections are refused from then on); dropping it does the same.
    pub fn stop(&self) {
        self.server.stop();
    }
}

/// Binds 127.0.0.1:`port` (0 when `None`); a given port may still be held for a moment by a
/// provider that was just stopped, so it is retried for up to 5 s.
async fn bind(port: Option<u16>) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port.unwrap_or(0))) {
            Ok(listener) => return listener,
            Err(e)
                if port.is_some()
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind 127.0.0.1:{}: {e}", port.unwrap_or(0)),
        }
    }
}

/// A signing key pair: the private half for jsonwebtoken, the public half as a JWK.
struct Key {
    /// The RFC 7638 thumbprint of the public key.
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Key {
    fn generate(alg: SigningAlg) -> Key {
        let rng = SystemRandom::new();
        match alg {
            SigningAlg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("an Ed25519 key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("our own key");
                let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
                // RFC 7638: the required members, in lexicographic order, without spaces.
                let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
                let jwk = json!({
                    "kty": "OKP", "crv": "Ed25519", "x": x,
                    "kid": kid, "use": "sig", "alg": "EdDSA",
                });
                Key {
                    kid,
                    encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                    jwk,
                }
            }
            SigningAlg::Es256 => {
                let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a P-256 key");
                let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("our key");
                // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
                let kid = thumbprint(&format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
                ));
                let jwk = json!({
                    "kty": "EC", "crv": "P-256", "x": x, "y": y,
                    "kid": kid, "use": "sig", "alg": "ES256",
                });
                Key {
                    kid,
                    encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
                    jwk,
                }
            }
        }
    }

    /// A JWT of `claims` signed with this key, its header naming `kid` (which need not be ours).
    fn sign(&self, alg: SigningAlg, kid: &str, typ: Option<&str>, claims: &Value) -> String {
        self.sign_with_crit(alg, kid, typ, None, claims)
    }

    /// [`Key::sign`], the header also naming the critical extensions `crit`.
    fn sign_with_crit(
        &self,
        alg: SigningAlg,
        kid: &str,
        typ: Option<&str>,
        crit: Option<Vec<String>>,
        claims: &Value,
    ) -> String {
        let mut header = Header::new(alg.algorithm());
        header.kid = Some(kid.to_owned());
        header.typ = typ.map(str::to_owned);
        header.crit = crit;
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("our own key signs")
    }
}

fn thumbprint(canonical_jwk: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical_jwk.as_bytes()))
}

/// An unsigned JWT: `{"alg":"none"}`, the claims, and an empty signature.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// Sets each member of `extra` on `target` (an object), removing those set to `null`.
fn merge(target: &mut Value, extra: &Value) {
    let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) else {
        return;
    };
    for (name, value) in extra {
        if value.is_null() {
            target.remove(name);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
}

/// The provider's state, behind one lock (no handler holds it across an `.await`).
#[derive(Debug)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, req: &HttpRequest, body: &[u8]) -> Recorded {
        let recorded = Recorded::new(req, body);
        self.lock().requests.push(recorded.clone());
        recorded
    }
}

#[derive(Debug)]
struct State {
    config: HostileConfig,
    issuer: String,
    /// What `/jwks` lists; the last one signs.
    published: Vec<Key>,
    /// A key never listed.
    unpublished: Key,
    twist: Twist,
    id_token_claims: Value,
    userinfo_claims: Value,
    codes: HashMap<String, Grant>,
    /// Access token -> the `sub` of the ID token issued with it.
    access_tokens: HashMap<String, String>,
    requests: Vec<Recorded>,
}

/// What an authorization request asked for, kept with its code.
#[derive(Debug)]
struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    /// The provider-side session (`sid`), for back-channel logout tokens.
    sid: String,
    issued: Instant,
}

impl State {
    fn signing_key(&self) -> &Key {
        self.published.last().expect("at least one published key")
    }

    /// The armed twist if it concerns `phase` (disarming it), else `None`.
    fn take_twist(&mut self, phase: Phase) -> Option<Twist> {
        (self.twist.phase() == phase).then(|| std::mem::take(&mut self.twist))
    }

    /// The token endpoint's checks: client authentication, grant type, then the code and what
    /// it is bound to (redirect URI, PKCE). `Err` is the OAuth error response.
    fn exchange(&mut self, request: &Recorded) -> Result<Value, HttpResponse> {
        self.authenticate_client(request)?;
        if request.form_field("grant_type") != Some("authorization_code") {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only authorization_code is supported",
            ));
        }
        let invalid_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
        // Single use: the code is gone whatever happens next.
        let grant = request
            .form_field("code")
            .and_then(|code| self.codes.remove(code))
            .filter(|grant| grant.issued.elapsed() < CODE_LIFETIME)
            .ok_or_else(|| invalid_grant("unknown, expired or already used code"))?;
        if request.form_field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(invalid_grant(
                "redirect_uri is not the authorization request's",
            ));
        }
        let verifier = request.form_field("code_verifier");
        match (&grant.code_challenge, verifier) {
            (None, None) => {}
            (Some(challenge), Some(verifier)) if s256(verifier) == *challenge => {}
            (Some(_), Some(_)) => return Err(invalid_grant("code_verifier does not match")),
            (Some(_), None) => return Err(invalid_grant("code_verifier missing")),
            (None, Some(_)) => {
                return Err(invalid_grant(
                    "code_verifier sent for a code without a challenge",
                ));
            }
        }
        let twist = self.take_twist(Phase::IdToken);
        let (id_token, sub) = self.id_token(&grant, twist);
        let access_token = random_string(32);
        self.access_tokens.insert(access_token.clone(), sub);
        Ok(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "id_token": id_token,
        }))
    }

    /// Client authentication by exactly one method, which must be in `auth_methods`.
    fn authenticate_client(&self, request: &Recorded) -> Result<(), HttpResponse> {
        let method = request.client_auth();
        let invalid_client = |why: &str| {
            let mut refusal = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
            if method == ClientAuth::ClientSecretBasic {
                // RFC 6749 §5.2: a 401 to Basic credentials names the scheme.
                refusal.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static(r#"Basic realm="hostile""#),
                );
            }
            refusal
        };
        if method == ClientAuth::ClientSecretBasic && request.form.contains_key("client_secret") {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one client authentication method",
            ));
        }
        if !self
            .config
            .auth_methods
            .iter()
            .any(|m| m == method.as_str())
        {
            return Err(invalid_client(&format!(
                "{} is not among token_endpoint_auth_methods_supported {:?}",
                method.as_str(),
                self.config.auth_methods
            )));
        }
        let form_id = request.form_field("client_id").map(str::to_owned);
        let (id, secret) = match method {
            ClientAuth::ClientSecretBasic => {
                let (id, secret) = request.basic_credentials().expect("Basic was detected");
                if form_id.as_ref().is_some_and(|form_id| *form_id != id) {
                    return Err(invalid_client(
                        "client_id differs from the Basic credentials",
                    ));
                }
                (Some(id), Some(secret))
            }
            ClientAuth::ClientSecretPost => (
                form_id,
                request.form_field("client_secret").map(str::to_owned),
            ),
            ClientAuth::None => (form_id, None),
        };
        let secret_holds =
            method == ClientAuth::None || secret.as_deref() == Some(&self.config.client_secret);
        if id.as_deref() != Some(&self.config.client_id) || !secret_holds {
            return Err(invalid_client("unknown client or wrong secret"));
        }
        Ok(())
    }

    /// The ID token for `grant` with `twist` applied, and its `sub`.
    fn id_token(&mut self, grant: &Grant, twist: Option<Twist>) -> (String, String) {
        let now = unix_now();
        let client_id = self.config.client_id.clone();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": DEFAULT_SUB,
            "aud": client_id,
            "exp": now + TOKEN_LIFETIME,
            "iat": now,
            "sid": grant.sid,
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        merge(&mut claims, &self.id_token_claims);
        match twist {
            Some(Twist::Expired) => {
                claims["iat"] = json!(now - 900);
                claims["exp"] = json!(now - 600);
            }
            Some(Twist::IssuedInFuture) => {
                claims["iat"] = json!(now + 600);
                claims["exp"] = json!(now + 900);
            }
            Some(Twist::WrongAudience) => claims["aud"] = json!(OTHER_CLIENT),
            Some(Twist::WrongNonce) => claims["nonce"] = json!(WRONG_NONCE),
            Some(Twist::MissingNonce) => merge(&mut claims, &json!({ "nonce": null })),
            Some(Twist::WrongIssuer) => claims["iss"] = json!(WRONG_ISSUER),
            Some(Twist::AzpMismatch) => {
                claims["aud"] = json!([client_id, OTHER_CLIENT]);
                claims["azp"] = json!(OTHER_CLIENT);
            }
            _ => {}
        }
        let sub = match &claims["sub"] {
            Value::String(sub) => sub.clone(),
            other => other.to_string(),
        };
        let alg = self.config.alg;
        let typ = Some("JWT");
        let token = match twist {
            Some(Twist::BadSignature) => {
                Key::generate(alg).sign(alg, &self.signing_key().kid, typ, &claims)
            }
            Some(Twist::UnknownKid) => {
                let key = Key::generate(alg);
                let token = key.sign(alg, &key.kid, typ, &claims);
                // Published only now that the token exists: a JWKS fetched before lacks it.
                self.published.push(key);
                token
            }
            Some(Twist::UnpublishedKey) => {
                self.unpublished
                    .sign(alg, &self.unpublished.kid, typ, &claims)
            }
            Some(Twist::NoneAlg) => unsigned(&claims),
            Some(Twist::CriticalHeader) => {
                let key = self.signing_key();
                let crit = Some(vec!["urn:example:policy".to_owned()]);
                key.sign_with_crit(alg, &key.kid, typ, crit, &claims)
            }
            _ => {
                let key = self.signing_key();
                key.sign(alg, &key.kid, typ, &claims)
            }
        };
        (token, sub)
    }
}

/// An OAuth error response (RFC 6749 §5.2), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

/// `GET /.well-known/openid-configuration`.
async fn discovery(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    shared.record(&req, &body);
    let state = shared.lock();
    let (issuer, config) = (&state.issuer, &state.config);
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "scopes_supported": ["openid", "email", "profile"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [config.alg.as_str()],
        "token_endpoint_auth_methods_supported": config.auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "sid", "email", "email_verified", "name"],
        "authorization_response_iss_parameter_supported": config.advertise_iss_parameter,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if config.end_session {
        document["end_session_endpoint"] = json!(format!("{issuer}/logout"));
    }
    HttpResponse::Ok().json(document)
}

/// `GET /jwks`: the published public keys.
async fn jwks(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    shared.record(&req, &body);
    let state = shared.lock();
    let keys: Vec<&Value> = state.published.iter().map(|key| &key.jwk).collect();
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

/// `GET /authorize`: approves at once and redirects with a code (or an error) and `state`,
/// plus `iss` when advertised or twisted.
async fn authorize(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let param = |name| recorded.query_param(name);
    let mut state = shared.lock();
    // Without a known client and a redirect URI there is nobody to send an error to.
    if param("client_id") != Some(state.config.client_id.as_str()) {
        return HttpResponse::BadRequest().body("unknown client_id");
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return HttpResponse::BadRequest().body("redirect_uri missing");
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return HttpResponse::BadRequest().body("redirect_uri is not an absolute URL");
    };
    let error = if param("response_type") != Some("code") {
        Some((
            "unsupported_response_type",
            "only response_type=code is supported",
        ))
    } else if !param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        Some(("invalid_scope", "the openid scope is required"))
    } else if param("code_challenge").is_some() && param("code_challenge_method") != Some("S256") {
        Some(("invalid_request", "code_challenge_method must be S256"))
    } else {
        None
    };
    let iss = match state.take_twist(Phase::Authorization) {
        Some(Twist::AuthorizationIss(iss)) => Some(iss),
        _ => state
            .config
            .advertise_iss_parameter
            .then(|| state.issuer.clone()),
    };
    {
        let mut pairs = target.query_pairs_mut();
        match error {
            Some((error, description)) => {
                pairs
                    .append_pair("error", error)
                    .append_pair("error_description", description);
            }
            None => {
                let code = random_string(24);
                state.codes.insert(
                    code.clone(),
                    Grant {
                        redirect_uri: redirect_uri.to_owned(),
                        nonce: param("nonce").map(str::to_owned),
                        code_challenge: param("code_challenge").map(str::to_owned),
                        sid: random_string(16),
                        issued: Instant::now(),
                    },
                );
                pairs.append_pair("code", &code);
            }
        }
        if let Some(s) = param("state") {
            pairs.append_pair("state", s);
        }
        if let Some(iss) = &iss {
            pairs.append_pair("iss", iss);
        }
    }
    found(target.as_str())
}

/// `POST /token`.
async fn token(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let twist = shared.lock().take_twist(Phase::TokenEndpoint);
    match twist {
        Some(Twist::SlowToken(delay)) => tokio::time::sleep(delay).await,
        Some(Twist::TokenError) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the hostile provider refuses this grant",
            );
        }
        _ => {}
    }
    match shared.lock().exchange(&recorded) {
        Ok(answer) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(answer),
        Err(refusal) => refusal,
    }
}

/// `GET`/`POST /userinfo` with `Authorization: Bearer <access token>`.
async fn userinfo(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let mut state = shared.lock();
    let token = recorded
        .authorization
        .as_deref()
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(sub) = token.and_then(|t| state.access_tokens.get(t)).cloned() else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#))
            .finish();
    };
    let mut claims = json!({ "sub": sub });
    merge(&mut claims, &state.userinfo_claims);
    if state.take_twist(Phase::Userinfo).is_some() {
        claims["sub"] = json!(format!("{sub}-other"));
    }
    HttpResponse::Ok().json(claims)
}

/// `GET`/`POST /logout` (RP-initiated logout): records, then redirects to
/// `post_logout_redirect_uri` with `state`, or says "signed out" when there is none.
async fn logout(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = shared.record(&req, &body);
    let param = |name| recorded.query_param(name).or(recorded.form_field(name));
    let Some(mut target) =
        param("post_logout_redirect_uri").and_then(|u| reqwest::Url::parse(u).ok())
    else {
        return HttpResponse::Ok().body("You are signed out of the hostile provider.");
    };
    if let Some(s) = param("state") {
        target.query_pairs_mut().append_pair("state", s);
    }
    found(target.as_str())
}

async fn not_found(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    shared.record(&req, &body);
    HttpResponse::NotFound().finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use base64::engine::general_purpose::STANDARD;
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, TokenData, Validation};
    use reqwest::redirect::Policy;

    const ID: &str = "hostile-client";
    const SECRET: &str = "hostile-secret";
    const CALLBACK: &str = "http://127.0.0.1:3000/api/auth/callback/hostile";
    const NONCE: &str = "nonce-1";
    const VERIFIER: &str = "a-pkce-verifier-of-at-least-forty-three-characters";

    fn config() -> HostileConfig {
        HostileConfig::new(ID, SECRET)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("a client")
    }

    async fn get_json(url: String) -> Value {
        let response = client().get(url).send().await.expect("answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    async fn jwks(h: &Hostile) -> JwkSet {
        serde_json::from_value(get_json(format!("{}/jwks", h.issuer())).await).expect("a JWKS")
    }

    /// The authorize step (with nonce, state and PKCE); the redirect's query parameters.
    async fn authorize(h: &Hostile) -> BTreeMap<String, String> {
        let response = client()
            .get(format!("{}/authorize", h.issuer()))
            .query(&[
                ("response_type", "code"),
                ("client_id", ID),
                ("redirect_uri", CALLBACK),
                ("scope", "openid email profile"),
                ("state", "st-1"),
                ("nonce", NONCE),
                ("code_challenge", &s256(VERIFIER)),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().expect("ASCII");
        let location = reqwest::Url::parse(location).expect("absolute");
        assert!(location.as_str().starts_with(CALLBACK));
        location.query_pairs().into_owned().collect()
    }

    /// A token request for `code`, authenticated by `auth`, with `fields` overriding the form.
    async fn token_request(
        h: &Hostile,
        code: &str,
        auth: ClientAuth,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = BTreeMap::from([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]);
        let mut request = client().post(format!("{}/token", h.issuer()));
        match auth {
            ClientAuth::ClientSecretBasic => {
                request = request.header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode(format!("{ID}:{SECRET}"))),
                );
            }
            ClientAuth::ClientSecretPost => {
                form.extend([("client_id", ID), ("client_secret", SECRET)]);
            }
            ClientAuth::None => {
                form.insert("client_id", ID);
            }
        }
        form.extend(fields.iter().copied());
        request.form(&form).send().await.expect("answers")
    }

    /// A whole honest sign-in up to the token response (Basic client authentication).
    async fn sign_in(h: &Hostile) -> Value {
        let code = authorize(h).await["code"].clone();
        let response = token_request(h, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    async fn id_token(h: &Hostile) -> String {
        sign_in(h).await["id_token"]
            .as_str()
            .expect("an id_token")
            .to_owned()
    }

    #[derive(Debug)]
    enum Rejected {
        UnknownKid,
        Jwt(ErrorKind),
    }

    /// Verifies like a relying party: the header's `kid` in `keys`, the configured algorithm,
    /// our audience, the provider's issuer, `exp`.
    fn verify(
        token: &str,
        keys: &JwkSet,
        alg: SigningAlg,
        issuer: &str,
    ) -> Result<TokenData<Value>, Rejected> {
        let jwt = |e: jsonwebtoken::errors::Error| Rejected::Jwt(e.into_kind());
        let header = jsonwebtoken::decode_header(token).map_err(jwt)?;
        let jwk = header
            .kid
            .and_then(|kid| keys.find(&kid))
            .ok_or(Rejected::UnknownKid)?;
        let key = DecodingKey::from_jwk(jwk).map_err(jwt)?;
        let mut validation = Validation::new(alg.algorithm());
        validation.set_audience(&[ID]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode(token, &key, &validation).map_err(jwt)
    }

    fn claims_of(token: &str) -> Value {
        let payload = token.split('.').nth(1).expect("three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims")
    }

    #[tokio::test]
    async fn discovery_and_jwks_have_the_documented_shapes() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256] {
            let h = Hostile::start(HostileConfig { alg, ..config() }).await;
            let iss = h.issuer();
            let doc = get_json(format!("{iss}/.well-known/openid-configuration")).await;
            assert_eq!(doc["issuer"], iss);
            assert_eq!(doc["authorization_endpoint"], format!("{iss}/authorize"));
            assert_eq!(doc["token_endpoint"], format!("{iss}/token"));
            assert_eq!(doc["userinfo_endpoint"], format!("{iss}/userinfo"));
            assert_eq!(doc["jwks_uri"], format!("{iss}/jwks"));
            assert_eq!(doc["response_types_supported"], json!(["code"]));
            assert_eq!(doc["subject_types_supported"], json!(["public"]));
            assert_eq!(
                doc["id_token_signing_alg_values_supported"],
                json!([alg.as_str()])
            );
            assert_eq!(
                doc["token_endpoint_auth_methods_supported"],
                json!(["client_secret_basic"])
            );
            assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(doc["authorization_response_iss_parameter_supported"], false);
            assert_eq!(doc["backchannel_logout_supported"], true);
            assert_eq!(doc["backchannel_logout_session_supported"], true);
            assert!(doc.get("end_session_endpoint").is_none());

            let keys = get_json(format!("{iss}/jwks")).await;
            let keys = keys["keys"].as_array().expect("keys");
            assert_eq!(keys.len(), 1);
            let key = &keys[0];
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], alg.as_str());
            assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
            let coordinate = |name: &str| {
                URL_SAFE_NO_PAD
                    .decode(key[name].as_str().expect("a coordinate"))
                    .expect("base64url without padding")
                    .len()
            };
            match alg {
                SigningAlg::EdDsa => {
                    assert_eq!(
                        (&key["kty"], &key["crv"]),
                        (&json!("OKP"), &json!("Ed25519"))
                    );
                    assert_eq!(coordinate("x"), 32);
                }
                SigningAlg::Es256 => {
                    assert_eq!((&key["kty"], &key["crv"]), (&json!("EC"), &json!("P-256")));
                    assert_eq!((coordinate("x"), coordinate("y")), (32, 32));
                }
            }
        }
    }

    #[tokio::test]
    async fn an_honest_sign_in_verifies_and_userinfo_agrees() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256] {
            let h = Hostile::start(HostileConfig { alg, ..config() }).await;
            h.set_claims(
                json!({"email": "eve@example.com", "email_verified": true, "name": "Eve"}),
                json!({"email": "eve@example.com", "name": "Eve"}),
            );
            let redirect = authorize(&h).await;
            assert_eq!(redirect["state"], "st-1");
            assert!(!redirect.contains_key("iss"), "iss only when advertised");
            let response =
                token_request(&h, &redirect["code"], ClientAuth::ClientSecretBasic, &[]).await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["cache-control"], "no-store");
            let answer: Value = response.json().await.expect("JSON");
            assert_eq!(answer["token_type"], "Bearer");
            assert_eq!(answer["expires_in"], 300);
            let token = answer["id_token"].as_str().expect("an id_token");

            let verified = verify(token, &jwks(&h).await, alg, &h.issuer()).expect("verifies");
            assert_eq!(verified.header.alg, alg.algorithm());
            assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
            let claims = verified.claims;
            assert_eq!(claims["sub"], DEFAULT_SUB);
            assert_eq!(claims["aud"], ID);
            assert_eq!(claims["nonce"], NONCE);
            assert_eq!(claims["email"], "eve@example.com");
            assert_eq!(claims["email_verified"], true);
            assert!(claims["sid"].is_string());
            let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
            assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(300));

            let userinfo = client()
                .get(format!("{}/userinfo", h.issuer()))
                .bearer_auth(answer["access_token"].as_str().expect("an access token"))
                .send()
                .await
                .expect("answers");
            assert_eq!(userinfo.status(), 200);
            let userinfo: Value = userinfo.json().await.expect("JSON");
            assert_eq!(
                userinfo,
                json!({"sub": DEFAULT_SUB, "email": "eve@example.com", "name": "Eve"})
            );

            let token_request = &h.requests()[1];
            assert_eq!(token_request.path, "/token");
            assert_eq!(token_request.client_auth(), ClientAuth::ClientSecretBasic);
            assert_eq!(token_request.form_field("code_verifier"), Some(VERIFIER));
            assert_eq!(token_request.form_field("redirect_uri"), Some(CALLBACK));
        }
    }

    #[tokio::test]
    async fn bad_signature_and_unpublished_key_never_verify() {
        let h = Hostile::start(config()).await;
        let published_kid = jwks(&h).await.keys[0].common.key_id.clone();

        h.twist(Twist::BadSignature);
        let token = id_token(&h).await;
        let header = jsonwebtoken::decode_header(&token).expect("a header");
        assert_eq!(header.kid, published_kid, "claims the published kid");
        let rejected = verify(&token, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer());
        assert!(
            matches!(rejected, Err(Rejected::Jwt(ErrorKind::InvalidSignature))),
            "{rejected:?}"
        );

        h.twist(Twist::UnpublishedKey);
        let token = id_token(&h).await;
        let rejected = verify(&token, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer());
        assert!(
            matches!(rejected, Err(Rejected::UnknownKid)),
            "even after a re-fetch"
        );

        let signed = h.sign_with_unpublished_key(
            json!({"sub": "x", "aud": ID, "iss": h.issuer(), "exp": unix_now() + 60}),
        );
        let rejected = verify(&signed, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer());
        assert!(matches!(rejected, Err(Rejected::UnknownKid)));

        // Each twist applied once: the next token is honest again.
        let token = id_token(&h).await;
        assert!(verify(&token, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer()).is_ok());
    }

    #[tokio::test]
    async fn an_unknown_kid_verifies_only_after_refetching_the_jwks() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256] {
            let h = Hostile::start(HostileConfig { alg, ..config() }).await;
            h.twist(Twist::UnknownKid);
            let cached = jwks(&h).await;
            let token = id_token(&h).await;
            let with_cached = verify(&token, &cached, alg, &h.issuer());
            assert!(
                matches!(with_cached, Err(Rejected::UnknownKid)),
                "{with_cached:?}"
            );

            let refreshed = jwks(&h).await;
            assert_eq!(refreshed.keys.len(), 2, "the old key stays published");
            verify(&token, &refreshed, alg, &h.issuer()).expect("verifies after a re-fetch");

            // The new key now signs honest tokens and `sign`.
            let token = id_token(&h).await;
            verify(&token, &refreshed, alg, &h.issuer()).expect("the rotated key signs");
        }
    }

    #[tokio::test]
    async fn claim_twists_break_exactly_their_claim() {
        let h = Hostile::start(config()).await;
        let alg = SigningAlg::EdDsa;
        let now = unix_now();
        let twisted = async |twist: Twist| {
            h.twist(twist);
            let token = id_token(&h).await;
            (
                verify(&token, &jwks(&h).await, alg, &h.issuer()),
                claims_of(&token),
            )
        };

        let (expired, claims) = twisted(Twist::Expired).await;
        assert!(matches!(
            expired,
            Err(Rejected::Jwt(ErrorKind::ExpiredSignature))
        ));
        assert!(claims["exp"].as_u64() < Some(now - 300));

        let (future, claims) = twisted(Twist::IssuedInFuture).await;
        assert!(
            future.is_ok(),
            "jsonwebtoken does not check iat: the RP must"
        );
        assert!(claims["iat"].as_u64() > Some(now + 300));

        let (audience, claims) = twisted(Twist::WrongAudience).await;
        assert!(matches!(
            audience,
            Err(Rejected::Jwt(ErrorKind::InvalidAudience))
        ));
        assert_eq!(claims["aud"], OTHER_CLIENT);

        let (issuer, claims) = twisted(Twist::WrongIssuer).await;
        assert!(matches!(
            issuer,
            Err(Rejected::Jwt(ErrorKind::InvalidIssuer))
        ));
        assert_eq!(claims["iss"], WRONG_ISSUER);

        let (nonce, claims) = twisted(Twist::WrongNonce).await;
        assert!(nonce.is_ok());
        assert_eq!(claims["nonce"], WRONG_NONCE);

        let (nonce, claims) = twisted(Twist::MissingNonce).await;
        assert!(nonce.is_ok());
        assert!(claims.get("nonce").is_none());

        let (azp, claims) = twisted(Twist::AzpMismatch).await;
        assert!(azp.is_ok(), "aud contains our client");
        assert_eq!(claims["aud"], json!([ID, OTHER_CLIENT]));
        assert_eq!(claims["azp"], OTHER_CLIENT);

        let (honest, claims) = twisted(Twist::Honest).await;
        assert!(honest.is_ok());
        assert_eq!(claims["nonce"], NONCE);
    }

    #[tokio::test]
    async fn none_alg_is_an_unsigned_token() {
        let h = Hostile::start(config()).await;
        h.twist(Twist::NoneAlg);
        let token = id_token(&h).await;
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "no signature");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64url"))
                .expect("JSON");
        assert_eq!(header["alg"], "none");
        assert_eq!(claims_of(&token)["sub"], DEFAULT_SUB);
        assert!(verify(&token, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer()).is_err());
    }

    #[tokio::test]
    async fn the_iss_parameter_is_sent_when_advertised_and_can_be_twisted() {
        let h = Hostile::start(HostileConfig {
            advertise_iss_parameter: true,
            ..config()
        })
        .await;
        let doc = get_json(format!("{}/.well-known/openid-configuration", h.issuer())).await;
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(authorize(&h).await["iss"], h.issuer());

        h.twist(Twist::AuthorizationIss("https://attacker.invalid".into()));
        let mixed_up = authorize(&h).await;
        assert_eq!(mixed_up["iss"], "https://attacker.invalid");
        assert!(mixed_up.contains_key("code"));
        assert_eq!(authorize(&h).await["iss"], h.issuer(), "once");

        // Not advertised: the twist still sends one.
        let quiet = Hostile::start(config()).await;
        quiet.twist(Twist::AuthorizationIss(h.issuer()));
        assert_eq!(authorize(&quiet).await["iss"], h.issuer());
    }

    #[tokio::test]
    async fn the_token_endpoint_can_be_slow_or_refuse() {
        let h = Hostile::start(config()).await;
        let delay = Duration::from_millis(400);
        h.twist(Twist::SlowToken(delay));
        let started = Instant::now();
        let slow = id_token(&h).await;
        assert!(started.elapsed() >= delay);
        assert!(verify(&slow, &jwks(&h).await, SigningAlg::EdDsa, &h.issuer()).is_ok());

        h.twist(Twist::TokenError);
        let code = authorize(&h).await["code"].clone();
        let refused = token_request(&h, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_grant");
        let again = token_request(&h, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(again.status(), 200, "the code survived the refusal");
    }

    #[tokio::test]
    async fn userinfo_can_answer_another_sub_and_wants_a_token() {
        let h = Hostile::start(config()).await;
        h.set_claims(json!({"sub": "custom-sub"}), json!({}));
        h.twist(Twist::UserinfoOtherSub);
        let answer = sign_in(&h).await;
        let token = answer["id_token"].as_str().expect("an id_token");
        assert_eq!(
            claims_of(token)["sub"],
            "custom-sub",
            "the token endpoint ignores it"
        );
        let access = answer["access_token"].as_str().expect("an access token");
        let userinfo =
            async || -> Value { get_json_with(&format!("{}/userinfo", h.issuer()), access).await };
        assert_eq!(userinfo().await["sub"], "custom-sub-other");
        assert_eq!(userinfo().await["sub"], "custom-sub", "once");

        let anonymous = client()
            .get(format!("{}/userinfo", h.issuer()))
            .bearer_auth("made-up")
            .send()
            .await
            .expect("answers");
        assert_eq!(anonymous.status(), 401);
        assert!(anonymous.headers().contains_key("www-authenticate"));
    }

    async fn get_json_with(url: &str, bearer: &str) -> Value {
        let response = client()
            .get(url)
            .bearer_auth(bearer)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    #[tokio::test]
    async fn the_token_endpoint_checks_client_auth_code_redirect_uri_and_pkce() {
        let h = Hostile::start(config()).await;
        let error_of = async |response: reqwest::Response| {
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("JSON");
            (
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
            )
        };
        let refused = |status: u16, error: &str| (status, error.to_owned());

        let code = authorize(&h).await["code"].clone();
        let post = token_request(&h, &code, ClientAuth::ClientSecretPost, &[]).await;
        assert_eq!(
            error_of(post).await,
            refused(401, "invalid_client"),
            "basic only"
        );
        let wrong_secret = client()
            .post(format!("{}/token", h.issuer()))
            .basic_auth(ID, Some("wrong"))
            .form(&[("grant_type", "authorization_code"), ("code", &code)])
            .send()
            .await
            .expect("answers");
        assert!(wrong_secret.headers().contains_key("www-authenticate"));
        assert_eq!(error_of(wrong_secret).await, refused(401, "invalid_client"));

        let code = authorize(&h).await["code"].clone();
        let wrong_verifier = token_request(
            &h,
            &code,
            ClientAuth::ClientSecretBasic,
            &[(
                "code_verifier",
                "another-verifier-of-at-least-forty-three-chars",
            )],
        )
        .await;
        assert_eq!(
            error_of(wrong_verifier).await,
            refused(400, "invalid_grant")
        );

        let code = authorize(&h).await["code"].clone();
        let elsewhere = token_request(
            &h,
            &code,
            ClientAuth::ClientSecretBasic,
            &[("redirect_uri", "http://127.0.0.1:3000/elsewhere")],
        )
        .await;
        assert_eq!(error_of(elsewhere).await, refused(400, "invalid_grant"));

        let code = authorize(&h).await["code"].clone();
        let first = token_request(&h, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(first.status(), 200);
        let replay = token_request(&h, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(
            error_of(replay).await,
            refused(400, "invalid_grant"),
            "single use"
        );

        // A provider that takes client_secret_post only.
        let post_only = Hostile::start(HostileConfig {
            auth_methods: vec!["client_secret_post".into()],
            ..config()
        })
        .await;
        let code = authorize(&post_only).await["code"].clone();
        let basic = token_request(&post_only, &code, ClientAuth::ClientSecretBasic, &[]).await;
        assert_eq!(error_of(basic).await, refused(401, "invalid_client"));
        let code = authorize(&post_only).await["code"].clone();
        let post = token_request(&post_only, &code, ClientAuth::ClientSecretPost, &[]).await;
        assert_eq!(post.status(), 200);
        let recorded = post_only.requests();
        let last = recorded.last().expect("requests");
        assert_eq!(last.client_auth(), ClientAuth::ClientSecretPost);
        assert_eq!(last.form_field("client_secret"), Some(SECRET));
    }

    #[tokio::test]
    async fn sign_uses_the_published_key_and_the_given_typ() {
        let h = Hostile::start(HostileConfig {
            alg: SigningAlg::Es256,
            ..config()
        })
        .await;
        let logout = h.sign(
            Some("logout+jwt"),
            json!({
                "iss": h.issuer(), "aud": ID, "iat": unix_now(), "jti": "j-1", "sid": "s-1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            }),
        );
        let header = jsonwebtoken::decode_header(&logout).expect("a header");
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        let keys = jwks(&h).await;
        let jwk = keys
            .find(header.kid.as_deref().expect("a kid"))
            .expect("published");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[ID]);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let decoded = jsonwebtoken::decode::<Value>(
            &logout,
            &DecodingKey::from_jwk(jwk).expect("a key"),
            &validation,
        )
        .expect("verifies");
        assert_eq!(decoded.claims["sid"], "s-1");
    }

    #[tokio::test]
    async fn a_provider_can_come_up_late_on_a_reserved_port_and_come_back_after_stop() {
        let port = reserve_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        assert!(
            client().get(&discovery).send().await.is_err(),
            "down at first"
        );

        let h = Hostile::start(HostileConfig {
            port: Some(port),
            ..config()
        })
        .await;
        assert_eq!(h.issuer(), issuer);
        assert_eq!(h.port(), port);
        assert_eq!(get_json(discovery.clone()).await["issuer"], issuer);

        h.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        while client().get(&discovery).send().await.is_ok() {
            assert!(Instant::now() < deadline, "still serving after stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let back = Hostile::start(HostileConfig {
            port: Some(port),
            ..config()
        })
        .await;
        assert_eq!(get_json(discovery).await["issuer"], back.issuer());
    }

    #[tokio::test]
    async fn the_end_session_endpoint_records_and_redirects() {
        let h = Hostile::start(HostileConfig {
            end_session: true,
            ..config()
        })
        .await;
        let doc = get_json(format!("{}/.well-known/openid-configuration", h.issuer())).await;
        assert_eq!(
            doc["end_session_endpoint"],
            format!("{}/logout", h.issuer())
        );
        let response = client()
            .get(format!("{}/logout", h.issuer()))
            .query(&[
                ("id_token_hint", "a.b.c"),
                (
                    "post_logout_redirect_uri",
                    "http://127.0.0.1:3000/signed-out",
                ),
                ("state", "bye"),
            ])
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 302);
        assert_eq!(
            response.headers()["location"],
            "http://127.0.0.1:3000/signed-out?state=bye"
        );
        assert_eq!(h.requests()[1].query_param("id_token_hint"), Some("a.b.c"));

        let without = Hostile::start(config()).await;
        let response = client()
            .get(format!("{}/logout", without.issuer()))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 404);
    }
}
