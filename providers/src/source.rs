//! A configured source, and the closed list of providers behind it.
//!
//! The list below is the only place a provider is named: one line per provider generates the
//! [`Provider`] enum (ids, routes, settings keys), the dispatch of [`Source`] to the provider's
//! [`WebhookProvider`] implementation (including reading its typed settings), and
//! [`Verified`]. Dispatch is a `match`, not a trait
//! object: the set is closed and known at compile time. Adding a provider is one module that
//! implements the trait, and one line here.

use std::time::Duration;

use jiff::Timestamp;

use crate::diagnosis::{self, Diagnosis, Scheme};
use crate::event::Origin;
use crate::provider::{Endpoint, Normalization, Signed, ToSign, WebhookProvider};
use crate::settings::{Context, SettingError};
use crate::{Rejection, Reply, Request};
use serde::{Deserialize, Deserializer};

macro_rules! providers {
    ($($(#[$doc:meta])* $variant:ident => $module:ident :: $kind:ident,)*) => {
        /// The providers this build understands.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Provider {
            $($(#[$doc])* $variant,)*
        }

        impl Provider {
            /// Every provider of this build.
            pub const ALL: &'static [Provider] = &[$(Provider::$variant,)*];

            /// The id used in configuration and in the events' `provider` attribute.
            pub fn id(self) -> &'static str {
                match self {
                    $(Provider::$variant => <crate::$module::$kind as WebhookProvider>::ID,)*
                }
            }

            /// The routes below a source's base path.
            pub fn endpoints(self) -> &'static [Endpoint] {
                match self {
                    $(Provider::$variant => <crate::$module::$kind as WebhookProvider>::ENDPOINTS,)*
                }
            }

            /// The dedupe window this provider needs when the source sets none (`None`: the
            /// store's).
            pub fn default_dedupe_ttl(self) -> Option<Duration> {
                match self {
                    $(Provider::$variant => {
                        <crate::$module::$kind as WebhookProvider>::DEFAULT_DEDUPE_TTL
                    })*
                }
            }

            /// How a request is turned away when its source is over its share.
            pub fn throttle(self) -> crate::provider::Throttle {
                match self {
                    $(Provider::$variant => <crate::$module::$kind as WebhookProvider>::THROTTLE,)*
                }
            }
        }

        /// The configured provider of a source.
        #[derive(Debug)]
        enum Configured {
            $($variant(Box<crate::$module::$kind>),)*
        }

        /// What one provider's verification handed on.
        #[derive(Debug)]
        enum VerifiedBy<'a> {
            $($variant(<crate::$module::$kind as WebhookProvider>::Verified<'a>),)*
        }

        impl Configured {
            fn new<'de, D: Deserializer<'de>>(
                provider: Provider,
                settings: D,
                context: &Context,
            ) -> Result<Self, Vec<SettingError>> {
                match provider {
                    $(Provider::$variant => {
                        type Of = crate::$module::$kind;
                        let settings = <<Of as WebhookProvider>::Settings>::deserialize(settings)
                            .map_err(|e| vec![unreadable(Of::ID, &e.to_string())])?;
                        Of::from_settings(settings, context).map(|p| Configured::$variant(Box::new(p)))
                    })*
                }
            }

            fn handshake(&self, request: &Request<'_>, now: Timestamp) -> Option<Result<Reply, Rejection>> {
                match self {
                    $(Configured::$variant(p) => p.handshake(request, now),)*
                }
            }

            fn verify<'a>(
                &self,
                request: &Request<'a>,
                now: Timestamp,
            ) -> Result<VerifiedBy<'a>, Rejection> {
                match self {
                    $(Configured::$variant(p) => p.verify(request, now).map(VerifiedBy::$variant),)*
                }
            }

            fn normalize(
                &self,
                verified: VerifiedBy<'_>,
                origin: &Origin<'_>,
            ) -> Result<Normalization, Rejection> {
                match (self, verified) {
                    $((Configured::$variant(p), VerifiedBy::$variant(v)) => p.normalize(v, origin),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a request verified by one source is normalized by that source"),
                }
            }

            fn sign(&self, request: &ToSign<'_>) -> Signed {
                match self {
                    $(Configured::$variant(p) => p.sign(request),)*
                }
            }

            fn allows_unsigned(&self) -> bool {
                match self {
                    $(Configured::$variant(p) => p.allows_unsigned(),)*
                }
            }

            fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
                match self {
                    $(Configured::$variant(p) => p.signing_scheme(request),)*
                }
            }
        }
    };
}

