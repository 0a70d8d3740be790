//! `porter send SOURCE FILE`: the vendors' "send test webhook" button, for the command line.
//!
//! FILE is signed exactly as the source's provider signs (Meta: HMAC over the raw body;
//! Twilio: HMAC over the public URL and the sorted form parameters, or `bodySHA256` for JSON),
//! with the source's first secret from the same configuration the server reads, then POSTed.
//! With `--dry-run` the signed request is printed instead of sent: as a `curl` command that
//! sends it byte for byte, or (`--dry-run=request`) as the request line and headers, which is
//! how fixtures are re-signed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use porter_providers::Provider;
use porter_providers::ToSign;

use crate::config::{Config, SourceConfig};

/// What `--dry-run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DryRun {
    /// A `curl` command line that sends the signed request exactly.
    Curl,
    /// The request line and headers (the format of a fixture's `request` file).
    Request,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// A source name of the configuration (`porter check-config` lists them; the embedded
    /// default has one per provider: whatsapp, sms, oracle, mews, cloudbeds, pms, pms_web_api,
    /// roostsync, reservekit, standard, stripe, hmac, slack, zoom).
    source: String,
    /// The body to send, byte for byte (a trailing newline is dropped from form bodies).
    file: PathBuf,
    /// Where porter listens, such as `http://127.0.0.1:8080` (a missing `http://` is added;
    /// default: the configuration's `server.listen`).
    #[arg(long)]
    url: Option<String>,
    /// The configuration holding the source (default: porter.toml, else the embedded default).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The route to send to, with an optional query (default: the source's base path), such
    /// as `/webhooks/sms/status`.
    #[arg(long)]
    path: Option<String>,
    /// The Content-Type (default: JSON for Meta; for Twilio, JSON if FILE ends in `.json`,
    /// else a form).
    #[arg(long)]
    content_type: Option<String>,
    /// Print the signed request instead of sending it: a `curl` command (the default), or
    /// `--dry-run=request` for the request line and headers.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "curl")]
    dry_run: Option<DryRun>,
    /// Sign as if at this Unix time (for schemes with a timestamp; used to make fixtures).
    #[arg(long, value_name = "SECONDS")]
    timestamp: Option<i64>,
    /// Sign with this secret (or URL token) instead of the source's own: how a sender
    /// configured with another secret is answered, and what the console diagnoses.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
}

/// A request signed and ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub url: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub(crate) fn run(args: &SendArgs) -> ExitCode {
    match prepare_from_args(args) {
        Err(message) => {
            eprintln!("porter send: {message}");
            ExitCode::FAILURE
        }
        Ok(prepared) => match args.dry_run {
            Some(DryRun::Request) => {
                crate::outln!("POST {}", prepared.url);
                crate::outln!("Content-Type: {}", prepared.content_type);
                for (name, value) in &prepared.headers {
                    crate::outln!("{name}: {value}");
                }
                ExitCode::SUCCESS
            }
            Some(DryRun::Curl) => {
                crate::outln!("{}", curl_command(&prepared, &args.file));
                ExitCode::SUCCESS
            }
            None => post(prepared),
        },
    }
}

/// A `curl` command line that sends `prepared` exactly: the body from FILE when it is sent as
/// it is in the file, else inline (a form whose trailing newline was dropped).
pub(crate) fn curl_command(prepared: &Prepared, file: &std::path::Path) -> String {
    let mut words = vec![
        "curl".to_owned(),
        "-sS".to_owned(),
        "-i".to_owned(),
        "-X".to_owned(),
        "POST".to_owned(),
        shell_quote(&prepared.url),
        "-H".to_owned(),
        shell_quote(&format!("Content-Type: {}", prepared.content_type)),
    ];
    for (name, value) in &prepared.headers {
        words.push("-H".to_owned());
        words.push(shell_quote(&format!("{name}: {value}")));
    }
    words.push("--data-binary".to_owned());
    let unchanged = std::fs::read(file).is_ok_and(|bytes| bytes == prepared.body);
    match std::str::from_utf8(&prepared.body) {
        Ok(text) if !unchanged => words.push(shell_quote(text)),
        _ => words.push(shell_quote(&format!("@{}", file.display()))),
    }
    words.join(" ")
}

/// `text` in single quotes for a POSIX shell (`'` written as `'\''`).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The `--url` as given, with `http://` added when it has no scheme; anything else that is not
/// an http(s) URL is refused with a message that says so.
pub(crate) fn base_url(given: &str) -> Result<String, String> {
    let given = given.trim().trim_end_matches('/');
    if given.is_empty() {
        // Paths only: what `--dry-run=request` prints for a fixture's `request` file.
        return Ok(String::new());
    }
    let with_scheme = if given.contains("://") {
        given.to_owned()
    } else {
        format!("http://{given}")
    };
    match reqwest::Url::parse(&with_scheme) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(with_scheme)
        }
        _ => Err(format!(
            "--url `{given}` is not where porter listens: give an address such as \
             127.0.0.1:8080 or http://127.0.0.1:8080"
        )),
    }
}

