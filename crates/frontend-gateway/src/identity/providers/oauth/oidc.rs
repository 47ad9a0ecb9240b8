//! OpenID Connect: one provider found by discovery at its issuer.
//!
//! What is verified, and where: the discovery document's `issuer` equals the configured one
//! ([`Oidc::discover`]); an ID token's signature (a key of the provider's JWKS with the
//! token's `kid`, an asymmetric algorithm the provider publishes, never `none` or HMAC), `iss`,
//! `aud`, `exp`, `nbf`, `iat`, `nonce` and `azp` ([`Oidc::verify_id_token`]); the user info's
//! `sub` ([`Oidc::identity`]); a back-channel logout token as its spec says
//! ([`Oidc::verify_logout_token`]). An unknown `kid` re-reads the JWKS (at most every
//! [`KEYS_REFRESH_MIN`]) before it fails.

use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::http::{CallError, ClientAuth, ProviderHttp};
use crate::identity::linking::External;
use crate::identity::settings::ClientSettings;

/// The shortest time between two reads of a provider's JWKS for unknown keys: a stream of
/// tokens with made-up `kid`s (anyone may post a logout token) cannot turn the gateway into a
/// flood of requests to the provider.
pub const KEYS_REFRESH_MIN: Duration = Duration::from_secs(10);

/// The shortest time between two on-demand discovery attempts of a provider not yet
/// discovered (the background discovery retries on its own schedule).
pub const DISCOVERY_RETRY_MIN: Duration = Duration::from_secs(2);

/// Takes the turn `last` guards when none was taken within `every`: `true` at most once per
/// `every`, however many callers ask at once (the time is set before the work is done).
fn take_turn(last: &Mutex<Option<Instant>>, every: Duration) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;

/// An ID token issued longer ago than this is refused (it was just issued, at the token
/// endpoint).
const MAX_ID_TOKEN_AGE_SECS: i64 = 600;

/// The signing algorithms accepted when the provider publishes them (asymmetric only: a
/// client secret is not a key that proves anything about a third party's token).
const ACCEPTED_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How long a logout token without `exp` stays acceptable after its `iat`.
pub const LOGOUT_TOKEN_MAX_AGE_SECS: i64 = 120;

/// The back-channel logout event's member name in a logout token's `events`.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a provider's discovery document says (the parts used).
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// Where missing claims are read.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The signing keys.
    pub jwks_uri: String,
    /// RP-initiated logout.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// How a client may authenticate at the token endpoint (absent: `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// How ID tokens may be signed (absent: `RS256`).
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl Metadata {
    /// Basic authentication (the default) unless the provider supports only `client_secret_post`.
    fn uses_post(&self) -> bool {
        self.token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|methods| {
                methods.iter().any(|m| m == "client_secret_post")
                    && !methods.iter().any(|m| m == "client_secret_basic")
            })
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        let published: Vec<Algorithm> = match &self.id_token_signing_alg_values_supported {
            None => vec![Algorithm::RS256],
            Some(names) => names
                .iter()
                .filter_map(|n| Algorithm::from_str(n).ok())
                .collect(),
        };
        published
            .into_iter()
            .filter(|a| ACCEPTED_ALGS.contains(a))
            .collect()
    }
}

/// A signing key of the provider.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The provider's current signing keys.
#[derive(Default)]
struct Keys {
    keys: Vec<Key>,
}

/// What the gateway knows about the provider once discovery succeeded.
#[derive(Debug)]
pub struct Discovered {
    /// The discovery document.
    pub metadata: Metadata,
}

/// The answer of the token endpoint.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    /// For the user info endpoint.
    pub access_token: String,
    /// The ID token (required: this is OpenID Connect).
    pub id_token: Option<String>,
}

/// Why a token was refused (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Badly formed, badly signed, expired, for someone else...
    #[error("{0}")]
    Invalid(String),
    /// The keys could not be read.
    #[error(transparent)]
    Keys(#[from] CallError),
}

fn invalid(reason: impl Into<String>) -> TokenError {
    TokenError::Invalid(reason.into())
}

