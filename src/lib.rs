//! # porter
//!
//! An inbound webhook gateway. For every request: match the route to a configured source,
//! verify it exactly as the provider signs it, normalize the payload into canonical
//! CloudEvents, deduplicate and durably enqueue in one atomic step, and only then answer the
//! provider in the form it expects.
//!
//! # Using porter as a library
//!
//! The one supported API is [`embed`]: porter inside another program, with in-process
//! handlers as destinations (and [`providers`], the provider knowledge, which is its own
//! crate). Everything else is internal and may change in any release. [`testing`] exposes, for
//! porter's own tests, load generator and binary, what they reach inside; it is not an API.
//!
//! # Layout
//!
//! From the leaves up (no module imports one above it; `scripts/structure` checks it):
//!
//! - `vocab`: the words modules share (filters, Redis targets, redaction modes, person kinds).
//! - `clock`, `remote_text` (text a remote party wrote, bounded and escaped), `output` (what
//!   commands print), `answer` (every answer on a source route and its HTTP form), `routes`
//!   (exact path → source).
//! - `config`: TOML configuration, `${ENV}` expansion, every problem named by its key.
//! - `connections`: every bound on what a sender holds before it is authenticated.
//! - `store`: atomic dedupe-and-enqueue and what rides on it (schedules, quarantine, the raw
//!   archive, erasure, OHIP offsets): memory, local and Redis, one folder each.
//! - `privacy`: redaction per destination, whom an erasure is about, the erasure's steps.
//! - `activity`, `telemetry`, `trace`: what the console shows, logs and metrics, spans.
//! - `delivery`: carrying stored events to destinations (HTTP, NATS, AMQP, handlers).
//! - `archive` (the pipeline's side of `[archive]`), `reprocess`, `ohip` (the OHIP Streaming
//!   connector).
//! - `gateway`: what every request shares; `pipeline`: the order of the steps, in one place;
//!   `server`: the providers' listener; `alerts`: rules over this instance's activity, and
//!   their notifications.
//! - `admin`: the console, the admin API and `/metrics`.
//! - `app`: the composition root (the store factory, the gateway, delivery, both listeners);
//!   `embed`: porter inside another program.
//! - `commands`: the `porter` command line.
//!
//! Provider knowledge (signatures, payload shapes, the canonical event) lives in the
//! `porter-providers` crate, which does no I/O.

// Everything not exported through `embed` or `testing` is the crate's own.
#![warn(unreachable_pub)]

mod activity;
mod admin;
mod admission;
mod alerts;
mod answer;
mod app;
mod archive;
mod clock;
mod commands;
mod config;
mod connections;
mod delivery;
pub mod embed;
mod gateway;
mod ohip;
mod output;
mod pipeline;
mod privacy;
mod remote_text;
mod reprocess;
mod routes;
mod server;
mod store;
mod telemetry;
mod trace;
mod vocab;

#[doc(hidden)]
pub mod testing;

pub use porter_providers as providers;

/// The `porter` command line (what the binary runs).
#[doc(hidden)]
pub use commands::run;
