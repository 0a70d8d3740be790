use super::*;
use crate::vocab::{RedisTarget, ReplicaWait};

fn env(name: &str) -> Option<String> {
    match name {
        "META_APP_SECRET" => Some("meta-secret".into()),
        "TWILIO_AUTH_TOKEN" => Some("twilio-token".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, ConfigOrigin::File("test.toml".into()), &env)
}

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("should be refused")
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

const GOOD: &str = r#"
[server]
listen = "0.0.0.0:9000"
public_url = "https://hooks.example.com/"
max_body_bytes = 1_000_000
request_timeout = "5s"

[store]
kind = "memory"
dedupe_ttl = "1h"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["${META_APP_SECRET}", "older"]
verify_token = "tok"
dedupe_ttl = "7d"
allow_ips = ["10.0.0.0/8", "127.0.0.1"]

[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["${TWILIO_AUTH_TOKEN}"]
"#;

#[test]
fn a_good_configuration_is_read_with_defaults_filled_in() {
    let config = parse(GOOD).expect("valid");
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.server.public_url.as_deref(),
        Some("https://hooks.example.com")
    );
    assert_eq!(config.server.max_body_bytes, 1_000_000);
    assert_eq!(config.server.request_timeout, Duration::from_secs(5));
    assert_eq!(config.store.dedupe_ttl, Duration::from_secs(3600));
    assert_eq!(config.store.stream, "porter:events");
    let whatsapp = config.source("whatsapp").expect("whatsapp");
    assert_eq!(whatsapp.dedupe_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(whatsapp.allow_ips.len(), 2);
    let sms = config.source("sms").expect("sms");
    assert_eq!(
        sms.dedupe_ttl,
        Duration::from_secs(3600),
        "inherits store.dedupe_ttl"
    );
    assert_eq!(sms.source.provider(), Provider::Twilio);
}

#[test]
fn mews_sources_default_to_a_short_dedupe_window() {
    let mews = |extra: &str| {
        let text = format!(
            "{GOOD}\n[[sources]]\nname = \"mews\"\nprovider = \"mews\"\npath = \"/webhooks/pms/mews\"\nurl_token = \"mews-token-0123456789\"\n{extra}"
        );
        parse(&text)
            .expect("valid")
            .source("mews")
            .expect("mews")
            .dedupe_ttl
    };
    // Identical notifications of two real changes must not be merged for a day.
    assert_eq!(mews(""), Duration::from_secs(15 * 60));
    assert_eq!(mews("dedupe_ttl = \"2h\""), Duration::from_secs(2 * 3600));
}

#[test]
fn the_embedded_default_is_valid() {
    let config = Config::parse(EMBEDDED_DEFAULT, ConfigOrigin::EmbeddedDefault, &|_| None)
        .expect("the embedded default must always load");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    let providers: Vec<_> = config.sources.iter().map(|s| s.source.provider()).collect();
    assert_eq!(
        providers,
        Provider::ALL,
        "every built-in provider is enabled"
    );
}

#[test]
fn unknown_keys_are_named() {
    let text = GOOD.replace("verify_token = \"tok\"", "verfy_token = \"tok\"");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("sources[0] (whatsapp).verfy_token: not used by provider `meta`"),
        "{found:?}"
    );

    let found = problems(&format!("{GOOD}\n[extra]\na = 1\n"));
    assert!(found[0].starts_with("extra: unknown key"), "{found:?}");

    let found = problems(&GOOD.replace("request_timeout", "request_timout"));
    assert!(
        found[0].starts_with("server: unknown field `request_timout`"),
        "{found:?}"
    );
}

#[test]
fn a_missing_environment_variable_is_named_by_key() {
    let found = problems(&GOOD.replace("${TWILIO_AUTH_TOKEN}", "${NOT_SET}"));
    assert_eq!(
        found,
        ["sources[1] (sms).secrets[0]: environment variable `NOT_SET` is not set"]
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let text = GOOD
        .replace("\"5s\"", "\"soon\"")
        .replace("\"0.0.0.0:9000\"", "\"localhost\"")
        .replace(
            "provider = \"twilio\"",
            "provider = \"twilio\"\nverify_token = \"x\"",
        )
        .replace("\"7d\"", "\"0s\"");
    let found = problems(&text);
    let keys: Vec<_> = found
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "server.listen",
            "server.request_timeout",
            "sources[0] (whatsapp).dedupe_ttl",
            "sources[1] (sms).verify_token"
        ],
        "{found:#?}"
    );
}

