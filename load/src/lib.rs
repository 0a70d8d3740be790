//! The parts of `porter-load` that are worth testing on their own: template mode (a body
//! template with `{{key}}`, signed for any configured source with porter's own signing code),
//! forged requests for any provider, and one request on the wire.
//!
//! Template mode reads the same configuration file the server runs with. Each request renders
//! the template with a fresh key and is signed by [`porter::testing::commands::send::prepare`] at the moment it is
//! sent, so schemes with a timestamp (Stripe, Standard Webhooks, Oracle, generic HMAC) stay
//! inside their freshness window. A forged request is rendered and signed the same way, but
//! from a copy of the configuration in which the source's secrets and URL token were each
//! changed by one character: it is what someone who does not know the secret can send, and
//! porter must refuse it.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use porter::testing::config::{Config, ConfigOrigin, SourceConfig};
use porter_providers::Provider;
use tokio::net::TcpStream;

/// What a template marks for the key of each new request.
pub const KEY_PLACEHOLDER: &str = "{{key}}";

/// The header porter marks a duplicate's answer with.
pub const DUPLICATE_HEADER: &str = "porter-duplicate";

/// The key of one request: unique across runs (`run`), connections and requests.
pub fn request_key(run: u64, connection: usize, sequence: u64) -> String {
    format!("load-{run:x}-{connection}-{sequence}")
}

/// A body with `{{key}}` in one or more places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The bytes between the placeholders: one more piece than there are placeholders.
    pieces: Vec<Vec<u8>>,
}

impl Template {
    /// Splits `bytes` at every `{{key}}`. A template without one is refused: every request
    /// would carry the same event, and all but the first would be duplicates.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let placeholder = KEY_PLACEHOLDER.as_bytes();
        let mut pieces = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest
            .windows(placeholder.len())
            .position(|window| window == placeholder)
        {
            pieces.push(rest[..at].to_vec());
            rest = &rest[at + placeholder.len()..];
        }
        pieces.push(rest.to_vec());
        if pieces.len() < 2 {
            return Err(format!(
                "the template has no `{KEY_PLACEHOLDER}`: every request would be the same event"
            ));
        }
        Ok(Self { pieces })
    }

    /// How many times the key appears.
    pub fn placeholders(&self) -> usize {
        self.pieces.len() - 1
    }

    /// The body with every `{{key}}` replaced by `key`.
    pub fn render(&self, key: &str) -> Vec<u8> {
        let length =
            self.pieces.iter().map(Vec::len).sum::<usize>() + key.len() * self.placeholders();
        let mut body = Vec::with_capacity(length);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(key.as_bytes());
            }
            body.extend_from_slice(piece);
        }
        body
    }
}

/// Changes one character of a secret so that it is wrong but still well formed: the first
/// ASCII letter or digit after a `whsec_` prefix moves to the next one of its kind (`a`→`b`,
/// `z`→`a`, `9`→`0`). Base64 stays base64 (the first character of a group carries no padding
/// bits), so a Standard Webhooks secret still loads; a token keeps its length.
pub fn forge_secret(secret: &str) -> String {
    let start = if secret.starts_with("whsec_") { 6 } else { 0 };
    let Some((at, c)) = secret[start..]
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphanumeric())
    else {
        return format!("{secret}-forged");
    };
    let next = |first: u8, count: u8| char::from(first + (c as u8 - first + 1) % count);
    let replacement = match c {
        'a'..='z' => next(b'a', 26),
        'A'..='Z' => next(b'A', 26),
        _ => next(b'0', 10),
    };
    let at = start + at;
    format!("{}{replacement}{}", &secret[..at], &secret[at + 1..])
}

/// Expands `${NAME}` from the process environment, as the configuration loader does; a
/// reference to an unset variable is left as written (the genuine configuration has already
/// been loaded, so that cannot happen there).
fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(value) => out.push_str(&value),
                    Err(_) => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Configuration text in which source `name`'s `secrets` and `url_token` are each wrong by one
