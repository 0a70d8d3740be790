//! What the local store writes to disk: framed records, each one change of state.
//!
//! A frame is `length (u32 LE) | CRC-32 of the payload (u32 LE) | payload`, the payload one
//! JSON object. The journal is a sequence of frames; a snapshot is too. A frame is either
//! whole and its CRC matches, or it is the torn tail of a write that never reached the disk
//! (the process or the machine stopped before `fdatasync` returned): reading stops there, and
//! none of the requests in that write were answered 2xx.
//!
//! JSON rather than a binary encoding: records are read once, at start-up, and a journal an
//! operator can read with `strings` is worth a few microseconds. The event JSON inside an
//! `enqueue` record is written verbatim (not as an escaped string), so appending costs a copy.

use std::io::Write;
use std::sync::Arc;

use porter_providers::Reply;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::Quarantined;
use crate::store::erase::ErasureRecord;
use crate::store::memory::{Item, Recent};
use crate::store::schedule::{Attempt, Job, Next};

/// The largest frame read back: anything longer is a torn or corrupt length.
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;
/// Length and CRC.
pub(crate) const HEADER: usize = 8;

/// Why a whole frame (its checksum matches) cannot be read back: written by a porter of
/// another version, or damaged in a way its checksum did not catch.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreadable {
    #[error("a frame is not the JSON expected: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a body is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a time is out of range: {0}")]
    Time(#[from] jiff::Error),
    #[error("snapshot version {found}, this porter reads {reads}")]
    Version { found: u32, reads: u32 },
    /// Frames in an order porter never writes.
    #[error("{0}")]
    Order(String),
}

/// One change of the local store's state, in the order it was made.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// New events and their dedupe keys, remembered until `expires` with `reply`: one
    /// request's worth, all or nothing.
    Enqueue {
        now: i64,
        expires: i64,
        reply: Arc<Reply>,
        items: Vec<Item>,
    },
    /// A delivery attempt and what became of the job.
    Finish {
        destination: String,
        /// The job's sequence number.
        entry: String,
        attempt: Attempt,
        next: Next,
    },
    /// A dead letter back in its destination's schedule.
    Replay {
        id: u64,
        now: i64,
    },
    Pause {
        destination: String,
        paused: bool,
    },
    Offset {
        source: String,
        offset: String,
    },
    Quarantine(Quarantined),
    /// Removes the events with these ids (and their jobs, dead letters and attempts) and the
    /// quarantined bodies with these references: an erasure, by ids, never by the person's
    /// value. The writer then starts a new generation, so no file keeps what was erased.
    /// `tombstones` (ids and body digests) are remembered until `until` (Unix ms) so that
    /// what was erased cannot come back.
    Erase {
        events: Vec<String>,
        quarantined: Vec<String>,
        tombstones: Vec<String>,
        until: i64,
    },
    /// An erasure's audit record.
    Erasure(ErasureRecord),
    /// Nothing to apply: wakes the writer to start a snapshot an erasure is waiting for.
    Compact,
    /// A request kept in the raw archive until `expires` (its id assigned).
    Archive {
        expires: i64,
        item: crate::store::Archived,
    },
    /// Archived requests removed by id.
    RemoveArchived(Vec<String>),
}

/// [`Next`] as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireNext {
    Done,
    Retry { due_ms: i64 },
    DeadLettered,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireEvent {
    key: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    event: Box<RawValue>,
}

/// Records as written; externally tagged (`{"enqueue": {…}}`), which is what lets the event
/// be a [`RawValue`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    Enqueue {
        now: i64,
        expires: i64,
        reply: Reply,
        events: Vec<WireEvent>,
    },
    Finish {
        destination: String,
        entry: String,
        attempt: Attempt,
        next: WireNext,
    },
    Replay {
        id: u64,
        now: i64,
    },
    Pause {
        destination: String,
        paused: bool,
    },
    Offset {
        source: String,
        offset: String,
    },
    Quarantine {
        source: String,
        reason: String,
        received_at: jiff::Timestamp,
        content_type: Option<String>,
        /// Base64: a quarantined body need not be text.
        body: String,
    },
    Erase {
        events: Vec<String>,
        quarantined: Vec<String>,
        /// Absent in journals written before tombstones were kept.
        #[serde(default)]
        tombstones: Vec<String>,
        #[serde(default)]
        until: i64,
    },
    Erasure(ErasureRecord),
    Compact {},
    Archive(crate::store::local::archive::ArchivedWire),
    RemoveArchived {
        ids: Vec<String>,
    },
}