#[test]
fn keys_a_provider_does_not_read_are_refused() {
    let found = problems(&GOOD.replace("verify_token = \"tok\"", "url_token = \"t\""));
    assert_eq!(
        found,
        [
            "sources[0] (whatsapp).url_token: not used by provider `meta` (it reads `secrets` or `verify_token`)"
        ]
    );
}

#[test]
fn provider_settings_are_checked_by_the_provider() {
    let found = problems(&GOOD.replace("public_url = \"https://hooks.example.com/\"\n", ""));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("sources[1] (sms).public_url: required"),
        "{found:?}"
    );

    let found = problems(&GOOD.replace("secrets = [\"${TWILIO_AUTH_TOKEN}\"]", "secrets = []"));
    assert_eq!(
        found,
        ["sources[1] (sms).secrets: at least one secret is required"]
    );

    let found = problems(&GOOD.replace("provider = \"meta\"", "provider = \"mewz\""));
    assert!(
        found[0].starts_with("sources[0] (whatsapp).provider: unknown provider `mewz`"),
        "{found:?}"
    );
}

#[test]
fn names_and_routes_may_not_clash() {
    let found = problems(&GOOD.replace("name = \"sms\"", "name = \"whatsapp\""));
    assert_eq!(
        found,
        ["sources[1] (whatsapp).name: `whatsapp` is already the name of sources[0]"]
    );

    let clash = format!(
        "{GOOD}\n[[sources]]\nname = \"status\"\nprovider = \"meta\"\npath = \"/webhooks/sms/status\"\nsecrets = [\"s\"]\n"
    );
    let found = problems(&clash);
    assert_eq!(
        found,
        ["sources[2] (status).path: route `/webhooks/sms/status` is already claimed by sms"]
    );

    let found = problems(&GOOD.replace("path = \"/webhooks/whatsapp\"", "path = \"/healthz\""));
    assert_eq!(
        found,
        ["sources[0] (whatsapp).path: route `/healthz` is already claimed by porter itself"]
    );
}

#[test]
fn paths_must_be_plain() {
    for bad in [
        "webhooks", "/", "/a/", "/a//b", "/a/../b", "/a%2Fb", "/a?b", "/a b",
    ] {
        assert!(check_path(bad).is_err(), "{bad}");
    }
    for good in ["/a", "/webhooks/whatsapp", "/v1.2/hook-in_x~"] {
        assert!(check_path(good).is_ok(), "{good}");
    }
}

#[test]
fn destinations_are_read_and_checked() {
    let with = |text: &str| format!("{GOOD}\n{text}");
    let good = with(
        r#"
[[destinations]]
name = "housekeeping"
kind = "http"
url = "https://housekeeping.internal/events"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
events = ["reservation.checked_out", "room.*"]
sources = ["whatsapp"]
retry = ["1s", "1m"]
concurrency = 4
"#,
    );
    let config = parse(&good).expect("valid");
    let destination = &config.destinations[0];
    assert_eq!(destination.name, "housekeeping");
    assert!(
        destination
            .filter
            .matches("room.status_changed", "whatsapp")
    );
    assert!(matches!(destination.kind, DestinationKind::Http(_)));
    let delivery = &destination.delivery;
    assert_eq!(
        delivery.retry,
        [Duration::from_secs(1), Duration::from_secs(60)]
    );
    assert_eq!(delivery.concurrency, 4);
    assert_eq!(delivery.timeout, Duration::from_secs(10));
    assert_eq!(delivery.rate, None);

    let bad = with(
        r#"
[[destinations]]
name = "x"
kind = "http"
url = "ftp://nope"
secret = "not-whsec"
events = ["rooms.*"]
sources = ["nobody"]
"#,
    );
    let found = problems(&bad);
    let keys: Vec<_> = found
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "destinations[0] (x).events[0]",
            "destinations[0] (x).sources[0]",
            "destinations[0] (x).url",
            "destinations[0] (x).secret"
        ],
        "{found:#?}"
    );
    let stream_on_memory = problems(&with(
        "[[destinations]]\nname = \"crm\"\nkind = \"redis_stream\"\n",
    ));
    assert!(
        stream_on_memory[0].starts_with("destinations[0] (crm).kind: redis_stream needs"),
        "{stream_on_memory:?}"
    );
    let unknown_kind = problems(&with(
        "[[destinations]]\nname = \"crm\"\nkind = \"kafka\"\n",
    ));
    assert!(
        unknown_kind[0].starts_with("destinations[0] (crm).kind: unknown kind"),
        "{unknown_kind:?}"
    );
}

