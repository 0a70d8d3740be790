//! Who an erasure request is about, and whether a stored event or body holds them.
//!
//! Guests are named three ways: a phone number, an email address, or the id a PMS gives its
//! guest profile. Stored things are searched in the form they are kept in:
//!
//! - **phone**: any run of digits in the text that spells the number, with the separators
//!   people and vendors write (`+49 151 2345-6789`, `(0049) 151…`, `whatsapp:+49…`,
//!   `4915123456789`), bounded by non-digits. The number is compared in E.164 form, so every
//!   spelling of one number is one person. This reaches phone numbers wherever they stand: in
//!   typed fields, in `unknown` events' raw payloads, in bodies porter could not parse.
//! - **email**: the address, case-insensitively, as a whole address (`anna@x.de` does not
//!   match `joanna@x.de`).
//! - **guest id**: in events, a member that names a guest's id (`guest_id`, `guestId`,
//!   `profileId`, `CustomerId`, or `id` inside a `guest`/`profile`/`customer` object) holding
//!   exactly that id, typed data and raw payloads alike; in bodies porter could not parse, the
//!   id as a whole word. An id is not personal by its shape, so it is never searched as bare
//!   text inside parsed JSON: `12345` as a room number is not the guest `12345`.
//!
//! Quarantined bodies are also searched percent-decoded, which is how form-encoded vendors
//! (Twilio) write `+` and `@`.

use serde_json::Value;

use super::redact::{canonical_phone, token};
pub(crate) use crate::vocab::PersonKind;

/// The longest guest id or email accepted.
const MAX_VALUE: usize = 320;

/// The person an erasure is about, in canonical form.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    kind: PersonKind,
    /// E.164 with `+`, a lower-cased email, or the id as given.
    canonical: String,
}

/// Why a value cannot name a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error(
        "not a phone number in international form (write it with its country code: +49 151 2345 6789, 004915123456789)"
    )]
    Phone,
    #[error("not an email address")]
    Email,
    #[error("a guest id must be 1 to 320 visible characters")]
    GuestId,
}

// Never print the value: erasure requests are about exactly the data logs must not hold.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// A person named by `value` of kind `kind`.
    pub fn new(kind: PersonKind, value: &str) -> Result<Self, PersonError> {
        match kind {
            PersonKind::Phone => Self::phone(value),
            PersonKind::Email => Self::email(value),
            PersonKind::GuestId => Self::guest_id(value),
        }
    }

    pub fn phone(text: &str) -> Result<Self, PersonError> {
        let canonical = canonical_phone(text).ok_or(PersonError::Phone)?;
        // E.164 country codes never start with 0: a national number (0151 …) cannot be
        // compared with the international numbers vendors send.
        if canonical.starts_with("+0") || canonical.len() < 9 {
            return Err(PersonError::Phone);
        }
        Ok(Self {
            kind: PersonKind::Phone,
            canonical,
        })
    }

    pub fn email(text: &str) -> Result<Self, PersonError> {
        let text = text.trim();
        let valid = text.len() <= MAX_VALUE
            && text.split('@').count() == 2
            && text.split('@').all(|part| !part.is_empty())
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(PersonError::Email);
        }
        Ok(Self {
            kind: PersonKind::Email,
            canonical: text.to_lowercase(),
        })
    }

    pub fn guest_id(text: &str) -> Result<Self, PersonError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_VALUE || text.chars().any(char::is_control) {
            return Err(PersonError::GuestId);
        }
        Ok(Self {
            kind: PersonKind::GuestId,
            canonical: text.to_owned(),
        })
    }

    pub fn kind(&self) -> PersonKind {
        self.kind
    }

    /// The value in canonical form (E.164, a lower-cased email, the id). Personal: never log
    /// it.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The keyed hash `pii = "hash"` destinations see for this value: what the audit record
    /// and the `erasure.requested` event carry in place of the value.
    pub fn token(&self, key: &[u8]) -> String {
        token(key, &self.canonical)
    }

    /// Whether a stored CloudEvents JSON holds this person.
    pub fn in_event(&self, json: &str) -> bool {
        match self.kind {
            PersonKind::Phone => contains_phone(json.as_bytes(), self.digits()),
            PersonKind::Email => contains_email(json.as_bytes(), &self.canonical),
            PersonKind::GuestId => serde_json::from_str::<Value>(json)
                .map(|event| holds_guest_id(&event, "", &self.canonical))
                // Not JSON (it always is): search it as a body.
                .unwrap_or_else(|_| self.in_body(json.as_bytes())),
        }
    }

    /// Whether a body porter kept as bytes (quarantined: it did not parse) holds this person,
    /// as written or percent-decoded.
    pub fn in_body(&self, body: &[u8]) -> bool {
        let found = |text: &[u8]| match self.kind {
            PersonKind::Phone => contains_phone(text, self.digits()),
            PersonKind::Email => contains_email(text, &self.canonical),
            PersonKind::GuestId => contains_word(text, self.canonical.as_bytes()),
        };
        if found(body) {
            return true;
        }
        let decoded: Vec<u8> = percent_decode(body);
        decoded != body && found(&decoded)
    }

    fn digits(&self) -> &[u8] {
        self.canonical.trim_start_matches('+').as_bytes()
    }
}

