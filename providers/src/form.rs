//! `application/x-www-form-urlencoded` decoding that keeps the exact bytes.
//!
//! Twilio signs the *decoded* parameters, so a lossy decoder (one that turns invalid UTF-8
//! into U+FFFD) would make authentic requests fail and could make two different bodies sign
//! alike. This decoder yields raw bytes; callers decide whether they need text.

use percent_encoding::percent_decode;

/// Decodes a form body into `(name, value)` byte pairs, in the order they appear.
///
/// `+` means a space; `%XX` escapes are decoded; a malformed escape is kept literally (as every
/// browser and Twilio's SDKs do). Empty segments (`a=1&&b=2`) are skipped.
pub fn decode(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    body.split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(at) => (&segment[..at], &segment[at + 1..]),
                None => (segment, &b""[..]),
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_plus_escapes_and_keeps_order() {
        let pairs = decode(b"Body=It%27s+here&To=%2B1&Body=x&&flag");
        let as_text: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            as_text,
            vec![
                ("Body".into(), "It's here".into()),
                ("To".into(), "+1".into()),
                ("Body".into(), "x".into()),
                ("flag".into(), "".into()),
            ]
        );
    }

    #[test]
    fn keeps_invalid_utf8_and_malformed_escapes() {
        let pairs = decode(b"a=%FF%zz");
        assert_eq!(pairs, vec![(b"a".to_vec(), vec![0xFF, b'%', b'z', b'z'])]);
    }
}
