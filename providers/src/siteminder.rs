//! SiteMinder pmsXchange "Reservations PUSH" (developer.siteminder.com, pmsXchange API
//! reference, Reservations PUSH).
//!
//! SiteMinder POSTs a SOAP 1.1 envelope (`text/xml`) holding an OTA 2003/05
//! `OTA_HotelResNotifRQ`, authenticated by a WS-Security `UsernameToken` in the SOAP header:
//! one PMS-level username and password for every hotel (`username`, `password`; compared in
//! constant time, the password as text: a `PasswordDigest` is refused as malformed). There is
//! no body signature and no timestamp window.
//!
//! porter's first XML sender. The envelope is read with `quick-xml`, element by element (no
//! string search), and anything that could make XML do more than describe data is refused
//! before authentication: a `<!DOCTYPE>` (so no DTD, no entity definitions, no external
//! entities), an entity other than XML's five and character references, nesting deeper than
//! [`MAX_DEPTH`]. An envelope that cannot be read carries no credentials porter can check:
//! 401 `malformed_signature`.
//!
//! Every `HotelReservation` becomes an event keyed `UniqueID@ID:ResStatus:EchoToken` (a retry
//! repeats the message's `EchoToken`; a new modification of the same booking has a new one).
//! `ResStatus` `Commit` (and `Book`, `Reserved`) → `reservation.created`; `Modify` →
//! `reservation.updated`; `Cancel` / `Cancelled` → `reservation.cancelled`; `In-house` →
//! `reservation.checked_in`; `Checked-Out` → `reservation.checked_out`; others (`Waitlisted`,
//! `No-show`) → `reservation.updated` with the status kept. The element's XML is kept whole
//! in `raw.ota_xml`. The answer is the `OTA_HotelResNotifRS` with `<Success/>` SiteMinder
//! expects (HTTP 200, `text/xml`), echoing `EchoToken`.

use jiff::Timestamp;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{Attributes, EventBody, GuestRef, Money, Origin, ReservationData, hashed_key};
use crate::json::time;
use crate::provider::{Endpoint, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider};
use crate::settings::{Context, SettingError};
use crate::signing::tokens_match;
use crate::{Rejection, Reply, Request, Secret};

/// Where the credentials are.
const TOKEN: &str = "wsse:UsernameToken";
/// The deepest element nesting read (SiteMinder's envelopes are about 10 deep).
pub const MAX_DEPTH: usize = 64;

/// The keys a `siteminder` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The PMS-level WS-Security username SiteMinder sends.
    pub username: Option<String>,
    /// Its password (at least 12 characters, as SiteMinder requires).
    pub password: Option<Secret>,
}

/// A configured SiteMinder source.
#[derive(Debug)]
pub struct Siteminder {
    username: String,
    password: Secret,
}

/// One `HotelReservation`, as read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reservation {
    pub unique_id: Option<String>,
    pub status: Option<String>,
    pub hotel_code: Option<String>,
    pub arrival: Option<String>,
    pub departure: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub total: Option<(String, Option<String>)>,
    /// The element's XML, exactly as received.
    pub xml: String,
}

/// A read, authenticated `OTA_HotelResNotifRQ`.
#[derive(Debug, Default)]
pub struct Notification {
    username: Option<String>,
    password: Option<String>,
    password_type: Option<String>,
    pub echo_token: Option<String>,
    pub timestamp: Option<String>,
    pub reservations: Vec<Reservation>,
}

