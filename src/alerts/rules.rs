//! The pure half of alerting: what each rule kind concludes from figures it is handed, and the
//! state machine every rule runs (ok → pending → firing → resolved). No clock, no I/O: the
//! evaluator reads the activity, the streams and the store, and hands the numbers here.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use crate::activity::{DestinationBucket, OUTCOMES, SourceBucket};

/// What a rule's condition found in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub holds: bool,
    /// One line for a person: what was seen, against what threshold.
    pub summary: String,
    /// The figures behind it, for the notification's `details`.
    pub details: serde_json::Value,
}

/// The outcomes that are not refusals: the provider got a 2xx.
const ANSWERED: [&str; 3] = ["accepted", "duplicate", "handshake"];

/// `refusal_share`: a source's refused requests (every answer but a 2xx) within the window.
/// The share counts only from `min_requests` requests on, so that one refused request of one
/// does not page; the rate (refusals per second over the window) has no such floor.
pub(crate) fn refusal_share(
    source: &str,
    above: Option<f64>,
    rate_above: Option<f64>,
    min_requests: u64,
    window: Duration,
    figures: &SourceBucket,
) -> Check {
    let requests = figures.requests();
    let answered: u64 = ANSWERED.iter().map(|o| figures.outcome(o)).sum();
    let refused = requests - answered;
    let share = (requests > 0).then(|| refused as f64 / requests as f64);
    let rate = refused as f64 / window.as_secs_f64().max(1.0);
    let share_holds =
        above.is_some_and(|above| requests >= min_requests && share.is_some_and(|s| s > above));
    let rate_holds = rate_above.is_some_and(|limit| rate > limit);
    let by_outcome: serde_json::Map<String, serde_json::Value> = OUTCOMES
        .iter()
        .zip(figures.outcomes)
        .filter(|(label, n)| *n > 0 && !ANSWERED.contains(label))
        .map(|(label, n)| ((*label).to_owned(), json!(n)))
        .collect();
    let window_text = humantime::format_duration(window);
    let mut summary =
        format!("{source}: {refused} of {requests} requests refused in the last {window_text}");
    if let Some(share) = share {
        summary.push_str(&format!(" ({:.0} %)", share * 100.0));
    }
    match (above, rate_above) {
        (Some(above), _) if share_holds || rate_above.is_none() => {
            summary.push_str(&format!(
                "; alert above {:.0} % of at least {min_requests}",
                above * 100.0
            ));
        }
        (_, Some(limit)) => {
            summary.push_str(&format!("; {rate:.2}/s, alert above {limit}/s"));
        }
        _ => {}
    }
    Check {
        holds: share_holds || rate_holds,
        summary,
        details: json!({
            "source": source,
            "window_seconds": window.as_secs(),
            "requests": requests,
            "refused": refused,
            "share": share,
            "refusals_per_second": rate,
            "above": above,
            "rate_above": rate_above,
            "min_requests": min_requests,
            "refused_by_outcome": by_outcome,
            "rejections": figures.reasons,
        }),
    }
}

/// What the evaluator remembers of a quiet source beyond the activity's hour: when its last
/// request came, and how many came in the hour up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LastRequest {
    /// The end of the newest 10-second bucket with a request.
    pub at: Option<Timestamp>,
    /// Requests in the hour up to then.
    pub before: u64,
}

/// `quiet`: no request for `window`, where there usually are: at least `min_requests` came in
/// the hour up to the last one. A source not heard from since porter started never counts as
/// quiet (there is nothing usual about it yet).
pub(crate) fn quiet(
    source: &str,
    window: Duration,
    min_requests: u64,
    last: LastRequest,
    now: Timestamp,
) -> Check {
    let window_text = humantime::format_duration(window);
    let Some(at) = last.at else {
        return Check {
            holds: false,
            summary: format!("{source}: no request seen since porter started"),
            details: json!({ "source": source, "last_request_at": null }),
        };
    };
    let silent = Duration::try_from(now.duration_since(at)).unwrap_or_default();
    let usual = last.before >= min_requests;
    let holds = usual && silent >= window;
    let silent_text = humantime::format_duration(Duration::from_secs(silent.as_secs()));
    Check {
        holds,
        summary: format!(
            "{source}: no request for {silent_text} (alert after {window_text}; {} in the hour before the last, at least {min_requests} usual)",
            last.before
        ),
        details: json!({
            "source": source,
            "last_request_at": at,
            "silent_seconds": silent.as_secs(),
            "window_seconds": window.as_secs(),
            "requests_in_the_hour_before": last.before,
            "min_requests": min_requests,
        }),
    }
}

