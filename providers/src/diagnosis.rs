//! Diagnosis of a refused request: which known mistake it makes, for the operator.
//!
//! A refusal with `invalid_signature` gives an operator nothing to act on, yet almost every
//! such refusal of a real vendor's request is one of a handful of configuration mistakes:
//! Twilio signing another URL than the one porter rebuilds (a TLS-terminating proxy, a host
//! porter was not told about, a path prefix, a port, a trailing slash), a secret pasted in
//! another form than the one the vendor signs with (hex or base64 of the key, with or without
//! `whsec_`), a signature sent in another encoding, or made with another algorithm, than the
//! source expects. porter holds the secrets, so it can try these mistakes itself and name the
//! one that verifies; for `stale_timestamp` it gives the clock skew. The answer is for the
//! operator (console, admin API, log line), never for the caller, and never changes the
//! verdict: [`Source::diagnose`](crate::Source::diagnose) runs after `verify` refused, with
//! the same inputs, and `verify` knows nothing of it.
//!
//! Each provider describes how it signs a request as a [`Scheme`] (the signed content, the
//! signatures offered as received, the expected algorithm and encoding, the secrets and how a
//! secret becomes a key), through
//! [`WebhookProvider::signing_scheme`](crate::WebhookProvider::signing_scheme). The search is
//! the same for every provider, most common mistake first: the URL variants where a URL is
//! signed, then the secret's forms, then the signature's encoding, then the other algorithms.
//! It stops at the first variant that verifies, and reports one mistake: a request that makes
//! two at once is `no_known_variant`.
//!
//! **Bounded work.** A diagnosis computes at most [`MAX_DIAGNOSIS_MACS`] MACs in all, whatever
//! the number of secrets, signatures offered or headers. Each MAC is compared with every
//! signature offered (never one MAC per signature, and at most [`MAX_CANDIDATES`] signatures
//! are read), and a step for which no offered signature decodes to a MAC of the right length
//! computes none. A MAC is
//! linear in the signed content, so a diagnosis costs at most a few dozen verifications; the
//! URL variants are a fixed handful. Comparisons are constant time, as in verification.
//!
//! **Nothing secret comes out.** A [`Diagnosis`] holds fixed sentences, names of encodings and
//! algorithms, a number of seconds, or a URL without its user info and query (a query may
//! carry a URL token); never a secret or any part of one, a MAC, or the body.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use http::HeaderMap;
use jiff::Timestamp;
use serde::Serialize;

use crate::signing::{Algorithm, Encoding, MAX_CANDIDATES, decode_hex, hmac, matches_any};
use crate::{Rejection, Request, Secret};

mod urls;

/// The most MACs one diagnosis computes, in all.
pub const MAX_DIAGNOSIS_MACS: usize = 48;

/// The known mistake a refused request makes, for the operator only.
///
/// Serialized as `{"code": "<code>", …fields}`; [`Display`](fmt::Display) is a sentence
/// saying what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Diagnosis {
    /// The signature verifies for another URL than the one porter rebuilds from `public_url`
    /// and the request's path (Twilio, and `hmac` sources that sign `{url}`). `url` is
    /// `scheme://host[:port]/path`, without user info or query string.
    UrlMismatch { url: String },
    /// The secret verifies once transformed (decoded, `whsec_` added or removed); `detail`
    /// says which transformation, never the secret.
    SecretEncoding { detail: String },
    /// The signature is written in `found` where the scheme expects `expected`, and matches
    /// once decoded that way.
    SignatureEncoding {
        found: &'static str,
        expected: &'static str,
    },
    /// The signature is an HMAC with `found` where the scheme expects `expected`, over the
    /// same content.
    Algorithm {
        found: &'static str,
        expected: &'static str,
    },
    /// For a stale timestamp: the request's timestamp minus porter's clock, in seconds
    /// (positive: ahead, the sender's clock runs fast; negative: behind, a late or replayed
    /// request, or a slow clock).
    ClockSkew { seconds: i64 },
    /// Nothing tried verified, or there was nothing to try.
    NoKnownVariant,
}

