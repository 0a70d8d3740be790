//! Authentication pieces several providers share: a MAC in a header, a timestamp window, a
//! token in the URL, a shared secret in a header.
//!
//! Each provider module says which of these its vendor uses and over which bytes; the pieces
//! here make sure every provider does the parts that are easy to get subtly wrong the same
//! way: one header only, exact prefix, exact length, every secret tried, constant-time
//! comparison, a symmetric window. Where a timestamp is signed, verifiers check its format and
//! window *before* computing any MAC: a request that is stale costs no hashing.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde::Deserialize;

use crate::diagnosis::{Part, Scheme, SecretFormat};
use crate::provider::{Guard, Signed, ToSign};
use crate::request::HeaderValue;
use crate::settings::{SettingError, require_url_token};
pub use crate::signing::Encoding;
use crate::signing::{Algorithm, decode_hex, hmac_matches, tokens_match};
use crate::{Rejection, Request, Secret, form};

/// The timestamp window when a source configures none.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A header carrying `prefix` + the encoded MAC.
#[derive(Debug, Clone)]
pub struct MacHeader {
    pub name: Cow<'static, str>,
    pub prefix: Cow<'static, str>,
    pub encoding: Encoding,
    pub algorithm: Algorithm,
}

impl MacHeader {
    /// `name: prefix<hex HMAC-SHA256>`, the most common shape.
    pub const fn hex_sha256(name: &'static str, prefix: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            prefix: Cow::Borrowed(prefix),
            encoding: Encoding::Hex,
            algorithm: Algorithm::Sha256,
        }
    }

    /// Checks that the header is present once, well formed, and the MAC of `parts` under one of
    /// `secrets`.
    pub fn verify(
        &self,
        request: &Request<'_>,
        secrets: &[Secret],
        parts: &[&[u8]],
    ) -> Result<(), Rejection> {
        let value = required_header(request, self.name.clone())?;
        let tag = self
            .decode(value)
            .ok_or_else(|| Rejection::MalformedSignature(self.name.clone()))?;
        let matched = secrets
            .iter()
            .any(|secret| hmac_matches(self.algorithm, secret.expose().as_bytes(), parts, &tag));
        if matched {
            Ok(())
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    fn decode(&self, value: &[u8]) -> Option<Vec<u8>> {
        let encoded = value.strip_prefix(self.prefix.as_bytes())?;
        let length = self.algorithm.output_len();
        match self.encoding {
            Encoding::Hex => decode_hex(encoded, length),
            Encoding::Base64 => BASE64
                .decode(encoded)
                .ok()
                .filter(|tag| tag.len() == length),
        }
    }

    /// How this header signs `content` with `secrets` (keys as `format` says), for a
    /// diagnosis: the header's value after the prefix, undecoded, is the signature offered.
    pub fn scheme<'a>(
        &self,
        request: &Request<'a>,
        secrets: &'a [Secret],
        format: SecretFormat,
        content: Vec<Part<'a>>,
    ) -> Scheme<'a> {
        let offered = match request.single_header(&self.name) {
            HeaderValue::One(value) => value.strip_prefix(self.prefix.as_bytes()),
            HeaderValue::Missing | HeaderValue::Repeated => None,
        };
        Scheme::new(secrets, format, self.algorithm, self.encoding, content).offering(offered)
    }

    /// The header value for `parts` signed with `secret`.
    pub fn sign(&self, secret: &Secret, parts: &[&[u8]]) -> String {
        let mac = crate::signing::hmac(self.algorithm, secret.expose().as_bytes(), parts);
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => BASE64.encode(mac),
        };
        format!("{}{encoded}", self.prefix)
    }
}

/// A MAC of the raw body in one header, checked against every secret: the whole scheme of
/// Meta, the PMS Web API, RoostSync and Mews POS.
#[derive(Debug)]
pub struct BodyMac {
    header: MacHeader,
    secrets: Vec<Secret>,
}

