//! The console's pages. Every value is rendered through maud, which escapes it: a payload's
//! `<script>` is text here.

use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{self, Axis, Figure, Line, PALETTE};
use super::format::{self, count, milliseconds, short_id, time};
use crate::activity::RecentRequest;
use crate::admin::DestinationInfo;
use crate::admin::api::DeadLetterJson;
use crate::admin::views::{Delivery, DestinationOverview, Overview, SourceFigures, Stats};
use crate::store::Attempt;

/// The windows the overview's charts can show, chosen on the page (`?window=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
    FiveMinutes,
    Hour,
    Day,
}

impl Window {
    pub(super) const ALL: [Window; 3] = [Window::FiveMinutes, Window::Hour, Window::Day];

    /// The query value: `5m`, `1h`, `24h`.
    pub(super) fn param(self) -> &'static str {
        match self {
            Window::FiveMinutes => "5m",
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.param() == text)
    }

    pub(super) fn seconds(self) -> i64 {
        match self {
            Window::FiveMinutes => 5 * 60,
            Window::Hour => 60 * 60,
            Window::Day => 24 * 60 * 60,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Window::FiveMinutes => "last 5 min",
            Window::Hour => "last hour",
            Window::Day => "last 24 h",
        }
    }

    /// What the newest point covers.
    fn latest(self) -> &'static str {
        match self {
            Window::Day => "last 5 min",
            _ => "last 10 s",
        }
    }

    fn step(self) -> &'static str {
        match self {
            Window::Day => "5 min points",
            _ => "10 s points",
        }
    }

    /// The window to show when none is asked for: the last 5 minutes while the instance is
    /// younger than that (an hour's chart would squeeze all it did into its right edge), the
    /// last hour afterwards.
    pub(super) fn default_for(uptime_seconds: i64) -> Self {
        if uptime_seconds < Window::FiveMinutes.seconds() {
            Window::FiveMinutes
        } else {
            Window::Hour
        }
    }
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

