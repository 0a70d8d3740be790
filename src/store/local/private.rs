//! The local store's files are private: they hold guests' messages, archived requests with
//! URL tokens in their queries, and PMS shared secrets, enough to forge those vendors'
//! webhooks. So, whatever the umask:
//!
//! - the directory is created `0700`, and an existing one is refused when another user owns
//!   it or when its group or others may write to it (they could plant files in it); one that
//!   others may only read (an older porter made it `0755`) is tightened to `0700`;
//! - every file is created `0600`, and an existing one is tightened to `0600` when opened;
//! - no file (journal, snapshot, `LOCK`) is ever opened through a symbolic link: a link
//!   planted as `journal-00000000.log` would otherwise have porter truncate and overwrite
//!   whatever it points to. The directory itself may be a link (an operator's choice).

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::store::StoreError;

/// Mode of the directory.
const DIR_MODE: u32 = 0o700;
/// Mode of every file in it.
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (`0700`) or checks an existing one: owned by this process's user, writable by
/// no one else.
pub(super) fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let failed = |what: &str, e| StoreError::io(format!("{what} {}", dir.display()), e);
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| failed("cannot create", e))?;
    let metadata = std::fs::metadata(dir).map_err(|e| failed("cannot read", e))?;
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(StoreError::Damaged(format!(
            "{} belongs to user {}, and porter runs as user {me}: the store's directory must \
             be porter's own (its files hold secrets and guests' data)",
            dir.display(),
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(StoreError::Damaged(format!(
            "{} is writable by {} (mode {mode:o}): anyone who can write there can plant or \
             swap the store's files; run `chmod 700 {}`",
            dir.display(),
            if mode & 0o002 != 0 {
                "all users"
            } else {
                "its group"
            },
            dir.display()
        )));
    }
    if mode != DIR_MODE {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
            .map_err(|e| failed("cannot make private", e))?;
        tracing::info!(dir = %dir.display(), was = format!("{mode:o}"), "the store's directory is now 700");
    }
    Ok(())
}

/// Opens `path` with `options`, never through a symbolic link; a file it creates is `0600`,
/// and an existing one is made so.
pub(super) fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .mode(FILE_MODE)
        .custom_flags(no_follow())
        .open(path)
        .map_err(|e| explain(path, e))?;
    let mode = file.metadata()?.mode() & 0o777;
    if mode != FILE_MODE {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Opens `path` for reading, never through a symbolic link.
pub(super) fn open_to_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(path)
        .map_err(|e| explain(path, e))
}

/// Reads `path` whole, never through a symbolic link.
pub(super) fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_to_read(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn no_follow() -> i32 {
    // O_NOFOLLOW fits in an i32 on every platform porter builds for.
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// An open refused because the name is a symbolic link says so.
fn explain(path: &Path, error: io::Error) -> io::Error {
    if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        io::Error::other(format!(
            "{} is a symbolic link: porter never opens its files through one (remove it)",
            path.display()
        ))
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_never_opened_and_its_target_is_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep me").expect("write");
        let link = dir.path().join("journal-00000000.log");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let error = open(
            &link,
            OpenOptions::new().create(true).append(true).truncate(false),
        )
        .expect_err("refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        let error =
            open(&link, OpenOptions::new().write(true).truncate(true)).expect_err("refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(read(&link).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
    }

    #[test]
    fn files_are_created_and_kept_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("LOCK");
        std::fs::write(&path, b"").expect("write");
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        open(&path, OpenOptions::new().read(true).write(true)).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
        let new = dir.path().join("snapshot-00000001.tmp");
        open(&new, OpenOptions::new().write(true).create_new(true)).expect("create");
        assert_eq!(std::fs::metadata(&new).expect("meta").mode() & 0o777, 0o600);
    }

    #[test]
    fn a_directory_others_may_write_is_refused_and_a_readable_one_tightened() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("data");
        prepare_dir(&dir).expect("created");
        assert_eq!(std::fs::metadata(&dir).expect("meta").mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).expect("chmod");
        prepare_dir(&dir).expect("tightened");
        assert_eq!(std::fs::metadata(&dir).expect("meta").mode() & 0o777, 0o700);
        for mode in [0o777, 0o770, 0o702] {
            std::fs::set_permissions(&dir, Permissions::from_mode(mode)).expect("chmod");
            let error = prepare_dir(&dir).expect_err("refused");
            assert!(error.to_string().contains("writable by"), "{error}");
        }
    }
}
