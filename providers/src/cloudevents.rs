//! Senders of CloudEvents over the CNCF "HTTP 1.1 Web Hooks for Event Delivery" spec
//! (cloudevents/spec `http-webhook.md`) and the CloudEvents HTTP binding (structured, batched
//! and binary modes): Azure Event Grid's CloudEvents schema, Knative, any CloudEvents SDK.
//!
//! - **Abuse protection**: `OPTIONS` with `WebHook-Request-Origin` is answered 200 with
//!   `WebHook-Allowed-Origin` (the origin, when `allowed_origins` lists it or `*`),
//!   `WebHook-Allowed-Rate` (`allowed_rate` requests a minute, or `*`) and `Allow: POST`; an
//!   origin not listed gets 403 and no consent headers. The asynchronous `WebHook-Request-
//!   Callback` grant is not used (the spec makes it optional).
//! - **Authentication**: `Authorization: Bearer <token>` or `?access_token=<token>`, both of
//!   which the spec requires a target to accept, compared in constant time against `tokens`.
//!   Nothing is signed: the token authenticates the whole request, headers included, which is
//!   why binary mode's `ce-*` headers may name the event.
//! - **Events** are kept as they are: structured (`application/cloudevents+json`), batched
//!   (`application/cloudevents-batch+json`, one event each) or binary (`ce-id`, `ce-source`,
//!   `ce-type`, `ce-specversion` headers, the body as `data`). The key is `source` + `id` (the
//!   CloudEvents uniqueness rule); the type stays in `providereventtype`. An event whose
//!   `type` is one of porter's canonical types and whose `data` fits it is typed; any other is
//!   `unknown` with the whole event in `raw`.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::event::{Attributes, EventBody, EventType, Origin, UnknownData, hashed_key};
use crate::json::{field, time};
use crate::provider::{Endpoint, Normalization, Signed, ToSign, WebhookProvider};
use crate::request::HeaderValue;
use crate::settings::{Context, SettingError};
use crate::signing::tokens_match;
use crate::{Rejection, Reply, Request, Secret, form, generic};

/// POST for deliveries, OPTIONS for the abuse-protection handshake.
const ENDPOINTS: &[Endpoint] = &[Endpoint {
    suffix: "",
    methods: &[http::Method::POST, http::Method::OPTIONS],
}];
/// The most events one batch may carry.
const MAX_BATCH: usize = 1000;

/// The keys a `cloudevents` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Access tokens a sender presents (`Authorization: Bearer` or `?access_token=`).
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// Origins (`WebHook-Request-Origin`) granted in the handshake; `*` grants any.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Requests a minute granted in the handshake (`WebHook-Allowed-Rate`); none: `*`.
    pub allowed_rate: Option<u32>,
}

/// A configured CloudEvents webhook source.
#[derive(Debug)]
pub struct CloudEvents {
    tokens: Vec<Secret>,
    allowed_origins: Vec<String>,
    allowed_rate: Option<u32>,
}

/// A delivery whose token matched.
#[derive(Debug)]
pub struct Verified<'a>(Request<'a>);

