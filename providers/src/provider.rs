//! What a provider is: the one trait every provider module implements, and the types that
//! cross it.
//!
//! A provider module has one struct (its configured state: secrets, options) that implements
//! [`WebhookProvider`]: where its routes are, how it is configured, how it verifies a request
//! over the raw bytes, how it turns a verified request into events and the answer its vendor
//! expects, and how it signs a request as its vendor would (for `porter send` and the tests).
//!
//! Most vendors authenticate with one shared piece (a MAC of the body in a header, a token in
//! the URL) and need nothing parsed to do it: such a provider implements [`GuardedProvider`]
//! instead, naming its [`Guard`] and how to read a checked request, and gets
//! [`WebhookProvider`] written once, here.
//!
//! **Only a verified request can be normalized**: `verify` returns the provider's `Verified`
//! value, which `normalize` consumes. Its constructors are private to this crate, so the server
//! cannot normalize a request it has not verified, and what verification already parsed (a
//! decoded form, which signature matched) is handed on instead of being parsed again.

use std::time::Duration;

use http::Method;
use jiff::Timestamp;

use serde::de::DeserializeOwned;

use crate::diagnosis::Scheme;
use crate::event::{Event, Origin};
use crate::settings::{Context, SettingError};
use crate::{Rejection, Reply, Request};

/// One route of a provider, relative to the source's base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Appended to the source's `path` (`""` for the base route itself).
    pub suffix: &'static str,
    /// The methods the route answers; others get 405.
    pub methods: &'static [Method],
}

/// The base route alone, answering POST: most providers' one endpoint.
pub const POST_ONLY: &[Endpoint] = &[Endpoint {
    suffix: "",
    methods: &[Method::POST],
}];

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

/// Headers (and, where signing changes it, a query string) that sign a request exactly as the
/// provider would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signed {
    /// The query string to send, when signing changes it.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body to send, when signing changes it (Adyen signs each item inside the body).
    pub body: Option<Vec<u8>>,
}

impl Signed {
    /// The request's own query, and these headers.
    pub fn headers(request: &ToSign<'_>, headers: Vec<(String, String)>) -> Self {
        Self {
            query: request.query.map(str::to_owned),
            headers,
            body: None,
        }
    }
}

/// An event with the key the store deduplicates it by.
///
/// The dedupe key is usually the event id. It differs where the signature scheme is ambiguous
/// (Twilio: names and values concatenated without separators): the dedupe key is then derived
/// from exactly the signed content, so that every variant of a request that verifies is
/// recognised as the same request.
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

/// What a verified request comes to: its events (never none: what is not modelled is one
/// `unknown` event) and the answer the provider expects once they are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    pub events: Vec<Normalized>,
    pub reply: Reply,
}

impl Normalization {
    /// The events with porter's own answer, `{"status":"accepted","events":N}`.
    pub fn accepted(events: Vec<Normalized>) -> Self {
        Self {
            reply: Reply::accepted(events.len()),
            events,
        }
    }
}

/// A request whose authentication passed, for providers that parse nothing while verifying.
/// Only providers make one (the constructor is private to this crate).
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a>(Request<'a>);

impl<'a> Checked<'a> {
    pub(crate) fn new(request: &Request<'a>) -> Self {
        Self(*request)
    }

    pub fn request(&self) -> &Request<'a> {
        &self.0
    }
}

/// How a sender is told to come back later when its source is over its share (`max_in_flight`,
/// `rate`): the status its retries and `Retry-After` handling are documented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// `429 Too Many Requests`: senders that document 429 as "slow down, honour `Retry-After`"
    /// (Standard Webhooks, the CloudEvents webhook spec).
    TooManyRequests,
    /// `503 Service Unavailable`: every other sender. A 5xx is the class every vendor here
    /// documents as retried (Twilio's retry policies name `5xx`, not `429`; Meta, Stripe,
    /// Mews and the rest retry any failure), so it is the safe default.
    ServiceUnavailable,
}

impl Throttle {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Throttle::TooManyRequests => 429,
            Throttle::ServiceUnavailable => 503,
        }
    }
}

/// A provider: the vendor's routes, settings, verification, normalization and signing.
pub trait WebhookProvider: Sized + std::fmt::Debug {
    /// The id in configuration and in the events' `provider` attribute.
    const ID: &'static str;
    /// The routes below a source's base path.
    const ENDPOINTS: &'static [Endpoint];
    /// The dedupe window when the source sets none (`None`: the store's). Shorter for vendors
    /// whose notifications carry no id or time.
    const DEFAULT_DEDUPE_TTL: Option<Duration> = None;
    /// How its requests are turned away over the source's share (see [`Throttle`]).
    const THROTTLE: Throttle = Throttle::ServiceUnavailable;

    /// The keys of a source's table the provider reads (a struct that refuses any other key).
    type Settings: serde::de::DeserializeOwned + std::fmt::Debug;
    /// What verification hands on to normalization.
    type Verified<'a>: std::fmt::Debug;

