//! The raw archive: the exact bytes of authenticated requests, kept for a retention so that
//! `porter reprocess` can verify and normalize them again with today's code and secrets.
//!
//! What one entry ([`Archived`]) holds: the source's name, when the request was received,
//! its method, path, raw query (a URL-token vendor's token is in it; Twilio signs the whole
//! URL), the route suffix it matched, the headers its provider signs or reads (never all of
//! them: cookies and proxies' headers stay out), the body, and what porter made of it then
//! (the ids and types of its events, or the quarantine's reason).
//!
//! Where it lives:
//!
//! - **memory**: a queue beside the event log, oldest first, bounded by
//!   [`MEMORY_MAX_ENTRIES`] and `[archive] max_bytes` (bodies, headers, paths and queries;
//!   [`DEFAULT_MAX_BYTES`]), each entry dropped once its retention has passed (by the store's
//!   `Clock`).
//! - **Redis** (single and Cluster): one stream, `<prefix>:archive` (on a cluster
//!   `<prefix>:{archive}`, one slot) with its byte count beside it. Each append is one script
//!   call (`archive.lua`): the append, then the oldest entries out while they are past the
//!   retention (Redis's own clock, the one its entry ids come from) or the bytes are over
//!   `max_bytes`, then `PEXPIRE` of the retention, so a stream nobody appends to any more
//!   expires whole.
//! - **local**: the memory store's queue, every append and removal a journal record first
//!   (`archive` and `remove_archived`), the whole queue in each snapshot (`archived` frames),
//!   so it survives restarts like the events do.
//!
//! Ids are `<milliseconds>-<sequence>` everywhere (Redis's stream ids; the memory store
//! counts its own), stable for an entry's life.
//!
//! **For erasure** (CONTRACT §10), every store answers two operations:
//!
//! - [`Store::list_archived`]`(source: Option<&str>, since: Option<Timestamp>) ->
//!   Result<Vec<Archived>, StoreError>`: the archived requests still kept, oldest first,
//!   optionally of one source and received at or after `since`;
//! - [`Store::remove_archived`]`(ids: &[String]) -> Result<usize, StoreError>`: removes those
//!   entries, returns how many were there; ids already gone are ignored (idempotent).
//!
//! An archive write that fails is logged and counted
//! (`porter_archive_failures_total`), never turned into a different answer: see
//! [`crate::archive`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;

use serde::{Deserialize, Serialize};

use super::local::record::Record;
use super::redis::RedisStore;
use super::{Store, StoreError};

/// The most requests the memory store archives; the oldest go first.
pub const MEMORY_MAX_ENTRIES: usize = 10_000;
/// The most bytes (bodies, headers, paths, queries) a store archives unless `[archive]
/// max_bytes` says otherwise; the oldest go first.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// One archived request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// Assigned by the store (`<ms>-<seq>`); empty before it is stored.
    pub id: String,
    pub source: String,
    pub received_at: Timestamp,
    pub method: String,
    /// The route suffix that matched (`""`, `"/status"`).
    pub endpoint: String,
    /// The path exactly as received.
    pub path: String,
    /// The raw query, exactly as received (may hold a URL token).
    pub query: Option<String>,
    /// The headers the provider signs or reads, lower-case names, in order.
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    pub outcome: ArchivedOutcome,
}

/// What porter made of an archived request when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivedOutcome {
    /// Its events: id and CloudEvents type of each, in order.
    Events(Vec<(String, String)>),
    /// Authentic but unparseable: quarantined, for this reason.
    Quarantined(String),
}

impl Archived {
    /// The bytes this entry holds (body, headers, path and query), for the bound.
    pub fn size(&self) -> usize {
        self.body.len()
            + self.path.len()
            + self.query.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

/// The memory store's archive.
#[derive(Debug)]
pub struct MemoryArchive {
    inner: Mutex<MemoryInner>,
    /// `[archive] max_bytes`.
    max_bytes: std::sync::atomic::AtomicUsize,
}

impl Default for MemoryArchive {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            max_bytes: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_BYTES),
        }
    }
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Entries with the time (ms) each expires at, oldest first.
    entries: VecDeque<(i64, Archived)>,
    bytes: usize,
    /// The last id's milliseconds and sequence.
    last: (i64, u64),
}