#[test]
fn broker_destinations_are_read_with_their_defaults() {
    let with = |extra: &str| format!("{GOOD}\n{extra}");
    let config = parse(&with(
        r#"
[[destinations]]
name = "pms-sync"
kind = "nats"
url = "nats://127.0.0.1:4222"
create_stream = true
rate = 50

[[destinations]]
name = "crm"
kind = "amqp"
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
rate = 0.5
"#,
    ))
    .expect("valid");
    let [nats, amqp] = config.destinations.as_slice() else {
        panic!("two destinations")
    };
    let DestinationKind::Nats(n) = &nats.kind else {
        panic!("nats")
    };
    assert_eq!(n.subject.as_str(), "porter.{source}.{type}");
    assert_eq!(
        n.subject.render("whatsapp", "message.received"),
        "porter.whatsapp.message.received"
    );
    assert_eq!(n.create_stream.as_deref(), Some("porter.>"));
    assert!(!n.binary);
    assert_eq!(nats.delivery.rate, Some(50.0));
    assert_eq!(nats.delivery.retry, DEFAULT_RETRY);
    let DestinationKind::Amqp(a) = &amqp.kind else {
        panic!("amqp")
    };
    assert_eq!(a.exchange, "porter");
    assert_eq!(
        a.routing_key.render("mews", "room.status_changed"),
        "room.status_changed"
    );
    assert!(a.declare);
    assert_eq!(amqp.delivery.rate, Some(0.5));

    let found = problems(&with(
        r#"
[[destinations]]
name = "n"
kind = "nats"
url = "http://127.0.0.1:4222"
subject = "{type}.> "
mode = "both"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
exchange = "x"
rate = 0

[[destinations]]
name = "a"
kind = "amqp"
routing_key = "a b"
exchange = ""

[[destinations]]
name = "s"
kind = "nats"
url = "nats://127.0.0.1"
subject = "{source}.{type}"
create_stream = true

[[destinations]]
name = "r"
kind = "redis_stream"
rate = 5
"#,
    ));
    let keys: Vec<_> = found
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "destinations[0] (n).secret",
            "destinations[0] (n).exchange",
            "destinations[0] (n).url",
            "destinations[0] (n).subject",
            "destinations[0] (n).mode",
            "destinations[0] (n).rate",
            "destinations[1] (a).url",
            "destinations[1] (a).exchange",
            "destinations[1] (a).routing_key",
            "destinations[2] (s).create_stream",
            "destinations[3] (r).rate",
        ],
        "{found:#?}"
    );
}

#[test]
fn pii_settings_are_checked() {
    let with = |extra: &str| format!("{GOOD}\n{extra}");
    let destination = |pii: &str| {
        format!(
            "[[destinations]]\nname = \"d\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\npii = \"{pii}\"\n"
        )
    };
    assert_eq!(
        problems(&with(&destination("hash"))),
        [
            "destinations[0] (d).pii: \"hash\" needs [privacy] key (the secret personal values are hashed under)"
        ]
    );
    assert_eq!(
        problems(&with(&destination("scramble"))),
        ["destinations[0] (d).pii: unknown `scramble` (expected `keep`, `hash` or `drop`)"]
    );
    let short = problems(&with(&format!(
        "[privacy]\nkey = \"short-secret\"\n{}",
        destination("drop")
    )));
    assert_eq!(
        short,
        ["privacy.key: must be at least 32 bytes (a random secret, from the environment)"]
    );
    assert!(
        !short[0].contains("short-secret"),
        "the key is never echoed"
    );
    let config = parse(&with(&format!(
        "[privacy]\nkey = \"0123456789abcdef0123456789abcdef\"\n{}",
        destination("hash")
    )))
    .expect("valid");
    assert_eq!(config.destinations[0].delivery.pii, crate::vocab::Pii::Hash);
    assert!(!format!("{:?}", config.privacy).contains("0123456789abcdef"));
    assert_eq!(
        problems(&with(
            "[[destinations]]\nname = \"s\"\nkind = \"redis_stream\"\npii = \"drop\"\n"
        ))[0],
        "destinations[0] (s).pii: not used by kind = \"redis_stream\" (the service reads the stream itself)"
    );
}

#[test]
fn invalid_toml_and_empty_configs_are_refused() {
    assert!(problems("[server")[0].starts_with("invalid TOML"));
    assert_eq!(
        problems(""),
        ["sources: no sources are configured; porter would accept nothing"]
    );
    let found = problems(&GOOD.replace("\"127.0.0.1\"", "\"not-an-ip\""));
    assert_eq!(
        found,
        ["sources[0] (whatsapp).allow_ips[1]: `not-an-ip` is not an IP address or CIDR block"]
    );
}

