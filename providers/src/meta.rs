//! Meta WhatsApp Cloud API webhooks (Graph API webhooks), and Messenger and Instagram
//! messaging through the same app (`object` `page` or `instagram`: see [`messaging`]).
//!
//! Scheme (developers.facebook.com/docs/graph-api/webhooks/getting-started, "Validating
//! Payloads"; the WhatsApp webhooks overview):
//!
//! - **Subscription handshake**: `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`.
//!   If the mode is `subscribe` and `T` equals the configured verify token, answer `200` with
//!   `C` as plain text; otherwise `403`.
//! - **Delivery**: `POST` with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw
//!   body)>`. Meta escapes non-ASCII as `\uXXXX` before signing, so only the raw bytes verify;
//!   re-serialising the parsed JSON would not. No timestamp is signed, so replays are caught by
//!   deduplication only (set `dedupe_ttl` to Meta's 7-day retry horizon).
//! - **Batches**: `entry[] × changes[] × messages[] / statuses[]`; every message and every
//!   status becomes its own event. Keys: the message `wamid`; a status `wamid:status` (one
//!   message goes sent → delivered → read); anything without an id, `sha256:` of its
//!   account id, entry time and exact JSON bytes.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::{BodyMac, MacHeader};
use crate::event::{
    Attributes, Channel, Contact, ContactPhone, DeliveryStatus, EventBody, Location, Media,
    MessageData, MessageKind, MessageStatusData, Origin, ProviderError, Reaction, RepliedTo,
    Selection, SelectionKind, UnknownData, hashed_key,
};
use crate::json::Scalar;
use crate::provider::{Checked, Endpoint, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, SettingError, require_secrets};
use crate::signing::tokens_match;
use crate::{Rejection, Reply, Request, Secret, form};

/// The one route: GET for the handshake, POST for deliveries.
const ENDPOINTS: &[Endpoint] = &[Endpoint {
    suffix: "",
    methods: &[http::Method::GET, http::Method::POST],
}];

