//! RFC 9457 problem details: every error either service answers with is
//! `application/problem+json`.
//!
//! Handlers and extractors return a [`Problem`] (it implements [`ResponseError`]); the
//! [`normalize`] middleware then gives every error response, including those actix-web makes
//! itself (unknown route, 405, a payload error), a problem body carrying the request id.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use crate::request_id::RequestId;

/// The media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details body (RFC 9457), plus our `request_id` and field `errors` extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The path that was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, as in the `x-request-id` response header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Which input fields were wrong, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One wrong input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as sent (`name`, `email`, `limit`...).
    pub field: String,
    /// Why it was refused.
    pub message: String,
}

impl Problem {
    /// A problem with the status's reason as its title.
    pub fn new(status: StatusCode) -> Self {
        Self {
            problem_type: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            instance: None,
            request_id: None,
            errors: Vec::new(),
        }
    }

    /// Adds a human-readable detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Names a wrong field.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    /// 400 Bad Request with a detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST).detail(detail)
    }

    /// 422 Unprocessable Content naming one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(StatusCode::UNPROCESSABLE_ENTITY)
            .detail(format!("`{field}` {message}"))
            .field(field, message)
    }

    /// 404 Not Found with a detail.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND).detail(detail)
    }

    /// 403 Forbidden with a detail.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN).detail(detail)
    }

    /// 409 Conflict with a detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT).detail(detail)
    }

    /// 500, with nothing about the cause (log it where it happened).
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
            .detail("Something went wrong on our side. The request id identifies it in our logs.")
    }

    /// 503, for a dependency (the database) that is not answering.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE).detail(detail)
    }

    /// The status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn to_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut res = HttpResponse::build(self.status_code())
            .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body);
        res.extensions_mut().insert(self.clone());
        res
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response()
    }
}

/// A marker for a response's extensions: [`normalize`] leaves that response as it is. For
/// bodies whose shape is a wire contract of their own: a proxied upstream response (streamed,
/// already a problem when it is one), or a next-auth `{url}` answer with a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untouched;

/// Middleware: gives every 4xx/5xx response a problem body with the request path and id.
///
/// A response built from a [`Problem`] keeps its fields; any other error response (actix-web's
/// own 404/405, an extractor's text error) gets a generic problem for its status. Headers such
/// as `WWW-Authenticate`, `Allow` or `Retry-After` are kept. A response marked [`Untouched`] is
/// passed through.
pub async fn normalize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // Handler and extractor errors arrive here already turned into responses; an `Err` can
    // only come from an inner middleware, and is passed on.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res.response().extensions().contains::<Untouched>()
    {
        return Ok(res);
    }
    let mut problem = match res.response().extensions().get::<Problem>() {
        Some(problem) => problem.clone(),
        None => Problem::new(status),
    };
    problem.instance = Some(res.request().path().to_owned());
    problem.request_id = res
        .request()
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned());

    let (request, old) = res.into_parts();
    let mut fresh = problem.to_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CACHE_CONTROL
        {
            fresh.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(request, fresh))
}

/// A JSON extractor configuration whose errors are problems: 413 past `limit` bytes, 415 for
/// another content type, 400 for broken JSON, 422 for JSON of the wrong shape (naming the field
/// when serde does).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| json_problem(err).into())
}

/// The problem for a JSON body that could not be read.
pub fn json_problem(err: JsonPayloadError) -> Problem {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .detail(format!("The body is larger than {limit} bytes."))
        }
        JsonPayloadError::ContentType => Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .detail("Expected `Content-Type: application/json`."),
        JsonPayloadError::Deserialize(e) => serde_problem(&e),
        _ => Problem::bad_request("The body could not be read."),
    }
}

/// 400 for JSON that does not parse, 422 for JSON of the wrong shape.
pub fn serde_problem(e: &serde_json::Error) -> Problem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            match backticked(&message) {
                Some(field) if message.starts_with("missing field") => {
                    Problem::invalid_field(field, "is required")
                }
                _ => Problem::new(StatusCode::UNPROCESSABLE_ENTITY).detail(message),
            }
        }
        _ => Problem::bad_request(format!("The body is not valid JSON: {e}.")),
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// A query-string extractor configuration whose errors are 400 problems.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req: &HttpRequest| {
        let QueryPayloadError::Deserialize(e) = &err else {
            return Problem::bad_request("The query string could not be read.").into();
        };
        Problem::bad_request(format!("The query string is invalid: {e}.")).into()
    })
}
