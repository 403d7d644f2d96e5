//! Audit on a replica. Reads happen on both nodes (playback, downloads, audit exports), and every
//! access is audited, but a replica must not write its copy of the database. So it queues each
//! event in an outbox beside the database (`<data>/replica/audit-outbox.jsonl`, appended and
//! synced before the request is answered), numbered per node, and a background task relays the
//! queue to the primary, which records each number once (`insights::relay`). When the primary
//! cannot be reached the queue waits; when this node is promoted it records the queue itself,
//! skipping what its old primary had already recorded (that row replicated here).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ReplicaError, Role};
use crate::App;
use crate::clock::Timestamp;
use crate::insights::audit::{self, Event};
use crate::insights::relay::{self, Batch, Relayed};

pub const AUDIT_PATH: &str = "/replication/v1/audit";
const OUTBOX_FILE: &str = "audit-outbox.jsonl";
/// Events per request to the primary.
const BATCH: usize = 500;

/// The primary's answer: the highest number it has recorded for this node.
#[derive(Debug, Serialize, Deserialize)]
pub struct Recorded {
    pub recorded: u64,
}

/// The first line of a rewritten outbox: numbers up to here were recorded by the primary.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acked {
    acked: u64,
}

struct Queue {
    next_seq: u64,
    acked: u64,
    pending: Vec<Relayed>,
    /// Once-per-window events already queued: (action, who, target) → when.
    recent: HashMap<(String, String, String), Timestamp>,
}

/// The queue of audit events this node saw while it could not write its database.
pub struct Outbox {
    path: PathBuf,
    node: String,
    queue: Mutex<Queue>,
    pub wake: tokio::sync::Notify,
}

impl Outbox {
    /// Read the queue left by an earlier run. `recorded` is what the local database says the
    /// primary recorded for this node (numbering continues above both).
    pub fn open(data_dir: &Path, node: &str, recorded: u64) -> Result<Outbox, ReplicaError> {
        let path = super::state::dir(data_dir).join(OUTBOX_FILE);
        let (mut acked, mut pending, mut damaged) = (0, Vec::new(), false);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                // A crash mid-append leaves the last line without its newline; it was never
                // acknowledged to anyone (that request failed). The file is rewritten without it
                // so the next append starts on a line of its own.
                damaged = !text.is_empty() && !text.ends_with('\n');
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    if let Ok(r) = serde_json::from_str::<Relayed>(line) {
                        pending.push(r);
                    } else if let Ok(a) = serde_json::from_str::<Acked>(line) {
                        acked = acked.max(a.acked);
                    } else {
                        damaged = true;
                        tracing::warn!(path = %path.display(), line = n + 1, "skipping an unreadable audit outbox line");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ReplicaError::io(path, e)),
        }
        let acked = acked.max(recorded);
        pending.retain(|r| r.seq > acked);
        let top = pending.iter().map(|r| r.seq).max().unwrap_or(0).max(acked);
        let outbox = Outbox {
            path,
            node: node.to_string(),
            queue: Mutex::new(Queue { next_seq: top + 1, acked, pending, recent: HashMap::new() }),
            wake: tokio::sync::Notify::new(),
        };
        if damaged {
            outbox.rewrite(&outbox.lock())?;
        }
        Ok(outbox)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Queue `event` durably (blocking: appends and syncs the file). Events counted once per
    /// window are queued once per window. Returns false when it was a repeat.
    pub fn push(&self, event: Event, at: Timestamp, once_within: Option<i64>) -> Result<bool, ReplicaError> {
        let mut q = self.lock();
        let key = once_within.map(|_| {
            let who = event.actor_id.map(|u| u.to_string()).unwrap_or_else(|| event.client_addr.clone());
            (event.action.to_string(), who, format!("{}:{}", event.target_type, event.target_id))
        });
        if let (Some(key), Some(window)) = (&key, once_within)
            && q.recent.get(key).is_some_and(|&seen| seen > at - window)
        {
            return Ok(false);
        }
        let r = Relayed { seq: q.next_seq, at, once_within, event };
        let mut line = serde_json::to_vec(&r)
            .map_err(|e| ReplicaError::Corrupt { path: self.path.clone(), detail: e.to_string() })?;
        line.push(b'\n');
        let io = |e| ReplicaError::io(self.path.clone(), e);
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        f.write_all(&line).map_err(io)?;
        f.sync_data().map_err(io)?;
        q.next_seq += 1;
        q.pending.push(r);
        if let (Some(key), Some(window)) = (key, once_within) {
            if q.recent.len() > 10_000 {
                q.recent.retain(|_, seen| *seen > at - window);
            }
            q.recent.insert(key, at);
        }
        drop(q);
        self.wake.notify_one();
        Ok(true)
    }

    /// The oldest queued events, at most `n`.
    fn head(&self, n: usize) -> Vec<Relayed> {
        self.lock().pending.iter().take(n).cloned().collect()
    }

    /// Drop what the primary recorded (numbers up to `recorded`) and rewrite the file atomically.
    fn ack(&self, recorded: u64) -> Result<(), ReplicaError> {
        let mut q = self.lock();
        if recorded <= q.acked {
            return Ok(());
        }
        q.acked = recorded;
        q.pending.retain(|r| r.seq > recorded);
        self.rewrite(&q)
    }

