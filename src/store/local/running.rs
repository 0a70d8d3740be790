//! `admin.json`: how the commands run beside a `porter serve` find its admin listener.
//!
//! While `porter serve` holds a local store's directory (its `LOCK`), the commands that change
//! the store (`porter erase`, `porter dlq replay`, `porter reprocess`) cannot open it, and must
//! ask that process through its admin API instead. Its address may be chosen at start
//! (`--admin-listen`, port 0) and its token made up (the embedded default), so `porter serve`
//! writes both here once it listens, and removes the file when it stops cleanly:
//!
//! ```json
//! {"pid":4242,"admin":"127.0.0.1:9090","token":"…"}
//! ```
//!
//! The file holds the admin token: it is created `0600` in the `0700` directory, never through
//! a symbolic link (written beside and renamed over, so a reader never sees half of it).
//!
//! **Staleness.** A crash (SIGKILL, power loss) leaves the file behind. It is believed only
//! while the directory's `LOCK` is held by another process *and* that lock names the file's
//! pid ([`Running::check`]); otherwise it is stale, and a command says so.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use porter_providers::Secret;
use serde::{Deserialize, Serialize};

/// The file's name in the store's directory.
pub(crate) const ADMIN_FILE: &str = "admin.json";

/// What the file holds.
#[derive(Debug, Clone)]
pub(crate) struct AdminFile {
    /// The `porter serve` process that wrote it.
    pub(crate) pid: u32,
    /// Where its admin listener listens (the bound address, not the configured one).
    pub(crate) admin: SocketAddr,
    /// Its `[admin]` token.
    pub(crate) token: Secret,
}

/// The file's JSON.
#[derive(Serialize, Deserialize)]
struct Wire {
    pid: u32,
    admin: SocketAddr,
    token: String,
}

/// Where a local store's directory stands, as a command sees it.
#[derive(Debug)]
pub(crate) enum Running {
    /// No process holds the directory (and any `admin.json` was stale: `left` names its pid).
    Stopped { left: Option<u32> },
    /// Another process holds it and wrote this file.
    Serving(AdminFile),
    /// Another process (`holder`, when `LOCK` names one) holds it, but no file of that process
    /// is there: it runs no admin listener, or it is not `porter serve` (another command).
    HeldWithout {
        holder: Option<u32>,
        stale: Option<u32>,
    },
}

impl Running {
    /// Reads `dir/admin.json` and `dir/LOCK` and says which it is. Takes the lock for an
    /// instant when nobody holds it (as opening the store would).
    pub(crate) fn check(dir: &Path) -> io::Result<Self> {
        let file = read(dir)?;
        match lock_holder(dir)? {
            None => Ok(Running::Stopped {
                left: file.map(|f| f.pid),
            }),
            Some(holder) => match file {
                Some(file) if Some(file.pid) == holder => Ok(Running::Serving(file)),
                file => Ok(Running::HeldWithout {
                    holder,
                    stale: file.map(|f| f.pid),
                }),
            },
        }
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(ADMIN_FILE)
}

/// Writes `file` into `dir` (which the store has made private): beside, then renamed over.
pub(crate) fn write(dir: &Path, file: &AdminFile) -> io::Result<()> {
    let wire = Wire {
        pid: file.pid,
        admin: file.admin,
        token: file.token.expose().to_owned(),
    };
    let bytes = serde_json::to_vec(&wire).map_err(io::Error::other)?;
    let temporary = dir.join(format!("{ADMIN_FILE}.tmp"));
    let mut out = super::private::open(
        &temporary,
        OpenOptions::new().write(true).create(true).truncate(true),
    )?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    drop(out);
    // `rename` replaces a link planted at the name; it never writes through it.
    std::fs::rename(&temporary, path(dir))
}

/// Removes the file, if it is there.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(path(dir)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The file, when there is one (never read through a symbolic link).
pub(crate) fn read(dir: &Path) -> io::Result<Option<AdminFile>> {
    let bytes = match super::private::read(&path(dir)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::other(format!(
            "{} is not what porter serve writes ({e}): remove it",
            path(dir).display()
        ))
    })?;
    Ok(Some(AdminFile {
        pid: wire.pid,
        admin: wire.admin,
        token: Secret::new(wire.token),
    }))
}

/// `Some(pid named in LOCK)` when another process holds `dir/LOCK`; `None` when nobody does.
fn lock_holder(dir: &Path) -> io::Result<Option<Option<u32>>> {
    let lock = dir.join("LOCK");
    let file = match super::private::open_to_read(&lock) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        // Released when `file` is dropped, at the end of this function.
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let text = std::fs::read_to_string(&lock).unwrap_or_default();
            Ok(Some(text.trim().parse().ok()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn sample() -> AdminFile {
        AdminFile {
            pid: std::process::id(),
            admin: "127.0.0.1:9191".parse().expect("address"),
            token: Secret::new("t".repeat(32)),
        }
    }

    #[test]
    fn the_file_is_0600_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &sample()).expect("written");
        let meta = std::fs::metadata(path(dir.path())).expect("meta");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let back = read(dir.path()).expect("read").expect("there");
        assert_eq!(back.admin, sample().admin);
        assert_eq!(back.token, sample().token);
        assert!(!format!("{back:?}").contains(&"t".repeat(32)));
        remove(dir.path()).expect("removed");
        assert!(read(dir.path()).expect("read").is_none());
        remove(dir.path()).expect("removing nothing is fine");
    }

    #[test]
    fn a_link_planted_at_the_name_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep me").expect("write");
        std::os::unix::fs::symlink(&target, path(dir.path())).expect("symlink");
        assert!(read(dir.path()).is_err(), "never read through a link");
        std::os::unix::fs::symlink(&target, dir.path().join("admin.json.tmp")).expect("symlink");
        assert!(
            write(dir.path(), &sample()).is_err(),
            "never written through one"
        );
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
    }

    #[test]
    fn the_file_is_believed_only_while_its_pid_holds_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &sample()).expect("written");
        // Nobody holds the lock: the file is left from a process that did not stop cleanly.
        assert!(matches!(
            Running::check(dir.path()).expect("checked"),
            Running::Stopped { left: Some(pid) } if pid == std::process::id()
        ));
        let lock = super::super::files::take_lock(dir.path()).expect("locked");
        // A lock on another open file description blocks the check's, even in this process.
        assert!(matches!(
            Running::check(dir.path()).expect("checked"),
            Running::Serving(file) if file.admin == sample().admin
        ));
        write(
            dir.path(),
            &AdminFile {
                pid: std::process::id() + 1,
                ..sample()
            },
        )
        .expect("written");
        assert!(matches!(
            Running::check(dir.path()).expect("checked"),
            Running::HeldWithout { stale: Some(_), .. }
        ));
        drop(lock);
        remove(dir.path()).expect("removed");
        assert!(matches!(
            Running::check(dir.path()).expect("checked"),
            Running::Stopped { left: None }
        ));
    }
}