#[test]
fn a_redis_store_is_read_with_its_defaults() {
    let config = parse(&GOOD.replace(
        "kind = \"memory\"",
        "kind = \"redis\"\nurl = \"redis://:pw@127.0.0.1:6379/0\"",
    ))
    .expect("valid");
    assert_eq!(
        config.store.kind,
        StoreKind::Redis {
            target: RedisTarget::Single("redis://:pw@127.0.0.1:6379/0".into()),
            key_prefix: "porter".into(),
            max_len: None,
            shards: 16,
            transactions: false,
            wait_replicas: None,
        }
    );
    let cluster = parse(&GOOD.replace(
        "kind = \"memory\"",
        "kind = \"redis\"\nurls = [\"redis://10.0.0.1:7000\", \"rediss://10.0.0.2:7000\"]\nshards = 4\nmax_len = 1000000\nkey_prefix = \"hotel-a\"",
    ))
    .expect("valid");
    assert!(matches!(
        cluster.store.kind,
        StoreKind::Redis { target: RedisTarget::Cluster(ref urls), shards: 4, max_len: Some(1_000_000), .. } if urls.len() == 2
    ));
}

#[test]
fn the_redis_enqueue_is_the_script_unless_a_single_redis_asks_for_transactions() {
    let kind = |store: &str| parse(&GOOD.replace("kind = \"memory\"", store)).map(|c| c.store.kind);
    assert!(matches!(
        kind("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\""),
        Ok(StoreKind::Redis {
            transactions: false,
            ..
        })
    ));
    assert!(matches!(
        kind("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nenqueue = \"transaction\""),
        Ok(StoreKind::Redis {
            transactions: true,
            ..
        })
    ));
    let with = |store: &str| problems(&GOOD.replace("kind = \"memory\"", store));
    assert_eq!(
        with("kind = \"redis\"\nurls = [\"redis://10.0.0.1:7000\"]\nenqueue = \"transaction\""),
        [
            "store.enqueue: `transaction` needs a single Redis (`url`): Redis Cluster uses the script"
        ]
    );
    assert_eq!(
        with("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nenqueue = \"lua\""),
        ["store.enqueue: `lua`: expected `script` or `transaction`"]
    );
    assert_eq!(
        with("kind = \"local\"\nenqueue = \"transaction\""),
        ["store.enqueue: only used with kind = \"redis\""]
    );
}

#[test]
fn a_bad_server_public_url_is_reported_once_under_its_own_key() {
    let with_url = |url: &str| {
        problems(&format!(
            "[server]\npublic_url = \"{url}\"\n\n[[sources]]\nname = \"sms\"\nprovider = \"twilio\"\npath = \"/webhooks/sms\"\nsecrets = [\"x\"]\n"
        ))
    };
    assert_eq!(
        with_url("hooks.example.com"),
        ["server.public_url: must be an http:// or https:// URL with a host and no query"]
    );
    // A source's own wrong public_url is still its own problem.
    assert_eq!(
        problems(
            "[[sources]]\nname = \"sms\"\nprovider = \"twilio\"\npath = \"/webhooks/sms\"\nsecrets = [\"x\"]\npublic_url = \"hooks.example.com\"\n"
        )
        .len(),
        1
    );
}

#[test]
fn wait_replicas_sets_a_wait_and_refuses_what_it_cannot_follow() {
    let kind = |store: &str| parse(&GOOD.replace("kind = \"memory\"", store)).map(|c| c.store.kind);
    assert!(matches!(
        kind("kind = \"redis\"\nurls = [\"redis://10.0.0.1:7000\"]\nwait_replicas = 1"),
        Ok(StoreKind::Redis {
            wait_replicas: Some(ReplicaWait { replicas: 1, timeout }),
            ..
        }) if timeout == Duration::from_secs(1)
    ));
    assert!(matches!(
        kind("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nwait_replicas = 2\nwait_timeout = \"250ms\""),
        Ok(StoreKind::Redis {
            wait_replicas: Some(ReplicaWait { replicas: 2, timeout }),
            ..
        }) if timeout == Duration::from_millis(250)
    ));
    let with = |store: &str| problems(&GOOD.replace("kind = \"memory\"", store));
    assert_eq!(
        with("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nwait_timeout = \"1s\""),
        ["store.wait_timeout: only used with wait_replicas"]
    );
    assert_eq!(
        with("kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nenqueue = \"transaction\"\nwait_replicas = 1").len(),
        1
    );
    assert_eq!(
        with("kind = \"local\"\nwait_replicas = 1"),
        ["store.wait_replicas: only used with kind = \"redis\""]
    );
}

