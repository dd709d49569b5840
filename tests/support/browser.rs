//! A small WebDriver client over reqwest: Debian's chromium driven by
//! chromedriver (both installed by `scripts/test.sh`; nothing is
//! downloaded). Included by the browser tests with
//! `#[path = "support/browser.rs"] mod browser;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};

pub const PASSWORD: &str = "Corr3ct-Horse-Battery";
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `servicedesk --config CONFIG COMMAND` (`run` or `web`), its standard
/// error written to `log` when given; killed on drop.
pub fn serve(config: &Path, command: &str, log: Option<&Path>) -> Kill {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("the log file")),
        None => Stdio::null(),
    };
    Kill(
        Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(config)
            .arg(command)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start servicedesk {command}: {e}")),
    )
}

/// One chromium session through chromedriver.
pub struct Browser {
    http: Client,
    base: String,
    session: String,
    _driver: Kill,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let driver = which("chromedriver").unwrap_or_else(|| {
            panic!("chromedriver is missing: run the tests through scripts/test.sh (it installs Debian's chromium and chromium-driver)")
        });
        let chromium = which("chromium").unwrap_or_else(|| {
            panic!("chromium is missing: run the tests through scripts/test.sh (it installs Debian's chromium and chromium-driver)")
        });
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Kill(child);
        let profile = crate::support::short_tempdir();
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1366,900",
                    "--lang=en-GB",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("JSON");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            http,
            base,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req
            .send()
            .await
            .expect("WebDriver")
            .json()
            .await
            .expect("JSON");
        if r["value"].get("error").is_some() {
            panic!("WebDriver {method} {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks `css`, which sends a form, and waits (up to 20 s) for the
    /// new page it leads to, whose address ends with `suffix`: also when
    /// the page before had that address already, where [`Browser::wait_url`]
    /// would return at once and the next step would find an element of
    /// the page that is going away.
    pub async fn submit(&self, css: &str, suffix: &str) -> String {
        self.run("window.sdLeaving = true; return null;").await;
        self.click(css).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let fresh = self
                .run("return !window.sdLeaving && document.readyState === 'complete';")
                .await;
            if fresh == json!(true) {
                let url = self.url().await;
                if url.ends_with(suffix) {
                    return url;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no new page …{suffix} after clicking {css}; at {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to 20 s) for the page after a form was sent: its address
    /// ends with `suffix`.
    pub async fn wait_url(&self, suffix: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {url}, not …{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn source(&self) -> String {
        self.call("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Logs in at `web` (the workspace's base address) with
    /// [`PASSWORD`] and waits for the queues.
    pub async fn log_in(&self, web: &str, email: &str) {
        self.goto(&format!("{web}/login")).await;
        self.type_into("input[name=email]", email).await;
        self.type_into("input[name=password]", PASSWORD).await;
        self.click("form[action='/login'] button").await;
        self.wait_url(&format!("{web}/")).await;
    }

    pub async fn screenshot(&self, dir: &Path, name: &str) {
        let b64 = self.call("GET", "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap_or_default());
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write a screenshot");
        println!("screenshot: {}", path.display());
    }

    /// Waits until the page's source contains `text` (reloading it each time).
    pub async fn wait_for_text(&self, url: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.goto(url).await;
            let source = self.source().await;
            if source.contains(text) {
                return source;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{text:?} never appeared on {url}:\n{source}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends chromium; chromedriver is killed after.
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = Client::new().delete(url).send().await;
                });
            }
        })
        .join();
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
