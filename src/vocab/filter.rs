//! Which events a destination wants: type globs, source names, and whether message statuses
//! that go backwards are wanted.

/// Which events a destination wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Type globs (`room.*`); empty means every type.
    pub events: Vec<String>,
    /// Source names; empty means every source.
    pub sources: Vec<String>,
    /// `statuses = "forward_only"`: skip a `message.status_changed` marked
    /// `statusregression` (behind a status already stored for its message).
    pub forward_only: bool,
}

impl Filter {
    /// Whether an event of `event_type` from the source named `source` is wanted.
    pub fn matches(&self, event_type: &str, source: &str) -> bool {
        let type_ok = self.events.is_empty()
            || self
                .events
                .iter()
                .any(|glob| glob_matches(glob, event_type));
        let source_ok = self.sources.is_empty() || self.sources.iter().any(|s| s == source);
        type_ok && source_ok
    }

    /// Whether the stored event `json` of `event_type` from `source` is wanted: [`matches`],
    /// and not a status regression when only forward moves are.
    ///
    /// [`matches`]: Filter::matches
    pub fn wants(&self, event_type: &str, source: &str, json: &str) -> bool {
        self.matches(event_type, source)
            && !(self.forward_only && is_status_regression(event_type, json))
    }
}

/// Whether a stored event is a `message.status_changed` marked `statusregression`. Read from
/// its JSON: in a status event every string is porter's typed data, and a `"` inside a
/// JSON string is escaped, so the text `"statusregression":true` can only be the attribute.
pub(crate) fn is_status_regression(event_type: &str, json: &str) -> bool {
    event_type == "message.status_changed" && json.contains(r#""statusregression":true"#)
}

/// `room.*, reservation.checked_out (sources: oracle)`, or `all`.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.events.as_slice() {
            [] => f.write_str("all")?,
            events => f.write_str(&events.join(", "))?,
        }
        if !self.sources.is_empty() {
            write!(f, " (sources: {})", self.sources.join(", "))?;
        }
        if self.forward_only {
            f.write_str(" (statuses: forward only)")?;
        }
        Ok(())
    }
}

/// `*` matches any run of characters (dots included); everything else matches itself.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    match glob.split_once('*') {
        None => glob == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&at| rest.is_char_boundary(at))
                .any(|at| glob_matches(tail, &rest[at..]))
        }
    }
}
