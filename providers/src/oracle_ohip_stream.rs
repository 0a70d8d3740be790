//! Oracle OHIP Streaming events: what porter knows of them without any I/O.
//!
//! OPERA Cloud publishes business events through the OHIP Streaming API, a GraphQL
//! subscription over WebSocket (`graphql-transport-ws`), not through webhooks. The connector
//! that holds the socket lives in the server crate (`src/ohip/`); this module has the pure
//! parts it needs, so they can be tested and fuzzed byte for byte:
//!
//! - [`normalize`]: one `newEvent` object → one canonical event. Its key is
//!   `metadata.uniqueEventId` (OHIP delivers at least once: a replay from an offset repeats
//!   the events at and after it, and the key makes them duplicates); the subject is
//!   `primaryKey`, the property `hotelId`; the extensions `ohipoffset`, `ohipmodule`,
//!   `ohipevent` and `ohiptimestamp` keep the stream's own words. The type comes from the
//!   module and event name (table in the README); anything else is `unknown` with the event
//!   kept whole, never a failure of the stream.
//! - [`subscribe_query`]: the `subscription { newEvent(input: {…}) {…} }` text, arguments
//!   inline as Oracle's examples write them.
//! - [`key_hash`]: the `?key=` of the upgrade URL, lowercase hex SHA-256 of the app key.
//! - [`oracle_time`]: Oracle's `28-APR-24 06.18.59.028027 AM` in a configured zone (the
//!   documentation does not say which; the default is UTC).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Rejection;
use crate::event::{
    Attributes, EventBody, GuestData, HousekeepingData, OhipExtensions, Origin, ReservationData,
    RoomData, RoomStatus, UnknownData, hashed_key,
};
use crate::provider::Normalized;

/// The provider id of a streaming source.
pub const PROVIDER: &str = "oracle_ohip_stream";

/// One `newEvent` as the subscription delivers it. Unknown members are ignored; the whole
/// object is kept in the event's `raw`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    metadata: Metadata,
    module_name: String,
    event_name: String,
    #[serde(default)]
    primary_key: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    hotel_id: Option<String>,
    #[serde(default)]
    detail: Option<Vec<Detail>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    offset: String,
    #[serde(default)]
    unique_event_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    element_name: String,
    #[serde(default)]
    new_value: Option<String>,
}

/// A stream event normalized: the event and the offset it was delivered at.
#[derive(Debug)]
pub struct StreamEvent {
    pub normalized: Normalized,
    /// `metadata.offset`, exactly as sent.
    pub offset: String,
}

/// Normalizes one `newEvent` object. `zone` is the zone Oracle's timestamps are written in.
///
/// Refused (`MalformedBody`) only when the object lacks what makes it an event at all: a
/// `metadata.offset`, a module and an event name. Such a frame is the server's fault, and the
/// connector reports it rather than storing it.
pub fn normalize(
    origin: &Origin<'_>,
    event: &Value,
    chain: &str,
    zone: &TimeZone,
) -> Result<StreamEvent, Rejection> {
    let wire = Wire::deserialize(event).map_err(|e| Rejection::MalformedBody {
        format: "OHIP event",
        detail: e.to_string(),
    })?;
    if !is_offset(&wire.metadata.offset) {
        return Err(Rejection::MalformedBody {
            format: "OHIP event",
            detail: "metadata.offset is not a string of digits".to_owned(),
        });
    }
    // OHIP's own id where it gives one; else the chain and offset, which name one event of
    // one stream.
    let key = match wire.metadata.unique_event_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => hashed_key(format!("{chain}|{}", wire.metadata.offset).as_bytes()),
    };
    let elements = Elements(wire.detail.as_deref().unwrap_or_default());
    let time = wire.timestamp.as_deref().and_then(|t| oracle_time(t, zone));
    let attributes = Attributes {
        key,
        subject: wire.primary_key.clone().filter(|k| !k.is_empty()),
        time,
        provider_event_type: Some(format!("{}/{}", wire.module_name, wire.event_name)),
        property_id: wire.hotel_id.clone().filter(|h| !h.is_empty()),
        delivery_id: None,
    };
    let body = body_for(&wire, &elements, event);
    let mut normalized = origin.event(attributes, body);
    normalized.ohip = Some(OhipExtensions {
        ohipoffset: wire.metadata.offset.clone(),
        ohipmodule: wire.module_name.clone(),
        ohipevent: wire.event_name.clone(),
        ohiptimestamp: wire.timestamp.clone(),
    });
    Ok(StreamEvent {
        normalized: normalized.into(),
        offset: wire.metadata.offset,
    })
}