impl WebhookProvider for Siteminder {
    const ID: &'static str = "siteminder";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    type Settings = Settings;
    type Verified<'a> = Notification;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let mut problems = Vec::new();
        let username = settings.username.unwrap_or_default();
        if username.is_empty() {
            problems.push(SettingError::new(
                "username",
                "required: the PMS-level WS-Security username SiteMinder sends",
            ));
        }
        let password = settings.password.unwrap_or_else(|| Secret::new(""));
        if password.expose().chars().count() < 12 {
            problems.push(SettingError::new(
                "password",
                "required, at least 12 characters (SiteMinder's own rule)",
            ));
        }
        if problems.is_empty() {
            Ok(Self { username, password })
        } else {
            Err(problems)
        }
    }

    fn verify<'a>(
        &self,
        request: &Request<'a>,
        _now: Timestamp,
    ) -> Result<Notification, Rejection> {
        let notification =
            read(request.body).map_err(|_| Rejection::MalformedSignature(TOKEN.into()))?;
        let (Some(username), Some(password)) = (&notification.username, &notification.password)
        else {
            return Err(Rejection::MissingSignature(TOKEN.into()));
        };
        if notification
            .password_type
            .as_deref()
            .is_some_and(|kind| !kind.ends_with("#PasswordText"))
        {
            return Err(Rejection::MalformedSignature(TOKEN.into()));
        }
        let user_ok = tokens_match(username.as_bytes(), self.username.as_bytes());
        let password_ok = tokens_match(password.as_bytes(), self.password.expose().as_bytes());
        if user_ok & password_ok {
            Ok(notification)
        } else {
            Err(Rejection::BadSharedSecret)
        }
    }

    fn normalize(
        &self,
        verified: Notification,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let echo = verified.echo_token.clone().unwrap_or_default();
        let mut events: Vec<crate::Normalized> = verified
            .reservations
            .iter()
            .map(|reservation| event(reservation, &verified, origin))
            .collect();
        if events.is_empty() {
            // Authentic, but no reservation in it: kept, never dropped.
            let attributes = Attributes {
                key: hashed_key(format!("empty\0{echo}").as_bytes()),
                provider_event_type: Some("OTA_HotelResNotifRQ".to_owned()),
                ..Attributes::default()
            };
            events.push(
                origin
                    .event(
                        attributes,
                        EventBody::Unknown(crate::event::UnknownData {
                            reason: "an OTA_HotelResNotifRQ without a HotelReservation".to_owned(),
                            raw: json!({"echo_token": echo}),
                        }),
                    )
                    .into(),
            );
        }
        Ok(Normalization {
            events,
            reply: Reply::xml(success(
                verified.echo_token.as_deref(),
                verified.timestamp.as_deref(),
            )),
        })
    }

    /// The WS-Security header is inside the envelope: a body that is an envelope gets this
    /// source's username and password written into its `UsernameToken`.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let mut signed = Signed::headers(request, Vec::new());
        let Ok(text) = std::str::from_utf8(request.body) else {
            return signed;
        };
        let credentials = format!(
            "<wsse:Username>{}</wsse:Username><wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText\">{}</wsse:Password>",
            quick_xml::escape::escape(self.username.as_str()),
            quick_xml::escape::escape(self.password.expose())
        );
        if let (Some(start), Some(end)) = (
            text.find("<wsse:UsernameToken>"),
            text.find("</wsse:UsernameToken>"),
        ) {
            let start = start + "<wsse:UsernameToken>".len();
            if start <= end {
                signed.body =
                    Some(format!("{}{credentials}{}", &text[..start], &text[end..]).into_bytes());
            }
        }
        signed
    }
}

