//! Messenger and Instagram messaging: Meta's `page` and `instagram` webhooks.
//!
//! The same Graph webhooks as WhatsApp (the `hub.challenge` handshake, `X-Hub-Signature-256`
//! over the raw body; developers.facebook.com/docs/messenger-platform/webhooks), but each
//! `entry[]` carries `messaging[]` (and `standby[]` while another app owns the thread) instead
//! of `changes[]`. Every item becomes its own event:
//!
//! - `message` → `message.received` (channel `messenger` or `instagram`): text, attachments
//!   (image, audio, video, file, a sticker), a quick reply, the message replied to. Key: `mid`.
//!   An echo (`is_echo`, what the page itself sent) is `unknown`, keyed `mid:echo`.
//! - `delivery` → one `message.status_changed` (`delivered`) per `mids[]` entry, keyed
//!   `mid:delivered`; without `mids`, one event for everything sent before `watermark`.
//!   `read` (`read.watermark`, and Instagram's `read.mid`) → `read` the same way.
//! - `reaction` → `message.received` of kind `reaction` (an `unreact` has an empty emoji),
//!   `postback` → kind `interactive` with a `postback` selection.
//! - Anything else (opt-ins, referrals, handovers, `standby`) → `unknown` with the item.
//!
//! Reactions, postbacks without a `mid`, and watermarks carry no id of their own: their key
//! is a hash of the entry, the sender, the item's time and what it says.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{unknown, unknown_data};
use crate::event::{
    Attributes, Channel, DeliveryStatus, EventBody, Location, Media, MessageData, MessageKind,
    MessageStatusData, Origin, Reaction, RepliedTo, Selection, SelectionKind, hashed_key,
};
use crate::json::Scalar;
use crate::provider::Normalized;

/// What the items of one entry share.
pub(super) struct Entry<'a, 'o> {
    pub origin: &'a Origin<'o>,
    pub channel: Channel,
    /// The page or Instagram account the entry is about (`entry[].id`).
    pub account_id: Option<String>,
    /// The entry's identity for keys of id-less items (see `meta::unknown`).
    pub scope: &'a [u8],
}

impl Entry<'_, '_> {
    /// The events of one `messaging[]` item.
    pub fn item(&self, raw: &RawValue, events: &mut Vec<Normalized>) {
        let wire = match serde_json::from_str::<WireItem>(raw.get()) {
            Ok(wire) => wire,
            Err(error) => {
                events.push(unknown(
                    self.origin,
                    self.scope,
                    raw,
                    Some("messaging".into()),
                    format!("unrecognised messaging item: {error}"),
                ));
                return;
            }
        };
        let item = Item {
            entry: self,
            wire: &wire,
            raw,
        };
        if let Some(message) = &wire.message {
            events.push(item.message(message));
        } else if let Some(delivery) = &wire.delivery {
            item.statuses(
                &delivery.mids,
                delivery.watermark.as_ref(),
                "delivered",
                events,
            );
        } else if let Some(read) = &wire.read {
            let mids: Vec<String> = read.mid.iter().cloned().collect();
            item.statuses(&mids, read.watermark.as_ref(), "read", events);
        } else if let Some(reaction) = &wire.reaction {
            events.push(item.reaction(reaction));
        } else if let Some(postback) = &wire.postback {
            events.push(item.postback(postback));
        } else {
            events.push(unknown(
                self.origin,
                self.scope,
                raw,
                Some("messaging".into()),
                "messaging item is not a message, delivery, read, reaction or postback".into(),
            ));
        }
    }

    /// An item of `standby[]`: a thread another app owns; kept, not modelled.
    pub fn standby(&self, raw: &RawValue, events: &mut Vec<Normalized>) {
        events.push(unknown(
            self.origin,
            self.scope,
            raw,
            Some("standby".into()),
            "standby: another app of the page owns this thread".into(),
        ));
    }
}

/// One parsed `messaging[]` item in its entry.
struct Item<'a, 'e, 'o> {
    entry: &'a Entry<'e, 'o>,
    wire: &'a WireItem,
    raw: &'a RawValue,
}

