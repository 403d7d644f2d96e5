//! Media follow: a replica fetches every stored file its (replicated) library points at and it
//! lacks, by hash, from the primary — the blob store checks the hash before the file takes its
//! name — and reports how many bytes it is still behind; then the transcoder's published files
//! (`renditions`). Each of the two keeps its own last error (`Node::follow`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;

use super::{ReplicaError, Role, auth};
use crate::App;
use crate::store::Sha256;

pub const BLOBS_PATH: &str = "/replication/v1/blobs";

/// Run for the life of the server: on a replica, after every applied change (and every few
/// seconds), fetch what is missing. `copied` is shared with the scrub, which repairs under it.
pub async fn run(app: App, copied: Arc<tokio::sync::Mutex<super::renditions::Copied>>) {
    let mut applied = app.replica.applied.subscribe();
    let status = &app.replica.follow;
    loop {
        if app.replica.role() == Role::Replica {
            match catch_up(&app).await {
                Ok(()) => status.media.ok(),
                Err(e) => {
                    match &e {
                        ReplicaError::Unreachable(_) => {
                            tracing::debug!(error = %e, "media follow interrupted")
                        }
                        _ => tracing::warn!(error = %e, "copying media from the primary was interrupted"),
                    }
                    status.media.failed(&e);
                }
            }
            let mut copied = copied.lock().await;
            match super::renditions::follow(&app, &mut copied).await {
                Ok(_) => status.renditions.ok(),
                Err(e) => {
                    tracing::warn!(error = %e, "copying published renditions from the primary was interrupted");
                    status.renditions.failed(&e);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), applied.changed()).await;
    }
}

/// Fetch every missing file once; updates `media_bytes_behind` as it goes.
pub async fn catch_up(app: &App) -> Result<(), ReplicaError> {
    let wanted = app
        .db
        .read(|c| {
            crate::library::renditions::blobs_in_use(c).map_err(|e| ReplicaError::Replication(e.to_string()))
        })
        .await?;
    let store = app.store.clone();
    let missing: Vec<(Sha256, u64)> = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .filter_map(|(hex, size)| Sha256::from_hex(&hex).ok().map(|h| (h, size)))
            .filter(|(h, _)| !store.exists(h).unwrap_or(false))
            .collect()
    })
    .await
    .map_err(|e| ReplicaError::Replication(e.to_string()))?;
    let mut behind: u64 = missing.iter().map(|(_, s)| s).sum();
    app.replica.media_bytes_behind.store(behind, Ordering::Relaxed);
    for (hash, size) in missing {
        fetch(app, &hash).await?;
        behind = behind.saturating_sub(size);
        app.replica.media_bytes_behind.store(behind, Ordering::Relaxed);
    }
    Ok(())
}

/// Fetch one blob by hash; the store checks it, and replaces a damaged copy of it.
pub(super) async fn fetch(app: &App, hash: &Sha256) -> Result<(), ReplicaError> {
    let node = &app.replica;
    let primary = node.primary_url().ok_or(ReplicaError::Protocol("no primary configured".into()))?;
    let secret = node.secret().ok_or(ReplicaError::Unauthorized("no replication secret configured"))?;
    let pq = format!("{BLOBS_PATH}/{}", hash.to_hex());
    let res = auth::signed(&node.http, secret, reqwest::Method::GET, &primary, &pq, Vec::new())
        .send()
        .await
        .map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
    if !res.status().is_success() {
        return Err(ReplicaError::Protocol(format!("blob {}: HTTP {}", hash, res.status().as_u16())));
    }
    // Chunks go to a blocking writer through a short channel (back-pressure).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let store = app.store.clone();
    let expected = *hash;
    let writer = tokio::task::spawn_blocking(move || -> Result<(), ReplicaError> {
        let mut w = store.writer().map_err(|e| ReplicaError::Replication(e.to_string()))?;
        while let Some(chunk) = rx.blocking_recv() {
            w.write(&chunk).map_err(|e| ReplicaError::Replication(e.to_string()))?;
        }
        w.finish(Some(&expected)).map_err(|e| ReplicaError::Replication(format!("blob {expected}: {e}")))?;
        Ok(())
    });
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
        if tx.send(chunk.to_vec()).await.is_err() {
            break;
        }
    }
    drop(tx);
    writer.await.map_err(|e| ReplicaError::Replication(e.to_string()))?
}