impl Diagnosis {
    /// A short stable label, as in the serialized form.
    pub fn code(&self) -> &'static str {
        match self {
            Diagnosis::UrlMismatch { .. } => "url_mismatch",
            Diagnosis::SecretEncoding { .. } => "secret_encoding",
            Diagnosis::SignatureEncoding { .. } => "signature_encoding",
            Diagnosis::Algorithm { .. } => "algorithm",
            Diagnosis::ClockSkew { .. } => "clock_skew",
            Diagnosis::NoKnownVariant => "no_known_variant",
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::UrlMismatch { url } => write!(
                f,
                "the provider signed the URL {url} (query string not shown), not the one porter \
                 rebuilds from `public_url` and the request path: set `public_url` to the base \
                 the provider calls, or configure the provider with porter's URL (behind a \
                 proxy, check the scheme, host, port and path prefix it forwards)"
            ),
            Diagnosis::SecretEncoding { detail } => f.write_str(detail),
            Diagnosis::SignatureEncoding { found, expected } => write!(
                f,
                "the signature is written in {found} where {expected} is expected, and matches \
                 once decoded as {found}: the sender encodes it differently than the source is \
                 configured (for an `hmac` source, set `hmac.encoding = \"{found}\"`)"
            ),
            Diagnosis::Algorithm { found, expected } => write!(
                f,
                "the signature is an HMAC with {found} where {expected} is expected, over the \
                 same content: the sender signs with another algorithm than the source is \
                 configured (for an `hmac` source, set `hmac.algorithm = \"{found}\"`)"
            ),
            Diagnosis::ClockSkew { seconds } if *seconds > 0 => write!(
                f,
                "the request's timestamp is {seconds} s ahead of porter's clock: the sender's \
                 clock runs fast, or porter's slow; check both hosts' time synchronisation"
            ),
            Diagnosis::ClockSkew { seconds } => write!(
                f,
                "the request's timestamp is {} s behind porter's clock: a late or replayed \
                 delivery, or the sender's clock runs slow (or porter's fast)",
                seconds.unsigned_abs()
            ),
            Diagnosis::NoKnownVariant => f.write_str(
                "no known mistake explains the refusal: check that the secret is the one the \
                 provider signs with, and that nothing on the way changes the request",
            ),
        }
    }
}

/// How a secret's text becomes the MAC key, as the vendor documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFormat {
    /// The text's bytes (Meta, Twilio, the PMS vendors, `hmac`).
    Text,
    /// The text's bytes, `whsec_` prefix included (Stripe, the Oracle relay).
    WhsecText,
    /// `whsec_` + base64 of the key (Standard Webhooks).
    WhsecBase64,
}

impl SecretFormat {
    /// The key `verify` uses for a secret.
    fn key(self, text: &str) -> Option<Cow<'_, [u8]>> {
        match self {
            SecretFormat::Text | SecretFormat::WhsecText => Some(Cow::Borrowed(text.as_bytes())),
            SecretFormat::WhsecBase64 => crate::secret::decode_whsec(text).map(Cow::Owned),
        }
    }
}

/// One piece of the signed content.
#[derive(Debug)]
pub enum Part<'a> {
    Bytes(Cow<'a, [u8]>),
    /// The request's public URL (with its query), as the scheme's [`SignedUrl`] builds it.
    Url,
}

impl<'a> From<&'a [u8]> for Part<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Part::Bytes(Cow::Borrowed(bytes))
    }
}

impl From<Vec<u8>> for Part<'_> {
    fn from(bytes: Vec<u8>) -> Self {
        Part::Bytes(Cow::Owned(bytes))
    }
}

/// A signed URL: the public bases `verify` tried, and what the request says about the URL it
/// was sent to (its path and query, its `Host` and `X-Forwarded-*` headers).
#[derive(Debug, Clone, Copy)]
pub struct SignedUrl<'a> {
    /// Without a trailing slash; the first is the configured one.
    bases: &'a [String],
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
}

impl<'a> SignedUrl<'a> {
    pub(crate) fn new(bases: &'a [String], request: &Request<'a>) -> Self {
        Self {
            bases,
            path: request.path,
            query: request.query,
            headers: request.headers,
        }
    }

    /// `url` followed by the request's query, exactly as received: the query is signed.
    fn with_query(&self, url: &str) -> Vec<u8> {
        match self.query {
            Some(query) => format!("{url}?{query}").into_bytes(),
            None => url.as_bytes().to_vec(),
        }
    }

    /// The URL `verify` signs first: the configured base, the path and the query.
    fn configured(&self) -> Vec<u8> {
        let base = self.bases.first().map_or("", String::as_str);
        self.with_query(&format!("{base}{}", self.path))
    }
}

/// How a provider signs one request, as a diagnosis needs it: the signed content, the
/// signatures offered (as received, not decoded), the algorithm and encoding expected, and the
/// secrets with the way a secret becomes a key.
pub struct Scheme<'a> {
    secrets: &'a [Secret],
    format: SecretFormat,
    algorithm: Algorithm,
    encoding: Encoding,
    content: Vec<Part<'a>>,
    /// At most [`MAX_CANDIDATES`], after any prefix.
    offered: Vec<&'a [u8]>,
    url: Option<SignedUrl<'a>>,
    /// The signed timestamp in Unix seconds, where one is signed.
    timestamp: Option<i64>,
}

