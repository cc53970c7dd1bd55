//! One NDJSON line to a validated, interned [`Order`] (DESIGN section 4), or an [`Invalid`]
//! that says what is wrong.
//!
//! serde_json parses into borrowed structs (`Cow<str>` borrows unless the JSON string has
//! escapes); the basket and the tags are checked, interned and hashed element by element
//! while serde_json walks them (a `DeserializeSeed` carrying the catalogue), so a clean
//! order allocates nothing but what the order itself keeps (ids longer than 24 bytes and
//! more than four lines). Checks run in a fixed order after the whole line has parsed: a
//! syntax error anywhere is `bad_json`, and of several problems the same one is reported
//! whatever the order of the fields.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::ids::{Interner, RegionId, TierId};
use crate::limits::MAX_LINE_QUANTITY;
use crate::model::{Invalid, InvalidCode, Order, OrderLine, ServiceLevel};
use crate::time::Millis;
use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;
use std::borrow::Cow;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The top-level fields of an order as serde_json walks the line. Lines and tags are not
/// kept as raw values: [`LinesSeed`] and [`TagsSeed`] intern, check and hash each element as
/// it is parsed, so a clean order never materialises (or moves, or frees) a raw basket.
#[derive(Default)]
struct RawOrder<'a> {
    id: Option<Text<'a>>,
    customer: Option<RawCustomer<'a>>,
    ship_to: Option<RawShipTo<'a>>,
    service: Option<Text<'a>>,
    promise_by: Option<Text<'a>>,
    lines: Option<ParsedLines>,
    split: Option<Text<'a>>,
    tags: Option<ParsedTags>,
    created_at: Option<Text<'a>>,
}

/// The order's field names; anything else is ignored, as the contract says.
#[derive(Clone, Copy, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Id,
    Customer,
    ShipTo,
    Service,
    PromiseBy,
    Lines,
    Split,
    Tags,
    CreatedAt,
    #[serde(other)]
    Unknown,
}

impl Field {
    /// The error for a field given twice (rare: kept out of the parsing loop).
    #[cold]
    #[inline(never)]
    fn duplicate<E: serde::de::Error>(self) -> E {
        // In the order of `Field`.
        const NAMES: [&str; 9] = [
            "id",
            "customer",
            "ship_to",
            "service",
            "promise_by",
            "lines",
            "split",
            "tags",
            "created_at",
        ];
        E::duplicate_field(NAMES[self as usize])
    }
}

/// Deserialises one order with the tables its lines and tags are checked against.
struct OrderSeed<'t> {
    network: &'t Network,
    catalog: &'t Catalog,
}

impl<'de> DeserializeSeed<'de> for OrderSeed<'_> {
    type Value = RawOrder<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OrderSeed<'_> {
    type Value = RawOrder<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an order object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawOrder<'de>, A::Error> {
        let mut order = RawOrder::default();
        // Like serde's derive: a field given twice is an error even if the first was
        // `null`; an unknown one is skipped.
        let mut seen = 0u16;
        while let Some(field) = map.next_key::<Field>()? {
            if !matches!(field, Field::Unknown) {
                let bit = 1 << field as u16;
                if seen & bit != 0 {
                    return Err(field.duplicate());
                }
                seen |= bit;
            }
            match field {
                Field::Id => order.id = map.next_value()?,
                Field::Customer => order.customer = map.next_value()?,
                Field::ShipTo => order.ship_to = map.next_value()?,
                Field::Service => order.service = map.next_value()?,
                Field::PromiseBy => order.promise_by = map.next_value()?,
                Field::Split => order.split = map.next_value()?,
                Field::CreatedAt => order.created_at = map.next_value()?,
                Field::Lines => {
                    let seed = Nullable(LinesSeed {
                        catalog: self.catalog,
                        limit: self.network.limits.max_lines_per_order,
                    });
                    order.lines = map.next_value_seed(seed)?;
                }
                Field::Tags => {
                    let seed = Nullable(TagsSeed {
                        hold_tags: &self.network.policy.hold_tags,
                        rule_tags: &self.network.policy.rules.tag_ids,
                    });
                    order.tags = map.next_value_seed(seed)?;
                }
                Field::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(order)
    }
}

