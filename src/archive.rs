//! Archiving authenticated requests on their way through the pipeline (`[archive]`).
//!
//! After `verify` passed and the request's events were stored (or its body quarantined), the
//! pipeline hands an [`Archived`] copy of it to [`Archiver::keep`], which writes it to the
//! store in a task of its own, after the answer: the request never waits for the archive.
//!
//! **An archive write never changes an answer.** The event is what must not be lost; the
//! archive is a convenience for `porter reprocess`. A write that fails, or one that finds
//! [`MAX_IN_FLIGHT`] writes still running (a slow store), is dropped with a warning and
//! counted in `porter_archive_failures_total{source, reason}`. A request the store refused
//! (503) is not archived: the provider retries it, and the retry is.
//!
//! A request whose events were all duplicates is never archived: its first copy was (or was
//! erased since, and must stay so), and a replayed request must cost nothing but its answer.
//!
//! What is kept of a request ([`kept_headers`]): the headers its provider signs (the names
//! its own `sign` sets, so no list to keep in step by hand), `content-type`, and the few it
//! reads besides (Standard Webhooks' `svix-*` spelling, Twilio's idempotency token, Mews POS's
//! signature when `sign` chose the URL token, PMS's bearer token); with the
//! method, path and raw query, since Twilio signs the URL and URL-token vendors (Cloudbeds,
//! ReserveKit, Mews Connector) carry their token in the query: for those sources the archive
//! holds that credential, as the request did; so it does for shared-secret vendors (PMS's
//! `x-webhook-secret` or `authorization`), whose "signature" is the secret itself, and for
//! vendors with Basic authentication in front (Adyen). Never
//! cookies or proxies' headers.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use jiff::Timestamp;
use porter_providers::{Request, ToSign};
use tokio::sync::Semaphore;

use crate::config::{ArchiveConfig, SourceConfig};
use crate::store::{Archived, ArchivedOutcome, Store};

/// Archive writes running at once; beyond this, requests are not archived (and counted).
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// Headers some provider reads that its `sign` does not set.
fn also_read(provider: &str) -> &'static [&'static str] {
    match provider {
        "standard_webhooks" => &["svix-id", "svix-timestamp", "svix-signature"],
        "twilio" => &["i-twilio-idempotency-token"],
        // `sign` picks the URL token or the POS signature by the body's shape.
        "mews" => &["x-signature"],
        // The shared secret may come as a bearer token instead of `x-webhook-secret`.
        "pms" => &["authorization"],
        _ => &[],
    }
}

/// The headers archived for `source`: what its provider signs and reads, lower case.
pub(crate) fn kept_headers(source: &SourceConfig) -> Vec<HeaderName> {
    let signed = source.source.sign(&ToSign {
        path: &source.path,
        query: None,
        content_type: "application/json",
        body: b"{}",
        now: Timestamp::UNIX_EPOCH,
    });
    let mut names: Vec<HeaderName> = signed
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(["content-type"])
        .chain(also_read(source.source.provider().id()).iter().copied())
        .filter_map(|name| HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok())
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}

/// The pipeline's side of the archive: what to keep per source, and the bounded writes.
#[derive(Debug)]
pub struct Archiver {
    pub retention: Duration,
    /// Per source, in the configuration's order.
    kept: Vec<Vec<HeaderName>>,
    in_flight: Arc<Semaphore>,
}

impl Archiver {
    pub fn new(config: ArchiveConfig, sources: &[SourceConfig]) -> Self {
        Self {
            retention: config.retention,
            kept: sources.iter().map(kept_headers).collect(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The archive entry of an authenticated `request` of source number `index`, before its
    /// outcome is known.
    pub fn draft(
        &self,
        index: usize,
        name: &str,
        request: &Request<'_>,
        body: &bytes::Bytes,
        received_at: Timestamp,
    ) -> Archived {
        let kept = self.kept.get(index).map(Vec::as_slice).unwrap_or_default();
        let headers = kept
            .iter()
            .flat_map(|name| {
                request.headers.get_all(name).iter().map(move |value| {
                    (
                        name.as_str().to_owned(),
                        bytes::Bytes::copy_from_slice(value.as_bytes()),
                    )
                })
            })
            .collect();
        Archived {
            id: String::new(),
            source: name.to_owned(),
            received_at,
            method: request.method.as_str().to_owned(),
            endpoint: request.endpoint.to_owned(),
            path: request.path.to_owned(),
            query: request.query.map(str::to_owned),
            headers,
            body: body.clone(),
            outcome: ArchivedOutcome::Events(Vec::new()),
        }
    }

    /// Archive writes under way (a test waits for none before it reads the archive).
    pub fn writing(&self) -> usize {
        MAX_IN_FLIGHT - self.in_flight.available_permits()
    }

    /// Writes `item` to `store` in a task of its own; see the module doc for
    /// failures.
    pub fn keep(&self, store: Store, item: Archived) {
        let source = item.source.clone();
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            failed(&source, "busy");
            tracing::warn!(source, "archive writes are backed up: request not archived");
            return;
        };
        let retention = self.retention;
        tokio::spawn(async move {
            let result = store.archive(item, retention).await;
            drop(permit);
            match result {
                Ok(Some(_)) => {}
                // An erasure took what it holds since it was answered: it stays erased.
                Ok(None) => tracing::info!(source, "request not archived: its data was erased"),
                Err(error) => {
                    failed(&source, "store");
                    tracing::warn!(source, %error, "request not archived");
                }
            }
        });
    }
}

fn failed(source: &str, reason: &'static str) {
    metrics::counter!(
        "porter_archive_failures_total",
        "source" => source.to_owned(),
        "reason" => reason
    )
    .increment(1);
}
