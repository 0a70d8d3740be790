//! `porter-load`: sends correctly signed webhooks to a porter on loopback and reports
//! throughput and latency percentiles.
//!
//! Each of `--connections` tasks holds one keep-alive HTTP/1.1 connection and sends requests
//! back to back (or on a fixed schedule with `--rate`, in which case latency is measured from
//! the scheduled send time so that a stalled server cannot hide its stall: no coordinated
//! omission). Every request carries unique event keys, except a `--duplicates` share that
//! repeats an earlier request byte for byte and a `--forged` share signed with a wrong secret.
//! The run stops by itself after `--duration`.
//!
//! Two ways to make requests: `--provider meta|twilio` builds WhatsApp or SMS bodies of
//! `--body-size` bytes by hand; `--config FILE --source NAME --template BODY` (template mode)
//! renders BODY with a fresh `{{key}}` and signs it for any configured source with porter's
//! own signing code (see the library, and `load/templates/` for one template per provider).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use porter_load::{Outgoing, TemplateSigner};
use porter_providers::Secret;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Provider {
    Meta,
    Twilio,
}

#[derive(Debug, Parser)]
#[command(name = "porter-load", version)]
struct Args {
    /// porter's address, e.g. http://127.0.0.1:8080 (loopback only). Default: in template
    /// mode, the configuration's `server.listen`; else http://127.0.0.1:8080.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value_t = Provider::Meta)]
    provider: Provider,
    /// The route (default: /webhooks/whatsapp for meta, /webhooks/sms for twilio).
    #[arg(long, conflicts_with = "template")]
    path: Option<String>,
    /// The signing secret (default: the embedded default configuration's).
    #[arg(long, conflicts_with = "template")]
    secret: Option<String>,
    /// Twilio: the public URL porter verifies against (`server.public_url`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
    /// Template mode: the porter configuration holding the source, with its secrets.
    #[arg(long, value_name = "FILE", requires_all = ["source", "template"])]
    config: Option<std::path::PathBuf>,
    /// Template mode: the configured source to sign for (e.g. `stripe`).
    #[arg(long, value_name = "NAME", requires_all = ["config", "template"])]
    source: Option<String>,
    /// Template mode: the body to send, with `{{key}}` where each request's unique key goes.
    #[arg(long, value_name = "BODYFILE", requires_all = ["config", "source"])]
    template: Option<std::path::PathBuf>,
    /// Template mode: the route, with an optional query (default: the source's base path).
    #[arg(long, value_name = "PATH[?QUERY]", requires = "template")]
    route: Option<String>,
    /// Template mode: the Content-Type (default: JSON; a form for Twilio unless the template
    /// ends in `.json`).
    #[arg(long, requires = "template")]
    content_type: Option<String>,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Total requests per second across all connections; absent = as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Messages per request (Meta batches).
    #[arg(long, default_value_t = 1, conflicts_with = "template")]
    batch: usize,
    /// Approximate body size in bytes (padded with message text).
    #[arg(long, default_value_t = 1500, conflicts_with = "template")]
    body_size: usize,
    /// Share of requests that repeat an earlier request exactly (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Share of requests signed with a wrong secret (0.0 to 1.0). In template mode, every
    /// secret and URL token of the source is changed by one character.
    #[arg(long, default_value_t = 0.0)]
    forged: f64,
    /// Write the event key of every acknowledged event to this file, one per line (in template
    /// mode, the key of every acknowledged request).
    #[arg(long)]
    keys_out: Option<std::path::PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("bad duration `{text}`"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration `{text}` (use ms, s or m)")),
    }
}

