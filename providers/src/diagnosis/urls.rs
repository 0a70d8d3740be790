//! The URLs a sender may have signed instead of the one porter rebuilds from `public_url`, in
//! the order real misconfigurations produce them:
//!
//! 1. the scheme toggled (`http` ↔ `https`): a TLS-terminating proxy, or a `public_url`
//!    written with the wrong scheme;
//! 2. the `Host` header's host, with the configured scheme then the other one: `public_url`
//!    left at the server's default while the provider calls another name;
//! 3. the URL the proxy's `X-Forwarded-Proto` / `-Host` / `-Port` / `-Prefix` describe (the
//!    prefix goes before the path), when any is present;
//! 4. each of those, and the configured one, with the port toggled (the scheme's default
//!    port made explicit when implicit, any port removed when explicit);
//! 5. each of 1–3, and the configured one, with a trailing slash added to the path (or
//!    removed).
//!
//! URLs `verify` already tried are left out, and so are repeats: at most fifteen, each tried
//! with every configured secret. The headers are only ever a source of guesses: a URL is reported only once a configured
//! secret verifies the signature with it.

use http::HeaderMap;
use http::uri::{Authority, Uri};

use super::SignedUrl;

/// A URL the sender may have signed, without its query: as signed (with the configured user
/// info, which Twilio signs) and as shown to the operator (without it: it is a credential).
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) signed: String,
    pub(super) shown: String,
}

/// The candidates for `url`, in the order above.
pub(super) fn candidates(url: &SignedUrl<'_>) -> Vec<Candidate> {
    let Some(configured) = url.bases.first().and_then(|base| Base::parse(base)) else {
        return Vec::new();
    };
    let mut bases = vec![configured.clone(), configured.toggled_scheme()];
    if let Some((host, port)) = first(url.headers, "host").and_then(host_and_port) {
        let named = Base {
            host,
            port,
            ..configured.clone()
        };
        let toggled = named.toggled_scheme();
        bases.extend([named, toggled]);
    }
    bases.extend(forwarded(&configured, url.headers));

    let mut list = List {
        tried: url
            .bases
            .iter()
            .map(|base| format!("{base}{}", url.path))
            .collect(),
        candidates: Vec::new(),
    };
    for base in &bases[1..] {
        list.add(base, url.path);
    }
    for base in &bases {
        list.add(&base.toggled_port(), url.path);
    }
    let other_path = toggled_slash(url.path);
    for base in &bases {
        list.add(base, &other_path);
    }
    list.candidates
}

/// Candidates without repeats or URLs `verify` tried.
struct List {
    tried: Vec<String>,
    candidates: Vec<Candidate>,
}

impl List {
    fn add(&mut self, base: &Base, path: &str) {
        let signed = base.url(path, true);
        let known =
            self.tried.contains(&signed) || self.candidates.iter().any(|c| c.signed == signed);
        if !known {
            self.candidates.push(Candidate {
                shown: base.url(path, false),
                signed,
            });
        }
    }
}

/// Where a provider's requests go before the route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Base {
    https: bool,
    /// `user:pass@` as configured, or empty.
    userinfo: String,
    /// IPv6 in brackets.
    host: String,
    port: Option<u16>,
    /// The path before the route's, without a trailing slash.
    prefix: String,
}

impl Base {
    /// A base as `verify` uses it (`public_url` without a trailing slash).
    fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        let https = is_https(uri.scheme_str()?)?;
        let authority = uri.authority()?;
        let text = authority.as_str();
        Some(Self {
            https,
            userinfo: text.rfind('@').map_or("", |at| &text[..=at]).to_owned(),
            host: bracketed(authority.host()),
            port: authority.port_u16(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `scheme://[userinfo]host[:port]prefix path`.
    fn url(&self, path: &str, with_userinfo: bool) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let userinfo = if with_userinfo { &self.userinfo } else { "" };
        let port = self.port.map(|port| format!(":{port}")).unwrap_or_default();
        format!(
            "{scheme}://{userinfo}{}{port}{}{path}",
            self.host, self.prefix
        )
    }

    /// The other scheme; an explicit default port becomes the other scheme's.
    fn toggled_scheme(&self) -> Self {
        let port = match self.port {
            Some(port) if port == default_port(self.https) => Some(default_port(!self.https)),
            port => port,
        };
        Self {
            https: !self.https,
            port,
            ..self.clone()
        }
    }

    /// The default port made explicit when there is none, any port removed otherwise.
    fn toggled_port(&self) -> Self {
        Self {
            port: match self.port {
                None => Some(default_port(self.https)),
                Some(_) => None,
            },
            ..self.clone()
        }
    }
}

/// The base a proxy's `X-Forwarded-*` headers describe, from the configured one; `None`
/// without any of them.
fn forwarded(configured: &Base, headers: &HeaderMap) -> Option<Base> {
    let proto = first(headers, "x-forwarded-proto");
    let host = first(headers, "x-forwarded-host");
    let port = first(headers, "x-forwarded-port");
    let prefix = first(headers, "x-forwarded-prefix");
    if proto.is_none() && host.is_none() && port.is_none() && prefix.is_none() {
        return None;
    }
    let mut base = configured.clone();
    if let Some(https) = proto.and_then(is_https)
        && https != base.https
    {
        base.https = https;
        base.port = None;
    }
    if let Some((host, port)) = host.and_then(host_and_port) {
        base.host = host;
        base.port = port;
    }
    if let Some(port) = port.and_then(|port| port.parse().ok()) {
        base.port = Some(port);
    }
    if base.port == Some(default_port(base.https)) {
        base.port = None;
    }
    if let Some(prefix) = prefix.filter(|prefix| prefix.starts_with('/')) {
        base.prefix = prefix.trim_end_matches('/').to_owned();
    }
    Some(base)
}

/// The first comma-separated value of header `name` (proxies append theirs), if it is text.
fn first<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get(name)?.to_str().ok()?;
    value
        .split(',')
        .next()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `host[:port]` from a `Host` or `X-Forwarded-Host` value; never user info.
fn host_and_port(text: &str) -> Option<(String, Option<u16>)> {
    if text.contains('@') {
        return None;
    }
    let authority: Authority = text.parse().ok()?;
    Some((bracketed(authority.host()), authority.port_u16()))
}

fn is_https(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(true),
        "http" => Some(false),
        _ => None,
    }
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `path` with a trailing slash added, or removed when it has one.
fn toggled_slash(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(trimmed) => trimmed.to_owned(),
        None => format!("{path}/"),
    }
}
