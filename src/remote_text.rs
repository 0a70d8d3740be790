//! Text a remote party wrote (a WebSocket close reason, an error payload, a token endpoint's
//! answer), made safe to log, store and show: at most [`MAX_CHARS`] characters, with control
//! characters (newlines, ANSI escapes) written as escapes, so that it cannot forge a log line,
//! fill a log with megabytes or reach the console whole.

/// The most characters of remote text porter keeps.
pub(crate) const MAX_CHARS: usize = 256;

/// `text` with control characters (and the invisible ones that reorder or hide text: bidi
/// overrides, zero-width marks) escaped, cut at [`MAX_CHARS`] characters of the result; a cut
/// is marked with the length of the whole.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len().min(MAX_CHARS * 2));
    let mut shown = 0usize;
    for c in text.chars() {
        let escaped = c.is_control() || invisible(c);
        let width = if escaped {
            c.escape_default().count()
        } else {
            1
        };
        if shown + width > MAX_CHARS {
            quoted.push_str(&format!("… ({} bytes in all)", text.len()));
            return quoted;
        }
        shown += width;
        if escaped {
            quoted.extend(c.escape_default());
        } else {
            quoted.push(c);
        }
    }
    quoted
}

/// Characters that change how the text around them reads without being seen.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
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
            proptest::prop_assert!(!quoted.chars().any(|c| c.is_control() || invisible(c)));
            proptest::prop_assert!(quoted.chars().count() <= MAX_CHARS + 40);
        }
    }
}
