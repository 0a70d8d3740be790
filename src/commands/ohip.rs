//! `porter ohip status` and `porter ohip seek`: a stream source's state, read from the Redis
//! store the serving instances share, and where its next subscribe starts.

use std::path::Path;
use std::process::ExitCode;

use porter_providers::oracle_ohip_stream::is_offset;

use super::inspect::Access;
use crate::config::{Config, OhipStreamConfig};
use crate::store::Store;

/// Runs `work` with the configuration's stream sources (all, or `source`) and its Redis store.
fn with_streams<F, Fut>(
    path: Option<&Path>,
    source: Option<&str>,
    access: Access,
    work: F,
) -> ExitCode
where
    F: FnOnce(Vec<OhipStreamConfig>, Store) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let config = match Config::resolve_without_admin_token(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let streams: Vec<OhipStreamConfig> = config
        .streams
        .iter()
        .filter(|s| source.is_none_or(|name| s.name == name))
        .cloned()
        .collect();
    if streams.is_empty() {
        eprintln!(
            "porter ohip: {}",
            match source {
                Some(name) => format!("no oracle_ohip_stream source named `{name}`"),
                None => "the configuration has no oracle_ohip_stream source".to_owned(),
            }
        );
        return ExitCode::FAILURE;
    }
    super::inspect::on_store(config, access, |_, store| work(streams, store))
}

/// `porter ohip status [--source NAME]`: per stream, the lease holder, the stored offset and
/// what its connector last published (state, last event, disconnects by close code). Exits 1
/// when a stream is stopped for good (a 4403, a refused configuration).
pub(super) fn status(path: Option<&Path>, source: Option<&str>) -> ExitCode {
    with_streams(path, source, Access::Read, |streams, store| async move {
        let mut stopped = Vec::new();
        for stream in streams {
            let offset = store
                .ohip_offset(&stream.name)
                .await
                .map_err(|e| e.to_string())?;
            let holder = store
                .ohip_lease_holder(&stream.lease_key())
                .await
                .map_err(|e| e.to_string())?;
            let published = store
                .ohip_status(&stream.name)
                .await
                .map_err(|e| e.to_string())?;
            let published: serde_json::Value = published
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            crate::outln!(
                "{}  chain={}  gateway={}",
                stream.name,
                stream.chain_code,
                stream.gateway_url
            );
            crate::outln!("  offset: {}", offset.as_deref().unwrap_or("(none stored)"));
            crate::outln!(
                "  holder: {}",
                holder
                    .as_deref()
                    .unwrap_or("(nobody: no instance holds the stream)")
            );
            if published.is_null() {
                crate::outln!("  state: (never published)");
                continue;
            }
            let text = |key: &str| match &published[key] {
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut state = text("state");
            if state == "stopped" {
                stopped.push(stream.name.clone());
                state = format!("{state} (code {})", text("code"));
            }
            if published.get("reason").is_some() {
                state = format!("{state}: {}", crate::remote_text::quote(&text("reason")));
            }
            if published.get("until").is_some() {
                state = format!("{state} until {} (after {})", text("until"), text("after"));
            }
            crate::outln!("  state: {state} (connected: {})", text("connected"));
            crate::outln!(
                "  last event: {}  events stored: {}",
                text("last_event_at"),
                text("events")
            );
            crate::outln!("  disconnects: {}", published["disconnects"]);
            if let Some(last) = published["last_error"].as_str() {
                crate::outln!("  last disconnect: {}", crate::remote_text::quote(last));
            }
            if let Some(gap) = published["gap"].as_str() {
                crate::outln!(
                    "  GAP: resumed past the stored offset ({gap}): events lost to retention"
                );
            }
        }
        if stopped.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "stopped for good until porter restarts: {} (fix the cause named above, then \
                 restart porter serve)",
                stopped.join(", ")
            ))
        }
    })
}

/// `porter ohip seek --source NAME --offset N`: the next subscribe replays from N (inclusive).
/// Running connectors use it at their next (re)connection; restart them to apply it now.
pub(super) fn seek(path: Option<&Path>, source: &str, offset: &str) -> ExitCode {
    if !is_offset(offset) {
        eprintln!("porter ohip seek: --offset must be 1 to 20 decimal digits, like 1827");
        return ExitCode::FAILURE;
    }
    let offset = offset.to_owned();
    with_streams(
        path,
        Some(source),
        Access::Write,
        |streams, store| async move {
            let stream = &streams[0];
            store
                .save_ohip_offset(&stream.name, &offset)
                .await
                .map_err(|e| e.to_string())?;
            crate::outln!(
                "{}: the next subscribe replays from offset {offset} (inclusive); events already \
             stored within dedupe_ttl are duplicates, not stored again",
                stream.name
            );
            Ok(())
        },
    )
}
