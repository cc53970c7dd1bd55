//! Bearer tokens per role (RFC 6750). With no `[auth]` tokens configured every request is
//! let through, and the service refuses to listen beyond loopback.
//!
//! | role | may call |
//! |---|---|
//! | none | `/healthz`, `/readyz`, `/metrics` |
//! | `read` | every `GET /v1/...` |
//! | `ingest` | `read`, and `POST /v1/orders`, `POST /v1/orders/{id}/shipped`, `PUT /v1/stock` |
//! | `ops` | everything: also `POST /v1/orders/{id}/cancel` and `/v1/admin/...` |
//!
//! No token, or one that is not configured: `401` with `WWW-Authenticate: Bearer`
//! (`error="invalid_token"` when one was given). A token whose role is too low: `403` with
//! `error="insufficient_scope"` and the role needed as `scope`.

use super::App;
use super::http::error;
use super::metrics::names;
use crate::config::Role;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

/// Middleware for routes that need the `read` role. Each route is wrapped with the role it
/// needs *after* the router has matched it, so the role follows the resource, not a
/// reading of the raw path (`/%761/orders` is `/v1/orders` to the router).
pub async fn read(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    authorize(request, next, Role::Read).await
}

/// Middleware for routes that need the `ingest` role.
pub async fn ingest(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    authorize(request, next, Role::Ingest).await
}

/// Middleware for routes that need the `ops` role.
pub async fn ops(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    authorize(request, next, Role::Ops).await
}

/// `/v1/stock`: reading it needs `read`, replacing levels `ingest`.
pub async fn read_or_ingest(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let needed = if request.method() == Method::GET || request.method() == Method::HEAD {
        Role::Read
    } else {
        Role::Ingest
    };
    authorize(request, next, needed).await
}

/// Checks the bearer token against the role `needed`.
async fn authorize(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
    needed: Role,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let app = request
        .app_data::<web::Data<App>>()
        .expect("the app data is registered")
        .clone();
    let auth = app.network().auth.clone();
    if !auth.is_enabled() {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let refusal = match given {
        None => Some((
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs an Authorization: Bearer token".to_owned(),
            "Bearer realm=\"order-router\"".to_owned(),
        )),
        Some(token) => match auth.role_of(token) {
            None => Some((
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not valid".to_owned(),
                "Bearer realm=\"order-router\", error=\"invalid_token\"".to_owned(),
            )),
            Some(role) if role < needed => Some((
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this endpoint needs the '{}' role; the token has '{}'",
                    needed.name(),
                    role.name()
                ),
                format!(
                    "Bearer realm=\"order-router\", error=\"insufficient_scope\", scope=\"{}\"",
                    needed.name()
                ),
            )),
            Some(_) => None,
        },
    };
    match refusal {
        None => next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some((status, code, message, challenge)) => {
            metrics::counter!(names::AUTH_REFUSED, "status" => status.as_str().to_owned())
                .increment(1);
            let mut response = error(status, code, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).expect("an ASCII challenge"),
            );
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}