providers! {
    /// Meta WhatsApp Cloud API (Graph API webhooks).
    Meta => meta::Meta,
    /// Twilio Programmable Messaging (SMS, MMS, WhatsApp via Twilio).
    Twilio => twilio::Twilio,
    /// Oracle OHIP events from an HTTP relay (seed 001).
    OracleOhip => oracle_ohip::OracleOhip,
    /// Mews Connector (URL token) and POS (`X-Signature`) webhooks.
    Mews => mews::Mews,
    /// Cloudbeds webhooks, authenticated by a URL token.
    Cloudbeds => cloudbeds::Cloudbeds,
    /// The generic PMS endpoints (seed 003): a shared secret in a header.
    Pms => pms::Pms,
    /// A hotel PMS Web API's webhooks (seed 000).
    PmsWebApi => pms_web_api::PmsWebApi,
    /// RoostSync webhooks (seed 002).
    Roostsync => roostsync::Roostsync,
    /// ReserveKit booking webhooks (seed 004), authenticated by a URL token.
    Reservekit => reservekit::Reservekit,
    /// Any sender of Standard Webhooks (or Svix) signatures.
    StandardWebhooks => standard_webhooks::StandardWebhooks,
    /// Stripe, or any vendor using its `t=…,v1=…` scheme.
    Stripe => stripe::Stripe,
    /// A vendor described entirely by configuration (the `hmac` table).
    Hmac => generic_hmac::GenericHmac,
    /// Slack's Events API, interactivity and slash commands.
    Slack => slack::Slack,
    /// Zoom webhooks, with their URL validation.
    Zoom => zoom::Zoom,
    /// Telnyx API v2 webhooks, signed with Ed25519.
    Telnyx => telnyx::Telnyx,
    /// Adyen standard webhooks: an HMAC per notification item, inside the body.
    Adyen => adyen::Adyen,
    /// Apaleo webhooks: unsigned; a URL token and/or Basic authentication.
    Apaleo => apaleo::Apaleo,
    /// Hostaway unified webhooks: unsigned; Basic authentication.
    Hostaway => hostaway::Hostaway,
    /// Guesty Open API webhooks: Svix signatures, or `X-Guesty-Signature-V2`.
    Guesty => guesty::Guesty,
    /// Bird (MessageBird) notifications, signed over timestamp, URL and body digest.
    Bird => bird::Bird,
    /// Vonage Messages API: an HS256 JWT binding the body's SHA-256.
    Vonage => vonage::Vonage,
    /// SiteMinder pmsXchange Reservations PUSH: SOAP with a WS-Security UsernameToken.
    Siteminder => siteminder::Siteminder,
    /// CloudEvents webhook senders (the CNCF HTTP webhook spec).
    CloudEvents => cloudevents::CloudEvents,
}

/// A problem serde found in a source's table, named by its key where serde names one: a key
/// the provider does not read is reported as such, with the keys it does read.
fn unreadable(provider: &str, message: &str) -> SettingError {
    let message = message.trim();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    match unknown {
        Some((key, rest)) => {
            let reads = rest
                .trim_start_matches(',')
                .trim()
                .strip_prefix("expected ")
                .map(|expected| format!(" (it reads {})", expected.replace("one of ", "")))
                .unwrap_or_default();
            SettingError::new(key, format!("not used by provider `{provider}`{reads}"))
        }
        None => SettingError::new("", message),
    }
}

impl Provider {
    /// Looks a provider up by its id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.id() == id)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A request its source verified: the only way to [`Source::normalize`]. It carries what
/// verification parsed, and cannot be made outside this crate.
#[derive(Debug)]
pub struct Verified<'a>(VerifiedBy<'a>);

/// A configured source: a name, a provider and the provider's settings.
#[derive(Debug)]
pub struct Source {
    name: String,
    provider: Provider,
    configured: Configured,
}

impl Source {
    /// Builds a source from its provider's keys (any serde representation of the source's
    /// table: TOML in the server, JSON in tests), checking what the provider needs.
    pub fn new<'de, D: Deserializer<'de>>(
        name: impl Into<String>,
        provider: Provider,
        settings: D,
        context: &Context,
    ) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            name: name.into(),
            provider,
            configured: Configured::new(provider, settings, context)?,
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
        self.configured.allows_unsigned()
    }

    /// Answers protocol requests that carry no events (Meta's GET `hub.challenge`), or `None`
    /// when the request is an ordinary delivery.
    pub fn handshake(
        &self,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        self.configured.handshake(request, now)
    }

    /// Checks that the request comes from the provider, over the raw bytes.
    pub fn verify<'a>(
        &self,
        request: &Request<'a>,
        now: Timestamp,
    ) -> Result<Verified<'a>, Rejection> {
        self.configured.verify(request, now).map(Verified)
    }

    /// Turns a request this source verified into events (never none: a payload with nothing
    /// porter models becomes one `unknown` event) and the answer the provider expects once
    /// they are stored.
    pub fn normalize(
        &self,
        verified: Verified<'_>,
        received_at: Timestamp,
    ) -> Result<Normalization, Rejection> {
        let origin = Origin {
            source_name: &self.name,
            provider: self.provider.id(),
            received_at,
        };
        self.configured.normalize(verified.0, &origin)
    }

    /// Signs a request as the provider would, with the source's first secret.
    pub fn sign(&self, request: &ToSign<'_>) -> Signed {
        self.configured.sign(request)
    }

    /// After `verify` refused `request` with `rejection` (at `now`): the known mistake that
    /// would have verified, if any, for the operator only (never the caller's answer). At most
    /// [`MAX_DIAGNOSIS_MACS`](diagnosis::MAX_DIAGNOSIS_MACS) MACs; meant for signature and
    /// timestamp refusals (any other is [`Diagnosis::NoKnownVariant`], at no cost). See
    /// [`diagnosis`].
    pub fn diagnose(
        &self,
        request: &Request<'_>,
        rejection: &Rejection,
        now: Timestamp,
    ) -> Diagnosis {
        diagnosis::diagnose(rejection, now, || self.configured.signing_scheme(request))
    }
}
