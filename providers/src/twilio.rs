//! Twilio Programmable Messaging webhooks: incoming SMS/MMS/WhatsApp and status callbacks.
//!
//! Scheme (twilio.com/docs/usage/security, "Validating Signatures from Twilio"; the official
//! SDKs' request validators):
//!
//! - `X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + params))`, where URL is the full
//!   public URL Twilio requested (scheme, host, path and the query string exactly as sent) and
//!   params is every decoded form field, keys sorted by code point, each key followed by its
//!   values sorted, concatenated without separators.
//! - The URL is rebuilt from the configured `public_url` (porter usually sits behind a proxy or
//!   load balancer, so the `Host` header cannot be trusted). Twilio is inconsistent about
//!   default ports, so the URL with and without the port is accepted, as the SDKs do.
//! - JSON bodies: Twilio adds `bodySHA256=<hex SHA-256 of the body>` to the query and signs the
//!   URL alone; porter checks both the signature and the body hash.
//! - No timestamp is signed: replays are caught by deduplication. Twilio's concatenation
//!   without separators lets a captured request be reshaped (`MessageSid=SM1` →
//!   `MessageSidS=M1`) without breaking the signature, so the dedupe key is a hash of exactly
//!   the signed content, which every variant that verifies shares: a replay with a fresh
//!   idempotency token or reshaped parameters is still a replay.
//! - The event id key is signed content too: `MessageSid` (`MessageSid:MessageStatus` for
//!   callbacks) when it has the shape of a Twilio SID (two capital letters and 32 letters or
//!   digits, which a reshaped parameter cannot keep), else the dedupe key. `I-Twilio-Idempotency-Token`
//!   is not signed: it is kept as `providerdeliveryid`, a label, and never names an event.
//! - Work before authentication is linear in the body: the parameters are counted before
//!   anything is decoded, and a form of more than [`MAX_PARAMS`] is refused (Twilio sends a few
//!   dozen; the signature covers them all, so all would have to be decoded and sorted).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::Uri;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use serde::Deserialize;

use crate::auth::{Encoding, required_header};
use crate::diagnosis::{Part, Scheme, SecretFormat, SignedUrl};
use crate::event::{
    Attributes, Channel, DeliveryStatus, EventBody, Location, Media, MessageData, MessageKind,
    MessageStatusData, Origin, ProviderError, RepliedTo, Selection, SelectionKind, UnknownData,
    delivery_label, event_id, hashed_key, source_uri,
};
use crate::provider::{Endpoint, Normalization, Normalized, Signed, ToSign, WebhookProvider};
use crate::settings::{Context, SettingError, public_url, require_secrets};
use crate::signing::{Algorithm, ct_eq, hmac, hmac_matches};
use crate::{Rejection, Reply, Request, Secret, form};

/// Incoming messages at the base path, status callbacks at `/status`.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        suffix: "",
        methods: &[http::Method::POST],
    },
    Endpoint {
        suffix: STATUS_SUFFIX,
        methods: &[http::Method::POST],
    },
];

/// The empty TwiML document: "received, do nothing".
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

const STATUS_SUFFIX: &str = "/status";
const SIGNATURE_HEADER: &str = "x-twilio-signature";
const IDEMPOTENCY_HEADER: &str = "i-twilio-idempotency-token";
const BODY_HASH_PARAM: &[u8] = b"bodySHA256";
/// Twilio allows at most 10 media per message; more is not a Twilio request.
const MAX_MEDIA: usize = 10;
/// The most form parameters porter decodes (and sorts) to check a signature. Twilio sends a
/// few dozen (an MMS with ten media and WhatsApp's extra fields stays under a hundred).
pub const MAX_PARAMS: usize = 512;

/// The keys a `twilio` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Auth tokens: the primary and, during rotation, the secondary.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The URL Twilio calls (default: `server.public_url`), which Twilio signs.
    pub public_url: Option<String>,
}

/// A configured Twilio source.
#[derive(Debug)]
pub struct Twilio {
    /// Auth tokens; the primary and, during rotation, the secondary.
    secrets: Vec<Secret>,
    /// `public_url` as configured and with its port toggled (made explicit when implicit,
    /// removed when explicit), without a trailing slash. The first is the one porter signs with.
    bases: [String; 2],
}

/// A request whose signature verified, with what verification decoded: the signed content
/// (the dedupe key derives from it) and the form's parameters.
#[derive(Debug)]
pub struct Verified<'a> {
    request: Request<'a>,
    content: SignedContent,
}

