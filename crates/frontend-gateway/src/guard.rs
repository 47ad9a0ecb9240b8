//! The checks every request passes before routing: a path that cannot be misread (see
//! [`crate::rewrite::check_path`]), and, for unsafe methods, an `Origin` (when sent) equal to
//! `PUBLIC_ORIGIN`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use web_common::Problem;

use crate::rewrite::check_path;
use crate::state::AppState;

/// Middleware: 400 for a bad path, 403 for a cross-origin unsafe request.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(problem) = refusal(&req) {
        // Answered as a response (not an `Err`) so the problem middleware adds the request id.
        let res = req.into_response(problem.error_response());
        return Ok(res.map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn refusal(req: &ServiceRequest) -> Option<Problem> {
    if let Err(e) = check_path(req.path()) {
        return Some(Problem::bad_request(format!("Refused path: {e}.")));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let origin = req.headers().get(header::ORIGIN)?;
    let state = req.app_data::<web::Data<AppState>>()?;
    if !safe && origin.as_bytes() != state.origin.as_str().as_bytes() {
        return Some(Problem::forbidden(
            "Cross-origin requests that change state are refused.",
        ));
    }
    None
}