    /// Builds the provider from its settings, refusing bad ones by key.
    fn from_settings(
        settings: Self::Settings,
        context: &Context,
    ) -> Result<Self, Vec<SettingError>>;

    /// Answers protocol requests that carry no events (Meta's GET `hub.challenge`, Slack's and
    /// Zoom's signed URL checks), or `None` when the request is an ordinary delivery. A signed
    /// handshake is verified here, its timestamp against `now`.
    fn handshake(
        &self,
        _request: &Request<'_>,
        _now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        None
    }

    /// Checks that the request comes from the provider, over the raw bytes, in constant time,
    /// against every secret; where a timestamp is signed, its window first.
    fn verify<'a>(
        &self,
        request: &Request<'a>,
        now: Timestamp,
    ) -> Result<Self::Verified<'a>, Rejection>;

    /// Turns a verified request into events and the provider's expected answer. A body that
    /// does not parse is `Rejection::MalformedBody`.
    fn normalize(
        &self,
        verified: Self::Verified<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection>;

    /// Signs a request as the provider would, with the source's first secret.
    fn sign(&self, request: &ToSign<'_>) -> Signed;

    /// Whether the source accepts requests without any secret (`porter serve` warns).
    fn allows_unsigned(&self) -> bool {
        false
    }

    /// How `request` is signed, for a [`diagnosis`](crate::diagnosis) of a refusal: the
    /// signed content, the signatures offered, the algorithm, encoding and secrets. Read only
    /// after `verify` refused. `None` (the default): nothing is signed with a secret (URL
    /// tokens, shared secrets), or the request lacks what the scheme signs.
    fn signing_scheme<'a>(&'a self, _request: &Request<'a>) -> Option<Scheme<'a>> {
        None
    }
}

/// How a provider checks a request without parsing it: [`auth`](crate::auth)'s shared pieces
/// (a body MAC in a header, a URL token) implement it.
pub trait Guard: std::fmt::Debug {
    /// Refuses what does not come from the provider: over the raw bytes, in constant time,
    /// against every secret; where a timestamp is signed, its window first.
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection>;

    /// Signs a request as the provider would, with the first secret.
    fn sign(&self, request: &ToSign<'_>) -> Signed;

    /// How `request` is signed, for a diagnosis of a refusal (`None`: no secret signs it).
    fn scheme<'a>(&'a self, _request: &Request<'a>) -> Option<Scheme<'a>> {
        None
    }
}

/// A provider whose authentication is one [`Guard`] and whose verification parses nothing:
/// it says how it is configured, which guard it has, and how a checked request reads; its
/// [`WebhookProvider`] implementation follows from that.
pub trait GuardedProvider: Sized + std::fmt::Debug {
    /// See [`WebhookProvider::ID`].
    const ID: &'static str;
    /// See [`WebhookProvider::ENDPOINTS`].
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    /// See [`WebhookProvider::DEFAULT_DEDUPE_TTL`].
    const DEFAULT_DEDUPE_TTL: Option<Duration> = None;
    /// See [`WebhookProvider::THROTTLE`].
    const THROTTLE: Throttle = Throttle::ServiceUnavailable;

    /// The keys of a source's table the provider reads.
    type Settings: DeserializeOwned + std::fmt::Debug;
    /// What authenticates its requests.
    type Guard: Guard;

    /// Builds the provider from its settings, refusing bad ones by key.
    fn configure(settings: Self::Settings, context: &Context) -> Result<Self, Vec<SettingError>>;

    fn guard(&self) -> &Self::Guard;

    /// See [`WebhookProvider::handshake`] (named apart, so that calls are never ambiguous).
    fn handshake_answer(
        &self,
        _request: &Request<'_>,
        _now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        None
    }

    /// The events of a request the guard passed, and the provider's expected answer. A body
    /// that does not parse is `Rejection::MalformedBody`.
    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection>;
}

impl<P: GuardedProvider> WebhookProvider for P {
    const ID: &'static str = P::ID;
    const ENDPOINTS: &'static [Endpoint] = P::ENDPOINTS;
    const DEFAULT_DEDUPE_TTL: Option<Duration> = P::DEFAULT_DEDUPE_TTL;
    const THROTTLE: Throttle = P::THROTTLE;
    type Settings = P::Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(
        settings: Self::Settings,
        context: &Context,
    ) -> Result<Self, Vec<SettingError>> {
        P::configure(settings, context)
    }

    fn handshake(&self, request: &Request<'_>, now: Timestamp) -> Option<Result<Reply, Rejection>> {
        P::handshake_answer(self, request, now)
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        self.guard().check(request, now)?;
        Ok(Checked::new(request))
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        self.read(verified, origin)
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        self.guard().sign(request)
    }

    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        self.guard().scheme(request)
    }
}