impl WebhookProvider for Twilio {
    const ID: &'static str = "twilio";
    const ENDPOINTS: &'static [Endpoint] = ENDPOINTS;
    type Settings = Settings;
    type Verified<'a> = Verified<'a>;

    fn from_settings(settings: Settings, context: &Context) -> Result<Self, Vec<SettingError>> {
        let secrets = require_secrets(settings.secrets);
        let bases = match public_url(settings.public_url, context) {
            Err(problem) => Err(problem),
            Ok(None) => Err(SettingError::new(
                "public_url",
                "required: the public base URL Twilio calls, which Twilio signs \
                 (set server.public_url or the source's public_url)",
            )),
            Ok(Some(url)) => {
                url_bases(&url).map_err(|problem| SettingError::new("public_url", problem))
            }
        };
        match (secrets, bases) {
            (Ok(secrets), Ok(bases)) => Ok(Self { secrets, bases }),
            (secrets, bases) => Err([secrets.err(), bases.err()].into_iter().flatten().collect()),
        }
    }

    fn verify<'a>(
        &self,
        request: &Request<'a>,
        _now: Timestamp,
    ) -> Result<Verified<'a>, Rejection> {
        let value = required_header(request, SIGNATURE_HEADER.into())?;
        let tag = BASE64
            .decode(value)
            .ok()
            .filter(|tag| tag.len() == Algorithm::Sha1.output_len())
            .ok_or_else(|| Rejection::MalformedSignature(SIGNATURE_HEADER.into()))?;

        let content = SignedContent::of(request)?;
        let matched = self.secrets.iter().any(|secret| {
            self.bases.iter().any(|base| {
                content.suffixes.iter().any(|suffix| {
                    hmac_matches(
                        Algorithm::Sha1,
                        secret.expose().as_bytes(),
                        &[base.as_bytes(), suffix.as_bytes(), &content.params],
                        &tag,
                    )
                })
            })
        });
        if !matched {
            return Err(Rejection::SignatureMismatch);
        }
        match body_hash_param(request.query) {
            Some(expected) if !ct_eq(&sha256_hex(request.body), &expected.to_ascii_lowercase()) => {
                Err(Rejection::BodyHashMismatch)
            }
            _ => Ok(Verified {
                request: *request,
                content,
            }),
        }
    }

    fn normalize(
        &self,
        verified: Verified<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let events = normalize_content(&verified.request, verified.content, origin)?;
        Ok(Normalization {
            events,
            // Empty TwiML on both endpoints: "received, do nothing".
            reply: Reply::xml(EMPTY_TWIML),
        })
    }

    /// The URL porter rebuilds (with its variants) and the sorted parameters, under the auth
    /// tokens, for a diagnosis of a refusal.
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let value = required_header(request, SIGNATURE_HEADER.into()).ok()?;
        let content = SignedContent::of(request).ok()?;
        let scheme = Scheme::new(
            &self.secrets,
            SecretFormat::Text,
            Algorithm::Sha1,
            Encoding::Base64,
            vec![Part::Url, content.params.into()],
        );
        Some(
            scheme
                .offering([value])
                .signing_url(SignedUrl::new(&self.bases, request)),
        )
    }

    /// Signs a request as Twilio does, with the first auth token. A JSON body gets the
    /// `bodySHA256` query parameter.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let is_json = request.content_type.starts_with("application/json");
        let query = if is_json {
            let hash = format!(
                "bodySHA256={}",
                String::from_utf8_lossy(&sha256_hex(request.body))
            );
            Some(match request.query {
                Some(q) if !q.is_empty() => format!("{q}&{hash}"),
                _ => hash,
            })
        } else {
            request.query.map(str::to_owned)
        };
        let url = format!(
            "{}{}",
            self.bases[0],
            url_suffix(request.path, query.as_deref())
        );
        let params = if is_json {
            Vec::new()
        } else {
            sorted_params(&form::decode(request.body))
        };
        let mac = hmac(
            Algorithm::Sha1,
            self.secrets[0].expose().as_bytes(),
            &[url.as_bytes(), &params],
        );
        Signed {
            query,
            headers: vec![("X-Twilio-Signature".into(), BASE64.encode(mac))],
            body: None,
        }
    }
}

/// The `X-Twilio-Signature` value for a form POST to `url` (the SDKs' algorithm).
pub fn signature(secret: &Secret, url: &str, form_body: &[u8]) -> String {
    let params = sorted_params(&form::decode(form_body));
    BASE64.encode(hmac(
        Algorithm::Sha1,
        secret.expose().as_bytes(),
        &[url.as_bytes(), &params],
    ))
}

