//! Shared fixtures for the integration tests: the real `reelbox` binary started on a free port
//! with its own data directory, the command-line tools, and HTTP clients for the three kinds of
//! caller (anonymous, browser session, API token).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

/// Long enough, not common, passes every password rule.
pub const PASSWORD: &str = "violet tractor umbrella";

/// Startup includes opening/migrating SQLite; on a busy 2-core machine this can take a while.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reelbox")
}

/// The binary with a clean environment: no `REELBOX_*` setting of the developer leaks in.
pub fn reelbox() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("REELBOX_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info,reelbox=debug");
    // Most tests upload made-up bytes that only look like video: without a transcoder their
    // items stay `processing`, as the tests expect. Tests of transcoding call `with_ffmpeg`.
    c.env("REELBOX_TRANSCODE__FFMPEG", NO_FFMPEG);
    c
}

/// The ffmpeg path the test servers get by default: none, so video items wait.
pub const NO_FFMPEG: &str = "/nonexistent/ffmpeg-disabled-for-tests";

/// Let a test server transcode with the real ffmpeg on `PATH`.
pub fn with_ffmpeg(c: &mut Command) {
    c.env_remove("REELBOX_TRANSCODE__FFMPEG");
}

/// Run a command-line tool with `stdin` as standard input.
pub fn run_cli(args: &[&str], stdin: &str) -> Output {
    let mut child = reelbox()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reelbox command");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("reelbox command finishes")
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// `reelbox user add` against a data directory (works while a server runs on it).
pub fn add_user_in(data: &Path, name: &str, password: &str, admin: bool) -> Output {
    let data = data.to_str().expect("utf-8 path");
    let mut args = vec!["user", "add", "--data", data, "--username", name, "--password-stdin"];
    if admin {
        args.push("--admin");
    }
    run_cli(&args, &format!("{password}\n"))
}

/// A client that neither follows redirects nor keeps cookies: every answer is seen as sent.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// The value of cookie `name` from the response's `Set-Cookie` headers.
pub fn set_cookie(res: &Response, name: &str) -> Option<String> {
    set_cookie_header(res, name).and_then(|h| {
        h.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.trim().to_string())
    })
}

/// The whole `Set-Cookie` header for cookie `name`.
pub fn set_cookie_header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|h| h.trim_start().starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn location(res: &Response) -> String {
    res.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// The value of the first `<input ... name="csrf" value="...">` in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')?;
    Some(tag[v..v + end].to_string())
}

