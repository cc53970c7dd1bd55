//! `/v1/shipments`: many orders marked shipped in one request, as a warehouse system
//! confirms a wave of parcels. `POST /v1/orders/{id}/shipped` does one order a request; at
//! tens of thousands of orders a second a request each costs the warehouse system and the
//! router more than the orders themselves.
//!
//! The body is NDJSON, one shipment a line: `{"id":"T11-00000001"}` (other fields are
//! ignored). The answer is NDJSON too, one line per input line, in input order:
//!
//! ```text
//! {"line":1,"order_id":"T11-00000001","state":"shipped"}
//! {"line":2,"order_id":"T11-00000002","status":"error","error":{"code":"not_live","message":"order 'T11-00000002' is already cancelled"}}
//! {"line":3,"status":"error","error":{"code":"bad_json","message":"..."}}
//! {"line":4,"order_id":"T11-00000004","state":"shipped","already":true}
//! ```
//!
//! Each shipment means what `POST /v1/orders/{id}/shipped` means, with the same refusals
//! (`unknown_order`, `undecided`, `not_live`, `awaiting_review`) but one: an order shipped
//! before is answered `"state":"shipped","already":true`, not refused, so that a warehouse
//! system that lost an answer can send the whole wave again. The lines for one zone
//! go to its actor as one message and into its journal as one commit; the request is
//! answered once every zone's commit is durable, so a `200` means every line marked
//! `shipped` is. A refused line changes nothing, and the others still apply. Lines are read
//! as the order stream's are ([`LineSplitter`]); a line that is not a shipment is `bad_json`,
//! `missing_field` or `line_too_long`.

use super::orders::refusal;
use super::{draining, error, read_body, shown, unavailable};
use crate::ids::ZoneId;
use crate::ingest::{Line, LineSplitter};
use crate::limits::{MAX_SHIPMENTS_BODY_BYTES, MAX_SHIPMENTS_PER_REQUEST};
use crate::render::LineError;
use crate::serve::App;
use crate::serve::zone_actor::{OrderAction, OrderBatch};
use crate::zone::{Lifecycle, ZoneError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// One line of a shipments body.
#[derive(Deserialize)]
struct ShipmentLine {
    id: Option<String>,
}

/// One line of the answer.
#[derive(Serialize)]
struct Answer<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    /// `true` when the order was shipped before this request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    already: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError<'a>>,
}

