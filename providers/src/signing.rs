//! HMAC and constant-time helpers shared by the verifiers and the signers.
//!
//! Every comparison of attacker-supplied bytes with secret-derived bytes goes through
//! [`Mac::verify_slice`] or [`ct_eq`], both constant-time, so response timing says nothing
//! about how many leading bytes matched.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// A MAC algorithm a provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The MAC length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// HMAC of the concatenation of `parts` under `key`.
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// Whether `tag` is the HMAC of `parts` under `key`, compared in constant time.
pub fn hmac_matches(algorithm: Algorithm, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    if tag.len() != algorithm.output_len() {
        return false;
    }
    ct_eq(&hmac(algorithm, key, parts), tag)
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes hex of either case into exactly `len` bytes.
pub fn decode_hex(text: &[u8], len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 {
        return None;
    }
    hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_vector() {
        // docs.github.com, "Validating webhook deliveries".
        let mac = hmac(
            Algorithm::Sha256,
            b"It's a Secret to Everybody",
            &[b"Hello, World!"],
        );
        assert_eq!(
            hex::encode(mac),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn parts_are_concatenated() {
        let whole = hmac(Algorithm::Sha1, b"k", &[b"abcdef"]);
        assert_eq!(whole, hmac(Algorithm::Sha1, b"k", &[b"abc", b"def"]));
        assert!(hmac_matches(
            Algorithm::Sha1,
            b"k",
            &[b"ab", b"cdef"],
            &whole
        ));
        assert!(!hmac_matches(Algorithm::Sha1, b"k", &[b"abcdeg"], &whole));
        assert!(!hmac_matches(
            Algorithm::Sha1,
            b"k",
            &[b"abcdef"],
            &whole[..19]
        ));
    }

    #[test]
    fn hex_needs_the_exact_length() {
        assert_eq!(decode_hex(b"00ff", 2), Some(vec![0, 255]));
        assert_eq!(decode_hex(b"00FF", 2), Some(vec![0, 255]));
        assert_eq!(decode_hex(b"00f", 2), None);
        assert_eq!(decode_hex(b"00fg", 2), None);
    }
}
