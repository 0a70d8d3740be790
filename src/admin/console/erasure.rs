//! The console's "Guest data" page: erase one person, in two steps.
//!
//! "Find" is a dry run: it changes nothing and shows what would go, per kind, with an "Erase"
//! button carrying the same request. "Erase" acts, then redirects back (post/redirect/get),
//! where the audit records show what was done. The value typed in is never logged and never
//! appears in the audit records; it appears once, in the confirmation form sent back to the
//! operator who typed it.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Section, page};
use super::{Done, html as respond};
use crate::admin::Admin;
use crate::privacy::erase::{EraseError, Report, Request, erase};
use crate::privacy::{Person, PersonKind};
use crate::store::erase::{Erased, ErasureRecord};

/// How many audit records the page lists.
const RECORDS: usize = 50;

#[derive(Debug, Deserialize)]
pub(super) struct EraseForm {
    kind: String,
    value: String,
    #[serde(default)]
    source: String,
    /// `find` (a dry run) or `erase`.
    action: String,
}

pub(super) async fn show(State(admin): State<Arc<Admin>>, Query(done): Query<Done>) -> Response {
    let records = admin.gateway.store.erasures(RECORDS).await;
    let notice = match done.done.as_deref() {
        Some("erased") => Some("Erased. Destinations are told by an erasure.requested event."),
        _ => None,
    };
    respond(page(
        "Guest data",
        Section::GuestData,
        None,
        body(
            &admin,
            notice,
            None,
            None,
            records.as_deref().map_err(|e| e.to_string()),
        ),
    ))
}

pub(super) async fn submit(
    State(admin): State<Arc<Admin>>,
    Form(form): Form<EraseForm>,
) -> Response {
    let person = PersonKind::parse(&form.kind)
        .ok_or_else(|| "choose phone, email or guest id".to_owned())
        .and_then(|kind| Person::new(kind, &form.value).map_err(|e| e.to_string()));
    let person = match person {
        Ok(person) => person,
        Err(problem) => return problem_page(&admin, &problem).await,
    };
    let source = Some(form.source.clone()).filter(|s| !s.is_empty());
    let dry_run = form.action != "erase";
    let request = Request {
        person,
        source,
        dry_run,
        remember_for: crate::privacy::erase::remember_for(&admin.gateway.sources),
    };
    let destinations = admin.delivered_destinations();
    let now = admin.gateway.clock.now();
    match erase(
        &admin.gateway.store,
        &destinations,
        admin.privacy_key(),
        &request,
        now,
    )
    .await
    {
        Ok(report) if dry_run => {
            let records = admin.gateway.store.erasures(RECORDS).await;
            respond(page(
                "Guest data",
                Section::GuestData,
                None,
                body(
                    &admin,
                    None,
                    Some((&form, &report)),
                    None,
                    records.as_deref().map_err(|e| e.to_string()),
                ),
            ))
        }
        Ok(report) => {
            tracing::info!(
                kind = report.kind.as_str(),
                token = %report.token,
                erased = report.erased.total(),
                "erasure from the console"
            );
            Redirect::to("/guest-data?done=erased").into_response()
        }
        Err(EraseError::NoKey) => problem_page(&admin, &EraseError::NoKey.to_string()).await,
        Err(EraseError::Store(error)) => problem_page(&admin, &error.to_string()).await,
    }
}

async fn problem_page(admin: &Admin, problem: &str) -> Response {
    let records = admin.gateway.store.erasures(RECORDS).await;
    respond(page(
        "Guest data",
        Section::GuestData,
        None,
        body(
            admin,
            None,
            None,
            Some(problem),
            records.as_deref().map_err(|e| e.to_string()),
        ),
    ))
}