/// character ([`forge_secret`]), every other setting kept. A forged secret never equals one of
/// the source's real ones.
pub fn forged_config_text(text: &str, name: &str) -> Result<String, String> {
    let mut root: toml::Table = toml::from_str(text).map_err(|e| format!("invalid TOML: {e}"))?;
    let source = root
        .get_mut("sources")
        .and_then(toml::Value::as_array_mut)
        .and_then(|sources| {
            sources.iter_mut().find_map(|source| {
                let table = source.as_table_mut()?;
                (table.get("name").and_then(toml::Value::as_str) == Some(name)).then_some(table)
            })
        })
        .ok_or_else(|| format!("no source named `{name}`"))?;
    let mut real: Vec<String> = Vec::new();
    if let Some(secrets) = source.get("secrets").and_then(toml::Value::as_array) {
        real.extend(
            secrets
                .iter()
                .filter_map(toml::Value::as_str)
                .map(expand_env),
        );
    }
    if let Some(token) = source.get("url_token").and_then(toml::Value::as_str) {
        real.push(expand_env(token));
    }
    let forge = |value: &mut toml::Value| {
        if let Some(text) = value.as_str() {
            let mut forged = forge_secret(&expand_env(text));
            while real.contains(&forged) {
                forged = forge_secret(&forged);
            }
            *value = toml::Value::String(forged);
        }
    };
    if let Some(secrets) = source
        .get_mut("secrets")
        .and_then(toml::Value::as_array_mut)
    {
        secrets.iter_mut().for_each(forge);
    }
    // CloudEvents access tokens.
    if let Some(tokens) = source.get_mut("tokens").and_then(toml::Value::as_array_mut) {
        tokens.iter_mut().for_each(forge);
    }
    // SiteMinder's WS-Security password (at least 12 characters either way).
    if let Some(password) = source.get_mut("password") {
        forge(password);
    }
    // Basic authentication (Adyen, Apaleo, Hostaway): a wrong password.
    if let Some(password) = source
        .get_mut("basic")
        .and_then(toml::Value::as_table_mut)
        .and_then(|basic| basic.get_mut("password"))
    {
        forge(password);
    }
    // Adyen's HMAC keys must stay hex to load: each digit moved to the next one.
    if let Some(keys) = source
        .get_mut("hmac_keys")
        .and_then(toml::Value::as_array_mut)
    {
        for key in keys.iter_mut() {
            if let Some(text) = key.as_str() {
                let shifted: String = text
                    .chars()
                    .map(|c| match c.to_digit(16) {
                        Some(d) => std::char::from_digit((d + 1) % 16, 16).unwrap_or(c),
                        None => c,
                    })
                    .collect();
                *key = toml::Value::String(shifted);
            }
        }
    }
    // An Ed25519 seed (Telnyx) must stay 32 bytes to load: another seed, not an edited one.
    if let Some(seed) = source.get_mut("signing_key") {
        const OTHER: &str = "Zm9yZ2VkLXNlZWQtb2YtdGhpcnR5LXR3by1ieXRlcyE=";
        const ANOTHER: &str = "YW5vdGhlci1mb3JnZWQtc2VlZC0zMi1ieXRlcy1sbyE=";
        let forged = if seed.as_str() == Some(OTHER) {
            ANOTHER
        } else {
            OTHER
        };
        *seed = toml::Value::String(forged.to_owned());
    }
    if let Some(token) = source.get_mut("url_token") {
        forge(token);
    }
    toml::to_string(&root).map_err(|e| format!("cannot write the forged configuration: {e}"))
}

/// Signs a body template for one configured source, correctly or forged.
#[derive(Debug)]
pub struct TemplateSigner {
    genuine: Config,
    forged: Config,
    source: String,
    route: Option<String>,
    content_type: String,
    template: Template,
    can_forge: bool,
}