fn event(
    reservation: &Reservation,
    message: &Notification,
    origin: &Origin<'_>,
) -> crate::Normalized {
    let status = reservation.status.clone().unwrap_or_default();
    let echo = message.echo_token.clone().unwrap_or_default();
    let key = match &reservation.unique_id {
        Some(id) => format!("{id}:{status}:{echo}"),
        None => hashed_key(reservation.xml.as_bytes()),
    };
    let attributes = Attributes {
        key,
        subject: reservation.unique_id.clone(),
        time: message
            .timestamp
            .as_ref()
            .and_then(|t| time(&Value::String(t.clone()))),
        provider_event_type: Some(format!("HotelReservation/{status}")),
        property_id: reservation.hotel_code.clone(),
        delivery_id: None,
    };
    let guest =
        (reservation.given_name.is_some() || reservation.surname.is_some()).then(|| GuestRef {
            name: Some(
                [
                    reservation.given_name.as_deref(),
                    reservation.surname.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            ),
            first_name: reservation.given_name.clone(),
            last_name: reservation.surname.clone(),
            ..GuestRef::default()
        });
    let data = ReservationData {
        reservation_id: reservation.unique_id.clone(),
        status: reservation.status.clone(),
        guest,
        arrival_date: reservation.arrival.clone(),
        departure_date: reservation.departure.clone(),
        total: reservation.total.as_ref().map(|(amount, currency)| Money {
            amount: amount.clone(),
            minor_units: false,
            currency: currency.clone(),
        }),
        booking_source: Some("siteminder".to_owned()),
        raw: Some(json!({"ota_xml": reservation.xml, "echo_token": message.echo_token})),
        ..ReservationData::default()
    };
    let body = match status.to_ascii_lowercase().as_str() {
        "commit" | "book" | "reserved" => EventBody::ReservationCreated(data),
        "cancel" | "cancelled" => EventBody::ReservationCancelled(data),
        "in-house" => EventBody::ReservationCheckedIn(data),
        "checked-out" => EventBody::ReservationCheckedOut(data),
        _ => EventBody::ReservationUpdated(data),
    };
    origin.event(attributes, body).into()
}

/// The `OTA_HotelResNotifRS` SiteMinder expects for an accepted message.
pub fn success(echo_token: Option<&str>, timestamp: Option<&str>) -> String {
    let attribute = |name: &str, value: Option<&str>| match value {
        Some(value) => format!(" {name}=\"{}\"", quick_xml::escape::escape(value)),
        None => String::new(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body><OTA_HotelResNotifRS xmlns=\"http://www.opentravel.org/OTA/2003/05\" Version=\"1.0\"{}{}><Success/></OTA_HotelResNotifRS></SOAP-ENV:Body></SOAP-ENV:Envelope>",
        attribute("EchoToken", echo_token),
        attribute("TimeStamp", timestamp)
    )
}

/// Why an envelope was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    NotXml,
    Doctype,
    UnknownEntity,
    TooDeep,
}

/// Which text is being gathered.
#[derive(Clone, Copy, PartialEq)]
enum Gathering {
    Username,
    Password,
    GivenName,
    Surname,
}

/// Reads the envelope: the credentials, the message's attributes, each reservation.
pub fn read(body: &[u8]) -> Result<Notification, ReadError> {
    let text = std::str::from_utf8(body).map_err(|_| ReadError::NotXml)?;
    let mut reader = Reader::from_str(text);
    let mut notification = Notification::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<(Reservation, usize)> = None;
    let mut gathering: Option<(Gathering, String)> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|_| ReadError::NotXml)?;
        match event {
            Event::DocType(_) => return Err(ReadError::Doctype),
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_vec();
                element(
                    &start,
                    &name,
                    &stack,
                    &mut notification,
                    &mut current,
                    before,
                )?;
                gathering = match name.as_slice() {
                    b"Username" if parent_is(&stack, b"UsernameToken") => {
                        Some((Gathering::Username, String::new()))
                    }
                    b"Password" if parent_is(&stack, b"UsernameToken") => {
                        notification.password_type = attribute(&start, b"Type");
                        Some((Gathering::Password, String::new()))
                    }
                    b"GivenName" => Some((Gathering::GivenName, String::new())),
                    b"Surname" => Some((Gathering::Surname, String::new())),
                    _ => None,
                };
                stack.push(name);
                if stack.len() > MAX_DEPTH {
                    return Err(ReadError::TooDeep);
                }
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_vec();
                element(
                    &start,
                    &name,
                    &stack,
                    &mut notification,
                    &mut current,
                    before,
                )?;
            }
            Event::End(end) => {
                let name = end.local_name().as_ref().to_vec();
                if let Some((what, text)) = gathering.take() {
                    let slot = match what {
                        Gathering::Username => &mut notification.username,
                        Gathering::Password => &mut notification.password,
                        Gathering::GivenName => match &mut current {
                            Some((reservation, _)) => &mut reservation.given_name,
                            None => &mut None,
                        },
                        Gathering::Surname => match &mut current {
                            Some((reservation, _)) => &mut reservation.surname,
                            None => &mut None,
                        },
                    };
                    if slot.is_none() {
                        *slot = Some(text.trim().to_owned());
                    }
                }
                if name == b"HotelReservation"
                    && let Some((mut reservation, start)) = current.take()
                {
                    let after = usize::try_from(reader.buffer_position()).unwrap_or(text.len());
                    reservation.xml = text.get(start..after).unwrap_or_default().to_owned();
                    notification.reservations.push(reservation);
                }
                stack.pop();
            }
            Event::Text(content) => {
                if let Some((_, text)) = &mut gathering {
                    text.push_str(&content.decode().map_err(|_| ReadError::NotXml)?);
                }
            }
            Event::CData(content) => {
                if let Some((_, text)) = &mut gathering {
                    text.push_str(&content.decode().map_err(|_| ReadError::NotXml)?);
                }
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|_| ReadError::NotXml)?;
                let resolved = resolve(&name).ok_or(ReadError::UnknownEntity)?;
                if let Some((_, text)) = &mut gathering {
                    text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(ReadError::NotXml);
    }
    Ok(notification)
}

