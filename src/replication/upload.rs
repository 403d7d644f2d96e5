//! The uploader: copies finished spool files to the target in order, retrying with backoff
//! while the target is unavailable (the spool keeps everything meanwhile).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::record::{self, GenerationId, parse_record_file_name};
use super::shipper::Spooled;
use super::snapshot::SNAPSHOT_EXT;
use super::target::{self, Target};
use super::{Position, ReplicationError, Status};

fn key_of(item: &Spooled) -> object_store::path::Path {
    match item {
        Spooled::Snapshot { generation, txid, .. } => target::snapshot_key(generation, *txid),
        Spooled::Record { generation, name, .. } => target::record_key(generation, name),
    }
}

async fn upload(target: &Target, item: &Spooled) -> Result<(), ReplicationError> {
    let path = match item {
        Spooled::Snapshot { path, .. } | Spooled::Record { path, .. } => path,
    };
    let bytes =
        tokio::fs::read(path).await.map_err(|source| ReplicationError::Io { path: path.clone(), source })?;
    target::put(target, &key_of(item), bytes).await
}

/// Spool files left by an earlier run that the target does not have yet, oldest first.
pub(crate) async fn leftovers(target: &Target, spool: &Path, current: &GenerationId) -> Vec<Spooled> {
    let mut out = Vec::new();
    let Ok(gens) = std::fs::read_dir(spool) else { return out };
    let mut gens: Vec<GenerationId> =
        gens.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect();
    gens.sort();
    for generation in gens.into_iter().filter(|g| g != current) {
        let dir = spool.join(generation.as_str());
        let mut items = Vec::new();
        for entry in std::fs::read_dir(dir.join("snapshots")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(txid) = name.strip_suffix(SNAPSHOT_EXT).and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                items.push((
                    txid,
                    Spooled::Snapshot { generation: generation.clone(), txid, path: entry.path() },
                ));
            } else if name.ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for entry in std::fs::read_dir(dir.join("records")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((_, last)) = parse_record_file_name(&name) {
                let committed_at_ms = std::fs::read(entry.path())
                    .ok()
                    .and_then(|b| record::decode(&b).ok())
                    .and_then(|r| r.txns.last().map(|t| t.committed_at_ms))
                    .unwrap_or(0);
                let last = Position { generation: generation.clone(), txid: last, committed_at_ms };
                items.push((
                    last.txid,
                    Spooled::Record { generation: generation.clone(), name, path: entry.path(), last },
                ));
            } else if name.ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        items.sort_by_key(|(t, i)| (*t, matches!(i, Spooled::Record { .. })));
        for (_, item) in items {
            match target::exists(target, &key_of(&item)).await {
                Ok(true) => remove_spooled(&item),
                _ => out.push(item),
            }
        }
    }
    out
}

/// Files of an old generation leave the spool once they are in the target.
fn remove_spooled(item: &Spooled) {
    let path = match item {
        Spooled::Snapshot { path, .. } | Spooled::Record { path, .. } => path,
    };
    let _ = std::fs::remove_file(path);
}

/// Without a target: the spool is the only copy (kept for a replica to follow).
pub(crate) async fn discard(mut rx: tokio::sync::mpsc::UnboundedReceiver<Spooled>) {
    while rx.recv().await.is_some() {}
}

pub(crate) async fn run(
    target: Target,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Spooled>,
    mut queue: VecDeque<Spooled>,
    status: Arc<Mutex<Status>>,
    current: Arc<Mutex<GenerationId>>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(item) => queue.push_back(item),
                None => return,
            }
        }
        while let Ok(item) = rx.try_recv() {
            queue.push_back(item);
        }
        let Some(item) = queue.front().cloned() else { continue };
        match upload(&target, &item).await {
            Ok(()) => {
                queue.pop_front();
                backoff = Duration::from_millis(200);
                let now = super::notify::now_ms();
                let is_current = current.lock().map(|g| match &item {
                    Spooled::Snapshot { generation, .. } | Spooled::Record { generation, .. } => {
                        generation == &*g
                    }
                });
                if matches!(is_current, Ok(false)) {
                    remove_spooled(&item);
                }
                if let Ok(mut s) = status.lock() {
                    s.target_error = None;
                    match &item {
                        Spooled::Record { last, .. } => {
                            let lag = (now - last.committed_at_ms).max(0);
                            metrics::histogram!("reelbox_replication_upload_lag_seconds")
                                .record(lag as f64 / 1000.0);
                            metrics::gauge!("reelbox_replication_last_uploaded_txid").set(last.txid as f64);
                            s.uploaded = Some(last.clone());
                            s.uploaded_at_ms = Some(now);
                        }
                        Spooled::Snapshot { generation, txid, .. } => {
                            s.last_snapshot = Some((generation.clone(), *txid, now));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "replication: upload to the backup target failed");
                metrics::counter!("reelbox_replication_target_failures_total").increment(1);
                if let Ok(mut s) = status.lock() {
                    if s.target_error.is_none() {
                        s.target_error_since_ms = Some(super::notify::now_ms());
                    }
                    s.target_error = Some(e.to_string());
                    s.target_failures += 1;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