/// `destination_failing`: a destination's attempts within the window. An attempt that
/// dead-letters counts as failed.
pub(crate) fn destination_failing(
    destination: &str,
    above: Option<f64>,
    dead_letters_above: Option<u64>,
    min_attempts: u64,
    window: Duration,
    figures: &DestinationBucket,
) -> Check {
    let failed = figures.failed + figures.dead_lettered;
    let attempts = figures.delivered + failed;
    let share = (attempts > 0).then(|| failed as f64 / attempts as f64);
    let share_holds =
        above.is_some_and(|above| attempts >= min_attempts && share.is_some_and(|s| s > above));
    let dead_holds = dead_letters_above.is_some_and(|limit| figures.dead_lettered > limit);
    let window_text = humantime::format_duration(window);
    let mut summary = format!(
        "{destination}: {failed} of {attempts} attempts failed, {} dead-lettered in the last {window_text}",
        figures.dead_lettered
    );
    if let Some(above) = above {
        summary.push_str(&format!(
            "; alert above {:.0} % of at least {min_attempts}",
            above * 100.0
        ));
    }
    if let Some(limit) = dead_letters_above {
        summary.push_str(&format!("; alert above {limit} dead letters"));
    }
    Check {
        holds: share_holds || dead_holds,
        summary,
        details: json!({
            "destination": destination,
            "window_seconds": window.as_secs(),
            "attempts": attempts,
            "delivered": figures.delivered,
            "failed": failed,
            "dead_lettered": figures.dead_lettered,
            "share": share,
            "above": above,
            "dead_letters_above": dead_letters_above,
            "min_attempts": min_attempts,
        }),
    }
}

/// `backlog`: the samples of a destination's backlog within the window, oldest first (one per
/// 10-second bucket that has one). Above: the newest sample is over `above`. Growing: at least
/// two samples, none lower than the one before, and the newest higher than the oldest.
pub(crate) fn backlog(
    destination: &str,
    above: Option<u64>,
    growing: bool,
    window: Duration,
    samples: &[u64],
) -> Check {
    let newest = samples.last().copied();
    let above_holds = above.is_some_and(|limit| newest.is_some_and(|n| n > limit));
    let grew = samples.len() >= 2
        && samples.windows(2).all(|pair| pair[1] >= pair[0])
        && samples.last() > samples.first();
    let growing_holds = growing && grew;
    let waiting = newest.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    let mut summary = format!("{destination}: {waiting} events waiting");
    if let Some(limit) = above {
        summary.push_str(&format!("; alert above {limit}"));
    }
    if growing {
        let window_text = humantime::format_duration(window);
        summary.push_str(&if grew {
            format!(
                "; grew from {} over the last {window_text}",
                samples.first().copied().unwrap_or_default()
            )
        } else {
            format!("; not growing over the last {window_text}")
        });
    }
    Check {
        holds: above_holds || growing_holds,
        summary,
        details: json!({
            "destination": destination,
            "waiting": newest,
            "above": above,
            "growing": growing,
            "window_seconds": window.as_secs(),
            "samples": samples,
        }),
    }
}