/// A string field that borrows from the line unless it has escapes. `Cow<str>` on its own
/// always deserialises owned, and so does `Option<Cow<str>>` even under derive's
/// `#[serde(borrow)]` (which borrows a bare `Cow` only): five allocations per order until
/// this type replaced them.
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// `null` or what the inner seed makes of the value (`Option<T>` for seeds).
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a value or null")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

/// The basket as parsed: the lines interned so far, and the first thing wrong with one.
struct ParsedLines {
    lines: SmallVec<[OrderLine; 4]>,
    /// How many lines the array held (it may hold more than `lines` when one is wrong or
    /// there are too many).
    count: usize,
    /// The first line that is wrong, in line order.
    error: Option<Invalid>,
    /// Hash of the lines' content, in order (see [`validate`]).
    hash: u64,
}

/// Checks each element of `lines` as serde_json parses it. Elements after the first wrong
/// one, or past the limit, are still parsed (a later syntax error is still `bad_json`) but
/// not checked.
struct LinesSeed<'t> {
    catalog: &'t Catalog,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for LinesSeed<'_> {
    type Value = ParsedLines;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LinesSeed<'_> {
    type Value = ParsedLines;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an array of order lines")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedLines, A::Error> {
        let mut parsed = ParsedLines {
            lines: SmallVec::new(),
            count: 0,
            error: None,
            hash: 0,
        };
        while let Some(raw) = seq.next_element::<RawLine>()? {
            let index = parsed.count;
            parsed.count += 1;
            if parsed.error.is_some() || index >= self.limit {
                continue;
            }
            match check_line(self.catalog, index, &raw) {
                Ok(line) => {
                    let sku = raw.sku.as_deref().unwrap_or_default();
                    let mut hash = parsed.hash;
                    hash = xxh3_64_with_seed(sku.as_bytes(), hash);
                    hash = xxh3_64_with_seed(&line.quantity.to_le_bytes(), hash);
                    parsed.hash = xxh3_64_with_seed(&line.unit_price.to_le_bytes(), hash);
                    parsed.lines.push(line);
                }
                Err(invalid) => parsed.error = Some(invalid),
            }
        }
        Ok(parsed)
    }
}

/// The tags as parsed: whether one of them is a hold tag, which rule tags they are, and
/// their hash.
struct ParsedTags {
    hold: bool,
    rule_tags: u64,
    hash: u64,
}

struct TagsSeed<'t> {
    hold_tags: &'t [String],
    /// The tags the routing rules name (empty when no rule does: no lookup at all).
    rule_tags: &'t Interner,
}

impl<'de> DeserializeSeed<'de> for TagsSeed<'_> {
    type Value = ParsedTags;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed<'_> {
    type Value = ParsedTags;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedTags, A::Error> {
        let mut tags = ParsedTags {
            hold: false,
            rule_tags: 0,
            hash: 0,
        };
        while let Some(Text(tag)) = seq.next_element::<Text<'de>>()? {
            tags.hold |= self.hold_tags.iter().any(|hold| *hold == tag);
            if !self.rule_tags.is_empty()
                && let Some(index) = self.rule_tags.get(&tag)
            {
                tags.rule_tags |= 1 << index;
            }
            tags.hash = xxh3_64_with_seed(tag.as_bytes(), tags.hash);
        }
        Ok(tags)
    }
}

#[derive(Deserialize)]
struct RawCustomer<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    tier: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RawShipTo<'a> {
    #[serde(borrow)]
    region: Option<Text<'a>>,
    // Numbers are taken as `Number` so a wrong type is a `bad_coordinates`, not a `bad_json`.
    lat: Option<Number>,
    lon: Option<Number>,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    sku: Option<Text<'a>>,
    qty: Option<Number>,
    unit_price: Option<Number>,
}

/// A JSON value where a number is expected: the number, or what was there instead. Cheaper
/// than `serde_json::Value` (no map or string is built) and lets a wrong type become the
/// field's own error code. `null` deserialises as `None` around it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// Not a number: the JSON type found.
    Other(&'static str),
}

impl Number {
    fn as_u64(self) -> Option<u64> {
        match self {
            Number::Unsigned(value) => Some(value),
            _ => None,
        }
    }