/// One OpenID Connect provider (shared by every worker).
pub struct Oidc {
    /// Its registration and policy.
    pub client: ClientSettings,
    /// The configured issuer.
    pub issuer: String,
    /// Whether sign-out follows the provider's `end_session_endpoint`.
    pub end_session: bool,
    discovered: RwLock<Option<Arc<Discovered>>>,
    keys: RwLock<Keys>,
    /// When the JWKS was last asked for because of an unknown key, and when discovery was last
    /// tried on demand: each at most once per its interval, whatever the outcome and however
    /// many requests want it at once.
    last_keys_refresh: Mutex<Option<Instant>>,
    last_discovery: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("id", &self.client.id)
            .field("issuer", &self.issuer)
            .field("discovered", &self.discovered().is_some())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Oidc {
    fn eq(&self, other: &Self) -> bool {
        self.client == other.client && self.issuer == other.issuer
    }
}

impl Eq for Oidc {}

impl Oidc {
    /// A provider at `issuer`, not yet discovered.
    pub fn new(client: ClientSettings, issuer: String, end_session: bool) -> Self {
        Self {
            client,
            issuer,
            end_session,
            discovered: RwLock::new(None),
            keys: RwLock::new(Keys::default()),
            last_keys_refresh: Mutex::new(None),
            last_discovery: Mutex::new(None),
        }
    }