/// Appends `payload`'s frame to `out`; `payload` writes the JSON.
pub(crate) fn frame(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    payload(out);
    let body = &out[start + HEADER..];
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

impl Record {
    /// Appends this record's frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        frame(out, |out| match self {
            Record::Enqueue {
                now,
                expires,
                reply,
                items,
            } => encode_enqueue(out, *now, *expires, reply, items),
            other => {
                let wire = other.to_wire();
                // Serialising these types into a Vec cannot fail.
                let _ = serde_json::to_writer(out, &wire);
            }
        });
    }

    fn to_wire(&self) -> Wire {
        use base64::Engine as _;
        match self {
            Record::Enqueue { .. } => unreachable!("enqueue records are written by hand"),
            Record::Finish {
                destination,
                entry,
                attempt,
                next,
            } => Wire::Finish {
                destination: destination.clone(),
                entry: entry.clone(),
                attempt: attempt.clone(),
                next: match *next {
                    Next::Done => WireNext::Done,
                    Next::Retry { due_ms } => WireNext::Retry { due_ms },
                    Next::DeadLettered => WireNext::DeadLettered,
                },
            },
            Record::Replay { id, now } => Wire::Replay { id: *id, now: *now },
            Record::Pause {
                destination,
                paused,
            } => Wire::Pause {
                destination: destination.clone(),
                paused: *paused,
            },
            Record::Offset { source, offset } => Wire::Offset {
                source: source.clone(),
                offset: offset.clone(),
            },
            Record::Quarantine(q) => Wire::Quarantine {
                source: q.source.clone(),
                reason: q.reason.clone(),
                received_at: q.received_at,
                content_type: q.content_type.clone(),
                body: base64::engine::general_purpose::STANDARD.encode(&q.body),
            },
            Record::Erase {
                events,
                quarantined,
                tombstones,
                until,
            } => Wire::Erase {
                events: events.clone(),
                quarantined: quarantined.clone(),
                tombstones: tombstones.clone(),
                until: *until,
            },
            Record::Erasure(record) => Wire::Erasure(record.clone()),
            Record::Compact => Wire::Compact {},
            Record::Archive { expires, item } => Wire::Archive(
                crate::store::local::archive::ArchivedWire::new(item, *expires),
            ),
            Record::RemoveArchived(ids) => Wire::RemoveArchived { ids: ids.clone() },
        }
    }

    /// The record in one frame's payload.
    pub(crate) fn decode(payload: &[u8]) -> Result<Record, Unreadable> {
        use base64::Engine as _;
        let wire: Wire = serde_json::from_slice(payload)?;
        Ok(match wire {
            Wire::Enqueue {
                now,
                expires,
                reply,
                events,
            } => Record::Enqueue {
                now,
                expires,
                reply: Arc::new(reply),
                items: events
                    .into_iter()
                    .map(|e| Item {
                        key: Arc::from(e.key),
                        event: Recent {
                            id: e.id,
                            source: e.source,
                            event_type: e.event_type.into(),
                            json: Arc::from(e.event.get()),
                        },
                    })
                    .collect(),
            },
            Wire::Finish {
                destination,
                entry,
                attempt,
                next,
            } => Record::Finish {
                destination,
                entry,
                attempt,
                next: match next {
                    WireNext::Done => Next::Done,
                    WireNext::Retry { due_ms } => Next::Retry { due_ms },
                    WireNext::DeadLettered => Next::DeadLettered,
                },
            },
            Wire::Replay { id, now } => Record::Replay { id, now },
            Wire::Pause {
                destination,
                paused,
            } => Record::Pause {
                destination,
                paused,
            },
            Wire::Offset { source, offset } => Record::Offset { source, offset },
            Wire::Quarantine {
                source,
                reason,
                received_at,
                content_type,
                body,
            } => Record::Quarantine(Quarantined {
                source,
                reason,
                received_at,
                content_type,
                body: base64::engine::general_purpose::STANDARD
                    .decode(body)?
                    .into(),
            }),
            Wire::Erase {
                events,
                quarantined,
                tombstones,
                until,
            } => Record::Erase {
                events,
                quarantined,
                tombstones,
                until,
            },
            Wire::Erasure(record) => Record::Erasure(record),
            Wire::Compact {} => Record::Compact,
            Wire::Archive(wire) => {
                let (item, expires) = wire.into_parts()?;
                Record::Archive { expires, item }
            }
            Wire::RemoveArchived { ids } => Record::RemoveArchived(ids),
        })
    }

    /// A job handle for [`crate::store::MemorySchedule::finish_now`] (which reads only the
    /// entry).
    pub(crate) fn job(entry: &str) -> Job {
        Job {
            entry: entry.to_owned(),
            shard: 0,
            event_id: String::new(),
            event: None,
            attempts: 0,
            leased_until: 0,
        }
    }
}

