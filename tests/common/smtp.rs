//! A real SMTP server on a loopback port: Python's `aiosmtpd` (Debian's `python3-aiosmtpd`,
//! which `scripts/test` installs), printing each message it accepts as one JSON line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A message as the server received it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    mails: Arc<Mutex<Vec<Mail>>>,
}

const SERVER: &str = r#"
import asyncio, json, sys
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                          "data": envelope.content.decode("utf-8", "replace")}), flush=True)
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("READY", flush=True)
sys.stdin.read()
controller.stop()
"#;

/// A Python that has `aiosmtpd`: Debian's own first (a pyenv shim may hide it).
fn python() -> String {
    for candidate in ["/usr/bin/python3", "python3"] {
        let found = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return candidate.to_owned();
        }
    }
    panic!(
        "no Python with aiosmtpd: install Debian's python3-aiosmtpd (scripts/test does) to run \
         the e-mail alert tests"
    )
}

impl SmtpServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(python())
            .args(["-c", SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok);
        assert_eq!(first.as_deref(), Some("READY"), "aiosmtpd did not start");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&mails);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mail: Mail = serde_json::from_str(&line).expect("a JSON line per mail");
                kept.lock().expect("lock").push(mail);
            }
        });
        Self { port, child, mails }
    }

    /// Waits until `count` messages arrived (or panics after `limit`).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            let mails = self.mails.lock().expect("lock").clone();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} mails arrived",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