/// `public_url` as the two bases Twilio may have signed: with and without the port.
pub(crate) fn url_bases(public_url: &str) -> Result<[String; 2], String> {
    let uri: Uri = public_url
        .parse()
        .map_err(|_| "is not a URL (the value is not shown: it may hold credentials)".to_owned())?;
    let scheme = uri.scheme_str().unwrap_or("");
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => {
            // The value is not repeated: it may carry credentials (`https://user:pass@host`).
            return Err("must start with https:// or http://".to_owned());
        }
    };
    let authority = uri.authority().ok_or_else(|| "has no host".to_owned())?;
    if uri.query().is_some() || public_url.contains('#') {
        return Err("may not have a query or fragment".to_owned());
    }
    // Keep any `user:pass@` Twilio was configured with: it is part of the signed URL.
    let text = authority.as_str();
    let userinfo = text.rfind('@').map(|at| &text[..=at]).unwrap_or("");
    let host = authority.host();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let path = uri.path().trim_end_matches('/');
    let without_port = format!("{scheme}://{userinfo}{host}{path}");
    let with_port = format!(
        "{scheme}://{userinfo}{host}:{}{path}",
        authority.port_u16().unwrap_or(default_port)
    );
    // The configured form first: it is the one porter signs with.
    Ok(if authority.port().is_some() {
        [with_port, without_port]
    } else {
        [without_port, with_port]
    })
}

fn url_suffix(path: &str, query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}

/// The form's parameters, refused before any is decoded when there are more than
/// [`MAX_PARAMS`]: counting separators is one linear scan, decoding allocates per parameter.
fn bounded_form(body: &[u8]) -> Result<form::Pairs, Rejection> {
    if form::count(body) > MAX_PARAMS {
        return Err(Rejection::TooManyParameters(MAX_PARAMS));
    }
    Ok(form::decode(body))
}

fn body_hash_param(query: Option<&str>) -> Option<Vec<u8>> {
    form::decode(query?.as_bytes())
        .into_iter()
        .find(|(key, _)| key == BODY_HASH_PARAM)
        .map(|(_, value)| value)
}

fn sha256_hex(body: &[u8]) -> Vec<u8> {
    hex::encode(Sha256::digest(body)).into_bytes()
}

/// Names sorted by code point (UTF-8 byte order is code point order), each followed by its
/// values sorted, with repeated identical pairs dropped (as the SDKs sign), concatenated
/// without separators.
fn sorted_params(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut sorted: Vec<&(Vec<u8>, Vec<u8>)> = pairs.iter().collect();
    sorted.sort();
    sorted.dedup();
    sorted
        .into_iter()
        .flat_map(|(key, value)| key.iter().chain(value.iter()).copied())
        .collect()
}

/// What Twilio signs after the base URL: the path and query, then the sorted parameters
/// (none when the query carries `bodySHA256`: the body is bound by its hash instead).
#[derive(Debug)]
struct SignedContent {
    /// The path and query as received, and the forms of it Twilio may have signed: Twilio
    /// signs the URL with `'` escaped as `%27` (as twilio-node documents), while it may arrive
    /// either way.
    suffixes: Vec<String>,
    params: Vec<u8>,
    /// The decoded form, in the order received (none for the JSON variant).
    pairs: form::Pairs,
}

impl SignedContent {
    fn of(request: &Request<'_>) -> Result<Self, Rejection> {
        let suffix = url_suffix(request.path, request.query);
        let pairs = match body_hash_param(request.query) {
            Some(_) => Vec::new(),
            None => bounded_form(request.body)?,
        };
        let params = sorted_params(&pairs);
        let mut suffixes = vec![suffix];
        for variant in [
            suffixes[0].replace('\'', "%27"),
            suffixes[0].replace("%27", "'"),
        ] {
            if !suffixes.contains(&variant) {
                suffixes.push(variant);
            }
        }
        Ok(Self {
            suffixes,
            params,
            pairs,
        })
    }

    /// `sha256:` of the signed bytes after the base, in one canonical form (`'` as `%27`) and
    /// without any separator: every request that verifies against one signature has this key,
    /// however its bytes were split between query and body, names and values.
    fn key(&self) -> String {
        let mut bytes = self.suffixes[0].replace('\'', "%27").into_bytes();
        bytes.extend_from_slice(&self.params);
        hashed_key(&bytes)
    }
}

