//! What the browser tests run against: the real reelbox binary, a WebDriver server
//! (chromedriver, geckodriver or WebKitWebDriver) and its browser (Chromium, Firefox or WebKitGTK's
//! MiniBrowser, which has no headless mode and gets an Xvfb display of its own). Each process is
//! ended when its guard is dropped, so a failing test leaves nothing behind.

pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use webdriver::Result;

/// How to get a missing program, by its name.
fn install_hint(name: &str) -> String {
    match name {
        "chromium" | "chromedriver" => "The browser tests need Debian's `chromium` and `chromium-driver` (the same \
             version). Install them with `apt-get install -y chromium chromium-driver` (or `bash tests/run.sh \
             --install-only`), or point REELBOX_CHROMEDRIVER and REELBOX_CHROMIUM at existing binaries."
            .into(),
        "firefox-esr" | "geckodriver" => "The Firefox browser tests need Debian's `firefox-esr` and Mozilla's \
             geckodriver. Install them with `apt-get install -y firefox-esr` and `cargo install --locked \
             geckodriver` (or `bash tests/run.sh --install-only`), or point REELBOX_FIREFOX and \
             REELBOX_GECKODRIVER at existing binaries."
            .into(),
        "MiniBrowser" | "WebKitWebDriver" => "The WebKit browser tests need Debian's `webkit2gtk-driver` \
             (WebKitWebDriver; it pulls in libwebkit2gtk-4.1-0, whose MiniBrowser it drives), `xvfb` (MiniBrowser \
             needs an X display), `gstreamer1.0-libav` and `gstreamer1.0-plugins-bad` (WebKitGTK decodes H.264/AAC \
             through GStreamer). Install them with `apt-get install -y --no-install-recommends webkit2gtk-driver \
             xvfb gstreamer1.0-libav gstreamer1.0-plugins-bad` (or `bash tests/run.sh --install-only`), or point REELBOX_WEBKITDRIVER and REELBOX_MINIBROWSER at \
             existing binaries."
            .into(),
        "Xvfb" => "The WebKit browser tests run MiniBrowser on a virtual X display. Install it with `apt-get \
             install -y xvfb` (or `bash tests/run.sh --install-only`)."
            .into(),
        other => format!("Install it with `apt-get install -y {other}` (or `bash tests/run.sh --install-only`)."),
    }
}

