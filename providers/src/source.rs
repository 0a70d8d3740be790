//! A configured source and the closed set of providers behind it.
//!
//! Dispatch is a `match` over [`Provider`]'s implementations, not a trait object: the set of
//! providers is closed and known at compile time, every arm is visible in one place, and adding
//! a provider is one new module plus one arm in each `match` here (CONTRIBUTING.md lists the
//! rest of the checklist).

use std::time::Duration;

use http::Method;
use jiff::Timestamp;

use crate::event::{Event, Origin};
use crate::{
    Rejection, Reply, Request, Secret, cloudbeds, generic_hmac, meta, mews, oracle_ohip, pms,
    pms_web_api, reservekit, roostsync, standard_webhooks, stripe, twilio,
};

/// The providers this build understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Meta WhatsApp Cloud API (Graph API webhooks).
    Meta,
    /// Twilio Programmable Messaging (SMS, MMS, WhatsApp via Twilio).
    Twilio,
    /// Oracle OHIP events from an HTTP relay (seed 001).
    OracleOhip,
    /// Mews Connector (URL token) and POS (`X-Signature`) webhooks.
    Mews,
    /// Cloudbeds webhooks, authenticated by a URL token.
    Cloudbeds,
    /// The generic PMS endpoints (seed 003): a shared secret in a header.
    Pms,
    /// A hotel PMS Web API's webhooks (seed 000).
    PmsWebApi,
    /// RoostSync webhooks (seed 002).
    Roostsync,
    /// ReserveKit booking webhooks (seed 004), authenticated by a URL token.
    Reservekit,
    /// Any sender of Standard Webhooks (or Svix) signatures.
    StandardWebhooks,
    /// Stripe, or any vendor using its `t=…,v1=…` scheme.
    Stripe,
    /// A vendor described entirely by configuration (the `hmac` table).
    Hmac,
}

