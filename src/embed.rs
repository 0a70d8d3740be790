//! Running porter inside another program, with in-process handlers as destinations.
//!
//! ```no_run
//! use std::sync::Arc;
//! use porter::config::{Config, ConfigOrigin, Filter};
//! use porter::delivery::{Handler, HandlerError};
//! use porter::embed::Embedded;
//! use porter::providers::Event;
//!
//! struct Print;
//! impl Handler for Print {
//!     fn handle<'a>(&'a self, event: &'a Event) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HandlerError>> + Send + 'a>> {
//!         Box::pin(async move { println!("{}", event.id); Ok(()) })
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
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

use crate::config::{Config, DEFAULT_RETRY, Filter, StoreKind};
use crate::delivery::memory_queue::MemoryQueue;
use crate::delivery::{self, Deliveries, Handler, Route, Target};
use crate::server::{self, Clock, Gateway};
use crate::store::{MemoryStore, Store};

/// A handler a handler destination calls, with its delivery settings.
struct HandlerDestination {
    name: String,
    filter: Filter,
    handler: Arc<dyn Handler>,
    retry: Vec<Duration>,
    concurrency: usize,
}

/// porter as a library: a configuration plus in-process handlers.
pub struct Embedded {
    config: Config,
    handlers: Vec<HandlerDestination>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.handlers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Embedded")
            .field("handlers", &names)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            handlers: Vec::new(),
        }
    }

    /// Adds a handler destination named `name` for the events `filter` matches, retried on the
    /// default schedule, one event at a time.
    pub fn handler(self, name: &str, filter: Filter, handler: Arc<dyn Handler>) -> Self {
        self.handler_with(name, filter, handler, DEFAULT_RETRY.to_vec(), 1)
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
        self.handlers.push(HandlerDestination {
            name: name.to_owned(),
            filter,
            handler,
            retry,
            concurrency: concurrency.max(1),
        });
        self
    }

    /// Serves until `shutdown` resolves, delivering to the configuration's destinations and the
    /// handlers; then drains requests and deliveries in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (mut routes, groups) = delivery::routes(&self.config).map_err(std::io::Error::other)?;
        for handler in &self.handlers {
            routes.push(Route {
                name: handler.name.clone(),
                filter: handler.filter.clone(),
                target: Target::Handler(Arc::clone(&handler.handler)),
                retry: handler.retry.clone(),
                concurrency: handler.concurrency,
                ordered: false,
                lease: Duration::from_secs(60),
            });
        }
        let store = self.store(&routes)?;
        let gateway = Arc::new(Gateway::with_store(self.config, store, Clock::system()));
        let deliveries = match delivery::queue_for(&gateway.store) {
            Some(queue) if !routes.is_empty() || !groups.is_empty() => Some(Deliveries::start(
                queue,
                routes,
                groups,
                Arc::clone(&gateway.intake),
            )),
            _ => None,
        };
        let served = server::serve(listener, Arc::clone(&gateway), shutdown).await;
        if let Some(deliveries) = deliveries {
            deliveries.stop().await;
        }
        served
    }

    /// The configured store; a memory store schedules for every route, handlers included.
    fn store(&self, routes: &[Route]) -> std::io::Result<Store> {
        match &self.config.store.kind {
            StoreKind::Memory {
                print_events,
                capacity,
            } => {
                let store = MemoryStore::new(*print_events, *capacity);
                if routes.is_empty() {
                    return Ok(Store::Memory(store));
                }
                let destinations: Vec<_> = routes
                    .iter()
                    .map(|r| (r.name.clone(), r.filter.clone(), r.ordered))
                    .collect();
                Ok(Store::Memory(store.with_deliveries(Arc::new(
                    MemoryQueue::new(&destinations, *capacity),
                ))))
            }
            StoreKind::Redis { .. } => {
                server::store_for(&self.config).map_err(std::io::Error::other)
            }
        }
    }
}
