//! `application/x-www-form-urlencoded` decoding that keeps the exact bytes.
//!
//! Twilio signs the *decoded* parameters, so a lossy decoder (one that turns invalid UTF-8
//! into U+FFFD) would make authentic requests fail and could make two different bodies sign
//! alike. This decoder yields raw bytes; callers decide whether they need text.

/// Decoded `(name, value)` byte pairs, in the order they appear.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes a form body into `(name, value)` byte pairs, in the order they appear.
///
/// `+` means a space; `%XX` escapes are decoded; a malformed escape is kept literally (as every
/// browser and Twilio's SDKs do). Empty segments (`a=1&&b=2`) are skipped.
pub(crate) fn decode(body: &[u8]) -> Pairs {
    #[cfg(test)]
    work::count(count(body));
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

/// How many parameters [`decode`] would return, without decoding or allocating: one scan for
/// `&`, counting only non-empty segments (as `decode` skips empty ones).
pub(crate) fn count(body: &[u8]) -> usize {
    let mut count = 0;
    let mut start = 0;
    for at in memchr::memchr_iter(b'&', body).chain(std::iter::once(body.len())) {
        if at > start {
            count += 1;
        }
        start = at + 1;
    }
    count
}

/// `+` to a space and `%XX` to its byte, in one pass (this runs for every parameter of every
/// Twilio request, twice: to verify and to key it).
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => out.push(b' '),
            b'%' => match tail {
                [high, low, after @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    out.push(hex_value(*high) << 4 | hex_value(*low));
                    rest = after;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Test-only accounting of decoding work (parameters decoded), per thread.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static DECODED: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn count(parameters: usize) {
        DECODED.with(|d| d.set(d.get() + parameters));
    }

    /// Parameters decoded on this thread while `f` ran.
    pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let before = DECODED.with(Cell::get);
        let out = f();
        (out, DECODED.with(Cell::get) - before)
    }
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
        assert_eq!(
            decode(b"a=%4&b=%"),
            vec![
                (b"a".to_vec(), b"%4".to_vec()),
                (b"b".to_vec(), b"%".to_vec())
            ]
        );
    }

    #[test]
    fn count_agrees_with_decode() {
        for body in [&b""[..], b"a", b"a=1&b=2", b"&&a&&", b"&", b"a&&b&", b"=&="] {
            assert_eq!(super::count(body), decode(body).len(), "{body:?}");
        }
    }

    proptest::proptest! {
        /// The one-pass decoder agrees with the `percent-encoding` crate on any bytes.
        #[test]
        fn unescape_agrees_with_percent_encoding(raw in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"%+aF09gz".to_vec()),
                proptest::num::u8::ANY,
            ],
            0..40,
        )) {
            let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
            let expected: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            proptest::prop_assert_eq!(super::unescape(&raw), expected);
        }
    }
}