/// Counts only: the content is the body, and the signatures are the caller's.
impl fmt::Debug for Scheme<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheme")
            .field("secrets", &self.secrets.len())
            .field("format", &self.format)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("parts", &self.content.len())
            .field("offered", &self.offered.len())
            .field("signs_url", &self.url.is_some())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl<'a> Scheme<'a> {
    /// `content` signed with one of `secrets` (keys as `format` says) by `algorithm`, written
    /// in `encoding`; no signature offered yet.
    pub(crate) fn new(
        secrets: &'a [Secret],
        format: SecretFormat,
        algorithm: Algorithm,
        encoding: Encoding,
        content: Vec<Part<'a>>,
    ) -> Self {
        Self {
            secrets,
            format,
            algorithm,
            encoding,
            content,
            offered: Vec::new(),
            url: None,
            timestamp: None,
        }
    }

    /// The signatures the request offers, undecoded (only the first [`MAX_CANDIDATES`] are
    /// read).
    pub(crate) fn offering(mut self, offered: impl IntoIterator<Item = &'a [u8]>) -> Self {
        self.offered = offered.into_iter().take(MAX_CANDIDATES).collect();
        self
    }

    /// Where the content has [`Part::Url`], the URL it stands for.
    pub(crate) fn signing_url(mut self, url: SignedUrl<'a>) -> Self {
        self.url = Some(url);
        self
    }

    /// The signed timestamp, for the skew of a stale request.
    pub(crate) fn timestamp(mut self, seconds: Option<i64>) -> Self {
        self.timestamp = seconds;
        self
    }

    /// The signed content, with `url` for [`Part::Url`].
    fn parts<'s>(&'s self, url: &'s [u8]) -> Vec<&'s [u8]> {
        self.content
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.as_ref(),
                Part::Url => url,
            })
            .collect()
    }
}

/// The known mistake behind `rejection`, trying at most [`MAX_DIAGNOSIS_MACS`] variants of
/// the provider's `scheme` (read only when there is something to try).
pub(crate) fn diagnose<'a>(
    rejection: &Rejection,
    now: Timestamp,
    scheme: impl FnOnce() -> Option<Scheme<'a>>,
) -> Diagnosis {
    let found = match rejection {
        // A clock skew only for a request whose signature verifies at the timestamp it sent:
        // a forgery with any `t=` must never have the operator widen the window for it.
        // Otherwise, the known mistakes, as for a signature that does not match.
        Rejection::StaleTimestamp => scheme().and_then(|scheme| {
            let seconds = scheme.timestamp?;
            let skew = Diagnosis::ClockSkew {
                seconds: seconds.saturating_sub(now.as_second()),
            };
            Search::new(&scheme).stale(skew)
        }),
        // A signature in another encoding or of another length is malformed to `verify`:
        // those are two of the mistakes tried.
        Rejection::SignatureMismatch | Rejection::MalformedSignature(_) => {
            scheme().and_then(|scheme| Search::new(&scheme).run())
        }
        _ => None,
    };
    found.unwrap_or(Diagnosis::NoKnownVariant)
}

/// Why a search stops before its end.
enum Stop {
    Found(Diagnosis),
    Exhausted,
}

/// One step of the search: `Ok` to go on.
type Step = Result<(), Stop>;

/// The MACs a search may still compute.
struct Budget(usize);

impl Budget {
    /// One MAC of `content` under `key`, compared with every tag in constant time; `found`
    /// names the mistake when one matches. Nothing is computed when there is no tag.
    fn attempt(
        &mut self,
        key: &[u8],
        algorithm: Algorithm,
        content: &[&[u8]],
        tags: &[Vec<u8>],
        found: impl FnOnce() -> Diagnosis,
    ) -> Step {
        if tags.is_empty() {
            return Ok(());
        }
        self.0 = self.0.checked_sub(1).ok_or(Stop::Exhausted)?;
        if matches_any(&hmac(algorithm, key, content), tags) {
            Err(Stop::Found(found()))
        } else {
            Ok(())
        }
    }
}

/// The variants of one scheme, tried in order within the budget.
struct Search<'s, 'a> {
    scheme: &'s Scheme<'a>,
    /// The configured secrets with their keys, in order.
    keys: Vec<(&'a Secret, Cow<'a, [u8]>)>,
    /// The URL as `verify` signs it, where a URL is signed.
    url: Vec<u8>,
    budget: Budget,
}