/// A program from `env_var` when set, else `default`, else `name` on the PATH. Missing → panic
/// with how to install it: a browser test that cannot run must fail, not pass silently.
pub fn require_tool(env_var: &str, default: &str, name: &str) -> PathBuf {
    if let Some(set) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(set);
        assert!(path.is_file(), "{env_var}={} does not exist. {}", path.display(), install_hint(name));
        return path;
    }
    let default = PathBuf::from(default);
    if default.is_file() {
        return default;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` was not found ({env_var} unset, not at {}, not on PATH). {}",
                default.display(),
                install_hint(name)
            )
        })
}

/// Which browser a test drives; each through its own WebDriver server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserKind {
    /// Debian's `chromium` through `chromedriver` (package `chromium-driver`).
    Chromium,
    /// Debian's `firefox-esr` through Mozilla's `geckodriver` (`cargo install geckodriver`).
    Firefox,
    /// WebKitGTK's MiniBrowser (package `libwebkit2gtk-4.1-0`) through `WebKitWebDriver`
    /// (package `webkit2gtk-driver`), on an Xvfb display: Safari's engine, not Safari.
    WebKit,
}

impl BrowserKind {
    pub fn name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "Chromium",
            BrowserKind::Firefox => "Firefox",
            BrowserKind::WebKit => "WebKit",
        }
    }

    /// The WebDriver server's program name.
    pub fn driver_name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromedriver",
            BrowserKind::Firefox => "geckodriver",
            BrowserKind::WebKit => "WebKitWebDriver",
        }
    }

    /// The WebDriver server (REELBOX_CHROMEDRIVER / REELBOX_GECKODRIVER / REELBOX_WEBKITDRIVER);
    /// panics with how to
    /// install it when it is missing.
    pub fn require_driver(self) -> PathBuf {
        match self {
            BrowserKind::Chromium => {
                require_tool("REELBOX_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
            }
            BrowserKind::Firefox => {
                // Where `cargo install geckodriver` puts it.
                let cargo_home = std::env::var_os("CARGO_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
                    .unwrap_or_default();
                let default = cargo_home.join("bin").join("geckodriver");
                require_tool("REELBOX_GECKODRIVER", &default.to_string_lossy(), "geckodriver")
            }
            BrowserKind::WebKit => {
                require_tool("REELBOX_WEBKITDRIVER", "/usr/bin/WebKitWebDriver", "WebKitWebDriver")
            }
        }
    }

    /// The browser (REELBOX_CHROMIUM / REELBOX_FIREFOX / REELBOX_MINIBROWSER); panics with how to
    /// install it.
    pub fn require_browser(self) -> PathBuf {
        match self {
            BrowserKind::Chromium => require_tool("REELBOX_CHROMIUM", "/usr/bin/chromium", "chromium"),
            BrowserKind::Firefox => require_tool("REELBOX_FIREFOX", "/usr/bin/firefox-esr", "firefox-esr"),
            BrowserKind::WebKit => {
                // Not on the PATH: it lives in the library's directory, under the multiarch triplet.
                let default = std::fs::read_dir("/usr/lib")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|arch| arch.path().join("webkit2gtk-4.1/MiniBrowser"))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"));
                require_tool("REELBOX_MINIBROWSER", &default.to_string_lossy(), "MiniBrowser")
            }
        }
    }
}

/// Where screenshots and logs of this run go. Kept after the test so the printed paths stay valid.
pub fn artifacts_dir() -> PathBuf {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the directory for screenshots and logs");
    dir
}

fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free port: {e}"))
}

/// A virtual X display (Xvfb) for a browser that cannot run headless.
struct Display {
    child: Child,
    /// Its number, as in `DISPLAY=:N`.
    number: u32,
}

impl Display {
    fn start(log: &Path) -> Result<Display> {
        let program = require_tool("REELBOX_XVFB", "/usr/bin/Xvfb", "Xvfb");
        let stderr =
            std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        // `-displayfd 1`: Xvfb picks a free display number itself and writes it to its stdout once
        // it accepts connections, so parallel runs (or another X server here) never collide.
        let mut child = Command::new(&program)
            .args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}. {}", program.display(), install_hint("Xvfb")))?;
        let stdout = child.stdout.take().ok_or("Xvfb has no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut display = Display { child, number: 0 };
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        display.number = line.trim().parse().map_err(|_| {
            format!("Xvfb did not report its display within 20 s (said {line:?}); see {}", log.display())
        })?;
        Ok(display)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver server (chromedriver, geckodriver or WebKitWebDriver) on a loopback port of its own.
pub struct Driver {
    kind: BrowserKind,
    child: Child,
    port: u16,
    pub url: String,
    /// Dropped after the driver (fields drop in order), so the browser never loses its display
    /// while it is being shut down.
    _display: Option<Display>,
}

impl Driver {
    pub async fn start(kind: BrowserKind, program: &Path, log: &Path) -> Result<Driver> {
        let port = free_loopback_port()?;
        let mut command = Command::new(program);
        command.stdin(Stdio::null());
        let mut display = None;
        match kind {
            BrowserKind::Chromium => {
                command
                    .arg(format!("--port={port}"))
                    .arg(format!("--log-path={}", log.display()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            BrowserKind::Firefox => {
                // geckodriver (and the Firefox it starts) log to its stdout and stderr. Without
                // `--marionette-port` it lets Firefox pick a free one, so runs do not collide.
                let file = std::fs::File::create(log)
                    .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
                let copy = file.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
                command
                    .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log", "info"])
                    .stdout(file)
                    .stderr(copy)
                    // Its own process group, so Drop can end Firefox with it: geckodriver has no
                    // shutdown command and a killed geckodriver leaves its Firefox running.
                    .process_group(0);
            }
            BrowserKind::WebKit => {
                // MiniBrowser has no headless mode: it gets an X display of its own. GTK must
                // not try a Wayland compositor from the environment instead.
                let x = Display::start(&log.with_extension("xvfb.log"))?;
                let file = std::fs::File::create(log)
                    .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
                let copy = file.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
                command
                    .args(["--host=127.0.0.1", &format!("--port={port}")])
                    .env("DISPLAY", format!(":{}", x.number))
                    .env("GDK_BACKEND", "x11")
                    .env_remove("WAYLAND_DISPLAY")
                    .stdout(file)
                    .stderr(copy)
                    // Its own process group, like geckodriver: a killed WebKitWebDriver leaves
                    // its MiniBrowser (and MiniBrowser's web and network processes) running.
                    .process_group(0);
                display = Some(x);
            }
        }
        let child = command.spawn().map_err(|e| {
            format!("cannot start {}: {e}. {}", program.display(), install_hint(kind.driver_name()))
        })?;
        let mut driver =
            Driver { kind, child, port, url: format!("http://127.0.0.1:{port}"), _display: display };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                return Err(format!("{} exited early ({status}); see {}", program.display(), log.display()));
            }
            let status =
                webdriver::send(&http, reqwest::Method::GET, &format!("{}/status", driver.url), None).await;
            if status.is_ok_and(|v| v["ready"].as_bool() == Some(true)) {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer on port {port} within 20 s; see {}",
                    kind.driver_name(),
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        match self.kind {
            BrowserKind::Chromium => {
                // Ask it to end its sessions (and their Chromiums) first; a killed chromedriver
                // orphans them.
                if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
                    let _ = stream
                        .write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                    let _ = stream.read(&mut [0; 512]);
                }
                if self.exited_within(Duration::from_secs(3)) {
                    return;
                }
            }
            BrowserKind::Firefox | BrowserKind::WebKit => {
                // The group is the driver's own (see `start`): its id is the driver's pid. TERM
                // first so the browser can shut down, then KILL whatever is left of the group.
                let group = format!("-{}", self.child.id());
                let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
                self.exited_within(Duration::from_secs(3));
                let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `reelbox serve` on a fresh data directory and a free loopback port.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The first-run link it printed.
    pub setup_url: String,
    _data: tempfile::TempDir,
}

impl Server {
    pub fn start(log: &Path) -> Result<Server> {
        let data = tempfile::Builder::new()
            .prefix("reelbox-browser-data-")
            .tempdir()
            .map_err(|e| format!("cannot create a data directory: {e}"))?;
        // An empty configuration file, so /etc/reelbox/reelbox.toml on this machine cannot leak in.
        let config = data.path().join("reelbox.toml");
        std::fs::write(&config, "").map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let stderr =
            std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_reelbox"));
        command
            .arg("--config")
            .arg(&config)
            .args(["serve", "--data"])
            .arg(data.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REELBOX_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().map_err(|e| format!("cannot start reelbox: {e}"))?;
        let stdout = child.stdout.take().ok_or("reelbox has no stdout pipe")?;
        let (lines_tx, lines) = mpsc::channel::<String>();
        // Keep draining stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(std::io::Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut server = Server { child, base: String::new(), setup_url: String::new(), _data: data };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.setup_url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    return Err(format!(
                        "reelbox did not print its address and setup link within 30 s (exit: {:?}); see {}",
                        server.child.try_wait().ok().flatten(),
                        log.display()
                    ));
                }
            };
            if let Some((_, url)) = line.split_once(" serving ") {
                server.base = url.trim().trim_end_matches('/').to_string();
            } else if line.trim_start().starts_with("http") && line.contains("/setup?token=") {
                server.setup_url = line.trim().to_string();
            }
        }
        if server.base.is_empty() || !server.setup_url.starts_with(&server.base) {
            return Err(format!(
                "unexpected start-up output: base `{}`, setup link `{}`",
                server.base, server.setup_url
            ));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
