//! HMAC and constant-time helpers shared by the verifiers and the signers.
//!
//! Every comparison of attacker-supplied bytes with secret-derived bytes goes through
//! [`ct_eq`] (fixed-length MACs) or [`tokens_match`] (tokens of any length), both constant
//! time, so response timing says nothing about how many leading bytes matched, nor about a
//! token's length.
//!
//! Verification work is bounded before authentication: a verifier computes each secret's MAC
//! once and compares it with every candidate signature the request offers (never one MAC per
//! candidate), and refuses more than [`MAX_CANDIDATES`] candidates outright.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// How a MAC is written in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

impl Encoding {
    /// The name configuration uses (`hmac.encoding`), also the one diagnoses show.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        }
    }
}

/// The most signatures one request may offer (Standard Webhooks and Stripe list one per active
/// secret of the sender: two during a rotation). More is refused as a malformed header before
/// any MAC is computed.
pub const MAX_CANDIDATES: usize = 8;

/// A MAC algorithm a provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order a diagnosis tries them.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

    /// The MAC length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// The name configuration uses (`hmac.algorithm`), also the one diagnoses show.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// HMAC of the concatenation of `parts` under `key`.
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    #[cfg(test)]
    work::count(parts);
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
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

/// Whether `mac` equals any of `candidates`, each compared in constant time. Every candidate
/// is compared (no early exit), so timing does not say which one matched.
pub fn matches_any(mac: &[u8], candidates: &[Vec<u8>]) -> bool {
    candidates
        .iter()
        .fold(false, |found, candidate| found | ct_eq(mac, candidate))
}

/// Constant-time equality of two byte strings whose length is public (MACs of a known
/// algorithm). For secrets of any length, use [`tokens_match`].
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether a token sent by a client equals a configured one (URL tokens, shared secrets,
/// Meta's verify token), in constant time and without revealing the configured token's length:
/// both sides are hashed to 32 bytes first, and the digests are compared.
pub fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    ct_eq(&Sha256::digest(given), &Sha256::digest(expected))
}

/// Decodes hex of either case into exactly `len` bytes.
pub fn decode_hex(text: &[u8], len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 {
        return None;
    }
    hex::decode(text).ok()
}

/// Test-only accounting of MAC work, so tests can assert how much a verifier computed before
/// refusing a request (work, not wall time). Per thread: tests run in parallel.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static MACS: Cell<usize> = const { Cell::new(0) };
        static BYTES: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn count(parts: &[&[u8]]) {
        MACS.with(|m| m.set(m.get() + 1));
        let bytes: usize = parts.iter().map(|p| p.len()).sum();
        BYTES.with(|b| b.set(b.get() + bytes));
    }

    /// MACs computed and bytes MAC'ed on this thread while `f` ran.
    pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
        let (macs, bytes) = (MACS.with(Cell::get), BYTES.with(Cell::get));
        let out = f();
        (
            out,
            MACS.with(Cell::get) - macs,
            BYTES.with(Cell::get) - bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_whatever_their_length() {
        assert!(tokens_match(b"s3cr3t-token", b"s3cr3t-token"));
        assert!(!tokens_match(b"s3cr3t-toke", b"s3cr3t-token"));
        assert!(!tokens_match(b"s3cr3t-token-", b"s3cr3t-token"));
        assert!(!tokens_match(b"", b"s3cr3t-token"));
        assert!(tokens_match(b"", b""));
    }

    #[test]
    fn matches_any_compares_every_candidate() {
        let mac = vec![7u8; 32];
        assert!(matches_any(&mac, &[vec![0; 32], mac.clone()]));
        assert!(matches_any(&mac, &[mac.clone(), vec![0; 32]]));
        assert!(!matches_any(&mac, &[vec![0; 32], vec![7; 31]]));
        assert!(!matches_any(&mac, &[]));
    }

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