#[test]
fn redis_settings_are_checked_without_echoing_passwords() {
    let with = |store: &str| problems(&GOOD.replace("kind = \"memory\"", store));
    assert_eq!(
        with("kind = \"redis\""),
        ["store.url: required with kind = \"redis\" (or `urls` for Redis Cluster)"]
    );
    let bad = with("kind = \"redis\"\nurl = \"http://user:s3cret@host\"");
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].starts_with("store.url: must be a redis://"),
        "{bad:?}"
    );
    assert!(!bad[0].contains("s3cret"));
    let both = with("kind = \"redis\"\nurl = \"redis://a\"\nurls = [\"redis://b\"]");
    assert!(both[0].starts_with("store.urls: set either"), "{both:?}");
    let shards = with("kind = \"redis\"\nurl = \"redis://a\"\nshards = 4");
    assert_eq!(
        shards,
        ["store.shards: only used with `urls` (Redis Cluster)"]
    );
    let memory_keys = with("kind = \"redis\"\nurl = \"redis://a\"\nprint_events = true");
    assert_eq!(
        memory_keys,
        ["store.print_events: only used with kind = \"memory\" or \"local\""]
    );
    let tags = with("kind = \"redis\"\nurl = \"redis://a\"\nstream = \"ev{x}\"");
    assert!(tags[0].starts_with("store.stream:"), "{tags:?}");
    let redis_keys_on_memory =
        problems(&GOOD.replace("dedupe_ttl = \"1h\"", "dedupe_ttl = \"1h\"\nmax_len = 5"));
    assert_eq!(
        redis_keys_on_memory,
        ["store.max_len: only used with kind = \"redis\""]
    );
}

// ---- no error message carries a secret ----

/// A value no message may contain, handed to the config through `${LEAK}`.
const LEAKED: &str = "SUPERSECRET-value-9f8e7d";

fn leak_problems(text: &str) -> Vec<String> {
    let env = |name: &str| (name == "LEAK").then(|| LEAKED.to_owned());
    let errors = Config::parse(text, ConfigOrigin::File("t.toml".into()), &env)
        .expect_err("should be refused")
        .errors;
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(!messages.is_empty());
    for message in &messages {
        assert!(!message.contains(LEAKED), "{message}");
        assert!(!message.contains("pa55word"), "{message}");
        assert!(!message.contains("hunter2-literal"), "{message}");
    }
    messages
}

const SOURCE: &str = r#"
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
"#;

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    // The review's repro: a string where the list of secrets belongs.
    let messages = leak_problems(&format!("{SOURCE}secrets = \"${{LEAK}}\"\n"));
    assert!(
        messages.iter().any(|m| m.contains("invalid type: string")),
        "{messages:?}"
    );
    leak_problems(&format!(
        "{SOURCE}secrets = [\"x\"]\nverify_token = [\"${{LEAK}}\"]\n"
    ));
    leak_problems(&format!(
        "{SOURCE}secrets = [\"x\"]\nhmac = \"${{LEAK}}\"\n"
    ));
}

#[test]
fn secrets_in_other_keys_and_bad_values_are_not_echoed() {
    // An environment variable holding a secret, used where a duration or an address belongs.
    leak_problems(&format!(
        "{SOURCE}secrets = [\"x\"]\ntolerance = \"${{LEAK}}\"\n"
    ));
    leak_problems(&format!(
        "[server]\nlisten = \"${{LEAK}}\"\n{SOURCE}secrets = [\"x\"]\n"
    ));
    // A URL token of the wrong type, and a destination secret that is not `whsec_`.
    leak_problems(
        "[[sources]]\nname = \"rk\"\nprovider = \"reservekit\"\npath = \"/rk\"\nurl_token = [\"${LEAK}\"]\n",
    );
    leak_problems(&format!(
        "{SOURCE}secrets = [\"x\"]\n[[destinations]]\nname = \"d\"\nkind = \"http\"\nurl = \"https://d.example.com\"\nsecret = \"${{LEAK}}\"\n"
    ));
    // A literal secret in a line the TOML parser cannot read.
    leak_problems(&format!("{SOURCE}secrets = [\"hunter2-literal\"\n"));
}

#[test]
fn url_credentials_are_not_echoed() {
    for server in [
        // Unquoted: the TOML parser's own message used to quote the line.
        "public_url = https://user:pa55word@hooks.example.com",
        "public_url = \"ftp://user:pa55word@hooks.example.com\"",
        "public_url = \"https://user:pa55word@hooks.example.com/?q=1\"",
    ] {
        leak_problems(&format!(
            "[server]\n{server}\n[[sources]]\nname = \"sms\"\nprovider = \"twilio\"\npath = \"/sms\"\nsecrets = [\"x\"]\n"
        ));
    }
    // A Twilio source's own public_url, checked by the provider.
    leak_problems(
        "[[sources]]\nname = \"sms\"\nprovider = \"twilio\"\npath = \"/sms\"\nsecrets = [\"x\"]\npublic_url = \"gopher://user:pa55word@h\"\n",
    );
    leak_problems(&format!(
        "[store]\nkind = \"redis\"\nurl = \"redis+bad://:pa55word@127.0.0.1\"\n{SOURCE}secrets = [\"x\"]\n"
    ));
    leak_problems(&format!(
        "{SOURCE}secrets = [\"x\"]\n[[destinations]]\nname = \"d\"\nkind = \"http\"\nurl = \"ftp://u:pa55word@d\"\nsecret = \"whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==\"\n"
    ));
}