impl BodyMac {
    /// `header` with `secrets` (checked by `settings::require_secrets`).
    pub fn new(header: MacHeader, secrets: Vec<Secret>) -> Self {
        Self { header, secrets }
    }
}

impl Guard for BodyMac {
    /// No timestamp is signed: `now` is not read.
    fn check(&self, request: &Request<'_>, _now: Timestamp) -> Result<(), Rejection> {
        self.header.verify(request, &self.secrets, &[request.body])
    }

    /// The request signed with the first secret.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let value = self.header.sign(&self.secrets[0], &[request.body]);
        Signed::headers(request, vec![(self.header.name.to_string(), value)])
    }

    /// The raw body signed with the secrets' text.
    fn scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        Some(self.header.scheme(
            request,
            &self.secrets,
            SecretFormat::Text,
            vec![request.body.into()],
        ))
    }
}

/// `v0=<hex HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")>` in one header, the Unix
/// timestamp in another: Slack's scheme, which Zoom copied.
#[derive(Debug)]
pub struct V0Mac {
    signature: MacHeader,
    timestamp: &'static str,
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl V0Mac {
    /// The signature in `signature`, the timestamp in `timestamp`, `secrets` (checked by
    /// `settings::require_secrets`), a window of `tolerance` either side of now.
    pub fn new(
        signature: &'static str,
        timestamp: &'static str,
        secrets: Vec<Secret>,
        tolerance: Duration,
    ) -> Self {
        Self {
            signature: MacHeader::hex_sha256(signature, "v0="),
            timestamp,
            secrets,
            tolerance,
        }
    }

    /// Checks the request and returns the secret that signed it (Zoom answers its URL
    /// validation with that secret). The headers' shape and the window come before any MAC;
    /// every secret is tried.
    pub fn signed_by(&self, request: &Request<'_>, now: Timestamp) -> Result<&Secret, Rejection> {
        let value = required_header(request, self.signature.name.clone())?;
        let tag = self
            .signature
            .decode(value)
            .ok_or_else(|| Rejection::MalformedSignature(self.signature.name.clone()))?;
        let (seconds, text) = timestamp_header(request, self.timestamp.into())?;
        check_window(seconds, now, self.tolerance)?;
        let content: [&[u8]; 4] = [b"v0:", text, b":", request.body];
        // Every secret is computed and compared, whichever matches.
        let mut signer = None;
        for secret in &self.secrets {
            let matched = hmac_matches(
                self.signature.algorithm,
                secret.expose().as_bytes(),
                &content,
                &tag,
            );
            if matched && signer.is_none() {
                signer = Some(secret);
            }
        }
        signer.ok_or(Rejection::SignatureMismatch)
    }
}

impl Guard for V0Mac {
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection> {
        self.signed_by(request, now).map(|_| ())
    }

    /// Signed now, with the first secret.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let timestamp = request.now.as_second().to_string();
        let value = self.signature.sign(
            &self.secrets[0],
            &[b"v0:", timestamp.as_bytes(), b":", request.body],
        );
        Signed::headers(
            request,
            vec![
                (self.signature.name.to_string(), value),
                (self.timestamp.to_owned(), timestamp),
            ],
        )
    }

    /// `v0:{timestamp}:{body}` under the secrets' text, for a diagnosis.
    fn scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let (seconds, text) = timestamp_header(request, self.timestamp.into()).ok()?;
        let content = vec![
            b"v0:".as_slice().into(),
            text.into(),
            b":".as_slice().into(),
            request.body.into(),
        ];
        Some(
            self.signature
                .scheme(request, &self.secrets, SecretFormat::Text, content)
                .timestamp(Some(seconds)),
        )
    }
}

/// `basic = { username, password }`: HTTP Basic credentials a vendor sends (Adyen, Apaleo,
/// Hostaway let you set them on the webhook).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSettings {
    pub username: String,
    pub password: Secret,
}

