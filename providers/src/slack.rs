//! Slack: the Events API, interactivity and slash commands ("Verifying requests from Slack").
//!
//! Scheme: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:{ts}:{raw body}")>`
//! with `X-Slack-Request-Timestamp: {ts}` (Unix seconds), refused outside `tolerance` (default
//! 300 s, Slack's own advice) before any MAC. The signing secret is used as text.
//!
//! - **URL verification**: when an app's Request URL is set, Slack POSTs
//!   `{"type":"url_verification","challenge":…}`, signed like everything else. It is verified,
//!   then answered `{"challenge":…}` and nothing is stored.
//! - **Events API** (`event_callback`): the key is `event_id`, so Slack's retries (it retries
//!   a delivery not answered 2xx within 3 s, marking them `X-Slack-Retry-Num`, an unsigned
//!   header that porter does not read) are duplicates and get the original answer. The type is
//!   `event.type` (`message`, `app_mention`, `reaction_added`, …), mapped through the source's
//!   `event_types` (unmapped: `unknown`, the whole payload kept); the data is `event`; the
//!   property is `team_id`.
//! - **Interactivity and slash commands** come as forms (`payload=<json>`, or the command's
//!   fields): the key is the `trigger_id` Slack gives each, or a hash of the signed body; the
//!   type is the payload's `type` (`block_actions`, `view_submission`, …) or `slash_command`.
//! - The app's verification `token` that Slack puts in every payload is a credential, not
//!   content: it is removed from what porter stores.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{DEFAULT_TOLERANCE, V0Mac};
use crate::event::{Attributes, EventType, Origin, hashed_key};
use crate::json::{field, time};
use crate::provider::{Checked, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, EventTypes, SettingError, duration, require_secrets};
use crate::{Rejection, Reply, Request, Secret, form, generic};

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";
/// The longest challenge echoed back (Slack's are about 50 characters).
const MAX_CHALLENGE_LEN: usize = 1024;

/// The keys a `slack` source reads (and a `zoom` one: the same scheme).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Signing secrets (Slack) or secret tokens (Zoom); several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// The vendor's event types → canonical types.
    #[serde(default)]
    pub event_types: EventTypes,
}

/// A configured Slack source.
#[derive(Debug)]
pub struct Slack {
    mac: V0Mac,
    event_types: Vec<(String, EventType)>,
}

impl GuardedProvider for Slack {
    const ID: &'static str = "slack";
    type Settings = Settings;
    type Guard = V0Mac;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let V0Source { mac, event_types } = v0_source(settings, SIGNATURE, TIMESTAMP)?;
        Ok(Self { mac, event_types })
    }

    fn guard(&self) -> &V0Mac {
        &self.mac
    }

    /// The signed `url_verification` request, answered with its challenge.
    fn handshake_answer(
        &self,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        // Only a body that can be one is parsed, and only once it is verified.
        if !contains(request.body, b"url_verification") {
            return None;
        }
        if let Err(rejection) = self.mac.signed_by(request, now) {
            return Some(Err(rejection));
        }
        let payload: Value = serde_json::from_slice(request.body).ok()?;
        if payload.get("type").and_then(Value::as_str) != Some("url_verification") {
            return None;
        }
        Some(match payload.get("challenge").and_then(Value::as_str) {
            Some(challenge) if !challenge.is_empty() && challenge.len() <= MAX_CHALLENGE_LEN => {
                Ok(Reply::json(&json!({ "challenge": challenge })))
            }
            _ => Err(Rejection::MalformedHandshake("challenge")),
        })
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let request = checked.request();
        let event = if is_form(request) {
            self.interaction(request, origin)?
        } else {
            self.event_callback(request, origin)?
        };
        Ok(Normalization::accepted(vec![event]))
    }
}

