//! `porter serve` as a real child process, for tests that need the binary: start-up logs,
//! signals, crashes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn porter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_porter"))
}

/// A `porter serve` child process; killed on drop if still running.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener, when the configuration has `[admin]`.
    pub admin_addr: Option<SocketAddr>,
    /// The console's login URL, when porter made the token up (the embedded default).
    pub login_url: Option<String>,
    /// Lines of stderr after the "listening" line.
    stderr: mpsc::Receiver<String>,
    /// Lines already read by [`Served::wait_for_log`], kept for [`Served::terminate`].
    seen: std::cell::RefCell<Vec<String>>,
}

impl Served {
    /// Starts `porter serve ARGS --listen 127.0.0.1:0` in `dir` and waits until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = porter()
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("porter starts");
        let stderr = child.stderr.take().expect("stderr");
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut admin_addr, mut login_url) = (None, None);
        let addr = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(30))
                .expect("porter logs that it listens");
            if let Some(addr) = listening_address(&line, "porter listening") {
                break addr;
            }
            if let Some(addr) =
                listening_address(&line, "admin listening (console, admin API, /metrics)")
            {
                admin_addr = Some(addr);
            }
            if let Some(url) = line.trim().strip_prefix("console: ") {
                login_url = Some(url.to_owned());
            }
        };
        // Ready means the store answers and delivery groups exist: then events may be sent.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ready(addr) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr,
            admin_addr,
            login_url,
            stderr: receiver,
            seen: std::cell::RefCell::default(),
        }
    }

    /// Waits until `count` lines of stderr contain `needle` (within `limit`); the lines so far.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let matching = self
                .seen
                .borrow()
                .iter()
                .filter(|line| line.contains(needle))
                .count();
            if matching >= count {
                return self.seen.borrow().clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.seen.borrow_mut().push(line),
                Err(_) => panic!(
                    "{matching} of {count} log lines with {needle:?} within {limit:?}: {:?}",
                    self.seen.borrow()
                ),
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit; returns (success, stdout, stderr after start).
    pub fn terminate(mut self) -> (bool, String, String) {
        signal(&self.child, "TERM");
        let status =
            wait(&mut self.child, Duration::from_secs(20)).expect("porter exits after SIGTERM");
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let mut stderr = self.seen.take();
        stderr.extend(self.stderr.try_iter());
        (status.success(), stdout, stderr.join("\n"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_address(line: &str, message: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["message"] != message {
        return None;
    }
    value["address"].as_str()?.parse().ok()
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

pub fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// One `Connection: close` POST; the whole raw answer.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn ready(addr: SocketAddr) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// The value of `name` (without labels) in the Prometheus text of the admin listener at `admin`.
pub fn metric(admin: SocketAddr, token: &str, name: &str) -> Option<f64> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(admin).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}