/// `Authorization: Basic base64(username:password)`, compared in constant time.
#[derive(Debug)]
pub struct BasicAuth {
    /// `username:password`, as the header carries it once decoded.
    credentials: Secret,
}

impl BasicAuth {
    /// Refuses a username with `:` (it could not be told from the password), and a password
    /// shorter than 12 characters (it is the only authentication of some vendors).
    pub fn new(settings: BasicSettings) -> Result<Self, SettingError> {
        if settings.username.is_empty() || settings.username.contains(':') {
            return Err(SettingError::new(
                "basic.username",
                "must be non-empty and may not contain `:`",
            ));
        }
        if settings.password.expose().chars().count() < 12 {
            return Err(SettingError::new(
                "basic.password",
                "must be at least 12 characters: it authenticates the vendor",
            ));
        }
        Ok(Self {
            credentials: Secret::new(format!(
                "{}:{}",
                settings.username,
                settings.password.expose()
            )),
        })
    }

    /// Checks the one `Authorization` header.
    pub fn check(&self, request: &Request<'_>) -> Result<(), Rejection> {
        let value = required_header(request, "authorization".into())?;
        let (scheme, encoded) = value
            .iter()
            .position(|&b| b == b' ')
            .map(|at| (&value[..at], &value[at + 1..]))
            .ok_or(Rejection::MalformedSignature("authorization".into()))?;
        if !scheme.eq_ignore_ascii_case(b"basic") {
            return Err(Rejection::MalformedSignature("authorization".into()));
        }
        let given = BASE64
            .decode(encoded.trim_ascii())
            .map_err(|_| Rejection::MalformedSignature("authorization".into()))?;
        if tokens_match(&given, self.credentials.expose().as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::BadSharedSecret)
        }
    }

    /// The header value a vendor sends.
    pub fn header(&self) -> String {
        format!("Basic {}", BASE64.encode(self.credentials.expose()))
    }
}

/// A URL token, HTTP Basic credentials, or both: what authenticates vendors that cannot sign
/// (Apaleo, Hostaway). Every configured piece must match.
#[derive(Debug)]
pub struct Credentials {
    token: Option<Secret>,
    basic: Option<BasicAuth>,
}

