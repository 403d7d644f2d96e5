//! What the browser test runs against: the real reelbox binary, chromedriver and Chromium.
//! Each process is ended when its guard is dropped, so a failing test leaves nothing behind.

pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use webdriver::Result;

const INSTALL_HINT: &str = "The browser test needs Debian's `chromium` and `chromium-driver` (the same version). \
     Install them with `apt-get install -y chromium chromium-driver` (or `bash tests/run.sh --install-only`), \
     or point REELBOX_CHROMEDRIVER and REELBOX_CHROMIUM at existing binaries.";

/// A program from `env_var` when set, else `default`, else `name` on the PATH. Missing → panic
/// with how to install it: a browser test that cannot run must fail, not pass silently.
pub fn require_tool(env_var: &str, default: &str, name: &str) -> PathBuf {
    if let Some(set) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(set);
        assert!(path.is_file(), "{env_var}={} does not exist. {INSTALL_HINT}", path.display());
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
            panic!("`{name}` was not found ({} or on PATH). {INSTALL_HINT}", default.display())
        })
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

/// A chromedriver on a loopback port of its own.
pub struct ChromeDriver {
    child: Child,
    port: u16,
    pub url: String,
}

impl ChromeDriver {
    pub async fn start(program: &Path, log: &Path) -> Result<ChromeDriver> {
        let port = free_loopback_port()?;
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}. {INSTALL_HINT}", program.display()))?;
        let mut driver = ChromeDriver { child, port, url: format!("http://127.0.0.1:{port}") };
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
                    "chromedriver did not answer on port {port} within 20 s; see {}",
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Ask it to end its sessions (and their Chromiums) first; a killed chromedriver orphans them.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let _ =
                stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let _ = stream.read(&mut [0; 512]);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
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