    /// What discovery found, if it has succeeded.
    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads `{issuer}/.well-known/openid-configuration` and the JWKS, and keeps them.
    pub async fn discover(&self, http: &ProviderHttp) -> Result<Arc<Discovered>, CallError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = http.get_json(&url, None, "application/json").await?;
        if metadata.issuer != self.issuer {
            return Err(CallError::Answer {
                url,
                status: actix_web::http::StatusCode::OK,
                reason: format!(
                    "its issuer is {:?}, not the configured {:?}",
                    super::http::printable(&metadata.issuer, 200),
                    self.issuer
                ),
            });
        }
        self.read_keys(http, &metadata.jwks_uri).await?;
        let discovered = Arc::new(Discovered { metadata });
        *self
            .discovered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&discovered));
        Ok(discovered)
    }

    /// What discovery found, discovering now if it has not succeeded yet (at most once per
    /// [`DISCOVERY_RETRY_MIN`]: anyone may post a logout token, and a provider that is down
    /// must not be asked on every request).
    pub async fn metadata(&self, http: &ProviderHttp) -> Result<Arc<Discovered>, CallError> {
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        if !take_turn(&self.last_discovery, DISCOVERY_RETRY_MIN) {
            return Err(CallError::Unreachable {
                url: self.issuer.clone(),
                reason: "discovery failed moments ago; not retried yet".to_owned(),
            });
        }
        self.discover(http).await
    }

    async fn read_keys(&self, http: &ProviderHttp, jwks_uri: &str) -> Result<(), CallError> {
        #[derive(Deserialize)]
        struct JwkSet {
            keys: Vec<Value>,
        }
        let set: JwkSet = http
            .get_json(jwks_uri, None, "application/jwk-set+json, application/json")
            .await?;
        let keys = set
            .keys
            .into_iter()
            .filter(|k| k.get("use").is_none_or(|u| u == "sig"))
            // A key of a kind this build cannot read is skipped, not fatal to the others.
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter_map(|jwk| {
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk
                        .common
                        .key_algorithm
                        .and_then(|a| Algorithm::from_str(&a.to_string()).ok()),
                    key: DecodingKey::from_jwk(&jwk).ok()?,
                })
            })
            .collect();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Keys { keys };
        Ok(())
    }

    fn find_key(&self, header: &Header) -> Option<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fits = |k: &&Key| k.alg.is_none_or(|a| a == header.alg);
        match &header.kid {
            Some(kid) => keys
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid.as_str())),
            // No `kid`: only unambiguous when one key fits.
            None => {
                let mut fitting = keys.keys.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Some(k),
                    _ => None,
                }
            }
        }
        .map(|k| k.key.clone())
    }

    /// The key for `header`, re-reading the JWKS once (rate-limited) when it is not known:
    /// the provider may have rotated its keys.
    async fn key_for(
        &self,
        http: &ProviderHttp,
        metadata: &Metadata,
        header: &Header,
    ) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.find_key(header) {
            return Ok(key);
        }
        if take_turn(&self.last_keys_refresh, KEYS_REFRESH_MIN) {
            tracing::info!(provider = %self.client.id, "unknown signing key: re-reading the JWKS");
            self.read_keys(http, &metadata.jwks_uri).await?;
            if let Some(key) = self.find_key(header) {
                return Ok(key);
            }
        }
        Err(invalid(format!(
            "no published key {:?} for {:?}",
            header.kid, header.alg
        )))
    }

    /// Verifies a JWT from this provider: an accepted algorithm, a published key, the
    /// signature, `iss`, `aud` = our client id, `exp` and `nbf`, and the claims `required`;
    /// returns its header and claims.
    async fn verify_jwt(
        &self,
        http: &ProviderHttp,
        metadata: &Metadata,
        token: &str,
        required: &[&str],
    ) -> Result<(Header, Map<String, Value>), TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid(format!("unreadable header ({e})")))?;
        if auth_contract::has_critical_extension(&header) {
            return Err(invalid(format!(
                "the header names critical extensions {:?}, none of which is understood",
                header.crit
            )));
        }
        if !metadata.algorithms().contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not one the provider publishes",
                header.alg
            )));
        }
        let key = self.key_for(http, metadata, &header).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client.client_id]);
        validation.set_required_spec_claims(required);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| invalid(format!("refused ({e})")))?;
        let claims = data.claims;
        // `iat`: a number, not in the future (within the leeway).
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("no numeric iat"))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if iat > now + LEEWAY_SECS as i64 {
            return Err(invalid("issued in the future"));
        }
        Ok((header, claims))
    }

    /// Verifies an ID token (see the module docs) for the flow that sent `nonce`; returns its
    /// claims.
    pub async fn verify_id_token(
        &self,
        http: &ProviderHttp,
        metadata: &Metadata,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, TokenError> {
        let (_, claims) = self
            .verify_jwt(http, metadata, token, &["exp", "iat", "iss", "aud", "sub"])
            .await?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if claims.get("iat").and_then(Value::as_i64).unwrap_or(0) < now - MAX_ID_TOKEN_AGE_SECS {
            return Err(invalid("issued too long ago"));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(invalid("nonce mismatch"));
        }
        let audiences = match claims.get("aud") {
            Some(Value::Array(list)) => list.len(),
            _ => 1,
        };
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.client.client_id => {
                return Err(invalid("azp names another client"));
            }
            None if audiences > 1 => return Err(invalid("several audiences and no azp")),
            _ => {}
        }
        if claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid("no sub"));
        }
        Ok(claims)
    }

    /// The authorization request URL.
    pub fn authorization_url(
        &self,
        metadata: &Metadata,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String, url::ParseError> {
        let mut url = url::Url::parse(&metadata.authorization_endpoint)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.client.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges `code` (with its PKCE verifier) at the token endpoint.
    pub async fn exchange(
        &self,
        http: &ProviderHttp,
        metadata: &Metadata,
        redirect_uri: &str,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, CallError> {
        let (id, secret) = (
            self.client.client_id.as_str(),
            self.client.client_secret.expose(),
        );
        let auth = if metadata.uses_post() {
            ClientAuth::Post { id, secret }
        } else {
            ClientAuth::Basic { id, secret }
        };
        http.post_form(
            &metadata.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ],
            auth,
        )
        .await
    }

    /// Who the verified ID token says signed in, with email, `email_verified` and name read
    /// from the user info endpoint when the token lacks them (its `sub` must be the token's).
    pub async fn identity(
        &self,
        http: &ProviderHttp,
        metadata: &Metadata,
        claims: Map<String, Value>,
        access_token: &str,
    ) -> Result<External, TokenError> {
        let mut claims = claims;
        let missing = ["email", "email_verified", "name"]
            .iter()
            .any(|c| !claims.contains_key(*c));
        if missing && let Some(endpoint) = &metadata.userinfo_endpoint {
            let info: Map<String, Value> = http
                .get_json(endpoint, Some(access_token), "application/json")
                .await?;
            if info.get("sub") != claims.get("sub") {
                return Err(invalid("the user info is about another sub"));
            }
            for (name, value) in info {
                claims.entry(name).or_insert(value);
            }
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let name = text("name")
            .or_else(|| {
                let given = [text("given_name"), text("family_name")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                (!given.trim().is_empty()).then_some(given)
            })
            .or_else(|| text("preferred_username"));
        Ok(External {
            subject: text("sub").unwrap_or_default(),
            email: text("email"),
            // Some providers send the string "true".
            email_verified: match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            },
            name,
            sid: text("sid"),
        })
    }

    /// The provider's logout URL for RP-initiated logout, when it is on and discovered.
    pub fn end_session_url(
        &self,
        id_token: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<String> {
        if !self.end_session {
            return None;
        }
        let discovered = self.discovered()?;
        let endpoint = discovered.metadata.end_session_endpoint.as_ref()?;
        let mut url = url::Url::parse(endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("client_id", &self.client.client_id);
        Some(url.into())
    }

    /// Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section
    /// 2.6): signature, `iss`, `aud`, `iat`, `exp`, `jti`, the logout event, no `nonce`, a
    /// `sub` or a `sid`, and `typ` `logout+jwt` when the header has one. A token without `exp`
    /// (some providers, `oidc-provider` among them, still send none) must have been issued
    /// within [`LOGOUT_TOKEN_MAX_AGE_SECS`], and its `jti` is remembered that long.
    pub async fn verify_logout_token(
        &self,
        http: &ProviderHttp,
        token: &str,
    ) -> Result<LogoutClaims, TokenError> {
        let discovered = self.metadata(http).await?;
        let (header, claims) = self
            .verify_jwt(http, &discovered.metadata, token, &["iss", "aud"])
            .await?;
        if let Some(typ) = &header.typ {
            let typ = typ.to_ascii_lowercase();
            if typ != "logout+jwt" && typ != "application/logout+jwt" {
                return Err(invalid(format!("typ {typ:?}")));
            }
        }
        let is_event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(LOGOUT_EVENT))
            .is_some_and(Value::is_object);
        if !is_event {
            return Err(invalid("no back-channel logout event"));
        }
        if claims.contains_key("nonce") {
            return Err(invalid("a nonce (logout tokens have none)"));
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .map(str::to_owned)
        };
        let (subject, sid) = (text("sub"), text("sid"));
        if subject.is_none() && sid.is_none() {
            return Err(invalid("neither sub nor sid"));
        }
        let jti = text("jti").ok_or_else(|| invalid("no jti"))?;
        // `verify_jwt` checked `exp` when there is one, and that `iat` is not in the future.
        let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
        let expires = match claims.get("exp") {
            Some(exp) => exp.as_i64().ok_or_else(|| invalid("exp is not a number"))?,
            None => {
                let expires = iat + LOGOUT_TOKEN_MAX_AGE_SECS;
                if expires < OffsetDateTime::now_utc().unix_timestamp() - LEEWAY_SECS as i64 {
                    return Err(invalid("no exp, and issued too long ago"));
                }
                expires
            }
        };
        Ok(LogoutClaims {
            subject,
            sid,
            jti,
            expires_at: OffsetDateTime::from_unix_timestamp(expires + LEEWAY_SECS as i64)
                .map_err(|_| invalid("exp out of range"))?,
        })
    }
}

/// What a verified logout token asks to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The user at the provider.
    pub subject: Option<String>,
    /// The provider's session.
    pub sid: Option<String>,
    /// The token's id (single use).
    pub jti: String,
    /// Until when the id must be remembered.
    pub expires_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(methods: Option<&[&str]>, algs: Option<&[&str]>) -> Metadata {
        Metadata {
            issuer: "https://idp.example".into(),
            authorization_endpoint: "https://idp.example/auth?tenant=a".into(),
            token_endpoint: "https://idp.example/token".into(),
            userinfo_endpoint: None,
            jwks_uri: "https://idp.example/jwks".into(),
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| (*s).to_owned()).collect()),
            id_token_signing_alg_values_supported: algs
                .map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
            authorization_response_iss_parameter_supported: false,
        }
    }

    #[test]
    fn a_turn_is_taken_once_per_interval_whatever_happens_after() {
        let last = Mutex::new(None);
        assert!(take_turn(&last, Duration::from_secs(60)));
        assert!(!take_turn(&last, Duration::from_secs(60)));
        assert!(take_turn(&last, Duration::ZERO));
    }

    #[test]
    fn client_secret_post_only_when_it_is_the_only_method() {
        assert!(!metadata(None, None).uses_post());
        assert!(!metadata(Some(&["client_secret_basic", "client_secret_post"]), None).uses_post());
        assert!(metadata(Some(&["client_secret_post", "private_key_jwt"]), None).uses_post());
    }

    #[test]
    fn only_published_asymmetric_algorithms_are_accepted() {
        assert_eq!(metadata(None, None).algorithms(), vec![Algorithm::RS256]);
        assert_eq!(
            metadata(None, Some(&["HS256", "none", "ES256", "EdDSA"])).algorithms(),
            vec![Algorithm::ES256, Algorithm::EdDSA]
        );
    }
}
