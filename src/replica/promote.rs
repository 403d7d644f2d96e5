//! Promotion: `reelbox replica promote --data DIR`, the admin page's button, or the automatic
//! promotion after the primary has been silent for `replica.auto_promote_after_seconds`.
//!
//! With the server running, the command drops `<data>/replica/promote.request`; the server
//! watches for it (every 200 ms), promotes itself and answers in `promote.result`. Without a
//! running server (no one holds `<data>/replica/server.lock`) the command changes the state
//! file itself and the server starts as primary.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Failover, ReplicaError, Role, now_ms, state};
use crate::App;

const REQUEST_FILE: &str = "promote.request";
const RESULT_FILE: &str = "promote.result";
const LOCK_FILE: &str = "server.lock";

#[derive(Debug, Serialize, Deserialize)]
pub struct PromoteResult {
    pub request: String,
    pub epoch: Option<u64>,
    pub error: Option<String>,
}

/// Held by a running server for its lifetime (an advisory lock the command can test).
pub struct ServerLock(#[allow(dead_code)] File);

pub fn lock_server(data_dir: &Path) -> Result<ServerLock, ReplicaError> {
    let dir = state::dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| ReplicaError::io(dir.clone(), e))?;
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ReplicaError::io(path.clone(), e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| ReplicaError::io(path.clone(), std::io::Error::from(e)))?;
    Ok(ServerLock(f))
}

/// Whether a server is running on `data_dir`.
fn server_running(data_dir: &Path) -> bool {
    let path = state::dir(data_dir).join(LOCK_FILE);
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) else { return false };
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
}

/// Promote the running node and start what a primary runs.
pub async fn promote_running(app: &App, how: &str) -> Result<u64, ReplicaError> {
    let epoch = app.replica.promote(how)?;
    Ok(epoch)
}

/// In the server: act on promotion requests from the command line.
pub async fn watch_requests(app: App) {
    let dir = state::dir(app.replica.data_dir());
    let request = dir.join(REQUEST_FILE);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(id) = std::fs::read_to_string(&request) else { continue };
        let _ = std::fs::remove_file(&request);
        let result = match promote_running(&app, "promote").await {
            Ok(epoch) => PromoteResult { request: id, epoch: Some(epoch), error: None },
            Err(e) => PromoteResult { request: id, epoch: None, error: Some(e.to_string()) },
        };
        if let Err(e) = state::write_json(&dir.join(RESULT_FILE), &result) {
            tracing::error!(error = %e, "cannot answer the promotion request");
        }
    }
}

/// In the command: promote the node on `data_dir`, running or not. Returns the new epoch.
pub fn promote_data_dir(data_dir: &Path, timeout: Duration) -> Result<u64, String> {
    let dir = state::dir(data_dir);
    if !server_running(data_dir) {
        return promote_offline(data_dir).map_err(|e| e.to_string());
    }
    let id = format!("{}-{}", std::process::id(), now_ms());
    let result_path: PathBuf = dir.join(RESULT_FILE);
    let _ = std::fs::remove_file(&result_path);
    state::write_atomic(&dir.join(REQUEST_FILE), id.as_bytes()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(50));
        let Ok(bytes) = std::fs::read(&result_path) else { continue };
        let Ok(r) = serde_json::from_slice::<PromoteResult>(&bytes) else { continue };
        if r.request != id {
            continue;
        }
        return match (r.epoch, r.error) {
            (Some(epoch), _) => Ok(epoch),
            (None, Some(e)) => Err(e),
            (None, None) => Err("the server gave no answer".into()),
        };
    }
    let _ = std::fs::remove_file(dir.join(REQUEST_FILE));
    Err(format!("the running server did not answer within {} seconds", timeout.as_secs()))
}

fn promote_offline(data_dir: &Path) -> Result<u64, ReplicaError> {
    let Some(mut s) = state::load_state(data_dir)? else {
        return Err(ReplicaError::Protocol(format!(
            "{} has no replica state: is it a reelbox data directory that ran as a replica?",
            data_dir.display()
        )));
    };
    if s.role == Role::Primary {
        return Err(ReplicaError::AlreadyPrimary);
    }
    let fork = state::load_position(data_dir)?;
    let from = s.epoch;
    s.epoch += 1;
    s.role = Role::Primary;
    s.role_from_failover = true;
    s.peer = s.primary.take().or(s.peer.take());
    s.last_failover = Some(Failover {
        at_ms: now_ms(),
        from_epoch: from,
        to_epoch: s.epoch,
        how: "promote".into(),
        position: fork,
    });
    state::save_state(data_dir, &s)?;
    Ok(s.epoch)
}
