//! The `porter` command line: `serve`, `check-config`, `send`, `events`, `dlq`, `ohip`,
//! `erase`, `reprocess`, `probe`. The top layer: each command builds what it needs through the
//! composition root ([`crate::app`]), and nothing below imports a command.
//!
//! - `send.rs`: signing and POSTing a file, or printing it as a `curl` command;
//! - `events.rs`: `porter events tail`;
//! - `inspect.rs`: `porter dlq list|replay`, `porter events show`, and how every command opens
//!   a store ([`inspect::on_store`]);
//! - `erase.rs`: `porter erase`, on the store itself or through the admin API;
//! - `ohip.rs`: `porter ohip status|seek`;
//! - `reprocess.rs`: `porter reprocess`, a client of the admin API;
//! - `running.rs`: how the commands that change state find the running `porter serve`'s admin
//!   listener and token (and the file `serve` leaves for them in its local store);
//! - `probe.rs`: `porter probe`, the container image's health check.

mod erase;
mod events;
mod inspect;
mod ohip;
mod probe;
mod reprocess;
mod running;
pub(crate) mod send;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::Clock;
use crate::config::{Config, ConfigOrigin, EMBEDDED_DEFAULT};
use crate::delivery::Plan;
use crate::routes::RESERVED_PATHS;
use crate::server;
use crate::telemetry::{self, LogFormat};
use crate::trace::Tracing;
use events::TailArgs;
use send::SendArgs;

