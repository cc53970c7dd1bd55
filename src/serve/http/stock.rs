//! `/v1/stock`: one SKU's stock, absolute levels in (CSV or NDJSON), every level out.

use super::{content_type, error, read_body, shown, unavailable};
use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::{WarehouseId, ZoneId};
use crate::limits::MAX_STOCK_BODY_BYTES;
use crate::serve::App;
use crate::zone::ZoneError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

/// `GET /v1/stock/{sku}`: the SKU's stock at every warehouse, and its totals.
pub(super) async fn get_stock(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    let name = path.into_inner();
    let Some(sku) = app.catalog.lookup(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_sku",
            format!("SKU {:?} is not in the catalogue", shown(&name)),
        );
    };
    let Some(zones) = app
        .ask_every_zone(|| crate::serve::zone_actor::StockRequest { sku })
        .await
    else {
        return unavailable();
    };
    let mut cells: Vec<_> = zones.into_iter().flatten().collect();
    cells.sort_by_key(|(warehouse, _)| *warehouse);
    let network = app.network();
    let warehouses: Vec<serde_json::Value> = cells
        .iter()
        .map(|(warehouse, cell)| {
            serde_json::json!({
                "warehouse": network.warehouse_name(*warehouse),
                "on_hand": cell.on_hand,
                "reserved": cell.reserved,
                "available": cell.available(),
            })
        })
        .collect();
    let (on_hand, reserved) = cells
        .iter()
        .fold((0u64, 0u64), |(on_hand, reserved), (_, cell)| {
            (
                on_hand + u64::from(cell.on_hand),
                reserved + u64::from(cell.reserved),
            )
        });
    HttpResponse::Ok().json(serde_json::json!({
        "sku": name,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "warehouses": warehouses,
    }))
}

/// `PUT /v1/stock`: absolute on-hand levels, CSV (`warehouse,sku,on_hand`) or NDJSON. The
/// body is checked whole first (a bad row refuses the upload: 400, nothing applied); then
/// every level applies except those below what is already reserved (409, listing them).
pub(super) async fn put_stock(
    request: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    let what = "a stock upload";
    let body = match read_body(
        &request,
        &mut payload,
        MAX_STOCK_BODY_BYTES,
        "too_large",
        what,
    )
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let network = app.network();
    let levels = match read_levels(&request, &body, &network, &app.catalog) {
        Ok(levels) => levels,
        Err(response) => return response,
    };
    let count = levels.len();
    let mut refused = match set_stock(&app, &network, levels).await {
        Ok(refused) => refused,
        Err(response) => return response,
    };
    if refused.is_empty() {
        return HttpResponse::Ok().json(serde_json::json!({"applied": count, "refused": []}));
    }
    refused.sort_by_key(|(position, _, _)| *position);
    let rows: Vec<serde_json::Value> = refused
        .iter()
        .map(|(_, level, problem)| {
            serde_json::json!({
                "warehouse": network.warehouse_name(level.warehouse),
                "sku": app.catalog.sku_name(level.sku),
                "on_hand": level.on_hand,
                "reason": problem.to_string(),
            })
        })
        .collect();
    HttpResponse::Conflict().json(serde_json::json!({
        "error": {
            "code": "below_reserved",
            "message": format!("{} of {count} levels were below the units already reserved and were not applied", rows.len()),
        },
        "applied": count - rows.len(),
        "refused": rows,
    }))
}

/// The levels of an upload in the format its `Content-Type` names; `415` for another
/// format, `400` naming the first bad row.
fn read_levels(
    request: &HttpRequest,
    body: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<Vec<StockLevel>, HttpResponse> {
    let content_type = content_type(request);
    let levels = if content_type.starts_with("text/csv") {
        let source = std::path::Path::new("request body");
        crate::catalog::read_stock(body, source, network, catalog)
            .map_err(|problem| problem.to_string())
    } else if content_type.starts_with("application/x-ndjson") {
        crate::serve::views::stock_ndjson(body, network, catalog)
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("stock comes as text/csv or application/x-ndjson, got {content_type:?}"),
        ));
    };
    levels.map_err(|message| error(StatusCode::BAD_REQUEST, "bad_stock", message))
}

/// Sends each zone its own warehouses' levels; the refused ones come back with their
/// position in `levels` (unsorted), or `503` when a zone actor is gone.
async fn set_stock(
    app: &App,
    network: &Arc<Network>,
    levels: Vec<StockLevel>,
) -> Result<Vec<(usize, StockLevel, ZoneError)>, HttpResponse> {
    let mut by_zone: Vec<(Vec<usize>, Vec<StockLevel>)> =
        (0..app.zones.len()).map(|_| Default::default()).collect();
    for (position, level) in levels.into_iter().enumerate() {
        let zone = network.warehouses[level.warehouse.index()].zone;
        by_zone[zone.index()].0.push(position);
        by_zone[zone.index()].1.push(level);
    }
    let mut refused = Vec::new();
    for (zone, (positions, levels)) in by_zone.into_iter().enumerate() {
        if levels.is_empty() {
            continue;
        }
        let request = crate::serve::zone_actor::SetStock {
            levels,
            network: network.clone(),
        };
        match app.zones.zone(ZoneId(zone as u16)).send(request).await {
            Ok(zone_refused) => refused.extend(
                zone_refused
                    .into_iter()
                    .map(|(index, level, problem)| (positions[index], level, problem)),
            ),
            Err(_) => return Err(unavailable()),
        }
    }
    Ok(refused)
}

/// `GET /v1/stock`: every level with units on hand or reserved, as CSV, in warehouse order.
pub(super) async fn export_stock(app: web::Data<App>) -> HttpResponse {
    let network = app.network();
    let request = || crate::serve::zone_actor::StockExport {
        network: network.clone(),
    };
    let Some(zones) = app.ask_every_zone(request).await else {
        return unavailable();
    };
    let mut warehouses: Vec<(WarehouseId, Vec<u8>)> = zones.into_iter().flatten().collect();
    warehouses.sort_by_key(|(warehouse, _)| *warehouse);
    let mut csv = b"warehouse,sku,on_hand,reserved,available\n".to_vec();
    for (_, rows) in warehouses {
        csv.extend_from_slice(&rows);
    }
    HttpResponse::Ok().content_type("text/csv").body(csv)
}