impl Item<'_, '_, '_> {
    fn sender(&self) -> Option<String> {
        self.wire.sender.as_ref()?.id.as_ref().map(Scalar::text)
    }

    fn recipient(&self) -> Option<String> {
        self.wire.recipient.as_ref()?.id.as_ref().map(Scalar::text)
    }

    /// A key for what has no id: the entry, the sender, the item's time, and `what`.
    fn hashed(&self, what: &str) -> String {
        let mut identifying = self.entry.scope.to_vec();
        for part in [
            self.sender().unwrap_or_default(),
            self.wire
                .timestamp
                .as_ref()
                .map(Scalar::text)
                .unwrap_or_default(),
            what.to_owned(),
        ] {
            identifying.extend_from_slice(part.as_bytes());
            identifying.push(0);
        }
        hashed_key(&identifying)
    }

    fn attributes(&self, key: String, subject: Option<String>, kind: &str) -> Attributes {
        Attributes {
            key,
            subject,
            time: self
                .wire
                .timestamp
                .as_ref()
                .and_then(|t| crate::json::time_ms(&serde_json::Value::String(t.text()))),
            provider_event_type: Some(kind.to_owned()),
            property_id: self.entry.account_id.clone(),
            delivery_id: None,
        }
    }

    fn data(&self, message_id: String, kind: MessageKind) -> MessageData {
        MessageData {
            channel: self.entry.channel,
            message_id,
            from: self.sender(),
            to: self.recipient(),
            profile_name: None,
            kind: Some(kind),
            text: None,
            media: Vec::new(),
            location: None,
            contacts: Vec::new(),
            selection: None,
            reaction: None,
            replied_to: None,
            account_id: self.entry.account_id.clone(),
        }
    }

    fn event(&self, attributes: Attributes, body: EventBody) -> Normalized {
        self.entry.origin.event(attributes, body).into()
    }

    fn unmodelled(&self, attributes: Attributes, reason: String) -> Normalized {
        self.event(
            attributes,
            EventBody::Unknown(unknown_data(self.raw, reason)),
        )
    }

    fn message(&self, message: &WireMessage) -> Normalized {
        let Some(mid) = message.mid.clone() else {
            return unknown(
                self.entry.origin,
                self.entry.scope,
                self.raw,
                Some("messages".into()),
                "a message without `mid`".into(),
            );
        };
        if message.is_echo == Some(true) {
            let attributes = self.attributes(format!("{mid}:echo"), Some(mid), "message_echoes");
            return self.unmodelled(attributes, "an echo of a message the business sent".into());
        }
        let attributes = self.attributes(mid.clone(), Some(mid.clone()), "messages");
        let first = message.attachments.first();
        let kind = match (&message.text, first) {
            (Some(_), _) => Some(MessageKind::Text),
            (None, Some(attachment)) => attachment_kind(attachment),
            (None, None) => None,
        };
        let Some(kind) = kind else {
            let what = first.map_or("nothing", |a| a.kind.as_str());
            return self.unmodelled(
                attributes,
                format!("a message carrying `{what}` is not modelled"),
            );
        };
        let mut data = self.data(mid, kind);
        data.text = message.text.clone();
        for attachment in &message.attachments {
            let payload = attachment.payload.as_ref();
            if let Some(coordinates) = payload.and_then(|p| p.coordinates.as_ref()) {
                data.location = Some(Location {
                    latitude: coordinates.lat,
                    longitude: coordinates.long,
                    name: payload.and_then(|p| p.title.clone()),
                    address: None,
                    url: payload.and_then(|p| p.url.clone()),
                });
            } else if let Some(url) = payload.and_then(|p| p.url.clone()) {
                data.media.push(Media {
                    id: payload.and_then(|p| p.sticker_id.as_ref().map(Scalar::text)),
                    url: Some(url),
                    ..Media::default()
                });
            }
        }
        data.selection = message.quick_reply.as_ref().map(|quick| Selection {
            kind: SelectionKind::QuickReply,
            id: quick.payload.clone(),
            title: message.text.clone(),
            description: None,
        });
        data.replied_to = message.reply_to.as_ref().and_then(|reply| {
            Some(RepliedTo {
                message_id: reply.mid.clone()?,
                from: None,
            })
        });
        self.event(attributes, EventBody::MessageReceived(data))
    }

    fn statuses(
        &self,
        mids: &[String],
        watermark: Option<&Scalar>,
        status: &str,
        events: &mut Vec<Normalized>,
    ) {
        let kind = if status == "read" {
            "message_reads"
        } else {
            "message_deliveries"
        };
        let watermark_text = watermark.map(Scalar::text);
        let up_to = watermark_text
            .as_ref()
            .and_then(|t| crate::json::time_ms(&serde_json::Value::String(t.clone())));
        let data = |message_id: String| MessageStatusData {
            channel: self.entry.channel,
            message_id,
            status: DeliveryStatus::from_vendor(status),
            provider_status: status.to_owned(),
            recipient: self.sender(),
            from: self.recipient(),
            errors: Vec::new(),
            conversation_id: None,
            account_id: self.entry.account_id.clone(),
            watermark: up_to,
        };
        if mids.is_empty() {
            let key = self.hashed(&format!("{status}\0{}", watermark_text.unwrap_or_default()));
            let attributes = self.attributes(key, self.sender(), kind);
            events.push(self.event(
                attributes,
                EventBody::MessageStatusChanged(data(String::new())),
            ));
            return;
        }
        for mid in mids {
            let attributes = self.attributes(format!("{mid}:{status}"), Some(mid.clone()), kind);
            events.push(self.event(
                attributes,
                EventBody::MessageStatusChanged(data(mid.clone())),
            ));
        }
    }

    fn reaction(&self, reaction: &WireReaction) -> Normalized {
        let target = reaction.mid.clone().unwrap_or_default();
        let emoji = if reaction.action.as_deref() == Some("unreact") {
            String::new()
        } else {
            reaction
                .emoji
                .clone()
                .or_else(|| reaction.reaction.clone())
                .unwrap_or_default()
        };
        let key = self.hashed(&format!(
            "reaction\0{target}\0{}\0{emoji}",
            reaction.action.as_deref().unwrap_or_default()
        ));
        let attributes = self.attributes(key.clone(), Some(target.clone()), "message_reactions");
        let mut data = self.data(key, MessageKind::Reaction);
        data.reaction = Some(Reaction {
            message_id: target,
            emoji,
        });
        self.event(attributes, EventBody::MessageReceived(data))
    }

    fn postback(&self, postback: &WirePostback) -> Normalized {
        let key = postback.mid.clone().unwrap_or_else(|| {
            self.hashed(&format!(
                "postback\0{}",
                postback.payload.as_deref().unwrap_or_default()
            ))
        });
        let attributes = self.attributes(key.clone(), Some(key.clone()), "messaging_postbacks");
        let mut data = self.data(key, MessageKind::Interactive);
        data.text = postback.title.clone();
        data.selection = Some(Selection {
            kind: SelectionKind::Postback,
            id: postback.payload.clone(),
            title: postback.title.clone(),
            description: None,
        });
        self.event(attributes, EventBody::MessageReceived(data))
    }
}

