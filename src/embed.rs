//! porter inside another program: the one supported library API.
//!
//! A program embedding porter gives it a [`Config`] (from TOML, as `porter serve` reads it)
//! and in-process [`Handler`]s, each a destination like any other: filtered by a [`Filter`],
//! retried on its schedule and dead-lettered when it keeps failing, delivered at least once
//! (an event's `id` lets a handler deduplicate). Then [`Embedded::serve`] runs the gateway on
//! a listener the program bound, until the program says stop.
//!
//! Everything this module names is the API; the rest of the crate is porter's own and may
//! change in any release.
//!
//! ```no_run
//! use std::sync::Arc;
//! use porter::embed::{Config, Embedded, Event, Filter, Handler, HandlerError};
//!
//! struct Print;
//! impl Handler for Print {
//!     fn handle<'a>(&'a self, event: &'a Event) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HandlerError>> + Send + 'a>> {
//!         Box::pin(async move { println!("{}", event.id); Ok(()) })
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // `porter.toml` in the working directory, or the embedded development default.
//! let config = Config::resolve(None).expect("configuration");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! Embedded::new(config)
//!     .handler("printer", Filter::default(), Arc::new(Print))
//!     .serve(listener, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::Clock;
pub use crate::config::{Config, ConfigErrors, ConfigOrigin};
use crate::delivery::Plan;
pub use crate::delivery::{Handler, HandlerError};
pub use crate::vocab::Filter;
pub use porter_providers::Event;

/// porter as a library: a configuration plus in-process handlers.
pub struct Embedded {
    config: Config,
    plan: Plan,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.plan.routes.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("Embedded")
            .field("handlers", &names)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            plan: Plan::default(),
        }
    }

    /// Adds a handler destination named `name` for the events `filter` matches, retried on the
    /// default schedule, one event at a time.
    pub fn handler(self, name: &str, filter: Filter, handler: Arc<dyn Handler>) -> Self {
        self.handler_with(name, filter, handler, Plan::default_retry(), 1)
    }

    /// Like [`Embedded::handler`], with its own retry schedule and concurrency.
    pub fn handler_with(
        mut self,
        name: &str,
        filter: Filter,
        handler: Arc<dyn Handler>,
        retry: Vec<Duration>,
        concurrency: usize,
    ) -> Self {
        self.plan.handler(name, filter, handler, retry, concurrency);
        self
    }

    /// Serves until `shutdown` resolves, delivering to the configuration's destinations and the
    /// handlers; then drains requests and deliveries in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        App::build(self.config, self.plan, Clock::system())
            .map_err(std::io::Error::other)?
            .serve(listener, shutdown)
            .await
    }
}