    /// Replace the file with what `q` holds: the acknowledged number, then the pending events.
    fn rewrite(&self, q: &Queue) -> Result<(), ReplicaError> {
        let mut bytes = serde_json::to_vec(&Acked { acked: q.acked }).unwrap_or_default();
        bytes.push(b'\n');
        for r in &q.pending {
            bytes.extend(serde_json::to_vec(r).unwrap_or_default());
            bytes.push(b'\n');
        }
        super::state::write_atomic(&self.path, &bytes)
    }
}

/// Record an access: in the database on a primary; queued for the primary on a replica.
/// `once_within`: count it once per person (or address) and target in that many seconds.
pub async fn record_access(app: &App, event: Event, once_within: Option<i64>) -> Result<(), ReplicaError> {
    let now = app.clock.now();
    if app.replica.accepts_writes() {
        app.db
            .write_keeping_caches(move |c| match once_within {
                Some(w) => audit::record_once_since(c, &event, now - w, now).map(|_| ()),
                None => audit::record(c, &event, now).map(|_| ()),
            })
            .await?;
        return Ok(());
    }
    let node = app.replica.clone();
    tokio::task::spawn_blocking(move || match node.audit_outbox() {
        Some(outbox) => outbox.push(event, now, once_within).map(|_| ()),
        None => Err(ReplicaError::Replication("the audit outbox is not open".into())),
    })
    .await
    .map_err(|e| ReplicaError::Replication(format!("audit task: {e}")))?
}

/// The relay: sends the queue to the primary while this node is a replica; records it locally
/// once this node is the primary. Retries with backoff; never drops an unrecorded event.
pub async fn run(app: App) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let Some(outbox) = app.replica.audit_outbox() else { return };
        if outbox.pending() == 0 {
            let _ = tokio::time::timeout(Duration::from_secs(5), outbox.wake.notified()).await;
            continue;
        }
        let batch = Batch { node: outbox.node().to_string(), events: outbox.head(BATCH) };
        let result = match app.replica.role() {
            Role::Replica => send(&app, &batch).await,
            Role::Primary => record_here(&app, batch).await,
        };
        match result.and_then(|recorded| outbox.ack(recorded)) {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                tracing::debug!(error = %e, pending = outbox.pending(), "audit events not relayed yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn send(app: &App, batch: &Batch) -> Result<u64, ReplicaError> {
    let node = &app.replica;
    let primary =
        node.primary_url().ok_or_else(|| ReplicaError::Unreachable("no primary configured".into()))?;
    let secret = node.secret().ok_or(ReplicaError::Unauthorized("no replication secret"))?.to_vec();
    let body = serde_json::to_vec(batch).map_err(|e| ReplicaError::Protocol(e.to_string()))?;
    let res = super::auth::signed(&node.http, &secret, reqwest::Method::POST, &primary, AUDIT_PATH, body)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
    if !res.status().is_success() {
        return Err(ReplicaError::Protocol(format!("{AUDIT_PATH}: HTTP {}", res.status().as_u16())));
    }
    let answer: Recorded = res.json().await.map_err(|e| ReplicaError::Protocol(e.to_string()))?;
    Ok(answer.recorded)
}

/// On the primary: record a relayed batch (also what a promoted node does with its own queue).
pub async fn record_here(app: &App, batch: Batch) -> Result<u64, ReplicaError> {
    let now = app.clock.now();
    Ok(app.db.write_keeping_caches(move |c| relay::record(c, &batch, now)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(who: &str) -> Event {
        Event::new("playback.started").addr(who).target("media", 3, "Rivers")
    }

    #[test]
    fn the_queue_survives_a_restart_and_numbering_continues_past_acknowledgements() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("open");
        assert!(outbox.push(view("10.0.0.1"), 100, Some(3600)).expect("push"));
        assert!(!outbox.push(view("10.0.0.1"), 200, Some(3600)).expect("repeat"), "one viewing per hour");
        assert!(outbox.push(view("10.0.0.2"), 200, Some(3600)).expect("push"));
        assert!(outbox.push(Event::new("media.downloaded").addr("10.0.0.1"), 300, None).expect("push"));
        drop(outbox);

        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("reopen");
        let head = outbox.head(10);
        assert_eq!(head.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(head[2].event.action, "media.downloaded");
        outbox.ack(2).expect("ack");
        drop(outbox);

        // After the acknowledgement only the third is left, and numbering goes on from 4.
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("reopen");
        assert_eq!(outbox.head(10).iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
        outbox.push(view("10.0.0.3"), 400, Some(3600)).expect("push");
        assert_eq!(outbox.head(10).last().map(|r| r.seq), Some(4));
        drop(outbox);

        // The database (replicated from the primary) may know of a later acknowledgement.
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 4).expect("reopen");
        assert_eq!(outbox.pending(), 0);
        outbox.push(view("10.0.0.4"), 500, Some(3600)).expect("push");
        assert_eq!(outbox.head(1)[0].seq, 5);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("open");
        outbox.push(view("10.0.0.1"), 100, None).expect("push");
        drop(outbox);
        let path = super::super::state::dir(dir.path()).join(OUTBOX_FILE);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"seq\":2,\"at\":1").expect("half a line");
        drop(f);
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("reopen");
        assert_eq!(outbox.pending(), 1);
        outbox.push(view("10.0.0.2"), 200, None).expect("push");
        drop(outbox);
        let outbox = Outbox::open(dir.path(), "node-aaaaaaaa", 0).expect("reopen");
        assert_eq!(outbox.head(10).iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
}
