//! Copies of the blob store in the backup target: each blob as it is stored (the store's own
//! events), a reconciliation walk at start and every `backup.media_check_minutes` (which also
//! catches what a lagging or restarted server missed), a deep walk that re-hashes every copy
//! every `backup.media_verify_days`, and the expiry of blobs purged from the server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use tokio::sync::broadcast::error::RecvError;

use super::{BackupError, StatusHandle, Target, blob_key, blob_marker_key, renditions, transfer};
use crate::clock::{Clock, Timestamp};
use crate::config::BackupConfig;
use crate::db::Db;
use crate::store::{BlobStore, Sha256, StoreEvent};

const DAY: i64 = 24 * 3600;
/// How often renditions published since the last look are copied, and failed copies retried.
const RENDITION_POLL: Duration = Duration::from_secs(20);
/// Where the time of the last deep verification is kept, under the data directory.
const VERIFIED_FILE: &str = "backup/media-verified";

/// Everything the media backup works with; cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub target: Target,
    pub store: BlobStore,
    pub db: Db,
    pub data_dir: PathBuf,
    pub clock: Clock,
    pub cfg: BackupConfig,
    pub status: StatusHandle,
}

impl Ctx {
    pub fn from_app(app: &crate::App, target: Target) -> Ctx {
        let status = StatusHandle::default();
        status.update(|s| s.target = target.to_string());
        Ctx {
            target,
            store: app.store.clone(),
            db: app.db.clone(),
            data_dir: app.config.data_dir.clone(),
            clock: app.clock.clone(),
            cfg: app.config.backup.clone(),
            status,
        }
    }
}

/// What one copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// Written and read back intact.
    Written(u64),
    /// Already there with the right size.
    Present,
    /// The blob left the server before it could be copied (purged).
    Gone,
}

/// Copy one blob unless the target already has it.
pub async fn copy_blob(ctx: &Ctx, hash: &Sha256) -> Result<Copied, BackupError> {
    let key = blob_key(hash);
    let local = match ctx.store.size(hash) {
        Ok(n) => n,
        Err(crate::store::StoreError::NotFound { .. }) => return Ok(Copied::Gone),
        Err(e) => return Err(e.into()),
    };
    if transfer::size_of(&ctx.target, &key).await? == Some(local) {
        return Ok(Copied::Present);
    }
    write_blob(ctx, hash, &key).await
}

async fn write_blob(ctx: &Ctx, hash: &Sha256, key: &ObjectPath) -> Result<Copied, BackupError> {
    let path = ctx.store.path(hash);
    match transfer::upload_file(&ctx.target, &path, key, hash).await {
        Ok(n) => {
            tracing::debug!(%hash, size = n, "blob copied to the backup target");
            ctx.status.update(|s| {
                s.copied += 1;
                s.copied_bytes += n;
            });
            Ok(Copied::Written(n))
        }
        Err(BackupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Copied::Gone)
        }
        Err(e) => Err(e),
    }
}

/// What a reconciliation walk found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkReport {
    pub copied: usize,
    pub present: usize,
    /// Copies in the target that were damaged (deep walks) and were written again.
    pub repaired: usize,
    /// Blobs (and rendition manifests) first seen gone from the server: marked, kept.
    pub marked: usize,
    /// Deleted from the target after `media_keep_days`.
    pub expired: usize,
    pub failed: usize,
}