/// What may stand between the digits of a written phone number.
fn is_phone_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/')
}

/// Whether `text` spells the phone number `digits` (E.164 without `+`), alone or after `00`.
fn contains_phone(text: &[u8], digits: &[u8]) -> bool {
    (0..text.len()).any(|start| {
        text[start].is_ascii_digit()
            && (start == 0 || !text[start - 1].is_ascii_digit())
            && (spells(text, start, digits) || spells_after_00(text, start, digits))
    })
}

fn spells_after_00(text: &[u8], start: usize, digits: &[u8]) -> bool {
    text.get(start..start + 2) == Some(b"00") && spells(text, start + 2, digits)
}

/// Whether the digits from `start` on are `digits`, separators allowed between them, and
/// no digit follows.
fn spells(text: &[u8], start: usize, digits: &[u8]) -> bool {
    let mut at = start;
    for (n, &digit) in digits.iter().enumerate() {
        if n > 0 {
            while at < text.len() && is_phone_separator(text[at]) {
                at += 1;
            }
        }
        if text.get(at) != Some(&digit) {
            return false;
        }
        at += 1;
    }
    text.get(at).is_none_or(|b| !b.is_ascii_digit())
}

fn is_email_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Whether `text` holds the (lower-case) address `email` as a whole address.
fn contains_email(text: &[u8], email: &str) -> bool {
    let needle = email.as_bytes();
    if needle.is_empty() || text.len() < needle.len() {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = find(&lower[from..], needle) {
        let start = from + found;
        let end = start + needle.len();
        let before_ok = start == 0 || !is_email_char(lower[start - 1]);
        // A sentence's full stop may follow the address; a longer domain may not.
        let after_ok = match lower.get(end) {
            None => true,
            Some(b'.') | Some(b'-') => lower
                .get(end + 1)
                .is_none_or(|b| !b.is_ascii_alphanumeric()),
            Some(&b) => !b.is_ascii_alphanumeric() && b != b'_',
        };
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// Whether `text` holds `word` with no word character on either side.
fn contains_word(text: &[u8], word: &[u8]) -> bool {
    let mut from = 0;
    while let Some(found) = find(&text[from..], word) {
        let start = from + found;
        let end = start + word.len();
        if (start == 0 || !is_word_char(text[start - 1]))
            && text.get(end).is_none_or(|&b| !is_word_char(b))
        {
            return true;
        }
        from = start + 1;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `%XX` decoded and `+` as a space, as forms are written; invalid escapes kept as they are.
fn percent_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while at < body.len() {
        match body[at] {
            b'%' => {
                let hex = body
                    .get(at + 1..at + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        at += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        at += 1;
    }
    out
}

/// A member name without case or punctuation: `guest_id`, `guestId` and `GuestID` are one.
fn folded(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Members that hold a guest's id.
const GUEST_ID_MEMBERS: &[&str] = &["guestid", "profileid", "guestprofileid", "customerid"];
/// Objects whose `id` is a guest's id.
const GUEST_OBJECTS: &[&str] = &[
    "guest",
    "guests",
    "profile",
    "profiles",
    "customer",
    "customers",
    "guestprofile",
    "profileidlist",
    "profileids",
];

/// Whether `value` (found under the member `parent`) holds a guest-id member equal to `id`.
fn holds_guest_id(value: &Value, parent: &str, id: &str) -> bool {
    match value {
        Value::Object(members) => members.iter().any(|(name, member)| {
            let name = folded(name);
            let names_guest = GUEST_ID_MEMBERS.contains(&name.as_str())
                || (name == "id" && GUEST_OBJECTS.contains(&parent));
            (names_guest && equals_id(member, id)) || holds_guest_id(member, &name, id)
        }),
        Value::Array(items) => items.iter().any(|item| {
            // A list of ids under a guest-id member (`guestIds: ["1", "2"]`).
            (parent.ends_with("ids")
                && GUEST_ID_MEMBERS.contains(&parent.trim_end_matches('s'))
                && equals_id(item, id))
                || holds_guest_id(item, parent, id)
        }),
        _ => false,
    }
}

fn equals_id(value: &Value, id: &str) -> bool {
    match value {
        Value::String(text) => text.trim() == id,
        Value::Number(number) => number.to_string() == id,
        _ => false,
    }
}

impl crate::store::erase::Subject for Person {
    fn in_event(&self, json: &str) -> bool {
        Person::in_event(self, json)
    }

    fn in_body(&self, body: &[u8]) -> bool {
        Person::in_body(self, body)
    }
}

#[cfg(test)]
mod tests;