impl Provider {
    /// Every provider of this build.
    pub const ALL: &'static [Provider] = &[
        Provider::Meta,
        Provider::Twilio,
        Provider::OracleOhip,
        Provider::Mews,
        Provider::Cloudbeds,
        Provider::Pms,
        Provider::PmsWebApi,
        Provider::Roostsync,
        Provider::Reservekit,
        Provider::StandardWebhooks,
        Provider::Stripe,
        Provider::Hmac,
    ];

    /// The id used in configuration and in the events' `provider` attribute.
    pub fn id(self) -> &'static str {
        match self {
            Provider::Meta => "meta",
            Provider::Twilio => "twilio",
            Provider::OracleOhip => "oracle_ohip",
            Provider::StandardWebhooks => "standard_webhooks",
            Provider::Stripe => "stripe",
            Provider::Hmac => "hmac",
            Provider::Mews => "mews",
            Provider::Pms => "pms",
            Provider::Cloudbeds => "cloudbeds",
            Provider::Roostsync => "roostsync",
            Provider::PmsWebApi => "pms_web_api",
            Provider::Reservekit => "reservekit",
        }
    }

    /// Looks a provider up by its id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.id() == id)
    }

    /// The routes below a source's base path.
    pub fn endpoints(self) -> &'static [Endpoint] {
        match self {
            Provider::Meta => meta::ENDPOINTS,
            Provider::Twilio => twilio::ENDPOINTS,
            Provider::OracleOhip => oracle_ohip::ENDPOINTS,
            Provider::StandardWebhooks => standard_webhooks::ENDPOINTS,
            Provider::Stripe => stripe::ENDPOINTS,
            Provider::Hmac => generic_hmac::ENDPOINTS,
            Provider::Mews => mews::ENDPOINTS,
            Provider::Pms => pms::ENDPOINTS,
            Provider::Cloudbeds => cloudbeds::ENDPOINTS,
            Provider::Roostsync => roostsync::ENDPOINTS,
            Provider::PmsWebApi => pms_web_api::ENDPOINTS,
            Provider::Reservekit => reservekit::ENDPOINTS,
        }
    }

    /// The dedupe window this provider needs when the source sets none (`None`: the store's).
    /// Shorter for vendors whose notifications carry no id or time, so that two identical
    /// notifications of two real changes are not taken for one.
    pub fn default_dedupe_ttl(self) -> Option<Duration> {
        match self {
            Provider::Mews => Some(mews::DEFAULT_DEDUPE_TTL),
            _ => None,
        }
    }

    /// The source settings this provider reads; any other provider-specific key is an error.
    pub fn settings_keys(self) -> &'static [&'static str] {
        match self {
            Provider::Meta => meta::SETTINGS_KEYS,
            Provider::Twilio => twilio::SETTINGS_KEYS,
            Provider::OracleOhip => oracle_ohip::SETTINGS_KEYS,
            Provider::StandardWebhooks => standard_webhooks::SETTINGS_KEYS,
            Provider::Stripe => stripe::SETTINGS_KEYS,
            Provider::Hmac => generic_hmac::SETTINGS_KEYS,
            Provider::Mews => mews::SETTINGS_KEYS,
            Provider::Pms => pms::SETTINGS_KEYS,
            Provider::Cloudbeds => cloudbeds::SETTINGS_KEYS,
            Provider::Roostsync => roostsync::SETTINGS_KEYS,
            Provider::PmsWebApi => pms_web_api::SETTINGS_KEYS,
            Provider::Reservekit => reservekit::SETTINGS_KEYS,
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One route of a provider, relative to the source's base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Appended to the source's `path` (`""` for the base route itself).
    pub suffix: &'static str,
    /// The methods the route answers; others get 405.
    pub methods: &'static [Method],
}

/// The provider-facing settings of a source, already parsed and with `${ENV}` expanded.
#[derive(Debug, Clone, Default)]
pub struct SourceSettings {
    /// Signing secrets; several = rotation, any one may match.
    pub secrets: Vec<Secret>,
    /// Meta's hub verify token.
    pub verify_token: Option<Secret>,
    /// The token of vendors that cannot sign.
    pub url_token: Option<Secret>,
    /// Timestamp window, where the scheme has a timestamp.
    pub tolerance: Option<Duration>,
    /// The public base URL providers call (Twilio signs it).
    pub public_url: Option<String>,
    /// `pms` only: accept requests without a secret (loudly warned about).
    pub insecure_allow_unsigned: bool,
    /// Generic schemes: the vendor's event type → porter's canonical type.
    pub event_types: Vec<(String, crate::EventType)>,
    /// `hmac` only: how the vendor signs.
    pub hmac: Option<HmacSettings>,
}

/// The `hmac.*` keys of a generic HMAC source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HmacSettings {
    /// The header carrying the signature.
    pub header: String,
    /// `sha1`, `sha256` (default) or `sha512`.
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    pub encoding: Option<String>,
    /// Text before the encoded MAC in the header (`sha256=`).
    pub prefix: Option<String>,
    /// What is signed, over `{id}`, `{timestamp}`, `{body}`, `{url}` (default `{body}`).
    pub signed: Option<String>,
    /// The header carrying Unix seconds, checked against `tolerance`.
    pub timestamp_header: Option<String>,
    /// The header carrying the event id.
    pub id_header: Option<String>,
    /// JSON pointer to the event id in the body (`/id`).
    pub id_pointer: Option<String>,
    /// JSON pointer to the event type in the body (`/type`).
    pub type_pointer: Option<String>,
}

/// A problem with a source's settings, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub key: &'static str,
    pub problem: String,
}

impl SettingError {
    pub(crate) fn new(key: &'static str, problem: impl Into<String>) -> Self {
        Self {
            key,
            problem: problem.into(),
        }
    }
}

/// An event with the key the store deduplicates it by.
///
/// The dedupe key is usually the event id. It differs where the provider event key comes from
/// something the provider does not sign (Twilio's `I-Twilio-Idempotency-Token` header): the
/// dedupe key is then derived from signed fields only, so that a captured request replayed
/// with a fresh unsigned header is still recognised as a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub event: Event,
    pub dedupe_key: String,
}

impl From<Event> for Normalized {
    fn from(event: Event) -> Self {
        Self {
            dedupe_key: event.id.clone(),
            event,
        }
    }
}

/// Headers (and, for Twilio's JSON variant, a query string) that sign a request exactly as the
/// provider would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signed {
    /// The query string to send, when signing changes it.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// What is needed to sign a request as the provider would.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    /// The route path the request is sent to (base path + endpoint suffix).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub now: Timestamp,
}