/// What one connection saw.
#[derive(Debug)]
struct Tally {
    latency: Histogram<u64>,
    statuses: std::collections::BTreeMap<u16, u64>,
    /// Requests that got no answer: refused connections, and resets after a request was
    /// written.
    errors: u64,
    /// Requests sent again on a new connection because the old one closed before they were
    /// written (not errors: nothing reached the server).
    resent: u64,
    events: u64,
    /// Forged requests answered 200: porter accepted what it should have refused.
    forged_accepted: u64,
    acknowledged_keys: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            statuses: std::collections::BTreeMap::new(),
            errors: 0,
            resent: 0,
            events: 0,
            forged_accepted: 0,
            acknowledged_keys: Vec::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.errors += other.errors;
        self.resent += other.resent;
        self.events += other.events;
        self.forged_accepted += other.forged_accepted;
        self.acknowledged_keys.extend(other.acknowledged_keys);
    }

    /// Counts an answer to `request`, sent at `scheduled`.
    fn answered(&mut self, request: &Outgoing, answer: &porter_load::Answer, scheduled: Instant) {
        let micros = scheduled.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        let _ = self.latency.record(micros.max(1));
        *self.statuses.entry(answer.status).or_default() += 1;
        if request.forged && answer.status == 200 {
            self.forged_accepted += 1;
        }
        let events = request.acknowledged(answer);
        if events > 0 {
            self.events += events;
            self.acknowledged_keys.extend(request.keys.iter().cloned());
        }
    }
}

/// Makes the requests of one run.
enum Mode {
    /// Hand-built WhatsApp or SMS bodies.
    Built(Generator),
    /// A body template signed for a configured source.
    Template(Box<TemplateSigner>),
}

impl Mode {
    fn request(&self, run: u64, connection: usize, sequence: u64, forged: bool) -> Outgoing {
        match self {
            Mode::Built(generator) => generator.request(run, connection, sequence, forged),
            Mode::Template(signer) => {
                let key = porter_load::request_key(run, connection, sequence);
                // Signed now, so that timestamped schemes are fresh when porter checks.
                signer
                    .request(&key, jiff::Timestamp::now(), forged)
                    .expect("the source and route were checked at start")
            }
        }
    }
}

struct Generator {
    provider: Provider,
    path: String,
    secret: Secret,
    wrong: Secret,
    url: String,
    batch: usize,
    body_size: usize,
}

