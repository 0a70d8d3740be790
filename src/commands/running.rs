//! The one rule of the commands that change state while `porter serve` runs (`porter erase`,
//! `porter dlq replay`, `porter reprocess`): when the store is the running server's (a local
//! store it holds, a memory store, or anything `porter reprocess` needs), the command asks that
//! server through its admin API, and finds it on its own:
//!
//! 1. `--admin ADDR` and `--token` (or `PORTER_ADMIN_TOKEN`), each when given;
//! 2. a local store's `admin.json`, which `porter serve` writes beside its `LOCK` while it
//!    serves ([`crate::store::local::running`]), believed only while that process holds the
//!    lock;
//! 3. the configuration's `[admin]` (`listen`, `token`): the Redis and memory stores, which
//!    have no directory to leave a file in.
//!
//! Every failure says what to run or which key to set. The token is sent, never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use porter_providers::Secret;
use serde_json::Value;

use crate::config::{Config, StoreKind};
use crate::store::local::running::{self, AdminFile, Running};

/// How long a command waits for the admin API (a reprocess or an erasure of a large store
/// takes a while).
const TIMEOUT: Duration = Duration::from_secs(600);

/// Where the running `porter serve`'s admin listener is, and its token, when the command
/// cannot find them itself.
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct AdminArgs {
    /// The running porter's admin listener (`host:port`). Found on its own when porter serves
    /// a local store (its `admin.json`), else `[admin] listen`.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// The running porter's `[admin] token`. Found on its own when porter serves a local store,
    /// else `[admin] token`. Prefer the environment variable: a command line is visible to
    /// every user of the machine.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PORTER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Where the admin address and token came from: what a failure names.
#[derive(Debug)]
enum Found {
    /// `--admin`, and the token from `--token` or `PORTER_ADMIN_TOKEN`.
    Given,
    /// The local store's `admin.json`.
    File { dir: PathBuf, pid: u32 },
    /// The configuration's `[admin]`.
    Config { origin: String },
}

/// A running `porter serve`'s admin API.
#[derive(Debug)]
pub(super) struct Target {
    address: String,
    token: Secret,
    found: Found,
}

/// A non-2xx answer of the admin API.
#[derive(Debug)]
pub(super) struct Refused {
    pub status: reqwest::StatusCode,
    /// The API's `error` code (`no_privacy_key`, `not_found`, …).
    pub code: String,
    pub message: String,
}

/// Why a request to the admin API did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The API answered, and not with 2xx (401 is [`Failure::Other`], explained).
    Refused(Refused),
    /// Nothing usable came back; the text says what to do.
    Other(String),
}

/// The loopback address for an unspecified one (`0.0.0.0:9090` listens there too).
fn reachable(mut address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    address.to_string()
}

/// Finds the running `porter serve` whose store `config` names; `command` is how the command
/// was run (`porter erase …`), for "run it again".
pub(super) fn locate(config: &Config, args: &AdminArgs, command: &str) -> Result<Target, String> {
    let given = |token: &Option<String>| token.as_ref().map(|t| Secret::new(t.clone()));
    if let (Some(address), Some(token)) = (&args.admin, given(&args.token)) {
        return Ok(Target {
            address: address.clone(),
            token,
            found: Found::Given,
        });
    }
    if let StoreKind::Local { path, .. } = &config.store.kind {
        match Running::check(path).map_err(|e| {
            format!(
                "cannot read {}: {e}",
                path.join(running::ADMIN_FILE).display()
            )
        })? {
            Running::Serving(file) => return Ok(from_file(path, file, args)),
            Running::Stopped { left } => {
                return Err(format!(
                    "no `porter serve` holds {}{}: start it (`porter serve{}`), then run `{command}` \
                     again",
                    path.display(),
                    stale(path, left),
                    match &config.origin {
                        crate::config::ConfigOrigin::File(file) =>
                            format!(" --config {}", file.display()),
                        crate::config::ConfigOrigin::EmbeddedDefault => String::new(),
                    }
                ));
            }
            Running::HeldWithout { holder, stale: old } if config.admin.is_none() => {
                return Err(held_without(path, holder, old, command));
            }
            // A porter serve without the file (started before porter wrote one): its
            // configuration's [admin] is the best guess.
            Running::HeldWithout { .. } => {}
        }
    }
    let origin = config.origin.to_string();
    match &config.admin {
        Some(admin) => Ok(Target {
            address: args
                .admin
                .clone()
                .unwrap_or_else(|| reachable(admin.listen)),
            token: given(&args.token).unwrap_or_else(|| admin.token.clone()),
            found: if args.admin.is_some() {
                Found::Given
            } else {
                Found::Config { origin }
            },
        }),
        None => Err(format!(
            "the store is the running `porter serve`'s ({} store), and {origin} has no [admin] \
             table to reach it through: pass --admin ADDR and set PORTER_ADMIN_TOKEN (or \
             --token) to the running porter's admin listener and token, or add [admin] (listen, \
             token) to the configuration and restart porter serve",
            config.store.kind_name()
        )),
    }
}

