//! The Redis store's raw archive (single and Cluster): one stream with its byte count and the
//! erasures' tombstones beside it, in one slot. Each append is one script call
//! (`archive.lua`): refused when a tombstone names what it holds, else appended, then the
//! oldest entries out while they are past the retention (Redis's clock) or the bytes are over
//! the bound, then `PEXPIRE` of the retention.

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;

use super::RedisStore;
use crate::store::StoreError;
use crate::store::archive::{Archived, ArchivedOutcome, expiry, wanted};

/// `archive.lua`, hashed once.
static ARCHIVE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("archive.lua")));

/// A header's field name in a stream entry.
const HEADER_FIELD: &str = "h:";

pub(crate) async fn redis_append(
    redis: &RedisStore,
    item: &Archived,
    retention: Duration,
) -> Result<Option<String>, StoreError> {
    let retention_ms = u64::try_from(retention.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let layout = redis.layout();
    let mut call = ARCHIVE_SCRIPT.key(layout.archive());
    call.key(layout.archive_bytes());
    call.key(layout.archive_tombstones());
    call.arg(retention_ms);
    call.arg(redis.archive_max_bytes());
    call.arg(item.size());
    call.arg(redis.now_ms());
    let tombstones = crate::store::erase::archived_tombstones(item);
    call.arg(tombstones.len());
    for tombstone in &tombstones {
        call.arg(tombstone);
    }
    call.arg("source").arg(&item.source);
    call.arg("received_at")
        .arg(item.received_at.as_millisecond());
    call.arg("method").arg(&item.method);
    call.arg("endpoint").arg(&item.endpoint);
    call.arg("path").arg(&item.path);
    if let Some(query) = &item.query {
        call.arg("query").arg(query);
    }
    for (name, value) in &item.headers {
        call.arg(format!("{HEADER_FIELD}{name}"))
            .arg(value.as_ref());
    }
    match &item.outcome {
        ArchivedOutcome::Events(events) => {
            let text: Vec<String> = events.iter().map(|(id, t)| format!("{id} {t}")).collect();
            call.arg("events").arg(text.join("\n"));
        }
        ArchivedOutcome::Quarantined(reason) => {
            call.arg("quarantined").arg(reason);
        }
    }
    call.arg("expires").arg(expiry(redis.now_ms(), retention));
    call.arg("body").arg(item.body.as_ref());
    let mut connection = redis.connection().await?;
    call.invoke_async::<Option<String>>(&mut connection)
        .await
        .map_err(StoreError::from)
}

type RawEntry = (String, Vec<(String, Vec<u8>)>);

pub(crate) async fn redis_list(
    redis: &RedisStore,
    source: Option<&str>,
    since: Option<Timestamp>,
) -> Result<Vec<Archived>, StoreError> {
    let mut found = Vec::new();
    if let Some(legacy) = redis.layout().legacy_archive() {
        found = redis_list_key(redis, &legacy, source, since).await?;
    }
    found.extend(redis_list_key(redis, &redis.layout().archive(), source, since).await?);
    Ok(found)
}

/// The entries of one archive stream, leaving out those past the retention that a trim has
/// not taken yet.
async fn redis_list_key(
    redis: &RedisStore,
    key: &str,
    source: Option<&str>,
    since: Option<Timestamp>,
) -> Result<Vec<Archived>, StoreError> {
    // Entry ids are Redis's clock at the append, received-at porter's: start a minute early
    // and filter by received-at.
    let first = since.map_or_else(
        || "-".to_owned(),
        |since| {
            since
                .as_millisecond()
                .saturating_sub(60_000)
                .max(0)
                .to_string()
        },
    );
    let now_ms = redis.now_ms();
    let mut connection = redis.connection().await?;
    let mut found = Vec::new();
    let mut cursor = first;
    loop {
        let page: Vec<RawEntry> = redis::cmd("XRANGE")
            .arg(key)
            .arg(&cursor)
            .arg("+")
            .arg("COUNT")
            .arg(500)
            .query_async(&mut connection)
            .await?;
        let Some((last, _)) = page.last() else { break };
        cursor = format!("({last}");
        let full = page.len() == 500;
        for entry in page {
            if let Some(item) = from_entry(entry, now_ms).filter(|item| wanted(item, source, since))
            {
                found.push(item);
            }
        }
        if !full {
            break;
        }
    }
    Ok(found)
}

/// An entry as stored; `None` for one that is not an archived request (never written so), or
/// one past its expiry at `now_ms` that no append has trimmed yet.
fn from_entry((id, fields): RawEntry, now_ms: i64) -> Option<Archived> {
    let mut item = Archived {
        id,
        source: String::new(),
        received_at: Timestamp::UNIX_EPOCH,
        method: String::new(),
        endpoint: String::new(),
        path: String::new(),
        query: None,
        headers: Vec::new(),
        body: Bytes::new(),
        outcome: ArchivedOutcome::Events(Vec::new()),
    };
    let text = |value: Vec<u8>| String::from_utf8(value).ok();
    for (name, value) in fields {
        if let Some(header) = name.strip_prefix(HEADER_FIELD) {
            item.headers.push((header.to_owned(), Bytes::from(value)));
            continue;
        }
        match name.as_str() {
            "source" => item.source = text(value)?,
            "received_at" => {
                let ms: i64 = text(value)?.parse().ok()?;
                item.received_at = Timestamp::from_millisecond(ms).ok()?;
            }
            "method" => item.method = text(value)?,
            "endpoint" => item.endpoint = text(value)?,
            "path" => item.path = text(value)?,
            "query" => item.query = Some(text(value)?),
            "events" => {
                let events = text(value)?
                    .lines()
                    .filter_map(|line| line.split_once(' '))
                    .map(|(id, t)| (id.to_owned(), t.to_owned()))
                    .collect();
                item.outcome = ArchivedOutcome::Events(events);
            }
            "quarantined" => item.outcome = ArchivedOutcome::Quarantined(text(value)?),
            "expires" => {
                let expires: i64 = text(value)?.parse().ok()?;
                if expires <= now_ms {
                    return None;
                }
            }
            "body" => item.body = Bytes::from(value),
            _ => {}
        }
    }
    Some(item)
}

/// `archive_remove.lua`, hashed once.
static REMOVE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("archive_remove.lua")));

pub(crate) async fn redis_remove(redis: &RedisStore, ids: &[String]) -> Result<usize, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let layout = redis.layout();
    let mut connection = redis.connection().await?;
    let mut removed: usize = REMOVE_SCRIPT
        .key(layout.archive())
        .key(layout.archive_bytes())
        .arg(ids)
        .invoke_async(&mut connection)
        .await?;
    if let Some(legacy) = layout.legacy_archive() {
        removed += redis::cmd("XDEL")
            .arg(legacy)
            .arg(ids)
            .query_async::<usize>(&mut connection)
            .await?;
    }
    Ok(removed)
}
