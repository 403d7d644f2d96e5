//! `reelbox doctor`: checks what a school's server needs and says how to fix each problem.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub summary: String,
    /// What to do when it is not OK.
    pub fix: String,
}

fn check(name: &'static str, status: Status, summary: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, status, summary: summary.into(), fix: fix.into() }
}

pub fn run(cfg: &Config) -> Vec<Check> {
    let mut checks = vec![
        data_dir(&cfg.data_dir),
        disk_space(&cfg.data_dir),
        database(&cfg.data_dir),
        ffmpeg(&cfg.transcode.ffmpeg, "ffmpeg"),
        ffmpeg(&cfg.transcode.ffprobe, "ffprobe"),
        clock(),
    ];
    // HTTPS: the certificate, and the ports actually served.
    checks.push(super::doctor_tls::check_tls(cfg));
    if cfg.tls.mode == crate::config::TlsMode::Off {
        checks.push(port(&cfg.listen));
    } else {
        checks.push(port(&cfg.tls.https));
        if let Some(http) = cfg.tls.http_addr() {
            checks.push(port(http));
        }
    }
    checks
}

fn data_dir(dir: &Path) -> Check {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return check(
            "data directory",
            Status::Fail,
            format!("{} cannot be created: {e}", dir.display()),
            format!(
                "create it and give the reelbox user write access: mkdir -p {0} && chown reelbox: {0}",
                dir.display()
            ),
        );
    }
    let probe = dir.join(".doctor-write-test");
    match std::fs::write(&probe, b"ok").and_then(|_| std::fs::remove_file(&probe)) {
        Ok(()) => check("data directory", Status::Ok, format!("{} is writable", dir.display()), ""),
        Err(e) => check(
            "data directory",
            Status::Fail,
            format!("{} is not writable: {e}", dir.display()),
            format!(
                "give the reelbox user write access (chown reelbox: {}), or check the disk is not mounted read-only",
                dir.display()
            ),
        ),
    }
}

/// Free bytes on the filesystem holding `dir`, from `df` (no unsafe statvfs call needed).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

fn disk_space(dir: &Path) -> Check {
    const GIB: u64 = 1 << 30;
    match free_bytes(dir) {
        Some(b) if b < GIB => check(
            "disk space",
            Status::Fail,
            format!("only {} MiB free", b >> 20),
            "free space or grow the disk: uploads and the database need room (at least 1 GiB, far more for video)",
        ),
        Some(b) if b < 10 * GIB => check(
            "disk space",
            Status::Warn,
            format!("{:.1} GiB free", b as f64 / GIB as f64),
            "plan more space: video libraries grow quickly",
        ),
        Some(b) => check("disk space", Status::Ok, format!("{:.1} GiB free", b as f64 / GIB as f64), ""),
        None => check(
            "disk space",
            Status::Warn,
            "could not measure free space",
            "check `df -h` on the data directory",
        ),
    }
}

fn database(dir: &Path) -> Check {
    let path = dir.join(crate::db::DB_FILE);
    if !path.exists() {
        return check("database", Status::Ok, "not created yet (created on first start)", "");
    }
    match rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => {
            let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap_or(-1);
            let ok: String =
                c.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap_or_else(|e| e.to_string());
            let known = crate::db::latest_version() as i64;
            if ok != "ok" {
                check(
                    "database",
                    Status::Fail,
                    format!("integrity check failed: {ok}"),
                    "stop reelbox and restore the latest backup",
                )
            } else if version > known {
                check(
                    "database",
                    Status::Fail,
                    format!("schema version {version} is newer than this binary ({known})"),
                    "run the newer reelbox version",
                )
            } else {
                check("database", Status::Ok, format!("schema version {version}, integrity ok"), "")
            }
        }
        Err(e) => check(
            "database",
            Status::Fail,
            format!("cannot open {}: {e}", path.display()),
            "check permissions on the data directory",
        ),
    }
}

/// ffmpeg or ffprobe, as configured under `[transcode]`: present, and its version.
fn ffmpeg(program: &Path, name: &'static str) -> Check {
    use crate::transcode::ffmpeg::{ToolError, version};
    match version(program) {
        Ok(first) => check(name, Status::Ok, first, ""),
        Err(ToolError::Missing { detail, .. }) => check(
            name,
            Status::Fail,
            format!(
                "{} is not available ({detail}); videos and audio wait with \"transcoder not available\"",
                program.display()
            ),
            format!(
                "install it: apt install ffmpeg (it provides ffmpeg and ffprobe), or set `transcode.{name}` \
                 to its path; waiting items are converted as soon as it is there"
            ),
        ),
        Err(e) => check(
            name,
            Status::Fail,
            format!("{} does not run: {e}", program.display()),
            "reinstall it: apt install --reinstall ffmpeg",
        ),
    }
}

fn clock() -> Check {
    let synced = Command::new("timedatectl").args(["show", "-p", "NTPSynchronized", "--value"]).output();
    match synced {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "yes" => {
            check("clock", Status::Ok, "synchronised (NTP)", "")
        }
        Ok(out) if out.status.success() => {
            check("clock", Status::Warn, "not synchronised", "enable time sync: timedatectl set-ntp true")
        }
        _ => {
            let year = chrono::Utc::now().format("%Y").to_string();
            if year.as_str() < "2025" {
                check(
                    "clock",
                    Status::Fail,
                    format!("the clock says {year}"),
                    "set the time and enable NTP (timedatectl set-ntp true)",
                )
            } else {
                check(
                    "clock",
                    Status::Ok,
                    format!("{} (sync status unknown)", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")),
                    "",
                )
            }
        }
    }
}

fn port(listen: &str) -> Check {
    match TcpListener::bind(listen) {
        Ok(_) => check("port", Status::Ok, format!("{listen} is free"), ""),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => check(
            "port",
            Status::Warn,
            format!("{listen} is in use (by a running reelbox?)"),
            "if reelbox is not running, find the other program with: ss -ltnp",
        ),
        // The kernel checks the privilege before the address: run as the `reelbox` user, a
        // port below 1024 is refused even while the service (which has the capability) holds it.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && someone_listens(listen) => check(
            "port",
            Status::Warn,
            format!("{listen} is in use (by a running reelbox?); this user may not bind it"),
            "if reelbox is not running, find the other program with: ss -ltnp",
        ),
        Err(e) => check(
            "port",
            Status::Fail,
            format!("cannot bind {listen}: {e}"),
            "choose another `listen` address, or grant CAP_NET_BIND_SERVICE for ports below 1024 \
             (the installed unit does; run doctor as root to check as the service would)",
        ),
    }
}

/// Whether a connection to `listen` (a wildcard address means this host) is accepted.
fn someone_listens(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(addrs) = listen.to_socket_addrs() else { return false };
    addrs.into_iter().any(|a| {
        let target = super::service::loopback_for(a);
        std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(1)).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the service user, a privileged port answers "permission denied" whether or not the
    /// service holds it; whether someone accepts connections there tells the two apart.
    #[test]
    fn a_port_held_by_a_listener_is_told_from_a_free_one() {
        let held = TcpListener::bind("0.0.0.0:0").expect("listener");
        let port = held.local_addr().expect("addr").port();
        assert!(someone_listens(&format!("0.0.0.0:{port}")), "a wildcard address means this host");
        assert!(someone_listens(&format!("127.0.0.1:{port}")));
        drop(held);
        assert!(!someone_listens(&format!("127.0.0.1:{port}")), "nothing listens once it is closed");
        assert!(!someone_listens("not an address"));
    }
}
