//! `porter probe [URL]`: exit 0 when URL answers `200`, 1 otherwise, printing why. Without a
//! URL, the `/healthz` of the configuration's main listener (`server.listen`, an unspecified
//! address asked on loopback), so that an image's health check follows the port it is given.
//!
//! porter's container image has no shell and no `curl` (it holds the binary and the C
//! libraries it links, nothing else), so its `HEALTHCHECK` and a test's readiness wait ask the
//! binary itself. Plain HTTP to a listener on the same host is all it is for: a redirect is
//! not followed, and the answer's body is not read past its status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::config::Config;

#[derive(Debug, Args)]
pub(super) struct ProbeArgs {
    /// What to ask, such as `http://127.0.0.1:8080/readyz` (default: `/healthz` of the
    /// configuration's `server.listen`).
    url: Option<String>,
    /// The configuration whose main listener to ask when no URL is given (default:
    /// ./porter.toml if present, else the embedded default).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(super) fn probe(args: &ProbeArgs) -> ExitCode {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => match Config::resolve_without_admin_token(args.config.as_deref()) {
            Ok(config) => healthz(config.server.listen),
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("porter probe: {error}");
            return ExitCode::FAILURE;
        }
    };
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let answer = runtime.block_on(async {
        let response = client?.get(&url).send().await?;
        Ok::<_, reqwest::Error>(response.status())
    });
    match answer {
        Ok(status) if status == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("porter probe: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("porter probe: {url}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `/healthz` of a listener, asked on loopback when it listens on every address.
fn healthz(mut listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        listen.set_ip(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{listen}/healthz")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        assert_eq!(
            super::healthz("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            super::healthz("[::]:9000".parse().unwrap()),
            "http://[::1]:9000/healthz"
        );
        assert_eq!(
            super::healthz("10.1.2.3:8080".parse().unwrap()),
            "http://10.1.2.3:8080/healthz"
        );
    }
}
