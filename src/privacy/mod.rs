//! Guest data controls: which personal fields leave porter, and in what form.
//!
//! The canonical schema marks personal fields with `"x-pii": true` (names, phone numbers,
//! emails, addresses, locations, message text, free text, and raw vendor payloads, which may
//! hold anything). A destination's `pii` setting applies to exactly those marks, read from the
//! schema the Rust types generate, so a field and its mark cannot drift apart:
//!
//! - `keep`: the event as stored;
//! - `hash`: each marked string becomes `pii_` + the first 32 hex digits of HMAC-SHA256 under
//!   `[privacy] key` over its canonical form (phone numbers in E.164 with `+`, emails
//!   lower-cased, other text as is), the same token in every event, so consumers can still join;
//!   marked lists of strings are hashed element by element; any other marked value (a raw
//!   payload, a contact card) is removed, since porter cannot know what is in it;
//! - `drop`: each marked member is removed.

pub(crate) mod erase;
mod person;
mod redact;

pub use person::Person;
pub(crate) use person::PersonKind;
pub(crate) use redact::Redaction;
pub use redact::token;
