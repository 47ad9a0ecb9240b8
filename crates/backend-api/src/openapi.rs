//! The OpenAPI document's frame (info, shared schemas, the bearer scheme) and the response sets
//! the handlers share in their `#[utoipa::path(responses(...))]`. The operations themselves come
//! from the route table ([`crate::routes`]), which merges them into [`ApiDoc`].

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use web_common::Problem;

/// The document without its operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "backend-api",
        description = "Workspace API. Every route but /healthz, /readyz and /openapi.json needs a \
                       gateway token in `Authorization: Bearer`. Errors are RFC 9457 problem+json."
    ),
    components(schemas(web_common::Problem, web_common::FieldError)),
    modifiers(&BearerScheme)
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// 401, on every route that needs a token.
#[derive(Debug, IntoResponses)]
#[response(
    status = 401,
    description = "no valid bearer token: missing, malformed, expired, forged, or its user no longer exists",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(pub Problem);

/// 400, 413, 415 and 422, on every route that reads a JSON body. A route whose 422 means
/// something more precise lists its own 422 after this set (the later entry wins).
#[derive(Debug, IntoResponses)]
pub enum JsonBodyErrors {
    /// The body does not parse.
    #[response(
        status = 400,
        description = "the body is not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
    /// Past `JSON_LIMIT`.
    #[response(
        status = 413,
        description = "the body is larger than 16 KiB",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// Another content type.
    #[response(
        status = 415,
        description = "the body is not `application/json`",
        content_type = "application/problem+json"
    )]
    NotJsonContent(Problem),
    /// JSON of the wrong shape, or a value refused (`errors` names the field).
    #[response(
        status = 422,
        description = "a field is missing, of the wrong type or refused (`errors` names it)",
        content_type = "application/problem+json"
    )]
    Unprocessable(Problem),
}

/// 404 on a workspace route: no such workspace, or the caller is not a member (the same
/// answer, so that a workspace's existence does not leak).
#[derive(Debug, IntoResponses)]
#[response(
    status = 404,
    description = "no such workspace, or not a member",
    content_type = "application/problem+json"
)]
pub struct WorkspaceNotFound(pub Problem);

/// 404 on a member route: [`WorkspaceNotFound`], or the target is not a member.
#[derive(Debug, IntoResponses)]
#[response(
    status = 404,
    description = "no such workspace, or not a member; or the target is not a member",
    content_type = "application/problem+json"
)]
pub struct MemberNotFound(pub Problem);

/// 403 on a workspace route: the caller's role is too low for the action.
#[derive(Debug, IntoResponses)]
#[response(
    status = 403,
    description = "the caller's role in the workspace does not allow this",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 404 on an invitee's invitation route: no such invitation, or it is not addressed to the
/// caller's verified email (the same answer).
#[derive(Debug, IntoResponses)]
#[response(
    status = 404,
    description = "no such invitation, or not addressed to the caller's verified email",
    content_type = "application/problem+json"
)]
pub struct InvitationNotFound(pub Problem);

/// 410 on an invitee's invitation route: it is no longer open (accepted, declined, revoked or
/// expired; `detail` says which).
#[derive(Debug, IntoResponses)]
#[response(
    status = 410,
    description = "the invitation was accepted, declined or revoked, or it expired",
    content_type = "application/problem+json"
)]
pub struct InvitationClosed(pub Problem);
