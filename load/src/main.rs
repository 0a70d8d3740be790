//! `porter-load`: sends correctly signed webhooks to a porter on loopback and reports
//! throughput and latency percentiles.
//!
//! Each of `--connections` tasks holds one keep-alive HTTP/1.1 connection and sends requests
//! back to back (or on a fixed schedule with `--rate`, in which case latency is measured from
//! the scheduled send time so that a stalled server cannot hide its stall: no coordinated
//! omission). Every request carries unique event keys, except a `--duplicates` share that
//! repeats an earlier request byte for byte and a `--forged` share signed with a wrong secret.
//! The run stops by itself after `--duration`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use porter_providers::Secret;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Provider {
    Meta,
    Twilio,
}

#[derive(Debug, Parser)]
#[command(name = "porter-load", version)]
struct Args {
    /// porter's address, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, value_enum, default_value_t = Provider::Meta)]
    provider: Provider,
    /// The route (default: /webhooks/whatsapp for meta, /webhooks/sms for twilio).
    #[arg(long)]
    path: Option<String>,
    /// The signing secret (default: the embedded default configuration's).
    #[arg(long)]
    secret: Option<String>,
    /// Twilio: the public URL porter verifies against (`server.public_url`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Total requests per second across all connections; absent = as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Messages per request (Meta batches).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Approximate body size in bytes (padded with message text).
    #[arg(long, default_value_t = 1500)]
    body_size: usize,
    /// Share of requests that repeat an earlier request exactly (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Share of requests signed with a wrong secret (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    forged: f64,
    /// Write the event key of every acknowledged event to this file, one per line.
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
    errors: u64,
    events: u64,
    acknowledged_keys: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            statuses: std::collections::BTreeMap::new(),
            errors: 0,
            events: 0,
            acknowledged_keys: Vec::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.errors += other.errors;
        self.events += other.events;
        self.acknowledged_keys.extend(other.acknowledged_keys);
    }
}

/// A request ready to send, and the keys of the events it carries.
#[derive(Clone)]
struct Prepared {
    body: Bytes,
    content_type: &'static str,
    signature: (&'static str, String),
    keys: Vec<String>,
    forged: bool,
}

struct Generator {
    /// Makes keys unique across runs against the same store (a warm-up, then the measurement).
    run: u64,
    provider: Provider,
    secret: Secret,
    wrong: Secret,
    url: String,
    batch: usize,
    body_size: usize,
}

impl Generator {
    fn request(&self, connection: usize, sequence: u64, forged: bool) -> Prepared {
        let secret = if forged { &self.wrong } else { &self.secret };
        let keys: Vec<String> = (0..self.batch)
            .map(|m| format!("load-{:x}-{connection}-{sequence}-{m}", self.run))
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
                Prepared {
                    body: Bytes::from(body),
                    content_type: "application/json",
                    signature: ("x-hub-signature-256", signature),
                    keys: keys.iter().map(|k| format!("wamid.{k}")).collect(),
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
                Prepared {
                    body: Bytes::from(body),
                    content_type: "application/x-www-form-urlencoded",
                    signature: ("x-twilio-signature", signature),
                    keys: vec![format!("SM{key}")],
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
    let Some(authority) = args
        .url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_owned())
    else {
        eprintln!("porter-load: --url must be http://HOST:PORT");
        return std::process::ExitCode::FAILURE;
    };
    let host = authority.split(':').next().unwrap_or("");
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        eprintln!("porter-load: only loopback targets are allowed");
        return std::process::ExitCode::FAILURE;
    }
    let path = args.path.clone().unwrap_or_else(|| match args.provider {
        Provider::Meta => "/webhooks/whatsapp".to_owned(),
        Provider::Twilio => "/webhooks/sms".to_owned(),
    });
    let secret = args.secret.clone().unwrap_or_else(|| match args.provider {
        Provider::Meta => "porter-dev-meta-app-secret".to_owned(),
        Provider::Twilio => "porter-dev-twilio-auth-token".to_owned(),
    });
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let generator = Arc::new(Generator {
        run,
        provider: args.provider,
        secret: Secret::new(secret),
        wrong: Secret::new("porter-load-forged-secret"),
        url: format!("{}{path}", args.public_url.trim_end_matches('/')),
        batch: args.batch.max(1),
        body_size: args.body_size,
    });
    let started = Instant::now();
    let deadline = started + args.duration;
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.connections as f64 / rate.max(1) as f64));
    let total = Arc::new(Mutex::new(Tally::new()));
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let generator = Arc::clone(&generator);
        let total = Arc::clone(&total);
        let (authority, path) = (authority.clone(), path.clone());
        let (duplicates, forged) = (args.duplicates, args.forged);
        tasks.push(tokio::spawn(async move {
            let tally = run_connection(
                connection, &generator, &authority, &path, deadline, interval, duplicates, forged,
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
    std::process::ExitCode::SUCCESS
}

#[allow(clippy::too_many_arguments)]
async fn run_connection(
    connection: usize,
    generator: &Generator,
    authority: &str,
    path: &str,
    deadline: Instant,
    interval: Option<Duration>,
    duplicates: f64,
    forged: f64,
) -> Tally {
    let mut tally = Tally::new();
    let mut dice =
        Dice(0x9E37_79B9_7F4A_7C15 ^ (connection as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let mut sent: Vec<Prepared> = Vec::new();
    let mut sender = None;
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
            let prepared = generator.request(connection, sequence, dice.roll() < forged);
            if !prepared.forged && sent.len() < 1024 {
                sent.push(prepared.clone());
            }
            prepared
        };
        if sender.is_none() {
            sender = connect(authority).await;
        }
        let Some(active) = sender.as_mut() else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let http_request = http::Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, request.content_type)
            .header(request.signature.0, &request.signature.1)
            .body(Full::new(request.body.clone()))
            .expect("request");
        match active.send_request(http_request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let duplicate = response.headers().contains_key("porter-duplicate");
                let _ = response.into_body().collect().await;
                let micros = scheduled.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                let _ = tally.latency.record(micros.max(1));
                *tally.statuses.entry(status).or_default() += 1;
                if status == 200 && !request.forged && !duplicate {
                    tally.events += request.keys.len() as u64;
                    tally.acknowledged_keys.extend(request.keys.iter().cloned());
                }
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

async fn connect(authority: &str) -> Option<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
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
        "statuses: {}   connection errors: {}",
        statuses.join(", "),
        tally.errors
    );
}
