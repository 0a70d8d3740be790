//! # porter-providers
//!
//! Everything porter knows about webhook providers, with no I/O: a raw request and a clock
//! value go in, canonical events or a [`Rejection`] come out. The server crate owns sockets,
//! stores and time; this crate owns signatures and payload shapes. Keeping it pure means every
//! provider can be tested byte for byte, fuzzed, and reasoned about without a runtime, and
//! Cargo itself enforces it: there is no tokio, redis or axum in this crate's `Cargo.toml`.
//!
//! # Layout
//!
//! - [`provider`]: the [`WebhookProvider`] trait every provider implements, and what crosses
//!   it (routes, a verified request, normalized events and the reply, signed headers).
//! - [`source`]: the closed list of providers (one line each), which generates the
//!   [`Provider`] enum and the dispatch of a configured [`Source`].
//! - [`settings`]: a source's settings and the problems a provider finds in them.
//! - [`event`]: the canonical event (CloudEvents 1.0) and its typed `data`.
//! - [`request`]: the borrowed view of an inbound HTTP request that providers read.
//! - [`reply`]: the answer a provider expects on success.
//! - [`rejection`]: why a request was refused, one variant per reason.
//! - [`secret`]: a secret string whose `Debug` never shows it.
//! - [`signing`]: HMAC and constant-time helpers shared by the verifiers.
//! - [`auth`]: the authentication pieces providers share (a body MAC in a header, a URL
//!   token, timestamp windows, shared secrets).
//! - [`json`]: exact, lenient reading of vendor JSON (ids, money, times, casing).
//! - [`diagnosis`]: for the operator, the known mistake behind a refused signature (a URL, a
//!   secret's or signature's encoding, an algorithm) or a stale timestamp's skew.
//! - one module per provider ([`meta`], [`twilio`], [`oracle_ohip`], …), each with the same
//!   shape: a struct implementing [`WebhookProvider`], private wire structs, its signer.
//!
//! # Pipeline contract
//!
//! The server calls, in this order: [`Source::handshake`] (protocol requests such as Meta's
//! `hub.challenge`, answered without events), then [`Source::verify`] over the raw bytes, then
//! [`Source::normalize`] with the [`Verified`] request that `verify` returned (nothing else
//! can be normalized), then stores the events, then answers with the normalization's reply.
//! When `verify` refuses, the server may ask [`Source::diagnose`] which known mistake the
//! request makes, for its operator; that never changes the answer.

pub mod adyen;
pub mod apaleo;
pub mod auth;
pub mod bird;
pub mod cloudbeds;
pub mod cloudevents;
pub mod diagnosis;
pub mod event;
pub mod generic;
pub mod generic_hmac;
pub mod guesty;
pub mod hostaway;
pub mod json;
pub mod meta;
pub mod mews;
pub mod oracle_ohip;
pub mod oracle_ohip_stream;
pub mod pms;
pub mod pms_web_api;
pub mod provider;
pub mod rejection;
pub mod reply;
pub mod request;
pub mod reservekit;
pub mod roostsync;
pub mod secret;
pub mod settings;
pub mod signing;
pub mod siteminder;
pub mod slack;
pub mod source;
pub mod standard_webhooks;
pub mod stripe;
pub mod telnyx;
pub mod twilio;
pub mod vonage;
pub mod zoom;

mod form;
#[cfg(test)]
mod testing;

pub use diagnosis::{Diagnosis, MAX_DIAGNOSIS_MACS};
pub use event::{Event, EventBody, EventType};
pub use provider::{
    Endpoint, Normalization, Normalized, Signed, Throttle, ToSign, WebhookProvider,
};
pub use rejection::Rejection;
pub use reply::Reply;
pub use request::Request;
pub use secret::Secret;
pub use settings::{Context, HmacSettings, SettingError};
pub use source::{Provider, Source, Verified};
