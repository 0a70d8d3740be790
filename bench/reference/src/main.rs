//! `porter-reference`: the benchmark's yardstick.
//!
//! A webhook server that does only the work no correct gateway can skip, written plainly on the
//! same HTTP stack (hyper, tokio) porter uses, so that `bench/run` can report porter's throughput
//! as a ratio to it:
//!
//! - read the body, verify its HMAC (Meta: SHA-256 over the raw bytes; Twilio: SHA-1 over the
//!   URL and the sorted form parameters), compare in constant time, parse it (JSON or form);
//! - with `--redis`, for each message: one `SET NX EX` on its key and, when the key is new, one
//!   `XADD` of the message, awaited before answering. Nothing is batched or pipelined across
//!   requests beyond what the multiplexed Redis connection does by itself.
//!
//! It has no configuration, routing table, normalization, metrics or logs. It is not a product:
//! it exists to measure what porter's extra work costs. It uses the same allocator as the
//! `porter` binary, so that the ratio measures work, not allocators.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use hmac::Mac;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use redis::aio::ConnectionManager;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "porter-reference", version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Store each message with `SET NX` + `XADD` in this Redis (absent: verify and parse only).
    #[arg(long)]
    redis: Option<String>,
    #[arg(long, default_value = "bench-meta-secret")]
    meta_secret: String,
    #[arg(long, default_value = "bench-twilio-token")]
    twilio_token: String,
    /// The public base URL Twilio signs (as porter's `server.public_url`).
    #[arg(long)]
    public_url: Option<String>,
}

#[derive(Debug)]
struct State {
    redis: Option<ConnectionManager>,
    meta_secret: Vec<u8>,
    twilio_token: Vec<u8>,
    public_url: String,
}

const BODY_LIMIT: usize = 1024 * 1024;
const DEDUPE_SECONDS: u64 = 86_400;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let redis = match &args.redis {
        Some(url) => {
            let client = redis::Client::open(url.as_str()).map_err(std::io::Error::other)?;
            Some(
                ConnectionManager::new(client)
                    .await
                    .map_err(std::io::Error::other)?,
            )
        }
        None => None,
    };
    let listener = TcpListener::bind(args.listen).await?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{}", listener.local_addr().expect("bound address")));
    let state = Arc::new(State {
        redis,
        meta_secret: args.meta_secret.into_bytes(),
        twilio_token: args.twilio_token.into_bytes(),
        public_url,
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, BODY_LIMIT).collect().await else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let body = body.to_bytes();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let keys_and_messages = match parts.uri.path() {
        "/webhooks/whatsapp" => meta(state, header("x-hub-signature-256"), &body),
        "/webhooks/sms" => twilio(state, &parts.uri, header("x-twilio-signature"), &body),
        _ => return answer(StatusCode::NOT_FOUND),
    };
    let Some(messages) = keys_and_messages else {
        return answer(StatusCode::UNAUTHORIZED);
    };
    if let Some(redis) = &state.redis
        && store(redis.clone(), messages).await.is_err()
    {
        return answer(StatusCode::SERVICE_UNAVAILABLE);
    }
    answer(StatusCode::OK)
}

/// Verifies `sha256=<hex>` over the raw body, then returns each message's id and JSON.
fn meta(state: &State, signature: Option<&str>, body: &[u8]) -> Option<Vec<(String, String)>> {
    let expected = hex::decode(signature?.strip_prefix("sha256=")?).ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&state.meta_secret).ok()?;
    mac.update(body);
    if !bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&expected)) {
        return None;
    }
    let payload: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut messages = Vec::new();
    for entry in payload.get("entry")?.as_array()? {
        for change in entry.get("changes")?.as_array()? {
            let value = change.get("value")?;
            for message in value.get("messages")?.as_array()? {
                let id = message.get("id")?.as_str()?.to_owned();
                messages.push((id, message.to_string()));
            }
        }
    }
    Some(messages)
}

/// Verifies base64 HMAC-SHA1 over the public URL followed by the sorted `key` `value` pairs.
fn twilio(
    state: &State,
    uri: &http::Uri,
    signature: Option<&str>,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature?)
        .ok()?;
    let mut params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    params.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&state.twilio_token).ok()?;
    mac.update(state.public_url.as_bytes());
    mac.update(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    for (key, value) in &params {
        mac.update(key.as_bytes());
        mac.update(value.as_bytes());
    }
    if !bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&expected)) {
        return None;
    }
    let sid = params.iter().find(|(k, _)| k == "MessageSid")?.1.clone();
    let message = serde_json::to_string(&params).ok()?;
    Some(vec![(sid, message)])
}

/// `SET key 1 NX EX` for every message in one round trip, then `XADD` the new ones in another.
async fn store(
    mut redis: ConnectionManager,
    messages: Vec<(String, String)>,
) -> redis::RedisResult<()> {
    let mut claims = redis::pipe();
    for (key, _) in &messages {
        claims
            .cmd("SET")
            .arg(format!("reference:dedupe:{key}"))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(DEDUPE_SECONDS);
    }
    let claimed: Vec<Option<String>> = claims.query_async(&mut redis).await?;
    let mut adds = redis::pipe();
    let mut any = false;
    for ((_, message), claim) in messages.iter().zip(claimed) {
        if claim.is_some() {
            adds.cmd("XADD")
                .arg("reference:events")
                .arg("*")
                .arg("event")
                .arg(message)
                .ignore();
            any = true;
        }
    }
    if any {
        adds.query_async::<()>(&mut redis).await?;
    }
    Ok(())
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = status;
    response
}