/// Whether `text` is an offset OHIP could have sent: 1 to 20 decimal digits.
pub fn is_offset(text: &str) -> bool {
    (1..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two offsets as numbers (they are decimal digit strings of any length up to 20).
pub fn offset_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The `detail` elements, looked up by name without regard to case or spacing.
struct Elements<'a>(&'a [Detail]);

impl Elements<'_> {
    fn get(&self, names: &[&str]) -> Option<String> {
        let normal = |s: &str| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect::<String>()
        };
        names.iter().find_map(|name| {
            let wanted = normal(name);
            self.0
                .iter()
                .find(|d| normal(&d.element_name) == wanted)
                .and_then(|d| d.new_value.clone())
                .map(|v| unescape(&v))
                .filter(|v| !v.is_empty())
        })
    }
}

/// OPERA sends some text HTML-escaped.
fn unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    value
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A date element as `YYYY-MM-DD` when it is one (OPERA writes `2024-04-28` or
/// `28-APR-24`); otherwise nothing, and the value stays in `raw`.
fn date(value: Option<String>) -> Option<String> {
    let value = value?;
    if let Ok(date) = value.parse::<jiff::civil::Date>() {
        return Some(date.to_string());
    }
    oracle_date(&value).map(|d| d.to_string())
}

/// The canonical type and data of an event, by module and event name (case and spacing
/// ignored).
fn body_for(wire: &Wire, elements: &Elements<'_>, event: &Value) -> EventBody {
    let name = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase()
    };
    let module = name(&wire.module_name);
    let action = name(&wire.event_name);
    let raw = Some(event.clone());
    let reservation = || ReservationData {
        reservation_id: wire.primary_key.clone(),
        confirmation_number: elements.get(&["CONFIRMATION NUMBER", "CONFIRMATION NO"]),
        status: elements.get(&["RESV STATUS", "RESERVATION STATUS"]),
        room_number: elements.get(&["ROOM", "ROOM NUMBER"]),
        room_type: elements.get(&["ROOM TYPE"]),
        arrival_date: date(elements.get(&["ARRIVAL", "ARRIVAL DATE"])),
        departure_date: date(elements.get(&["DEPARTURE", "DEPARTURE DATE"])),
        rate_code: elements.get(&["RATE CODE"]),
        raw: raw.clone(),
        ..ReservationData::default()
    };
    let guest = || GuestData {
        guest_id: wire.primary_key.clone(),
        first_name: elements.get(&["FIRST NAME"]),
        last_name: elements.get(&["LAST NAME", "NAME"]),
        email: elements.get(&["EMAIL", "EMAIL ADDRESS"]),
        phone: elements.get(&["PHONE", "PHONE NUMBER"]),
        language: elements.get(&["LANGUAGE"]),
        vip_status: elements.get(&["VIP", "VIP STATUS"]),
        raw: raw.clone(),
        ..GuestData::default()
    };
    // The room is out of order or service from now on; `RETURN STATUS` is the status it
    // returns to afterwards, and stays in `raw`.
    let room = |status: RoomStatus, word: &str| RoomData {
        room_id: wire.primary_key.clone(),
        room_number: elements.get(&["ROOM", "ROOM NUMBER"]),
        status: Some(status),
        vendor_status: Some(word.to_owned()),
        reason: elements.get(&["OOOREASON", "OOSREASON", "REASON"]),
        raw: raw.clone(),
    };
    match (module.as_str(), action.as_str()) {
        ("RESERVATION", "NEW RESERVATION" | "CREATE RESERVATION") => {
            EventBody::ReservationCreated(reservation())
        }
        ("RESERVATION", "UPDATE RESERVATION" | "ROLLBACK CANCEL" | "REVERSE CHECK IN")
        | ("RESERVATION", "REVERSE CHECK OUT" | "NO SHOW") => {
            EventBody::ReservationUpdated(reservation())
        }
        ("RESERVATION", "CANCEL" | "CANCEL RESERVATION") => {
            EventBody::ReservationCancelled(reservation())
        }
        ("RESERVATION", "CHECK IN" | "CHECKIN") => EventBody::ReservationCheckedIn(reservation()),
        ("RESERVATION", "CHECK OUT" | "CHECKOUT") => {
            EventBody::ReservationCheckedOut(reservation())
        }
        ("PROFILE", "NEW PROFILE" | "CREATE PROFILE") => EventBody::GuestCreated(guest()),
        ("PROFILE", "UPDATE PROFILE") => EventBody::GuestUpdated(guest()),
        ("PROFILE", "DELETE PROFILE") => EventBody::GuestDeleted(guest()),
        ("HOUSEKEEPING", "UPDATE ROOM STATUS") => {
            let word = elements.get(&["ROOM STATUS"]);
            EventBody::HousekeepingStatusChanged(HousekeepingData {
                room_id: wire.primary_key.clone(),
                room_number: elements.get(&["ROOM", "ROOM NUMBER"]),
                status: word.as_deref().map(RoomStatus::from_vendor),
                vendor_status: word,
                raw: raw.clone(),
                ..HousekeepingData::default()
            })
        }
        ("HOUSEKEEPING", "NEW OUT OF ORDER" | "UPDATE OUT OF ORDER") => {
            EventBody::RoomStatusChanged(room(RoomStatus::OutOfOrder, "OUT OF ORDER"))
        }
        ("HOUSEKEEPING", "NEW OUT OF SERVICE" | "UPDATE OUT OF SERVICE") => {
            EventBody::RoomStatusChanged(room(RoomStatus::OutOfService, "OUT OF SERVICE"))
        }
        _ => EventBody::Unknown(UnknownData {
            reason: format!(
                "OHIP event {}/{} is not modelled",
                wire.module_name, wire.event_name
            ),
            raw: event.clone(),
        }),
    }
}