/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`.
const SIGNATURE: MacHeader = MacHeader::hex_sha256("x-hub-signature-256", "sha256=");
/// Meta documents the challenge as an integer; anything longer than this is not one.
const MAX_CHALLENGE_LEN: usize = 256;

/// The keys a `meta` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// App secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The verify token of the GET handshake; without one, every handshake is refused.
    pub verify_token: Option<Secret>,
}

/// A configured Meta source.
#[derive(Debug)]
pub struct Meta {
    /// App secrets; several during rotation.
    mac: BodyMac,
    /// Without one, every handshake is refused.
    verify_token: Option<Secret>,
}

impl GuardedProvider for Meta {
    const ID: &'static str = "meta";
    const ENDPOINTS: &'static [Endpoint] = ENDPOINTS;
    type Settings = Settings;
    type Guard = BodyMac;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let secrets = require_secrets(settings.secrets).map_err(|e| vec![e])?;
        if let Some(token) = &settings.verify_token
            && token.expose().is_empty()
        {
            return Err(vec![SettingError::new(
                "verify_token",
                "the verify token may not be empty",
            )]);
        }
        Ok(Self {
            mac: BodyMac::new(SIGNATURE, secrets),
            verify_token: settings.verify_token,
        })
    }

    fn guard(&self) -> &BodyMac {
        &self.mac
    }

    /// The GET subscription handshake.
    fn handshake_answer(
        &self,
        request: &Request<'_>,
        _now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        if request.method != http::Method::GET {
            return None;
        }
        let pairs = form::decode(request.query.unwrap_or("").as_bytes());
        let param = |name: &[u8]| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_slice())
        };
        // A GET without the handshake's parameters is not a handshake that failed (a browser,
        // a health check, a scanner): say so rather than blame the verify token.
        if param(b"hub.mode").is_none() && param(b"hub.verify_token").is_none() {
            return Some(Err(Rejection::MalformedHandshake(
                "no hub.mode or hub.verify_token",
            )));
        }
        let mode_ok = param(b"hub.mode") == Some(b"subscribe");
        let token_ok = match (&self.verify_token, param(b"hub.verify_token")) {
            (Some(expected), Some(given)) => tokens_match(given, expected.expose().as_bytes()),
            _ => false,
        };
        if !(mode_ok && token_ok) {
            return Some(Err(Rejection::VerifyTokenMismatch));
        }
        let challenge = match param(b"hub.challenge") {
            Some(c) if !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN => c,
            _ => return Some(Err(Rejection::MalformedHandshake("hub.challenge"))),
        };
        // Echo only visible ASCII: the challenge is reflected back as the response body.
        if !challenge.iter().all(|b| b.is_ascii_graphic()) {
            return Some(Err(Rejection::MalformedHandshake("hub.challenge")));
        }
        let challenge = String::from_utf8_lossy(challenge).into_owned();
        Some(Ok(Reply::text(challenge)))
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        normalize(checked.request(), origin).map(Normalization::accepted)
    }
}

/// The `X-Hub-Signature-256` value Meta sends for `body`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    SIGNATURE.sign(secret, &[body])
}

/// Splits a verified delivery into one event per message, per status, and per change that
/// carries neither: in one typed pass when the delivery has the common shape (see [`typed`]),
/// else part by part, keeping what porter does not model as exact bytes.
pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    crate::json::check_depth(request.body)?;
    match typed::normalize(request.body, origin) {
        Some(events) => Ok(events),
        None => normalize_leniently(request.body, origin),
    }
}

/// The reading of any delivery: each part is kept as exact bytes before it is read, so that
/// a part porter does not model becomes an `unknown` event carrying them.
fn normalize_leniently(body: &[u8], origin: &Origin<'_>) -> Result<Vec<Normalized>, Rejection> {
    let whole: &RawValue = crate::json::parse_raw(body)?;
    let mut events = Vec::new();
    match serde_json::from_str::<WirePayload<'_>>(whole.get()) {
        Ok(payload) => {
            let channel = match payload.object.as_deref() {
                Some("page") => Some(Channel::Messenger),
                Some("instagram") => Some(Channel::Instagram),
                _ => None,
            };
            for entry in &payload.entry {
                normalize_entry(entry, origin, channel, &mut events);
            }
        }
        Err(e) => events.push(unknown(
            origin,
            b"",
            whole,
            None,
            format!("not a WhatsApp webhook payload: {e}"),
        )),
    }
    if events.is_empty() {
        events.push(unknown(
            origin,
            b"",
            whole,
            None,
            "payload carries no entries".to_owned(),
        ));
    }
    Ok(events)
}

/// What identifies an id-less occurrence of an entry besides its own bytes: the account and
/// the time.
fn entry_scope(account_id: Option<&str>, time: Option<&Scalar>) -> Vec<u8> {
    format!(
        "{}\u{0}{}\u{0}",
        account_id.unwrap_or(""),
        time.map(Scalar::text).unwrap_or_default()
    )
    .into_bytes()
}

fn normalize_entry(
    entry: &WireEntry<'_>,
    origin: &Origin<'_>,
    channel: Option<Channel>,
    events: &mut Vec<Normalized>,
) {
    let account_id = entry.id.as_ref().map(Scalar::text);
    let scope = entry_scope(account_id.as_deref(), entry.time.as_ref());
    match channel {
        Some(channel) => {
            let messaging = messaging::Entry {
                origin,
                channel,
                account_id: account_id.clone(),
                scope: &scope,
            };
            for item in &entry.messaging {
                messaging.item(item, events);
            }
            for item in &entry.standby {
                messaging.standby(item, events);
            }
        }
        None => {
            for item in entry.messaging.iter().chain(&entry.standby) {
                events.push(unknown(
                    origin,
                    &scope,
                    item,
                    Some("messaging".into()),
                    "a messaging item outside a `page` or `instagram` payload".into(),
                ));
            }
        }
    }
    for change_raw in &entry.changes {
        let change = match serde_json::from_str::<WireChange<'_>>(change_raw.get()) {
            Ok(change) => change,
            Err(e) => {
                events.push(unknown(
                    origin,
                    &scope,
                    change_raw,
                    None,
                    format!("unrecognised change: {e}"),
                ));
                continue;
            }
        };
        let field = change.field.unwrap_or_default();
        let value = match change
            .value
            .map(|v| serde_json::from_str::<WireValue<'_>>(v.get()))
        {
            Some(Ok(value)) if field == "messages" => value,
            _ => {
                events.push(unknown(
                    origin,
                    &scope,
                    change_raw,
                    Some(field.to_owned()),
                    format!("change field `{field}` is not modelled"),
                ));
                continue;
            }
        };
        let context = ChangeContext {
            origin,
            scope: scope.clone(),
            account_id: account_id.clone(),
            metadata: value.metadata.as_ref(),
            contacts: &value.contacts,
        };
        for message in &value.messages {
            events.push(context.message(message));
        }
        for status in &value.statuses {
            events.push(context.status(status));
        }
        let carried_nothing = value.messages.is_empty() && value.statuses.is_empty();
        if value.errors.is_some() || carried_nothing {
            let reason = if value.errors.is_some() {
                "change-level errors"
            } else {
                "change carries no messages or statuses"
            };
            events.push(unknown(
                origin,
                &scope,
                change_raw,
                Some(field.to_owned()),
                reason.to_owned(),
            ));
        }
    }
}

/// What the events of one change share.
struct ChangeContext<'a, 'o> {
    origin: &'a Origin<'o>,
    /// See [`unknown`].
    scope: Vec<u8>,
    account_id: Option<String>,
    metadata: Option<&'a WireMetadata>,
    contacts: &'a [WireContactProfile],
}

impl ChangeContext<'_, '_> {
    fn attributes(&self, key: String, subject: &str, time: Option<&str>, kind: &str) -> Attributes {
        Attributes {
            key,
            subject: Some(subject.to_owned()),
            time: time.and_then(parse_unix_seconds),
            provider_event_type: Some(kind.to_owned()),
            property_id: self.metadata.and_then(|m| m.phone_number_id.clone()),
            delivery_id: None,
        }
    }

    fn message(&self, raw: &RawValue) -> Normalized {
        let wire = match serde_json::from_str::<WireMessage>(raw.get()) {
            Ok(wire) => wire,
            Err(e) => {
                return unknown(
                    self.origin,
                    &self.scope,
                    raw,
                    Some("messages".into()),
                    format!("unrecognised message: {e}"),
                );
            }
        };
        self.message_event(&wire).unwrap_or_else(|| {
            let attributes = self.message_attributes(&wire);
            let reason = format!("message type `{}` is not modelled", wire.kind);
            self.origin
                .event(attributes, EventBody::Unknown(unknown_data(raw, reason)))
                .into()
        })
    }

    fn message_attributes(&self, wire: &WireMessage) -> Attributes {
        self.attributes(
            wire.id.clone(),
            &wire.id,
            wire.timestamp.as_deref(),
            "messages",
        )
    }

    /// The event of a message whose type porter models; `None` for the rest, whose event
    /// carries the message's exact bytes.
    fn message_event(&self, wire: &WireMessage) -> Option<Normalized> {
        let (kind, fill) = message_data(wire)?;
        let mut data = MessageData {
            channel: Channel::Whatsapp,
            message_id: wire.id.clone(),
            from: Some(wire.from.clone()),
            to: self.metadata.and_then(|m| m.display_phone_number.clone()),
            profile_name: self
                .contacts
                .iter()
                .find(|c| c.wa_id.as_deref() == Some(wire.from.as_str()))
                .and_then(|c| c.profile.as_ref()?.name.clone()),
            kind: Some(kind),
            text: None,
            media: Vec::new(),
            location: None,
            contacts: Vec::new(),
            selection: None,
            reaction: None,
            replied_to: wire.context.as_ref().and_then(|c| {
                Some(RepliedTo {
                    message_id: c.id.clone()?,
                    from: c.from.clone(),
                })
            }),
            account_id: self.account_id.clone(),
        };
        fill(wire, &mut data);
        Some(
            self.origin
                .event(
                    self.message_attributes(wire),
                    EventBody::MessageReceived(data),
                )
                .into(),
        )
    }

    fn status(&self, raw: &RawValue) -> Normalized {
        let wire = match serde_json::from_str::<WireStatus>(raw.get()) {
            Ok(wire) => wire,
            Err(e) => {
                return unknown(
                    self.origin,
                    &self.scope,
                    raw,
                    Some("statuses".into()),
                    format!("unrecognised status: {e}"),
                );
            }
        };
        self.status_event(&wire)
    }

    fn status_event(&self, wire: &WireStatus) -> Normalized {
        let key = format!("{}:{}", wire.id, wire.status);
        let attributes = self.attributes(key, &wire.id, wire.timestamp.as_deref(), "statuses");
        let data = MessageStatusData {
            channel: Channel::Whatsapp,
            message_id: wire.id.clone(),
            status: DeliveryStatus::from_vendor(&wire.status),
            provider_status: wire.status.clone(),
            recipient: wire.recipient_id.clone(),
            from: self.metadata.and_then(|m| m.display_phone_number.clone()),
            errors: wire.errors.iter().map(WireError::to_error).collect(),
            conversation_id: wire.conversation.as_ref().and_then(|c| c.id.clone()),
            account_id: self.account_id.clone(),
            watermark: None,
        };
        self.origin
            .event(attributes, EventBody::MessageStatusChanged(data))
            .into()
    }
}

type Fill = fn(&WireMessage, &mut MessageData);

/// The kind of a modelled message and how to fill its content, or `None` when the type (or
/// its interactive subtype) is not modelled or its content object is missing.
fn message_data(wire: &WireMessage) -> Option<(MessageKind, Fill)> {
    let media = |m: &Option<WireMedia>| m.is_some();
    let found: (MessageKind, Fill) = match wire.kind.as_str() {
        "text" if wire.text.is_some() => (MessageKind::Text, |w, d| {
            d.text = w.text.as_ref().map(|t| t.body.clone());
        }),
        "image" if media(&wire.image) => (MessageKind::Image, |w, d| fill_media(&w.image, d)),
        "audio" if media(&wire.audio) => (MessageKind::Audio, |w, d| fill_media(&w.audio, d)),
        "video" if media(&wire.video) => (MessageKind::Video, |w, d| fill_media(&w.video, d)),
        "document" if media(&wire.document) => {
            (MessageKind::Document, |w, d| fill_media(&w.document, d))
        }
        "sticker" if media(&wire.sticker) => {
            (MessageKind::Sticker, |w, d| fill_media(&w.sticker, d))
        }
        "location" if wire.location.is_some() => (MessageKind::Location, |w, d| {
            d.location = w.location.as_ref().map(|l| Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
                url: l.url.clone(),
            });
        }),
        "contacts" if wire.contacts.is_some() => (MessageKind::Contacts, |w, d| {
            d.contacts = w
                .contacts
                .iter()
                .flatten()
                .map(WireContactCard::to_contact)
                .collect();
        }),
        "interactive" => match &wire.interactive {
            Some(i) if i.button_reply.is_some() || i.list_reply.is_some() => {
                (MessageKind::Interactive, |w, d| {
                    let Some(i) = &w.interactive else { return };
                    d.selection = match (&i.button_reply, &i.list_reply) {
                        (Some(b), _) => Some(b.to_selection(SelectionKind::ButtonReply)),
                        (None, Some(l)) => Some(l.to_selection(SelectionKind::ListReply)),
                        (None, None) => None,
                    };
                })
            }
            _ => return None,
        },
        "button" if wire.button.is_some() => (MessageKind::Button, |w, d| {
            d.selection = w.button.as_ref().map(|b| Selection {
                kind: SelectionKind::QuickReply,
                id: b.payload.clone(),
                title: b.text.clone(),
                description: None,
            });
        }),
        "reaction" if wire.reaction.is_some() => (MessageKind::Reaction, |w, d| {
            d.reaction = w.reaction.as_ref().map(|r| Reaction {
                message_id: r.message_id.clone(),
                emoji: r.emoji.clone().unwrap_or_default(),
            });
        }),
        _ => return None,
    };
    Some(found)
}

fn fill_media(media: &Option<WireMedia>, data: &mut MessageData) {
    if let Some(m) = media {
        data.media.push(Media {
            id: m.id.clone(),
            url: m.url.clone(),
            mime_type: m.mime_type.clone(),
            sha256: m.sha256.clone(),
            caption: m.caption.clone(),
            filename: m.filename.clone(),
        });
    }
}

/// An `unknown` event for a raw JSON fragment, keyed by the hash of its scope (which entry it
/// came from, and when) and its exact bytes: the same change sent again is a duplicate, the
/// same change from another account or at another time is not.
fn unknown(
    origin: &Origin<'_>,
    scope: &[u8],
    raw: &RawValue,
    provider_event_type: Option<String>,
    reason: String,
) -> Normalized {
    let mut identifying = scope.to_vec();
    identifying.extend_from_slice(raw.get().as_bytes());
    let attributes = Attributes {
        key: hashed_key(&identifying),
        provider_event_type,
        ..Attributes::default()
    };
    origin
        .event(attributes, EventBody::Unknown(unknown_data(raw, reason)))
        .into()
}

fn unknown_data(raw: &RawValue, reason: String) -> UnknownData {
    UnknownData {
        reason,
        // A fragment that does not parse as a `Value` (a number beyond f64, which `RawValue`
        // does not check) is kept as its JSON text rather than lost.
        raw: serde_json::from_str(raw.get())
            .unwrap_or_else(|_| serde_json::Value::String(raw.get().to_owned())),
    }
}

fn parse_unix_seconds(text: &str) -> Option<Timestamp> {
    Timestamp::from_second(text.parse().ok()?).ok()
}

// ---- Wire format: mirrors Meta's JSON; unknown fields are ignored. ----

#[derive(Deserialize)]
struct WirePayload<'a> {
    /// `whatsapp_business_account`, `page` (Messenger) or `instagram`.
    #[serde(default)]
    object: Option<String>,
    #[serde(borrow, default)]
    entry: Vec<WireEntry<'a>>,
}

#[derive(Deserialize)]
struct WireEntry<'a> {
    #[serde(default)]
    id: Option<Scalar>,
    #[serde(default)]
    time: Option<Scalar>,
    #[serde(borrow, default)]
    changes: Vec<&'a RawValue>,
    /// Messenger and Instagram.
    #[serde(borrow, default)]
    messaging: Vec<&'a RawValue>,
    /// Messenger and Instagram, while another app owns the thread.
    #[serde(borrow, default)]
    standby: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireChange<'a> {
    #[serde(default)]
    field: Option<&'a str>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireValue<'a> {
    #[serde(default)]
    metadata: Option<WireMetadata>,
    #[serde(default)]
    contacts: Vec<WireContactProfile>,
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    statuses: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    errors: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireMetadata {
    display_phone_number: Option<String>,
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct WireContactProfile {
    wa_id: Option<String>,
    profile: Option<WireProfile>,
}

#[derive(Deserialize)]
struct WireProfile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    id: String,
    from: String,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    text: Option<WireText>,
    image: Option<WireMedia>,
    audio: Option<WireMedia>,
    video: Option<WireMedia>,
    document: Option<WireMedia>,
    sticker: Option<WireMedia>,
    location: Option<WireLocation>,
    contacts: Option<Vec<WireContactCard>>,
    interactive: Option<WireInteractive>,
    button: Option<WireButton>,
    reaction: Option<WireReaction>,
    context: Option<WireContext>,
}

#[derive(Deserialize)]
struct WireText {
    body: String,
}

#[derive(Deserialize)]
struct WireMedia {
    id: Option<String>,
    url: Option<String>,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
struct WireLocation {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct WireContactCard {
    name: Option<WireContactName>,
    #[serde(default)]
    phones: Vec<WireContactPhone>,
    #[serde(default)]
    emails: Vec<WireContactEmail>,
}

impl WireContactCard {
    fn to_contact(&self) -> Contact {
        Contact {
            name: self.name.as_ref().and_then(|n| n.formatted_name.clone()),
            phones: self
                .phones
                .iter()
                .filter_map(|p| {
                    Some(ContactPhone {
                        phone: p.phone.clone()?,
                        wa_id: p.wa_id.clone(),
                        kind: p.kind.clone(),
                    })
                })
                .collect(),
            emails: self.emails.iter().filter_map(|e| e.email.clone()).collect(),
        }
    }
}

#[derive(Deserialize)]
struct WireContactName {
    formatted_name: Option<String>,
}

#[derive(Deserialize)]
struct WireContactPhone {
    phone: Option<String>,
    wa_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct WireContactEmail {
    email: Option<String>,
}

#[derive(Deserialize)]
struct WireInteractive {
    button_reply: Option<WireReply>,
    list_reply: Option<WireReply>,
}

#[derive(Deserialize)]
struct WireReply {
    id: Option<String>,
    title: Option<String>,
    description: Option<String>,
}

impl WireReply {
    fn to_selection(&self, kind: SelectionKind) -> Selection {
        Selection {
            kind,
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
        }
    }
}

#[derive(Deserialize)]
struct WireButton {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireReaction {
    message_id: String,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct WireContext {
    from: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct WireStatus {
    id: String,
    status: String,
    timestamp: Option<String>,
    recipient_id: Option<String>,
    conversation: Option<WireConversation>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
struct WireConversation {
    id: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<WireErrorData>,
    href: Option<String>,
}

impl WireError {
    fn to_error(&self) -> ProviderError {
        ProviderError {
            code: self.code,
            title: self.title.clone(),
            message: self.message.clone(),
            details: self.error_data.as_ref().and_then(|d| d.details.clone()),
            href: self.href.clone(),
        }
    }
}

#[derive(Deserialize)]
struct WireErrorData {
    details: Option<String>,
}

mod messaging;
mod typed;

#[cfg(test)]
mod tests;
