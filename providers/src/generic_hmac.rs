//! The configurable HMAC scheme (`provider = "hmac"`): for vendors porter has no module for,
//! onboarded with configuration rather than code.
//!
//! The `hmac` table says where the signature is (`header`, `prefix`, `encoding` hex or base64,
//! `algorithm` sha1/sha256/sha512), what is signed (`signed`, a template over `{id}`,
//! `{timestamp}`, `{body}` and `{url}`; default `{body}`), where the event id is (`id_header`,
//! or `id_pointer` into the JSON body) and the type (`type_pointer`).
//!
//! What is trusted is what is signed:
//!
//! - **The event key** (from which the event id and the dedupe key derive) is the `{id}` header
//!   when the template signs it, else the value at `id_pointer` in the (signed) body, else a hash
//!   of the signed content without its timestamp (so a vendor's retry with a fresh timestamp is
//!   still a duplicate). An `id_header` that the template does not sign only *labels* the event
//!   (`providerdeliveryid`): a replay could carry any value there, so it never names or
//!   deduplicates the event.
//! - **A `timestamp_header` must be signed** (`{timestamp}` in the template), or the
//!   configuration is refused: a window over a value anyone can replace protects nothing and
//!   would only look like replay protection. Its format and window are checked before any MAC.
//! - `{id}` and `{timestamp}` must be separated from other placeholders by literal text, and an
//!   id may not contain the characters of the literals around it: otherwise bytes could move
//!   between the id and its neighbours without changing the signed text (`{id}{body}`), and a
//!   replay would get a new key.
//! - The template must contain `{body}`: a signature that does not cover the body
//!   authenticates nothing porter stores.
//!
//! Examples:
//!
//! - GitHub (`X-GitHub-Delivery` is not signed, so it can only label):
//!   `header = "X-Hub-Signature-256"`, `prefix = "sha256="`.
//! - Shopify (`X-Shopify-Webhook-Id` is not signed either): `header = "X-Shopify-Hmac-Sha256"`,
//!   `encoding = "base64"`.
//! - A vendor that signs id and timestamp: `signed = "{id}.{timestamp}.{body}"`,
//!   `id_header = "X-Vendor-Delivery"`, `timestamp_header = "X-Vendor-Timestamp"`.

use std::borrow::Cow;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{
    DEFAULT_TOLERANCE, Encoding, MacHeader, check_window, required_header, timestamp_header,
};
use crate::diagnosis::{Part, Scheme, SecretFormat, SignedUrl};
use crate::event::{Attributes, EventType, Origin, delivery_label, hashed_key};
use crate::json::text_of;
use crate::provider::{
    Checked, Endpoint, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider,
};
use crate::settings::{
    Context, EventTypes, HmacSettings, SettingError, duration, public_url, require_secrets,
};
use crate::signing::Algorithm;
use crate::{Rejection, Request, Secret, generic};

/// One piece of the signed text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Id,
    Timestamp,
    Body,
    Url,
}

/// The keys an `hmac` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Signing secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// How the vendor signs.
    pub hmac: Option<HmacSettings>,
    /// The timestamp window (default 5 minutes), where `{timestamp}` is signed.
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// The vendor's event types → canonical types.
    #[serde(default)]
    pub event_types: EventTypes,
    /// The URL the vendor calls (default: `server.public_url`), for `{url}`.
    pub public_url: Option<String>,
}

/// A configured generic HMAC source.
#[derive(Debug)]
pub struct GenericHmac {
    secrets: Vec<Secret>,
    mac: MacHeader,
    template: Vec<Piece>,
    timestamp_header: Option<String>,
    id_header: Option<String>,
    /// Bytes an `{id}` may not contain: those of the literals around it in the template.
    id_fence: Vec<u8>,
    id_pointer: Option<String>,
    type_pointer: Option<String>,
    public_url: Option<String>,
    tolerance: Duration,
    event_types: Vec<(String, EventType)>,
}