impl TemplateSigner {
    /// Loads the configuration (`${ENV}` expanded, as `porter serve` does) and the template,
    /// and signs one probe request to check the source and route.
    ///
    /// `route` is a route of the source with an optional query (default: its base path);
    /// `content_type` defaults as `porter send` chooses it.
    pub fn new(
        config: &Path,
        source: &str,
        template: &Path,
        route: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<Self, String> {
        let genuine =
            Config::resolve_without_admin_token(Some(config)).map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(config)
            .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
        let forged_text = forged_config_text(&text, source)?;
        let forged = Config::parse_without_admin_token(
            &forged_text,
            ConfigOrigin::File(config.to_owned()),
            &|name| std::env::var(name).ok(),
        )
        .map_err(|e| format!("the forged copy of the configuration does not load: {e}"))?;
        let bytes = std::fs::read(template)
            .map_err(|e| format!("cannot read {}: {e}", template.display()))?;
        let template_body =
            Template::parse(&bytes).map_err(|e| format!("{}: {e}", template.display()))?;
        let Some(found) = genuine.source(source) else {
            let names: Vec<&str> = genuine.sources.iter().map(|s| s.source.name()).collect();
            return Err(format!(
                "no source named `{source}` in {} (sources: {})",
                config.display(),
                names.join(", ")
            ));
        };
        let content_type = match content_type {
            Some(content_type) => content_type.to_owned(),
            None => porter::testing::commands::send::default_content_type(found, template),
        };
        let mut signer = Self {
            genuine,
            forged,
            source: source.to_owned(),
            route: route.map(str::to_owned),
            content_type,
            template: template_body,
            can_forge: false,
        };
        let now = Timestamp::now();
        let probe = signer.sign("probe", now, false)?;
        let forged_probe = signer.sign("probe", now, true)?;
        signer.can_forge = probe.url != forged_probe.url
            || probe.headers != forged_probe.headers
            || probe.body != forged_probe.body;
        Ok(signer)
    }

    /// The configured source requests are signed for.
    pub fn source(&self) -> &SourceConfig {
        self.genuine
            .source(&self.source)
            .expect("checked when built")
    }

    pub fn provider(&self) -> Provider {
        self.source().source.provider()
    }

    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Whether a forged request differs from a genuine one: not so for a source that accepts
    /// unsigned requests (`pms` with `insecure_allow_unsigned`), which nothing can forge.
    pub fn can_forge(&self) -> bool {
        self.can_forge
    }

    /// Where porter listens according to the configuration, as `http://HOST:PORT` (an
    /// unspecified address becomes loopback).
    pub fn listen_url(&self) -> String {
        let mut address = self.genuine.server.listen;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    }

    /// The template rendered with `key` and signed as at `now`; `forged` signs with the wrong
    /// secrets. The request's `url` is the path and query only.
    pub fn sign(
        &self,
        key: &str,
        now: Timestamp,
        forged: bool,
    ) -> Result<porter::testing::commands::send::Prepared, String> {
        let config = if forged { &self.forged } else { &self.genuine };
        let source = config
            .source(&self.source)
            .ok_or_else(|| format!("no source named `{}` in the configuration", self.source))?;
        porter::testing::commands::send::prepare(
            source,
            "",
            self.route.as_deref(),
            &self.content_type,
            self.template.render(key),
            now,
        )
    }

    /// [`Self::sign`] as an [`Outgoing`] request carrying `key`.
    pub fn request(&self, key: &str, now: Timestamp, forged: bool) -> Result<Outgoing, String> {
        let prepared = self.sign(key, now, forged)?;
        Ok(Outgoing {
            target: prepared.url,
            content_type: prepared.content_type,
            headers: prepared.headers,
            body: Bytes::from(prepared.body),
            keys: vec![key.to_owned()],
            events_from_answer: true,
            forged,
        })
    }
}

/// A request ready to send, and the keys of the events it carries.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Path and query.
    pub target: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// What `--keys-out` records when the request is acknowledged.
    pub keys: Vec<String>,
    /// Count the events from the answer's `"events"` (one where the answer has none) instead
    /// of from `keys`: a template request may carry several events under one key.
    pub events_from_answer: bool,
    pub forged: bool,
}