/// Compare the server's blobs and renditions with the target; copy what is missing or damaged
/// (`deep`: re-hash every copy), mark what the server no longer has, delete what has been gone
/// longer than the retention.
pub async fn reconcile(ctx: &Ctx, deep: bool) -> Result<WalkReport, BackupError> {
    let now = ctx.clock.now();
    let mut report = WalkReport::default();
    let (in_target, markers) = list_target_media(&ctx.target).await?;

    let store = ctx.store.clone();
    let local: Vec<(Sha256, u64)> = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for hash in store.walk()? {
            let hash = hash?;
            match store.size(&hash) {
                Ok(n) => out.push((hash, n)),
                Err(crate::store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<_, crate::store::StoreError>(out)
    })
    .await
    .map_err(|e| BackupError::domain(format!("walk task failed: {e}")))??;

    let behind: Vec<&(Sha256, u64)> =
        local.iter().filter(|(h, n)| in_target.get(&h.to_hex()) != Some(n)).collect();
    ctx.status.update(|s| {
        s.pending = behind.len() as u64;
        s.pending_bytes = behind.iter().map(|(_, n)| n).sum();
    });
    for (hash, size) in &local {
        let key = blob_key(hash);
        let present = in_target.get(&hash.to_hex()) == Some(size);
        let outcome = if !present {
            let r = write_blob(ctx, hash, &key).await;
            ctx.status.update(|s| {
                s.pending = s.pending.saturating_sub(1);
                s.pending_bytes = s.pending_bytes.saturating_sub(*size);
            });
            r.map(|c| (c, false))
        } else if deep {
            match transfer::hash_of(&ctx.target, &key).await {
                Ok(Some((h, n))) if h == *hash && n == *size => Ok((Copied::Present, false)),
                Ok(found) => {
                    tracing::error!(%hash, found = ?found.map(|(h, _)| h.to_hex()),
                        "the backup copy of a blob is damaged; copying it again");
                    write_blob(ctx, hash, &key).await.map(|c| (c, true))
                }
                Err(e) => Err(e),
            }
        } else {
            Ok((Copied::Present, false))
        };
        match outcome {
            Ok((Copied::Written(_), repaired)) => {
                report.copied += 1;
                if repaired {
                    report.repaired += 1;
                    ctx.status.update(|s| s.repaired += 1);
                }
            }
            Ok((Copied::Present, _)) => report.present += 1,
            Ok((Copied::Gone, _)) => {}
            Err(e) => {
                tracing::warn!(%hash, error = %e, "could not copy a blob to the backup target; trying again later");
                ctx.status.failed(now, &e);
                report.failed += 1;
            }
        }
        if let Some(marker) = markers.get(&hash.to_hex()) {
            transfer::delete(&ctx.target, marker).await?;
        }
    }

    // Rendition files are kept by hash too; while a manifest lists them they are not orphans.
    let (kept_by_renditions, r) = renditions::reconcile(ctx, &in_target, deep).await?;
    report.copied += r.copied;
    report.marked += r.marked;
    report.expired += r.expired;
    report.failed += r.failed;

    let local_set: HashSet<String> = local.iter().map(|(h, _)| h.to_hex()).collect();
    for hex in in_target.keys() {
        if local_set.contains(hex) || kept_by_renditions.contains(hex) {
            continue;
        }
        let Ok(hash) = Sha256::from_hex(hex) else { continue };
        // Still referenced by an item: the server lost its copy (see `reelbox verify`); this is
        // the one to restore from, so it never expires.
        let h = hex.clone();
        let referenced = ctx
            .db
            .read(move |c| crate::library::lifecycle::blob_referenced(c, &h).map_err(BackupError::domain))
            .await?;
        if referenced {
            continue;
        }
        match expire_or_mark(
            &ctx.target,
            &blob_key(&hash),
            &blob_marker_key(&hash),
            markers.get(hex),
            now,
            &ctx.cfg,
        )
        .await?
        {
            Retention::Marked => report.marked += 1,
            Retention::Expired => report.expired += 1,
            Retention::Kept => {}
        }
    }
    // Markers of blobs that are no longer in the target at all.
    for (hex, marker) in &markers {
        if !in_target.contains_key(hex) {
            transfer::delete(&ctx.target, marker).await?;
        }
    }
    ctx.status.update(|s| {
        s.expired += report.expired as u64;
        s.last_walk_at = Some(now);
        if deep {
            s.last_verify_at = Some(now);
        }
    });
    Ok(report)
}

pub(crate) enum Retention {
    Marked,
    Kept,
    Expired,
}

/// A thing in the target the server no longer has: note when that was first seen; delete it
/// (and the note) once it has been gone `media_keep_days`.
pub(crate) async fn expire_or_mark(
    target: &Target,
    key: &ObjectPath,
    marker_key: &ObjectPath,
    marker: Option<&ObjectPath>,
    now: Timestamp,
    cfg: &BackupConfig,
) -> Result<Retention, BackupError> {
    if marker.is_none() {
        transfer::put_bytes(target, marker_key, now.to_string().into_bytes()).await?;
        tracing::info!(%key, keep_days = cfg.media_keep_days, "gone from the server; kept in the backup target for now");
        return Ok(Retention::Marked);
    }
    let since = transfer::get_bytes(target, marker_key)
        .await?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<Timestamp>().ok());
    let Some(since) = since else {
        // An unreadable note: start the retention again rather than delete early.
        transfer::put_bytes(target, marker_key, now.to_string().into_bytes()).await?;
        return Ok(Retention::Marked);
    };
    if now - since < i64::from(cfg.media_keep_days) * DAY {
        return Ok(Retention::Kept);
    }
    transfer::delete(target, key).await?;
    transfer::delete(target, marker_key).await?;
    tracing::info!(%key, gone_since = %crate::clock::format_utc(since), "retention over; deleted from the backup target");
    Ok(Retention::Expired)
}

