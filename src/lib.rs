//! # porter
//!
//! An inbound webhook gateway. For every request: match the route to a configured source,
//! verify it exactly as the provider signs it, normalize the payload into canonical
//! CloudEvents, deduplicate and durably enqueue in one atomic step, and only then answer the
//! provider in the form it expects.
//!
//! # Layout
//!
//! - [`cli`]: the `porter` command line (`serve`, `check-config`, `send`, `events tail`).
//! - [`config`]: TOML configuration, `${ENV}` expansion, every problem named by its key.
//! - [`server`]: shared gateway state, the router, graceful shutdown.
//! - [`routes`]: exact path → source lookup.
//! - [`pipeline`]: the order of the steps, in one place.
//! - [`answer`]: every answer on a source route and its HTTP form (the README's "What providers get back").
//! - [`store`]: atomic dedupe-and-enqueue: the in-process [`store::MemoryStore`] and the
//!   [`store::RedisStore`] (single Redis or Redis Cluster).
//! - [`delivery`]: carrying stored events to destinations: schedules, leases, signed HTTP,
//!   retries, dead letters; in memory or in Redis.
//! - [`embed`]: porter inside another program, with in-process handlers as destinations.
//! - [`send`]: `porter send`, the vendors' "test webhook" button for the command line.
//! - [`events`]: `porter events tail`, the store's streams as JSON lines.
//! - [`inspect`]: `porter dlq list|replay` and `porter events show`.
//! - [`telemetry`]: log lines and Prometheus metrics.
//! - [`trace`]: OpenTelemetry spans of ingest and delivery (off unless `[telemetry]` is set)
//!   and the `traceparent` that joins them.
//!
//! Provider knowledge (signatures, payload shapes, the canonical event) lives in the
//! `porter-providers` crate, which does no I/O.

pub mod activity;
pub mod admin;
pub mod answer;
pub mod app;
pub mod archive;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod embed;
pub mod gateway;
pub mod ohip;
pub mod output;
pub mod pipeline;
pub mod privacy;
pub mod remote_text;
pub mod reprocess;
pub mod routes;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod vocab;

pub use porter_providers as providers;
