//! The admin API's contract (CONTRACT §13): an OpenAPI 3.1 document generated from the
//! handlers that serve it, at `GET /api/openapi.json`.
//!
//! [`routes`] is the one place where `/api/*` and `/metrics` are registered. Each `routes!`
//! entry names a handler carrying a `#[utoipa::path]` attribute (its path, method, parameters,
//! body and answers), and `utoipa-axum` adds the route to the router and the operation to the
//! document from that same attribute: a route cannot be served without being documented.
//! `tests/openapi.rs` checks that nothing bypasses it (a `.route("/api…")` elsewhere) and that
//! every documented operation is served, and answers as documented, on a real listener.
//!
//! [`document`] completes what the attributes cannot say: the 401 (and, for state changes,
//! 403) that `auth::require` answers before any handler runs, and the canonical event's JSON
//! Schema. That schema (`schema/event.schema.json`, generated from `porter_providers::Event`)
//! is put into the document whole, its definitions becoming components, so that a tool reads
//! the events' types without fetching anything; it is also served as it is at
//! `GET /api/schema/event.json`, which the `Event` component and the `events` tag link to.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, api, auth, erase, reprocess};

/// Where the admin listener serves the canonical event's JSON Schema.
pub(super) const EVENT_SCHEMA_PATH: &str = "/api/schema/event.json";

/// The document's fixed parts; the operations come from [`routes`].
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "porter admin API",
        description = "The admin listener's JSON API: what porter received, stored and delivered, \
            and the operator's actions on it (replay, pause, erase, reprocess).\n\n\
            Every operation needs the admin token as `Authorization: Bearer <token>` (or the \
            console's session cookie; a state change made with the cookie must also carry this \
            listener's own `Origin`). Refusals are JSON: `{\"error\": code, \"message\": text}`.\n\n\
            The events returned are porter's canonical events (CloudEvents 1.0); their JSON \
            Schema is the `Event` component here, and is served as it is at \
            `/api/schema/event.json`.",
    ),
    modifiers(&Authentication),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "overview", description = "Figures of this instance: sources, destinations, \
            the store, time series"),
        (name = "requests", description = "The recent requests on the providers' listener"),
        (name = "events", description = "Stored canonical events and their deliveries",
            external_docs(url = "/api/schema/event.json",
                description = "The canonical event's JSON Schema")),
        (name = "dead letters", description = "Events a destination did not take, and replay"),
        (name = "destinations", description = "Holding and releasing deliveries"),
        (name = "alerts", description = "Alert rules, their states and history"),
        (name = "guest data", description = "Erasure of a person's data, and its audit records"),
        (name = "reprocess", description = "Archived requests mapped again with today's code"),
        (name = "sessions", description = "The console's sessions"),
        (name = "metrics", description = "Prometheus"),
        (name = "contract", description = "This document and the canonical event's schema"),
    ),
)]
struct ApiDoc;

/// The security schemes `auth::require` accepts.
#[derive(Debug)]
struct Authentication;

impl Modify for Authentication {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`[admin] token`"))
                    .build(),
            ),
        );
        let mut cookie = ApiKeyValue::new(auth::COOKIE);
        cookie.description = Some(
            "The console's session, set by `GET /login?token=…`. A state change (anything \
             but GET and HEAD) made with it must carry this listener's own `Origin`, or is \
             refused 403 `foreign_origin`."
                .to_owned(),
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`[admin] metrics_token`, when set: accepted for `GET /metrics` only",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route of the admin API, each registered with its documentation. Nothing else adds a
/// route under `/api` or `/metrics`.
pub(super) fn routes() -> OpenApiRouter<Arc<Admin>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::metrics))
        .routes(routes!(api::overview))
        .routes(routes!(api::stats))
        .routes(routes!(api::alerts))
        .routes(routes!(api::requests))
        .routes(routes!(api::events))
        .routes(routes!(api::event))
        .routes(routes!(api::dead_letters))
        .routes(routes!(api::replay_all))
        .routes(routes!(api::replay))
        .routes(routes!(api::pause))
        .routes(routes!(api::resume))
        .routes(routes!(erase::erase))
        .routes(routes!(erase::erasures))
        .routes(routes!(reprocess::reprocess))
        .routes(routes!(auth::revoke_all))
        .routes(routes!(openapi))
        .routes(routes!(event_schema))
}

/// The canonical event in the API's types: its schema is the `Event` component, which
/// [`document`] replaces with the whole of `schema/event.schema.json`.
#[derive(Debug)]
pub(super) enum CanonicalEvent {}

impl utoipa::PartialSchema for CanonicalEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().build().into()
    }
}

