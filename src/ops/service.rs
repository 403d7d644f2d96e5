//! Running under systemd: readiness, the watchdog and stopping, told to the service manager
//! over `$NOTIFY_SOCKET` (`Type=notify`, `WatchdogSec=`). Outside systemd every call is a no-op.
//!
//! The watchdog is only fed while the server really works: each round asks the database for a
//! trivial read and opens a connection to the web listener, and pings only when both answer in
//! time. A wedged database or a stuck accept loop therefore makes systemd restart the service.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::App;

/// How long one check may take before it counts as "not answering".
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Tell systemd the server is ready: migrations ran and the listener accepts connections.
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
}

/// Tell systemd the server is stopping (in-flight requests are being finished).
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Start the watchdog task when systemd asked for one (`WATCHDOG_USEC`), pinging at half the
/// interval. `listener` is the address the web server is bound to.
pub fn start_watchdog(app: &App, listener: SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
    let interval = watchdog_interval()?;
    let period = interval / 2;
    tracing::info!(interval_ms = interval.as_millis() as u64, "systemd watchdog enabled");
    let app = app.clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match healthy(&app, listener).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("watchdog: server answers again");
                        failing = false;
                    }
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Err(why) => {
                    // Not pinging is the signal; systemd restarts us once the interval passes.
                    if !failing {
                        tracing::error!(reason = %why, "watchdog: server not answering, withholding the ping");
                    }
                    failing = true;
                }
            }
        }
    }))
}

/// `WATCHDOG_USEC` when it is meant for this process (systemd also sets `WATCHDOG_PID`).
fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim() != std::process::id().to_string()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Both the database and the web listener answer within [`PROBE_TIMEOUT`].
async fn healthy(app: &App, listener: SocketAddr) -> Result<(), String> {
    let db = app
        .db
        .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(crate::db::DbError::from));
    match tokio::time::timeout(PROBE_TIMEOUT, db).await {
        Ok(Ok(1)) => {}
        Ok(Ok(other)) => return Err(format!("database answered {other} to SELECT 1")),
        Ok(Err(e)) => return Err(format!("database: {e}")),
        Err(_) => return Err("database did not answer within 5 s".into()),
    }
    let probe = tokio::task::spawn_blocking(move || probe_listener(listener));
    match tokio::time::timeout(PROBE_TIMEOUT * 2, probe).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("listener probe failed: {e}")),
        Err(_) => Err("listener probe did not finish".into()),
    }
}

/// Send `GET /healthz` to the listener and judge the first bytes of the answer. A plain-HTTP
/// listener must answer `HTTP/1.x 200`; a TLS listener answers plaintext with a TLS alert record
/// (content type 21) or closes the connection — either way a worker took the connection and
/// reacted, which is what this checks. Silence until the timeout means the loop is stuck.
fn probe_listener(listener: SocketAddr) -> Result<(), String> {
    let target = loopback_for(listener);
    let mut stream = TcpStream::connect_timeout(&target, PROBE_TIMEOUT)
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {target}: {e}"))?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if got == 0 && is_reset(&e) => return Ok(()),
            Err(e) => return Err(format!("no answer from {target}: {e}")),
        }
    }
    judge(&head[..got])
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted)
}

/// Whether the first bytes of the listener's answer show a working server.
fn judge(head: &[u8]) -> Result<(), String> {
    if head.is_empty() || head[0] == 21 {
        // Closed after our plaintext, or a TLS alert: a TLS listener that reacted.
        return Ok(());
    }
    let text = String::from_utf8_lossy(head);
    if text.starts_with("HTTP/1.") {
        return match text.get(9..12) {
            Some("200") => Ok(()),
            Some(code) => Err(format!("/healthz answered {code}")),
            None => Err("/healthz answer cut short".into()),
        };
    }
    Err(format!("unexpected answer {text:?}"))
}

/// The listener reached over loopback (a wildcard bind is not a destination).
pub(crate) fn loopback_for(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}

/// Under journald (`JOURNAL_STREAM` set by systemd for our stderr) the journal adds its own
/// timestamps and colour is noise, so log lines carry neither.
pub fn logging_to_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged() {
        assert!(judge(b"HTTP/1.1 200 OK\r\n").is_ok());
        assert!(judge(b"HTTP/1.1 503 Serv").is_err());
        assert!(judge(b"").is_ok(), "TLS listener closing on plaintext");
        assert!(judge(&[21, 3, 3, 0, 2, 2, 50]).is_ok(), "TLS alert");
        assert!(judge(b"SSH-2.0-OpenSSH").is_err());
    }

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        let a: SocketAddr = "0.0.0.0:443".parse().expect("addr");
        assert_eq!(loopback_for(a), "127.0.0.1:443".parse::<SocketAddr>().expect("addr"));
        let b: SocketAddr = "[::]:8443".parse().expect("addr");
        assert_eq!(loopback_for(b), "[::1]:8443".parse::<SocketAddr>().expect("addr"));
    }

    #[test]
    fn a_closed_port_is_not_healthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        assert!(probe_listener(addr).is_err());
    }
}