fn from_file(dir: &Path, file: AdminFile, args: &AdminArgs) -> Target {
    Target {
        address: args.admin.clone().unwrap_or_else(|| reachable(file.admin)),
        token: args
            .token
            .as_ref()
            .map_or(file.token, |t| Secret::new(t.clone())),
        found: Found::File {
            dir: dir.to_owned(),
            pid: file.pid,
        },
    }
}

/// " (dir/admin.json is left from pid N …)", when a crash left one.
pub(super) fn stale(dir: &Path, left: Option<u32>) -> String {
    match left {
        None => String::new(),
        Some(pid) => format!(
            " ({} was left by porter serve pid {pid}, which did not stop cleanly: it was killed \
             or crashed)",
            dir.join(running::ADMIN_FILE).display()
        ),
    }
}

fn held_without(dir: &Path, holder: Option<u32>, old: Option<u32>, command: &str) -> String {
    let holder = holder.map_or_else(|| "another process".to_owned(), |pid| format!("pid {pid}"));
    format!(
        "{} is held by {holder}, which left no {} (the one there, if any, is from pid {}): if it \
         is `porter serve`, its configuration has no [admin] table, so add [admin] (listen, \
         token) and restart it, or pass --admin ADDR and set PORTER_ADMIN_TOKEN; if it is \
         another porter command, run `{command}` again when it has finished",
        dir.display(),
        dir.join(running::ADMIN_FILE).display(),
        old.map_or_else(|| "none".to_owned(), |pid| pid.to_string()),
    )
}

/// Removes `admin.json` when no process holds the store (`porter serve` was killed); says so.
pub(super) fn clear_stale(config: &Config) {
    let StoreKind::Local { path, .. } = &config.store.kind else {
        return;
    };
    if let Ok(Some(file)) = running::read(path) {
        // The caller holds the store's lock: no porter serves there.
        if running::remove(path).is_ok() {
            eprintln!(
                "porter: removed {}, left by porter serve pid {}, which did not stop cleanly; \
                 no porter serves {}, so this command works on the store itself",
                path.join(running::ADMIN_FILE).display(),
                file.pid,
                path.display()
            );
        }
    }
}

impl Target {
    /// Where the address came from, for messages.
    fn whence(&self) -> String {
        match &self.found {
            Found::Given => "given with --admin".to_owned(),
            Found::File { dir, pid } => format!(
                "where porter serve pid {pid} says it listens ({})",
                dir.join(running::ADMIN_FILE).display()
            ),
            Found::Config { origin } => format!("[admin] listen of {origin}"),
        }
    }

