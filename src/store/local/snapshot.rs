//! Snapshots: the whole state of the local store at the start of a journal generation, so
//! that start-up reads one snapshot and one short journal instead of every record ever made.
//!
//! A snapshot is written to `snapshot-N.tmp`, synced, renamed to `snapshot-N.snap` and the
//! directory synced; it counts only if its last frame is `end` with the number of frames
//! before it. A crash while writing leaves a `.tmp` (ignored and removed) and the previous
//! snapshot with its journals, which still hold everything.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use porter_providers::Reply;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::record::{End, Unreadable, frame, read_frames_from};
use crate::store::erase::ErasureRecord;
use crate::store::memory::schedule::{DeadLetter, DestinationContents, SavedJob, ScheduleContents};
use crate::store::memory::{Contents, Recent, RememberedKey};
use crate::store::schedule::Attempt;
use crate::store::{Quarantined, StoreError};

const VERSION: u32 = 1;
/// How much of a snapshot is read at a time: frames are decoded as they come, so start-up
/// holds the state, not the file as well.
const READ_BUFFER: usize = 1024 * 1024;

/// A snapshot frame. Events are written as they are (not as escaped strings): writing and
/// reading them then costs a copy, not an escape and an unescape of every quote.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Snap {
    Header {
        version: u32,
        generation: u64,
    },
    Key {
        key: String,
        expires: i64,
        reply: Reply,
    },
    Recent {
        id: String,
        source: String,
        #[serde(rename = "type")]
        event_type: String,
        event: Box<RawValue>,
    },
    Quarantine {
        source: String,
        reason: String,
        received_at: jiff::Timestamp,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    Offset {
        source: String,
        offset: String,
    },
    Archived(crate::store::local::archive::ArchivedWire),
    Destination {
        name: String,
        paused: bool,
        next_seq: u64,
    },
    Job {
        destination: String,
        seq: u64,
        event_id: String,
        event: Box<RawValue>,
        due: i64,
        attempts: Vec<Attempt>,
    },
    Dead {
        destination: String,
        id: u64,
        event_id: String,
        event: Box<RawValue>,
        attempts: Vec<Attempt>,
    },
    Delivered {
        destination: String,
        event_id: String,
        attempts: Vec<Attempt>,
    },
    NextDead {
        id: u64,
    },
    Erasure(ErasureRecord),
    /// What an erasure removed, remembered until `until` (Unix ms).
    Tombstone {
        key: String,
        until: i64,
    },
    End {
        frames: u64,
    },
}

/// The fields of a frame written with its event as is.
#[derive(Serialize)]
struct RecentFields<'a> {
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
}

#[derive(Serialize)]
struct JobFields<'a> {
    destination: &'a str,
    seq: u64,
    event_id: &'a str,
    due: i64,
    attempts: &'a [Attempt],
}

#[derive(Serialize)]
struct DeadFields<'a> {
    destination: &'a str,
    id: u64,
    event_id: &'a str,
    attempts: &'a [Attempt],
}

mod erased {
    /// A serialisable set of fields, behind a reference of one type.
    pub(super) trait Fields {
        /// Writes the fields as one JSON object.
        fn write(&self, out: &mut Vec<u8>);
    }

    impl<T: serde::Serialize> Fields for T {
        fn write(&self, out: &mut Vec<u8>) {
            // Serialising these types into a Vec cannot fail.
            let _ = serde_json::to_writer(out, self);
        }
    }
}

/// The state a snapshot holds.
#[derive(Debug, Default)]
pub(super) struct State {
    pub store: Contents,
    pub schedule: ScheduleContents,
    /// The raw archive's entries with their expiry, oldest first.
    pub archive: Vec<(i64, crate::store::Archived)>,
    /// Erasures' tombstones with the time each is forgotten.
    pub tombstones: Vec<(String, i64)>,
}

