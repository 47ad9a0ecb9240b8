//! next-auth v4's wire shapes, as the next-auth/react client sends and reads them: form or
//! JSON bodies, `{url}` answers (or redirects), and the session body.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{Either, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use web_common::problem::Untouched;

use crate::session::{SessionUser, Sessions};

/// A form (what next-auth's client posts) or a JSON object.
pub type FormOrJson =
    Either<web::Json<HashMap<String, serde_json::Value>>, web::Form<HashMap<String, String>>>;

/// The fields of a [`FormOrJson`] body, as strings by name (a JSON value that is not a string
/// is kept as its JSON text).
pub fn fields(body: FormOrJson) -> HashMap<String, String> {
    match body {
        Either::Left(json) => json
            .into_inner()
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Either::Right(form) => form.into_inner(),
    }
}

/// Whether the client asked for `{url}` answers (`json=true`, what next-auth's client sends)
/// rather than redirects.
pub fn wants_json(fields: &HashMap<String, String>) -> bool {
    fields.get("json").is_some_and(|v| v == "true")
}

/// `{url}` with `status` (when `json`) or a 302 to `url`. Its body is a wire contract of its
/// own, so the problem middleware leaves it alone even when `status` is an error.
pub fn url_or_redirect(status: StatusCode, json: bool, url: &str) -> HttpResponse {
    let mut res = if json {
        HttpResponse::build(status).json(serde_json::json!({ "url": url }))
    } else {
        HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .finish()
    };
    res.extensions_mut().insert(Untouched);
    res
}

/// The user part of a session answer (next-auth's `session.user`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicUser {
    /// `users.id`.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Always `null` (no avatars yet); next-auth's shape has it.
    pub image: Option<String>,
}

/// `GET /api/auth/session` (and the sign-in answers): the user and when the session ends.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionBody {
    /// Who is signed in.
    pub user: PublicUser,
    /// RFC 3339: the earlier of the idle and the absolute expiry.
    pub expires: String,
}

impl SessionBody {
    /// The body for `user`'s session in `sessions`.
    pub fn new(sessions: &Sessions, user: &SessionUser) -> Self {
        Self {
            user: PublicUser {
                id: user.id,
                name: user.name.clone(),
                email: user.email.clone(),
                image: None,
            },
            expires: sessions
                .expires_at(user)
                .format(&Rfc3339)
                .unwrap_or_default(),
        }
    }
}
