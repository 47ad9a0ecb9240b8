//! The sign-in methods, behind one seam: a [`Provider`] is one way to sign in (today
//! [`Credentials`]; identity providers such as OpenID Connect or GitHub are each a new file
//! here and a new variant below). [`Providers`] is what is configured: `GET
//! /api/auth/providers` lists it, and `/api/auth/callback/{id}` is dispatched through it.
//! Every provider ends in [`super::sign_in::start_session`].

pub mod credentials;

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

pub use credentials::Credentials;

use super::state::Identity;
use crate::error::Error;
use crate::origin::PublicOrigin;
use crate::session::UserSession;

/// One configured way to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Email and password.
    Credentials(Credentials),
}

/// A provider as `GET /api/auth/providers` shows it (next-auth's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The id in the provider's URLs.
    pub id: &'static str,
    /// The name on its button.
    pub name: &'static str,
    /// `credentials`, `oauth` or `oidc`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where next-auth's client starts a sign-in with it.
    pub signin_url: String,
    /// Where the sign-in comes back.
    pub callback_url: String,
}

impl Provider {
    /// The id in the provider's URLs.
    pub fn id(&self) -> &'static str {
        match self {
            Self::Credentials(_) => Credentials::ID,
        }
    }

    /// How `GET /api/auth/providers` shows it.
    pub fn listing(&self, origin: &PublicOrigin) -> Listing {
        let (name, kind) = match self {
            Self::Credentials(_) => (Credentials::NAME, "credentials"),
        };
        Listing {
            id: self.id(),
            name,
            kind,
            signin_url: origin.url(&format!("/api/auth/signin/{}", self.id())),
            callback_url: origin.url(&format!("/api/auth/callback/{}", self.id())),
        }
    }

    /// `POST /api/auth/callback/{id}` (the CSRF token already checked).
    pub async fn callback(
        &self,
        req: &HttpRequest,
        fields: &HashMap<String, String>,
        session: &UserSession,
        identity: &Identity,
    ) -> Result<HttpResponse, Error> {
        match self {
            Self::Credentials(credentials) => {
                credentials.callback(req, fields, session, identity).await
            }
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

    /// The provider whose id is `id`.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.iter().find(|p| p.id() == id)
    }

    /// `GET /api/auth/providers`: each provider by id.
    pub fn listing(&self, origin: &PublicOrigin) -> BTreeMap<&'static str, Listing> {
        self.0.iter().map(|p| (p.id(), p.listing(origin))).collect()
    }
}