impl Credentials {
    /// At least one of `url_token` (checked by `settings::require_url_token`) and `basic`.
    pub fn new(
        token: Option<Secret>,
        basic: Option<BasicSettings>,
    ) -> Result<Self, Vec<SettingError>> {
        let mut problems = Vec::new();
        if token.is_none() && basic.is_none() {
            problems.push(SettingError::new(
                "url_token",
                "this vendor cannot sign: set `url_token` (in the URL you give the vendor), \
                 `basic = { username, password }`, or both",
            ));
        }
        let token = match token.map(|t| require_url_token(Some(t))).transpose() {
            Ok(token) => token,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let basic = match basic.map(BasicAuth::new).transpose() {
            Ok(basic) => basic,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        if problems.is_empty() {
            Ok(Self { token, basic })
        } else {
            Err(problems)
        }
    }
}

/// Nothing is signed: a diagnosis has no scheme to offer.
impl Guard for Credentials {
    fn check(&self, request: &Request<'_>, _now: Timestamp) -> Result<(), Rejection> {
        if let Some(token) = &self.token {
            check_url_token(request, token)?;
        }
        if let Some(basic) = &self.basic {
            basic.check(request)?;
        }
        Ok(())
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let mut signed = match &self.token {
            Some(token) => UrlToken(token.clone()).sign(request),
            None => Signed::headers(request, Vec::new()),
        };
        if let Some(basic) = &self.basic {
            signed
                .headers
                .push(("Authorization".to_owned(), basic.header()));
        }
        signed
    }
}

/// A token in the URL (`?token=` or `?Token=`), the whole authentication of vendors that cannot
/// sign (Mews Connector, Cloudbeds, ReserveKit).
#[derive(Debug)]
pub struct UrlToken(Secret);

impl UrlToken {
    /// The source's `url_token` (required, at least 16 characters).
    pub fn from_setting(token: Option<Secret>) -> Result<Self, SettingError> {
        require_url_token(token).map(Self)
    }
}

/// Nothing is signed: a diagnosis has no scheme to offer.
impl Guard for UrlToken {
    fn check(&self, request: &Request<'_>, _now: Timestamp) -> Result<(), Rejection> {
        check_url_token(request, &self.0)
    }

    /// What a vendor that cannot sign sends: the request, with `token=<url token>` added to the
    /// query.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        // Everything but RFC 3986's unreserved characters is escaped.
        const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let encoded: String =
            percent_encoding::utf8_percent_encode(self.0.expose(), ESCAPED).collect();
        let query = match request.query {
            Some(query) if !query.is_empty() => format!("{query}&token={encoded}"),
            _ => format!("token={encoded}"),
        };
        Signed {
            query: Some(query),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// The value of a header that must appear exactly once.
pub fn required_header<'a>(
    request: &Request<'a>,
    name: Cow<'static, str>,
) -> Result<&'a [u8], Rejection> {
    match request.single_header(&name) {
        HeaderValue::Missing => Err(Rejection::MissingSignature(name)),
        HeaderValue::Repeated => Err(Rejection::RepeatedSignature(name)),
        HeaderValue::One(value) => Ok(value),
    }
}

/// The Unix-seconds timestamp in header `name` (which must appear exactly once), and the
/// header's exact bytes, which are what the vendor signed.
pub fn timestamp_header<'a>(
    request: &Request<'a>,
    name: Cow<'static, str>,
) -> Result<(i64, &'a [u8]), Rejection> {
    match request.single_header(&name) {
        HeaderValue::Missing => Err(Rejection::MissingTimestamp(name)),
        HeaderValue::Repeated => Err(Rejection::MalformedTimestamp(name)),
        HeaderValue::One(value) => parse_seconds(value)
            .map(|seconds| (seconds, value))
            .ok_or(Rejection::MalformedTimestamp(name)),
    }
}

/// Unix seconds written as plain ASCII digits (no sign, no spaces, at most 12 digits).
pub fn parse_seconds(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Refuses a timestamp more than `tolerance` away from `now`, in either direction: a request
/// from the future is as suspect as a stale one.
pub fn check_window(seconds: i64, now: Timestamp, tolerance: Duration) -> Result<(), Rejection> {
    let skew = now.as_second().abs_diff(seconds);
    if skew > tolerance.as_secs() {
        Err(Rejection::StaleTimestamp)
    } else {
        Ok(())
    }
}

/// The `token` (or `Token`) query parameter, compared in constant time. Vendors that cannot
/// sign (Mews Connector, Cloudbeds, ReserveKit) are configured with a URL holding it.
pub fn check_url_token(request: &Request<'_>, expected: &Secret) -> Result<(), Rejection> {
    let pairs = form::decode(request.query.unwrap_or("").as_bytes());
    let mut tokens = pairs
        .iter()
        .filter(|(name, _)| name == b"token" || name == b"Token")
        .map(|(_, value)| value);
    match (tokens.next(), tokens.next()) {
        (Some(given), None) if tokens_match(given, expected.expose().as_bytes()) => Ok(()),
        _ => Err(Rejection::BadUrlToken),
    }
}

/// A shared secret sent as-is in `header` (optionally after `scheme `, as in
/// `Authorization: Bearer <secret>`), compared in constant time against every secret.
pub fn shared_secret_in_header(
    request: &Request<'_>,
    header: &str,
    scheme: Option<&str>,
    secrets: &[Secret],
) -> Option<bool> {
    let value = match request.single_header(header) {
        HeaderValue::Missing => return None,
        HeaderValue::Repeated => return Some(false),
        HeaderValue::One(value) => value,
    };
    let given = match scheme {
        None => value,
        Some(scheme) => {
            let (word, rest) =
                value.split_at(value.iter().position(|&b| b == b' ').unwrap_or(value.len()));
            if !word.eq_ignore_ascii_case(scheme.as_bytes()) {
                return Some(false);
            }
            rest.strip_prefix(b" ").unwrap_or(rest)
        }
    };
    Some(secrets.iter().fold(false, |found, secret| {
        found | tokens_match(given, secret.expose().as_bytes())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::OwnedRequest;

    #[test]
    fn the_window_is_symmetric() {
        let now = Timestamp::from_second(1_700_000_000).expect("ts");
        let tolerance = Duration::from_secs(300);
        assert_eq!(check_window(1_700_000_000, now, tolerance), Ok(()));
        assert_eq!(check_window(1_700_000_300, now, tolerance), Ok(()));
        assert_eq!(check_window(1_699_999_700, now, tolerance), Ok(()));
        assert_eq!(
            check_window(1_700_000_301, now, tolerance),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            check_window(1_699_999_699, now, tolerance),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            check_window(i64::MIN, now, tolerance),
            Err(Rejection::StaleTimestamp)
        );
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_seconds(b"1700000000"), Some(1_700_000_000));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"1e9",
            b"9999999999999",
            b"abc",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn url_tokens_match_exactly_once() {
        let secret = Secret::new("s3cr3t-token");
        let check = |query: &str| check_url_token(&OwnedRequest::get("/x", query).view(), &secret);
        assert_eq!(check("token=s3cr3t-token"), Ok(()));
        assert_eq!(check("a=1&Token=s3cr3t-token"), Ok(()));
        for bad in [
            "",
            "token=s3cr3t-tokem",
            "token=s3cr3t-token&token=s3cr3t-token",
            "TOKEN=s3cr3t-token",
            "token=s3cr3t-toke",
        ] {
            assert_eq!(check(bad), Err(Rejection::BadUrlToken), "{bad}");
        }
    }

    #[test]
    fn shared_secrets_in_headers() {
        let secrets = [Secret::new("pms-secret")];
        let check = |name: &'static str, value: &str, scheme| {
            let request = OwnedRequest::post("/x", Vec::new()).header(name, value);
            shared_secret_in_header(&request.view(), name, scheme, &secrets)
        };
        assert_eq!(check("x-webhook-secret", "pms-secret", None), Some(true));
        assert_eq!(check("x-webhook-secret", "pms-secreT", None), Some(false));
        assert_eq!(
            check("authorization", "Bearer pms-secret", Some("Bearer")),
            Some(true)
        );
        assert_eq!(
            check("authorization", "bearer pms-secret", Some("Bearer")),
            Some(true)
        );
        assert_eq!(
            check("authorization", "Basic pms-secret", Some("Bearer")),
            Some(false)
        );
        let absent = OwnedRequest::post("/x", Vec::new());
        assert_eq!(
            shared_secret_in_header(&absent.view(), "x-webhook-secret", None, &secrets),
            None
        );
    }

    #[test]
    fn mac_headers_need_prefix_length_and_a_secret() {
        let header = MacHeader::hex_sha256("x-sig", "sha256=");
        let secret = Secret::new("k");
        let good = header.sign(&secret, &[b"body"]);
        let verify = |value: &str, body: &[u8]| {
            let request = OwnedRequest::post("/x", body.to_vec()).header("x-sig", value);
            header.verify(
                &request.view(),
                &[Secret::new("other"), secret.clone()],
                &[body],
            )
        };
        assert_eq!(verify(&good, b"body"), Ok(()));
        assert_eq!(
            verify(&good.to_uppercase().replace("SHA256=", "sha256="), b"body"),
            Ok(())
        );
        assert_eq!(verify(&good, b"bodY"), Err(Rejection::SignatureMismatch));
        assert_eq!(
            verify(&good[7..], b"body"),
            Err(Rejection::MalformedSignature("x-sig".into()))
        );
        assert_eq!(
            verify(&good[..70], b"body"),
            Err(Rejection::MalformedSignature("x-sig".into()))
        );
    }
}
