//! Text a remote party wrote (a WebSocket close reason, an error payload, a token endpoint's
//! answer), made safe to log, store and show: at most [`MAX_CHARS`] characters, with control
//! characters (newlines, ANSI escapes) written as escapes, so that it cannot forge a log line,
//! fill a log with megabytes or reach the console whole.

/// The most characters of remote text porter keeps.
pub const MAX_CHARS: usize = 256;

/// `text` bounded to [`MAX_CHARS`] characters and with control characters escaped; a cut is
/// marked with the length of the whole.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len().min(MAX_CHARS * 2));
    for (taken, c) in text.chars().enumerate() {
        if taken == MAX_CHARS {
            quoted.push_str(&format!("… ({} bytes in all)", text.len()));
            return quoted;
        }
        if c.is_control() {
            quoted.extend(c.escape_default());
        } else {
            quoted.push(c);
        }
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            quote("bye\n2026-12-06 INFO forged\x1b[31m"),
            "bye\\n2026-12-06 INFO forged\\u{1b}[31m"
        );
        assert_eq!(quote("plain text, ü"), "plain text, ü");
    }

    #[test]
    fn long_text_is_cut_and_says_so() {
        let long = "x".repeat(8 * 1024 * 1024);
        let quoted = quote(&long);
        assert!(quoted.len() < MAX_CHARS + 64, "{}", quoted.len());
        assert!(quoted.ends_with("(8388608 bytes in all)"), "{quoted}");
    }

    proptest::proptest! {
        #[test]
        fn nothing_quoted_holds_a_control_character(text in ".{0,600}") {
            let quoted = quote(&text);
            proptest::prop_assert!(!quoted.chars().any(char::is_control));
            proptest::prop_assert!(quoted.chars().count() <= MAX_CHARS + 40);
        }
    }
}