/// What became of one line.
enum Outcome {
    /// Sent to its zone, not answered yet.
    Sent,
    /// The order's state after the shipment.
    Done(&'static str),
    /// Shipped before this request.
    Already,
    /// Refused: the code and the message.
    Refused(&'static str, String),
}

/// `POST /v1/shipments`: marks the orders the NDJSON body names shipped.
pub(super) async fn post_shipments(
    request: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    if app.is_draining() {
        return draining();
    }
    let body = match read_body(
        &request,
        &mut payload,
        MAX_SHIPMENTS_BODY_BYTES,
        "too_large",
        "a shipments body",
    )
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let network = app.network();
    let Ledger {
        ids,
        mut outcomes,
        by_zone,
    } = Ledger::read(&app, &body, network.limits.max_line_bytes);
    if ids.len() > MAX_SHIPMENTS_PER_REQUEST {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_shipments",
            format!(
                "a request carries at most {MAX_SHIPMENTS_PER_REQUEST} shipments, this one {}",
                ids.len()
            ),
        );
    }
    let sent = by_zone.into_iter().map(|(zone, items)| {
        app.zones.zone(zone).send(OrderBatch {
            items,
            action: OrderAction::Ship,
            network: network.clone(),
        })
    });
    for answered in futures_util::future::join_all(sent).await {
        let Ok(answered) = answered else {
            return unavailable();
        };
        for (position, outcome) in answered {
            outcomes[position as usize] = match outcome {
                Ok(state) => Outcome::Done(state),
                // Shipped before (a wave sent again after a lost answer): what was asked
                // is so, and said so.
                Err(ZoneError::NotLive { state, .. }) if state == Lifecycle::Shipped.name() => {
                    Outcome::Already
                }
                Err(problem) => Outcome::Refused(refusal(&problem).1, problem.to_string()),
            };
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(render(&ids, &outcomes))
}

/// The lines sent to each zone: `(position, slot)` of each, by zone.
type ByZone = Vec<(ZoneId, Vec<(u32, u32)>)>;

/// Each line's order id (when it names one) and outcome, by position, and the lines sent
/// to each zone.
struct Ledger {
    ids: Vec<Option<String>>,
    outcomes: Vec<Outcome>,
    by_zone: ByZone,
}

impl Ledger {
    /// Reads the NDJSON `body` a line at a time, as the order stream's lines are read: each
    /// line refused at once (not a shipment, an unknown or undecided order, too long) or
    /// sent, with its position and slot, to the zone holding its order. Past
    /// [`MAX_SHIPMENTS_PER_REQUEST`] lines are only counted (the request is refused).
    fn read(app: &App, body: &[u8], max_line_bytes: usize) -> Ledger {
        let mut ledger = Ledger {
            ids: Vec::new(),
            outcomes: Vec::new(),
            by_zone: Vec::new(),
        };
        each_line(body, max_line_bytes, |line| {
            let (id, outcome) = if ledger.ids.len() >= MAX_SHIPMENTS_PER_REQUEST {
                (None, Outcome::Sent)
            } else {
                ledger.line(app, line)
            };
            ledger.ids.push(id);
            ledger.outcomes.push(outcome);
        });
        ledger
    }

    /// The id line `line` names and what became of it.
    fn line(&mut self, app: &App, line: Line<'_>) -> (Option<String>, Outcome) {
        let refused = |code, message| (None, Outcome::Refused(code, message));
        let line = match line {
            Line::Complete { bytes, .. } => bytes,
            Line::TooLong { bytes, .. } => {
                return refused(
                    "line_too_long",
                    format!("a line of {bytes} bytes: a shipment is one short JSON object"),
                );
            }
        };
        let id = match serde_json::from_slice::<ShipmentLine>(line) {
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => {
                return refused(
                    "bad_json",
                    "empty line: expected one shipment, {\"id\": ...}".to_owned(),
                );
            }
            Err(problem) => return refused("bad_json", format!("not a shipment: {problem}")),
            Ok(ShipmentLine { id: None }) => {
                return refused("missing_field", "missing field 'id'".to_owned());
            }
            Ok(ShipmentLine { id: Some(id) }) => id,
        };
        let outcome = match app.zones.claims.get(&id) {
            None => Outcome::Refused(
                "unknown_order",
                format!("order '{}' is not known", shown(&id)),
            ),
            Some(claim) if !claim.is_decided() => Outcome::Refused(
                "undecided",
                format!(
                    "order '{}' is being decided; ask again in a moment",
                    shown(&id)
                ),
            ),
            Some(claim) => {
                let item = (self.ids.len() as u32, claim.slot);
                match self
                    .by_zone
                    .iter_mut()
                    .find(|(zone, _)| *zone == claim.zone)
                {
                    Some((_, items)) => items.push(item),
                    None => self.by_zone.push((claim.zone, vec![item])),
                }
                Outcome::Sent
            }
        };
        (Some(id), outcome)
    }
}

/// Calls `on_line` for each line of `body` ([`LineSplitter`]'s lines: a final newline ends
/// the last line, a `\r` before a newline is dropped).
fn each_line(body: &[u8], max_line_bytes: usize, mut on_line: impl FnMut(Line<'_>)) {
    let mut splitter = LineSplitter::new(max_line_bytes);
    splitter.feed(body, &mut on_line);
    splitter.finish(on_line);
}

/// The answer: a line per input line, in input order.
fn render(ids: &[Option<String>], outcomes: &[Outcome]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 64);
    for (position, (id, outcome)) in ids.iter().zip(outcomes).enumerate() {
        let mut answer = Answer {
            line: position as u64 + 1,
            order_id: id.as_deref(),
            state: None,
            already: false,
            status: None,
            error: None,
        };
        match outcome {
            Outcome::Done(state) => answer.state = Some(state),
            Outcome::Already => {
                answer.state = Some(Lifecycle::Shipped.name());
                answer.already = true;
            }
            Outcome::Refused(code, message) => {
                answer.status = Some("error");
                answer.error = Some(LineError { code, message });
            }
            // Every zone answers each shipment it was sent; kept from a panic all the same.
            Outcome::Sent => {
                answer.status = Some("error");
                answer.error = Some(LineError {
                    code: "unavailable",
                    message: "its zone did not answer",
                });
            }
        }
        serde_json::to_writer(&mut out, &answer).expect("writing JSON to a Vec cannot fail");
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::each_line;
    use crate::ingest::Line;

    fn split_lines(body: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        each_line(body, 100, |line| match line {
            Line::Complete { bytes, .. } => lines.push(bytes.to_vec()),
            Line::TooLong { .. } => panic!("no line here is too long"),
        });
        lines
    }

    #[test]
    fn lines_are_split_as_ndjson_is() {
        let lines = |list: &[&[u8]]| list.iter().map(|line| line.to_vec()).collect::<Vec<_>>();
        assert!(split_lines(b"").is_empty());
        assert_eq!(split_lines(b"a\n"), lines(&[b"a"]));
        assert_eq!(split_lines(b"a\r\nb"), lines(&[b"a", b"b"]));
        assert_eq!(split_lines(b"a\n\nb\n"), lines(&[b"a", b"", b"b"]));
        assert_eq!(split_lines(b"\n"), lines(&[b""]));
    }
}