impl MemoryInner {
    fn expire(&mut self, now_ms: i64) {
        while let Some((expires, _)) = self.entries.front() {
            if *expires > now_ms {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, oldest)) = self.entries.pop_front() {
            self.bytes = self.bytes.saturating_sub(oldest.size());
        }
    }
}

impl MemoryArchive {
    /// Bounds the archive to `max_bytes` (from the next insert on).
    pub fn set_max_bytes(&self, max_bytes: usize) {
        self.max_bytes
            .store(max_bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `item` (its id assigned here), kept for `retention` after `now_ms`.
    #[cfg(test)]
    pub fn append(&self, mut item: Archived, retention: Duration, now_ms: i64) -> String {
        item.id = self.reserve(now_ms);
        let id = item.id.clone();
        self.insert(item, expiry(now_ms, retention), now_ms);
        id
    }

    /// The next id, at `now_ms` (the local store writes it to its journal before applying).
    pub fn reserve(&self, now_ms: i64) -> String {
        let mut inner = self.lock();
        let ms = now_ms.max(inner.last.0);
        let seq = if ms == inner.last.0 {
            inner.last.1 + 1
        } else {
            0
        };
        inner.last = (ms, seq);
        format!("{ms}-{seq}")
    }

    /// Keeps `item`, whose id is assigned, until `expires`; the oldest go first beyond the
    /// bounds.
    pub fn insert(&self, item: Archived, expires: i64, now_ms: i64) {
        let mut inner = self.lock();
        inner.expire(now_ms);
        if let Some((Ok(ms), Ok(seq))) = item
            .id
            .split_once('-')
            .map(|(ms, seq)| (ms.parse::<i64>(), seq.parse::<u64>()))
        {
            inner.last = inner.last.max((ms, seq));
        }
        inner.bytes += item.size();
        inner.entries.push_back((expires, item));
        let max_bytes = self.max_bytes.load(std::sync::atomic::Ordering::Relaxed);
        while inner.entries.len() > 1
            && (inner.entries.len() > MEMORY_MAX_ENTRIES || inner.bytes > max_bytes)
        {
            inner.pop_front();
        }
    }

    /// Every entry with its expiry, oldest first (the local store's snapshot).
    pub fn entries(&self) -> Vec<(i64, Archived)> {
        self.lock().entries.iter().cloned().collect()
    }

    pub fn list(
        &self,
        source: Option<&str>,
        since: Option<Timestamp>,
        now_ms: i64,
    ) -> Vec<Archived> {
        let mut inner = self.lock();
        inner.expire(now_ms);
        inner
            .entries
            .iter()
            // Expiries are in order unless the retention changed between runs of a local
            // store: the front alone is not enough then.
            .filter(|(expires, _)| *expires > now_ms)
            .map(|(_, item)| item)
            .filter(|item| wanted(item, source, since))
            .cloned()
            .collect()
    }

    pub fn remove(&self, ids: &[String]) -> usize {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|(_, item)| !ids.contains(&item.id));
        let removed = before - inner.entries.len();
        inner.bytes = inner.entries.iter().map(|(_, item)| item.size()).sum();
        removed
    }
}

fn expiry(now_ms: i64, retention: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

fn wanted(item: &Archived, source: Option<&str>, since: Option<Timestamp>) -> bool {
    source.is_none_or(|source| item.source == source)
        && since.is_none_or(|since| item.received_at >= since)
}

impl Store {
    /// Archives an authenticated request for `retention`; returns its id, or `None` when an
    /// erasure removed one of its events or its body (it is then not kept: see
    /// [`super::erase`]).
    pub async fn archive(
        &self,
        item: Archived,
        retention: Duration,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(memory) => {
                let now = memory.now_ms();
                let mut item = item;
                item.id = memory.raw_archive().reserve(now);
                let id = item.id.clone();
                Ok(memory
                    .archive_unless_erased(item, expiry(now, retention))
                    .then_some(id))
            }
            Store::Local(local) => {
                let memory = local.memory();
                let now = memory.now_ms();
                // Checked before the bytes reach the journal; applying checks again.
                let tombstones = super::erase::archived_tombstones(&item);
                if !memory.erased_among(&tombstones).is_empty() {
                    return Ok(None);
                }
                let mut item = item;
                item.id = memory.raw_archive().reserve(now);
                let id = item.id.clone();
                let expires = expiry(now, retention);
                local.write(Record::Archive { expires, item }).await?;
                Ok(Some(id))
            }
            Store::Redis(redis) => redis_append(redis, &item, retention).await,
        }
    }

    /// The archived requests still kept, oldest first: of `source` if given, received at or
    /// after `since` if given.
    pub async fn list_archived(
        &self,
        source: Option<&str>,
        since: Option<Timestamp>,
    ) -> Result<Vec<Archived>, StoreError> {
        match self {
            Store::Memory(memory) => Ok(memory.raw_archive().list(source, since, memory.now_ms())),
            Store::Local(local) => {
                let memory = local.memory();
                Ok(memory.raw_archive().list(source, since, memory.now_ms()))
            }
            Store::Redis(redis) => redis_list(redis, source, since).await,
        }
    }

    /// Removes the archived requests `ids`; returns how many were still there. Idempotent.
    pub async fn remove_archived(&self, ids: &[String]) -> Result<usize, StoreError> {
        match self {
            Store::Memory(memory) => Ok(memory.raw_archive().remove(ids)),
            Store::Local(local) => {
                let present: Vec<String> = {
                    let archive = local.memory().raw_archive();
                    let inner = archive.lock();
                    ids.iter()
                        .filter(|id| inner.entries.iter().any(|(_, item)| &item.id == *id))
                        .cloned()
                        .collect()
                };
                if present.is_empty() {
                    return Ok(0);
                }
                let count = present.len();
                local.write(Record::RemoveArchived(present)).await?;
                Ok(count)
            }
            Store::Redis(redis) => redis_remove(redis, ids).await,
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// `archive.lua`, hashed once.
static ARCHIVE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("redis/archive.lua")));

/// A header's field name in a stream entry.
const HEADER_FIELD: &str = "h:";

async fn redis_append(
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
    let tombstones = super::erase::archived_tombstones(item);
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
    call.arg("expires")
        .arg(expiry(Timestamp::now().as_millisecond(), retention));
    call.arg("body").arg(item.body.as_ref());
    let mut connection = redis.connection().await?;
    call.invoke_async::<Option<String>>(&mut connection)
        .await
        .map_err(unavailable)
}

type RawEntry = (String, Vec<(String, Vec<u8>)>);

async fn redis_list(
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
    let now_ms = Timestamp::now().as_millisecond();
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
            .await
            .map_err(unavailable)?;
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
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("redis/archive_remove.lua")));

async fn redis_remove(redis: &RedisStore, ids: &[String]) -> Result<usize, StoreError> {
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
        .await
        .map_err(unavailable)?;
    if let Some(legacy) = layout.legacy_archive() {
        removed += redis::cmd("XDEL")
            .arg(legacy)
            .arg(ids)
            .query_async::<usize>(&mut connection)
            .await
            .map_err(unavailable)?;
    }
    Ok(removed)
}

/// An archived request as the local store writes it: a journal record and a snapshot frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedWire {
    id: String,
    source: String,
    /// Unix milliseconds.
    received_at: i64,
    method: String,
    endpoint: String,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// Names and base64 values.
    headers: Vec<(String, String)>,
    /// Base64.
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events: Option<Vec<(String, String)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quarantined: Option<String>,
    /// When it leaves the archive, Unix milliseconds.
    expires: i64,
}

