//! Adyen standard webhooks (docs.adyen.com "Verify HMAC signatures"; the `HmacValidator` of
//! Adyen's API libraries).
//!
//! Scheme: each `notificationItems[].NotificationRequestItem` carries its own signature in
//! `additionalData.hmacSignature` = base64(HMAC-SHA256(hex-decoded HMAC key, signing
//! string)), where the signing string is `pspReference:originalReference:merchantAccountCode:
//! merchantReference:amount.value:amount.currency:eventCode:success` (absent fields as empty
//! text, the amount in minor units as an integer, `success` as `true`/`false`). The body is
//! parsed to find them, once, and handed on to normalization. Every item must verify against
//! one of `hmac_keys`, or the whole batch is refused: one forged item does not ride along
//! with authentic ones. Nothing is timestamped; duplicates are expected (Adyen retries for up
//! to 30 days), so the key is `pspReference:eventCode:success`.
//!
//! Optional HTTP Basic authentication in front (`basic = { username, password }`, set in the
//! Customer Area) is checked first, in constant time.
//!
//! The answer is `[accepted]` (200, text), which both Adyen's classic and current
//! integrations accept. Mapping: a successful `AUTHORISATION` (or `CAPTURE`, with
//! `payment_received_on = "capture"` for hotels that pre-authorise and capture at checkout)
//! → `payment.received`; a successful `REFUND` → `payment.refunded`; every other item,
//! failed ones included, → `unknown` with the item.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{BasicAuth, BasicSettings};
use crate::event::{Attributes, EventBody, Money, Origin, PaymentData, UnknownData};
use crate::json::{field, text_of, time};
use crate::provider::{Endpoint, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider};
use crate::settings::{Context, SettingError};
use crate::signing::{Algorithm, hmac};
use crate::{Rejection, Reply, Request, Secret};

/// Where each item's signature is.
const SIGNATURE: &str = "additionalData.hmacSignature";

/// The keys an `adyen` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HMAC keys as the Customer Area shows them (hex); several during a rotation.
    #[serde(default)]
    pub hmac_keys: Vec<Secret>,
    /// Optional Basic authentication Adyen sends in front of the HMAC.
    pub basic: Option<BasicSettings>,
    /// `authorisation` (default) or `capture`: which event code is `payment.received`.
    pub payment_received_on: Option<String>,
}

/// A configured Adyen source.
#[derive(Debug)]
pub struct Adyen {
    /// The hex-decoded keys.
    keys: Vec<Vec<u8>>,
    basic: Option<BasicAuth>,
    received_on: &'static str,
}

/// A verified batch: the parsed body, every item's signature checked.
#[derive(Debug)]
pub struct Verified(Value);

impl WebhookProvider for Adyen {
    const ID: &'static str = "adyen";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    type Settings = Settings;
    type Verified<'a> = Verified;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let mut problems = Vec::new();
        if settings.hmac_keys.is_empty() {
            problems.push(SettingError::new(
                "hmac_keys",
                "an adyen source needs the webhook's HMAC key (hex, from the Customer Area)",
            ));
        }
        let keys: Vec<Vec<u8>> = settings
            .hmac_keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| match hex::decode(key.expose().trim()) {
                Ok(bytes) if !bytes.is_empty() => Some(bytes),
                _ => {
                    problems.push(SettingError::new(
                        format!("hmac_keys[{i}]"),
                        "not an Adyen HMAC key: expected hex digits (the key is hex-decoded)",
                    ));
                    None
                }
            })
            .collect();
        let basic = match settings.basic.map(BasicAuth::new).transpose() {
            Ok(basic) => basic,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let received_on = match settings.payment_received_on.as_deref() {
            None | Some("authorisation") => "AUTHORISATION",
            Some("capture") => "CAPTURE",
            Some(other) => {
                problems.push(SettingError::new(
                    "payment_received_on",
                    format!("`{other}`: expected `authorisation` or `capture`"),
                ));
                "AUTHORISATION"
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            keys,
            basic,
            received_on,
        })
    }

    fn verify<'a>(&self, request: &Request<'a>, _now: Timestamp) -> Result<Verified, Rejection> {
        if let Some(basic) = &self.basic {
            basic.check(request)?;
        }
        // The signatures are inside the body: it must be read to find them. An unreadable
        // body carries no signature porter can check.
        let payload: Value = serde_json::from_slice(request.body)
            .map_err(|_| Rejection::MissingSignature(SIGNATURE.into()))?;
        let items = items(&payload).ok_or(Rejection::MissingSignature(SIGNATURE.into()))?;
        if items.is_empty() {
            return Err(Rejection::MissingSignature(SIGNATURE.into()));
        }
        for item in items {
            let offered = match item.pointer("/additionalData/hmacSignature") {
                None => return Err(Rejection::MissingSignature(SIGNATURE.into())),
                Some(Value::String(text)) => BASE64
                    .decode(text)
                    .ok()
                    .filter(|tag| tag.len() == Algorithm::Sha256.output_len())
                    .ok_or(Rejection::MalformedSignature(SIGNATURE.into()))?,
                Some(_) => return Err(Rejection::MalformedSignature(SIGNATURE.into())),
            };
            let content = signing_string(item);
            let matched = self.keys.iter().fold(false, |found, key| {
                found
                    | crate::signing::hmac_matches(
                        Algorithm::Sha256,
                        key,
                        &[content.as_bytes()],
                        &offered,
                    )
            });
            if !matched {
                return Err(Rejection::SignatureMismatch);
            }
        }
        Ok(Verified(payload))
    }

    fn normalize(
        &self,
        verified: Verified,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let Verified(payload) = verified;
        let live = field(&payload, &["live"]);
        let events = items(&payload)
            .unwrap_or_default()
            .iter()
            .map(|item| self.event(item, live.as_deref(), origin))
            .collect();
        Ok(Normalization {
            events,
            reply: Reply::text("[accepted]"),
        })
    }

    /// Signs every item of the body (its `hmacSignature` set in place) with the first key,
    /// and adds Basic authentication when configured. A body that is not a batch is sent as
    /// it is.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let mut headers = Vec::new();
        if let Some(basic) = &self.basic {
            headers.push(("Authorization".to_owned(), basic.header()));
        }
        let mut signed = Signed::headers(request, headers);
        let Ok(mut payload) = serde_json::from_slice::<Value>(request.body) else {
            return signed;
        };
        let Some(wrappers) = payload
            .get_mut("notificationItems")
            .and_then(Value::as_array_mut)
        else {
            return signed;
        };
        for wrapper in wrappers {
            let Some(item) = wrapper.get_mut("NotificationRequestItem") else {
                continue;
            };
            let signature = BASE64.encode(hmac(
                Algorithm::Sha256,
                &self.keys[0],
                &[signing_string(item).as_bytes()],
            ));
            if let Some(members) = item.as_object_mut() {
                let additional = members
                    .entry("additionalData")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Some(additional) = additional.as_object_mut() {
                    additional.insert("hmacSignature".to_owned(), Value::String(signature));
                }
            }
        }
        signed.body = serde_json::to_vec(&payload).ok();
        signed
    }
}