    /// `POST path` with `body` (JSON) and the token; the answer's JSON.
    pub(super) async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Failure::Other(e.to_string()))?;
        let mut request = client
            .post(format!("http://{}{path}", self.address))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let answer = request.send().await.map_err(|e| {
            let connect = e.is_connect();
            let why = error_chain(&e.without_url());
            Failure::Other(if connect {
                match &self.found {
                    Found::File { dir, pid } => format!(
                        "porter serve pid {pid} holds {}, but nothing answers at {}, {}: {why} \
                         (if it is stopping, run this again once it has stopped)",
                        dir.display(),
                        self.address,
                        self.whence()
                    ),
                    _ => format!(
                        "cannot reach porter's admin listener at {} ({}): {why}; is `porter \
                         serve` running? If it listens elsewhere (it was started with \
                         --admin-listen), pass --admin ADDR",
                        self.address,
                        self.whence()
                    ),
                }
            } else {
                format!("POST {path} at {} failed: {why}", self.address)
            })
        })?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .map_err(|e| Failure::Other(format!("reading the admin API's answer failed: {e}")))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let token = match &self.found {
                Found::File { dir, .. } => {
                    format!("from {}", dir.join(running::ADMIN_FILE).display())
                }
                Found::Config { origin } if std::env::var_os("PORTER_ADMIN_TOKEN").is_none() => {
                    format!("[admin] token of {origin}")
                }
                _ => "from --token or PORTER_ADMIN_TOKEN".to_owned(),
            };
            return Err(Failure::Other(format!(
                "the admin listener at {} refused the token ({token}): set PORTER_ADMIN_TOKEN \
                 (or pass --token) to the running porter's [admin] token, and --admin to its \
                 admin listener",
                self.address
            )));
        }
        Err(Failure::Refused(Refused {
            status,
            code: value["error"].as_str().unwrap_or_default().to_owned(),
            message: value["message"]
                .as_str()
                .map_or_else(|| text.trim().to_owned(), str::to_owned),
        }))
    }
}

impl Failure {
    /// The failure as a message (an answer the caller did not explain: its status and text).
    pub(super) fn describe(self) -> String {
        match self {
            Failure::Other(message) => message,
            Failure::Refused(refused) => format!(
                "porter's admin API answered {}: {}",
                refused.status,
                if refused.message.is_empty() {
                    refused.code
                } else {
                    refused.message
                }
            ),
        }
    }
}

/// An error and its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What `porter serve` will leave for these commands in its local store's directory, taken
/// from the configuration before the store opens.
#[derive(Debug)]
pub(super) struct ToPublish {
    dir: PathBuf,
    /// `None`: no admin listener (a file a crash left is removed).
    file: Option<AdminFile>,
}

/// The file `porter serve` has written, removed when it stops cleanly.
#[derive(Debug)]
pub(super) struct Published {
    dir: PathBuf,
}

impl ToPublish {
    /// For a local store; `address` is where the admin listener is bound, if it is.
    pub(super) fn of(config: &Config, address: Option<SocketAddr>) -> Option<Self> {
        let StoreKind::Local { path, .. } = &config.store.kind else {
            return None;
        };
        let file = match (&config.admin, address) {
            (Some(admin), Some(address)) => Some(AdminFile {
                pid: std::process::id(),
                admin: address,
                token: admin.token.clone(),
            }),
            _ => None,
        };
        Some(Self {
            dir: path.clone(),
            file,
        })
    }

    /// Writes `admin.json` (or removes one a crash left, without an admin listener). Call it
    /// once the store is open: its directory exists, private, and its lock is held.
    pub(super) fn publish(self) -> Option<Published> {
        let shown = self.dir.join(running::ADMIN_FILE);
        let Some(file) = self.file else {
            if let Err(error) = running::remove(&self.dir) {
                tracing::warn!(%error, file = %shown.display(), "cannot remove a file an earlier porter left");
            }
            return None;
        };
        match running::write(&self.dir, &file) {
            Ok(()) => Some(Published { dir: self.dir }),
            Err(error) => {
                tracing::warn!(
                    %error,
                    file = %shown.display(),
                    "cannot write where the admin listener is: porter erase, dlq replay and \
                     reprocess will need --admin ADDR and PORTER_ADMIN_TOKEN"
                );
                None
            }
        }
    }
}

impl Published {
    /// Removes the file (a clean stop).
    pub(super) fn withdraw(self) {
        if let Err(error) = running::remove(&self.dir) {
            let file = self.dir.join(running::ADMIN_FILE);
            tracing::warn!(%error, file = %file.display(), "cannot remove");
        }
    }
}
