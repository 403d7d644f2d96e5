//! The server's life: it prints where it serves and the setup link, answers `/healthz`, and on
//! SIGTERM or SIGINT finishes in-flight work, closes the database cleanly and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    base: String,
    setup_line: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reelbox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start reelbox");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("readable");
    let base = first.rsplit(' ').next().expect("url at end of line").to_string();
    assert!(first.starts_with("reelbox ") && base.starts_with("http://127.0.0.1:"), "{first}");
    let second = lines.next().expect("a second line").expect("readable");
    let setup_line = if second.starts_with("No administrator yet") {
        lines.next().and_then(Result::ok)
    } else {
        assert_eq!(second, format!("Sign in at {base}/login"));
        None
    };
    Running { child, base, setup_line }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn prints_url_and_setup_link_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    let setup = server.setup_line.clone().expect("setup link printed when no admin exists");
    assert!(setup.trim().starts_with(&format!("{}/setup?token=", server.base)), "{setup}");

    let health: serde_json::Value =
        reqwest::get(format!("{}/healthz", server.base)).await.expect("healthz").json().await.expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["role"], "primary");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    // The setup page opens with the printed link and not with a made-up one.
    let ok = reqwest::get(setup.trim()).await.expect("setup page");
    assert_eq!(ok.status(), 200);
    let bad = reqwest::get(format!("{}/setup?token=guess", server.base)).await.expect("setup page");
    assert_eq!(bad.status(), 404);

    signal(&server.child, "-TERM");
    let status = wait_exit(&mut server.child);
    assert!(status.success(), "exit status {status:?}");
    // A clean close checkpoints the WAL into the database and removes it.
    let wal = dir.path().join("reelbox.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).expect("wal").len() == 0,
        "WAL left behind after shutdown"
    );
    let conn = rusqlite::Connection::open(dir.path().join("reelbox.db")).expect("reopen");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn sigint_also_stops_and_a_restart_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    signal(&server.child, "-INT");
    assert!(wait_exit(&mut server.child).success());
    drop(server);

    let add = Command::new(env!("CARGO_BIN_EXE_reelbox"))
        .args(["user", "add", "--username", "head", "--admin", "--password-stdin", "--data"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(b"violet tractor umbrella\n")?;
            c.wait()
        })
        .expect("user add");
    assert!(add.success());
    let server = start(dir.path());
    assert!(server.setup_line.is_none(), "no setup link once an administrator exists");
}
