//! Alerts: rules from `[[alerts]]`, evaluated by porter itself over what it already keeps, and
//! sent to the `[[notify]]` targets.
//!
//! Why inside porter: the figures an operator wants to be woken for (a wall of 401s after a
//! secret was rotated, a vendor gone quiet, a destination dead-lettering, a growing backlog,
//! an OHIP stream stopped, the store unready) are already in this instance's
//! [`Activity`](crate::activity::Activity) series, its OHIP statuses and its readiness; a
//! deployment without a Prometheus and an Alertmanager still learns of them.
//!
//! One task ([`Alerts::start`], started by [`App::serve`](crate::app::App::serve)) evaluates
//! every rule every few seconds with porter's [`Clock`]: it reads the figures, hands them to
//! the pure conditions and state machine of [`rules`], and records every transition in a
//! bounded history. A notification is sent on tasks of its own ([`notify`]), each bounded in
//! time and attempts, so neither a slow target nor the evaluation touches ingest or delivery:
//! the evaluation reads the activity's series under its lock for microseconds, as the console
//! does.
//!
//! E-mail goes through `lettre`: the maintained SMTP client of the Rust ecosystem, on tokio,
//! with STARTTLS over the rustls porter already links; it is built with only the SMTP
//! transport and the message builder.
//!
//! The state lives in this instance's memory: each instance evaluates what it saw itself,
//! and a restart starts every rule at `ok`.

pub(crate) mod notify;
pub(crate) mod rules;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::activity::{BUCKET_SECONDS, BUCKETS, Series};
use crate::clock::Clock;
use crate::config::{AlertRule, Condition, NotifyConfig};
use crate::gateway::{Gateway, NotReady};
use notify::{Notice, TargetStatus, Targets};
use rules::{Check, LastRequest, Phase, Transition};

/// How often the rules are evaluated by default.
pub(crate) const EVALUATE_EVERY: Duration = Duration::from_secs(5);
/// Transitions kept for the API and the console.
const HISTORY: usize = 200;
/// Notifications being sent at once; past it a notification is dropped and logged.
const MAX_IN_FLIGHT: usize = 64;
/// How long shutdown waits for notifications still being sent.
const DRAIN: Duration = Duration::from_secs(5);

/// The rules, where each stands, and the targets.
#[derive(Debug)]
pub struct Alerts {
    rules: Vec<AlertRule>,
    state: Mutex<State>,
    targets: Arc<Targets>,
    clock: Clock,
    /// When evaluation began: an OHIP stream's silence before its first event counts from here.
    started: Timestamp,
}

#[derive(Debug)]
struct State {
    /// One per rule, in the rules' order.
    rules: Vec<RuleState>,
    /// Newest last.
    history: VecDeque<HistoryEntry>,
}

#[derive(Debug, Clone, Default)]
struct RuleState {
    phase: Option<Phase>,
    last: Option<Check>,
    evaluated_at: Option<Timestamp>,
    /// `quiet`: the source's last request, beyond the activity's hour.
    last_request: LastRequest,
}

/// A transition, as the history keeps it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub alert: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// A reminder of an alert already firing.
    pub repeat: bool,
    /// Firing: since when the condition holds; resolved: when it stopped holding.
    pub since: Timestamp,
    pub summary: String,
}

/// A rule and where it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    pub name: String,
    pub when: &'static str,
    /// What it watches (`source` or `destination`), if anything in particular.
    pub subject: Option<String>,
    pub notify: Vec<String>,
    pub for_seconds: u64,
    pub repeat_seconds: Option<u64>,
    /// `ok`, `pending` or `firing` (`unknown` before the first evaluation).
    pub state: &'static str,
    /// Pending or firing: since when the condition holds.
    pub since: Option<Timestamp>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    pub evaluated_at: Option<Timestamp>,
}

/// What `GET /api/alerts` answers and the console shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub rules: Vec<RuleView>,
    /// Newest first.
    pub history: Vec<HistoryEntry>,
    pub targets: Vec<TargetStatus>,
}

/// The figures one rule reads from the activity, taken under its lock.
enum Figures {
    Source(Box<crate::activity::SourceBucket>),
    Destination(crate::activity::DestinationBucket),
    Samples(Vec<u64>),
    /// The newest bucket with a request, and the requests in the hour up to it.
    Newest(Option<(i64, u64)>),
    None,
}

impl Alerts {
    /// The rules of `[[alerts]]` and the targets of `[[notify]]`; `retry_after` are the waits
    /// before a failed notification's retries.
    pub fn new(
        rules: Vec<AlertRule>,
        notify: &[NotifyConfig],
        clock: Clock,
        retry_after: Vec<Duration>,
    ) -> Self {
        for rule in &rules {
            metrics::gauge!("porter_alerts_firing", "alert" => rule.name.clone()).set(0.0);
        }
        let targets = Arc::new(Targets::new(notify, clock.clone(), retry_after));
        Self {
            state: Mutex::new(State {
                rules: vec![RuleState::default(); rules.len()],
                history: VecDeque::new(),
            }),
            rules,
            targets,
            started: clock.now(),
            clock,
        }
    }

