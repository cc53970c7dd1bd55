//! Bearer tokens per role (RFC 6750). With no `[auth]` tokens configured every request is
//! let through, and the service refuses to listen beyond loopback.
//!
//! | role | may call |
//! |---|---|
//! | none | `/healthz`, `/readyz`, `/metrics` |
//! | `read` | every `GET /v1/...` |
//! | `ingest` | `read`, and `POST /v1/orders`, `POST /v1/orders/{id}/shipped`, `POST /v1/shipments`, `PUT /v1/stock` |
//! | `ops` | everything: also `POST /v1/orders/{id}/cancel` and `/v1/admin/...` |
//!
//! No token, or one that is not configured: `401` with `WWW-Authenticate: Bearer`
//! (`error="invalid_token"` when one was given). A token whose role is too low: `403` with
//! `error="insufficient_scope"` and the role needed as `scope`.

use super::App;
use super::http::error;
use super::metrics::names;
use crate::config::{Auth, Role};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

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
    let network = request
        .app_data::<web::Data<App>>()
        .expect("the app data is registered")
        .network();
    let auth = &network.auth;
    let refusal = if auth.is_enabled() {
        refusal_for(auth, bearer_token(&request), needed)
    } else {
        None
    };
    match refusal {
        None => next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some(refusal) => Ok(request
            .into_response(refusal.into_response())
            .map_into_right_body()),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(request: &ServiceRequest) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// Why a request is turned away, and the `WWW-Authenticate` challenge that says so.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: String,
}

impl Refusal {
    /// The error body with its challenge header; counted by status.
    fn into_response(self) -> HttpResponse {
        let Refusal {
            status,
            code,
            message,
            challenge,
        } = self;
        metrics::counter!(names::AUTH_REFUSED, "status" => status.as_str().to_owned()).increment(1);
        let mut response = error(status, code, message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).expect("an ASCII challenge"),
        );
        response
    }
}

/// The refusal for a request bearing `given` to a route that needs `needed`, or `None` when
/// the token's role is enough.
fn refusal_for(auth: &Auth, given: Option<&str>, needed: Role) -> Option<Refusal> {
    let Some(token) = given else {
        return Some(Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "this endpoint needs an Authorization: Bearer token".to_owned(),
            challenge: "Bearer realm=\"order-router\"".to_owned(),
        });
    };
    match auth.role_of(token) {
        None => Some(Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "the bearer token is not valid".to_owned(),
            challenge: "Bearer realm=\"order-router\", error=\"invalid_token\"".to_owned(),
        }),
        Some(role) if role < needed => Some(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!(
                "this endpoint needs the '{}' role; the token has '{}'",
                needed.name(),
                role.name()
            ),
            challenge: format!(
                "Bearer realm=\"order-router\", error=\"insufficient_scope\", scope=\"{}\"",
                needed.name()
            ),
        }),
        Some(_) => None,
    }
}
