//! The console's sessions, kept by this process so that they can be ended.
//!
//! A session is a random 256-bit id in the cookie; porter keeps only its SHA-256 digest and
//! its expiry. Logging out removes that one session; `POST /api/sessions/revoke` removes
//! every one, without changing the token; a restart ends them all (the operator logs in
//! again). Sessions belong to the instance that opened them: with several instances, reach
//! each one's admin listener directly (its console shows that instance's requests anyway).
//!
//! At most [`MAX_SESSIONS`] are kept: opening one beyond that drops the one closest to its
//! expiry. Opening a session needs the token, so this bounds memory, not an attacker.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

/// How long a console session lasts.
pub(super) const SESSION_SECONDS: i64 = 12 * 60 * 60;
/// The most sessions kept at once.
pub(super) const MAX_SESSIONS: usize = 1_000;

/// Open sessions: the digest of each id and when it expires (Unix seconds).
#[derive(Debug, Default)]
pub(super) struct Sessions {
    open: Mutex<HashMap<[u8; 32], i64>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], i64>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session at `now`; the id for the cookie (64 hex digits).
    pub(super) fn open(&self, now: i64) -> String {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).expect("the operating system's random source");
        let id = hex::encode(id);
        let mut open = self.lock();
        open.retain(|_, expires| *expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(soonest) = open
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(digest, _)| *digest)
        {
            open.remove(&soonest);
        }
        open.insert(digest(&id), now + SESSION_SECONDS);
        id
    }

    /// Whether `id` is an open session at `now`.
    pub(super) fn valid(&self, id: &str, now: i64) -> bool {
        self.lock()
            .get(&digest(id))
            .is_some_and(|expires| *expires > now)
    }

    /// Ends session `id`; whether it was open.
    pub(super) fn end(&self, id: &str) -> bool {
        self.lock().remove(&digest(id)).is_some()
    }

    /// Ends every session; how many were open.
    pub(super) fn end_all(&self, now: i64) -> usize {
        let mut open = self.lock();
        let live = open.values().filter(|expires| **expires > now).count();
        open.clear();
        live
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_until_it_expires_or_ends() {
        let sessions = Sessions::default();
        let id = sessions.open(1_000);
        assert_eq!(id.len(), 64);
        assert!(sessions.valid(&id, 1_000 + SESSION_SECONDS - 1));
        assert!(!sessions.valid(&id, 1_000 + SESSION_SECONDS), "expired");
        assert!(!sessions.valid("not-an-id", 1_000));
        assert!(sessions.end(&id));
        assert!(!sessions.valid(&id, 1_001), "ended");
        assert!(!sessions.end(&id));
    }

    #[test]
    fn every_session_can_be_ended_at_once() {
        let sessions = Sessions::default();
        let ids: Vec<String> = (0..3).map(|_| sessions.open(0)).collect();
        assert_eq!(sessions.end_all(1), 3);
        assert!(ids.iter().all(|id| !sessions.valid(id, 1)));
        let again = sessions.open(2);
        assert!(sessions.valid(&again, 3), "new sessions open as before");
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let first = sessions.open(0);
        for now in 1..=MAX_SESSIONS as i64 {
            sessions.open(now);
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(!sessions.valid(&first, 10), "the oldest made room");
    }
}