/// What porter answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub duplicate: bool,
    /// The answer's `"events"` count, when it is porter's own JSON answer.
    pub events: Option<u64>,
}

impl Outgoing {
    /// How many new events an answer acknowledges for this request: none for a forged
    /// request, a duplicate or anything but 200.
    pub fn acknowledged(&self, answer: &Answer) -> u64 {
        if answer.status != 200 || self.forged || answer.duplicate {
            return 0;
        }
        if self.events_from_answer {
            answer.events.unwrap_or(1)
        } else {
            self.keys.len() as u64
        }
    }
}

/// The `"events"` member of porter's JSON answer (`{"status":"accepted","events":7}`).
pub fn events_in_answer(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("events")?.as_u64()
}

/// One HTTP/1.1 connection's request side.
pub type Sender = http1::SendRequest<Full<Bytes>>;

/// Opens one keep-alive HTTP/1.1 connection.
pub async fn connect(authority: &str) -> Option<Sender> {
    let stream = TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// The connection was closed before the request was written (the server said
    /// `Connection: close`, or closed an idle connection): nothing was sent, so sending it on
    /// a new connection is not a retry.
    NotSent(String),
    /// The request was (or may have been) written and no whole answer came: a reset.
    NoAnswer(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotSent(cause) => write!(f, "not sent: {cause}"),
            SendError::NoAnswer(cause) => write!(f, "no answer: {cause}"),
        }
    }
}