fn body(
    admin: &Admin,
    notice: Option<&str>,
    found: Option<(&EraseForm, &Report)>,
    problem: Option<&str>,
    records: Result<&[ErasureRecord], String>,
) -> Markup {
    let sources: Vec<String> = admin
        .gateway
        .sources
        .iter()
        .map(|s| s.source.name().to_owned())
        .collect();
    let keyed = admin.privacy_key().is_some();
    html! {
        @if let Some(notice) = notice { p.notice { (notice) } }
        h1 { "Guest data" }
        p.muted {
            "Erase one person from every stored event, quarantined body, archived request, "
            "scheduled delivery, dead letter and attempt record. Find first: nothing changes "
            "until you erase. "
            "What destinations already received is theirs to erase: they are sent an "
            "erasure.requested event."
        }
        @if !keyed {
            p.problem #no-privacy-key {
                strong { "Erasure is off: [privacy] key is not set." }
                " An erasure's audit record keeps a keyed hash of the value instead of the value, "
                "so finding and erasing need that key. Set "
                code { "[privacy] key" }
                " in porter's configuration (32 bytes or more, kept secret) and restart porter."
            }
        }
        @if let Some(problem) = problem { p.problem { (problem) } }
        form #erase.filters method="post" action="/guest-data" {
            label { "Find by"
                select #kind name="kind" disabled[!keyed] {
                    option value="phone" { "phone number" }
                    option value="email" { "email" }
                    option value="guest_id" { "guest id" }
                }
            }
            label.wide { "Value"
                input #value type="text" name="value" required autocomplete="off"
                    placeholder="+49 151 2345 6789" disabled[!keyed];
            }
            label { "In"
                select #source name="source" disabled[!keyed] {
                    option value="" { "every source" }
                    @for source in &sources { option value=(source) { (source) } }
                }
            }
            button.action.primary type="submit" name="action" value="find" disabled[!keyed]
                title=[(!keyed).then_some("Needs [privacy] key")] { "Find" }
        }
        @if let Some((form, report)) = found {
            (findings(form, report))
        }
        h2 { "Erasures" }
        (record_table(records))
    }
}

fn counts(erased: &Erased) -> [(&'static str, u64); 6] {
    [
        ("events", erased.events),
        ("scheduled deliveries", erased.scheduled),
        ("dead letters", erased.dead_letters),
        ("attempt records", erased.attempt_records),
        ("quarantined bodies", erased.quarantined),
        ("archived requests", erased.archived),
    ]
}

fn findings(form: &EraseForm, report: &Report) -> Markup {
    html! {
        section #findings {
            h2 {
                "Found for " (form.kind.replace('_', " ")) " " code { (form.value) } " in "
                @if form.source.is_empty() { "every source" } @else { (form.source) }
            }
            table.counts {
                tbody {
                    @for (label, count) in counts(&report.erased) {
                        tr { th { (label) } td.number { (super::format::count(count)) } }
                    }
                }
            }
            @if report.erased.total() == 0 {
                p.empty { "Nothing stored holds this person." }
            } @else {
                form.inline method="post" action="/guest-data" {
                    input type="hidden" name="kind" value=(form.kind);
                    input type="hidden" name="value" value=(form.value);
                    input type="hidden" name="source" value=(form.source);
                    button.action.danger type="submit" name="action" value="erase" { "Erase" }
                }
            }
        }
    }
}

fn record_table(records: Result<&[ErasureRecord], String>) -> Markup {
    match records {
        Err(problem) => html! { p.problem { (problem) } },
        Ok([]) => html! { p.empty { "No erasures yet." } },
        Ok(records) => html! {
            div.scroll { table #erasures {
                thead { tr {
                    th { "When" } th { "Record" } th { "Kind" } th { "Keyed hash" } th { "Source" }
                    th.number { "Events" } th.number { "Dead letters" } th.number { "Quarantined" }
                } }
                tbody {
                    @for record in records.iter().rev() {
                        tr {
                            td.time { (super::format::time(record.at)) }
                            td { code { (record.id) } }
                            td { (record.kind.as_str()) }
                            td { code { (record.token) } }
                            td { (record.source.as_deref().unwrap_or("every source")) }
                            td.number { (record.erased.events) }
                            td.number { (record.erased.dead_letters) }
                            td.number { (record.erased.quarantined) }
                        }
                    }
                }
            } }
        },
    }
}