/// `{"enqueue":{"now":…,"expires":…,"reply":…,"events":[{…,"event":<the JSON as is>}]}}`.
fn encode_enqueue(out: &mut Vec<u8>, now: i64, expires: i64, reply: &Reply, items: &[Item]) {
    // Writing into a Vec cannot fail; strings go through serde_json for their escaping.
    let _ = write!(
        out,
        "{{\"enqueue\":{{\"now\":{now},\"expires\":{expires},\"reply\":"
    );
    let _ = serde_json::to_writer(&mut *out, reply);
    out.extend_from_slice(b",\"events\":[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        let _ = serde_json::to_writer(&mut *out, &*item.key);
        out.extend_from_slice(b",\"id\":");
        let _ = serde_json::to_writer(&mut *out, &item.event.id);
        out.extend_from_slice(b",\"source\":");
        let _ = serde_json::to_writer(&mut *out, &item.event.source);
        out.extend_from_slice(b",\"type\":");
        let _ = serde_json::to_writer(&mut *out, &*item.event.event_type);
        out.extend_from_slice(b",\"event\":");
        out.extend_from_slice(item.event.json.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}}");
}

/// How reading a file of frames ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Every byte was a whole frame.
    Clean,
    /// A torn write at this offset, with nothing whole after it: the bytes from here on were
    /// never acknowledged and are cut off.
    Torn(u64),
    /// A bad frame at this offset with whole frames after it: the file is damaged, not torn.
    Corrupt(u64),
}

