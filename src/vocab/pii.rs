//! What a destination receives of the personal fields (`pii = "keep" | "hash" | "drop"`).

/// A destination's `pii` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pii {
    #[default]
    Keep,
    Hash,
    Drop,
}

impl Pii {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "keep" => Some(Self::Keep),
            "hash" => Some(Self::Hash),
            "drop" => Some(Self::Drop),
            _ => None,
        }
    }
}