#[derive(Debug)]
enum Verifier {
    Meta(meta::Meta),
    Twilio(twilio::Twilio),
    OracleOhip(oracle_ohip::OracleOhip),
    StandardWebhooks(standard_webhooks::StandardWebhooks),
    Stripe(stripe::Stripe),
    /// Boxed: its template and names make it several times larger than the others.
    Hmac(Box<generic_hmac::GenericHmac>),
    Reservekit(reservekit::Reservekit),
    PmsWebApi(pms_web_api::PmsWebApi),
    Roostsync(roostsync::Roostsync),
    Mews(mews::Mews),
    Pms(pms::Pms),
    Cloudbeds(cloudbeds::Cloudbeds),
}

/// A configured source: a name, a provider and the provider's settings.
#[derive(Debug)]
pub struct Source {
    name: String,
    provider: Provider,
    verifier: Verifier,
}

impl Source {
    /// Builds a source, checking the settings its provider needs.
    pub fn new(
        name: impl Into<String>,
        provider: Provider,
        settings: &SourceSettings,
    ) -> Result<Self, Vec<SettingError>> {
        let verifier = match provider {
            Provider::Meta => Verifier::Meta(meta::Meta::from_settings(settings)?),
            Provider::Twilio => Verifier::Twilio(twilio::Twilio::from_settings(settings)?),
            Provider::OracleOhip => {
                Verifier::OracleOhip(oracle_ohip::OracleOhip::from_settings(settings)?)
            }
            Provider::StandardWebhooks => Verifier::StandardWebhooks(
                standard_webhooks::StandardWebhooks::from_settings(settings)?,
            ),
            Provider::Stripe => Verifier::Stripe(stripe::Stripe::from_settings(settings)?),
            Provider::Hmac => Verifier::Hmac(Box::new(generic_hmac::GenericHmac::from_settings(
                settings,
            )?)),
            Provider::Mews => Verifier::Mews(mews::Mews::from_settings(settings)?),
            Provider::Pms => Verifier::Pms(pms::Pms::from_settings(settings)?),
            Provider::Cloudbeds => {
                Verifier::Cloudbeds(cloudbeds::Cloudbeds::from_settings(settings)?)
            }
            Provider::Roostsync => {
                Verifier::Roostsync(roostsync::Roostsync::from_settings(settings)?)
            }
            Provider::PmsWebApi => {
                Verifier::PmsWebApi(pms_web_api::PmsWebApi::from_settings(settings)?)
            }
            Provider::Reservekit => {
                Verifier::Reservekit(reservekit::Reservekit::from_settings(settings)?)
            }
        };
        Ok(Self {
            name: name.into(),
            provider,
            verifier,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Whether the source accepts requests without any secret (`pms` with
    /// `insecure_allow_unsigned`): `porter serve` warns about it at every start.
    pub fn allows_unsigned(&self) -> bool {
        matches!(&self.verifier, Verifier::Pms(pms) if pms.allows_unsigned())
    }

    /// Answers protocol requests that carry no events (Meta's GET `hub.challenge`), or `None`
    /// when the request is an ordinary delivery.
    pub fn handshake(&self, request: &Request<'_>) -> Option<Result<Reply, Rejection>> {
        match &self.verifier {
            Verifier::Meta(meta) => meta.handshake(request),
            _ => None,
        }
    }

    /// Checks that the request comes from the provider, over the raw bytes.
    pub fn verify(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection> {
        match &self.verifier {
            Verifier::Meta(meta) => meta.verify(request),
            Verifier::Twilio(twilio) => twilio.verify(request),
            Verifier::OracleOhip(oracle) => oracle.verify(request, now),
            Verifier::StandardWebhooks(standard) => standard.verify(request, now),
            Verifier::Stripe(stripe) => stripe.verify(request, now),
            Verifier::Hmac(hmac) => hmac.verify(request, now),
            Verifier::Mews(source) => source.verify(request),
            Verifier::Pms(source) => source.verify(request),
            Verifier::Cloudbeds(source) => source.verify(request),
            Verifier::Roostsync(source) => source.verify(request),
            Verifier::PmsWebApi(source) => source.verify(request),
            Verifier::Reservekit(source) => source.verify(request),
        }
    }

    /// Turns a verified request into canonical events. Never returns an empty list: a payload
    /// with nothing porter models becomes one `unknown` event.
    pub fn normalize(
        &self,
        request: &Request<'_>,
        received_at: Timestamp,
    ) -> Result<Vec<Normalized>, Rejection> {
        let origin = Origin {
            source_name: &self.name,
            provider: self.provider.id(),
            received_at,
        };
        match &self.verifier {
            Verifier::Meta(_) => meta::normalize(request, &origin),
            Verifier::Twilio(_) => twilio::normalize(request, &origin),
            Verifier::OracleOhip(_) => oracle_ohip::normalize(request, &origin),
            Verifier::StandardWebhooks(standard) => standard.normalize(request, &origin),
            Verifier::Stripe(stripe) => stripe.normalize(request, &origin),
            Verifier::Hmac(hmac) => hmac.normalize(request, &origin),
            Verifier::Mews(_) => mews::normalize(request, &origin),
            Verifier::Pms(_) => pms::normalize(request, &origin),
            Verifier::Cloudbeds(_) => cloudbeds::normalize(request, &origin),
            Verifier::Roostsync(_) => roostsync::normalize(request, &origin),
            Verifier::PmsWebApi(_) => pms_web_api::normalize(request, &origin),
            Verifier::Reservekit(_) => reservekit::normalize(request, &origin),
        }
    }

    /// The answer the provider expects once the events are durable.
    pub fn reply(&self, request: &Request<'_>, events: &[Normalized]) -> Reply {
        match &self.verifier {
            Verifier::Twilio(_) => twilio::reply(request),
            Verifier::OracleOhip(_) => oracle_ohip::reply(request),
            // Everyone else is content with porter's own answer.
            _ => Reply::accepted(events.len()),
        }
    }

    /// Signs a request as the provider would, with the source's first secret.
    pub fn sign(&self, request: &ToSign<'_>) -> Signed {
        match &self.verifier {
            Verifier::Meta(meta) => meta.sign(request),
            Verifier::Twilio(twilio) => twilio.sign(request),
            Verifier::OracleOhip(oracle) => oracle.sign(request),
            Verifier::StandardWebhooks(standard) => standard.sign(request),
            Verifier::Stripe(stripe) => stripe.sign(request),
            Verifier::Hmac(hmac) => hmac.sign(request),
            Verifier::Mews(source) => source.sign(request),
            Verifier::Pms(source) => source.sign(request),
            Verifier::Cloudbeds(source) => source.sign(request),
            Verifier::Roostsync(source) => source.sign(request),
            Verifier::PmsWebApi(source) => source.sign(request),
            Verifier::Reservekit(source) => source.sign(request),
        }
    }
}

/// Requires at least one non-empty secret.
pub(crate) fn require_secrets(settings: &SourceSettings) -> Result<Vec<Secret>, SettingError> {
    if settings.secrets.is_empty() {
        return Err(SettingError::new(
            "secrets",
            "at least one secret is required",
        ));
    }
    if settings.secrets.iter().any(|s| s.expose().is_empty()) {
        return Err(SettingError::new("secrets", "a secret may not be empty"));
    }
    Ok(settings.secrets.clone())
}

/// Requires a non-empty `url_token` of at least 16 characters: it is the whole of the
/// authentication for vendors that cannot sign, so it must not be guessable.
pub(crate) fn require_url_token(settings: &SourceSettings) -> Result<Secret, SettingError> {
    match &settings.url_token {
        None => Err(SettingError::new(
            "url_token",
            "required: this vendor cannot sign, so its URL carries a secret token",
        )),
        Some(token) if token.expose().len() < 16 => Err(SettingError::new(
            "url_token",
            "must be at least 16 characters: it is the only thing that authenticates the vendor",
        )),
        Some(token) => Ok(token.clone()),
    }
}

/// What a vendor that cannot sign sends: the request, with `token=<url token>` in the query.
pub(crate) fn with_url_token(request: &ToSign<'_>, token: &Secret) -> Signed {
    // Everything but RFC 3986's unreserved characters is escaped.
    const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded: String = percent_encoding::utf8_percent_encode(token.expose(), ESCAPED).collect();
    let query = match request.query {
        Some(query) if !query.is_empty() => format!("{query}&token={encoded}"),
        _ => format!("token={encoded}"),
    };
    Signed {
        query: Some(query),
        headers: Vec::new(),
    }
}