/// The configuration, with the source's secret replaced by `--secret` when given.
fn config_for(args: &SendArgs) -> Result<Config, String> {
    let Some(secret) = &args.secret else {
        return Config::resolve_without_admin_token(args.config.as_deref())
            .map_err(|e| e.to_string());
    };
    let (text, origin) = Config::text(args.config.as_deref()).map_err(|e| e.to_string())?;
    let mut value: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    let table = value
        .get_mut("sources")
        .and_then(toml::Value::as_array_mut)
        .and_then(|sources| {
            sources
                .iter_mut()
                .find(|s| s.get("name").and_then(toml::Value::as_str) == Some(args.source.as_str()))
        })
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| format!("no source named `{}` in {origin}", args.source))?;
    if table.contains_key("secrets") {
        table.insert(
            "secrets".to_owned(),
            toml::Value::Array(vec![toml::Value::String(secret.clone())]),
        );
    } else if table.contains_key("url_token") {
        table.insert("url_token".to_owned(), toml::Value::String(secret.clone()));
    } else {
        return Err(format!(
            "source `{}` has neither `secrets` nor `url_token` to replace with --secret",
            args.source
        ));
    }
    let text = toml::to_string(&value).map_err(|e| e.to_string())?;
    Config::parse_without_admin_token(&text, origin, &|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())
}

fn prepare_from_args(args: &SendArgs) -> Result<Prepared, String> {
    let config = config_for(args)?;
    let source = config.source(&args.source).ok_or_else(|| {
        let names: Vec<&str> = config.sources.iter().map(|s| s.source.name()).collect();
        format!(
            "no source named `{}` in {} (sources: {})",
            args.source,
            config.origin,
            names.join(", ")
        )
    })?;
    let body = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let target = match &args.url {
        Some(url) => base_url(url)?,
        None => local_url(config.server.listen),
    };
    let content_type = args
        .content_type
        .clone()
        .unwrap_or_else(|| default_content_type(source, &args.file));
    let now = match args.timestamp {
        Some(seconds) => {
            Timestamp::from_second(seconds).map_err(|e| format!("--timestamp: {e}"))?
        }
        None => Timestamp::now(),
    };
    prepare(
        source,
        &target,
        args.path.as_deref(),
        &content_type,
        body,
        now,
    )
}

/// Signs `body` for `source` and addresses it to `target` + the route.
pub fn prepare(
    source: &SourceConfig,
    target: &str,
    path: Option<&str>,
    content_type: &str,
    mut body: Vec<u8>,
    now: Timestamp,
) -> Result<Prepared, String> {
    let (route, query) = match path {
        Some(path) => match path.split_once('?') {
            Some((route, query)) => (route, Some(query)),
            None => (path, None),
        },
        None => (source.path.as_str(), None),
    };
    let routes: Vec<String> = source
        .source
        .provider()
        .endpoints()
        .iter()
        .map(|e| format!("{}{}", source.path, e.suffix))
        .collect();
    if !routes.iter().any(|r| r == route) {
        let hint = if path.is_none() {
            " This source has no route at its base path: choose one with --path."
        } else {
            ""
        };
        return Err(format!(
            "`{route}` is not a route of source `{}` (routes: {}).{hint}",
            source.source.name(),
            routes.join(", ")
        ));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        while body.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            body.pop();
        }
    }
    let signed = source.source.sign(&ToSign {
        path: route,
        query,
        content_type,
        body: &body,
        now,
    });
    let url = match &signed.query {
        Some(query) => format!("{target}{route}?{query}"),
        None => format!("{target}{route}"),
    };
    Ok(Prepared {
        url,
        content_type: content_type.to_owned(),
        headers: signed.headers,
        // Adyen signs inside the body: the signed body is what is sent.
        body: signed.body.unwrap_or(body),
    })
}

/// The Content-Type `porter send` uses when given none: JSON, except a form for Twilio unless
/// the file ends in `.json`.
pub fn default_content_type(source: &SourceConfig, file: &std::path::Path) -> String {
    let is_json_file = file.extension().is_some_and(|e| e == "json");
    match source.source.provider() {
        // Twilio posts forms; its JSON variant is opted into by the file name.
        Provider::Twilio if !is_json_file => "application/x-www-form-urlencoded".to_owned(),
        // SiteMinder posts SOAP.
        Provider::Siteminder => "text/xml; charset=utf-8".to_owned(),
        _ => "application/json".to_owned(),
    }
}

/// `http://` + a listen address, with an unspecified address replaced by loopback.
pub(crate) fn local_url(mut address: std::net::SocketAddr) -> String {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{address}")
}

fn post(prepared: Prepared) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("porter send: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                eprintln!("porter send: {error}");
                return ExitCode::FAILURE;
            }
        };
        let mut request = client
            .post(&prepared.url)
            .header(reqwest::header::CONTENT_TYPE, &prepared.content_type)
            .body(prepared.body);
        for (name, value) in &prepared.headers {
            request = request.header(name.as_str(), value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_connect() => {
                let base = prepared
                    .url
                    .split('/')
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("/");
                eprintln!(
                    "porter send: cannot connect to {base}: is `porter serve` running there? \
                     (use --url to send elsewhere)"
                );
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!(
                    "porter send: POST {} failed: {}",
                    prepared.url,
                    error.without_url()
                );
                return ExitCode::FAILURE;
            }
        };
        let status = response.status();
        crate::outln!("HTTP {status}");
        for (name, value) in response.headers() {
            crate::outln!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
        }
        crate::outln!();
        match response.text().await {
            Ok(body) => crate::outln!("{body}"),
            Err(error) => eprintln!("porter send: reading the answer failed: {error}"),
        }
        if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