    /// The waits before a failed notification's retries.
    pub fn set_retry_after(&self, retry_after: Vec<Duration>) {
        self.targets.set_retry_after(retry_after);
    }

    /// Whether there is anything to evaluate.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates every rule once against `gateway`, and returns what to notify.
    pub async fn evaluate(&self, gateway: &Gateway) -> Vec<Notice> {
        let now = self.clock.now();
        let problem = if self
            .rules
            .iter()
            .any(|r| r.condition == Condition::StoreUnready)
        {
            match gateway.readiness().await {
                Ok(()) | Err(NotReady::Draining) => None,
                Err(not_ready) => Some(not_ready.to_string()),
            }
        } else {
            None
        };
        let streams = gateway.stream_statuses();
        let activity = &gateway.activity;
        let now_bucket = activity.current_bucket();
        let figures: Vec<Figures> = activity.with_series(|series| {
            self.rules
                .iter()
                .map(|rule| figures(&rule.condition, series, now_bucket, activity))
                .collect()
        });
        let mut notices = Vec::new();
        let mut state = lock(&self.state);
        let State { rules, history } = &mut *state;
        for ((rule, figures), kept) in self.rules.iter().zip(figures).zip(rules.iter_mut()) {
            let check = self.check(rule, figures, &streams, problem.clone(), kept, now);
            let phase = kept.phase.get_or_insert(Phase::Ok);
            let transition = phase.step(check.holds, now, rule.hold, rule.repeat);
            kept.evaluated_at = Some(now);
            if let Some(transition) = transition {
                let (state, since, repeat) = match transition {
                    Transition::Firing { since, repeat } => ("firing", since, repeat),
                    Transition::Resolved { at, .. } => ("resolved", at, false),
                };
                metrics::gauge!("porter_alerts_firing", "alert" => rule.name.clone())
                    .set(if state == "firing" { 1.0 } else { 0.0 });
                if !repeat {
                    tracing::warn!(alert = %rule.name, state, summary = %check.summary, "alert");
                }
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(HistoryEntry {
                    at: now,
                    alert: rule.name.clone(),
                    state,
                    repeat,
                    since,
                    summary: check.summary.clone(),
                });
                let mut details = check.details.clone();
                if let (Transition::Resolved { since, .. }, Some(map)) =
                    (transition, details.as_object_mut())
                {
                    map.insert("fired_since".to_owned(), serde_json::json!(since));
                }
                notices.push(Notice {
                    alert: rule.name.clone(),
                    state,
                    since,
                    summary: check.summary.clone(),
                    details,
                    repeat,
                    targets: rule.notify.clone(),
                });
            }
            kept.last = Some(check);
        }
        notices
    }

    /// One rule's condition over its figures.
    fn check(
        &self,
        rule: &AlertRule,
        figures: Figures,
        streams: &[crate::ohip::Status],
        problem: Option<String>,
        kept: &mut RuleState,
        now: Timestamp,
    ) -> Check {
        match (&rule.condition, figures) {
            (
                Condition::RefusalShare {
                    source,
                    above,
                    rate_above,
                    window,
                    min_requests,
                },
                Figures::Source(bucket),
            ) => rules::refusal_share(source, *above, *rate_above, *min_requests, *window, &bucket),
            (
                Condition::Quiet {
                    source,
                    window,
                    min_requests,
                },
                Figures::Newest(newest),
            ) => {
                if let Some((number, before)) = newest {
                    let end = Timestamp::from_second((number + 1) * BUCKET_SECONDS)
                        .unwrap_or(now)
                        .min(now);
                    if kept.last_request.at.is_none_or(|at| end >= at) {
                        kept.last_request = LastRequest {
                            at: Some(end),
                            before,
                        };
                    }
                }
                rules::quiet(source, *window, *min_requests, kept.last_request, now)
            }
            (
                Condition::DestinationFailing {
                    destination,
                    above,
                    dead_letters_above,
                    window,
                    min_attempts,
                },
                Figures::Destination(bucket),
            ) => rules::destination_failing(
                destination,
                *above,
                *dead_letters_above,
                *min_attempts,
                *window,
                &bucket,
            ),
            (
                Condition::Backlog {
                    destination,
                    above,
                    growing,
                    window,
                },
                Figures::Samples(samples),
            ) => rules::backlog(destination, *above, *growing, *window, &samples),
            (Condition::OhipStopped { source, lag }, _) => rules::ohip_stopped(
                source,
                *lag,
                streams.iter().find(|s| &s.source == source),
                self.started,
                now,
            ),
            (Condition::StoreUnready, _) => rules::store_unready(problem),
            _ => unreachable!("figures are taken for the rule's own condition"),
        }
    }