/// Writes `state` as generation `generation`'s snapshot in `dir`; its size in bytes.
pub(super) fn write(dir: &Path, generation: u64, state: &State) -> std::io::Result<u64> {
    let temporary = dir.join(format!("snapshot-{generation:08}.tmp"));
    // A leftover (or planted) `.tmp` goes first: a link is removed, never followed.
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = super::private::open(
        &temporary,
        std::fs::OpenOptions::new().write(true).create_new(true),
    )?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let frames = std::cell::Cell::new(0u64);
    let buffer = std::cell::RefCell::new(Vec::new());
    let put = |snap: &Snap, out: &mut BufWriter<File>| -> std::io::Result<()> {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        frame(&mut buffer, |b| {
            let _ = serde_json::to_writer(b, snap);
        });
        frames.set(frames.get() + 1);
        out.write_all(&buffer)
    };
    // `{"<tag>":{<fields>,"event":<the JSON as is>}}`.
    let put_with_event = |tag: &str,
                          fields: &dyn erased::Fields,
                          event: &str,
                          out: &mut BufWriter<File>|
     -> std::io::Result<()> {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        frame(&mut buffer, |b| {
            b.extend_from_slice(b"{\"");
            b.extend_from_slice(tag.as_bytes());
            b.extend_from_slice(b"\":");
            fields.write(b);
            // The fields' object, reopened for the event.
            b.pop();
            b.extend_from_slice(b",\"event\":");
            b.extend_from_slice(event.as_bytes());
            b.extend_from_slice(b"}}");
        });
        frames.set(frames.get() + 1);
        out.write_all(&buffer)
    };
    put(
        &Snap::Header {
            version: VERSION,
            generation,
        },
        &mut out,
    )?;
    for key in &state.store.keys {
        put(
            &Snap::Key {
                key: key.key.to_string(),
                expires: key.expires,
                reply: Reply::clone(&key.reply),
            },
            &mut out,
        )?;
    }
    for recent in &state.store.recent {
        put_with_event(
            "recent",
            &RecentFields {
                id: &recent.id,
                source: &recent.source,
                event_type: &recent.event_type,
            },
            &recent.json,
            &mut out,
        )?;
    }
    for q in &state.store.quarantine {
        put(
            &Snap::Quarantine {
                source: q.source.clone(),
                reason: q.reason.clone(),
                received_at: q.received_at,
                content_type: q.content_type.clone(),
                body: q.body.to_vec(),
            },
            &mut out,
        )?;
    }
    for (expires, item) in &state.archive {
        put(
            &Snap::Archived(crate::store::local::archive::ArchivedWire::new(
                item, *expires,
            )),
            &mut out,
        )?;
    }
    for (source, offset) in &state.store.offsets {
        put(
            &Snap::Offset {
                source: source.clone(),
                offset: offset.clone(),
            },
            &mut out,
        )?;
    }
    for record in &state.store.erasures {
        put(&Snap::Erasure(record.clone()), &mut out)?;
    }
    for (key, until) in &state.tombstones {
        put(
            &Snap::Tombstone {
                key: key.clone(),
                until: *until,
            },
            &mut out,
        )?;
    }
    put(
        &Snap::NextDead {
            id: state.schedule.next_dead,
        },
        &mut out,
    )?;
    for destination in &state.schedule.destinations {
        put(
            &Snap::Destination {
                name: destination.name.clone(),
                paused: destination.paused,
                next_seq: destination.next_seq,
            },
            &mut out,
        )?;
        for job in &destination.jobs {
            put_with_event(
                "job",
                &JobFields {
                    destination: &destination.name,
                    seq: job.seq,
                    event_id: &job.event_id,
                    due: job.due,
                    attempts: &job.attempts,
                },
                &job.event,
                &mut out,
            )?;
        }
        for dead in &destination.dead {
            put_with_event(
                "dead",
                &DeadFields {
                    destination: &destination.name,
                    id: dead.id,
                    event_id: &dead.event_id,
                    attempts: &dead.attempts,
                },
                &dead.event,
                &mut out,
            )?;
        }
        for (event_id, attempts) in &destination.delivered {
            put(
                &Snap::Delivered {
                    destination: destination.name.clone(),
                    event_id: event_id.clone(),
                    attempts: attempts.clone(),
                },
                &mut out,
            )?;
        }
    }
    let count = frames.get();
    put(&Snap::End { frames: count }, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    drop(file);
    std::fs::rename(&temporary, snapshot_path(dir, generation))?;
    super::files::sync_dir(dir)?;
    Ok(size)
}

pub(super) fn snapshot_path(dir: &Path, generation: u64) -> std::path::PathBuf {
    dir.join(format!("snapshot-{generation:08}.snap"))
}

/// Reads generation `generation`'s snapshot; `None` when it is incomplete or damaged (then
/// an older one, with its journals, holds the state).
pub(super) fn read(dir: &Path, generation: u64) -> Result<Option<State>, StoreError> {
    let path = snapshot_path(dir, generation);
    let failed = |e| StoreError::io(format!("cannot read {}", path.display()), e);
    let file = super::private::open_to_read(&path).map_err(failed)?;
    let reader = std::io::BufReader::with_capacity(READ_BUFFER, file);
    let mut state = State::default();
    let mut frames = 0u64;
    let mut ended = false;
    let mut destinations: Vec<DestinationContents> = Vec::new();
    let end = read_frames_from(reader, |payload| {
        if ended {
            return Err(Unreadable::Order("frames after the end".into()));
        }
        let snap: Snap = serde_json::from_slice(payload)?;
        match snap {
            Snap::Header { version, .. } if version != VERSION => {
                return Err(Unreadable::Version {
                    found: version,
                    reads: VERSION,
                });
            }
            Snap::Header { .. } => {}
            Snap::Key {
                key,
                expires,
                reply,
            } => state.store.keys.push(RememberedKey {
                key: Arc::from(key),
                expires,
                reply: Arc::new(reply),
            }),
            Snap::Recent {
                id,
                source,
                event_type,
                event,
            } => state.store.recent.push(Recent {
                id,
                source,
                event_type: event_type.into(),
                json: Arc::from(event.get()),
            }),
            Snap::Quarantine {
                source,
                reason,
                received_at,
                content_type,
                body,
            } => state.store.quarantine.push(Quarantined {
                source,
                reason,
                received_at,
                content_type,
                body: body.into(),
            }),
            Snap::Offset { source, offset } => state.store.offsets.push((source, offset)),
            Snap::Archived(wire) => {
                let (item, expires) = wire.into_parts()?;
                state.archive.push((expires, item));
            }
            Snap::NextDead { id } => state.schedule.next_dead = id,
            Snap::Erasure(record) => state.store.erasures.push(record),
            Snap::Tombstone { key, until } => state.tombstones.push((key, until)),
            Snap::Destination {
                name,
                paused,
                next_seq,
            } => destinations.push(DestinationContents {
                name,
                paused,
                next_seq,
                jobs: Vec::new(),
                dead: Vec::new(),
                delivered: Vec::new(),
            }),
            Snap::Job {
                destination,
                seq,
                event_id,
                event,
                due,
                attempts,
            } => in_destination(&mut destinations, &destination)?
                .jobs
                .push(SavedJob {
                    seq,
                    event_id,
                    event: Arc::from(event.get()),
                    due,
                    attempts,
                }),
            Snap::Dead {
                destination,
                id,
                event_id,
                event,
                attempts,
            } => in_destination(&mut destinations, &destination)?
                .dead
                .push(DeadLetter {
                    id,
                    destination,
                    event_id,
                    event: Arc::from(event.get()),
                    attempts,
                }),
            Snap::Delivered {
                destination,
                event_id,
                attempts,
            } => in_destination(&mut destinations, &destination)?
                .delivered
                .push((event_id, attempts)),
            Snap::End { frames: counted } => {
                if counted != frames {
                    return Err(Unreadable::Order(format!(
                        "{counted} frames announced, {frames} read"
                    )));
                }
                ended = true;
            }
        }
        frames += 1;
        Ok(())
    })
    .map_err(failed)?
    .map_err(|e| StoreError::Damaged(format!("snapshot {}: {e}", path.display())))?;
    if end != End::Clean || !ended {
        return Ok(None);
    }
    state.schedule.destinations = destinations;
    Ok(Some(state))
}

fn in_destination<'a>(
    destinations: &'a mut [DestinationContents],
    name: &str,
) -> Result<&'a mut DestinationContents, Unreadable> {
    destinations
        .iter_mut()
        .rev()
        .find(|d| d.name == name)
        .ok_or_else(|| Unreadable::Order(format!("a job of {name} before its destination")))
}
