//! A headless Chromium driven over the DevTools protocol (a WebSocket): enough to load a page,
//! read its DOM with JavaScript, wait for it to change and take screenshots.
//!
//! Chromium is Debian's `chromium` (installed by `.ci/run`), or `DROVER_TEST_CHROMIUM`. Without
//! it the browser tests are skipped with a note, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

/// How long one DevTools call or page load may take.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// The Chromium binary, if one is installed.
fn chromium_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("DROVER_TEST_CHROMIUM")
        && !path.is_empty()
    {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running headless Chromium (killed on drop).
pub struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    /// `127.0.0.1:port` of its DevTools HTTP endpoint.
    devtools: String,
}

impl Browser {
    /// Start Chromium, or `None` (with a note) when none is installed outside CI.
    pub async fn launch() -> Option<Browser> {
        let Some(binary) = chromium_binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no Chromium: .ci/run installs Debian's chromium (or set DROVER_TEST_CHROMIUM)"
            );
            eprintln!(
                "skipped: no chromium on PATH (apt-get install chromium, or DROVER_TEST_CHROMIUM)"
            );
            return None;
        };
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("profile dir: {e}"));
        let mut child = tokio::process::Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1400,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let stderr = child
            .stderr
            .take()
            .unwrap_or_else(|| panic!("no chromium stderr"));
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let devtools = tokio::time::timeout(CALL_LIMIT, async {
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ws://") {
                    return url.split('/').next().unwrap_or_default().to_string();
                }
                seen.push(line);
            }
            panic!("chromium exited before it listened: {}", seen.join("\n"));
        })
        .await
        .unwrap_or_else(|_| panic!("chromium did not print its DevTools address"));
        // Keep draining its stderr so a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Browser {
            _child: child,
            _profile: profile,
            devtools,
        })
    }

    /// A new tab.
    pub async fn new_page(&self) -> Page {
        let target: Value = crate::common::http_client()
            .put(format!("http://{}/json/new?about:blank", self.devtools))
            .send()
            .await
            .unwrap_or_else(|e| panic!("new tab: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("new tab answer: {e}"));
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no webSocketDebuggerUrl in {target}"));
        let (socket, _) = tokio_tungstenite::connect_async(ws)
            .await
            .unwrap_or_else(|e| panic!("DevTools socket {ws}: {e}"));
        let mut page = Page {
            socket,
            next_id: 0,
            events: Vec::new(),
        };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One tab.
pub struct Page {
    socket: Socket,
    next_id: u64,
    /// Events received while waiting for answers (method names), for `wait_event`.
    events: Vec<Value>,
}

impl Page {
    /// Call a DevTools method and return its result (panics on a protocol error).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(request.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let answer = tokio::time::timeout(CALL_LIMIT, async {
            loop {
                let message = self.next_message().await;
                if message["id"] == id {
                    return message;
                }
                self.events.push(message);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method}: no answer"));
        if let Some(error) = answer.get("error") {
            panic!("{method}: {error}");
        }
        answer["result"].clone()
    }

    async fn next_message(&mut self) -> Value {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).unwrap_or(Value::Null);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("DevTools socket: {e}"),
                None => panic!("DevTools socket closed"),
            }
        }
    }

    /// Load `url` and wait for its `load` event.
    pub async fn goto(&mut self, url: &str) {
        self.events.clear();
        let answer = self.call("Page.navigate", json!({ "url": url })).await;
        if let Some(error) = answer.get("errorText") {
            panic!("loading {url}: {error}");
        }
        let loaded = |e: &Value| e["method"] == "Page.loadEventFired";
        if self.events.iter().any(loaded) {
            return;
        }
        tokio::time::timeout(CALL_LIMIT, async {
            loop {
                let message = self.next_message().await;
                if loaded(&message) {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{url} did not load"));
    }

    /// Evaluate a JavaScript expression in the page and return its value (JSON).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluate `expression` until it is truthy (the page changes on its own: there is no event
    /// to await across the process boundary), or panic with `what` and its last value.
    pub async fn wait_for(&mut self, what: &str, expression: &str, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {what}; last: {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Evaluate `expression` until it equals `expected`, or panic with `what` and its last value.
    pub async fn wait_value(
        &mut self,
        what: &str,
        expression: &str,
        expected: &Value,
        limit: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            if &value == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {what}: expected {expected}, last: {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Save a PNG screenshot of the page as `name` under `target/tmp/screenshots/`.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let data = shot["data"].as_str().unwrap_or_default();
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_else(|e| panic!("screenshot data: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}