/// Sends `request` on `sender` and reads the whole answer (parsed for its event count only
/// when the request counts its events from the answer).
pub async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    authority: &str,
    request: &Outgoing,
) -> Result<Answer, SendError> {
    let mut builder = http::Request::post(request.target.as_str())
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, request.content_type.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let http_request = builder
        .body(Full::new(request.body.clone()))
        .map_err(|e| SendError::NotSent(format!("cannot build the request: {e}")))?;
    // The connection takes the next request only once it has finished with the last one,
    // which happens in its own task after the answer was read.
    sender
        .ready()
        .await
        .map_err(|e| SendError::NotSent(e.to_string()))?;
    let response = sender.send_request(http_request).await.map_err(|e| {
        // hyper cancels a request it never dispatched when the connection closes first.
        if e.is_canceled() {
            SendError::NotSent(e.to_string())
        } else {
            SendError::NoAnswer(e.to_string())
        }
    })?;
    let status = response.status().as_u16();
    let duplicate = response.headers().contains_key(DUPLICATE_HEADER);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| SendError::NoAnswer(e.to_string()))?
        .to_bytes();
    let events = if request.events_from_answer && status == 200 {
        events_in_answer(&body)
    } else {
        None
    };
    Ok(Answer {
        status,
        duplicate,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let template = Template::parse(b"{{key}}-a-{{key}}-b").expect("template");
        assert_eq!(template.placeholders(), 2);
        assert_eq!(template.render("k1"), b"k1-a-k1-b");
        assert_eq!(template.render(""), b"-a--b");
        let once = Template::parse(b"x{{key}}").expect("template");
        assert_eq!(once.render("y"), b"xy");
    }

    #[test]
    fn refuses_a_template_without_a_key() {
        assert!(Template::parse(b"{\"id\":\"evt_1\"}").is_err());
        assert!(Template::parse(b"{{ key }}").is_err());
        assert!(Template::parse(b"").is_err());
    }

    #[test]
    fn keys_differ_by_run_connection_and_sequence() {
        let keys = [
            request_key(1, 0, 1),
            request_key(1, 0, 2),
            request_key(1, 1, 1),
            request_key(2, 0, 1),
            request_key(1, 11, 1),
            request_key(1, 1, 11),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn forged_secrets_are_wrong_by_one_character_and_well_formed() {
        assert_eq!(forge_secret("abc"), "bbc");
        assert_eq!(forge_secret("zeta"), "aeta");
        assert_eq!(forge_secret("Zeta"), "Aeta");
        assert_eq!(forge_secret("9lives"), "0lives");
        assert_eq!(forge_secret("-_x"), "-_y");
        assert_eq!(forge_secret("whsec_abc="), "whsec_bbc=");
        assert_eq!(forge_secret("---"), "----forged");
        assert_eq!(forge_secret("ümlaut"), "ünlaut");
    }

    #[test]
    fn forges_only_the_named_source() {
        let text = r#"
[server]
public_url = "https://hooks.example.com"

[[sources]]
name = "a"
provider = "meta"
path = "/a"
secrets = ["secret-one", "tecret-one"]

[[sources]]
name = "b"
provider = "mews"
path = "/b"
url_token = "token-0123456789abcdef"
"#;
        let forged: toml::Table =
            toml::from_str(&forged_config_text(text, "a").expect("forged")).expect("TOML");
        let sources = forged["sources"].as_array().expect("sources");
        // `secret-one` would become `tecret-one`, a real one: it moves on to `uecret-one`.
        assert_eq!(
            sources[0]["secrets"],
            toml::Value::Array(vec!["uecret-one".into(), "uecret-one".into()])
        );
        assert_eq!(
            sources[1]["url_token"].as_str(),
            Some("token-0123456789abcdef")
        );
        let forged: toml::Table =
            toml::from_str(&forged_config_text(text, "b").expect("forged")).expect("TOML");
        let sources = forged["sources"].as_array().expect("sources");
        assert_eq!(
            sources[1]["url_token"].as_str(),
            Some("uoken-0123456789abcdef")
        );
        assert!(forged_config_text(text, "c").is_err());
    }

    #[test]
    fn forges_secrets_named_by_environment_variables() {
        let config = |secret: &str| {
            format!(
                "[[sources]]\nname = \"a\"\nprovider = \"meta\"\npath = \"/a\"\nsecrets = [\"{secret}\"]\n"
            )
        };
        let forged_secret = |text: &str| {
            let forged: toml::Table =
                toml::from_str(&forged_config_text(text, "a").expect("forged")).expect("TOML");
            forged["sources"][0]["secrets"][0]
                .as_str()
                .expect("secret")
                .to_owned()
        };
        // A variable that is set: its value is what gets changed.
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(forged_secret(&config("${PATH}")), forge_secret(&path));
        }
        // One that is not set is kept as written, and still changed.
        let unset = "${PORTER_LOAD_TEST_UNSET_VARIABLE}";
        assert_eq!(
            forged_secret(&config(unset)),
            "${QORTER_LOAD_TEST_UNSET_VARIABLE}"
        );
    }

    #[test]
    fn reads_the_event_count_of_porters_answer() {
        assert_eq!(
            events_in_answer(br#"{"status":"accepted","events":7}"#),
            Some(7)
        );
        assert_eq!(events_in_answer(b"<Response></Response>"), None);
        assert_eq!(events_in_answer(br#"{"success":true}"#), None);
    }

    #[test]
    fn counts_only_new_events_of_genuine_requests() {
        let request = Outgoing {
            target: "/x".into(),
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: Bytes::new(),
            keys: vec!["k".into()],
            events_from_answer: true,
            forged: false,
        };
        let answer = |status, duplicate, events| Answer {
            status,
            duplicate,
            events,
        };
        assert_eq!(request.acknowledged(&answer(200, false, Some(7))), 7);
        assert_eq!(request.acknowledged(&answer(200, false, None)), 1);
        assert_eq!(request.acknowledged(&answer(200, true, Some(7))), 0);
        assert_eq!(request.acknowledged(&answer(401, false, None)), 0);
        let forged = Outgoing {
            forged: true,
            ..request.clone()
        };
        assert_eq!(forged.acknowledged(&answer(200, false, Some(1))), 0);
        let legacy = Outgoing {
            keys: vec!["a".into(), "b".into()],
            events_from_answer: false,
            ..request
        };
        assert_eq!(legacy.acknowledged(&answer(200, false, None)), 2);
    }
}
