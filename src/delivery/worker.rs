//! The delivery workers: one task per destination that takes new events into the schedule,
//! leases due ones, and attempts each under the destination's concurrency limit. They run on
//! the [`Schedule`] trait, so every store delivers with this one loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use porter_providers::Event;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::rate::Limiter;
use super::{Plan, Response, Route, Schedules, Target, next_delay};
use crate::activity::{Activity, AttemptResult};
use crate::clock::Clock;
use crate::store::schedule::Lease;
use crate::store::{Attempt, Job, Next, Outcome, RedisSchedule, Schedule};
use crate::trace;

/// Polling bounds: fast while there is work, slower when idle.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(200);
/// How often the backlog gauge is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Running delivery workers.
#[derive(Debug)]
pub struct Deliveries {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Deliveries {
    /// Starts one worker per route of `plan`, and on Redis a lag reporter per `redis_stream`
    /// group. On Redis, `intake` stays closed until every destination's consumer group exists
    /// (retrying while Redis is unreachable), so that no event is stored before the groups that
    /// must deliver it; the groups are created here, once, and the workers wait for them.
    pub fn start(
        schedules: Schedules,
        plan: Plan,
        intake: Arc<AtomicBool>,
        clock: Clock,
        activity: Arc<Activity>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let crew = Crew { clock, activity };
        match schedules {
            Schedules::Memory(schedule) => {
                tasks.extend(workers(
                    &schedule,
                    plan.routes,
                    &intake,
                    &crew,
                    &stopped,
                    local_limiter,
                ));
            }
            Schedules::Local(schedule) => {
                tasks.extend(workers(
                    &schedule,
                    plan.routes,
                    &intake,
                    &crew,
                    &stopped,
                    local_limiter,
                ));
            }
            Schedules::Redis(schedule) => {
                let names = plan.group_names();
                // From here on, appending an event first recreates any group Redis lost.
                schedule.store().expect_groups(&names);
                intake.store(false, Ordering::Release);
                tasks.push(tokio::spawn(prepare(
                    Arc::clone(&schedule),
                    names,
                    Arc::clone(&intake),
                    stopped.clone(),
                )));
                let shared = Arc::clone(&schedule);
                let limiter = move |route: &Route| {
                    route
                        .rate
                        .map(|rate| Limiter::shared(rate, Arc::clone(&shared), &route.name))
                };
                tasks.extend(workers(
                    &schedule,
                    plan.routes,
                    &intake,
                    &crew,
                    &stopped,
                    limiter,
                ));
                for group in plan.stream_groups {
                    tasks.push(tokio::spawn(report_stream_group(
                        Arc::clone(&schedule),
                        group,
                        Arc::clone(&crew.activity),
                        stopped.clone(),
                    )));
                }
            }
        }
        Self { stop, tasks }
    }

    /// Stops taking new work and waits for attempts in flight (each bounded by its lease).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What every worker shares: the clock, and where attempts and backlogs are recorded.
#[derive(Debug, Clone)]
struct Crew {
    clock: Clock,
    activity: Arc<Activity>,
}

/// A bucket in this process, for stores that one instance delivers from.
fn local_limiter(route: &Route) -> Option<Limiter> {
    route.rate.map(Limiter::local)
}

fn workers<S: Schedule>(
    schedule: &Arc<S>,
    routes: Vec<Route>,
    intake: &Arc<AtomicBool>,
    crew: &Crew,
    stopped: &watch::Receiver<bool>,
    limiter: impl Fn(&Route) -> Option<Limiter>,
) -> Vec<JoinHandle<()>> {
    routes
        .into_iter()
        .map(|route| {
            let limiter = limiter(&route).map(Arc::new);
            tokio::spawn(run(
                Arc::clone(schedule),
                route,
                limiter,
                Arc::clone(intake),
                crew.clone(),
                stopped.clone(),
            ))
        })
        .collect()
}

/// Creates every destination's schedule (consumer group), then opens intake.
async fn prepare<S: Schedule>(
    schedule: Arc<S>,
    names: Vec<String>,
    intake: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    for name in names {
        while let Err(error) = schedule.prepare(&name).await {
            tracing::warn!(destination = %name, %error, "cannot create the consumer group yet; not storing events");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.changed() => return,
            }
        }
    }
    intake.store(true, Ordering::Release);
}

async fn run<S: Schedule>(
    schedule: Arc<S>,
    route: Route,
    limiter: Option<Arc<Limiter>>,
    intake: Arc<AtomicBool>,
    crew: Crew,
    mut stopped: watch::Receiver<bool>,
) {
    // The schedules exist once intake is open (see `prepare`).
    while !intake.load(Ordering::Acquire) {
        tokio::select! {
            () = tokio::time::sleep(POLL_MIN) => {}
            _ = stopped.changed() => return,
        }
    }
    let semaphore = Arc::new(Semaphore::new(route.concurrency));
    let mut in_flight = JoinSet::new();
    let mut poll = POLL_MIN;
    let mut last_reclaim = Instant::now();
    let mut last_lag = Instant::now() - LAG_EVERY;
    while !*stopped.borrow() {
        while in_flight.try_join_next().is_some() {}
        let reclaim = last_reclaim.elapsed() >= route.lease / 2;
        if reclaim {
            last_reclaim = Instant::now();
        }
        metrics::counter!("porter_delivery_rounds_total", "destination" => route.name.clone())
            .increment(1);
        let found = match cycle(
            &schedule,
            &route,
            limiter.as_deref(),
            &semaphore,
            &mut in_flight,
            &crew,
            reclaim,
        )
        .await
        {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(destination = %route.name, %error, "delivery paused: the store is unavailable");
                0
            }
        };
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = Instant::now();
            if let Ok(backlog) = schedule.backlog(&route.name).await {
                metrics::gauge!("porter_consumer_lag", "destination" => route.name.clone())
                    .set(backlog as f64);
                crew.activity.lag(&route.name, backlog);
            }
        }
        poll = if found > 0 {
            POLL_MIN
        } else {
            (poll * 2).min(POLL_MAX)
        };
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stopped.changed() => {}
        }
    }
    let drained = tokio::time::timeout(route.lease, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(destination = %route.name, "stopped with attempts in flight; their leases will expire and another instance will deliver them");
    }
}