/// A running `reelbox serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, as printed by the server.
    pub base: String,
    data: PathBuf,
    stderr_path: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh, empty data directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_with(&data, dir.path(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
        s._dir = Some(dir);
        s
    }

    /// A server on `data` (kept), logging to `logs/serve.stderr`, after `configure` has adjusted
    /// the command (environment, extra flags). `Err` holds what the process said when it did
    /// not start.
    pub fn start_with(
        data: &Path,
        logs: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> Result<Server, String> {
        Server::start_at(data, logs, "127.0.0.1:0", configure)
    }

    /// Like [`Server::start_with`] on another address (e.g. `127.0.0.3:0` for a second node).
    pub fn start_at(
        data: &Path,
        logs: &Path,
        listen: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Result<Server, String> {
        let stderr_path =
            logs.join(format!("serve-{}-{}.stderr", std::process::id(), listen.replace([':', '.'], "_")));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut cmd = reelbox();
        cmd.args(["serve", "--data"]).arg(data).args(["--listen", listen]);
        configure(&mut cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start reelbox serve");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = keep.lock() {
                    l.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, url)) = line.split_once(" serving ") {
                        break url.trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    return Err(format!("reelbox serve did not start (exit {status:?}); stderr:\n{err}"));
                }
            }
        };
        Ok(Server { child, base, data: data.to_path_buf(), stderr_path, stdout: lines, _dir: None })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait up to `limit` for the process to exit; its status, or None.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What the server printed on standard output so far, line by line.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The first-run link the server printed (only when no administrator existed at start).
    pub fn setup_url(&self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let found =
                self.stdout.lock().ok().and_then(|l| l.iter().find(|l| l.contains("/setup?token=")).cloned());
            if let Some(line) = found {
                return Some(line.trim().to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Create an account with [`PASSWORD`] through `reelbox user add`.
    pub fn add_user(&self, name: &str, admin: bool) {
        let out = add_user_in(&self.data, name, PASSWORD, admin);
        assert!(out.status.success(), "user add {name}: {}", text(&out.stderr));
    }

    /// A new API token for `name` through `reelbox token create`.
    pub fn token(&self, name: &str) -> String {
        let data = self.data.to_str().expect("utf-8 path");
        let out = run_cli(&["token", "create", "--data", data, "--username", name], "");
        assert!(out.status.success(), "token create {name}: {}", text(&out.stderr));
        let token = text(&out.stdout).trim().to_string();
        assert!(token.starts_with("rbx_") && !token.contains(char::is_whitespace), "token alone: {token:?}");
        token
    }

    /// The pre-session form cookie and the matching csrf value from `GET /login`.
    pub async fn form_cookie(&self) -> (String, String) {
        let res = http().get(self.url("/login")).send().await.expect("GET /login");
        assert_eq!(res.status(), StatusCode::OK, "GET /login");
        let cookie = set_cookie(&res, "reelbox_form").expect("GET /login sets reelbox_form");
        let html = res.text().await.expect("login page");
        let csrf = csrf_in(&html).expect("login page has a csrf field");
        (cookie, csrf)
    }

    /// `POST /login` the way a browser does; the raw answer.
    pub async fn post_login(&self, name: &str, password: &str) -> Response {
        let (cookie, csrf) = self.form_cookie().await;
        http()
            .post(self.url("/login"))
            .header("Cookie", format!("reelbox_form={cookie}"))
            .header("Origin", &self.base)
            .form(&[("username", name), ("password", password), ("csrf", &csrf), ("next", "/")])
            .send()
            .await
            .expect("POST /login")
    }

    /// Sign in; the session cookie value and its csrf token.
    pub async fn sign_in(&self, name: &str, password: &str) -> Session {
        let res = self.post_login(name, password).await;
        let status = res.status();
        let cookie = set_cookie(&res, "reelbox_session");
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in of {name} refused: {body}");
        let cookie = cookie.expect("sign-in sets reelbox_session");
        let me = http()
            .get(self.url("/api/v1/me"))
            .header("Cookie", format!("reelbox_session={cookie}"))
            .send()
            .await
            .expect("GET /api/v1/me");
        assert_eq!(me.status(), StatusCode::OK, "GET /api/v1/me with a new session");
        let me: Value = me.json().await.expect("me json");
        let csrf = me["csrf_token"].as_str().expect("csrf_token in /api/v1/me").to_string();
        Session { cookie, csrf }
    }

    /// A browser signed in as `name`: a client with a cookie store, and the session's csrf token.
    pub async fn browser_login(&self, name: &str, password: &str) -> Browser {
        let session = self.sign_in(name, password).await;
        Browser::new(&self.base, session)
    }

    /// A client for scripts using `token`.
    pub fn api(&self, token: &str) -> Api {
        Api { client: http(), base: self.base.clone(), token: token.to_string() }
    }
}

impl Server {
    /// Stop the server the way a service manager does (SIGTERM) and wait for it to exit.
    pub fn stop_gracefully(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop within 40 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of the server's stderr ({}) ---", self.base);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A server-side session as the browser holds it.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie_header(&self) -> String {
        format!("reelbox_session={}", self.cookie)
    }
}

/// A signed-in browser: cookies kept, redirects not followed.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub session: Session,
    pub csrf: String,
}

impl Browser {
    pub fn new(base: &str, session: Session) -> Browser {
        let jar = reqwest::cookie::Jar::default();
        let url: reqwest::Url = base.parse().expect("base url");
        jar.add_cookie_str(&format!("reelbox_session={}; Path=/", session.cookie), &url);
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::new(jar))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("browser client");
        Browser { client, base: base.to_string(), csrf: session.csrf.clone(), session }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// Post a form the way the page would: same origin, with the session's csrf field.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.client
            .post(self.url(path))
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await
            .expect("POST form")
    }

    /// A JSON call from the page's script: session cookie plus `X-CSRF-Token`.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("Origin", &self.base)
            .header("X-CSRF-Token", &self.csrf);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("JSON call")
    }
}

/// A script with an API token.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("API call")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    /// `GET` that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    /// A call that must answer `expect`; the JSON body (or `null` when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>, expect: u16) -> Value {
        let res = self.send(method.clone(), path, body).await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), expect, "{method} {path}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") }
    }
}

/// Headers of a problem+json or HTML answer, for messages.
pub fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or("").to_string()
}

/// A tmpfs mounted for one test (full-disk and read-only cases); unmounted when dropped.
pub struct Mount(PathBuf);

impl Mount {
    pub fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Mount(dir.to_path_buf()),
            Ok(o) => panic!(
                "this test mounts a small tmpfs and needs root (or CAP_SYS_ADMIN): mount said {}",
                text(&o.stderr).trim()
            ),
            Err(e) => panic!("this test needs the `mount` command (util-linux) and root: {e}"),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