/// porter: an inbound webhook gateway. Verifies provider webhooks, normalizes them into
/// CloudEvents, deduplicates and durably enqueues them.
#[derive(Debug, Parser)]
#[command(name = "porter", version)]
pub(crate) struct Cli {
    /// Log line format (logs go to stderr; filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway. Without --config: porter.toml if present, else the embedded default
    /// (development only: the local store in ./porter-data, events also on stdout, public
    /// development secrets).
    Serve {
        /// The configuration (default: ./porter.toml if present, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen on this address instead of the configuration's `server.listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Serve the console, the admin API and /metrics on this address instead of
        /// `[admin] listen` (when the configuration has an `[admin]` table).
        #[arg(long, value_name = "ADDR")]
        admin_listen: Option<std::net::SocketAddr>,
    },
    /// Check a configuration and print its route table; exit 1 listing every problem.
    CheckConfig {
        /// The configuration to check (default: ./porter.toml if present, else the embedded
        /// default).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Sign FILE exactly as SOURCE's provider would and POST it; print the answer.
    Send(SendArgs),
    /// Erase one person (by phone, email or guest id) from every stored event, quarantined
    /// body, archived request, dead letter and attempt record; record the erasure and tell
    /// destinations.
    Erase(erase::EraseArgs),
    /// Inspect the event stream(s) of the configured store.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Inspect and replay dead letters (events a destination never accepted).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Verify and normalize a source's archived requests again with today's code and
    /// secrets; store what now maps as new events (asks the running `porter serve`).
    Reprocess(reprocess::ReprocessArgs),
    /// Exit 0 when URL (such as http://127.0.0.1:8080/healthz) answers 200: a health check
    /// for images without a shell.
    Probe(probe::ProbeArgs),
    /// OHIP Streaming sources: their state, and where the next subscribe starts.
    Ohip {
        #[command(subcommand)]
        command: OhipCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OhipCommand {
    /// Per stream source: lease holder, stored offset, state, last event, disconnects.
    Status {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// The configuration naming the store (default: ./porter.toml if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Replay a stream from OFFSET (inclusive) at its next subscribe.
    Seek {
        #[arg(long)]
        source: String,
        #[arg(long)]
        offset: String,
        /// The configuration naming the store (default: ./porter.toml if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Print the newest events as JSON lines; with --follow, keep printing new ones.
    Tail(TailArgs),
    /// Print one event and, per destination, every delivery attempt and where it stands.
    Show {
        /// The event id (`evt_…`).
        id: String,
        /// The configuration naming the store (default: ./porter.toml if present, else the
        /// embedded default, whose local store is ./porter-data).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        /// The configuration naming the store (default: ./porter.toml if present, else the
        /// embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How many dead letters to list at most.
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// Put dead letters back into their destination's schedule, due now (through the admin API
    /// of the `porter serve` that holds the store, found on its own).
    Replay {
        /// Dead-letter ids, as `dlq list` prints them.
        ids: Vec<String>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// The configuration naming the store (default: ./porter.toml if present, else the
        /// embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        admin: running::AdminArgs,
    },
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        telemetry::init_logging(cli.log_format, None);
    }
    match cli.command {
        // `serve` installs its subscriber once it knows whether to export spans.
        Command::Serve {
            config,
            listen,
            admin_listen,
        } => serve(config, listen, admin_listen, cli.log_format),
        Command::CheckConfig { config } => check_config(config),
        Command::Send(args) => send::run(&args),
        Command::Erase(args) => erase::run(&args),
        Command::Reprocess(args) => reprocess::command(&args),
        Command::Events {
            command: EventsCommand::Tail(args),
        } => events::tail(&args),
        Command::Events {
            command: EventsCommand::Show { id, config },
        } => inspect::events_show(config.as_deref(), &id),
        Command::Ohip {
            command: OhipCommand::Status { source, config },
        } => ohip::status(config.as_deref(), source.as_deref()),
        Command::Ohip {
            command:
                OhipCommand::Seek {
                    source,
                    offset,
                    config,
                },
        } => ohip::seek(config.as_deref(), &source, &offset),
        Command::Probe(args) => probe::probe(&args),
        Command::Dlq {
            command: DlqCommand::List { config, count },
        } => inspect::dlq_list(config.as_deref(), count),
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    ids,
                    all,
                    config,
                    admin,
                },
        } => {
            if ids.is_empty() && !all {
                eprintln!("porter dlq replay: name dead-letter ids, or --all");
                return ExitCode::FAILURE;
            }
            inspect::dlq_replay(config.as_deref(), &ids, all, &admin)
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::resolve(path.as_deref()).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::FAILURE
    })
}

fn serve(
    path: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    admin_listen: Option<std::net::SocketAddr>,
    log_format: LogFormat,
) -> ExitCode {
    let mut config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    match (&mut config.admin, admin_listen) {
        (Some(admin), Some(listen)) => admin.listen = listen,
        (None, Some(_)) => {
            eprintln!(
                "porter serve: --admin-listen needs an [admin] table in the configuration \
                 (with a token); ignoring it"
            );
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // The exporter's batch task runs on this runtime: it starts here, and the last spans
        // are exported after the server has drained.
        let tracing = match config.telemetry.as_ref().map(Tracing::start).transpose() {
            Ok(tracing) => tracing,
            Err(error) => {
                eprintln!("porter serve: {error}");
                return ExitCode::FAILURE;
            }
        };
        telemetry::init_logging(log_format, tracing.as_ref());
        if let Some(telemetry) = &config.telemetry {
            tracing::info!(
                endpoint = %telemetry.traces_url(),
                service = %telemetry.service_name,
                "exporting trace spans (OTLP/HTTP)"
            );
        }
        let code = serve_config(config).await;
        if let Some(tracing) = tracing {
            tracing.shutdown().await;
        }
        code
    })
}

/// Binds, builds and serves `config` until SIGTERM or SIGINT, then drains.
async fn serve_config(config: Config) -> ExitCode {
    let listen = config.server.listen;
    // Bind first: a busy port is the whole story, not the last line of a banner.
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
                " (another program, or another porter, listens there: stop it, or use \
                 --listen ADDR or [server] listen)"
            } else {
                " (use --listen ADDR, or [server] listen)"
            };
            eprintln!("cannot listen on {listen}: {error}{hint}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or(listen, |a| a);
    let admin_listener = match &config.admin {
        None => None,
        Some(admin) => match TcpListener::bind(admin.listen).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!(
                    "cannot listen on {} for the console and admin API: {error} \
                     (use --admin-listen ADDR, or [admin] listen)",
                    admin.listen
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let admin_address = admin_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    // What is announced is taken before the store opens, and announced only once it has:
    // a store that cannot open is the whole story, not the line after "listening".
    let banner = (config.origin == ConfigOrigin::EmbeddedDefault)
        .then(|| development_banner(&config, address));
    let login = match (&config.admin, admin_address) {
        // The login URL carries the token: printed on the terminal, never logged.
        (Some(admin), Some(admin_address)) if admin.generated_token => Some(format!(
            "  console: {}/login?token={}",
            send::local_url(admin_address),
            admin.token.expose()
        )),
        _ => None,
    };
    let (sources, store, origin) = (
        config.sources.len(),
        config.store.kind_name(),
        config.origin.to_string(),
    );
    let to_publish = running::ToPublish::of(&config, admin_address);
    let app = match App::build(config, Plan::default(), Clock::system()) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    // The store is open (its directory made, its lock held): say where the admin listener is.
    let published = to_publish.and_then(running::ToPublish::publish);
    if let Some(banner) = banner {
        eprint!("{banner}");
    }
    if let Some(admin_address) = admin_address {
        tracing::info!(address = %admin_address, "admin listening (console, admin API, /metrics)");
    }
    if let Some(login) = login {
        eprintln!("{login}");
    }
    tracing::info!(
        %address,
        sources,
        store,
        config = %origin,
        "porter listening"
    );
    let app = match admin_listener {
        Some(listener) => app.with_admin_listener(listener),
        None => app,
    };
    let served = app.serve(listener, server::shutdown_signal()).await;
    if let Some(published) = published {
        published.withdraw();
    }
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The embedded default's secrets are public (they are in porter's source); print them so
/// that `porter send` users and a vendor's test panel can be pointed at the development server.
fn development_banner(config: &Config, address: std::net::SocketAddr) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "porter: running the EMBEDDED DEFAULT configuration (development only)."
    );
    match &config.store.kind {
        crate::config::StoreKind::Local { path, .. } => {
            let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            let _ = writeln!(
                out,
                "  store: local, in {} (durable: events survive a restart; delete the directory \
                 to start afresh); events are also printed on stdout.",
                shown.display()
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  store: memory (nothing survives a restart); events are printed on stdout."
            );
        }
    }
    let _ = writeln!(
        out,
        "  These development secrets are public. Never expose this server."
    );
    let default: toml::Value =
        toml::from_str(EMBEDDED_DEFAULT).unwrap_or(toml::Value::Boolean(false));
    let tables = default.get("sources").and_then(toml::Value::as_array);
    for (source, table) in config.sources.iter().zip(tables.into_iter().flatten()) {
        let _ = writeln!(
            out,
            "  source `{}` ({}) at {}",
            source.source.name(),
            source.source.provider(),
            source.path
        );
        for key in ["secrets", "verify_token", "url_token"] {
            if let Some(value) = table.get(key) {
                let _ = writeln!(out, "    {key} = {value}");
            }
        }
    }
    let url = match send::local_url(address) {
        url if url == send::local_url(crate::config::DEFAULT_LISTEN_ADDR) => String::new(),
        url => format!(" --url {url}"),
    };
    let _ = writeln!(
        out,
        "  try: porter send whatsapp fixtures/meta/text_message/body{url}"
    );
    out
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let crate::config::StoreKind::Local { path, .. } = &config.store.kind
        && let Err(problem) = writable_directory(path)
    {
        let errors = crate::config::ConfigErrors {
            origin: config.origin.to_string(),
            errors: vec![crate::config::ConfigError::new("store.path", problem)],
        };
        eprintln!("{errors}");
        return ExitCode::FAILURE;
    }
    match print_routes(&config, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // `check-config | head`: the reader has what it wanted.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("porter check-config: cannot write: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the local store could be opened at `path` by this user: the directory, or the
/// nearest existing one above it (where it would be created), takes a new file. A file is
/// created and removed to find out: the permission bits alone do not say (root, ACLs, a
/// read-only mount).
fn writable_directory(path: &std::path::Path) -> Result<(), String> {
    let existing = path
        .ancestors()
        .find(|dir| dir.as_os_str().is_empty() || dir.exists())
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            }
        })
        .unwrap_or(std::path::Path::new("."));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let probe = existing.join(format!(".porter-check-config-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) => Err(format!(
            "cannot write in {}: {error} (porter serve could not open the local store there; \
             check as the user porter runs as, or choose another store.path)",
            existing.display()
        )),
    }
}

/// The summary of a valid configuration and its route table.
fn print_routes(config: &Config, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    writeln!(
        out,
        "{}: OK ({}, {}, {} store, listening on {})",
        config.origin,
        plural(
            config.sources.len() + config.streams.len(),
            "source",
            "sources"
        ),
        plural(config.destinations.len(), "destination", "destinations"),
        config.store.kind_name(),
        config.server.listen
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:<45} {:<16} PROVIDER",
        "METHODS", "ROUTE", "SOURCE"
    )?;
    let routes = crate::config::route_table(&config.sources);
    for (path, route) in routes.sorted() {
        let source = &config.sources[route.source].source;
        let methods: Vec<&str> = route.endpoint.methods.iter().map(|m| m.as_str()).collect();
        writeln!(
            out,
            "{:<10} {:<45} {:<16} {}",
            methods.join(","),
            path,
            source.name(),
            source.provider()
        )?;
    }
    for path in RESERVED_PATHS {
        writeln!(out, "{:<10} {:<45} {:<16} -", "GET", path, "(porter)")?;
    }
    if !config.streams.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<16} {:<45} CHAIN", "STREAM SOURCE", "CONNECTS TO")?;
        for stream in &config.streams {
            writeln!(
                out,
                "{:<16} {:<45} {}",
                stream.name,
                stream.ws_url.as_str(),
                stream.chain_code
            )?;
        }
    }
    if !config.destinations.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<16} {:<13} EVENTS", "DESTINATION", "KIND")?;
        for destination in &config.destinations {
            writeln!(
                out,
                "{:<16} {:<13} {}",
                destination.name,
                destination.kind.name(),
                destination.filter
            )?;
        }
    }
    out.flush()
}