impl<'s, 'a> Search<'s, 'a> {
    fn new(scheme: &'s Scheme<'a>) -> Self {
        Self {
            scheme,
            keys: scheme
                .secrets
                .iter()
                .filter_map(|secret| Some((secret, scheme.format.key(secret.expose())?)))
                .collect(),
            url: scheme
                .url
                .as_ref()
                .map(SignedUrl::configured)
                .unwrap_or_default(),
            budget: Budget(MAX_DIAGNOSIS_MACS),
        }
    }

    fn run(mut self) -> Option<Diagnosis> {
        match self.steps() {
            Err(Stop::Found(diagnosis)) => Some(diagnosis),
            Ok(()) | Err(Stop::Exhausted) => None,
        }
    }

    /// For a stale request: `skew` when the signature verifies as configured (one MAC per
    /// secret), otherwise whichever known mistake does.
    fn stale(mut self, skew: Diagnosis) -> Option<Diagnosis> {
        let mut skew = Some(skew);
        let as_configured = self.as_configured(&mut skew);
        match as_configured.and_then(|()| self.steps()) {
            Err(Stop::Found(diagnosis)) => Some(diagnosis),
            Ok(()) | Err(Stop::Exhausted) => None,
        }
    }

    /// The signature as `verify` checks it, with each configured secret: `found` when one
    /// matches.
    fn as_configured(&mut self, found: &mut Option<Diagnosis>) -> Step {
        let scheme = self.scheme;
        let tags = self.tags(scheme.encoding, scheme.algorithm);
        let parts = scheme.parts(&self.url);
        for (_, key) in &self.keys {
            self.budget
                .attempt(key, scheme.algorithm, &parts, &tags, || {
                    found.take().unwrap_or(Diagnosis::NoKnownVariant)
                })?;
        }
        Ok(())
    }

    /// Most common mistake first.
    fn steps(&mut self) -> Step {
        self.urls()?;
        self.secret_forms()?;
        self.signature_encoding()?;
        self.algorithms()
    }

    /// The offered signatures that decode as `encoding` to a MAC of `algorithm`'s length.
    fn tags(&self, encoding: Encoding, algorithm: Algorithm) -> Vec<Vec<u8>> {
        self.scheme
            .offered
            .iter()
            .filter_map(|text| decode(encoding, text, algorithm.output_len()))
            .collect()
    }

    /// The URLs the sender may have signed instead, with each configured secret.
    fn urls(&mut self) -> Step {
        let scheme = self.scheme;
        let Some(url) = &scheme.url else {
            return Ok(());
        };
        let tags = self.tags(scheme.encoding, scheme.algorithm);
        if tags.is_empty() {
            return Ok(());
        }
        for candidate in urls::candidates(url) {
            let signed = url.with_query(&candidate.signed);
            let parts = scheme.parts(&signed);
            for (_, key) in &self.keys {
                self.budget
                    .attempt(key, scheme.algorithm, &parts, &tags, || {
                        Diagnosis::UrlMismatch {
                            url: candidate.shown.clone(),
                        }
                    })?;
            }
        }
        Ok(())
    }

    /// Each secret transformed as operators and vendors get it wrong.
    fn secret_forms(&mut self) -> Step {
        let scheme = self.scheme;
        let tags = self.tags(scheme.encoding, scheme.algorithm);
        if tags.is_empty() {
            return Ok(());
        }
        let parts = scheme.parts(&self.url);
        for (form, key) in self.secret_variants() {
            self.budget
                .attempt(&key, scheme.algorithm, &parts, &tags, || {
                    Diagnosis::SecretEncoding {
                        detail: form.detail(scheme.format).to_owned(),
                    }
                })?;
        }
        Ok(())
    }

    /// The signature decoded in the other encoding.
    fn signature_encoding(&mut self) -> Step {
        let scheme = self.scheme;
        let other = match scheme.encoding {
            Encoding::Hex => Encoding::Base64,
            Encoding::Base64 => Encoding::Hex,
        };
        let tags = self.tags(other, scheme.algorithm);
        let parts = scheme.parts(&self.url);
        for (_, key) in &self.keys {
            self.budget
                .attempt(key, scheme.algorithm, &parts, &tags, || {
                    Diagnosis::SignatureEncoding {
                        found: other.name(),
                        expected: scheme.encoding.name(),
                    }
                })?;
        }
        Ok(())
    }