impl WebhookProvider for GenericHmac {
    const ID: &'static str = "hmac";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, context: &Context) -> Result<Self, Vec<SettingError>> {
        let mut errors = Vec::new();
        let secrets = require_secrets(settings.secrets)
            .map_err(|e| errors.push(e))
            .ok();
        let public_url = public_url(settings.public_url, context)
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let event_types = settings
            .event_types
            .resolve()
            .map_err(|e| errors.extend(e))
            .unwrap_or_default();
        let Some(hmac) = &settings.hmac else {
            return Err(vec![SettingError::new(
                "hmac",
                "required: the `hmac` table says how the vendor signs",
            )]);
        };
        let algorithm = match hmac.algorithm.as_deref().unwrap_or("sha256") {
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                errors.push(SettingError::new(
                    "hmac.algorithm",
                    "must be sha1, sha256 or sha512",
                ));
                Algorithm::Sha256
            }
        };
        let encoding = match hmac.encoding.as_deref().unwrap_or("hex") {
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            _ => {
                errors.push(SettingError::new("hmac.encoding", "must be hex or base64"));
                Encoding::Hex
            }
        };
        let template = parse_template(hmac.signed.as_deref().unwrap_or("{body}"))
            .map_err(|problem| errors.push(SettingError::new("hmac.signed", problem)))
            .unwrap_or_default();
        check_template(&template, hmac, public_url.is_some(), &mut errors);
        let header_name = |name: &Option<String>| name.as_ref().map(|n| n.to_ascii_lowercase());
        for (key, value) in [
            ("hmac.header", Some(&hmac.header)),
            ("hmac.timestamp_header", hmac.timestamp_header.as_ref()),
            ("hmac.id_header", hmac.id_header.as_ref()),
        ] {
            if value.is_some_and(|name| http::HeaderName::from_bytes(name.as_bytes()).is_err()) {
                errors.push(SettingError::new(key, "is not a valid header name"));
            }
        }
        for (key, pointer) in [
            ("hmac.id_pointer", &hmac.id_pointer),
            ("hmac.type_pointer", &hmac.type_pointer),
        ] {
            if pointer.as_ref().is_some_and(|p| !p.starts_with('/')) {
                errors.push(SettingError::new(
                    key,
                    "must be a JSON pointer such as `/id`",
                ));
            }
        }
        if hmac.id_header.is_some() && hmac.id_pointer.is_some() {
            errors.push(SettingError::new(
                "hmac.id_pointer",
                "set either `id_header` or `id_pointer`, not both",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            secrets: secrets.unwrap_or_default(),
            mac: MacHeader {
                name: Cow::Owned(hmac.header.to_ascii_lowercase()),
                prefix: Cow::Owned(hmac.prefix.clone().unwrap_or_default()),
                encoding,
                algorithm,
            },
            id_fence: id_fence(&template),
            template,
            timestamp_header: header_name(&hmac.timestamp_header),
            id_header: header_name(&hmac.id_header),
            id_pointer: hmac.id_pointer.clone(),
            type_pointer: hmac.type_pointer.clone(),
            public_url,
            tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            event_types,
        })
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        // `check_template` guarantees a configured timestamp is signed; its window comes
        // before any MAC, so a stale request costs no hashing.
        let timestamp = match &self.timestamp_header {
            Some(name) => {
                let (seconds, text) = timestamp_header(request, Cow::Owned(name.clone()))?;
                check_window(seconds, now, self.tolerance)?;
                Some(text)
            }
            None => None,
        };
        let id = self.signed_id(request)?;
        let url = self.url(request.path, request.query);
        let parts = self.parts(
            id.unwrap_or_default(),
            timestamp.unwrap_or_default(),
            request.body,
            &url,
        );
        self.mac.verify(request, &self.secrets, &parts)?;
        Ok(Checked::new(request))
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let request = verified.request();
        let payload: Value = crate::json::parse(request.body)?;
        let pointed = |pointer: &Option<String>| {
            pointer
                .as_ref()
                .and_then(|p| payload.pointer(p))
                .and_then(text_of)
        };
        // verify() has checked a signed id; an unsigned one is only a label.
        let signed_id = if self.signs_id() {
            self.id_header
                .as_ref()
                .and_then(|name| request.header_str(name))
                .map(str::to_owned)
        } else {
            None
        };
        let key = signed_id
            .or_else(|| pointed(&self.id_pointer).filter(|id| !id.is_empty()))
            .unwrap_or_else(|| self.content_key(request));
        let delivery_id = match &self.id_header {
            Some(name) if !self.signs_id() => delivery_label(request.header_str(name)),
            _ => None,
        };
        let vendor_type = pointed(&self.type_pointer);
        let time = self
            .timestamp_header
            .as_ref()
            .and_then(|name| request.header_str(name))
            .and_then(|text| jiff::Timestamp::from_second(text.parse().ok()?).ok());
        let attributes = Attributes {
            key,
            subject: None,
            time,
            provider_event_type: vendor_type.clone(),
            property_id: None,
            delivery_id,
        };
        let body = generic::body_for(
            &self.event_types,
            vendor_type.as_deref(),
            &payload,
            payload.clone(),
        );
        Ok(Normalization::accepted(vec![
            origin.event(attributes, body).into(),
        ]))
    }

    /// The template's content under the secrets' text, for a diagnosis of a refusal. Read
    /// leniently: a missing id or timestamp signs as empty (the request is refused anyway);
    /// `{url}` is the configured URL, whose variants a diagnosis tries.
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let timestamp = self
            .timestamp_header
            .as_ref()
            .and_then(|name| timestamp_header(request, Cow::Owned(name.clone())).ok());
        let id = self.signed_id(request).ok().flatten();
        let text = timestamp.map(|(_, text)| text);
        let parts = self.parts(
            id.unwrap_or_default(),
            text.unwrap_or_default(),
            request.body,
            "",
        );
        let content = parts
            .into_iter()
            .zip(&self.template)
            .map(|(bytes, piece)| match piece {
                Piece::Url => Part::Url,
                _ => bytes.into(),
            })
            .collect();
        let mut scheme = self
            .mac
            .scheme(request, &self.secrets, SecretFormat::Text, content);
        if let Some(public_url) = &self.public_url {
            let bases = std::slice::from_ref(public_url);
            scheme = scheme.signing_url(SignedUrl::new(bases, request));
        }
        Some(scheme.timestamp(timestamp.map(|(seconds, _)| seconds)))
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let id = format!("evt_{}", &hex::encode(Sha256::digest(request.body))[..24]);
        let timestamp = request.now.as_second().to_string();
        let url = self.url(request.path, request.query);
        let parts = self.parts(id.as_bytes(), timestamp.as_bytes(), request.body, &url);
        let mut headers = vec![(
            self.mac.name.to_string(),
            self.mac.sign(&self.secrets[0], &parts),
        )];
        if let Some(name) = &self.id_header {
            headers.push((name.clone(), id));
        }
        if let Some(name) = &self.timestamp_header {
            headers.push((name.clone(), timestamp));
        }
        Signed {
            query: request.query.map(str::to_owned),
            headers,
            body: None,
        }
    }
}

