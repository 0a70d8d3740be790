//! The frame every console page shares: header, navigation, logout.

use maud::{DOCTYPE, Markup, html};

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Overview,
    Requests,
    Events,
    DeadLetters,
    Destinations,
    Alerts,
    GuestData,
}

const SECTIONS: [(Section, &str, &str); 7] = [
    (Section::Overview, "/", "Overview"),
    (Section::Requests, "/requests", "Requests"),
    (Section::Events, "/events", "Events"),
    (Section::DeadLetters, "/dead-letters", "Dead letters"),
    (Section::Destinations, "/destinations", "Destinations"),
    (Section::Alerts, "/alerts", "Alerts"),
    (Section::GuestData, "/guest-data", "Guest data"),
];

/// A whole page; `refresh` reloads it every so many seconds (the overview's charts).
pub(super) fn page(title: &str, current: Section, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · porter" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    span.brand { "porter" }
                    nav {
                        @for (section, href, label) in SECTIONS {
                            a.current[section == current] href=(href) { (label) }
                        }
                    }
                    form method="post" action="/logout" { button type="submit" { "Log out" } }
                }
                main { (body) }
            }
        }
    }
}

/// The login page, with a problem to show when the last attempt failed.
pub(super) fn login(problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · porter" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                main.login {
                    h1 { "porter console" }
                    @if let Some(problem) = problem {
                        p.problem { (problem) }
                    }
                    form method="post" action="/login" {
                        label for="token" { "Admin token" }
                        input #token type="password" name="token" autocomplete="current-password" autofocus;
                        button.action.primary type="submit" { "Log in" }
                    }
                    p.muted {
                        "The token is [admin] token in porter's configuration; the development "
                        "default prints a login link at start-up."
                    }
                }
            }
        }
    }
}