/// Blobs in the target (`hex` → size) and their purge markers (`hex` → key).
async fn list_target_media(
    target: &Target,
) -> Result<(HashMap<String, u64>, HashMap<String, ObjectPath>), BackupError> {
    let mut blobs = HashMap::new();
    let mut markers = HashMap::new();
    let prefix = ObjectPath::from("media");
    let mut list = target.list(Some(&prefix));
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(|e| BackupError::target("listing media/", e))?;
        let Some(name) = meta.location.filename().map(str::to_owned) else { continue };
        if let Some(hex) = name.strip_suffix(".purged") {
            markers.insert(hex.to_owned(), meta.location.clone());
        } else if Sha256::from_hex(&name).is_ok_and(|h| h.to_hex() == name) {
            blobs.insert(name, meta.size);
        }
    }
    Ok((blobs, markers))
}

/// Whether a deep walk (re-hash every copy) is due, by the time kept under the data directory.
fn deep_due(ctx: &Ctx) -> bool {
    if ctx.cfg.media_verify_days == 0 {
        return true;
    }
    let last = std::fs::read_to_string(ctx.data_dir.join(VERIFIED_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<Timestamp>().ok());
    last.is_none_or(|at| ctx.clock.now() - at >= i64::from(ctx.cfg.media_verify_days) * DAY)
}

fn note_deep_done(ctx: &Ctx) {
    let path = ctx.data_dir.join(VERIFIED_FILE);
    let write = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, ctx.clock.now().to_string()));
    if let Err(e) = write {
        tracing::warn!(path = %path.display(), error = %e, "could not note the backup verification time");
    }
}

/// The running media backup (started by `serve` when a target is configured).
pub struct MediaBackup {
    task: tokio::task::JoinHandle<()>,
    pub status: StatusHandle,
}

impl MediaBackup {
    pub fn start(ctx: Ctx) -> MediaBackup {
        let status = ctx.status.clone();
        // Subscribe before the first walk so nothing stored in between is missed.
        let events = ctx.store.subscribe();
        let task = tokio::spawn(run(ctx, events));
        MediaBackup { task, status }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn run(ctx: Ctx, mut events: tokio::sync::broadcast::Receiver<StoreEvent>) {
    let mut walk = tokio::time::interval(Duration::from_secs(u64::from(ctx.cfg.media_check_minutes) * 60));
    walk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(RENDITION_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Copies that failed (target away): retried on every poll until they succeed.
    let mut retry: BTreeMap<Sha256, u64> = BTreeMap::new();
    let mut published_since = ctx.clock.now();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(StoreEvent::Stored { hash, size }) => {
                    ctx.status.update(|s| { s.pending += 1; s.pending_bytes += size; });
                    let result = copy_blob(&ctx, &hash).await;
                    ctx.status.update(|s| {
                        s.pending = s.pending.saturating_sub(1);
                        s.pending_bytes = s.pending_bytes.saturating_sub(size);
                    });
                    if let Err(e) = result {
                        tracing::warn!(%hash, error = %e, "could not copy a new blob to the backup target; will retry");
                        ctx.status.failed(ctx.clock.now(), &e);
                        retry.insert(hash, size);
                        ctx.status.update(|s| { s.pending += 1; s.pending_bytes += size; });
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "media backup fell behind the blob store; walking it");
                    walk.reset_immediately();
                }
                Err(RecvError::Closed) => return,
            },
            _ = walk.tick() => {
                let deep = deep_due(&ctx);
                match reconcile(&ctx, deep).await {
                    Ok(report) => {
                        retry.clear();
                        if deep && report.failed == 0 {
                            note_deep_done(&ctx);
                        }
                        tracing::info!(?report, deep, "media backup walk done");
                        if report.failed == 0 {
                            // A whole walk went through: earlier failures are behind us.
                            ctx.status.update(|s| s.last_error = None);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "media backup walk failed; trying again at the next one");
                        ctx.status.failed(ctx.clock.now(), &e);
                    }
                }
            }
            _ = poll.tick() => {
                let pending: Vec<(Sha256, u64)> = retry.iter().map(|(h, n)| (*h, *n)).collect();
                for (hash, size) in &pending {
                    if copy_blob(&ctx, hash).await.is_ok() {
                        retry.remove(hash);
                        ctx.status.update(|s| {
                            s.pending = s.pending.saturating_sub(1);
                            s.pending_bytes = s.pending_bytes.saturating_sub(*size);
                        });
                    }
                }
                if !pending.is_empty() && retry.is_empty() {
                    // The target is back: a walk now catches whatever else it missed and, when it
                    // goes through, clears the dashboard's alarm (not an hour later).
                    walk.reset_immediately();
                }
                let since = published_since;
                published_since = ctx.clock.now();
                let ids = ctx.db.read(move |c| crate::transcode::published_since(c, since - 1)
                    .map_err(BackupError::domain)).await;
                match ids {
                    Ok(ids) => for id in ids {
                        if let Err(e) = renditions::sync_item(&ctx, id, None, false).await {
                            tracing::warn!(media = %id, error = %e, "could not copy renditions to the backup target");
                            ctx.status.failed(ctx.clock.now(), &e);
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "could not look up published renditions"),
                }
            }
        }
    }
}
