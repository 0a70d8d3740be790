//! A real browser for the console's tests: Debian's Chromium, headless, driven through
//! ChromeDriver (WebDriver) by `fantoccini`. ChromeDriver runs as a child process on a free
//! loopback port and is killed (by its id) when the browser is dropped; Chromium's profile is
//! a temporary directory removed with it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use super::redis_server::free_port;

pub struct Browser {
    pub client: Client,
    driver: Child,
    /// Chromium's profile (it would otherwise leave one directory in /tmp per session).
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match connected {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("no browser session: {error}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Logs in to the console at `admin` (`http://host:port`) with `token`.
    pub async fn log_in(&self, admin: &str, token: &str) {
        self.goto(&format!("{admin}/login")).await;
        self.client
            .find(fantoccini::Locator::Css("#token"))
            .await
            .expect("token field")
            .send_keys(token)
            .await
            .expect("type");
        self.click("button[type=submit].primary").await;
        // Wait for the redirect: reading the page before it lands reads the login form.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self
            .client
            .current_url()
            .await
            .is_ok_and(|url| url.path() == "/login")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the login did not redirect"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The text of the first element matching `css`.
    ///
    /// Retried for 5 s: an element found just before a form's redirect replaces the page is
    /// stale by the time its text is read.
    pub async fn text(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .client
                .wait()
                .at_most(Duration::from_secs(5))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
            match found.text().await {
                Ok(text) => return text,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("no text of `{css}`: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Saves a PNG of the page under `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Runs `script` (a function body; WebDriver runs it outside the page's content security
    /// policy) and returns what it returns.
    pub async fn script(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Resizes the window so that the page's viewport is `width` × `height` CSS pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        // The window may have a frame around the viewport: grow it by the difference.
        let frame = self
            .script("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
            .await;
        let (dx, dy) = (
            frame[0].as_u64().unwrap_or(0) as u32,
            frame[1].as_u64().unwrap_or(0) as u32,
        );
        if dx > 0 || dy > 0 {
            self.client
                .set_window_size(width + dx, height + dy)
                .await
                .expect("window size");
        }
        let inner = self.script("return window.innerWidth;").await;
        assert_eq!(
            inner.as_u64(),
            Some(u64::from(width)),
            "the viewport's width"
        );
    }

    /// Saves a PNG of the whole page at viewport width `width` (the window is made as tall as
    /// the page, up to 4 000 px, then put back), as `target/console-screenshots/<name>.png`.
    pub async fn screenshot_page(&self, name: &str, width: u32) {
        let height = self
            .script("return document.documentElement.scrollHeight;")
            .await
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 4000) as u32;
        self.viewport(width, height).await;
        self.screenshot(name).await;
        self.viewport(width, 1000).await;
    }

    /// Asserts that the page is no wider than the viewport: whatever is wide scrolls inside
    /// its own box.
    pub async fn assert_no_horizontal_overflow(&self, page: &str) {
        let sizes = self
            .script(
                "const e = document.documentElement; \
                 const wide = [...document.querySelectorAll('body *')] \
                     .filter(n => n.getBoundingClientRect().right > e.clientWidth + 0.5) \
                     .slice(0, 5).map(n => n.tagName + '.' + n.className); \
                 return [e.scrollWidth, e.clientWidth, wide];",
            )
            .await;
        assert!(
            sizes[0].as_u64() <= sizes[1].as_u64(),
            "{page}: the page is {} px wide in a {} px viewport (widest: {})",
            sizes[0],
            sizes[1],
            sizes[2]
        );
    }

    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
