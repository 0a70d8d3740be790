//! The local store's files are private, whatever the umask, and never opened through a
//! symbolic link: they hold guests' messages and the credentials of URL-token and
//! shared-secret vendors.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use porter::testing::clock::Clock;
use porter::testing::store::{LocalSettings, LocalStore, Store};
use porter_providers::Reply;

fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut found: Vec<(String, u32)> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let mode = entry.metadata().expect("meta").mode() & 0o777;
            (entry.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect();
    found.sort();
    found
}

/// With a umask of 0 (which would make files 0666 and directories 0777), the directory is
/// 0700 and every file the store writes (lock, journals, snapshots) 0600.
#[tokio::test]
async fn files_are_private_whatever_the_umask() {
    let previous = rustix::process::umask(rustix::fs::Mode::empty());
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("data");
    let settings = LocalSettings {
        // A snapshot after a few records, so that one is among the files checked.
        snapshot_after: 512,
        ..LocalSettings::new(&dir)
    };
    let (store, _) = LocalStore::open(&settings, None, Clock::system()).expect("open");
    let store = Store::Local(std::sync::Arc::new(store));
    for n in 0..20 {
        let event = common::unknown_event(&format!("k{n}"), serde_json::json!({"n": n}));
        store
            .enqueue(&[event], &Reply::accepted(1), Duration::from_secs(60))
            .await
            .expect("stored");
    }
    let Store::Local(local) = &store else {
        unreachable!()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while local.snapshots() < 1 {
        assert!(std::time::Instant::now() < deadline, "no snapshot written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rustix::process::umask(previous);
    assert_eq!(
        std::fs::metadata(&dir).expect("dir").mode() & 0o777,
        0o700,
        "the directory"
    );
    let files = modes(&dir);
    assert!(
        files.iter().any(|(name, _)| name.ends_with(".snap")),
        "{files:?}"
    );
    assert!(files.iter().any(|(name, _)| name == "LOCK"), "{files:?}");
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name}: {files:?}");
    }
}

/// A link planted where a journal will be is refused at start, and what it points to is left
/// as it was (before, it was truncated and overwritten).
#[test]
fn a_planted_symlink_is_never_followed() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let victim = parent.path().join("somebody-elses-file");
    std::fs::write(&victim, b"precious").expect("write");
    for name in ["journal-00000000.log", "LOCK"] {
        let link = dir.join(name);
        // The first attempt made a LOCK of its own before it found the journal's link.
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let error = LocalStore::open(&LocalSettings::new(&dir), None, Clock::system())
            .expect_err("refused");
        assert!(
            error.to_string().contains("symbolic link"),
            "{name}: {error}"
        );
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious", "{name}");
        std::fs::remove_file(&link).expect("unlink");
    }
    LocalStore::open(&LocalSettings::new(&dir), None, Clock::system()).expect("no link: opens");
}

/// A directory others may write to, or that another user owns, is refused at start.
#[test]
fn a_directory_others_control_is_refused() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let error =
        LocalStore::open(&LocalSettings::new(&dir), None, Clock::system()).expect_err("refused");
    assert!(
        error.to_string().contains("writable by all users"),
        "{error}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Owned by another user (only root can give a directory away: the CI machine runs as root).
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
        let error = LocalStore::open(&LocalSettings::new(&dir), None, Clock::system())
            .expect_err("refused");
        assert!(
            error.to_string().contains("belongs to user 65534"),
            "{error}"
        );
    } else {
        eprintln!(
            "not root: a directory of another user cannot be made here; that half is skipped"
        );
    }
}