/// `ohip_stopped`: the stream's status on this instance. Stopped, connecting or waiting to
/// reconnect holds; standing by while another instance holds the stream does not (that one
/// watches it); streaming holds only when no event was stored for `lag` (counted from
/// `watching_since` before the first).
pub(crate) fn ohip_stopped(
    source: &str,
    lag: Option<Duration>,
    status: Option<&crate::ohip::Status>,
    watching_since: Timestamp,
    now: Timestamp,
) -> Check {
    use crate::ohip::State;
    let Some(status) = status else {
        return Check {
            holds: true,
            summary: format!("{source}: the stream's connector is not running"),
            details: json!({ "source": source, "state": null }),
        };
    };
    let standby = matches!(&status.state, State::Waiting { after, .. } if after == "standby");
    let since = status.last_event_at.unwrap_or(watching_since);
    let quiet_for = Duration::try_from(now.duration_since(since)).unwrap_or_default();
    let (holds, why) = match &status.state {
        State::Streaming | State::Completing => match lag {
            Some(lag) if quiet_for >= lag => (
                true,
                format!(
                    "streaming, but no event stored for {} (alert after {})",
                    humantime::format_duration(Duration::from_secs(quiet_for.as_secs())),
                    humantime::format_duration(lag)
                ),
            ),
            _ => (false, "streaming".to_owned()),
        },
        _ if standby => (
            false,
            "standing by: another instance holds the stream".to_owned(),
        ),
        state => (true, format!("not connected: {}", state.label())),
    };
    Check {
        holds,
        summary: format!("{source}: {why}"),
        details: json!({
            "source": source,
            "status": status,
            "lag_seconds": lag.map(|l| l.as_secs()),
        }),
    }
}

/// `store_unready`: what `/readyz` reports (a planned drain is not a failure: the evaluator
/// passes it as ready).
pub(crate) fn store_unready(problem: Option<String>) -> Check {
    match problem {
        None => Check {
            holds: false,
            summary: "the store takes events".to_owned(),
            details: json!({ "ready": true }),
        },
        Some(problem) => Check {
            holds: true,
            summary: format!("not taking events: {problem}"),
            details: json!({ "ready": false, "problem": problem }),
        },
    }
}

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Ok,
    /// The condition holds since `since`, not yet for the rule's `for`.
    Pending {
        since: Timestamp,
    },
    /// Fired; the condition holds since `since`; last notified at `notified`.
    Firing {
        since: Timestamp,
        notified: Timestamp,
    },
}

impl Phase {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending { .. } => "pending",
            Phase::Firing { .. } => "firing",
        }
    }
}

/// What a step says to notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Fired (or, with `repeat`, fires still): the condition holds since `since`.
    Firing { since: Timestamp, repeat: bool },
    /// Resolved at `at`; it had held since `since`.
    Resolved { since: Timestamp, at: Timestamp },
}

impl Phase {
    /// One evaluation: the condition `holds` (or not) at `now`, for a rule whose condition
    /// must hold for `hold` before it fires and which notifies again every `repeat`.
    pub(crate) fn step(
        &mut self,
        holds: bool,
        now: Timestamp,
        hold: Duration,
        repeat: Option<Duration>,
    ) -> Option<Transition> {
        let elapsed =
            |from: Timestamp| Duration::try_from(now.duration_since(from)).unwrap_or_default();
        match (*self, holds) {
            (Phase::Ok, false) | (Phase::Pending { .. }, false) => {
                *self = Phase::Ok;
                None
            }
            (Phase::Ok, true) if hold.is_zero() => self.fire(now, now),
            (Phase::Ok, true) => {
                *self = Phase::Pending { since: now };
                None
            }
            (Phase::Pending { since }, true) if elapsed(since) >= hold => self.fire(since, now),
            (Phase::Pending { .. }, true) => None,
            (Phase::Firing { since, notified }, true) => {
                if repeat.is_some_and(|every| elapsed(notified) >= every) {
                    *self = Phase::Firing {
                        since,
                        notified: now,
                    };
                    Some(Transition::Firing {
                        since,
                        repeat: true,
                    })
                } else {
                    None
                }
            }
            (Phase::Firing { since, .. }, false) => {
                *self = Phase::Ok;
                Some(Transition::Resolved { since, at: now })
            }
        }
    }

    fn fire(&mut self, since: Timestamp, now: Timestamp) -> Option<Transition> {
        *self = Phase::Firing {
            since,
            notified: now,
        };
        Some(Transition::Firing {
            since,
            repeat: false,
        })
    }
}

#[cfg(test)]
mod tests;
