//! `/v1/admin/reload`, `/healthz`, `/readyz` and `/metrics`.

use super::draining;
use crate::serve::App;
use crate::serve::metrics::names;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

/// `POST /v1/admin/reload`: 200 with what changed, or 422 with why it was refused (the old
/// config keeps serving).
pub(super) async fn admin_reload(app: web::Data<App>) -> HttpResponse {
    let outcome = crate::serve::reload::reload(&app, app.config_path()).await;
    let status = match outcome {
        crate::serve::reload::Outcome::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    HttpResponse::build(status).json(outcome.to_json())
}

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: `503` while draining, otherwise ready, with the orders in flight.
pub(super) async fn readyz(app: web::Data<App>) -> HttpResponse {
    if app.is_draining() {
        return draining();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "orders_in_flight": app.admission.in_flight(),
    }))
}

/// `GET /metrics`: the Prometheus text, with the gauges read at scrape time set first.
pub(super) async fn metrics(app: web::Data<App>) -> HttpResponse {
    metrics::gauge!(names::ORDERS_IN_FLIGHT).set(app.admission.in_flight() as f64);
    if let Some((resident, peak)) = resident_memory() {
        // The name every Prometheus client library uses, so dashboards find it.
        metrics::gauge!(names::RESIDENT_MEMORY).set(resident as f64);
        metrics::gauge!(names::RESIDENT_MEMORY_PEAK).set(peak as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(app.metrics.render())
}

/// The process's resident memory and its peak so far, in bytes (`VmRSS` and `VmHWM` of
/// `/proc/self/status`); `None` where there is no such file (not Linux).
fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kilobytes = |key: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(key))?;
        let value = line[key.len()..].trim().strip_suffix("kB")?.trim();
        value.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some((kilobytes("VmRSS:")?, kilobytes("VmHWM:")?))
}