/// What a start (or empty) element sets.
fn element(
    start: &BytesStart<'_>,
    name: &[u8],
    stack: &[Vec<u8>],
    notification: &mut Notification,
    current: &mut Option<(Reservation, usize)>,
    position: usize,
) -> Result<(), ReadError> {
    match name {
        b"OTA_HotelResNotifRQ" => {
            notification.echo_token = attribute(start, b"EchoToken");
            notification.timestamp = attribute(start, b"TimeStamp");
        }
        b"HotelReservation" => {
            let reservation = Reservation {
                status: attribute(start, b"ResStatus"),
                ..Reservation::default()
            };
            *current = Some((reservation, position));
        }
        _ => {}
    }
    if let Some((reservation, _)) = current {
        let first = |slot: &mut Option<String>, value: Option<String>| {
            if slot.is_none() {
                *slot = value;
            }
        };
        match name {
            b"UniqueID" if parent_is(stack, b"HotelReservation") => {
                first(&mut reservation.unique_id, attribute(start, b"ID"));
            }
            b"BasicPropertyInfo" => {
                first(&mut reservation.hotel_code, attribute(start, b"HotelCode"))
            }
            b"TimeSpan" => {
                first(&mut reservation.arrival, attribute(start, b"Start"));
                first(&mut reservation.departure, attribute(start, b"End"));
            }
            b"Total" if reservation.total.is_none() => {
                reservation.total = attribute(start, b"AmountAfterTax")
                    .or_else(|| attribute(start, b"AmountBeforeTax"))
                    .map(|amount| (amount, attribute(start, b"CurrencyCode")));
            }
            _ => {}
        }
    }
    Ok(())
}

fn parent_is(stack: &[Vec<u8>], name: &[u8]) -> bool {
    stack.last().is_some_and(|parent| parent == name)
}

/// An attribute's value, its references resolved; `None` when absent or unreadable.
fn attribute(start: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    let found = start.try_get_attribute(name).ok()??;
    found.unescape_value().ok().map(|value| value.into_owned())
}

/// XML's five entities and character references; nothing a DTD could define.
fn resolve(name: &str) -> Option<String> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).map(String::from);
    }
    quick_xml::escape::resolve_predefined_entity(name).map(str::to_owned)
}

#[cfg(test)]
mod tests;
