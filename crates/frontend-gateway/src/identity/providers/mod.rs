//! The sign-in methods, behind one seam: a [`Provider`] is one way to sign in: [`Credentials`]
//! (email and password), [`EmailLinks`] (sign-in links mailed to the address), or a redirect-based identity provider ([`oauth::OAuth`]: OpenID
//! Connect or GitHub). [`Providers`] is what is configured: `GET /api/auth/providers` lists it,
//! and `/api/auth/signin/{id}` and `/api/auth/callback/{id}` are dispatched through it.
//! Every provider ends in [`super::sign_in::start_session`].

pub mod credentials;
pub mod email;
pub mod oauth;

use std::sync::Arc;

use serde::Serialize;

pub use credentials::Credentials;
pub use email::EmailLinks;

use self::oauth::OAuth;
use self::oauth::github::GitHub;
use self::oauth::oidc::Oidc;
use super::settings::{AuthSettings, ProviderKind};
use crate::origin::PublicOrigin;

/// One configured way to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Email and password.
    Credentials(Credentials),
    /// Sign-in links mailed to the address.
    Email(EmailLinks),
    /// An identity provider the browser is sent to.
    OAuth(OAuth),
}

/// A provider as `GET /api/auth/providers` shows it (next-auth's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The id in the provider's URLs.
    pub id: String,
    /// The name on its button.
    pub name: String,
    /// `credentials`, `email` or `oauth`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where next-auth's client starts a sign-in with it.
    pub signin_url: String,
    /// Where the sign-in comes back.
    pub callback_url: String,
}

impl Provider {
    /// The id in the provider's URLs.
    pub fn id(&self) -> &str {
        match self {
            Self::Credentials(_) => Credentials::ID,
            Self::Email(_) => EmailLinks::ID,
            Self::OAuth(p) => &p.client().id,
        }
    }

    /// How `GET /api/auth/providers` shows it.
    pub fn listing(&self, origin: &PublicOrigin) -> Listing {
        let (name, kind) = match self {
            Self::Credentials(_) => (Credentials::NAME, "credentials"),
            Self::Email(_) => (EmailLinks::NAME, "email"),
            Self::OAuth(p) => (p.client().name.as_str(), "oauth"),
        };
        Listing {
            id: self.id().to_owned(),
            name: name.to_owned(),
            kind,
            signin_url: origin.url(&format!("/api/auth/signin/{}", self.id())),
            callback_url: origin.url(&format!("/api/auth/callback/{}", self.id())),
        }
    }
}

/// The configured providers, in the order they are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Providers(Vec<Provider>);

impl Providers {
    /// These providers.
    pub fn new(providers: Vec<Provider>) -> Self {
        Self(providers)
    }

    /// The providers `settings` configure: credentials first (when on), then sign-in links
    /// (when on), then the identity providers in their configured order.
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let credentials = settings
            .credentials
            .then_some(Provider::Credentials(Credentials));
        let email = settings.email_links.then_some(Provider::Email(EmailLinks));
        let others = settings.providers.iter().map(|p| {
            Provider::OAuth(match &p.kind {
                ProviderKind::Oidc {
                    issuer,
                    end_session,
                } => OAuth::Oidc(Arc::new(Oidc::new(
                    p.client.clone(),
                    issuer.clone(),
                    *end_session,
                ))),
                ProviderKind::GitHub { url, api_url } => OAuth::GitHub(Arc::new(GitHub {
                    client: p.client.clone(),
                    url: url.clone(),
                    api_url: api_url.clone(),
                })),
            })
        });
        Self(credentials.into_iter().chain(email).chain(others).collect())
    }

    /// The provider whose id is `id`.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.iter().find(|p| p.id() == id)
    }

    /// The identity provider whose id is `id`.
    pub fn oauth(&self, id: &str) -> Option<&OAuth> {
        match self.get(id)? {
            Provider::OAuth(p) => Some(p),
            Provider::Credentials(_) | Provider::Email(_) => None,
        }
    }

    /// Sign-in links, when on.
    pub fn email(&self) -> Option<&EmailLinks> {
        match self.get(EmailLinks::ID)? {
            Provider::Email(links) => Some(links),
            _ => None,
        }
    }

    /// Whether email-and-password sign-in is on.
    pub fn credentials(&self) -> bool {
        self.get(Credentials::ID).is_some()
    }

    /// The OpenID Connect providers.
    pub fn oidc(&self) -> impl Iterator<Item = &Arc<Oidc>> {
        self.0.iter().filter_map(|p| match p {
            Provider::OAuth(OAuth::Oidc(oidc)) => Some(oidc),
            _ => None,
        })
    }

    /// `GET /api/auth/providers`: each provider by id, in the configured order (the order of
    /// the buttons).
    pub fn listing(&self, origin: &PublicOrigin) -> Listings {
        Listings(self.0.iter().map(|p| p.listing(origin)).collect())
    }
}

/// The answer of `GET /api/auth/providers`: a JSON object of [`Listing`]s by id, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listings(pub Vec<Listing>);

impl Serialize for Listings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for listing in &self.0 {
            map.serialize_entry(&listing.id, listing)?;
        }
        map.end()
    }
}
