//! A TLS-terminating reverse proxy on loopback, as porter often runs behind: it accepts TLS
//! with a certificate of its own, forwards each request to porter over plain HTTP with the
//! headers such proxies add (`X-Forwarded-Proto: https`, …), optionally stripping a path
//! prefix, and relays the answer.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{RawRequest, RawResponse, parse_response};

/// What the proxy does to each request on its way to porter.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Headers added (after the request line).
    pub add: Vec<(String, String)>,
    /// A path prefix removed from the request target (`/porter` of `/porter/webhooks/sms`).
    pub strip_prefix: Option<String>,
}

pub struct TlsProxy {
    pub addr: SocketAddr,
    /// The host name its certificate is for.
    pub host: String,
    certificate: CertificateDer<'static>,
}

impl TlsProxy {
    /// Proxies TLS connections for `host` on a loopback port to `upstream`.
    pub async fn start(host: &str, upstream: SocketAddr, rewrite: Rewrite) -> Self {
        let generated =
            rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
        let certificate = generated.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            generated.signing_key.serialize_der(),
        ));
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certificate.clone()], key)
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let rewrite = Arc::new(rewrite);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, rewrite) = (acceptor.clone(), Arc::clone(&rewrite));
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        relay(tls, upstream, &rewrite).await;
                    }
                });
            }
        });
        Self {
            addr,
            host: host.to_owned(),
            certificate,
        }
    }

    /// Sends `request` over TLS, as a provider calling `https://<host>` would.
    pub async fn send(&self, request: &RawRequest) -> RawResponse {
        let mut roots = RootCertStore::empty();
        roots.add(self.certificate.clone()).expect("root");
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from(self.host.clone()).expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(&request.to_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        parse_response(&raw)
    }
}

/// Reads one request (`Connection: close`, a `Content-Length` body), rewrites its head and
/// relays it to `upstream`, then relays the answer back.
async fn relay<S>(mut client: S, upstream: SocketAddr, rewrite: &Rewrite)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let Ok(read) = client.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        raw.extend_from_slice(&buffer[..read]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while raw.len() < head_end + 4 + length {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => raw.extend_from_slice(&buffer[..read]),
        }
    }
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.splitn(3, ' ');
    let (method, mut target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default(),
    );
    if let Some(prefix) = &rewrite.strip_prefix
        && let Some(rest) = target.strip_prefix(prefix.as_str())
    {
        target = rest.to_owned();
    }
    let mut forwarded = format!("{method} {target} {version}\r\n");
    for (name, value) in &rewrite.add {
        forwarded.push_str(&format!("{name}: {value}\r\n"));
    }
    for line in lines {
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("\r\n");
    let mut bytes = forwarded.into_bytes();
    bytes.extend_from_slice(&raw[head_end + 4..]);
    let Ok(mut porter) = TcpStream::connect(upstream).await else {
        return;
    };
    if porter.write_all(&bytes).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = porter.read_to_end(&mut answer).await;
    let _ = client.write_all(&answer).await;
    let _ = client.shutdown().await;
}
