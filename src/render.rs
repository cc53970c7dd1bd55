//! Decisions and `invalid` records as contract JSON (DESIGN section 4).
//!
//! Decisions hold indexes; rendering looks the names up in the network and catalogue it was
//! decided under. Numbers are rounded for people and for byte-stable output: distances to
//! 0.1 km, weights to the gram, costs to the cent. Field order is fixed, so the same decision
//! always renders to the same bytes.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::model::{Decision, Invalid, LineQuantity, Shipment};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};

/// Appends `decision` as one JSON line (with `\n`) to `out`.
pub fn write_decision(
    out: &mut Vec<u8>,
    decision: &Decision,
    duplicate: bool,
    network: &Network,
    catalog: &Catalog,
) {
    let view = DecisionJson {
        decision,
        duplicate,
        network,
        catalog,
    };
    serde_json::to_writer(&mut *out, &view).expect("writing JSON to a Vec cannot fail");
    out.push(b'\n');
}

/// Appends an `invalid` record for input line `line` as one JSON line to `out`.
pub fn write_invalid(out: &mut Vec<u8>, line: u64, invalid: &Invalid) {
    let view = InvalidJson { line, invalid };
    serde_json::to_writer(&mut *out, &view).expect("writing JSON to a Vec cannot fail");
    out.push(b'\n');
}

fn round_to(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

/// Borrowed view that serialises a decision with names.
pub struct DecisionJson<'a> {
    pub decision: &'a Decision,
    pub duplicate: bool,
    pub network: &'a Network,
    pub catalog: &'a Catalog,
}

impl Serialize for DecisionJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let decision = self.decision;
        let fields = if self.duplicate { 9 } else { 8 };
        let mut out = serializer.serialize_struct("Decision", fields)?;
        out.serialize_field("order_id", decision.order_id.as_str())?;
        out.serialize_field("status", decision.status.name())?;
        out.serialize_field("zone", self.network.zone_name(decision.zone))?;
        out.serialize_field("seq", &decision.seq)?;
        out.serialize_field("decided_at", &Display(decision.decided_at))?;
        out.serialize_field(
            "shipments",
            &Shipments {
                shipments: &decision.shipments,
                network: self.network,
                catalog: self.catalog,
            },
        )?;
        out.serialize_field(
            "backordered",
            &Lines {
                lines: &decision.backordered,
                catalog: self.catalog,
            },
        )?;
        match &decision.reason {
            None => out.serialize_field("reason", &())?,
            Some(reason) => out.serialize_field(
                "reason",
                &CodeMessage {
                    code: reason.code.name(),
                    message: &reason.message,
                },
            )?,
        }
        if self.duplicate {
            out.serialize_field("duplicate", &true)?;
        }
        out.end()
    }
}

/// Serialises through `Display` (times).
struct Display<T>(T);

impl<T: std::fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[derive(Serialize)]
struct CodeMessage<'a> {
    code: &'a str,
    message: &'a str,
}

struct Shipments<'a> {
    shipments: &'a [Shipment],
    network: &'a Network,
    catalog: &'a Catalog,
}

impl Serialize for Shipments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.shipments.len()))?;
        for shipment in self.shipments {
            seq.serialize_element(&ShipmentJson {
                shipment,
                network: self.network,
                catalog: self.catalog,
            })?;
        }
        seq.end()
    }
}

struct ShipmentJson<'a> {
    shipment: &'a Shipment,
    network: &'a Network,
    catalog: &'a Catalog,
}

impl Serialize for ShipmentJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shipment = self.shipment;
        let mut out = serializer.serialize_struct("Shipment", 9)?;
        out.serialize_field("warehouse", self.network.warehouse_name(shipment.warehouse))?;
        out.serialize_field("carrier", self.network.carrier_name(shipment.carrier))?;
        out.serialize_field("service", shipment.level.name())?;
        out.serialize_field(
            "lines",
            &Lines {
                lines: &shipment.lines,
                catalog: self.catalog,
            },
        )?;
        out.serialize_field("distance_km", &round_to(shipment.distance_km, 10.0))?;
        out.serialize_field("weight_kg", &round_to(shipment.weight_kg, 1000.0))?;
        out.serialize_field("cost", &round_to(shipment.cost, 100.0))?;
        out.serialize_field("eta", &Display(shipment.eta))?;
        out.end()
    }
}

struct Lines<'a> {
    lines: &'a [LineQuantity],
    catalog: &'a Catalog,
}

impl Serialize for Lines<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.lines.len()))?;
        for line in self.lines {
            seq.serialize_element(&LineJson {
                sku: self.catalog.sku_name(line.sku),
                qty: line.quantity,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct LineJson<'a> {
    sku: &'a str,
    qty: u32,
}

struct InvalidJson<'a> {
    line: u64,
    invalid: &'a Invalid,
}

impl Serialize for InvalidJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(4))?;
        out.serialize_entry("line", &self.line)?;
        out.serialize_entry("status", "invalid")?;
        out.serialize_entry("order_id", &self.invalid.order_id.as_deref())?;
        out.serialize_entry(
            "error",
            &CodeMessage {
                code: self.invalid.code.name(),
                message: &self.invalid.message,
            },
        )?;
        out.end()
    }
}
