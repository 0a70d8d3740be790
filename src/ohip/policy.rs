//! What the connector does after a connection ends: the close codes of OHIP
//! (`graphql-transport-ws` codes with Oracle's meanings) and the upgrade's HTTP statuses.
//!
//! Pure, so the table is tested line by line. The waits are floors: the runner adds jitter
//! and keeps at least `min_gap` between two connection attempts (Oracle: 5 s after a
//! `complete`, 4 s after 1006; 150 upgrades in 2 minutes is the ceiling).

use std::time::Duration;

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The server closed the socket with this code and reason.
    Closed { code: u16, reason: String },
    /// The TCP connection broke, or nothing arrived within the liveness window (1006).
    Dropped(String),
    /// The upgrade was answered with this HTTP status instead of 101.
    Refused { status: u16 },
    /// The token endpoint refused the credentials (401 or 403).
    TokenRefused { status: u16 },
    /// The token endpoint or the network failed otherwise.
    Unreachable(String),
    /// porter rotated the token: `complete`, the server's close, reconnect.
    Rotated,
    /// porter is shutting down.
    Shutdown,
    /// The server sent something that is not the protocol (or not an event).
    Protocol(String),
    /// Storing an event failed: reconnect from the last stored offset.
    Store(String),
    /// Another instance holds the stream's lease now (this one could not renew it in time).
    LeaseLost,
}

impl Ended {
    /// What happened, in one line for the status and the console. Text from the server (a
    /// close reason, an error payload) arrives here already bounded and escaped
    /// ([`crate::remote_text`]).
    pub(crate) fn describe(&self) -> String {
        match self {
            Ended::Closed { code, reason } if reason.is_empty() => format!("closed with {code}"),
            Ended::Closed { code, reason } => format!("closed with {code}: {reason}"),
            Ended::Dropped(detail) => format!("dropped: {detail}"),
            Ended::Refused { status } => format!("the upgrade was answered {status}"),
            Ended::TokenRefused { status } => format!("the token endpoint answered {status}"),
            Ended::Unreachable(detail) => format!("unreachable: {detail}"),
            Ended::Rotated => "the token was rotated".to_owned(),
            Ended::Shutdown => "porter shut down".to_owned(),
            Ended::Protocol(detail) => format!("protocol: {detail}"),
            Ended::Store(detail) => format!("the store: {detail}"),
            Ended::LeaseLost => "another instance holds the stream".to_owned(),
        }
    }

