//! `data` of the messaging events: `message.received` and `message.status_changed`.
//!
//! One shape for WhatsApp (Meta Cloud API or Twilio) and SMS/MMS, flat enough that a consumer
//! can read `data.text` without caring which vendor carried it. Vendor words that porter maps
//! to an enum (a delivery status) are kept alongside, so no information is lost in the mapping.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The network a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Sms,
    /// A message in a PMS's own guest messaging (Mews): the PMS holds the content.
    Pms,
    /// Facebook Messenger (Meta's `page` webhooks).
    Messenger,
    /// Instagram direct messages (Meta's `instagram` webhooks).
    Instagram,
}

/// What kind of message a guest sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    /// A tap on an interactive reply button or list row.
    Interactive,
    /// A tap on a template quick-reply button.
    Button,
    Reaction,
}

/// `data` of `message.received`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageData {
    pub channel: Channel,
    /// The provider's message id (WhatsApp `wamid.…`, Twilio `SM…`/`MM…`).
    pub message_id: String,
    /// The sender's address: a phone number or WhatsApp id, without any `whatsapp:` prefix.
    /// Absent only where the provider sends no more than an id (Mews).
    #[schemars(extend("x-pii" = true))]
    pub from: Option<String>,
    /// The business address the message was sent to, where the provider says.
    pub to: Option<String>,
    /// The sender's display name, where the provider shares it.
    #[schemars(extend("x-pii" = true))]
    pub profile_name: Option<String>,
    /// Absent only where the provider sends no more than an id (Mews).
    pub kind: Option<MessageKind>,
    /// The text of a text message, or the body sent along with media (Twilio MMS).
    #[schemars(extend("x-pii" = true))]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// The button or list row the guest picked.
    pub selection: Option<Selection>,
    pub reaction: Option<Reaction>,
    /// The message this one replies to, where the provider says.
    pub replied_to: Option<RepliedTo>,
    /// The provider account (WhatsApp Business Account id, Twilio `AccountSid`).
    pub account_id: Option<String>,
}

/// An attachment. WhatsApp sends a media id to fetch; Twilio sends a URL.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Media {
    pub id: Option<String>,
    pub url: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub caption: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub filename: Option<String>,
}

/// A shared location. Coordinates are kept as the provider wrote them.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    #[schemars(extend("x-pii" = true))]
    pub latitude: f64,
    #[schemars(extend("x-pii" = true))]
    pub longitude: f64,
    #[schemars(extend("x-pii" = true))]
    pub name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub address: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub url: Option<String>,
}

/// A shared contact card.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    #[schemars(extend("x-pii" = true))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-pii" = true))]
    pub phones: Vec<ContactPhone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-pii" = true))]
    pub emails: Vec<String>,
}

/// A phone number on a contact card.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactPhone {
    #[schemars(extend("x-pii" = true))]
    pub phone: String,
    #[schemars(extend("x-pii" = true))]
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Which interactive element produced a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectionKind {
    /// An interactive reply button (`button_reply`).
    ButtonReply,
    /// An interactive list row (`list_reply`).
    ListReply,
    /// A template quick-reply button (`button`; Twilio `ButtonPayload`; Messenger's
    /// `quick_reply`).
    QuickReply,
    /// A postback button of Messenger or Instagram (`messaging_postbacks`).
    Postback,
}

/// The button or row a guest picked.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Selection {
    pub kind: SelectionKind,
    /// The id or payload the business attached to the button or row.
    pub id: Option<String>,
    /// The text the guest saw.
    pub title: Option<String>,
    pub description: Option<String>,
}

/// A reaction to an earlier message. An empty emoji means the reaction was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reaction {
    pub message_id: String,
    pub emoji: String,
}

/// The message a reply refers to.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RepliedTo {
    pub message_id: String,
    #[schemars(extend("x-pii" = true))]
    pub from: Option<String>,
}

/// A delivery status, normalised across providers. The vendor's own word is kept in
/// [`MessageStatusData::provider_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Read,
    /// A voice message was played (WhatsApp).
    Played,
    Failed,
    Canceled,
    PartiallyDelivered,
    Receiving,
    Received,
    Deleted,
    Warning,
    /// A status word porter does not know; see `provider_status`.
    Other,
}

impl DeliveryStatus {
    /// Maps a vendor's status word (Meta and Twilio use the same lowercase words).
    pub fn from_vendor(word: &str) -> Self {
        match word.to_ascii_lowercase().as_str() {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "partially_delivered" => Self::PartiallyDelivered,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            "deleted" => Self::Deleted,
            "warning" => Self::Warning,
            _ => Self::Other,
        }
    }
}

impl DeliveryStatus {
    /// Where the status stands on a message's way to the guest, for telling a status that
    /// arrived late (`delivered` after `read`) from one that moves forward: queued (1),
    /// sending (2), sent (3), delivered (4), read (5), played (6). `None` for the statuses
    /// that are never behind anything: a failure (`failed`, `undelivered`, `canceled`: news
    /// whenever it comes, which a screen of ticks must not miss), inbound `receiving` and
    /// `received`, `deleted`, `warning`, `partially_delivered` and unknown words.
    pub fn rank(self) -> Option<u8> {
        match self {
            Self::Accepted | Self::Scheduled | Self::Queued => Some(1),
            Self::Sending => Some(2),
            Self::Sent => Some(3),
            Self::Delivered => Some(4),
            Self::Read => Some(5),
            Self::Played => Some(6),
            Self::Undelivered
            | Self::Failed
            | Self::Canceled
            | Self::PartiallyDelivered
            | Self::Receiving
            | Self::Received
            | Self::Deleted
            | Self::Warning
            | Self::Other => None,
        }
    }
}

/// `data` of `message.status_changed`: what happened to a message the business sent.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageStatusData {
    pub channel: Channel,
    /// The id of the message whose status changed.
    pub message_id: String,
    pub status: DeliveryStatus,
    /// The status word exactly as the provider sent it.
    pub provider_status: String,
    /// The guest the message was sent to.
    #[schemars(extend("x-pii" = true))]
    pub recipient: Option<String>,
    /// The business address that sent it, where the provider says.
    #[schemars(extend("x-pii" = true))]
    pub from: Option<String>,
    /// Why delivery failed, when it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProviderError>,
    /// The WhatsApp conversation the message was billed to, where sent.
    pub conversation_id: Option<String>,
    pub account_id: Option<String>,
    /// Messenger and Instagram: the status holds for every message the business sent before
    /// this time (Meta's `watermark`); `message_id` is then empty unless Meta named the
    /// message.
    pub watermark: Option<jiff::Timestamp>,
}

/// An error a provider reported about a message.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProviderError {
    /// The provider's numeric error code (Meta `131047`, Twilio `30003`).
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
    /// A documentation link for the code.
    pub href: Option<String>,
}
