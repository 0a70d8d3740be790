//! The words porter's modules share, and nothing else.
//!
//! Configuration describes, the stores and delivery act; both speak of filters, Redis
//! targets and redaction modes. Those words live here, in a leaf that imports nothing of
//! porter's, so that neither side has to import the other for them (and no import cycle can
//! form through them).

mod filter;
mod person;
mod pii;
mod redis;

pub use filter::Filter;
pub(crate) use filter::{glob_matches, is_status_regression};
pub(crate) use person::PersonKind;
pub(crate) use pii::Pii;
pub use redis::{RedisTarget, ReplicaWait};

/// The source name of porter's own events (`erasure.requested`): no configured source may
/// take it.
pub(crate) const PORTER_SOURCE: &str = "porter";

/// The most bytes the raw archive keeps unless `[archive] max_bytes` says otherwise.
pub const DEFAULT_ARCHIVE_MAX_BYTES: usize = 64 * 1024 * 1024;
