//! How the console writes times, counts and latencies: one format each, used by every page.
//!
//! Figures are written with no-break spaces (between thousands, and between a number and its
//! unit), so that a narrow column never breaks "0.15 ms" or "97 773" across two lines.

/// A no-break space.
const NBSP: char = '\u{a0}';

/// A time as the console shows it everywhere: UTC, to the millisecond, always three digits
/// (`2026-12-06 09:13:35.450Z`).
pub(super) fn time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// A time written by someone else (an event's `receivedat`), in the console's format when it
/// reads as RFC 3339, as it is otherwise.
pub(super) fn time_text(text: &str) -> String {
    text.parse::<jiff::Timestamp>()
        .map_or_else(|_| text.to_owned(), time)
}

/// A time of day for a chart's axis: `09:13` (with the date when the window spans days).
pub(super) fn clock(at: jiff::Timestamp, with_date: bool) -> String {
    if with_date {
        at.strftime("%m-%d %H:%M").to_string()
    } else {
        at.strftime("%H:%M").to_string()
    }
}

/// A count with its thousands apart: `97 773`.
pub(super) fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 * 2);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(NBSP);
        }
        grouped.push(digit);
    }
    grouped
}

/// A rate or a measure: whole with its thousands apart from 100 up, two decimals below.
pub(super) fn decimal(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    // An empty sum of floats is -0.0, which would print as "-0".
    let value = value + 0.0;
    if value >= 100.0 {
        count(value.round() as u64)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value >= 0.1 {
        format!("{value:.2}")
    } else {
        // Small rates (a few requests in five minutes): two significant digits.
        let decimals = (1.0 - value.log10().floor()).clamp(2.0, 9.0) as usize;
        let text = format!("{value:.decimals$}");
        text.trim_end_matches('0').to_owned()
    }
}

/// A latency in milliseconds with its unit, never broken across lines; `–` for none.
pub(super) fn milliseconds(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| format!("{}{NBSP}ms", decimal(ms)))
}

/// An id shortened for a narrow column: its first 12 characters, an ellipsis and its last 4
/// (`evt_8f14e45f…2543`); short ids are left whole. The full id goes in the element's `title`.
pub(super) fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 18 {
        return id.to_owned();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_trailing_zeros() {
        let at: jiff::Timestamp = "2026-12-06T09:13:35.45Z".parse().expect("time");
        assert_eq!(time(at), "2026-12-06 09:13:35.450Z");
        let whole: jiff::Timestamp = "2026-12-06T09:13:35Z".parse().expect("time");
        assert_eq!(time(whole), "2026-12-06 09:13:35.000Z");
        assert_eq!(
            time_text("2026-12-06T09:13:35.4Z"),
            "2026-12-06 09:13:35.400Z"
        );
        assert_eq!(time_text("yesterday"), "yesterday");
    }

    #[test]
    fn counts_and_latencies_do_not_break() {
        assert_eq!(count(97_773), "97\u{a0}773");
        assert_eq!(count(1_000_000), "1\u{a0}000\u{a0}000");
        assert_eq!(count(999), "999");
        assert_eq!(milliseconds(Some(0.15)), "0.15\u{a0}ms");
        assert_eq!(milliseconds(Some(1234.0)), "1\u{a0}234\u{a0}ms");
        assert_eq!(milliseconds(None), "–");
        assert_eq!(decimal(std::iter::empty::<f64>().sum()), "0");
        assert_eq!(decimal(0.005), "0.005");
        assert_eq!(decimal(0.0133), "0.013");
        assert_eq!(decimal(0.5), "0.50");
    }

    #[test]
    fn long_ids_are_shortened_at_both_ends() {
        assert_eq!(
            short_id("evt_8f14e45fceea167a5a36dedd4bea2543"),
            "evt_8f14e45f…2543"
        );
        assert_eq!(short_id("dl_12"), "dl_12");
    }
}
