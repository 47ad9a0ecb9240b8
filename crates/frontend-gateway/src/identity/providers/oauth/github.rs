//! GitHub (OAuth 2.0, not OpenID Connect), or GitHub Enterprise Server: the authorize page, the
//! token endpoint, then `GET /user` and `GET /user/emails` of the REST API. The subject is
//! GitHub's numeric user id (a login can be renamed and reused); the email is the primary
//! verified one (none: the sign-in is refused); the name falls back to the login.

use serde::Deserialize;

use super::http::{CallError, ClientAuth, ProviderHttp};
use crate::identity::linking::External;
use crate::identity::settings::ClientSettings;
use crate::identity::text;

/// The media type GitHub's REST API documents.
const API_JSON: &str = "application/vnd.github+json";

/// One GitHub (or GitHub Enterprise Server) provider.
#[derive(Debug, PartialEq, Eq)]
pub struct GitHub {
    /// Its registration and policy.
    pub client: ClientSettings,
    /// The web base URL (`https://github.com`).
    pub url: String,
    /// The REST API base URL (`https://api.github.com`).
    pub api_url: String,
}

#[derive(Debug, Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Debug, Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

impl GitHub {
    /// The authorization request URL.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
    ) -> Result<String, url::ParseError> {
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", self.url))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.client.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "true");
        Ok(url.into())
    }

    /// Exchanges `code`, then reads the user and their emails. `Ok(None)`: the user has no
    /// primary verified email.
    pub async fn identity(
        &self,
        http: &ProviderHttp,
        redirect_uri: &str,
        code: &str,
        verifier: &str,
    ) -> Result<Option<External>, CallError> {
        let token: Token = http
            .post_form(
                &format!("{}/login/oauth/access_token", self.url),
                &[
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ],
                ClientAuth::Post {
                    id: &self.client.client_id,
                    secret: self.client.client_secret.expose(),
                },
            )
            .await?;
        let bearer = Some(token.access_token.as_str());
        let user: User = http
            .get_json(&format!("{}/user", self.api_url), bearer, API_JSON)
            .await?;
        let emails: Vec<Email> = http
            .get_json(&format!("{}/user/emails", self.api_url), bearer, API_JSON)
            .await?;
        let Some(email) = emails.into_iter().find(|e| e.primary && e.verified) else {
            return Ok(None);
        };
        Ok(Some(External {
            subject: user.id.to_string(),
            email: Some(email.email),
            email_verified: true,
            // A name with nothing visible in it falls back to the login too.
            name: user
                .name
                .filter(|n| text::clean_name(n).is_some())
                .or(Some(user.login)),
            sid: None,
        }))
    }
}