#[test]
fn connection_limits_are_read_and_checked() {
    let config = parse(GOOD).expect("valid");
    assert_eq!(config.server.connections.max_connections, 10_000);
    assert_eq!(config.server.connections.max_connections_per_peer, 1_000);
    assert_eq!(
        config.server.connections.idle_timeout,
        Duration::from_secs(60)
    );
    let text = GOOD.replace(
        "request_timeout = \"5s\"",
        "request_timeout = \"5s\"\nidle_timeout = \"5s\"\nmax_connections = 0\nmax_connections_per_peer = 0",
    );
    let problems = problems(&text);
    for key in [
        "server.idle_timeout",
        "server.max_connections",
        "server.max_connections_per_peer",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(key)), "{problems:?}");
    }
}

#[test]
fn bounds_before_authentication_have_defaults_and_are_checked() {
    let config = parse(GOOD).expect("valid");
    let server = &config.server;
    assert_eq!(server.connections.header_timeout, Duration::from_secs(10));
    assert_eq!(server.connections.h2_max_streams, 64);
    assert_eq!(server.max_buffered_bytes, 256 * 1024 * 1024);
    assert_eq!(server.max_buffered_bytes_per_peer, 64 * 1024 * 1024);
    let text = GOOD.replace(
        "request_timeout = \"5s\"",
        "request_timeout = \"5s\"\nmax_buffered_bytes = 500000\nh2_max_streams = 0\nheader_timeout = \"2m\"",
    );
    let problems = problems(&text);
    for key in [
        "server.max_buffered_bytes",
        "server.h2_max_streams",
        "server.header_timeout",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(key)), "{problems:?}");
    }
    let text = GOOD.replace(
        "request_timeout = \"5s\"",
        "request_timeout = \"5s\"\nmax_buffered_bytes = 8388608\nmax_buffered_bytes_per_peer = 16777216",
    );
    let problems = self::problems(&text);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("server.max_buffered_bytes_per_peer")),
        "{problems:?}"
    );
}

#[test]
fn telemetry_is_off_unless_an_endpoint_is_set() {
    assert_eq!(parse(GOOD).expect("valid").telemetry, None);
    let config = parse(&format!(
        "{GOOD}\n[telemetry]\nservice_name = \"porter-eu\"\n"
    ))
    .expect("valid");
    assert_eq!(config.telemetry, None, "a name alone exports nothing");
}

#[test]
fn telemetry_is_read_with_its_defaults() {
    let config = parse(&format!(
        "{GOOD}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n"
    ))
    .expect("valid");
    let telemetry = config.telemetry.expect("on");
    assert_eq!(telemetry.otlp_endpoint, "http://127.0.0.1:4318");
    assert_eq!(
        telemetry.service_name,
        super::telemetry::DEFAULT_SERVICE_NAME
    );
    assert_eq!(telemetry.traces_url(), "http://127.0.0.1:4318/v1/traces");
    assert_eq!(telemetry.sample_ratio, 1.0, "every trace unless told");

    let config = parse(&format!(
        "{GOOD}\n[telemetry]\notlp_endpoint = \"https://otel.example.com/otlp\"\nservice_name = \"porter-eu\"\n"
    ))
    .expect("valid");
    let telemetry = config.telemetry.expect("on");
    assert_eq!(
        telemetry.traces_url(),
        "https://otel.example.com/otlp/v1/traces"
    );
    assert_eq!(telemetry.service_name, "porter-eu");

    let config = parse(&format!(
        "{GOOD}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.1\n"
    ))
    .expect("valid");
    assert_eq!(config.telemetry.expect("on").sample_ratio, 0.1);
}

