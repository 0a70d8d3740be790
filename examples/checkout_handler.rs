//! porter embedded in a housekeeping service: every guest check-out, whichever PMS sent it,
//! reaches this program's own code, verified, deduplicated and retried like any destination.
//!
//!     cargo run --example checkout_handler
//!     # then, from another terminal:
//!     cargo run -- send oracle fixtures/oracle_ohip/guest_checkout/body --path /api/v1/webhooks/oracle/reservations
//!
//! (The embedded default configuration is used, so its development secrets apply.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use porter::embed::{Config, Embedded, Event, Filter, Handler, HandlerError};
use porter::providers::event::EventBody;

/// Marks the room dirty when a guest checks out.
struct MarkRoomDirty;

impl Handler for MarkRoomDirty {
    fn handle<'a>(
        &'a self,
        event: &'a Event,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>> {
        Box::pin(async move {
            let EventBody::ReservationCheckedOut(reservation) = &event.body else {
                return Ok(());
            };
            match &reservation.room_number {
                Some(room) => {
                    println!("room {room} is dirty (event {})", event.id);
                    Ok(())
                }
                // An error is retried on the destination's schedule, then dead-lettered.
                None => Err(HandlerError("the check-out names no room".to_owned())),
            }
        })
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    porter::testing::telemetry::init_logging(porter::testing::telemetry::LogFormat::Text, None);
    let config = Config::resolve(None).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let checkouts = Filter {
        events: vec!["reservation.checked_out".to_owned()],
        sources: Vec::new(),
        forward_only: false,
    };
    Embedded::new(config)
        .handler("mark-room-dirty", checkouts, Arc::new(MarkRoomDirty))
        .serve(listener, porter::testing::server::shutdown_signal())
        .await
}