/// One round: intake (and reclaim), lease, start attempts. Returns how many entries moved.
async fn cycle<S: Schedule>(
    schedule: &Arc<S>,
    route: &Route,
    limiter: Option<&Limiter>,
    semaphore: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
    crew: &Crew,
    reclaim: bool,
) -> Result<usize, crate::store::StoreError> {
    let now = crew.clock.now();
    let until = jiff::SignedDuration::try_from(route.lease)
        .ok()
        .and_then(|lease| now.checked_add(lease).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let mut found = 0;
    for shard in 0..schedule.shards() {
        found += schedule
            .intake(
                &route.name,
                &route.filter,
                shard,
                now,
                reclaim.then_some(route.lease),
            )
            .await?;
        let mut free = semaphore.available_permits();
        if let Some(limiter) = limiter {
            free = limiter.take(free).await;
        }
        if free == 0 {
            continue;
        }
        let lease = Lease {
            limit: free,
            ordered: route.ordered,
            now,
            until,
        };
        let leased = schedule.lease(&route.name, shard, lease).await;
        if let Some(limiter) = limiter {
            let used = leased.as_ref().map_or(0, Vec::len);
            limiter.give_back(free - used).await;
        }
        let jobs = leased?;
        found += jobs.len();
        for job in jobs {
            let Ok(permit) = Arc::clone(semaphore).acquire_owned().await else {
                break;
            };
            let (schedule, route, crew) = (Arc::clone(schedule), route.clone(), crew.clone());
            in_flight.spawn(async move {
                attempt(schedule.as_ref(), &route, job, &crew).await;
                drop(permit);
            });
        }
    }
    Ok(found)
}

/// Attempts one job and records what happened; store errors leave the job leased, so it is
/// attempted again when the lease runs out.
async fn attempt<S: Schedule>(schedule: &S, route: &Route, job: Job, crew: &Crew) {
    // A trace of its own, linked to the ingest trace the event names (none when tracing is off).
    let span = trace::attempt(
        &route.name,
        route.target.kind(),
        &job.event_id,
        job.attempts + 1,
        job.event.as_deref(),
    );
    let now = crew.clock.now();
    let (response, took) = match &job.event {
        None => (
            Response::Failed {
                status: None,
                reason: "the event is no longer in the stream (trimmed before delivery)".to_owned(),
                retry_after: None,
            },
            Duration::ZERO,
        ),
        Some(stored) => match redacted(route, stored) {
            Err(response) => (response, Duration::ZERO),
            Ok(event) => match &route.target {
                Target::Http(sender) => sender.send(&job.event_id, &event, now).await,
                #[cfg(feature = "nats")]
                Target::Nats(sender) => sender.send(&job.event_id, &event).await,
                #[cfg(feature = "amqp")]
                Target::Amqp(sender) => sender.send(&job.event_id, &event).await,
                Target::Handler(handler) => call_handler(handler.as_ref(), &event).await,
            },
        },
    };
    let (status, outcome) = match &response {
        Response::Delivered { status } => (*status, Outcome::Delivered),
        Response::Failed { status, reason, .. } => (*status, Outcome::Failed(reason.clone())),
    };
    let record = Attempt {
        at: now,
        status,
        outcome,
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    };
    let next = match &response {
        Response::Delivered { .. } => Next::Done,
        Response::Failed { retry_after, .. } => {
            match next_delay(&route.retry, job.attempts + 1, &job.entry, *retry_after) {
                Some(delay) if job.event.is_some() => Next::Retry {
                    due_ms: due(now, delay),
                },
                _ => Next::DeadLettered,
            }
        }
    };
    let destination = route.name.clone();
    metrics::counter!("porter_delivery_attempts_total", "destination" => destination.clone())
        .increment(1);
    metrics::histogram!("porter_delivery_duration_seconds", "destination" => destination.clone())
        .record(took.as_secs_f64());
    let cause = record.outcome.to_string();
    let result = schedule.finish(&route.name, &job, record, next).await;
    let label = match (&result, next) {
        (Err(_), _) => "store_error",
        (Ok(()), Next::Done) => "delivered",
        (Ok(()), Next::DeadLettered) => "dead_lettered",
        (Ok(()), Next::Retry { .. }) => "failed",
    };
    metrics::counter!("porter_deliveries_total", "destination" => destination.clone(), "result" => label).increment(1);
    trace::attempted(&span, label, status);
    if matches!((&result, next), (Ok(()), Next::DeadLettered)) {
        metrics::counter!("porter_dead_letters_total", "destination" => destination.clone())
            .increment(1);
    }
    if result.is_ok() {
        crew.activity.attempt(
            &destination,
            match next {
                Next::Done => AttemptResult::Delivered,
                Next::Retry { .. } => AttemptResult::Failed,
                Next::DeadLettered => AttemptResult::DeadLettered,
            },
        );
    }
    log_attempt(&destination, &job, result, next, &cause);
}

/// A failed attempt once at `warn` (where to, why, when next), a dead letter at `error`.
fn log_attempt(
    destination: &str,
    job: &Job,
    result: Result<(), crate::store::StoreError>,
    next: Next,
    cause: &str,
) {
    let attempt = job.attempts + 1;
    match (result, next) {
        (Err(error), _) => {
            tracing::warn!(destination, event = %job.event_id, %error, "could not record a delivery attempt; it will be attempted again");
        }
        (Ok(()), Next::Retry { due_ms }) => tracing::warn!(
            destination,
            event = %job.event_id,
            attempt,
            cause,
            next_attempt = %Timestamp::from_millisecond(due_ms).map_or_else(|_| due_ms.to_string(), |at| at.to_string()),
            "delivery attempt failed; retrying"
        ),
        (Ok(()), Next::DeadLettered) => tracing::error!(
            destination,
            event = %job.event_id,
            attempts = attempt,
            cause,
            "delivery failed for good: dead-lettered"
        ),
        (Ok(()), Next::Done) => {
            tracing::debug!(destination, event = %job.event_id, attempt, "delivered")
        }
    }
}

/// The event as the destination may see it: as stored, or with personal values hashed or
/// removed (`pii`). A stored event that does not parse is a failed attempt.
fn redacted<'a>(route: &Route, stored: &'a str) -> Result<std::borrow::Cow<'a, str>, Response> {
    match &route.redaction {
        None => Ok(std::borrow::Cow::Borrowed(stored)),
        Some(redaction) => redaction
            .apply(stored)
            .map(std::borrow::Cow::Owned)
            .map_err(|error| Response::Failed {
                status: None,
                reason: format!("the stored event does not parse: {error}"),
                retry_after: None,
            }),
    }
}