/// Calls `visit` with each whole frame's payload, in order, and says how the file ended.
pub(crate) fn read_frames<E>(
    bytes: &[u8],
    mut visit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<End, E> {
    let mut at = 0usize;
    while at < bytes.len() {
        match whole_frame(bytes, at) {
            Some(payload) => {
                visit(payload)?;
                at += HEADER + payload.len();
            }
            None => {
                let after = (at + 1..bytes.len()).any(|next| whole_frame(bytes, next).is_some());
                let offset = at as u64;
                return Ok(if after {
                    End::Corrupt(offset)
                } else {
                    End::Torn(offset)
                });
            }
        }
    }
    Ok(End::Clean)
}

/// Like [`read_frames`], from `reader`, holding one frame in memory at a time (a snapshot of
/// 2 GB is not read into a 2 GB buffer). Stops at the first frame that is not whole
/// ([`End::Torn`] with its offset); whether whole frames follow is not looked for, so a
/// damaged frame is reported as torn: for snapshots, which count only when they end with
/// their `end` frame, either is "incomplete". An error reading is the outer one.
pub(crate) fn read_frames_from<E>(
    mut reader: impl std::io::Read,
    mut visit: impl FnMut(&[u8]) -> Result<(), E>,
) -> std::io::Result<Result<End, E>> {
    let mut offset = 0u64;
    // Grown to the largest frame so far and reused: no allocation or zeroing per frame.
    let mut buffer = Vec::new();
    loop {
        let mut header = [0u8; HEADER];
        match read_full(&mut reader, &mut header)? {
            0 => return Ok(Ok(End::Clean)),
            HEADER => {}
            _ => return Ok(Ok(End::Torn(offset))),
        }
        let [a, b, c, d, e, f, g, h] = header;
        let length = u32::from_le_bytes([a, b, c, d]) as usize;
        let crc = u32::from_le_bytes([e, f, g, h]);
        if length == 0 || length > MAX_FRAME {
            return Ok(Ok(End::Torn(offset)));
        }
        if buffer.len() < length {
            buffer.resize(length, 0);
        }
        let payload = &mut buffer[..length];
        if read_full(&mut reader, payload)? < length || crc32fast::hash(payload) != crc {
            return Ok(Ok(End::Torn(offset)));
        }
        if let Err(error) = visit(payload) {
            return Ok(Err(error));
        }
        offset += (HEADER + length) as u64;
    }
}

/// Reads until `buf` is full or the reader ends; how many bytes were read.
fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The payload of the frame at `at`, if a whole one starts there.
fn whole_frame(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let header = bytes.get(at..at + HEADER)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if length == 0 || length > MAX_FRAME {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + length)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enqueue() -> Record {
        Record::Enqueue {
            now: 1,
            expires: 2,
            reply: Arc::new(Reply::text("ok")),
            items: vec![Item {
                key: "k\"1".into(),
                event: Recent {
                    id: "e1".into(),
                    source: "s".into(),
                    event_type: "message.received".into(),
                    json: Arc::from(r#"{"id":"e1","data":{"text":"héllo \"x\""}}"#),
                },
            }],
        }
    }

    /// The streaming reader agrees with the one over a buffer, frame by frame, on whole,
    /// cut and damaged input, read a few bytes at a time.
    #[test]
    fn frames_read_from_a_stream_as_from_a_buffer() {
        let mut whole = Vec::new();
        for _ in 0..3 {
            enqueue().encode(&mut whole);
        }
        let first = whole.len() / 3;
        let mut damaged = whole.clone();
        damaged[first + 12] ^= 1;
        let cases: [(&[u8], End); 5] = [
            (&whole, End::Clean),
            (&whole[..whole.len() - 1], End::Torn(2 * first as u64)),
            (&whole[..first + 3], End::Torn(first as u64)),
            (&damaged, End::Torn(first as u64)),
            (&[], End::Clean),
        ];
        for (bytes, expected) in cases {
            let mut buffered = Vec::new();
            let _ = read_frames(bytes, |p| {
                buffered.push(p.to_vec());
                Ok::<(), Unreadable>(())
            });
            let mut streamed = Vec::new();
            // Three bytes per read: frames and headers straddle reads.
            let reader = std::io::BufReader::with_capacity(3, bytes);
            let end = read_frames_from(reader, |p| {
                streamed.push(p.to_vec());
                Ok::<(), Unreadable>(())
            })
            .expect("no read error")
            .expect("every frame decodes");
            assert_eq!(end, expected);
            assert_eq!(streamed, buffered);
        }
        // What the visitor refuses is its error, not the reader's.
        let refused = read_frames_from(&whole[..], |_| Err("no")).expect("no read error");
        assert_eq!(refused, Err("no"));
    }

    #[test]
    fn records_read_back_as_written() {
        let mut out = Vec::new();
        enqueue().encode(&mut out);
        Record::Pause {
            destination: "d".into(),
            paused: true,
        }
        .encode(&mut out);
        let mut read = Vec::new();
        let end = read_frames(&out, |p| {
            read.push(Record::decode(p)?);
            Ok::<(), Unreadable>(())
        })
        .expect("read");
        assert_eq!(end, End::Clean);
        let Record::Enqueue { items, .. } = &read[0] else {
            panic!("{read:?}")
        };
        assert_eq!(&*items[0].key, "k\"1");
        assert_eq!(
            &*items[0].event.json,
            r#"{"id":"e1","data":{"text":"héllo \"x\""}}"#
        );
        assert!(matches!(read[1], Record::Pause { paused: true, .. }));
    }

    #[test]
    fn a_torn_tail_is_told_from_damage_in_the_middle() {
        let mut out = Vec::new();
        enqueue().encode(&mut out);
        let first = out.len();
        enqueue().encode(&mut out);
        for cut in first + 1..out.len() {
            let end = read_frames(&out[..cut], |_| Ok::<(), Unreadable>(())).expect("read");
            assert_eq!(end, End::Torn(first as u64), "cut at {cut}");
        }
        let mut damaged = out.clone();
        damaged[10] ^= 0xff;
        let end = read_frames(&damaged, |_| Ok::<(), Unreadable>(())).expect("read");
        assert_eq!(end, End::Corrupt(0));
    }
}