impl WebhookProvider for CloudEvents {
    const ID: &'static str = "cloudevents";
    const ENDPOINTS: &'static [Endpoint] = ENDPOINTS;
    // The CloudEvents webhook spec: a 429 "MUST include `Retry-After`", which the sender "MUST honour".
    const THROTTLE: crate::Throttle = crate::Throttle::TooManyRequests;
    type Settings = Settings;
    type Verified<'a> = Verified<'a>;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let mut problems = Vec::new();
        if settings.tokens.is_empty() {
            problems.push(SettingError::new(
                "tokens",
                "a cloudevents source needs at least one access token (the spec's Bearer or \
                 access_token authentication)",
            ));
        }
        for (i, token) in settings.tokens.iter().enumerate() {
            if token.expose().chars().count() < 16 {
                problems.push(SettingError::new(
                    format!("tokens[{i}]"),
                    "must be at least 16 characters",
                ));
            }
        }
        if settings.allowed_rate == Some(0) {
            problems.push(SettingError::new(
                "allowed_rate",
                "must be at least 1 request a minute (leave it out to grant any rate)",
            ));
        }
        if problems.is_empty() {
            Ok(Self {
                tokens: settings.tokens,
                allowed_origins: settings.allowed_origins,
                allowed_rate: settings.allowed_rate,
            })
        } else {
            Err(problems)
        }
    }

    /// The `OPTIONS` abuse-protection handshake.
    fn handshake(
        &self,
        request: &Request<'_>,
        _now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        if request.method != http::Method::OPTIONS {
            return None;
        }
        let origin = match request.single_header("webhook-request-origin") {
            HeaderValue::One(origin) => origin,
            HeaderValue::Missing | HeaderValue::Repeated => {
                return Some(Err(Rejection::MalformedHandshake("WebHook-Request-Origin")));
            }
        };
        let Ok(origin) = std::str::from_utf8(origin) else {
            return Some(Err(Rejection::MalformedHandshake("WebHook-Request-Origin")));
        };
        let allowed = self
            .allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin));
        if !allowed {
            return Some(Err(Rejection::OriginNotAllowed));
        }
        let rate = self
            .allowed_rate
            .map_or_else(|| "*".to_owned(), |rate| rate.to_string());
        Some(Ok(Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: String::new(),
            headers: vec![
                ("WebHook-Allowed-Origin".to_owned(), origin.to_owned()),
                ("WebHook-Allowed-Rate".to_owned(), rate),
                ("Allow".to_owned(), "POST".to_owned()),
            ],
        }))
    }

    fn verify<'a>(
        &self,
        request: &Request<'a>,
        _now: Timestamp,
    ) -> Result<Verified<'a>, Rejection> {
        let pairs = form::decode(request.query.unwrap_or("").as_bytes());
        let mut in_query = pairs
            .iter()
            .filter(|(name, _)| name == b"access_token")
            .map(|(_, value)| value.as_slice());
        let given: Vec<u8> = match (request.single_header("authorization"), in_query.next()) {
            (HeaderValue::Repeated, _) => {
                return Err(Rejection::RepeatedSignature("authorization".into()));
            }
            (HeaderValue::One(value), _) => value
                .strip_prefix(b"Bearer ")
                .or_else(|| value.strip_prefix(b"bearer "))
                .ok_or(Rejection::MalformedSignature("authorization".into()))?
                .to_vec(),
            (HeaderValue::Missing, Some(token)) => {
                if in_query.next().is_some() {
                    return Err(Rejection::RepeatedSignature("access_token".into()));
                }
                token.to_vec()
            }
            (HeaderValue::Missing, None) => {
                return Err(Rejection::MissingSignature("authorization".into()));
            }
        };
        let matched = self.tokens.iter().fold(false, |found, token| {
            found | tokens_match(&given, token.expose().as_bytes())
        });
        if matched {
            Ok(Verified(*request))
        } else {
            Err(Rejection::BadSharedSecret)
        }
    }

    fn normalize(
        &self,
        verified: Verified<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let request = verified.0;
        let content_type = match request.single_header("content-type") {
            HeaderValue::One(value) => String::from_utf8_lossy(value).to_ascii_lowercase(),
            _ => String::new(),
        };
        let cloud_events: Vec<Value> =
            if content_type.starts_with("application/cloudevents-batch+json") {
                let batch: Vec<Value> = crate::json::parse(request.body)?;
                if batch.len() > MAX_BATCH {
                    return Err(Rejection::malformed(
                        "CloudEvents batch",
                        format!("more than {MAX_BATCH} events"),
                    ));
                }
                batch
            } else if content_type.starts_with("application/cloudevents+json")
                || request.header_str("ce-id").is_none()
            {
                vec![crate::json::parse(request.body)?]
            } else {
                vec![binary(&request, &content_type)]
            };
        let events = cloud_events
            .iter()
            .map(|cloud_event| {
                let source = field(cloud_event, &["source"]).unwrap_or_default();
                let id = field(cloud_event, &["id"]);
                let vendor_type = field(cloud_event, &["type"]);
                let attributes = Attributes {
                    key: match &id {
                        Some(id) => format!("{source} {id}"),
                        None => hashed_key(cloud_event.to_string().as_bytes()),
                    },
                    subject: field(cloud_event, &["subject"]),
                    time: cloud_event.get("time").and_then(time),
                    provider_event_type: vendor_type.clone(),
                    property_id: None,
                    delivery_id: None,
                };
                let body = typed(vendor_type.as_deref(), cloud_event);
                origin.event(attributes, body).into()
            })
            .collect();
        Ok(Normalization::accepted(events))
    }

    /// A structured delivery's token, as a sender presents it.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        Signed::headers(
            request,
            vec![(
                "Authorization".to_owned(),
                format!("Bearer {}", self.tokens[0].expose()),
            )],
        )
    }
}

/// A binary-mode event: its attributes from the `ce-*` headers, the body as `data` (JSON
/// when it parses as JSON, else text).
fn binary(request: &Request<'_>, content_type: &str) -> Value {
    let mut attributes = Map::new();
    for (name, value) in request.headers {
        let name = name.as_str();
        if let (Some(attribute), Ok(value)) = (name.strip_prefix("ce-"), value.to_str())
            && !attribute.is_empty()
        {
            attributes.insert(attribute.to_owned(), Value::String(value.to_owned()));
        }
    }
    if !content_type.is_empty() {
        attributes.insert(
            "datacontenttype".to_owned(),
            Value::String(content_type.to_owned()),
        );
    }
    let data = serde_json::from_slice::<Value>(request.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(request.body).into_owned()));
    attributes.insert("data".to_owned(), data);
    Value::Object(attributes)
}

/// Typed when the event's type is a canonical type and its data fits; else `unknown`.
fn typed(vendor_type: Option<&str>, cloud_event: &Value) -> EventBody {
    match vendor_type.and_then(EventType::from_name) {
        Some(event_type)
            if event_type != EventType::Unknown && event_type != EventType::ErasureRequested =>
        {
            let table = [(event_type.as_str().to_owned(), event_type)];
            generic::body_for(
                &table,
                vendor_type,
                cloud_event.get("data").unwrap_or(&Value::Null),
                cloud_event.clone(),
            )
        }
        _ => EventBody::Unknown(UnknownData {
            reason: match vendor_type {
                Some(name) => format!("CloudEvent type `{name}` is not one of porter's types"),
                None => "a CloudEvent without `type`".to_owned(),
            },
            raw: if cloud_event.is_object() {
                cloud_event.clone()
            } else {
                json!({ "event": cloud_event })
            },
        }),
    }
}

#[cfg(test)]
mod tests;
