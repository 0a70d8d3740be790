//! The store's files: the lock, the generations of journals and snapshots, loading them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{self, End, Record, Unreadable};
use super::{MemoryStore, Recovery, StoreError, apply, snapshot};

/// Takes `dir/LOCK`, or says who has it.
pub(super) fn take_lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let mut file = super::private::open(
        &path,
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
    )
    .map_err(|e| StoreError::io(format!("cannot open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(StoreError::InUse(format!(
                "{} is in use by another porter process ({}): one process per directory",
                dir.display(),
                match holder.trim() {
                    "" => "pid unknown".to_owned(),
                    pid => format!("pid {pid}"),
                }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::io(format!("cannot lock {}", path.display()), e));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// The generations found in a directory.
#[derive(Debug, Default)]
pub(super) struct Generations {
    pub(super) journals: Vec<u64>,
    snapshots: Vec<u64>,
    temporary: Vec<PathBuf>,
}

impl Generations {
    pub(super) fn list(dir: &Path) -> std::io::Result<Self> {
        let mut found = Generations::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let number = |prefix: &str, suffix: &str| -> Option<u64> {
                name.strip_prefix(prefix)?
                    .strip_suffix(suffix)?
                    .parse()
                    .ok()
            };
            if let Some(g) = number("journal-", ".log") {
                found.journals.push(g);
            } else if let Some(g) = number("snapshot-", ".snap") {
                found.snapshots.push(g);
            } else if number("snapshot-", ".tmp").is_some() {
                found.temporary.push(entry.path());
            }
        }
        found.snapshots.sort_unstable();
        found.journals.sort_unstable();
        Ok(found)
    }

    /// Removes the files of generations before `base` and unfinished snapshots.
    /// The names of the journals and snapshots older than generation `base`.
    pub(super) fn older_than(&self, base: u64) -> Vec<String> {
        let journals = self.journals.iter().filter(|g| **g < base);
        let snapshots = self.snapshots.iter().filter(|g| **g < base);
        journals
            .map(|g| format!("journal {g}"))
            .chain(snapshots.map(|g| format!("snapshot {g}")))
            .collect()
    }

    pub(super) fn remove_older_than(&self, dir: &Path, base: u64) {
        for &g in self.journals.iter().filter(|g| **g < base) {
            let _ = std::fs::remove_file(journal_path(dir, g));
        }
        for &g in self.snapshots.iter().filter(|g| **g < base) {
            let _ = std::fs::remove_file(snapshot::snapshot_path(dir, g));
        }
        for path in &self.temporary {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Loads the newest whole snapshot into `memory`; its generation (0 when there is none).
fn load_snapshot(dir: &Path, found: &Generations, memory: &MemoryStore) -> Result<u64, StoreError> {
    for &generation in found.snapshots.iter().rev() {
        match snapshot::read(dir, generation) {
            Ok(Some(state)) => {
                memory.restore(state.store);
                let now = memory.now_ms();
                for (expires, item) in state.archive {
                    memory.raw_archive().insert(item, expires, now);
                }
                let mut tombstones = memory.tombstones();
                for (key, until) in state.tombstones {
                    tombstones.restore(key, until);
                }
                drop(tombstones);
                if let Some(schedule) = memory.deliveries() {
                    let orphaned = schedule.restore(state.schedule);
                    if orphaned > 0 {
                        tracing::warn!(
                            orphaned,
                            "jobs and dead letters of destinations no longer configured were left behind"
                        );
                    }
                }
                return Ok(generation);
            }
            Ok(None) => {
                tracing::warn!(generation, "an incomplete snapshot was passed over");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(found.journals.first().copied().unwrap_or(0))
}

/// How much of a journal is read at a time.
const READ_BUFFER: usize = 1024 * 1024;

/// What follows the first frame at `at` that is not whole: [`End::Torn`] when no whole frame
/// follows it (a write cut short), [`End::Corrupt`] when one does (damage). The rest of the
/// file is read for this, which is short unless the file is damaged.
fn tail_of(path: &Path, at: u64) -> std::io::Result<End> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = super::private::open_to_read(path)?;
    file.seek(SeekFrom::Start(at))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)?;
    // The frame at `at` is not whole, so nothing is visited: the answer is how it ends.
    let end = record::read_frames(&rest, |_| Ok::<(), std::convert::Infallible>(()));
    Ok(match end {
        Ok(End::Torn(offset)) => End::Torn(at + offset),
        Ok(End::Corrupt(offset)) => End::Corrupt(at + offset),
        Ok(End::Clean) | Err(_) => End::Torn(at),
    })
}

pub(super) fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation:08}.log"))
}

/// Makes a directory's entries (a created or renamed file) durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Loads the newest snapshot and replays the journals after it into `memory`; with `repair`,
/// cuts a torn tail off and removes files of older generations. The recovery, the snapshot's
/// generation and the current journal's.
pub(super) fn load(
    dir: &Path,
    memory: &MemoryStore,
    repair: bool,
) -> Result<(Recovery, u64, u64), StoreError> {
    let failed = |what: &str, e| StoreError::io(format!("{what} {}", dir.display()), e);
    let found = Generations::list(dir).map_err(|e| failed("cannot read", e))?;
    let mut recovery = Recovery::default();
    let base = load_snapshot(dir, &found, memory)?;
    let journals: Vec<u64> = found
        .journals
        .iter()
        .copied()
        .filter(|g| *g >= base)
        .collect();
    let current = journals.last().copied().unwrap_or(base);
    for &generation in &journals {
        let path = journal_path(dir, generation);
        let file = match super::private::open_to_read(&path) {
            Ok(file) => file,
            // Read-only, the snapshot thread may have removed an old journal meanwhile.
            Err(e) if !repair && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed("cannot read", e)),
        };
        let length = file.metadata().map_err(|e| failed("cannot read", e))?.len();
        // Frame by frame: a journal as large as its snapshot is not read into one buffer.
        let reader = std::io::BufReader::with_capacity(READ_BUFFER, file);
        let end = record::read_frames_from(reader, |payload| {
            apply(memory, None, Record::decode(payload)?);
            recovery.records += 1;
            Ok(())
        })
        .map_err(|e| failed("cannot read", e))?
        .map_err(|e: Unreadable| StoreError::Damaged(format!("{}: {e}", path.display())))?;
        let end = match end {
            End::Torn(at) => tail_of(&path, at).map_err(|e| failed("cannot read", e))?,
            clean => clean,
        };
        match end {
            End::Clean => {}
            End::Torn(at) if generation == current => {
                recovery.torn_bytes = length - at;
                if repair {
                    let file = super::private::open(&path, OpenOptions::new().write(true))
                        .map_err(|e| failed("cannot open", e))?;
                    file.set_len(at).map_err(|e| failed("cannot repair", e))?;
                    file.sync_all().map_err(|e| failed("cannot repair", e))?;
                }
            }
            End::Torn(_) if !repair => {}
            End::Torn(at) | End::Corrupt(at) => {
                return Err(StoreError::Damaged(format!(
                    "{} is damaged at byte {at} (whole records follow, or a later journal \
                     exists): porter will not guess; move the directory aside and restore \
                     it, or remove that file to start from its snapshot",
                    path.display()
                )));
            }
        }
    }
    if repair {
        found.remove_older_than(dir, base);
    }
    recovery.generation = current;
    Ok((recovery, base, current))
}
