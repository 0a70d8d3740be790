//! `[telemetry]`: where porter exports its trace spans (OpenTelemetry, OTLP/HTTP protobuf).
//!
//! Off unless `otlp_endpoint` is set: without it porter installs no exporter and creates no
//! spans (see [`crate::trace`]). The endpoint is the collector's base URL, as
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is: spans go to `<otlp_endpoint>/v1/traces`. Credentials do
//! not belong in the URL (it is printed in problems and logs): a collector that wants a token
//! gets it from the standard `OTEL_EXPORTER_OTLP_HEADERS` variable, which the exporter reads.

use serde::Deserialize;

use super::ConfigError;

/// The `service.name` of porter's spans when `service_name` does not say.
pub(super) const DEFAULT_SERVICE_NAME: &str = "porter";
/// The path OTLP/HTTP receives spans on, under the endpoint.
pub(super) const TRACES_PATH: &str = "/v1/traces";

/// The `[telemetry]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelemetryTable {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    pub sample_ratio: Option<f64>,
}

/// A checked `[telemetry]` whose tracing is on.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The collector's base URL, without a trailing slash.
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute of every span.
    pub service_name: String,
    /// The share of traces kept (0 to 1, default 1): each request's trace is kept or not
    /// as a whole, and a delivery follows the trace its event came in on.
    pub sample_ratio: f64,
}

impl TelemetryConfig {
    /// Where spans are POSTed: `<otlp_endpoint>/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("{}{TRACES_PATH}", self.otlp_endpoint)
    }
}

/// Checks `[telemetry]`; `None` when nothing turns tracing on (no `otlp_endpoint`) or a key
/// is wrong (then `errors` says which).
pub(super) fn telemetry_config(
    table: TelemetryTable,
    errors: &mut Vec<ConfigError>,
) -> Option<TelemetryConfig> {
    let service_name = match table.service_name {
        None => Some(DEFAULT_SERVICE_NAME.to_owned()),
        Some(name) if !name.trim().is_empty() && !name.chars().any(char::is_control) => Some(name),
        Some(_) => {
            errors.push(ConfigError::new(
                "telemetry.service_name",
                "must be a name without control characters (the default is `porter`)",
            ));
            None
        }
    };
    let sample_ratio = match table.sample_ratio {
        None => Some(1.0),
        Some(ratio) if (0.0..=1.0).contains(&ratio) => Some(ratio),
        Some(_) => {
            errors.push(ConfigError::new(
                "telemetry.sample_ratio",
                "must be a share from 0.0 to 1.0 (0.1 keeps one trace in ten; the default, \
                 1.0, keeps every one)",
            ));
            None
        }
    };
    let endpoint = table.otlp_endpoint?;
    let endpoint = match check_endpoint(&endpoint) {
        Ok(endpoint) => Some(endpoint),
        Err(problem) => {
            errors.push(ConfigError::new("telemetry.otlp_endpoint", problem));
            None
        }
    };
    Some(TelemetryConfig {
        otlp_endpoint: endpoint?,
        service_name: service_name?,
        sample_ratio: sample_ratio?,
    })
}

/// The endpoint without its trailing slash, or what is wrong with it (never quoting it: a
/// mistaken URL may carry credentials).
fn check_endpoint(url: &str) -> Result<String, &'static str> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "must be an http:// or https:// URL like http://127.0.0.1:4318")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must be an http:// or https:// URL like http://127.0.0.1:4318");
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host, like http://127.0.0.1:4318");
    };
    if authority.as_str().contains('@') {
        return Err(
            "must not carry credentials: a collector's token goes in the \
                    OTEL_EXPORTER_OTLP_HEADERS environment variable",
        );
    }
    if authority.host().is_empty() {
        return Err("must name a host, like http://127.0.0.1:4318");
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("must have no query or fragment");
    }
    let base = url.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        return Err("is the collector's base URL: porter adds /v1/traces itself");
    }
    Ok(base.to_owned())
}
