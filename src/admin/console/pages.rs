//! The console's pages. Every value is rendered through maud, which escapes it: a payload's
//! `<script>` is text here.

use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{self, Line, PALETTE};
use crate::activity::RecentRequest;
use crate::admin::DestinationInfo;
use crate::admin::api::DeadLetterJson;
use crate::admin::views::{Delivery, DestinationOverview, Overview, SourceFigures, Stats};
use crate::store::Attempt;

/// A time as the console shows it: UTC, to the second.
fn time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn milliseconds(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.2} ms"))
}

/// What a path segment or query value keeps unencoded (RFC 3986's unreserved characters).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment or query value for a link (ids are porter's own, but nothing is trusted).
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

pub(super) fn notice(done: Option<&str>) -> Markup {
    let text = match done {
        Some("replayed") => "Dead letter replayed: it is due for delivery now.",
        Some("replayed_all") => "Every dead letter was replayed.",
        Some("not_found") => "That dead letter is gone (replayed already?).",
        Some("paused") => "Destination paused: events keep accumulating until it is resumed.",
        Some("resumed") => "Destination resumed: delivery continues.",
        _ => return html! {},
    };
    html! { p.notice { (text) } }
}

pub(super) fn overview(overview: &Overview, stats: &Stats) -> Markup {
    let first = stats
        .points
        .first()
        .map(|p| p.time.strftime("%H:%M").to_string())
        .unwrap_or_default();
    let last = stats
        .points
        .last()
        .map(|p| p.time.strftime("%H:%M").to_string())
        .unwrap_or_default();
    let outcomes = [
        "accepted",
        "duplicate",
        "rejected",
        "unavailable",
        "not_found",
    ];
    let request_lines: Vec<Line> = outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| Line {
            label: (*outcome).to_owned(),
            colour: PALETTE[i],
            values: stats
                .points
                .iter()
                .map(|p| Some(p.requests_per_second.get(outcome).copied().unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    let latency = [Line {
        label: "ingest p99".to_owned(),
        colour: PALETTE[3],
        values: stats.points.iter().map(|p| p.ingest_p99_ms).collect(),
    }];
    let lag: Vec<Line> = overview
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| Line {
            label: d.name.clone(),
            colour: PALETTE[(i + 3) % PALETTE.len()],
            values: stats
                .points
                .iter()
                .map(|p| p.delivery_lag.get(&d.name).map(|n| *n as f64))
                .collect(),
        })
        .collect();
    let mut reasons: Vec<(String, u64)> = overview
        .sources
        .iter()
        .flat_map(|s| s.last_1h.rejections.iter())
        .fold(
            std::collections::BTreeMap::<&str, u64>::new(),
            |mut all, (reason, n)| {
                *all.entry(reason).or_default() += n;
                all
            },
        )
        .into_iter()
        .map(|(reason, n)| (reason.to_owned(), n))
        .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    html! {
        h1 { "Overview" }
        (store_line(overview))
        div.charts {
            (charts::lines("Requests per second, by outcome", "req/s", &request_lines, &first, &last))
            (charts::bars("Rejection reasons, last hour", &reasons))
            (charts::lines("Ingest latency, p99", "ms", &latency, &first, &last))
            (charts::lines("Delivery lag (events waiting)", "events", &lag, &first, &last))
        }
        h2 { "Sources" }
        table {
            thead { tr {
                th { "Source" } th { "Provider" } th { "Route" }
                th.number { "Requests 5 min" } th.number { "Accepted" } th.number { "Duplicates" }
                th.number { "Refused" } th.number { "p50" } th.number { "p99" } th.number { "Requests 1 h" }
                th { "Refusals, last hour" }
            } }
            tbody {
                @for source in &overview.sources {
                    tr {
                        td { a href={ "/requests?source=" (segment(&source.name)) } { (source.name) } }
                        td { (source.provider) }
                        td { code { (source.path) } }
                        td.number { (source.last_5m.requests) }
                        td.number { (source.last_5m.accepted) }
                        td.number { (source.last_5m.duplicates) }
                        td.number.bad[refused(&source.last_5m) > 0] { (refused(&source.last_5m)) }
                        td.number { (milliseconds(source.last_5m.p50_ms)) }
                        td.number { (milliseconds(source.last_5m.p99_ms)) }
                        td.number { (source.last_1h.requests) }
                        td { (refusals(&source.last_1h)) }
                    }
                }
            }
        }
        @if !overview.streams.is_empty() {
            h2 { "OHIP streams" }
            table {
                thead { tr {
                    th { "Source" } th { "State" } th { "Offset" } th { "Last event" }
                    th.number { "Events stored" } th { "Disconnects" } th { "Gap" }
                } }
                tbody {
                    @for stream in &overview.streams {
                        tr {
                            td { a href={ "/events?source=" (segment(&stream.source)) } { (stream.source) } }
                            @match &stream.state {
                                crate::ohip::State::Streaming => td.ok { (stream.state.label()) },
                                crate::ohip::State::Stopped { .. } => td.bad { (stream.state.label()) },
                                _ => td.warn { (stream.state.label()) },
                            }
                            td { code { (stream.offset.as_deref().unwrap_or("-")) } }
                            td { (stream.last_event_at.map(time).unwrap_or_else(|| "-".to_owned())) }
                            td.number { (stream.events) }
                            td { @for (code, n) in &stream.disconnects { code { (code) } " " (n) " " } }
                            td.bad { (stream.gap.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        h2 { "Destinations" }
        (destinations_table(&overview.destinations, None))
    }
}

fn refused(figures: &SourceFigures) -> u64 {
    figures.rejected + figures.other.values().sum::<u64>()
}

fn refusals(figures: &SourceFigures) -> Markup {
    html! {
        @for (reason, count) in &figures.rejections {
            span.bad { (reason) } " " (count) " "
        }
        @for (outcome, count) in &figures.other {
            span.warn { (outcome) } " " (count) " "
        }
    }
}

fn store_line(overview: &Overview) -> Markup {
    html! {
        dl.facts {
            dt { "Store" }
            dd {
                (overview.store.kind) " · "
                @if overview.store.ready && overview.store.intake_open {
                    span.ok { "ready" }
                } @else if let Some(error) = &overview.store.error {
                    span.bad { "unavailable: " (error) }
                } @else {
                    span.warn { "not taking events yet (creating delivery groups)" }
                }
            }
            dt { "Running since" } dd { (time(overview.started_at)) " UTC · porter " (overview.version) }
            @if overview.records_dropped > 0 {
                dt { "Not recorded" } dd.warn { (overview.records_dropped) " requests (the recorder could not keep up)" }
            }
        }
    }
}

pub(super) fn destinations_table(
    destinations: &[DestinationOverview],
    infos: Option<&[DestinationInfo]>,
) -> Markup {
    html! {
        @if destinations.is_empty() {
            p.empty { "No destinations are configured: events stay in the store for consumers to read." }
        } @else {
            table {
                thead { tr {
                    th { "Destination" } th { "Kind" } th { "Target" }
                    @if infos.is_some() { th { "Events" } }
                    th.number { "Waiting" } th.number { "Delivered 1 h" } th.number { "Failed 1 h" }
                    th.number { "Dead-lettered 1 h" } th { "State" }
                    @if infos.is_some() { th {} }
                } }
                tbody {
                    @for d in destinations {
                        tr {
                            td { (d.name) }
                            td { (d.kind) }
                            td { @if let Some(target) = &d.target { code { (target) } } }
                            @if let Some(infos) = infos {
                                td { (infos.iter().find(|i| i.name == d.name).map(|i| i.filter.to_string()).unwrap_or_default()) }
                            }
                            td.number { (d.lag.map_or_else(|| "–".to_owned(), |n| n.to_string())) }
                            td.number { (d.last_1h.delivered) }
                            td.number.warn[d.last_1h.failed > 0] { (d.last_1h.failed) }
                            td.number.bad[d.last_1h.dead_lettered > 0] { (d.last_1h.dead_lettered) }
                            td {
                                @if d.kind == "redis_stream" { span.muted { "read by its consumers" } }
                                @else if d.paused { span.warn { "paused" } }
                                @else { span.ok { "delivering" } }
                            }
                            @if infos.is_some() {
                                td {
                                    @if d.kind != "redis_stream" {
                                        @let action = if d.paused { "resume" } else { "pause" };
                                        form.inline method="post" action={ "/destinations/" (segment(&d.name)) "/" (action) } {
                                            button.action type="submit" { @if d.paused { "Resume" } @else { "Pause" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn requests(
    requests: &[RecentRequest],
    sources: &[String],
    source: Option<&str>,
    outcome: Option<&str>,
) -> Markup {
    html! {
        h1 { "Recent requests" }
        form.filters method="get" action="/requests" {
            label { "Source"
                select name="source" {
                    option value="" { "every source" }
                    @for name in sources {
                        option value=(name) selected[source == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { "Outcome"
                select name="outcome" {
                    option value="" { "every outcome" }
                    @for label in crate::activity::OUTCOMES {
                        option value=(label) selected[outcome == Some(label)] { (label) }
                    }
                }
            }
            button.action type="submit" { "Show" }
        }
        @if requests.is_empty() {
            p.empty { "No requests recorded on this instance yet." }
        } @else {
            table #requests {
                thead { tr {
                    th { "Time (UTC)" } th { "Source" } th { "Request" } th.number { "Status" }
                    th { "Outcome" } th { "Why" } th { "Events" } th.number { "Latency" }
                } }
                tbody {
                    @for request in requests {
                        tr.request {
                            td { (time(request.time)) }
                            td { (request.source.as_deref().unwrap_or("–")) }
                            td { code { (request.method) " " (request.path) } }
                            td.number.bad[request.status >= 400] { (request.status) }
                            td { (request.outcome) }
                            td {
                                @if let Some(reason) = request.reason { span.bad { (reason) } }
                                @if let Some(diagnosis) = &request.diagnosis {
                                    div.diagnosis {
                                        strong { (diagnosis.code) } ": " (diagnosis.message)
                                    }
                                }
                            }
                            td {
                                @for id in &request.event_ids {
                                    a href={ "/events/" (segment(id)) } { code { (id) } } br;
                                }
                            }
                            td.number { (format!("{:.2} ms", request.latency_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// What the events list shows of an event: never its data (guest data stays on its page).
#[derive(Debug, Deserialize)]
pub(super) struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub receivedat: Option<String>,
    pub providereventtype: Option<String>,
}

pub(super) fn events(
    events: &[EventSummary],
    sources: &[String],
    source: Option<&str>,
    event_type: Option<&str>,
) -> Markup {
    html! {
        h1 { "Recent events" }
        form.filters method="get" action="/events" {
            label { "Source"
                select name="source" {
                    option value="" { "every source" }
                    @for name in sources {
                        option value=(name) selected[source == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { "Type"
                input type="text" name="type" value=(event_type.unwrap_or_default()) placeholder="reservation.created";
            }
            button.action type="submit" { "Show" }
        }
        @if events.is_empty() {
            p.empty { "No events stored yet." }
        } @else {
            table #events {
                thead { tr { th { "Received (UTC)" } th { "Event" } th { "Type" } th { "Source" } th { "Vendor type" } } }
                tbody {
                    @for event in events {
                        tr {
                            td { (event.receivedat.as_deref().unwrap_or("–")) }
                            td { a href={ "/events/" (segment(&event.id)) } { code { (event.id) } } }
                            td { (event.event_type) }
                            td { (event.source) }
                            td { (event.providereventtype.as_deref().unwrap_or("–")) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn event(id: &str, pretty: &str, deliveries: &[Delivery]) -> Markup {
    html! {
        h1 { "Event " code { (id) } }
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p.empty { "No destinations are configured." }
        } @else {
            table #deliveries {
                thead { tr { th { "Destination" } th { "State" } th { "Attempts" } } }
                tbody {
                    @for delivery in deliveries {
                        tr {
                            td { (delivery.destination) " " span.muted { "(" (delivery.kind) ")" } }
                            td {
                                (delivery.state)
                                @if let Some(next) = delivery.next_attempt_at {
                                    span.muted { " · next attempt " (time(next)) " UTC" }
                                }
                            }
                            td { (attempts(&delivery.attempts)) }
                        }
                    }
                }
            }
        }
        h2 { "CloudEvent" }
        pre #event { (pretty) }
    }
}

fn attempts(attempts: &[Attempt]) -> Markup {
    html! {
        @if attempts.is_empty() {
            span.muted { "none yet" }
        } @else {
            ol {
                @for attempt in attempts {
                    li {
                        (time(attempt.at)) " · "
                        @if let Some(status) = attempt.status { (status) " · " }
                        span class=(if attempt.delivered() { "ok" } else { "bad" }) { (attempt.outcome.to_string()) }
                        " · " (attempt.duration_ms) " ms"
                    }
                }
            }
        }
    }
}

pub(super) fn dead_letters(dead: &[DeadLetterJson]) -> Markup {
    html! {
        h1 { "Dead letters" }
        p.muted {
            "Events a destination never accepted within its retry schedule. Replaying puts one back "
            "into its destination's schedule, due now."
        }
        @if dead.is_empty() {
            p.empty { "No dead letters." }
        } @else {
            form.inline method="post" action="/dead-letters/replay" {
                button.action.primary type="submit" { "Replay all" }
            }
            table #dead-letters {
                thead { tr { th { "Dead letter" } th { "Destination" } th { "Event" } th.number { "Attempts" } th { "Last error" } th {} } }
                tbody {
                    @for letter in dead {
                        tr {
                            td { code { (letter.id) } }
                            td { (letter.destination) }
                            td { a href={ "/events/" (segment(&letter.event_id)) } { code { (letter.event_id) } } }
                            td.number { (letter.attempts.len()) }
                            td.bad { (letter.last_error.as_deref().unwrap_or("–")) }
                            td {
                                form.inline method="post" action={ "/dead-letters/" (segment(&letter.id)) "/replay" } {
                                    button.action type="submit" { "Replay" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn alerts(snapshot: &crate::alerts::Snapshot) -> Markup {
    html! {
        h1 { "Alerts" }
        @if snapshot.rules.is_empty() {
            p.empty { "No alert rules are configured ([[alerts]] in porter's configuration; see the README's \"Alerts\")." }
        } @else {
            table #alert-rules {
                thead { tr {
                    th { "Alert" } th { "When" } th { "Watching" } th { "State" } th { "Since (UTC)" }
                    th { "Now" } th { "Notifies" }
                } }
                tbody {
                    @for rule in &snapshot.rules {
                        tr {
                            td { (rule.name) }
                            td { code { (rule.when) } }
                            td { (rule.subject.as_deref().unwrap_or("–")) }
                            @match rule.state {
                                "firing" => td.bad { strong { "firing" } },
                                "pending" => td.warn { "pending" },
                                "ok" => td.ok { "ok" },
                                other => td.muted { (other) },
                            }
                            td { (rule.since.map(time).unwrap_or_else(|| "–".to_owned())) }
                            td { (rule.summary.as_deref().unwrap_or("not evaluated yet")) }
                            td { (if rule.notify.is_empty() { "–".to_owned() } else { rule.notify.join(", ") }) }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        @if snapshot.history.is_empty() {
            p.empty { "Nothing has fired since porter started." }
        } @else {
            table #alert-history {
                thead { tr { th { "Time (UTC)" } th { "Alert" } th { "State" } th { "Since (UTC)" } th { "Summary" } } }
                tbody {
                    @for entry in &snapshot.history {
                        tr {
                            td { (time(entry.at)) }
                            td { (entry.alert) }
                            @if entry.state == "firing" {
                                td.bad { @if entry.repeat { "firing (reminder)" } @else { "firing" } }
                            } @else {
                                td.ok { (entry.state) }
                            }
                            td { (time(entry.since)) }
                            td { (entry.summary) }
                        }
                    }
                }
            }
        }
        @if !snapshot.targets.is_empty() {
            h2 { "Notify targets" }
            table #alert-targets {
                thead { tr { th { "Target" } th { "Kind" } th.number { "Sent" } th.number { "Failed" } th { "Last sent (UTC)" } th { "Last error" } } }
                tbody {
                    @for target in &snapshot.targets {
                        tr {
                            td { (target.name) }
                            td { (target.kind) }
                            td.number { (target.sent) }
                            td.number.bad[target.failed > 0] { (target.failed) }
                            td { (target.last_sent_at.map(time).unwrap_or_else(|| "–".to_owned())) }
                            td.bad { (target.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn not_found(what: &str) -> Markup {
    html! {
        h1 { "Not found" }
        p { (what) }
    }
}

pub(super) fn store_problem(error: &str) -> Markup {
    html! {
        h1 { "The store is unavailable" }
        p.problem { (error) }
    }
}