impl GenericHmac {
    /// The `{id}` header, when the template signs it: present once, non-empty, visible ASCII,
    /// and free of the literal characters around `{id}`, so that the signed text splits one
    /// way only.
    fn signed_id<'a>(&self, request: &Request<'a>) -> Result<Option<&'a [u8]>, Rejection> {
        let Some(name) = self.id_header.as_ref().filter(|_| self.signs_id()) else {
            return Ok(None);
        };
        let id = required_header(request, Cow::Owned(name.clone()))?;
        let allowed = |b: &u8| b.is_ascii_graphic() && !self.id_fence.contains(b);
        if id.is_empty() || !id.iter().all(allowed) {
            return Err(Rejection::MalformedSignature(Cow::Owned(name.clone())));
        }
        Ok(Some(id))
    }

    fn signs_id(&self) -> bool {
        self.template.contains(&Piece::Id)
    }

    /// The signed pieces, in template order.
    fn parts<'a>(
        &'a self,
        id: &'a [u8],
        timestamp: &'a [u8],
        body: &'a [u8],
        url: &'a str,
    ) -> Vec<&'a [u8]> {
        self.template
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.as_bytes(),
                Piece::Id => id,
                Piece::Timestamp => timestamp,
                Piece::Body => body,
                Piece::Url => url.as_bytes(),
            })
            .collect()
    }

    /// `sha256:` of the signed content with the timestamp left out: every retry of one
    /// delivery (same body, fresh timestamp) has this key, and any change to a signed byte
    /// other than the timestamp changes it. For the default template it is the body's hash.
    fn content_key(&self, request: &Request<'_>) -> String {
        let url = self.url(request.path, request.query);
        let parts = self.parts(b"", b"", request.body, &url);
        let mut content = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for (piece, bytes) in self.template.iter().zip(&parts) {
            if *piece != Piece::Timestamp {
                content.extend_from_slice(bytes);
            }
        }
        hashed_key(&content)
    }

    fn url(&self, path: &str, query: Option<&str>) -> String {
        let base = self.public_url.as_deref().unwrap_or("");
        match query {
            Some(query) => format!("{base}{path}?{query}"),
            None => format!("{base}{path}"),
        }
    }
}

fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..].find('}').ok_or("an unclosed `{`")? + open;
        pieces.push(match &rest[open + 1..close] {
            "id" => Piece::Id,
            "timestamp" => Piece::Timestamp,
            "body" => Piece::Body,
            "url" => Piece::Url,
            other => return Err(format!("unknown placeholder `{{{other}}}` (use {{id}}, {{timestamp}}, {{body}}, {{url}})")),
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    Ok(pieces)
}

/// Every placeholder must have a source, and the body must be signed.
fn check_template(
    template: &[Piece],
    hmac: &HmacSettings,
    has_public_url: bool,
    errors: &mut Vec<SettingError>,
) {
    if !template.is_empty() && !template.contains(&Piece::Body) {
        errors.push(SettingError::new(
            "hmac.signed",
            "must contain {body}: a signature must cover what porter stores",
        ));
    }
    if template.contains(&Piece::Id) && hmac.id_header.is_none() {
        errors.push(SettingError::new(
            "hmac.signed",
            "{id} needs `id_header`: the id must be read before the body is trusted",
        ));
    }
    if template.contains(&Piece::Timestamp) && hmac.timestamp_header.is_none() {
        errors.push(SettingError::new(
            "hmac.signed",
            "{timestamp} needs `timestamp_header`",
        ));
    }
    if hmac.timestamp_header.is_some() && !template.contains(&Piece::Timestamp) {
        errors.push(SettingError::new(
            "hmac.timestamp_header",
            "is not signed: add {timestamp} to `signed` where the vendor signs it, or remove \
             `timestamp_header` (a window over a timestamp anyone can replace protects nothing)",
        ));
    }
    for pair in template.windows(2) {
        let bare = |piece: &Piece| matches!(piece, Piece::Id | Piece::Timestamp);
        let placeholder = |piece: &Piece| !matches!(piece, Piece::Literal(_));
        if (bare(&pair[0]) || bare(&pair[1])) && placeholder(&pair[0]) && placeholder(&pair[1]) {
            errors.push(SettingError::new(
                "hmac.signed",
                "{id} and {timestamp} need literal text between them and other placeholders \
                 (as in `{id}.{timestamp}.{body}`): otherwise the signed text splits more than one way",
            ));
            break;
        }
    }
    if template.contains(&Piece::Url) && !has_public_url {
        errors.push(SettingError::new(
            "hmac.signed",
            "{url} needs `public_url` (the source's or server.public_url)",
        ));
    }
}

/// The bytes of the literals right before and after each `{id}`.
fn id_fence(template: &[Piece]) -> Vec<u8> {
    let mut fence = Vec::new();
    for (i, piece) in template.iter().enumerate() {
        if *piece != Piece::Id {
            continue;
        }
        for neighbour in [i.checked_sub(1), Some(i + 1)].into_iter().flatten() {
            if let Some(Piece::Literal(text)) = template.get(neighbour) {
                fence.extend_from_slice(text.as_bytes());
            }
        }
    }
    fence.sort_unstable();
    fence.dedup();
    fence
}

#[cfg(test)]
mod tests;