/// Turns a request into one event, decoding what a verified request would carry (the tests'
/// entry point; the server's goes through [`WebhookProvider::normalize`]).
#[cfg(test)]
pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    normalize_content(request, SignedContent::of(request)?, origin)
}

/// One event from a request and its signed content.
fn normalize_content(
    request: &Request<'_>,
    content: SignedContent,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    // The dedupe key is the signed content itself (see the module doc).
    let content_key = content.key();
    let params = Params::parse(request, content.pairs)?;
    let dedupe_key = event_id(&source_uri(origin.source_name), &content_key);
    let (attributes, body) = if request.endpoint == STATUS_SUFFIX {
        status_event(&params, &content_key)
    } else {
        incoming_event(&params, &content_key)
    }
    .unwrap_or_else(|| unknown_event(&params, request, &content_key));
    let attributes = Attributes {
        // Not signed: a label only.
        delivery_id: delivery_label(request.header_str(IDEMPOTENCY_HEADER)),
        ..attributes
    };
    Ok(vec![Normalized {
        dedupe_key,
        event: origin.event(attributes, body),
    }])
}

/// The dedupe key of a request: see [`SignedContent::key`]. Twilio concatenates names and
/// values without separators, so `MessageSid=SM1` and `MessageSidS=M1` sign alike, and a
/// replay reshaped that way must still be a duplicate.
#[cfg(test)]
fn signed_content_key(request: &Request<'_>) -> Result<String, Rejection> {
    Ok(SignedContent::of(request)?.key())
}

/// `content_key` names the event when its SID does not have a SID's shape.
fn incoming_event(params: &Params, content_key: &str) -> Option<(Attributes, EventBody)> {
    let sid = params.message_sid()?;
    let (channel, from) = address(params.get("From")?);
    let to = params.get("To").map(|to| address(to).1);
    let media: Vec<Media> = (0..MAX_MEDIA)
        .map_while(|i| {
            let url = params.get(&format!("MediaUrl{i}"))?;
            Some(Media {
                url: Some(url.to_owned()),
                mime_type: params
                    .get(&format!("MediaContentType{i}"))
                    .map(str::to_owned),
                ..Media::default()
            })
        })
        .collect();
    let location = match (params.number("Latitude"), params.number("Longitude")) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
            name: params.owned("Label"),
            address: params.owned("Address"),
            url: None,
        }),
        _ => None,
    };
    let selection = (params.get("ButtonPayload").is_some() || params.get("ButtonText").is_some())
        .then(|| Selection {
            kind: SelectionKind::QuickReply,
            id: params.owned("ButtonPayload"),
            title: params.owned("ButtonText"),
            description: None,
        });
    let kind = if location.is_some() {
        MessageKind::Location
    } else if selection.is_some() {
        MessageKind::Button
    } else if let Some(first) = media.first() {
        media_kind(first.mime_type.as_deref().unwrap_or(""))
    } else {
        MessageKind::Text
    };
    let data = MessageData {
        channel,
        message_id: sid.to_owned(),
        from: Some(from.to_owned()),
        to: to.map(str::to_owned),
        profile_name: params.owned("ProfileName"),
        kind: Some(kind),
        text: params
            .get("Body")
            .filter(|b| !b.is_empty())
            .map(str::to_owned),
        media,
        location,
        contacts: Vec::new(),
        selection,
        reaction: None,
        replied_to: params
            .owned("OriginalRepliedMessageSid")
            .map(|id| RepliedTo {
                message_id: id,
                from: params
                    .get("OriginalRepliedMessageSender")
                    .map(|f| address(f).1.to_owned()),
            }),
        account_id: params.owned("AccountSid"),
    };
    let attributes = Attributes {
        key: if is_sid(sid) {
            sid.to_owned()
        } else {
            content_key.to_owned()
        },
        subject: Some(sid.to_owned()),
        time: None,
        provider_event_type: Some("incoming_message".to_owned()),
        property_id: to.map(str::to_owned),
        delivery_id: None,
    };
    Some((attributes, EventBody::MessageReceived(data)))
}

