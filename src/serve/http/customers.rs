//! `/v1/customers`: the credit limits of the risk screen, set at run time, and a customer's
//! standing (limit, open exposure).
//!
//! Limits come from the customers file (`--customers`) at start, then from
//! `PUT /v1/customers`. What the API set is kept in `<data-dir>/customers.api.csv`
//! (rewritten whole, atomically, before the PUT is answered) and applied over the file at
//! the next start: a limit set through the API survives a restart, and wins over the file's
//! row for that customer until the API changes it again.

use super::{content_type, error, read_body, unavailable};
use crate::limits::MAX_CUSTOMERS_BODY_BYTES;
use crate::risk::customers::{self, CustomerLimit};
use crate::risk::{CustomerBook, CustomersError};
use crate::serve::App;
use crate::serve::zone_actor::SyncCustomers;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context as _;
use compact_str::CompactString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The file under the data dir that holds the limits set through the API.
pub const API_FILE: &str = "customers.api.csv";

/// Serialises the rewrites of [`API_FILE`].
static API_FILE_LOCK: Mutex<()> = Mutex::new(());

/// The customer book at start: the customers file's limits, then those the API set before.
pub fn load(
    file: &[CustomerLimit],
    data_dir: &Path,
    zones: usize,
) -> anyhow::Result<Arc<CustomerBook>> {
    let book = CustomerBook::new(zones);
    for row in file {
        book.set_limit(&row.customer, row.credit_limit);
    }
    let api = read_api_file(&data_dir.join(API_FILE))?;
    for row in &api {
        book.set_limit(&row.customer, row.credit_limit);
    }
    let limited = book.limits().len();
    if limited > 0 || !api.is_empty() {
        tracing::info!(
            "customers: {} rows from the customers file, {} set through the API; {limited} with a credit limit",
            file.len(),
            api.len()
        );
    }
    Ok(Arc::new(book))
}

fn read_api_file(path: &Path) -> anyhow::Result<Vec<CustomerLimit>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    customers::read_file(path)
        .with_context(|| format!("reading the API's customer limits {}", path.display()))
}

/// `PUT /v1/customers`: credit limits, as a customers CSV (`text/csv`) or a JSON array of
/// `{"customer","credit_limit"}` (`application/json`); an empty or `null` limit lifts one.
/// Checked whole first (a bad row refuses the body: 400, nothing applied), made durable,
/// then applied: an order decided after the answer is screened against the new limits.
pub(super) async fn put_customers(
    request: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    let body = match read_body(
        &request,
        &mut payload,
        MAX_CUSTOMERS_BODY_BYTES,
        "too_large",
        "a customers upload",
    )
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let media = content_type(&request).to_ascii_lowercase();
    let rows = if media.starts_with("text/csv") {
        customers::read_csv(body.as_slice())
    } else if media.starts_with("application/json") {
        customers::read_json(&body)
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the customers as text/csv (customer,credit_limit) or application/json",
        );
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(problem) => return bad_rows(&problem),
    };
    let path = app.data_dir.join(API_FILE);
    let saved = {
        let rows = rows.clone();
        web::block(move || save_api_rows(&path, &rows)).await
    };
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(problem)) => {
            tracing::error!("saving customer limits: {problem:#}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("the limits could not be saved: {problem:#}"),
            );
        }
        Err(problem) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("the limits could not be saved: {problem}"),
            );
        }
    }
    // A customer new to the book has open orders no zone charged: every zone adds up its
    // own before the answer, and charges them from then on (a customer some zone has yet
    // to sync, from an earlier PUT still under way or cut short, is synced again).
    let fresh: Vec<CompactString> = rows
        .iter()
        .filter(|row| app.zones.customers.track(&row.customer, row.credit_limit))
        .map(|row| CompactString::new(&row.customer))
        .collect();
    if !fresh.is_empty() {
        let customers: Arc<[CompactString]> = fresh.into();
        // Its own task: a client that goes away does not leave the zones half synced (a
        // PUT again would finish it too).
        let app = app.clone();
        let synced = actix_rt::spawn(async move {
            app.ask_every_zone(|| SyncCustomers {
                customers: customers.clone(),
            })
            .await
        })
        .await;
        if !matches!(synced, Ok(Some(_))) {
            return unavailable();
        }
    }
    HttpResponse::Ok().json(serde_json::json!({"applied": rows.len()}))
}

fn bad_rows(problem: &CustomersError) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "bad_customers",
        format!("nothing applied: {problem}"),
    )
}

/// Merges `rows` into the API's file, rewritten whole: a temporary file, synced, renamed
/// over the old one, the directory synced.
fn save_api_rows(path: &Path, rows: &[CustomerLimit]) -> anyhow::Result<()> {
    let _guard = API_FILE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut merged: BTreeMap<String, Option<i64>> = read_api_file(path)?
        .into_iter()
        .map(|row| (row.customer, row.credit_limit))
        .collect();
    for row in rows {
        merged.insert(row.customer.clone(), row.credit_limit);
    }
    let rows: Vec<CustomerLimit> = merged
        .into_iter()
        .map(|(customer, credit_limit)| CustomerLimit {
            customer,
            credit_limit,
        })
        .collect();
    let text = customers::write_csv(&rows);
    let temporary: PathBuf = path.with_extension("csv.tmp");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `GET /v1/customers/{id}`: the customer's credit limit, open exposure and open orders.
pub(super) async fn get_customer(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    let customer = path.into_inner();
    HttpResponse::Ok().json(app.zones.customers.exposure(&customer))
}