    /// The other algorithms, where a signature has their length.
    fn algorithms(&mut self) -> Step {
        let scheme = self.scheme;
        let parts = scheme.parts(&self.url);
        for algorithm in Algorithm::ALL {
            if algorithm == scheme.algorithm {
                continue;
            }
            let tags = self.tags(scheme.encoding, algorithm);
            for (_, key) in &self.keys {
                self.budget
                    .attempt(key, algorithm, &parts, &tags, || Diagnosis::Algorithm {
                        found: algorithm.name(),
                        expected: scheme.algorithm.name(),
                    })?;
            }
        }
        Ok(())
    }

    /// Every secret's other forms that give another key than the configured one, by form
    /// (most common first), then by secret.
    fn secret_variants(&self) -> Vec<(SecretForm, Vec<u8>)> {
        let mut variants: Vec<(SecretForm, Vec<u8>)> = Vec::new();
        for (secret, configured) in &self.keys {
            let own = variants.len();
            for form in SecretForm::ALL {
                let Some(key) = form.key(secret.expose(), self.scheme.format) else {
                    continue;
                };
                let seen = variants[own..].iter().any(|(_, earlier)| *earlier == key);
                if key != configured.as_ref() && !seen {
                    variants.push((form, key));
                }
            }
        }
        // Stable: the secrets keep their order within a form.
        variants.sort_by_key(|(form, _)| *form);
        variants
    }
}

const WHSEC: &str = "whsec_";

/// A form of a secret's text the vendor may sign with instead of the configured one, in the
/// order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SecretForm {
    /// `whsec_` + the text: Stripe's secret includes the prefix, and operators strip it.
    PrefixAdded,
    /// The text after `whsec_`.
    PrefixRemoved,
    /// The whole text as the key, where the scheme decodes it.
    Text,
    /// The text (after any `whsec_`) hex-decoded.
    HexDecoded,
    /// The text (after any `whsec_`) base64-decoded, standard or URL-safe, padded or not.
    Base64Decoded,
}

impl SecretForm {
    const ALL: [SecretForm; 5] = [
        SecretForm::PrefixAdded,
        SecretForm::PrefixRemoved,
        SecretForm::Text,
        SecretForm::HexDecoded,
        SecretForm::Base64Decoded,
    ];

    /// The key this form makes of `text`, where it applies.
    fn key(self, text: &str, format: SecretFormat) -> Option<Vec<u8>> {
        let bare = text.strip_prefix(WHSEC);
        let key = match self {
            SecretForm::PrefixAdded if format == SecretFormat::WhsecText && bare.is_none() => {
                format!("{WHSEC}{text}").into_bytes()
            }
            SecretForm::PrefixAdded => return None,
            SecretForm::PrefixRemoved => bare?.as_bytes().to_vec(),
            SecretForm::Text => text.as_bytes().to_vec(),
            SecretForm::HexDecoded => hex::decode(bare.unwrap_or(text)).ok()?,
            SecretForm::Base64Decoded => decode_base64(bare.unwrap_or(text).as_bytes())?,
        };
        (!key.is_empty()).then_some(key)
    }

    /// What the operator is told: which form verifies, never what the secret is.
    fn detail(self, format: SecretFormat) -> &'static str {
        let decoded = format == SecretFormat::WhsecBase64;
        match self {
            SecretForm::PrefixAdded => {
                "the secret verifies with `whsec_` prepended: the provider signs with the whole \
                 secret, prefix included; configure it exactly as the provider shows it"
            }
            SecretForm::PrefixRemoved if decoded => {
                "the text after the secret's `whsec_` verifies used as it is: the provider signs \
                 with those characters, not with the base64-decoded key"
            }
            SecretForm::PrefixRemoved => {
                "the secret verifies without its `whsec_` prefix: the provider signs with the \
                 text after `whsec_`"
            }
            SecretForm::Text => {
                "the secret verifies used as text, as written: the provider signs with the \
                 secret's characters, not with the base64-decoded key"
            }
            SecretForm::HexDecoded => {
                "the secret verifies hex-decoded: the provider signs with the decoded bytes"
            }
            SecretForm::Base64Decoded => {
                "the secret verifies base64-decoded: the provider signs with the decoded bytes"
            }
        }
    }
}

/// `text` decoded as `encoding` into exactly `len` bytes (hex of either case; base64 standard
/// or URL-safe, padded or not).
fn decode(encoding: Encoding, text: &[u8], len: usize) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => decode_hex(text, len),
        // Longer text cannot decode to `len` bytes: not even tried.
        Encoding::Base64 if text.len() > len.div_ceil(3) * 4 => None,
        Encoding::Base64 => decode_base64(text).filter(|mac| mac.len() == len),
    }
}

/// Base64 in any of its usual alphabets and paddings.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests;