impl Slack {
    /// An Events API delivery (`event_callback`, or any other JSON Slack sends there).
    fn event_callback(
        &self,
        request: &Request<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalized, Rejection> {
        let mut payload: Value = crate::json::parse(request.body)?;
        drop_token(&mut payload);
        let event = payload.get("event").unwrap_or(&Value::Null);
        let vendor_type = field(event, &["type"]).or_else(|| field(&payload, &["type"]));
        let attributes = Attributes {
            key: field(&payload, &["event_id"]).unwrap_or_else(|| hashed_key(request.body)),
            subject: field(event, &["channel", "item_user", "user"]),
            time: payload.get("event_time").and_then(time),
            provider_event_type: vendor_type.clone(),
            property_id: field(&payload, &["team_id"]),
            delivery_id: None,
        };
        let body = generic::body_for(
            &self.event_types,
            vendor_type.as_deref(),
            event,
            payload.clone(),
        );
        Ok(origin.event(attributes, body).into())
    }

    /// An interaction (`payload=<json>`) or a slash command (its fields), both forms.
    fn interaction(
        &self,
        request: &Request<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalized, Rejection> {
        let pairs = form::decode(request.body);
        let text = |name: &[u8]| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        };
        let mut payload: Value = match text(b"payload") {
            Some(json) => crate::json::parse(json.as_bytes())?,
            None => Value::Object(
                pairs
                    .iter()
                    .map(|(key, value)| {
                        (
                            String::from_utf8_lossy(key).into_owned(),
                            Value::String(String::from_utf8_lossy(value).into_owned()),
                        )
                    })
                    .collect::<Map<String, Value>>(),
            ),
        };
        drop_token(&mut payload);
        let vendor_type = match payload.get("command") {
            Some(_) if text(b"payload").is_none() => Some("slash_command".to_owned()),
            _ => field(&payload, &["type"]),
        };
        let team = payload
            .get("team")
            .and_then(|team| field(team, &["id"]))
            .or_else(|| field(&payload, &["team_id"]));
        let attributes = Attributes {
            key: field(&payload, &["trigger_id"]).unwrap_or_else(|| hashed_key(request.body)),
            subject: payload
                .get("channel")
                .and_then(|channel| field(channel, &["id"]))
                .or_else(|| field(&payload, &["channel_id"])),
            time: None,
            provider_event_type: vendor_type.clone(),
            property_id: team,
            delivery_id: None,
        };
        let body = generic::body_for(
            &self.event_types,
            vendor_type.as_deref(),
            &payload,
            payload.clone(),
        );
        Ok(origin.event(attributes, body).into())
    }
}

/// Removes the app's verification `token`, which Slack still puts in every payload: a
/// credential of the app (deprecated, but accepted by Slack's older APIs), not event content.
fn drop_token(payload: &mut Value) {
    if let Some(members) = payload.as_object_mut() {
        members.remove("token");
    }
}

fn is_form(request: &Request<'_>) -> bool {
    match request.single_header("content-type") {
        crate::request::HeaderValue::One(value) => value
            .get(..33)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")),
        _ => false,
    }
}

/// What a source signed with `v0:{ts}:{body}` (Slack, Zoom) is configured as.
pub(crate) struct V0Source {
    pub mac: V0Mac,
    pub event_types: Vec<(String, EventType)>,
}

/// A `v0` source with its signature and timestamp in the named headers; every problem of the
/// settings at once.
pub(crate) fn v0_source(
    settings: Settings,
    signature: &'static str,
    timestamp: &'static str,
) -> Result<V0Source, Vec<SettingError>> {
    let secrets = require_secrets(settings.secrets).map_err(|e| vec![e]);
    let event_types = settings.event_types.resolve();
    match (secrets, event_types) {
        (Ok(secrets), Ok(event_types)) => {
            let tolerance = settings.tolerance.unwrap_or(DEFAULT_TOLERANCE);
            Ok(V0Source {
                mac: V0Mac::new(signature, timestamp, secrets, tolerance),
                event_types,
            })
        }
        (secrets, event_types) => Err(secrets
            .err()
            .into_iter()
            .chain(event_types.err())
            .flatten()
            .collect()),
    }
}

/// Whether `needle` occurs in `haystack` (a cheap filter before any parsing).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests;