/// `DD-MON-RR HH.MI.SS[.FF] AM` (Oracle's default text of a timestamp) in `zone`.
pub fn oracle_time(text: &str, zone: &TimeZone) -> Option<Timestamp> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Some(timestamp);
    }
    let mut parts = text.split_whitespace();
    let day = oracle_date(parts.next()?)?;
    let clock = parts.next()?;
    let meridiem = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let mut fields = clock.split('.');
    let number = |s: Option<&str>| -> Option<i8> {
        let s = s?;
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut hour = number(fields.next())?;
    let minute = number(fields.next())?;
    let second = number(fields.next())?;
    let nanos = match fields.next() {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<i32>().ok()?
        }
        Some(_) => return None,
    };
    if fields.next().is_some() {
        return None;
    }
    match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None => {}
        Some("AM") if (1..=12).contains(&hour) => hour %= 12,
        Some("PM") if (1..=12).contains(&hour) => hour = hour % 12 + 12,
        Some(_) => return None,
    }
    let civil = DateTime::new(
        day.year(),
        day.month(),
        day.day(),
        hour,
        minute,
        second,
        nanos,
    )
    .ok()?;
    zone.to_ambiguous_zoned(civil)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

/// `DD-MON-RR` or `DD-MON-YYYY` (`28-APR-24`). A two-digit year follows Oracle's RR rule
/// with the century of 2000: 00–49 → 20xx, 50–99 → 19xx.
fn oracle_date(text: &str) -> Option<jiff::civil::Date> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let mut parts = text.split('-');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || day.is_empty() || day.len() > 2 {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(day) || !digits(year) {
        return None;
    }
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?;
    let year: i16 = match year.len() {
        2 => {
            let yy: i16 = year.parse().ok()?;
            if yy < 50 { 2000 + yy } else { 1900 + yy }
        }
        4 => year.parse().ok()?,
        _ => return None,
    };
    jiff::civil::Date::new(year, i8::try_from(month + 1).ok()?, day.parse().ok()?).ok()
}

/// The upgrade URL's `key`: lowercase hex SHA-256 of the application key's UTF-8 bytes.
pub fn key_hash(app_key: &str) -> String {
    hex::encode(Sha256::digest(app_key.as_bytes()))
}

/// What a subscription asks for.
#[derive(Debug, Clone, Default)]
pub struct Subscription<'a> {
    pub chain_code: &'a str,
    /// Replay from this offset, inclusive; `None` lets the server resume its own cursor.
    pub offset: Option<&'a str>,
    pub hotel_codes: &'a [String],
    pub delta: bool,
}

/// The fields every subscription selects.
const SELECTION: &str = "metadata { offset uniqueEventId } moduleName eventName primaryKey \
timestamp hotelId publisherId actionInstanceId detail { elementName elementType \
elementSequence elementRole newValue oldValue scopeFrom scopeTo }";

/// The `subscription` query, arguments inline as Oracle's examples write them.
pub fn subscribe_query(subscription: &Subscription<'_>) -> String {
    let mut input = format!("chainCode: {}", literal(subscription.chain_code));
    if let Some(offset) = subscription.offset {
        input.push_str(&format!(" offset: {}", literal(offset)));
    }
    if !subscription.hotel_codes.is_empty() {
        input.push_str(&format!(
            " hotelCode: {}",
            literal(&subscription.hotel_codes.join(","))
        ));
    }
    if subscription.delta {
        input.push_str(" delta: true");
    }
    format!("subscription {{ newEvent(input: {{ {input} }}) {{ {SELECTION} }} }}")
}

/// A GraphQL string literal.
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a chain code has the schema's shape (`^[A-Za-z0-9 _%#$&-]+$`, at most 20).
pub fn valid_chain_code(code: &str) -> bool {
    (1..=20).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _%#$&-".contains(&b))
}

/// Whether hotel codes joined by commas have the schema's shape (at most 50 characters).
pub fn valid_hotel_codes(codes: &[String]) -> bool {
    let joined = codes.join(",");
    joined.len() <= 50
        && codes.iter().all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" _%#$&-".contains(&b))
        })
}

#[cfg(test)]
mod tests;