fn status_event(params: &Params, content_key: &str) -> Option<(Attributes, EventBody)> {
    let sid = params.message_sid()?;
    let status = params
        .get("MessageStatus")
        .or_else(|| params.get("SmsStatus"))?;
    let (to_channel, recipient) = params.get("To").map(address).unzip();
    let (from_channel, from) = params.get("From").map(address).unzip();
    let channel =
        if to_channel == Some(Channel::Whatsapp) || from_channel == Some(Channel::Whatsapp) {
            Channel::Whatsapp
        } else {
            Channel::Sms
        };
    let errors = match params.get("ErrorCode") {
        Some(code) if !code.is_empty() => vec![ProviderError {
            code: code.parse().ok(),
            message: params.owned("ErrorMessage"),
            ..ProviderError::default()
        }],
        _ => Vec::new(),
    };
    let data = MessageStatusData {
        channel,
        message_id: sid.to_owned(),
        status: DeliveryStatus::from_vendor(status),
        provider_status: status.to_owned(),
        recipient: recipient.map(str::to_owned),
        from: from.map(str::to_owned),
        errors,
        conversation_id: None,
        account_id: params.owned("AccountSid"),
        watermark: None,
    };
    let attributes = Attributes {
        key: if is_sid(sid) {
            format!("{sid}:{status}")
        } else {
            content_key.to_owned()
        },
        subject: Some(sid.to_owned()),
        time: None,
        provider_event_type: Some("status_callback".to_owned()),
        property_id: from.map(str::to_owned),
        delivery_id: None,
    };
    Some((attributes, EventBody::MessageStatusChanged(data)))
}

fn unknown_event(
    params: &Params,
    request: &Request<'_>,
    content_key: &str,
) -> (Attributes, EventBody) {
    let attributes = Attributes {
        key: content_key.to_owned(),
        provider_event_type: Some(
            if request.endpoint == STATUS_SUFFIX {
                "status_callback"
            } else {
                "incoming_message"
            }
            .to_owned(),
        ),
        ..Attributes::default()
    };
    let data = UnknownData {
        reason: "request lacks the fields that identify a message".to_owned(),
        raw: params.to_json(),
    };
    (attributes, EventBody::Unknown(data))
}

/// A Twilio SID: a two-letter type (`SM`, `MM`, …) and 32 letters or digits (Twilio's are
/// hex). A reshaped request (bytes moved between names and values, which the signature does
/// not see) cannot keep a SID's exact length and alphabet at the name's place, so an id of
/// this shape is the one Twilio signed.
fn is_sid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 34
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(u8::is_ascii_alphanumeric)
}

/// Splits `whatsapp:+1555…` into its channel and bare address.
fn address(value: &str) -> (Channel, &str) {
    match value.strip_prefix("whatsapp:") {
        Some(bare) => (Channel::Whatsapp, bare),
        None => (Channel::Sms, value),
    }
}

fn media_kind(mime_type: &str) -> MessageKind {
    match mime_type.split('/').next().unwrap_or("") {
        "image" => MessageKind::Image,
        "audio" => MessageKind::Audio,
        "video" => MessageKind::Video,
        _ => MessageKind::Document,
    }
}

/// The request's parameters as text: decoded form fields, or the top-level members of a JSON
/// body (Twilio's `bodySHA256` variant).
struct Params(BTreeMap<String, Vec<String>>);

impl Params {
    /// The parameters of a JSON body (the `bodySHA256` variant), else the decoded `form`.
    fn parse(request: &Request<'_>, form: form::Pairs) -> Result<Self, Rejection> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if body_hash_param(request.query).is_some() {
            let value: serde_json::Value = crate::json::parse(request.body)?;
            if let serde_json::Value::Object(members) = value {
                for (key, value) in members {
                    let text = match value {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    map.entry(key).or_default().push(text);
                }
            }
        } else {
            for (key, value) in form {
                let (Ok(key), Ok(value)) = (String::from_utf8(key), String::from_utf8(value))
                else {
                    return Err(Rejection::malformed("form", "a parameter is not UTF-8"));
                };
                map.entry(key).or_default().push(value);
            }
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.first().map(String::as_str)
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.get(name)?.parse().ok().filter(|n: &f64| n.is_finite())
    }

    fn message_sid(&self) -> Option<&str> {
        ["MessageSid", "SmsMessageSid", "SmsSid"]
            .iter()
            .find_map(|name| self.get(name))
            .filter(|sid| !sid.is_empty())
    }

    /// One JSON member per parameter; repeated parameters become arrays.
    fn to_json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(key, values)| {
                let value = match values.as_slice() {
                    [one] => serde_json::Value::String(one.clone()),
                    many => many
                        .iter()
                        .cloned()
                        .map(serde_json::Value::String)
                        .collect(),
                };
                (key.clone(), value)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

#[cfg(test)]
mod tests;