#[test]
fn telemetry_settings_are_checked_by_key_without_echoing_them() {
    for endpoint in [
        "127.0.0.1:4318",
        "grpc://127.0.0.1:4317",
        "http://",
        "not a url",
        "http://127.0.0.1:4318/?token=s3cr3t-value",
        "http://127.0.0.1:4318/#s3cr3t-value",
        "https://user:s3cr3t-value@otel.example.com",
        "http://127.0.0.1:4318/v1/traces",
    ] {
        let found = problems(&format!(
            "{GOOD}\n[telemetry]\notlp_endpoint = \"{endpoint}\"\n"
        ));
        assert_eq!(found.len(), 1, "{endpoint}: {found:?}");
        assert!(
            found[0].starts_with("telemetry.otlp_endpoint: "),
            "{found:?}"
        );
        assert!(!found[0].contains("s3cr3t"), "{found:?}");
    }
    for name in ["", "  ", "porter\\nx"] {
        let found = problems(&format!(
            "{GOOD}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"{name}\"\n"
        ));
        assert_eq!(found.len(), 1, "{name:?}: {found:?}");
        assert!(
            found[0].starts_with("telemetry.service_name: "),
            "{found:?}"
        );
    }
    for ratio in ["-0.1", "1.5", "nan", "inf"] {
        let found = problems(&format!(
            "{GOOD}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = {ratio}\n"
        ));
        assert_eq!(found.len(), 1, "{ratio}: {found:?}");
        assert!(
            found[0].starts_with("telemetry.sample_ratio: must be a share from 0.0 to 1.0"),
            "{found:?}"
        );
    }
    let found = problems(&format!(
        "{GOOD}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nheaders = \"x\"\n"
    ));
    assert!(
        found[0].starts_with("telemetry: unknown field `headers`"),
        "{found:?}"
    );
    let found = problems(&format!("telemetry = \"http://127.0.0.1:4318\"\n{GOOD}"));
    assert!(found[0].starts_with("telemetry: "), "{found:?}");
}

#[test]
fn porters_own_events_cannot_be_claimed_by_a_source() {
    let named_porter = problems(
        "[[sources]]\nname = \"porter\"\nprovider = \"meta\"\npath = \"/w\"\nsecrets = [\"s3cret\"]\n",
    );
    assert_eq!(
        named_porter,
        [
            "sources[0] (porter).name: `porter` is the source name of porter's own events (`erasure.requested`)"
        ]
    );
    let mapped = problems(
        "[[sources]]\nname = \"pms\"\nprovider = \"standard_webhooks\"\npath = \"/p\"\nsecrets = [\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"]\nevent_types = { \"guest.forget\" = \"erasure.requested\" }\n",
    );
    assert!(
        mapped
            .iter()
            .any(|p| p.contains("`erasure.requested` is porter's own event")),
        "{mapped:?}"
    );
}

#[test]
fn a_sources_share_is_read_and_checked() {
    let config = parse(&GOOD.replace(
        "dedupe_ttl = \"7d\"",
        "dedupe_ttl = \"7d\"\nmax_in_flight = 64\nrate = 200.5",
    ))
    .expect("valid");
    let whatsapp = config.source("whatsapp").expect("whatsapp");
    assert_eq!(whatsapp.share.max_in_flight, Some(64));
    assert_eq!(whatsapp.share.rate, Some(200.5));
    assert_eq!(
        config.source("sms").expect("sms").share,
        crate::admission::Share::default(),
        "no share: unbounded"
    );
    assert_eq!(
        problems(&GOOD.replace(
            "dedupe_ttl = \"7d\"",
            "dedupe_ttl = \"7d\"\nmax_in_flight = 0\nrate = -1"
        )),
        [
            "sources[0] (whatsapp).max_in_flight: must be at least 1 (leave it out for no bound)",
            "sources[0] (whatsapp).rate: must be between 0.001 and 1000000 requests per second",
        ]
    );
}

/// `GOOD` on Redis, plus an HTTP destination, a redis_stream one and the given alerting tables.
fn with_alerts(tables: &str) -> String {
    let good = GOOD.replace(
        "kind = \"memory\"",
        "kind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"",
    );
    format!(
        "{good}\n[[destinations]]\nname = \"crm\"\nkind = \"http\"\nurl = \"https://crm.internal/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\n[[destinations]]\nname = \"lake\"\nkind = \"redis_stream\"\n\n{tables}"
    )
}

const NOTIFY: &str = r#"
[[notify]]
name = "ops"
kind = "webhook"
url = "https://ops.example/porter-alerts"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[notify]]
name = "chat"
kind = "slack"
url = "https://hooks.slack.example/services/T0/B0/sekr1tpath"

[[notify]]
name = "mail"
kind = "email"
smtp = "127.0.0.1:25"
from = "porter <porter@example.com>"
to = ["ops@example.com", "oncall@example.com"]
"#;

