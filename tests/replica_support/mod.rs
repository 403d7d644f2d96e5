//! The pair of servers the replica tests start: a primary on 127.0.0.2 and a replica on
//! 127.0.0.3 sharing a replication secret, and what the tests ask of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Api, Server};

pub const SECRET: &str = "5f1c0d6b9e2a4c7f8b3d1e0a6c9f2b4d7e8a1c3f5b0d2e4a6c8f1b3d5e7a9c0b";

pub fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{secret}\n")).expect("secret file");
    p
}

pub fn start_primary(data: &Path, logs: &Path, secret: &Path) -> Server {
    start_primary_with(data, logs, secret, |_| {})
}

pub fn start_primary_with(
    data: &Path,
    logs: &Path,
    secret: &Path,
    configure: impl FnOnce(&mut std::process::Command),
) -> Server {
    start_primary_at("127.0.0.2:0", data, logs, secret, configure)
}

/// The primary on `listen` (its old address, when a test restarts it for the replica to find).
pub fn start_primary_at(
    listen: &str,
    data: &Path,
    logs: &Path,
    secret: &Path,
    configure: impl FnOnce(&mut std::process::Command),
) -> Server {
    Server::start_at(data, logs, listen, |c| {
        c.arg("--replication-secret-file").arg(secret);
        configure(c);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn start_replica(data: &Path, logs: &Path, primary: &str, secret: &Path) -> Server {
    start_replica_with(data, logs, primary, secret, |_| {})
}

pub fn start_replica_with(
    data: &Path,
    logs: &Path,
    primary: &str,
    secret: &Path,
    configure: impl FnOnce(&mut std::process::Command),
) -> Server {
    Server::start_at(data, logs, "127.0.0.3:0", |c| {
        c.args(["--role", "replica", "--primary", primary]).arg("--replication-secret-file").arg(secret);
        configure(c);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A primary (started with `configure`) and its replica on a shared secret, with an
/// administrator `ada` made on the primary and her API token.
pub struct Pair {
    pub dir: tempfile::TempDir,
    pub secret: PathBuf,
    pub primary: Server,
    pub replica: Server,
    pub token: String,
}

pub fn pair(configure: impl FnOnce(&mut std::process::Command)) -> Pair {
    pair_with(configure, |_| {})
}

/// [`pair`] with the replica's start configured too.
pub fn pair_with(
    configure: impl FnOnce(&mut std::process::Command),
    configure_replica: impl FnOnce(&mut std::process::Command),
) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = secret_file(dir.path(), "secret", SECRET);
    let primary = start_primary_with(&dir.path().join("a"), dir.path(), &secret, configure);
    primary.add_user("ada", true);
    let token = primary.token("ada");
    let replica =
        start_replica_with(&dir.path().join("b"), dir.path(), &primary.base, &secret, configure_replica);
    Pair { dir, secret, primary, replica, token }
}

pub async fn health(s: &Server) -> Value {
    common::http().get(s.url("/healthz")).send().await.expect("healthz").json().await.expect("healthz json")
}

/// The database's state checksum, computed from the file as every node computes it.
pub fn state_checksum(data: &Path) -> [u8; 32] {
    let c = rusqlite::Connection::open_with_flags(
        data.join("reelbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    reelbox::replication::state_checksum(&c).expect("state checksum")
}

/// Wait until the replica has applied what the primary shipped and both files are equal.
pub async fn caught_up(primary: &Server, replica: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (p, r) = (health(primary).await, health(replica).await);
        if !p["position"].is_null()
            && p["position"]["txid"] == r["position"]["txid"]
            && p["position"]["generation"] == r["position"]["generation"]
            && state_checksum(primary.data_dir()) == state_checksum(replica.data_dir())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica did not catch up: primary {p}, replica {r}\nreplica log:\n{}",
            replica.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Category names in a database file (opened read-only).
pub fn category_names(db: &Path) -> std::collections::HashSet<String> {
    let c =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut stmt = c.prepare("SELECT name FROM categories").expect("prepare");
    stmt.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
}

pub fn on(server: &Server, token: &str) -> Api {
    server.api(token)
}
