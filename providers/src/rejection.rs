//! Why a request was refused.
//!
//! One variant per reason, so that logs and metrics can say exactly what went wrong while the
//! provider only ever sees the coarse answer the README documents (never which secret, which
//! byte, or which header). [`Rejection::class`] is that coarse answer.

use std::borrow::Cow;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("signature header `{0}` is missing")]
    MissingSignature(Cow<'static, str>),
    #[error("signature header `{0}` is malformed")]
    MalformedSignature(Cow<'static, str>),
    #[error("signature header `{0}` appears more than once")]
    RepeatedSignature(Cow<'static, str>),
    #[error("timestamp header `{0}` is missing")]
    MissingTimestamp(Cow<'static, str>),
    #[error("timestamp header `{0}` is not a number of seconds")]
    MalformedTimestamp(Cow<'static, str>),
    /// A header the scheme takes an event's key from (Standard Webhooks' `webhook-id`) holds
    /// something other than visible ASCII: refused before any key is taken or MAC computed,
    /// so that two such ids can never both become the same key.
    #[error("header `{0}` must be visible ASCII")]
    InvalidHeader(Cow<'static, str>),
    #[error("signature matches no configured secret")]
    SignatureMismatch,
    #[error("body hash does not match the signed `bodySHA256`")]
    BodyHashMismatch,
    /// The signed timestamp is outside the window. Checked before any MAC is computed, so this
    /// is also the answer to a forged request with a stale timestamp: the timestamp is the
    /// caller's own input, and the answer reveals nothing else.
    #[error("timestamp is outside the tolerance window")]
    StaleTimestamp,
    #[error("URL token is missing or wrong")]
    BadUrlToken,
    #[error("shared secret is missing or wrong")]
    BadSharedSecret,
    /// The request was authenticated by a URL token only, and its payload is of a kind the
    /// vendor signs (a Mews POS webhook): the token does not stand in for that signature.
    #[error("a {0} must carry a valid signature: the URL token does not authenticate it")]
    SignatureRequired(&'static str),
    /// More form parameters than the provider ever sends, refused before anything is decoded
    /// or MAC'ed (the parameters are signed, so they must all be read to verify).
    #[error("the form has more than {0} parameters")]
    TooManyParameters(usize),
    #[error("verification token does not match")]
    VerifyTokenMismatch,
    /// A CloudEvents webhook handshake from an origin the source does not allow.
    #[error("the origin asking to deliver is not in `allowed_origins`")]
    OriginNotAllowed,
    #[error("handshake request is malformed: {0}")]
    MalformedHandshake(&'static str),
    #[error("body is not valid {format}: {detail}")]
    MalformedBody {
        format: &'static str,
        detail: String,
    },
}

/// The coarse classes of rejection that decide the answer to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionClass {
    /// 401 `{"error":"invalid_signature"}`.
    InvalidSignature,
    /// 401 `{"error":"stale_timestamp"}`.
    StaleTimestamp,
    /// 403: a handshake with the wrong verify token.
    Forbidden,
    /// 400: authentic (or a handshake) but not understood; authentic bodies are quarantined.
    BadRequest,
    /// 400 `{"error":"invalid_header"}`: a header the scheme needs is not what it must be,
    /// seen before anything is verified (nothing is quarantined).
    InvalidHeader,
}

impl Rejection {
    /// The class that decides the status code.
    pub fn class(&self) -> RejectionClass {
        match self {
            Rejection::MissingSignature(_)
            | Rejection::MalformedSignature(_)
            | Rejection::RepeatedSignature(_)
            | Rejection::MissingTimestamp(_)
            | Rejection::MalformedTimestamp(_)
            | Rejection::SignatureMismatch
            | Rejection::BodyHashMismatch
            | Rejection::BadUrlToken
            | Rejection::BadSharedSecret
            | Rejection::SignatureRequired(_)
            | Rejection::TooManyParameters(_) => RejectionClass::InvalidSignature,
            Rejection::StaleTimestamp => RejectionClass::StaleTimestamp,
            Rejection::InvalidHeader(_) => RejectionClass::InvalidHeader,
            Rejection::VerifyTokenMismatch | Rejection::OriginNotAllowed => {
                RejectionClass::Forbidden
            }
            Rejection::MalformedHandshake(_) | Rejection::MalformedBody { .. } => {
                RejectionClass::BadRequest
            }
        }
    }

    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::MissingSignature(_) => "missing_signature",
            Rejection::MalformedSignature(_) => "malformed_signature",
            Rejection::RepeatedSignature(_) => "repeated_signature",
            Rejection::MissingTimestamp(_) => "missing_timestamp",
            Rejection::MalformedTimestamp(_) => "malformed_timestamp",
            Rejection::InvalidHeader(_) => "invalid_header",
            Rejection::SignatureMismatch => "signature_mismatch",
            Rejection::BodyHashMismatch => "body_hash_mismatch",
            Rejection::StaleTimestamp => "stale_timestamp",
            Rejection::BadUrlToken => "bad_url_token",
            Rejection::BadSharedSecret => "bad_shared_secret",
            Rejection::SignatureRequired(_) => "signature_required",
            Rejection::TooManyParameters(_) => "too_many_parameters",
            Rejection::VerifyTokenMismatch => "verify_token_mismatch",
            Rejection::OriginNotAllowed => "origin_not_allowed",
            Rejection::MalformedHandshake(_) => "malformed_handshake",
            Rejection::MalformedBody { .. } => "malformed_body",
        }
    }

    pub(crate) fn malformed(format: &'static str, detail: impl std::fmt::Display) -> Self {
        Rejection::MalformedBody {
            format,
            detail: detail.to_string(),
        }
    }
}