impl utoipa::ToSchema for CanonicalEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Event")
    }
}

/// The document served at `GET /api/openapi.json`.
pub(super) fn document() -> Value {
    let (_, openapi) = routes().split_for_parts();
    let mut document = serde_json::to_value(&openapi).expect("an OpenAPI document is JSON");
    add_authentication_answers(&mut document);
    add_event_schema(&mut document);
    document
}

/// The document's text, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

/// The methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The 401 every operation answers without the token, and the 403 every state change answers
/// to a cookie from another origin (`auth::require`, before any handler).
fn add_authentication_answers(document: &mut Value) {
    let error = json!({ "$ref": "#/components/schemas/ApiError" });
    document["components"]["responses"] = json!({
        "Unauthorized": {
            "description": "`unauthorized`: no token, a wrong token, or no valid session",
            "headers": { "WWW-Authenticate": { "schema": { "type": "string", "const": "Bearer" } } },
            "content": { "application/json": { "schema": error } },
        },
        "ForeignOrigin": {
            "description": "`foreign_origin`: a state change authenticated by the session \
                cookie, without this listener's own `Origin`",
            "content": { "application/json": { "schema": error } },
        },
    });
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            let Some(responses) = item
                .get_mut(method)
                .and_then(|operation| operation.get_mut("responses"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            responses.insert(
                "401".to_owned(),
                json!({ "$ref": "#/components/responses/Unauthorized" }),
            );
            if !matches!(method, "get" | "head") {
                responses.insert(
                    "403".to_owned(),
                    json!({ "$ref": "#/components/responses/ForeignOrigin" }),
                );
            }
        }
    }
}

/// The canonical event's schema as components: `Event` and its definitions, with their
/// references moved from `#/$defs/` to `#/components/schemas/`.
fn add_event_schema(document: &mut Value) {
    let mut event = serde_json::to_value(porter_providers::Event::json_schema())
        .expect("a JSON Schema is JSON");
    rebase_refs(&mut event);
    let mut definitions = Map::new();
    if let Some(object) = event.as_object_mut() {
        object.remove("$schema");
        if let Some(Value::Object(defs)) = object.remove("$defs") {
            definitions = defs;
        }
        object.insert(
            "externalDocs".to_owned(),
            json!({
                "description": "This schema as a JSON Schema document of its own \
                    (`schema/event.schema.json` in porter's repository)",
                "url": EVENT_SCHEMA_PATH,
            }),
        );
    }
    let schemas = &mut document["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = json!({});
    }
    let schemas = schemas.as_object_mut().expect("made an object above");
    schemas.insert("Event".to_owned(), event);
    schemas.extend(definitions);
}

fn rebase_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                if key == "$ref"
                    && let Value::String(reference) = inner
                {
                    if let Some(name) = reference.strip_prefix("#/$defs/") {
                        *reference = format!("#/components/schemas/{name}");
                    } else if reference == "#" {
                        *reference = "#/components/schemas/Event".to_owned();
                    }
                } else {
                    rebase_refs(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rebase_refs),
        _ => {}
    }
}

/// This document: the admin API as OpenAPI 3.1.
///
/// Behind the admin token like the rest of `/api`: it tells nothing secret, but one rule for the whole listener (everything but the
/// login page and the stylesheet needs the token) is simpler to keep and to audit than a list
/// of exceptions, and whoever can use the API holds the token anyway.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "contract",
    responses((status = 200, description = "This document", body = Object,
        content_type = "application/json")),
)]
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The canonical event's JSON Schema.
///
/// Draft 2020-12, exactly `schema/event.schema.json` of this version.
#[utoipa::path(
    get,
    path = "/api/schema/event.json",
    tag = "contract",
    responses((status = 200, description = "The JSON Schema of the events the API returns \
        and destinations receive", body = Object, content_type = "application/schema+json")),
)]
pub(super) async fn event_schema() -> Response {
    static SCHEMA: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string_pretty(&porter_providers::Event::json_schema())
            .expect("a JSON Schema is JSON")
            + "\n"
    });
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        SCHEMA.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_names_nothing_the_api_types_name() {
        let (_, openapi) = routes().split_for_parts();
        let api: Vec<String> = openapi
            .components
            .map(|c| c.schemas.into_keys().collect())
            .unwrap_or_default();
        let event = serde_json::to_value(porter_providers::Event::json_schema()).expect("JSON");
        for name in event["$defs"].as_object().expect("definitions").keys() {
            assert!(
                !api.contains(name),
                "`{name}` is both an API type and a definition of the event schema"
            );
        }
        assert!(
            api.contains(&"Event".to_owned()),
            "the API refers to `Event`"
        );
    }
}