    fn as_f64(self) -> Option<f64> {
        match self {
            Number::Unsigned(value) => Some(value as f64),
            Number::Signed(value) => Some(value as f64),
            Number::Float(value) => Some(value),
            Number::Other(_) => None,
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Unsigned(value) => write!(formatter, "{value}"),
            Number::Signed(value) => write!(formatter, "{value}"),
            Number::Float(value) => write!(formatter, "{value}"),
            Number::Other(kind) => write!(formatter, "a {kind}"),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Number;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a number")
            }
            fn visit_u64<E>(self, value: u64) -> Result<Number, E> {
                Ok(Number::Unsigned(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Number, E> {
                Ok(Number::Signed(value))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Number, E> {
                Ok(Number::Float(value))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Number, E> {
                Ok(Number::Other("boolean"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Number, E> {
                Ok(Number::Other("string"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Number, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Number::Other("array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Number, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Number::Other("object"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Whether `id` is 1-64 characters of `A-Za-z0-9._:-` (the contract's order id), and not
/// `.` or `..`: an id is a path segment (`/v1/orders/{id}`), where those two mean the
/// folder itself and its parent.
///
/// ```
/// use order_router::ingest::is_valid_order_id;
/// assert!(is_valid_order_id("T11-000001"));
/// assert!(is_valid_order_id("...") && is_valid_order_id(".a"));
/// assert!(!is_valid_order_id("T11 000001"));
/// assert!(!is_valid_order_id(""));
/// assert!(!is_valid_order_id(".") && !is_valid_order_id(".."));
/// ```
pub fn is_valid_order_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'))
        && id != "."
        && id != ".."
}

/// Parses and validates one order line (without its newline).
pub fn parse_order(line: &[u8], network: &Network, catalog: &Catalog) -> Result<Order, Invalid> {
    // The whole line is checked for UTF-8 at once (word at a time over ASCII), which costs
    // a fraction of serde_json checking every string it borrows on its own; serde_json then
    // reads it as a `str` and checks nothing again.
    let text = std::str::from_utf8(line).map_err(|utf8| {
        Invalid::new(
            InvalidCode::BadUtf8,
            format!("invalid UTF-8 at byte {}", utf8.valid_up_to() + 1),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = OrderSeed { network, catalog };
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|raw| deserializer.end().map(|()| raw));
    let raw = parsed.map_err(|error| {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Invalid::new(InvalidCode::BadJson, "empty line: expected one JSON order");
        }
        let message = match error.classify() {
            serde_json::error::Category::Data => format!("not an order: {error}"),
            _ => format!("malformed JSON: {error}"),
        };
        Invalid::new(InvalidCode::BadJson, message)
    })?;

    let Some(id) = raw.id.as_deref() else {
        return Err(Invalid::new(
            InvalidCode::MissingField,
            "missing field 'id'",
        ));
    };
    if !is_valid_order_id(id) {
        return Err(Invalid::new(
            InvalidCode::BadId,
            format!(
                "'id' must be 1-64 characters of A-Za-z0-9._:- other than \".\" and \"..\", got {:?}",
                truncate(id, 80)
            ),
        ));
    }
    let order_id = CompactString::new(id);
    validate(raw, network, order_id.clone()).map_err(|mut invalid| {
        invalid.order_id = Some(order_id);
        invalid
    })
}

/// Checks everything past the id (already validated and passed as `id`), in a fixed order
/// (the first problem found is the one reported): customer, ship-to, service, times,
/// split, lines.
fn validate(fields: RawOrder, network: &Network, id: CompactString) -> Result<Order, Invalid> {
    let (customer_id, tier) = customer(fields.customer, network)?;
    let destination = destination(fields.ship_to, network)?;
    let service = service(fields.service.as_deref())?;
    let promise_by = time_field(fields.promise_by.as_deref(), "promise_by")?;
    let created_at = time_field(fields.created_at.as_deref(), "created_at")?;
    let split_allowed = split(fields.split.as_deref(), network)?;
    let mut parsed_lines = fields.lines.ok_or_else(|| missing("lines"))?;
    check_lines(&mut parsed_lines, network)?;
    let (hold_tagged, rule_tags, tags_hash) = fields
        .tags
        .map_or((false, 0, 0), |tags| (tags.hold, tags.rule_tags, tags.hash));
    // The content hash covers what the order asks for; `created_at` (when the message was
    // made) and unknown fields are left out, so a retry that restamps them is a duplicate.
    // Each field is hashed on its own, seeded with the hash so far: field boundaries count,
    // and xxh3 of a short input costs a few dozen instructions, less than building one buffer.
    let mut hash = 0u64;
    let mut put = |bytes: &[u8]| hash = xxh3_64_with_seed(bytes, hash);
    put(id.as_bytes());
    put(customer_id.as_bytes());
    put(network.tier_name(tier).as_bytes());
    put(destination.region_name.as_bytes());
    if !destination.at_region_centroid {
        put(&destination.latitude.to_le_bytes());
        put(&destination.longitude.to_le_bytes());
    }
    put(service.name().as_bytes());
    put(&promise_by.map_or(i64::MIN, |time| time.0).to_le_bytes());
    put(&[u8::from(split_allowed)]);
    // Lines and tags were hashed as they were parsed.
    put(&parsed_lines.hash.to_le_bytes());
    put(&tags_hash.to_le_bytes());
    let content_hash = hash;

    Ok(Order {
        id,
        customer_id: CompactString::new(&customer_id),
        tier,
        region: destination.region,
        latitude: destination.latitude,
        longitude: destination.longitude,
        at_region_centroid: destination.at_region_centroid,
        service,
        promise_by,
        lines: parsed_lines.lines,
        split_allowed,
        hold_tagged,
        rule_tags,
        created_at,
        content_hash,
    })
}

/// `missing_field` naming `name`.
fn missing(name: &str) -> Invalid {
    Invalid::new(InvalidCode::MissingField, format!("missing field '{name}'"))
}

/// The customer's id (not empty) and tier (the default tier when none is named).
fn customer<'a>(
    customer: Option<RawCustomer<'a>>,
    network: &Network,
) -> Result<(Text<'a>, TierId), Invalid> {
    let customer = customer.ok_or_else(|| missing("customer"))?;
    let customer_id = customer.id.ok_or_else(|| missing("customer.id"))?;
    if customer_id.is_empty() {
        return Err(Invalid::new(
            InvalidCode::BadField,
            "'customer.id' is empty",
        ));
    }
    let tier = match customer.tier.as_deref() {
        None => network.default_tier,
        Some(name) => TierId(network.tier_ids.get(name).ok_or_else(|| {
            let known: Vec<_> = network.tier_ids.names().collect();
            Invalid::new(
                InvalidCode::UnknownTier,
                format!(
                    "unknown customer.tier {:?}; known: {}",
                    truncate(name, 40),
                    known.join(", ")
                ),
            )
        })? as u16),
    };
    Ok((customer_id, tier))
}

/// Where an order ships: its region (as named and as interned) and the point in it.
struct Destination<'a> {
    region_name: Text<'a>,
    region: RegionId,
    latitude: f64,
    longitude: f64,
    /// No coordinates were given: the point is the region's centroid.
    at_region_centroid: bool,
}

/// `ship_to`: a known region, and either both coordinates (on the globe) or neither.
fn destination<'a>(
    ship_to: Option<RawShipTo<'a>>,
    network: &Network,
) -> Result<Destination<'a>, Invalid> {
    let ship_to = ship_to.ok_or_else(|| missing("ship_to"))?;
    let region_name = ship_to.region.ok_or_else(|| missing("ship_to.region"))?;
    let region = RegionId(network.region_ids.get(&region_name).ok_or_else(|| {
        Invalid::new(
            InvalidCode::UnknownRegion,
            format!("unknown ship_to.region {:?}", truncate(&region_name, 40)),
        )
    })? as u16);
    let (latitude, longitude, at_region_centroid) = match (&ship_to.lat, &ship_to.lon) {
        (None, None) => {
            let centroid = &network.regions[region.index()];
            (centroid.latitude, centroid.longitude, true)
        }
        (Some(latitude), Some(longitude)) => {
            let latitude = coordinate(*latitude, "ship_to.lat", 90.0)?;
            let longitude = coordinate(*longitude, "ship_to.lon", 180.0)?;
            (latitude, longitude, false)
        }
        _ => {
            return Err(Invalid::new(
                InvalidCode::BadCoordinates,
                "ship_to.lat and ship_to.lon must be given together",
            ));
        }
    };
    Ok(Destination {
        region_name,
        region,
        latitude,
        longitude,
        at_region_centroid,
    })
}

/// The service level asked for (`standard` when none is).
fn service(name: Option<&str>) -> Result<ServiceLevel, Invalid> {
    match name {
        None => Ok(ServiceLevel::Standard),
        Some(name) => ServiceLevel::parse(name).ok_or_else(|| {
            Invalid::new(
                InvalidCode::BadService,
                format!(
                    "unknown service {:?}; known, slowest first: economy, standard, express, same_day",
                    truncate(name, 40)
                ),
            )
        }),
    }
}

/// Whether the order may be split: `allow`, `forbid`, or the policy's default.
fn split(value: Option<&str>, network: &Network) -> Result<bool, Invalid> {
    match value {
        None => Ok(network.policy.default_split),
        Some("allow") => Ok(true),
        Some("forbid") => Ok(false),
        Some(other) => Err(Invalid::new(
            InvalidCode::BadField,
            format!(
                "'split' must be \"allow\" or \"forbid\", got {:?}",
                truncate(other, 40)
            ),
        )),
    }
}

/// The lines, checked as they were parsed: at least one, at most the limit, and the first
/// wrong one reported. (By reference: the lines are not moved until the order is built.)
fn check_lines(parsed_lines: &mut ParsedLines, network: &Network) -> Result<(), Invalid> {
    if parsed_lines.count == 0 {
        return Err(Invalid::new(
            InvalidCode::MissingField,
            "'lines' is empty: an order needs at least one line",
        ));
    }
    let limit = network.limits.max_lines_per_order;
    if parsed_lines.count > limit {
        return Err(Invalid::new(
            InvalidCode::TooManyLines,
            format!(
                "{} lines, at most {limit} are accepted per order",
                parsed_lines.count
            ),
        ));
    }
    match parsed_lines.error.take() {
        Some(invalid) => Err(invalid),
        None => Ok(()),
    }
}

/// Checks and interns line `index` of an order.
fn check_line(catalog: &Catalog, index: usize, raw_line: &RawLine) -> Result<OrderLine, Invalid> {
    let missing =
        |name: String| Invalid::new(InvalidCode::MissingField, format!("missing field '{name}'"));
    let sku_name = raw_line
        .sku
        .as_deref()
        .ok_or_else(|| missing(format!("lines[{index}].sku")))?;
    let sku = catalog.lookup(sku_name).ok_or_else(|| {
        Invalid::new(
            InvalidCode::UnknownSku,
            format!(
                "lines[{index}].sku {:?} is not in the catalogue",
                truncate(sku_name, 64)
            ),
        )
    })?;
    let quantity = match &raw_line.qty {
        None => return Err(missing(format!("lines[{index}].qty"))),
        Some(value) => match value.as_u64() {
            Some(quantity) if (1..=MAX_LINE_QUANTITY).contains(&quantity) => quantity as u32,
            _ => {
                return Err(Invalid::new(
                    InvalidCode::BadQty,
                    format!(
                        "lines[{index}].qty must be a whole number from 1 to {MAX_LINE_QUANTITY}, got {value}"
                    ),
                ));
            }
        },
    };
    let unit_price = match &raw_line.unit_price {
        None => 0.0,
        Some(value) => match value.as_f64() {
            Some(price) if price.is_finite() && price >= 0.0 => price,
            _ => {
                return Err(Invalid::new(
                    InvalidCode::BadField,
                    format!("lines[{index}].unit_price must be a number >= 0, got {value}"),
                ));
            }
        },
    };
    Ok(OrderLine {
        sku,
        quantity,
        unit_price,
    })
}

fn coordinate(value: Number, name: &str, bound: f64) -> Result<f64, Invalid> {
    match value.as_f64() {
        Some(number) if number.is_finite() && (-bound..=bound).contains(&number) => Ok(number),
        _ => Err(Invalid::new(
            InvalidCode::BadCoordinates,
            format!("{name} must be a number within -{bound}..={bound}, got {value}"),
        )),
    }
}

fn time_field(value: Option<&str>, name: &str) -> Result<Option<Millis>, Invalid> {
    match value {
        None => Ok(None),
        Some(text) => Millis::parse_rfc3339(text).map(Some).ok_or_else(|| {
            Invalid::new(
                InvalidCode::BadTime,
                format!(
                    "'{name}' must be an RFC 3339 time such as 2026-11-11T00:00:00Z, got {:?}",
                    truncate(text, 40)
                ),
            )
        }),
    }
}

/// At most `limit` bytes of `text` (on a character boundary), for echoing input in errors.
fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
