//! Running under systemd, without systemd: the test plays the service manager. It binds the
//! `$NOTIFY_SOCKET` datagram socket, asks for a watchdog through `WATCHDOG_USEC` and marks
//! stderr as a journal stream, then checks what the real binary tells it and how it logs.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::Server;

/// Messages received on the notify socket until `until` matches one or `limit` passes.
fn collect(sock: &UnixDatagram, limit: Duration, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !until(&got) {
        sock.set_read_timeout(Some(
            deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
        ))
        .expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn ready_watchdog_and_stopping_reach_the_service_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &socket_path)
            // 1 s: the server must ping every 0.5 s.
            .env("WATCHDOG_USEC", "1000000")
            .env("JOURNAL_STREAM", "8:12345")
            .env("RUST_LOG", "info");
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let start = collect(&sock, Duration::from_secs(30), |m| m.iter().any(|m| m.contains("WATCHDOG=1")));
    let ready = start.iter().position(|m| m.lines().any(|l| l == "READY=1"));
    let first_ping = start.iter().position(|m| m.lines().any(|l| l == "WATCHDOG=1"));
    assert!(ready.is_some(), "READY=1 sent once listening: {start:?}");
    assert!(first_ping.is_some(), "watchdog pings while healthy: {start:?}");
    assert!(ready < first_ping, "READY before the first watchdog ping: {start:?}");
    assert!(
        start.iter().any(|m| m.contains("STATUS=serving http://127.0.0.1:")),
        "STATUS names the address: {start:?}"
    );

    // Half the interval: about four pings in two seconds (at least three on a busy machine).
    let t0 = Instant::now();
    let pings = collect(&sock, Duration::from_secs(2), |_| false);
    let count = pings.iter().filter(|m| m.lines().any(|l| l == "WATCHDOG=1")).count();
    assert!(count >= 3, "expected a ping every 0.5 s, got {count} in {:?}: {pings:?}", t0.elapsed());
    assert!(count <= 6, "pings far too often: {count} in 2 s");

    let status = server.terminate(Duration::from_secs(60)).expect("exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    let end = collect(&sock, Duration::from_secs(5), |m| m.iter().any(|m| m.contains("STOPPING=1")));
    assert!(end.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")), "STOPPING=1 on shutdown: {end:?}");

    // journald adds time and has no use for colour.
    let log = server.stderr();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI colour under journald: {log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !line.trim_start().starts_with(|c: char| c.is_ascii_digit()),
            "no timestamp under journald: {line}"
        );
    }
}

#[test]
fn without_a_watchdog_request_no_pings_are_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &socket_path).env_remove("WATCHDOG_USEC");
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let got = collect(&sock, Duration::from_secs(3), |_| false);
    assert!(got.iter().any(|m| m.lines().any(|l| l == "READY=1")), "{got:?}");
    assert!(!got.iter().any(|m| m.contains("WATCHDOG=1")), "no watchdog asked for, none sent: {got:?}");
    // A watchdog meant for another process (WATCHDOG_PID) is not ours either.
    server.terminate(Duration::from_secs(60)).expect("exits");

    let sock2_path = dir.path().join("notify2.sock");
    let sock2 = UnixDatagram::bind(&sock2_path).expect("bind second socket");
    let mut other = Server::start_with(&data, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &sock2_path).env("WATCHDOG_USEC", "1000000").env("WATCHDOG_PID", "1");
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let got = collect(&sock2, Duration::from_secs(3), |_| false);
    assert!(got.iter().any(|m| m.lines().any(|l| l == "READY=1")), "{got:?}");
    assert!(!got.iter().any(|m| m.contains("WATCHDOG=1")), "WATCHDOG_PID of another process: {got:?}");
    other.terminate(Duration::from_secs(60)).expect("exits");
}