impl Adyen {
    fn event(&self, item: &Value, live: Option<&str>, origin: &Origin<'_>) -> crate::Normalized {
        let psp = field(item, &["pspReference"]).unwrap_or_default();
        let code = field(item, &["eventCode"]).unwrap_or_default();
        let success = success_text(item);
        let attributes = Attributes {
            key: format!("{psp}:{code}:{success}"),
            subject: Some(psp.clone()).filter(|p| !p.is_empty()),
            time: item.get("eventDate").and_then(time),
            provider_event_type: Some(code.clone()).filter(|c| !c.is_empty()),
            property_id: field(item, &["merchantAccountCode"]),
            delivery_id: None,
        };
        let payment = || PaymentData {
            payment_id: Some(psp.clone()).filter(|p| !p.is_empty()),
            amount: item.get("amount").and_then(|amount| {
                Some(Money {
                    amount: amount.get("value").and_then(text_of)?,
                    minor_units: true,
                    currency: field(amount, &["currency"]),
                })
            }),
            reservation_id: field(item, &["merchantReference"]),
            order_id: None,
            method: field(item, &["paymentMethod"]),
            raw: Some(item.clone()),
        };
        let succeeded = success == "true";
        let body = match code.as_str() {
            c if c == self.received_on && succeeded => EventBody::PaymentReceived(payment()),
            "REFUND" if succeeded => EventBody::PaymentRefunded(payment()),
            _ => EventBody::Unknown(UnknownData {
                reason: if succeeded || code.is_empty() {
                    format!("Adyen event code `{code}` is not modelled")
                } else {
                    format!("a failed `{code}` (success false) is not a payment")
                },
                raw: with_live(item, live),
            }),
        };
        origin.event(attributes, body).into()
    }
}

/// The item, with the batch's `live` flag beside it (it says test or live money).
fn with_live(item: &Value, live: Option<&str>) -> Value {
    let mut item = item.clone();
    if let (Some(members), Some(live)) = (item.as_object_mut(), live) {
        members.insert("live".to_owned(), Value::String(live.to_owned()));
    }
    item
}

/// Every `NotificationRequestItem` of a batch; `None` when the body is not one.
fn items(payload: &Value) -> Option<Vec<&Value>> {
    payload
        .get("notificationItems")?
        .as_array()?
        .iter()
        .map(|wrapper| wrapper.get("NotificationRequestItem"))
        .collect()
}

/// `success` as the signing string writes it.
fn success_text(item: &Value) -> String {
    match item.get("success") {
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(value) => text_of(value).unwrap_or_default(),
        None => String::new(),
    }
}

/// `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
/// eventCode:success`.
pub fn signing_string(item: &Value) -> String {
    let text = |name: &str| item.get(name).and_then(text_of).unwrap_or_default();
    let amount = item.get("amount").unwrap_or(&Value::Null);
    [
        text("pspReference"),
        text("originalReference"),
        text("merchantAccountCode"),
        text("merchantReference"),
        amount.get("value").and_then(text_of).unwrap_or_default(),
        amount.get("currency").and_then(text_of).unwrap_or_default(),
        text("eventCode"),
        success_text(item),
    ]
    .join(":")
}

/// The `hmacSignature` of an item under `hex_key` (for tests, and for signing a body).
pub fn item_signature(hex_key: &str, item: &Value) -> Option<String> {
    let key = hex::decode(hex_key).ok()?;
    Some(BASE64.encode(hmac(
        Algorithm::Sha256,
        &key,
        &[signing_string(item).as_bytes()],
    )))
}

#[cfg(test)]
mod tests;