    /// The label of the disconnect for metrics and status: the close code, `1006`, `http_400`…
    pub(crate) fn code(&self) -> String {
        match self {
            Ended::Closed { code, .. } => code.to_string(),
            Ended::Dropped(_) => "1006".to_owned(),
            Ended::Refused { status } => format!("http_{status}"),
            Ended::TokenRefused { status } => format!("token_{status}"),
            Ended::Unreachable(_) => "unreachable".to_owned(),
            Ended::Rotated => "rotated".to_owned(),
            Ended::Shutdown => "shutdown".to_owned(),
            Ended::Protocol(_) => "protocol".to_owned(),
            Ended::Store(_) => "store".to_owned(),
            Ended::LeaseLost => "lease_lost".to_owned(),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Connect again after at least this long (plus jitter); `fresh_token` forces a new token.
    Reconnect { after: Duration, fresh_token: bool },
    /// Another consumer holds the stream, or the last one did not `complete`: wait the lockout.
    Lockout,
    /// A configuration or permission problem no retry fixes: stop and say why.
    Stop(String),
}

/// The reaction to `ended`, given how many attempts in a row failed before this one and the
/// base of the backoff (`reconnect_delay`, 10 s by default).
pub(crate) fn next(ended: &Ended, failures: u32, base: Duration) -> Next {
    let backoff = backoff(failures, base);
    match ended {
        Ended::Rotated | Ended::LeaseLost => Next::Reconnect {
            after: Duration::ZERO,
            fresh_token: true,
        },
        Ended::Shutdown => Next::Stop("porter is shutting down".to_owned()),
        Ended::Closed { code, reason } => match code {
            // Normal closure, going away (maintenance), internal error, a server that ended
            // the stream: reconnect with the stored offset.
            1000 | 1001 | 1011 | 1012 | 1013 | 4500 => Next::Reconnect {
                after: backoff,
                fresh_token: false,
            },
            // Oracle: "wait 4 seconds and then reconnect".
            1006 => Next::Reconnect {
                after: backoff.max(Duration::from_secs(4)),
                fresh_token: false,
            },
            // Unauthorised: the token (or the app key) was not accepted; try one new token.
            4401 if failures == 0 => Next::Reconnect {
                after: backoff,
                fresh_token: true,
            },
            4401 => Next::Stop(format!(
                "OHIP refused the credentials (4401 {reason}) again with a fresh token: check \
                 app_key (the key itself, not its hash), client_id and client_secret"
            )),
            4400 => Next::Stop(format!(
                "OHIP refused the subscription (4400 {reason}): check chain_code and hotel_codes"
            )),
            4403 => Next::Stop(format!(
                "OHIP forbids this stream (4403 {reason}): the application's event template \
                 must be subscribed to this environment and approved for the chain"
            )),
            4406 | 4429 => Next::Stop(format!(
                "OHIP closed with {code} ({reason}): a protocol error on porter's side"
            )),
            4409 => Next::Lockout,
            // ConnectionAcknowledgementTimeout; seen as "streaming down".
            4504 => Next::Reconnect {
                after: backoff.max(Duration::from_secs(15)),
                fresh_token: false,
            },
            _ => Next::Reconnect {
                after: backoff,
                fresh_token: false,
            },
        },
        Ended::Dropped(_) => Next::Reconnect {
            after: backoff.max(Duration::from_secs(4)),
            fresh_token: false,
        },
        Ended::Refused { status: 400 } => Next::Stop(
            "OHIP refused the WebSocket upgrade (HTTP 400): check gateway_url, app_key, and that \
             the environment is Streaming Enabled and the application subscribed and approved"
                .to_owned(),
        ),
        // Too many upgrades: Oracle counts 150 in 2 minutes.
        Ended::Refused { status: 429 } => Next::Reconnect {
            after: Duration::from_secs(120),
            fresh_token: false,
        },
        Ended::Refused { status: 401 } => Next::Reconnect {
            after: backoff,
            fresh_token: true,
        },
        Ended::Refused { .. } => Next::Reconnect {
            after: backoff,
            fresh_token: false,
        },
        Ended::TokenRefused { status } => Next::Stop(format!(
            "the OHIP token endpoint refused the credentials (HTTP {status}): check client_id, \
             client_secret, app_key, enterprise_id and scope"
        )),
        Ended::Unreachable(_) | Ended::Protocol(_) | Ended::Store(_) => Next::Reconnect {
            after: backoff,
            fresh_token: false,
        },
    }
}

/// `base`, doubling with each failure in a row, at most six times `base` (10 s, 20 s, 40 s,
/// 60 s by default); the runner adds jitter.
fn backoff(failures: u32, base: Duration) -> Duration {
    base.saturating_mul(1 << failures.min(3))
        .min(base.saturating_mul(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(10);

    fn closed(code: u16) -> Ended {
        Ended::Closed {
            code,
            reason: "r".to_owned(),
        }
    }

    #[test]
    fn each_close_code_has_its_reaction() {
        let reconnect = |ended: &Ended| matches!(next(ended, 0, BASE), Next::Reconnect { .. });
        let stop = |ended: &Ended| matches!(next(ended, 0, BASE), Next::Stop(_));
        for code in [1000, 1001, 1006, 4500, 4504, 4408, 4401] {
            assert!(reconnect(&closed(code)), "{code}");
        }
        for code in [4400, 4403, 4406, 4429] {
            assert!(stop(&closed(code)), "{code}");
        }
        assert_eq!(next(&closed(4409), 0, BASE), Next::Lockout);
        assert!(stop(&Ended::Refused { status: 400 }));
        assert!(stop(&Ended::TokenRefused { status: 401 }));
        assert!(reconnect(&Ended::Dropped("eof".to_owned())));
        assert!(reconnect(&Ended::Store("down".to_owned())));
    }

    #[test]
    fn waits_follow_oracles_floors() {
        let after = |ended: &Ended, failures| match next(ended, failures, BASE) {
            Next::Reconnect { after, .. } => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(after(&closed(1006), 0), Duration::from_secs(10));
        assert_eq!(after(&closed(4504), 0), Duration::from_secs(15));
        assert_eq!(
            after(&Ended::Refused { status: 429 }, 0),
            Duration::from_secs(120)
        );
        assert_eq!(after(&closed(1001), 1), Duration::from_secs(20));
        assert_eq!(after(&closed(1001), 9), Duration::from_secs(60));
        assert_eq!(after(&Ended::Rotated, 0), Duration::ZERO);
    }

    #[test]
    fn an_unauthorised_close_gets_one_fresh_token_then_stops() {
        assert_eq!(
            next(&closed(4401), 0, BASE),
            Next::Reconnect {
                after: Duration::from_secs(10),
                fresh_token: true
            }
        );
        assert!(matches!(next(&closed(4401), 1, BASE), Next::Stop(_)));
    }
}
