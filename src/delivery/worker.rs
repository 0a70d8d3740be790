//! The delivery workers: one task per destination that takes new events into the schedule,
//! leases due ones, and attempts each under the destination's concurrency limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use porter_providers::Event;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::memory_queue::MemoryQueue;
use super::redis_queue::RedisQueue;
use super::{Attempt, Job, Response, Route, Target, next_delay};
use crate::store::StoreError;

/// Polling bounds: fast while there is work, slower when idle.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(200);
/// How often the backlog gauge is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Where the schedules live.
#[derive(Debug, Clone)]
pub enum Queue {
    Memory(Arc<MemoryQueue>),
    Redis(Arc<RedisQueue>),
}

/// Running delivery workers.
#[derive(Debug)]
pub struct Deliveries {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Deliveries {
    /// Creates every destination's consumer group, then starts one worker per route and a lag
    /// reporter per `redis_stream` group. `intake` is closed until the groups exist (retrying
    /// while Redis is unreachable), so that no event is stored before its groups can see it.
    pub fn start(
        queue: Queue,
        routes: Vec<Route>,
        stream_groups: Vec<String>,
        intake: Arc<AtomicBool>,
    ) -> Self {
        if let Queue::Redis(redis) = &queue {
            intake.store(false, Ordering::Release);
            let redis = Arc::clone(redis);
            let names: Vec<String> = routes
                .iter()
                .map(|r| r.name.clone())
                .chain(stream_groups.iter().cloned())
                .collect();
            // From here on, appending an event first recreates any of these groups Redis lost.
            redis.store().expect_groups(&names);
            tokio::spawn(async move {
                for name in names {
                    while let Err(error) = redis.ensure_group(&name).await {
                        tracing::warn!(destination = %name, %error, "cannot create the consumer group yet; not storing events");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                intake.store(true, Ordering::Release);
            });
        }
        Self::start_workers(queue, routes, stream_groups)
    }

    /// Starts one worker per route, and a lag reporter per `redis_stream` group.
    fn start_workers(queue: Queue, routes: Vec<Route>, stream_groups: Vec<String>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<()>> = routes
            .into_iter()
            .map(|route| tokio::spawn(run(queue.clone(), route, stopped.clone())))
            .collect();
        if let Queue::Redis(redis) = &queue {
            for group in stream_groups {
                tasks.push(tokio::spawn(report_stream_group(
                    Arc::clone(redis),
                    group,
                    stopped.clone(),
                )));
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

async fn run(queue: Queue, route: Route, mut stopped: watch::Receiver<bool>) {
    if let Queue::Redis(redis) = &queue {
        while let Err(error) = redis.ensure_group(&route.name).await {
            tracing::warn!(destination = %route.name, %error, "cannot create the consumer group yet");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.changed() => return,
            }
        }
    }
    let semaphore = Arc::new(Semaphore::new(route.concurrency));
    let mut in_flight = JoinSet::new();
    let mut poll = POLL_MIN;
    let mut last_reclaim = Instant::now();
    let mut last_lag = Instant::now() - LAG_EVERY;
    while !*stopped.borrow() {
        while in_flight.try_join_next().is_some() {}
        let now = Timestamp::now();
        let reclaim = last_reclaim.elapsed() >= route.lease / 2;
        if reclaim {
            last_reclaim = Instant::now();
        }
        let found = match cycle(&queue, &route, &semaphore, &mut in_flight, now, reclaim).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(destination = %route.name, %error, "delivery paused: the store is unavailable");
                0
            }
        };
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = Instant::now();
            report_backlog(&queue, &route.name).await;
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
async fn cycle(
    queue: &Queue,
    route: &Route,
    semaphore: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
    now: Timestamp,
    reclaim: bool,
) -> Result<usize, StoreError> {
    let now_ms = now.as_millisecond();
    let until_ms =
        now_ms.saturating_add(i64::try_from(route.lease.as_millis()).unwrap_or(i64::MAX));
    let mut found = 0;
    let shards = match queue {
        Queue::Memory(_) => 1,
        Queue::Redis(redis) => redis.shard_count(),
    };
    for shard in 0..shards {
        if let Queue::Redis(redis) = queue {
            found += redis
                .intake(&route.name, &route.filter, shard, now_ms)
                .await?;
            if reclaim {
                found += redis
                    .reclaim(&route.name, &route.filter, shard, route.lease, now_ms)
                    .await?;
            }
        }
        let free = semaphore.available_permits();
        if free == 0 {
            continue;
        }
        let jobs = match queue {
            Queue::Memory(memory) => memory.lease(&route.name, free, now_ms, until_ms),
            Queue::Redis(redis) => {
                redis
                    .lease(&route.name, shard, free, route.ordered, now_ms, until_ms)
                    .await?
            }
        };
        found += jobs.len();
        for job in jobs {
            let Ok(permit) = Arc::clone(semaphore).acquire_owned().await else {
                break;
            };
            let (queue, route) = (queue.clone(), route.clone());
            in_flight.spawn(async move {
                attempt(&queue, &route, job).await;
                drop(permit);
            });
        }
    }
    Ok(found)
}

/// Attempts one job and records what happened; store errors leave the job leased, so it is
/// attempted again when the lease runs out.
async fn attempt(queue: &Queue, route: &Route, job: Job) {
    let now = Timestamp::now();
    let (response, took) = if job.event.is_empty() {
        let reason = "the event is no longer in the stream (trimmed before delivery)".to_owned();
        (
            Response::Failed {
                status: None,
                reason,
                retry_after: None,
            },
            Duration::ZERO,
        )
    } else {
        match &route.target {
            Target::Http(sender) => sender.send(&job.event_id, &job.event, now).await,
            Target::Handler(handler) => call_handler(handler.as_ref(), &job.event).await,
        }
    };
    let (status, outcome) = match &response {
        Response::Delivered { status } => (*status, "delivered".to_owned()),
        Response::Failed { status, reason, .. } => (*status, reason.clone()),
    };
    let record = Attempt {
        at: now,
        status,
        outcome,
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    };
    let destination = route.name.clone();
    metrics::counter!("porter_delivery_attempts_total", "destination" => destination.clone())
        .increment(1);
    metrics::histogram!("porter_delivery_duration_seconds", "destination" => destination.clone())
        .record(took.as_secs_f64());
    let attempt_number = job.attempts + 1;
    let result = finish(queue, route, &job, record, &response, now).await;
    let label = match (&response, &result) {
        (_, Err(_)) => "store_error",
        (Response::Delivered { .. }, Ok(_)) => "delivered",
        (Response::Failed { .. }, Ok(Next::DeadLettered)) => "dead_lettered",
        (Response::Failed { .. }, Ok(_)) => "failed",
    };
    metrics::counter!("porter_deliveries_total", "destination" => destination.clone(), "result" => label).increment(1);
    if label == "dead_lettered" {
        metrics::counter!("porter_dead_letters_total", "destination" => destination.clone())
            .increment(1);
    }
    let cause = match &response {
        Response::Failed { reason, .. } => reason.as_str(),
        Response::Delivered { .. } => "",
    };
    match result {
        Err(error) => {
            tracing::warn!(destination, event = %job.event_id, %error, "could not record a delivery attempt; it will be attempted again");
        }
        Ok(Next::Retry { due_ms }) => tracing::warn!(
            destination,
            event = %job.event_id,
            attempt = attempt_number,
            cause,
            next_attempt = %Timestamp::from_millisecond(due_ms).map_or_else(|_| due_ms.to_string(), |at| at.to_string()),
            "delivery attempt failed; retrying"
        ),
        Ok(Next::DeadLettered) => tracing::error!(
            destination,
            event = %job.event_id,
            attempts = attempt_number,
            cause,
            "delivery failed for good: dead-lettered"
        ),
        Ok(Next::Done) => {
            tracing::debug!(destination, event = %job.event_id, attempt = attempt_number, "delivered")
        }
    }
}

/// What became of a job after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Done,
    /// Due again at this Unix millisecond.
    Retry {
        due_ms: i64,
    },
    DeadLettered,
}

/// Records the attempt and moves the job on.
async fn finish(
    queue: &Queue,
    route: &Route,
    job: &Job,
    record: Attempt,
    response: &Response,
    now: Timestamp,
) -> Result<Next, StoreError> {
    let failures = job.attempts + 1;
    let next = match response {
        Response::Delivered { .. } => Next::Done,
        Response::Failed { retry_after, .. } => {
            match next_delay(&route.retry, failures, &job.entry, *retry_after) {
                Some(delay) if !job.event.is_empty() => Next::Retry {
                    due_ms: due(now, delay),
                },
                _ => Next::DeadLettered,
            }
        }
    };
    let reason = match response {
        Response::Failed { reason, .. } => reason.as_str(),
        Response::Delivered { .. } => "",
    };
    match queue {
        Queue::Memory(memory) => {
            memory.record(&route.name, job, record);
            match next {
                Next::Done => memory.complete(&route.name, job),
                Next::Retry { due_ms } => memory.reschedule(&route.name, job, due_ms),
                Next::DeadLettered => memory.dead_letter(&route.name, job),
            }
        }
        Queue::Redis(redis) => {
            redis.record(&route.name, job, &record).await?;
            match next {
                Next::Done => redis.complete(&route.name, job).await?,
                Next::Retry { due_ms } => redis.reschedule(&route.name, job, due_ms).await?,
                Next::DeadLettered => redis.dead_letter(&route.name, job, reason).await?,
            }
        }
    }
    Ok(next)
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

async fn report_backlog(queue: &Queue, destination: &str) {
    let backlog = match queue {
        Queue::Memory(memory) => Some(memory.backlog(destination) as u64),
        Queue::Redis(redis) => redis.backlog(destination).await.ok(),
    };
    if let Some(backlog) = backlog {
        metrics::gauge!("porter_consumer_lag", "destination" => destination.to_owned())
            .set(backlog as f64);
    }
}

/// For services that read the stream themselves: keeps their group in place and reports how
/// far behind it is.
async fn report_stream_group(
    redis: Arc<RedisQueue>,
    group: String,
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
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_EVERY) => {}
            _ = stopped.changed() => {}
        }
    }
}