    /// Every rule, where it stands, the history and the targets.
    pub fn snapshot(&self) -> Snapshot {
        let state = lock(&self.state);
        let rules = self
            .rules
            .iter()
            .zip(&state.rules)
            .map(|(rule, kept)| {
                let since = match kept.phase {
                    Some(Phase::Pending { since } | Phase::Firing { since, .. }) => Some(since),
                    _ => None,
                };
                RuleView {
                    name: rule.name.clone(),
                    when: rule.condition.kind(),
                    subject: subject(&rule.condition).map(str::to_owned),
                    notify: rule.notify.clone(),
                    for_seconds: rule.hold.as_secs(),
                    repeat_seconds: rule.repeat.map(|r| r.as_secs()),
                    state: kept.phase.as_ref().map_or("unknown", Phase::label),
                    since,
                    summary: kept.last.as_ref().map(|c| c.summary.clone()),
                    details: kept.last.as_ref().map(|c| c.details.clone()),
                    evaluated_at: kept.evaluated_at,
                }
            })
            .collect();
        Snapshot {
            rules,
            history: state.history.iter().rev().cloned().collect(),
            targets: self.targets.statuses(),
        }
    }

    /// Evaluates every `every` until stopped, sending notifications on tasks of their own.
    pub fn start(self: Arc<Self>, gateway: Arc<Gateway>, every: Duration) -> Running {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sending = JoinSet::new();
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => break,
                }
                while sending.try_join_next().is_some() {}
                for notice in self.evaluate(&gateway).await {
                    let notice = Arc::new(notice);
                    for target in &notice.targets {
                        if !self.targets.has(target) {
                            continue;
                        }
                        if sending.len() >= MAX_IN_FLIGHT {
                            tracing::error!(alert = %notice.alert, target_name = %target, "too many alert notifications in flight: this one is dropped");
                            metrics::counter!("porter_alert_notifications_total", "target" => target.clone(), "result" => "dropped").increment(1);
                            continue;
                        }
                        let (targets, notice, target) = (
                            Arc::clone(&self.targets),
                            Arc::clone(&notice),
                            target.clone(),
                        );
                        sending.spawn(async move { targets.deliver(&target, &notice).await });
                    }
                }
            }
            // Notifications under way get a moment to finish; retries waiting are dropped.
            if tokio::time::timeout(DRAIN, async {
                while sending.join_next().await.is_some() {}
            })
            .await
            .is_err()
            {
                tracing::warn!(
                    left = sending.len(),
                    "alert notifications still being sent at shutdown were dropped"
                );
                sending.abort_all();
            }
        });
        Running { stop, task }
    }
}

/// The evaluation task.
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops evaluating and waits (briefly) for notifications under way.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The figures `condition` reads, from `series` as of bucket `now`.
fn figures(
    condition: &Condition,
    series: &Series,
    now: i64,
    activity: &crate::activity::Activity,
) -> Figures {
    let first = |window: &Duration| now - buckets_in(*window) + 1;
    match condition {
        Condition::RefusalShare { source, window, .. } => match activity.source_index(source) {
            Some(index) => Figures::Source(Box::new(series.sources_sum(
                Some(index),
                first(window),
                now,
            ))),
            None => Figures::Source(Default::default()),
        },
        Condition::Quiet { source, .. } => {
            let Some(index) = activity.source_index(source) else {
                return Figures::Newest(None);
            };
            let oldest = now - BUCKETS as i64 + 1;
            let newest = (oldest..=now)
                .rev()
                .find(|n| series.sources_sum(Some(index), *n, *n).requests() > 0);
            Figures::Newest(newest.map(|n| {
                let before = series.sources_sum(Some(index), oldest, n).requests();
                (n, before)
            }))
        }
        Condition::DestinationFailing {
            destination,
            window,
            ..
        } => Figures::Destination(series.destination_sum(destination, first(window), now)),
        Condition::Backlog {
            destination,
            window,
            ..
        } => Figures::Samples(
            (first(window)..=now)
                .filter_map(|n| series.destination_sum(destination, n, n).lag)
                .collect(),
        ),
        Condition::OhipStopped { .. } | Condition::StoreUnready => Figures::None,
    }
}

/// How many 10-second buckets a window covers (the current one included).
fn buckets_in(window: Duration) -> i64 {
    let seconds = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    (seconds + BUCKET_SECONDS - 1)
        .div_euclid(BUCKET_SECONDS)
        .clamp(1, BUCKETS as i64)
}

/// What a rule watches in particular.
fn subject(condition: &Condition) -> Option<&str> {
    match condition {
        Condition::RefusalShare { source, .. }
        | Condition::Quiet { source, .. }
        | Condition::OhipStopped { source, .. } => Some(source),
        Condition::DestinationFailing { destination, .. }
        | Condition::Backlog { destination, .. } => Some(destination),
        Condition::StoreUnready => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