/// The kind of a message that carries an attachment and no text.
fn attachment_kind(attachment: &WireAttachment) -> Option<MessageKind> {
    let payload = attachment.payload.as_ref();
    match attachment.kind.as_str() {
        "image" if payload.is_some_and(|p| p.sticker_id.is_some()) => Some(MessageKind::Sticker),
        "image" => Some(MessageKind::Image),
        "audio" => Some(MessageKind::Audio),
        "video" => Some(MessageKind::Video),
        "file" => Some(MessageKind::Document),
        "location" if payload.is_some_and(|p| p.coordinates.is_some()) => {
            Some(MessageKind::Location)
        }
        _ => None,
    }
}

// ---- Wire format: mirrors Meta's JSON; unknown fields are ignored. ----

#[derive(Deserialize)]
struct WireItem {
    #[serde(default)]
    sender: Option<WireId>,
    #[serde(default)]
    recipient: Option<WireId>,
    #[serde(default)]
    timestamp: Option<Scalar>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    delivery: Option<WireDelivery>,
    #[serde(default)]
    read: Option<WireRead>,
    #[serde(default)]
    reaction: Option<WireReaction>,
    #[serde(default)]
    postback: Option<WirePostback>,
}

#[derive(Deserialize)]
struct WireId {
    #[serde(default)]
    id: Option<Scalar>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_echo: Option<bool>,
    #[serde(default)]
    attachments: Vec<WireAttachment>,
    #[serde(default)]
    quick_reply: Option<WireQuickReply>,
    #[serde(default)]
    reply_to: Option<WireReplyTo>,
}

#[derive(Deserialize)]
struct WireAttachment {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    payload: Option<WireAttachmentPayload>,
}

#[derive(Deserialize)]
struct WireAttachmentPayload {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    sticker_id: Option<Scalar>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    coordinates: Option<WireCoordinates>,
}

#[derive(Deserialize)]
struct WireCoordinates {
    lat: f64,
    long: f64,
}

#[derive(Deserialize)]
struct WireQuickReply {
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct WireReplyTo {
    #[serde(default)]
    mid: Option<String>,
}

#[derive(Deserialize)]
struct WireDelivery {
    #[serde(default)]
    mids: Vec<String>,
    #[serde(default)]
    watermark: Option<Scalar>,
}

#[derive(Deserialize)]
struct WireRead {
    #[serde(default)]
    watermark: Option<Scalar>,
    #[serde(default)]
    mid: Option<String>,
}

#[derive(Deserialize)]
struct WireReaction {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    reaction: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct WirePostback {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[cfg(test)]
mod tests;