impl Generator {
    fn request(&self, run: u64, connection: usize, sequence: u64, forged: bool) -> Outgoing {
        let secret = if forged { &self.wrong } else { &self.secret };
        let keys: Vec<String> = (0..self.batch)
            .map(|m| format!("load-{run:x}-{connection}-{sequence}-{m}"))
            .collect();
        match self.provider {
            Provider::Meta => {
                let per_message = self.body_size.saturating_sub(300) / self.batch.max(1);
                let messages: Vec<String> = keys
                    .iter()
                    .map(|key| {
                        let text = "x".repeat(per_message.saturating_sub(120).max(1));
                        format!(r#"{{"from":"4915112345678","id":"wamid.{key}","timestamp":"1710511200","type":"text","text":{{"body":"{text}"}}}}"#)
                    })
                    .collect();
                let body = format!(
                    r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Load Test"}},"wa_id":"4915112345678"}}],"messages":[{}]}}}}]}}]}}"#,
                    messages.join(",")
                );
                let signature = porter_providers::meta::signature(secret, body.as_bytes());
                Outgoing {
                    target: self.path.clone(),
                    body: Bytes::from(body),
                    content_type: "application/json".to_owned(),
                    headers: vec![("x-hub-signature-256".to_owned(), signature)],
                    keys: keys.iter().map(|k| format!("wamid.{k}")).collect(),
                    events_from_answer: false,
                    forged,
                }
            }
            Provider::Twilio => {
                let key = &keys[0];
                let text = "x".repeat(self.body_size.saturating_sub(250).max(1));
                let body = format!(
                    "ToCountry=US&SmsMessageSid=SM{key}&NumMedia=0&SmsSid=SM{key}&SmsStatus=received&Body={text}&To=%2B14155550100&NumSegments=1&MessageSid=SM{key}&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B12125550123&ApiVersion=2010-04-01"
                );
                let signature =
                    porter_providers::twilio::signature(secret, &self.url, body.as_bytes());
                Outgoing {
                    target: self.path.clone(),
                    body: Bytes::from(body),
                    content_type: "application/x-www-form-urlencoded".to_owned(),
                    headers: vec![("x-twilio-signature".to_owned(), signature)],
                    keys: vec![format!("SM{key}")],
                    events_from_answer: false,
                    forged,
                }
            }
        }
    }
}

/// A tiny xorshift generator: which requests are duplicates or forged, reproducibly.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mode = match &args.template {
        Some(template) => {
            let (Some(config), Some(source)) = (&args.config, &args.source) else {
                unreachable!("clap requires --config and --source with --template");
            };
            match TemplateSigner::new(
                config,
                source,
                template,
                args.route.as_deref(),
                args.content_type.as_deref(),
            ) {
                Ok(signer) => Mode::Template(Box::new(signer)),
                Err(message) => {
                    eprintln!("porter-load: {message}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        None => Mode::Built(Generator::new(&args)),
    };
    if let Mode::Template(signer) = &mode
        && args.forged > 0.0
        && !signer.can_forge()
    {
        eprintln!(
            "porter-load: source `{}` accepts unsigned requests, so nothing sent to it can be forged; drop --forged",
            signer.source().source.name()
        );
        return std::process::ExitCode::FAILURE;
    }
    let url = match (&args.url, &mode) {
        (Some(url), _) => url.clone(),
        (None, Mode::Template(signer)) => signer.listen_url(),
        (None, Mode::Built(_)) => "http://127.0.0.1:8080".to_owned(),
    };
    let Some(authority) = authority_of(&url) else {
        eprintln!("porter-load: --url must be http://HOST:PORT or HOST:PORT");
        return std::process::ExitCode::FAILURE;
    };
    let host = authority.split(':').next().unwrap_or("");
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        eprintln!("porter-load: only loopback targets are allowed");
        return std::process::ExitCode::FAILURE;
    }
    // Makes keys unique across runs against the same store (a warm-up, then the measurement).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mode = Arc::new(mode);
    let started = Instant::now();
    let deadline = started + args.duration;
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.connections as f64 / rate.max(1) as f64));
    let total = Arc::new(Mutex::new(Tally::new()));
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let mode = Arc::clone(&mode);
        let total = Arc::clone(&total);
        let authority = authority.clone();
        let (duplicates, forged) = (args.duplicates, args.forged);
        tasks.push(tokio::spawn(async move {
            let tally = run_connection(
                connection, run, &mode, &authority, deadline, interval, duplicates, forged,
            )
            .await;
            total.lock().await.merge(tally);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tally = std::mem::replace(&mut *total.lock().await, Tally::new());
    if let Some(path) = &args.keys_out {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("keys file"));
        for key in &tally.acknowledged_keys {
            let _ = writeln!(file, "{key}");
        }
    }
    report(&args, &tally, elapsed);
    if tally.forged_accepted > 0 {
        eprintln!(
            "porter-load: porter accepted {} forged requests",
            tally.forged_accepted
        );
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

impl Generator {
    fn new(args: &Args) -> Self {
        let path = args.path.clone().unwrap_or_else(|| match args.provider {
            Provider::Meta => "/webhooks/whatsapp".to_owned(),
            Provider::Twilio => "/webhooks/sms".to_owned(),
        });
        let secret = args.secret.clone().unwrap_or_else(|| match args.provider {
            Provider::Meta => "porter-dev-meta-app-secret".to_owned(),
            Provider::Twilio => "porter-dev-twilio-auth-token".to_owned(),
        });
        Self {
            provider: args.provider,
            url: format!("{}{path}", args.public_url.trim_end_matches('/')),
            path,
            secret: Secret::new(secret),
            wrong: Secret::new("porter-load-forged-secret"),
            batch: args.batch.max(1),
            body_size: args.body_size,
        }
    }
}

/// Requests kept for `--duplicates` to repeat: the most recent ones, so that a repeat of a
/// timestamped request is still inside porter's freshness window.
const KEPT_FOR_REPEATS: usize = 1024;

#[allow(clippy::too_many_arguments)]
async fn run_connection(
    connection: usize,
    run: u64,
    mode: &Mode,
    authority: &str,
    deadline: Instant,
    interval: Option<Duration>,
    duplicates: f64,
    forged: f64,
) -> Tally {
    let mut tally = Tally::new();
    let mut dice =
        Dice(0x9E37_79B9_7F4A_7C15 ^ (connection as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let mut sent: Vec<Outgoing> = Vec::new();
    let mut kept = 0usize;
    let mut sender: Option<porter_load::Sender> = None;
    let mut next_send = Instant::now();
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        if interval.is_some() {
            let now = Instant::now();
            if next_send > now {
                tokio::time::sleep(next_send - now).await;
            }
        }
        let scheduled = if interval.is_some() {
            next_send
        } else {
            Instant::now()
        };
        if let Some(interval) = interval {
            next_send += interval;
        }
        let request = if !sent.is_empty() && dice.roll() < duplicates {
            let index = (dice.roll() * sent.len() as f64) as usize;
            sent[index.min(sent.len() - 1)].clone()
        } else {
            sequence += 1;
            let prepared = mode.request(run, connection, sequence, dice.roll() < forged);
            if !prepared.forged {
                if sent.len() < KEPT_FOR_REPEATS {
                    sent.push(prepared.clone());
                } else {
                    sent[kept % KEPT_FOR_REPEATS] = prepared.clone();
                }
                kept += 1;
            }
            prepared
        };
        if sender.as_ref().is_some_and(porter_load::Sender::is_closed) {
            // Closed after its last answer (`Connection: close`, or idle): not an error.
            sender = None;
        }
        if sender.is_none() {
            sender = porter_load::connect(authority).await;
        }
        let Some(active) = sender.as_mut() else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match porter_load::send(active, authority, &request).await {
            Ok(answer) => tally.answered(&request, &answer, scheduled),
            Err(porter_load::SendError::NotSent(_)) => {
                // Nothing was written: the same request goes on a new connection (once; a
                // second failure there is counted).
                sender = porter_load::connect(authority).await;
                tally.resent += 1;
                match sender.as_mut() {
                    Some(active) => match porter_load::send(active, authority, &request).await {
                        Ok(answer) => tally.answered(&request, &answer, scheduled),
                        Err(_) => {
                            tally.errors += 1;
                            sender = None;
                        }
                    },
                    None => tally.errors += 1,
                }
            }
            Err(porter_load::SendError::NoAnswer(_)) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

fn report(args: &Args, tally: &Tally, elapsed: f64) {
    let requests: u64 = tally.statuses.values().sum();
    let ms = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        let statuses: serde_json::Map<String, serde_json::Value> = tally
            .statuses
            .iter()
            .map(|(s, c)| (s.to_string(), serde_json::Value::from(*c)))
            .collect();
        let report = serde_json::json!({
            "requests": requests,
            "seconds": elapsed,
            "requests_per_second": requests as f64 / elapsed,
            "events_per_second": tally.events as f64 / elapsed,
            "p50_ms": ms(0.50), "p90_ms": ms(0.90), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
            "max_ms": tally.latency.max() as f64 / 1000.0,
            "statuses": statuses,
            "errors": tally.errors,
            "resent": tally.resent,
            "forged_accepted": tally.forged_accepted,
        });
        println!("{report}");
        return;
    }
    println!(
        "{requests} requests in {elapsed:.1} s over {} connections: {:.0} req/s, {:.0} events/s",
        args.connections,
        requests as f64 / elapsed,
        tally.events as f64 / elapsed
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(0.50),
        ms(0.90),
        ms(0.99),
        ms(0.999),
        tally.latency.max() as f64 / 1000.0
    );
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    println!(
        "statuses: {}   connection errors: {}   resent (closed before written): {}",
        statuses.join(", "),
        tally.errors,
        tally.resent
    );
}

/// `HOST:PORT` of `--url`, written `http://HOST:PORT` or bare, as `porter send --url` takes it
/// (`https://` is refused: the load generator speaks plain HTTP to loopback only).
fn authority_of(url: &str) -> Option<String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return None,
        None => url,
    };
    let authority = rest.trim_end_matches('/');
    (!authority.is_empty() && !authority.contains('/')).then(|| authority.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_url_may_be_bare_or_http_but_not_https_or_a_path() {
        assert_eq!(
            super::authority_of("http://127.0.0.1:8080/").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            super::authority_of("127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(super::authority_of("https://127.0.0.1:8443"), None);
        assert_eq!(super::authority_of("http://127.0.0.1:8080/webhooks"), None);
        assert_eq!(super::authority_of(""), None);
    }
}
