//! The kinds of value that name a guest in an erasure request.

/// What kind of value an erasure names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    Phone,
    Email,
    GuestId,
}

impl PersonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::Phone => "phone",
            PersonKind::Email => "email",
            PersonKind::GuestId => "guest_id",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "phone" => Some(PersonKind::Phone),
            "email" => Some(PersonKind::Email),
            "guest_id" | "guest-id" => Some(PersonKind::GuestId),
            _ => None,
        }
    }
}