#[test]
fn alert_rules_and_notify_targets_are_read_with_their_defaults() {
    let text = with_alerts(&format!(
        r#"{NOTIFY}
[[alerts]]
name = "whatsapp-refusals"
when = "refusal_share"
source = "whatsapp"
above = 0.5
window = "1m"
for = "0s"
repeat = "1h"
notify = ["ops", "chat", "mail"]

[[alerts]]
name = "sms-quiet"
when = "quiet"
source = "sms"

[[alerts]]
name = "crm-failing"
when = "destination_failing"
destination = "crm"
dead_letters_above = 0
repeat = "0s"

[[alerts]]
name = "lake-backlog"
when = "backlog"
destination = "lake"
above = 10000
growing = true
for = "10m"

[[alerts]]
name = "store"
when = "store_unready"
for = "30s"
"#
    ));
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.notify.len(), 3);
    assert_eq!(config.notify[2].target.kind(), "email");
    let rules: Vec<_> = config.alerts.iter().map(|r| r.condition.kind()).collect();
    assert_eq!(
        rules,
        [
            "refusal_share",
            "quiet",
            "destination_failing",
            "backlog",
            "store_unready"
        ]
    );
    let refusals = &config.alerts[0];
    assert_eq!(refusals.hold, Duration::ZERO);
    assert_eq!(refusals.repeat, Some(Duration::from_secs(3600)));
    assert_eq!(
        refusals.condition,
        Condition::RefusalShare {
            source: "whatsapp".into(),
            above: Some(0.5),
            rate_above: None,
            window: Duration::from_secs(60),
            min_requests: 10,
        }
    );
    assert_eq!(
        config.alerts[1].condition,
        Condition::Quiet {
            source: "sms".into(),
            window: Duration::from_secs(15 * 60),
            min_requests: 1,
        },
        "quiet's defaults"
    );
    assert_eq!(config.alerts[2].repeat, None, "repeat = \"0s\": once");
    assert_eq!(config.alerts[3].hold, Duration::from_secs(600));
}

#[test]
fn alert_keys_are_checked_by_key_and_by_rule_kind() {
    let text = with_alerts(&format!(
        r#"{NOTIFY}
[[alerts]]
name = "a"
when = "refusal_share"
source = "nope"
destination = "crm"
above = 1.5
notify = ["ops", "pager"]

[[alerts]]
name = "b"
when = "destination_failing"
destination = "lake"
above = 0.2

[[alerts]]
name = "c"
when = "backlog"
destination = "crm"

[[alerts]]
name = "d"
when = "quiet"
source = "sms"
window = "2h"
lag = "5m"

[[alerts]]
name = "e"
when = "ohip_stopped"
source = "whatsapp"

[[alerts]]
name = "f"
when = "sometimes"

[[alerts]]
name = "g"
when = "store_unready"
colour = "red"
"#
    ));
    let problems = problems(&text);
    for expected in [
        "alerts[0] (a).destination: not used by when = \"refusal_share\"",
        "alerts[0] (a).notify[1]: no [[notify]] target is named `pager`",
        "alerts[0] (a).source: no a source with a path is named `nope`",
        "alerts[0] (a).above: a share from 0 up to (not including) 1, like 0.5",
        "alerts[1] (b).destination: `lake` is a redis_stream destination",
        "alerts[2] (c).above: required: the number of events waiting (or `growing = true`)",
        "alerts[3] (d).lag: not used by when = \"quiet\"",
        "alerts[3] (d).window: must be from 10s to 50m",
        "alerts[4] (e).source: no an oracle_ohip_stream source is named `whatsapp`",
        "alerts[5] (f).when: unknown `sometimes`",
        "alerts[6] (g): unknown field `colour`",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
}

#[test]
fn notify_targets_need_their_own_keys_and_never_echo_secrets() {
    let text = with_alerts(
        r#"
[[notify]]
name = "ops"
kind = "webhook"
url = "https://ops.example/hook"
secret = "not-a-whsec-secret-value"
smtp = "relay:25"

[[notify]]
name = "chat"
kind = "slack"

[[notify]]
name = "mail"
kind = "email"
smtp = "relay"
to = []

[[notify]]
name = "ops"
kind = "pager"
"#,
    );
    let problems = problems(&text);
    for expected in [
        "notify[0] (ops).smtp: not used by kind = \"webhook\"",
        "notify[0] (ops).secret: must be `whsec_`",
        "notify[1] (chat).url: required for kind = \"slack\"",
        "notify[2] (mail).smtp: `relay` is not a host:port",
        "notify[2] (mail).from: required for kind = \"email\"",
        "notify[2] (mail).to: required for kind = \"email\"",
        "notify[3] (ops).kind: unknown kind `pager`",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
    assert!(
        !problems.join("\n").contains("not-a-whsec-secret-value"),
        "{problems:#?}"
    );
}