fn due(now: Timestamp, delay: Duration) -> i64 {
    now.as_millisecond()
        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}

async fn call_handler(handler: &dyn super::Handler, json: &str) -> (Response, Duration) {
    let started = Instant::now();
    let response = match serde_json::from_str::<Event>(json) {
        Err(error) => Response::Failed {
            status: None,
            reason: format!("the stored event does not parse: {error}"),
            retry_after: None,
        },
        Ok(event) => match handler.handle(&event).await {
            Ok(()) => Response::Delivered { status: None },
            Err(error) => Response::Failed {
                status: None,
                reason: error.0,
                retry_after: None,
            },
        },
    };
    (response, started.elapsed())
}

/// For services that read the stream themselves: keeps their group in place and reports how
/// far behind it is.
async fn report_stream_group(
    redis: Arc<RedisSchedule>,
    group: String,
    activity: Arc<Activity>,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        if redis.track_group(&group).await.is_ok() {
            let mut unread = 0;
            for shard in 0..redis.shard_count() {
                unread += redis.unread(&group, shard).await.unwrap_or(0);
            }
            metrics::gauge!("porter_consumer_lag", "destination" => group.clone())
                .set(unread as f64);
            activity.lag(&group, unread);
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_EVERY) => {}
            _ = stopped.changed() => {}
        }
    }
}