pub(super) fn overview(overview: &Overview, stats: &Stats, window: Window) -> Markup {
    let with_date = window == Window::Day;
    let axis = Axis {
        window: window.label(),
        step: window.step(),
        first: stats
            .points
            .first()
            .map(|p| format::clock(p.time, with_date))
            .unwrap_or_default(),
        last: stats
            .points
            .last()
            .map(|p| format::clock(p.time, with_date))
            .unwrap_or_default(),
    };
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
    let totals = &stats.totals;
    let mut reasons: Vec<(String, u64)> = totals
        .rejections
        .iter()
        .map(|(reason, n)| ((*reason).to_owned(), *n))
        .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let latest_rate = stats
        .points
        .last()
        .map_or(0.0, |p| p.requests_per_second.values().sum::<f64>());
    let request_figures = [
        Figure::new(
            window.latest(),
            format!("{}\u{a0}req/s", format::decimal(latest_rate)),
        ),
        Figure::new(
            "peak",
            format!(
                "{}\u{a0}req/s",
                format::decimal(totals.peak_requests_per_second)
            ),
        ),
        Figure::new("requests", count(totals.requests)),
        Figure::new(
            "accepted",
            count(totals.outcomes.get("accepted").copied().unwrap_or(0)),
        ),
        Figure::new("refused", count(totals.refused)).marked("bad", totals.refused > 0),
    ];
    let latency_figures = [
        Figure::new("p50", milliseconds(totals.ingest_p50_ms)),
        Figure::new("p99", milliseconds(totals.ingest_p99_ms)),
        Figure::new(
            "latest p99",
            milliseconds(stats.points.iter().rev().find_map(|p| p.ingest_p99_ms)),
        ),
    ];
    let lag_figures: Vec<Figure> = if totals.delivery_lag.is_empty() {
        vec![Figure::new("waiting", "no sample in this window")]
    } else {
        totals
            .delivery_lag
            .iter()
            .flat_map(|(name, lag)| {
                [
                    Figure::new(format!("{name} now"), count(lag.latest))
                        .marked("warn", lag.latest > 0),
                    Figure::new(format!("{name} peak"), count(lag.peak)),
                ]
            })
            .collect()
    };
    html! {
        h1 { "Overview" }
        (store_line(overview))
        nav.windows aria-label="Chart window" {
            span.muted { "Charts over the " }
            @for choice in Window::ALL {
                @if choice == window {
                    a.current href={ "/?window=" (choice.param()) } aria-current="page" { (choice.label()) }
                } @else {
                    a href={ "/?window=" (choice.param()) } { (choice.label()) }
                }
            }
        }
        div.charts {
            (charts::lines("Requests per second, by outcome", "req/s", &request_lines, &axis, &request_figures))
            figure.chart {
                figcaption { "Rejection reasons, " (window.label()) }
                (charts::figures(&[Figure::new("rejected", count(totals.outcomes.get("rejected").copied().unwrap_or(0)))]))
                (charts::bars(&reasons))
            }
            (charts::lines("Ingest latency, p99", "ms", &latency, &axis, &latency_figures))
            (charts::lines("Delivery lag (events waiting)", "events", &lag, &axis, &lag_figures))
        }
        h2 { "Sources" }
        div.scroll { table #sources {
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
                        td.number { (count(source.last_5m.requests)) }
                        td.number { (count(source.last_5m.accepted)) }
                        td.number { (count(source.last_5m.duplicates)) }
                        td.number.bad[refused(&source.last_5m) > 0] { (count(refused(&source.last_5m))) }
                        td.number { (milliseconds(source.last_5m.p50_ms)) }
                        td.number { (milliseconds(source.last_5m.p99_ms)) }
                        td.number { (count(source.last_1h.requests)) }
                        td { (refusals(&source.last_1h)) }
                    }
                }
            }
        } }
        @if !overview.streams.is_empty() {
            h2 { "OHIP streams" }
            div.scroll { table {
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
                            td.number { (count(stream.events)) }
                            td { @for (code, n) in &stream.disconnects { code { (code) } " " (n) " " } }
                            td.bad { (stream.gap.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
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
            dt { "Running since" } dd { (time(overview.started_at)) " · porter " (overview.version) }
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
            div.scroll { table.destinations {
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
                            td.number { (d.lag.map_or_else(|| "–".to_owned(), count)) }
                            td.number { (count(d.last_1h.delivered)) }
                            td.number.warn[d.last_1h.failed > 0] { (count(d.last_1h.failed)) }
                            td.number.bad[d.last_1h.dead_lettered > 0] { (count(d.last_1h.dead_lettered)) }
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
            } }
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
            div.scroll {
                table #requests {
                    colgroup {
                        col.time; col.source; col.request; col.status; col.outcome; col.why;
                        col.events; col.latency;
                    }
                    thead { tr {
                        th { "Time (UTC)" } th { "Source" } th { "Request" } th.number { "Status" }
                        th { "Outcome" } th { "Why" } th { "Events" } th.number { "Latency" }
                    } }
                    tbody {
                        @for request in requests {
                            tr.request {
                                td.time { (time(request.time)) }
                                td.clip title=[request.source.as_deref()] { (request.source.as_deref().unwrap_or("–")) }
                                td.clip title={ (request.method) " " (request.path) } { code { (request.method) " " (request.path) } }
                                td.number.bad[request.status >= 400] { (request.status) }
                                td.clip title=(request.outcome) { (request.outcome) }
                                td {
                                    @if let Some(reason) = request.reason { span.bad { (reason) } }
                                    @if let Some(diagnosis) = &request.diagnosis {
                                        (diagnosed(diagnosis))
                                    }
                                }
                                td { (event_links(&request.event_ids)) }
                                td.number { (milliseconds(Some(request.latency_ms))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A diagnosis in a table cell: its first two lines, the rest and its fields when opened.
fn diagnosed(diagnosis: &crate::activity::Diagnosed) -> Markup {
    html! {
        details.diagnosis {
            summary title="The whole diagnosis" {
                strong { (diagnosis.code) } ": " (diagnosis.message)
            }
            @if let Some(fields) = diagnosis.details.as_object().filter(|f| !f.is_empty()) {
                dl.fields {
                    @for (name, value) in fields {
                        dt { (name) }
                        dd { code { (value.as_str().map_or_else(|| value.to_string(), str::to_owned)) } }
                    }
                }
            }
        }
    }
}

/// How many of a request's events its row lists before the rest fold away.
const EVENTS_SHOWN: usize = 2;

/// Links to events, shortened, the full id in each link's title.
fn event_links(ids: &[String]) -> Markup {
    let link = |id: &String| {
        html! { a.id href={ "/events/" (segment(id)) } title=(id) { code { (short_id(id)) } } }
    };
    html! {
        @for id in ids.iter().take(EVENTS_SHOWN) { (link(id)) }
        @if ids.len() > EVENTS_SHOWN {
            details.more {
                summary { "+" (ids.len() - EVENTS_SHOWN) " more" }
                @for id in &ids[EVENTS_SHOWN..] { (link(id)) }
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
            div.scroll { table #events {
                thead { tr { th { "Received (UTC)" } th { "Event" } th { "Type" } th { "Source" } th { "Vendor type" } } }
                tbody {
                    @for event in events {
                        tr {
                            td.time { (event.receivedat.as_deref().map_or_else(|| "–".to_owned(), format::time_text)) }
                            td { a href={ "/events/" (segment(&event.id)) } { code { (event.id) } } }
                            td { (event.event_type) }
                            td { (event.source) }
                            td { (event.providereventtype.as_deref().unwrap_or("–")) }
                        }
                    }
                }
            } }
        }
    }
}

pub(super) fn event(id: &str, pretty: &str, deliveries: &[Delivery]) -> Markup {
    html! {
        h1.event { "Event " code { (id) } }
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p.empty { "No destinations are configured." }
        } @else {
            div.scroll { table #deliveries {
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
            } }
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
            ol.attempts {
                @for attempt in attempts {
                    li {
                        (time(attempt.at)) " · "
                        @if let Some(status) = attempt.status { (status) " · " }
                        span class=(if attempt.delivered() { "ok" } else { "bad" }) { (attempt.outcome.to_string()) }
                        " · " (milliseconds(Some(attempt.duration_ms as f64)))
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
            div.scroll { table #dead-letters {
                thead { tr { th { "Dead letter" } th { "Destination" } th { "Event" } th.number { "Attempts" } th { "Last error" } th {} } }
                tbody {
                    @for letter in dead {
                        tr {
                            td { code title=(letter.id) { (short_id(&letter.id)) } }
                            td { (letter.destination) }
                            td { a.id href={ "/events/" (segment(&letter.event_id)) } title=(letter.event_id) { code { (short_id(&letter.event_id)) } } }
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
            } }
        }
    }
}

pub(super) fn alerts(snapshot: &crate::alerts::Snapshot) -> Markup {
    html! {
        h1 { "Alerts" }
        @if snapshot.rules.is_empty() {
            p.empty { "No alert rules are configured ([[alerts]] in porter's configuration; see the README's \"Alerts\")." }
        } @else {
            div.scroll { table #alert-rules {
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
            } }
        }
        h2 { "History" }
        @if snapshot.history.is_empty() {
            p.empty { "Nothing has fired since porter started." }
        } @else {
            div.scroll { table #alert-history {
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
            } }
        }
        @if !snapshot.targets.is_empty() {
            h2 { "Notify targets" }
            div.scroll { table #alert-targets {
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
            } }
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