impl ArchivedWire {
    pub fn new(item: &Archived, expires: i64) -> Self {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (events, quarantined) = match &item.outcome {
            ArchivedOutcome::Events(events) => (Some(events.clone()), None),
            ArchivedOutcome::Quarantined(reason) => (None, Some(reason.clone())),
        };
        Self {
            id: item.id.clone(),
            source: item.source.clone(),
            received_at: item.received_at.as_millisecond(),
            method: item.method.clone(),
            endpoint: item.endpoint.clone(),
            path: item.path.clone(),
            query: item.query.clone(),
            headers: item
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), b64.encode(value)))
                .collect(),
            body: b64.encode(&item.body),
            events,
            quarantined,
            expires,
        }
    }

    /// The entry and its expiry.
    pub fn into_parts(self) -> Result<(Archived, i64), String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |text: &str| b64.decode(text).map(Bytes::from).map_err(|e| e.to_string());
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| Ok((name.clone(), decode(value)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let outcome = match (self.events, self.quarantined) {
            (_, Some(reason)) => ArchivedOutcome::Quarantined(reason),
            (events, None) => ArchivedOutcome::Events(events.unwrap_or_default()),
        };
        let item = Archived {
            received_at: Timestamp::from_millisecond(self.received_at)
                .map_err(|e| e.to_string())?,
            body: decode(&self.body)?,
            id: self.id,
            source: self.source,
            method: self.method,
            endpoint: self.endpoint,
            path: self.path,
            query: self.query,
            headers,
            outcome,
        };
        Ok((item, self.expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: &str, at_ms: i64, body: &[u8]) -> Archived {
        Archived {
            id: String::new(),
            source: source.to_owned(),
            received_at: Timestamp::from_millisecond(at_ms).expect("time"),
            method: "POST".to_owned(),
            endpoint: String::new(),
            path: "/p".to_owned(),
            query: None,
            headers: vec![("x-signature".to_owned(), Bytes::from_static(b"sig"))],
            body: Bytes::copy_from_slice(body),
            outcome: ArchivedOutcome::Events(vec![("evt_1".to_owned(), "unknown".to_owned())]),
        }
    }

    #[test]
    fn memory_ids_are_ordered_and_entries_expire_by_time() {
        let archive = MemoryArchive::default();
        let minute = Duration::from_secs(60);
        let a = archive.append(item("a", 1_000, b"1"), minute, 1_000);
        let b = archive.append(item("b", 1_000, b"2"), minute, 1_000);
        assert_eq!((a.as_str(), b.as_str()), ("1000-0", "1000-1"));
        assert_eq!(archive.list(None, None, 1_000).len(), 2);
        assert_eq!(archive.list(Some("b"), None, 1_000)[0].id, b);
        assert!(archive.list(None, None, 61_000).is_empty());
    }

    #[test]
    fn an_entry_past_its_expiry_is_never_listed_even_behind_a_longer_one() {
        let archive = MemoryArchive::default();
        let mut long = item("s", 0, b"1");
        long.id = "1-0".to_owned();
        archive.insert(long, 10_000, 0);
        let mut short = item("s", 0, b"2");
        short.id = "2-0".to_owned();
        archive.insert(short, 100, 0);
        let listed = archive.list(None, None, 500);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "1-0");
    }

    #[test]
    fn memory_is_bounded_by_entries_and_removal_is_idempotent() {
        let archive = MemoryArchive::default();
        let day = Duration::from_secs(86_400);
        for i in 0..(MEMORY_MAX_ENTRIES + 5) {
            archive.append(item("s", 0, b"x"), day, i64::try_from(i).unwrap_or(0));
        }
        let kept = archive.list(None, None, 0);
        assert_eq!(kept.len(), MEMORY_MAX_ENTRIES);
        assert_eq!(kept[0].id, "5-0");
        let ids = vec!["5-0".to_owned(), "nope".to_owned()];
        assert_eq!(archive.remove(&ids), 1);
        assert_eq!(archive.remove(&ids), 0);
    }

    #[test]
    fn the_local_stores_wire_form_round_trips() {
        let mut original = item("s", 1_234, b"\x00\xffbody");
        original.id = "1234-7".to_owned();
        original.query = Some("token=t".to_owned());
        let (back, expires) = ArchivedWire::new(&original, 99)
            .into_parts()
            .expect("decodes");
        assert_eq!((back, expires), (original.clone(), 99));
        original.outcome = ArchivedOutcome::Quarantined("not JSON".to_owned());
        let json = serde_json::to_string(&ArchivedWire::new(&original, 5)).expect("json");
        let wire: ArchivedWire = serde_json::from_str(&json).expect("parses");
        assert_eq!(wire.into_parts().expect("decodes").0, original);
    }

    #[test]
    fn reserved_ids_survive_a_replay() {
        let archive = MemoryArchive::default();
        let mut entry = item("s", 0, b"x");
        entry.id = "5000-3".to_owned();
        archive.insert(entry, 10_000, 0);
        assert_eq!(archive.reserve(4_000), "5000-4", "never an id already used");
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let archive = MemoryArchive::default();
        let big = vec![0u8; DEFAULT_MAX_BYTES / 2];
        for _ in 0..3 {
            archive.append(item("s", 0, &big), Duration::from_secs(60), 0);
        }
        assert_eq!(archive.list(None, Some(Timestamp::UNIX_EPOCH), 0).len(), 1);
    }
}
