//! The configurable HMAC scheme (`provider = "hmac"`): for vendors porter has no module for,
//! onboarded with configuration rather than code.
//!
//! The `hmac` table says where the signature is (`header`, `prefix`, `encoding` hex or base64,
//! `algorithm` sha1/sha256/sha512), what is signed (`signed`, a template over `{id}`,
//! `{timestamp}`, `{body}` and `{url}`; default `{body}`), where the event id is (`id_header`,
//! or `id_pointer` into the JSON body) and the type (`type_pointer`). With a
//! `timestamp_header`, the timestamp must be within `tolerance` either way. Examples:
//!
//! - GitHub: `header = "X-Hub-Signature-256"`, `prefix = "sha256="`,
//!   `id_header = "X-GitHub-Delivery"`.
//! - Shopify: `header = "X-Shopify-Hmac-Sha256"`, `encoding = "base64"`,
//!   `id_header = "X-Shopify-Webhook-Id"`.
//!
//! The template must contain `{body}`: a signature that does not cover the body
//! authenticates nothing porter stores.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{
    DEFAULT_TOLERANCE, Encoding, MacHeader, check_window, required_header, timestamp_header,
};
use crate::event::{Attributes, EventType, Origin, hashed_key};
use crate::json::text_of;
use crate::signing::Algorithm;
use crate::source::{
    Endpoint, HmacSettings, Normalized, SettingError, Signed, SourceSettings, ToSign,
};
use crate::{Rejection, Request, Secret, generic};

/// One route.
pub const ENDPOINTS: &[Endpoint] = &[Endpoint {
    suffix: "",
    methods: &[http::Method::POST],
}];

/// The settings an `hmac` source reads.
pub const SETTINGS_KEYS: &[&str] = &["secrets", "hmac", "tolerance", "event_types", "public_url"];

/// One piece of the signed text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Id,
    Timestamp,
    Body,
    Url,
}

/// A configured generic HMAC source.
#[derive(Debug)]
pub struct GenericHmac {
    secrets: Vec<Secret>,
    mac: MacHeader,
    template: Vec<Piece>,
    timestamp_header: Option<String>,
    id_header: Option<String>,
    id_pointer: Option<String>,
    type_pointer: Option<String>,
    public_url: Option<String>,
    tolerance: Duration,
    event_types: Vec<(String, EventType)>,
}

impl GenericHmac {
    pub(crate) fn from_settings(settings: &SourceSettings) -> Result<Self, Vec<SettingError>> {
        let mut errors = Vec::new();
        let secrets = crate::source::require_secrets(settings)
            .map_err(|e| errors.push(e))
            .ok();
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
        check_template(&template, hmac, settings, &mut errors);
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
            template,
            timestamp_header: header_name(&hmac.timestamp_header),
            id_header: header_name(&hmac.id_header),
            id_pointer: hmac.id_pointer.clone(),
            type_pointer: hmac.type_pointer.clone(),
            public_url: settings
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            event_types: settings.event_types.clone(),
        })
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: jiff::Timestamp,
    ) -> Result<(), Rejection> {
        let timestamp = match &self.timestamp_header {
            Some(name) => Some(timestamp_header(request, Cow::Owned(name.clone()))?),
            None => None,
        };
        let id = match &self.id_header {
            Some(name) if self.template.contains(&Piece::Id) => {
                Some(required_header(request, Cow::Owned(name.clone()))?)
            }
            _ => None,
        };
        let url = self.url(request.path, request.query);
        let parts: Vec<&[u8]> = self
            .template
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.as_bytes(),
                Piece::Id => id.unwrap_or_default(),
                Piece::Timestamp => timestamp.map(|(_, text)| text).unwrap_or_default(),
                Piece::Body => request.body,
                Piece::Url => url.as_bytes(),
            })
            .collect();
        self.mac.verify(request, &self.secrets, &parts)?;
        match timestamp {
            Some((seconds, _)) => check_window(seconds, now, self.tolerance),
            None => Ok(()),
        }
    }

    pub(crate) fn sign(&self, request: &ToSign<'_>) -> Signed {
        let id = format!("evt_{}", &hex::encode(Sha256::digest(request.body))[..24]);
        let timestamp = request.now.as_second().to_string();
        let url = self.url(request.path, request.query);
        let parts: Vec<&[u8]> = self
            .template
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.as_bytes(),
                Piece::Id => id.as_bytes(),
                Piece::Timestamp => timestamp.as_bytes(),
                Piece::Body => request.body,
                Piece::Url => url.as_bytes(),
            })
            .collect();
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
        }
    }

    pub(crate) fn normalize(
        &self,
        request: &Request<'_>,
        origin: &Origin<'_>,
    ) -> Result<Vec<Normalized>, Rejection> {
        let payload: Value =
            serde_json::from_slice(request.body).map_err(|e| Rejection::malformed("JSON", e))?;
        let pointed = |pointer: &Option<String>| {
            pointer
                .as_ref()
                .and_then(|p| payload.pointer(p))
                .and_then(text_of)
        };
        let key = match &self.id_header {
            Some(name) => request
                .header_str(name)
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            None => pointed(&self.id_pointer),
        };
        let vendor_type = pointed(&self.type_pointer);
        let time = self
            .timestamp_header
            .as_ref()
            .and_then(|name| request.header_str(name))
            .and_then(|text| jiff::Timestamp::from_second(text.parse().ok()?).ok());
        let attributes = Attributes {
            // Without an id, the exact bytes identify the delivery.
            key: key.unwrap_or_else(|| hashed_key(request.body)),
            subject: None,
            time,
            provider_event_type: vendor_type.clone(),
            property_id: None,
        };
        let body = generic::body_for(&self.event_types, vendor_type.as_deref(), payload);
        Ok(vec![origin.event(attributes, body).into()])
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
    settings: &SourceSettings,
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
    if template.contains(&Piece::Url) && settings.public_url.is_none() {
        errors.push(SettingError::new(
            "hmac.signed",
            "{url} needs `public_url` (the source's or server.public_url)",
        ));
    }
}

#[cfg(test)]
mod tests;
