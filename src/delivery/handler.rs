//! In-process handlers: for programs that embed porter as a library and want events delivered
//! to their own code rather than over HTTP. A handler is a destination like any other: it gets
//! the events its filter matches, an error is retried on the destination's schedule, and after
//! the last attempt the event is dead-lettered.

use std::future::Future;
use std::pin::Pin;

use porter_providers::Event;

/// Why a handler did not take an event; it will be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// Receives events in-process.
pub trait Handler: Send + Sync + 'static {
    /// Handles one event; `Ok` means it is done with and will not be offered again.
    fn handle<'a>(
        &'a self,
        event: &'a Event,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;
}
