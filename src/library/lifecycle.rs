//! What happens to an item after it is deleted: recycled (hidden, restorable by the category's
//! managers) → archived (a permanent deletion: visible to site administrators only, restorable
//! by them, kept `library.archive_days`) → purged by the retention job, which removes the item
//! and then each blob nothing refers to any more. Every transition writes its audit event in the
//! same transaction as the change.
//!
//! Who may do what is the web layer's business (see `web::api::recycle`); these functions check
//! only that the transition makes sense for the item's status. Each runs in its own
//! `BEGIN IMMEDIATE` transaction on the connection it is given (the writer).
//!
//! Removing a blob races with dedup: an upload can be told "already stored", and the purge can
//! delete that blob before the upload commits the row that points to it. Blobs are therefore
//! removed one at a time, each in a write transaction (so no row can appear meanwhile, in this
//! process or another), under the store's per-hash commit turn (so no upload of that content
//! is being committed), and only when the store has not handed the hash out within
//! [`HANDED_OUT_GRACE`] — far longer than the one database write between a store commit and
//! its row. A blob kept for that reason stays queued in `blob_removals` for the next run.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::LibraryError;
use super::media::{self, MediaItem, MediaStatus};
use crate::accounts::login::Actor;
use crate::clock::Timestamp;
use crate::db::ids::MediaId;
use crate::insights::audit::{self, Event};
use crate::store::{BlobStore, Removal, Sha256};

pub const DAY: i64 = 24 * 3600;
/// How long after the store answered an upload for a hash its blob is safe from removal.
pub const HANDED_OUT_GRACE: Duration = Duration::from_secs(3600);
/// Who the audit trail names for what the retention job does.
const RETENTION: &str = "retention job";

fn immediate(conn: &Connection) -> Result<Transaction<'_>, LibraryError> {
    Ok(Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?)
}

/// Move an item into the recycle bin: hidden from everyone but the category's managers and
/// administrators.
pub fn recycle(
    conn: &Connection,
    id: MediaId,
    actor: &Actor,
    now: Timestamp,
) -> Result<MediaItem, LibraryError> {
    let tx = immediate(conn)?;
    let item = media::require(&tx, id)?;
    match item.status {
        MediaStatus::Processing | MediaStatus::Ready => {}
        MediaStatus::Recycled => {
            return Err(LibraryError::WrongStatus("the item is already in the recycle bin"));
        }
        MediaStatus::Archived => return Err(LibraryError::WrongStatus("the item has already been deleted")),
        MediaStatus::Uploading | MediaStatus::Failed => {
            return Err(LibraryError::WrongStatus("an unfinished upload is cancelled, not recycled"));
        }
    }
    tx.execute(
        "UPDATE media_items SET status = 'recycled', status_before_recycle = ?2, recycled_at = ?3,
                                archived_at = NULL, updated_at = ?3
         WHERE id = ?1",
        params![id, item.status, now],
    )?;
    audit::record(&tx, &actor.event("media.recycled").target("media", id, &item.title), now)?;
    let item = media::require(&tx, id)?;
    tx.commit()?;
    Ok(item)
}

/// Delete permanently, from the recycle bin: the item is archived, visible to administrators
/// only, and purged `archive_days` later.
pub fn archive(
    conn: &Connection,
    id: MediaId,
    actor: &Actor,
    now: Timestamp,
) -> Result<MediaItem, LibraryError> {
    let tx = immediate(conn)?;
    let item = media::require(&tx, id)?;
    match item.status {
        MediaStatus::Recycled => {}
        MediaStatus::Archived => return Err(LibraryError::WrongStatus("the item has already been deleted")),
        _ => {
            return Err(LibraryError::WrongStatus(
                "only items in the recycle bin can be deleted permanently",
            ));
        }
    }
    tx.execute(
        "UPDATE media_items SET status = 'archived', archived_at = ?2, updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    audit::record(&tx, &actor.event("media.archived").target("media", id, &item.title), now)?;
    let item = media::require(&tx, id)?;
    tx.commit()?;
    Ok(item)
}

/// Put a recycled or archived item back as it was before it was recycled.
pub fn restore(
    conn: &Connection,
    id: MediaId,
    actor: &Actor,
    now: Timestamp,
) -> Result<MediaItem, LibraryError> {
    let tx = immediate(conn)?;
    let item = media::require(&tx, id)?;
    let from = match item.status {
        MediaStatus::Recycled => "from the recycle bin",
        MediaStatus::Archived => "from the archive",
        _ => return Err(LibraryError::WrongStatus("the item is not deleted")),
    };
    let before: Option<MediaStatus> =
        tx.query_row("SELECT status_before_recycle FROM media_items WHERE id = ?1", [id], |r| r.get(0))?;
    let back = before.or_else(|| item.kind.map(|k| k.status_when_stored())).unwrap_or(MediaStatus::Ready);
    tx.execute(
        "UPDATE media_items SET status = ?2, status_before_recycle = NULL, recycled_at = NULL,
                                archived_at = NULL, updated_at = ?3
         WHERE id = ?1",
        params![id, back, now],
    )?;
    audit::record(&tx, &actor.event("media.restored").target("media", id, &item.title).detail(from), now)?;
    let item = media::require(&tx, id)?;
    tx.commit()?;
    Ok(item)
}

/// Recycled or archived items, most recently deleted first.
pub fn list(conn: &Connection, status: MediaStatus, limit: u32) -> Result<Vec<MediaItem>, LibraryError> {
    if !matches!(status, MediaStatus::Recycled | MediaStatus::Archived) {
        return Err(LibraryError::WrongStatus("only the recycle bin and the archive are listed here"));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM media_items WHERE status = ?1
         ORDER BY COALESCE(archived_at, recycled_at) DESC, id DESC LIMIT ?2",
    )?;
    let ids: Vec<MediaId> =
        stmt.query_map(params![status, limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
    ids.into_iter().map(|id| media::require(conn, id)).collect()
}

/// When an archived item becomes due for the purge.
pub fn purge_due_at(item: &MediaItem, archive_days: u32) -> Option<Timestamp> {
    match item.status {
        MediaStatus::Archived => item.archived_at.map(|at| at + i64::from(archive_days) * DAY),
        _ => None,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub items_purged: usize,
    pub blobs_removed: usize,
    /// Still referenced: dropped from the queue, kept in the store.
    pub blobs_still_used: usize,
    /// Handed out to an upload very recently, or the removal failed: queued for the next run.
    pub blobs_deferred: usize,
    /// The items purged (their renditions under `<data>/media/<id>/` go with them).
    pub purged: Vec<MediaId>,
}

/// Does any row point to this blob (an item's original, in any status, or a rendition)?
pub fn blob_referenced(conn: &Connection, sha256: &str) -> Result<bool, LibraryError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM media_items WHERE sha256 = ?1)
             OR EXISTS (SELECT 1 FROM renditions WHERE sha256 = ?1)",
        [sha256],
        |r| r.get(0),
    )?)
}

/// The retention job: delete archived items archived at least `archive_days` ago, then remove
/// each blob that nothing refers to any more. `grace` is [`HANDED_OUT_GRACE`] outside tests.
pub fn purge(
    conn: &Connection,
    store: &BlobStore,
    now: Timestamp,
    archive_days: u32,
    grace: Duration,
) -> Result<PurgeReport, LibraryError> {
    let mut report = PurgeReport::default();
    let cutoff = now - i64::from(archive_days) * DAY;
    {
        let tx = immediate(conn)?;
        let due: Vec<MediaId> = tx
            .prepare(
                "SELECT id FROM media_items WHERE status = 'archived' AND archived_at <= ?1 ORDER BY id",
            )?
            .query_map([cutoff], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in due {
            let item = media::require(&tx, id)?;
            let mut hashes: Vec<String> = tx
                .prepare("SELECT sha256 FROM renditions WHERE media_id = ?1")?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            hashes.extend(item.sha256.clone());
            tx.execute("DELETE FROM media_items WHERE id = ?1", [id])?;
            for h in &hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO blob_removals (sha256, queued_at) VALUES (?1, ?2)",
                    params![h, now],
                )?;
            }
            let archived = item.archived_at.map(crate::clock::format_utc).unwrap_or_default();
            let event = Event::new("media.purged")
                .actor(None, RETENTION)
                .target("media", id, &item.title)
                .detail(format!(
                    "archived {archived}, kept {archive_days} days; sha256 {}",
                    item.sha256.as_deref().unwrap_or("")
                ));
            audit::record(&tx, &event, now)?;
            report.items_purged += 1;
            report.purged.push(id);
        }
        tx.commit()?;
    }

    let queued: Vec<String> = conn
        .prepare("SELECT sha256 FROM blob_removals ORDER BY queued_at, sha256")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for hex in queued {
        let tx = immediate(conn)?;
        let Ok(hash) = Sha256::from_hex(&hex) else {
            tracing::warn!(sha256 = %hex, "not a hash in the blob removal queue; dropped");
            tx.execute("DELETE FROM blob_removals WHERE sha256 = ?1", [&hex])?;
            tx.commit()?;
            continue;
        };
        let mut db_error = None;
        let outcome = store.remove_unreferenced(&hash, grace, || match blob_referenced(&tx, &hex) {
            Ok(used) => Ok(used),
            Err(e) => {
                db_error = Some(e);
                Ok(true) // unsure: keep it
            }
        });
        if let Some(e) = db_error {
            return Err(e);
        }
        match outcome {
            Ok(Removal::Referenced) => report.blobs_still_used += 1,
            Ok(Removal::RecentlyHandedOut) => {
                report.blobs_deferred += 1;
                continue; // stays queued; the transaction rolls back on drop
            }
            Ok(removal @ (Removal::Removed | Removal::Absent)) => {
                let detail =
                    if removal == Removal::Removed { "no item refers to it" } else { "was already gone" };
                let event = Event::new("blob.removed")
                    .actor(None, RETENTION)
                    .target("blob", &hex, &hex)
                    .detail(detail);
                audit::record(&tx, &event, now)?;
                if removal == Removal::Removed {
                    report.blobs_removed += 1;
                }
            }
            Err(e) => {
                tracing::warn!(sha256 = %hex, error = %e, "could not remove a blob; trying again next run");
                report.blobs_deferred += 1;
                continue;
            }
        }
        tx.execute("DELETE FROM blob_removals WHERE sha256 = ?1", [&hex])?;
        tx.commit()?;
    }
    Ok(report)
}

/// Run the retention job with the server's clock and settings (from the housekeeping task).
pub async fn purge_due(app: &crate::App) -> Result<PurgeReport, LibraryError> {
    let (store, now, days) = (app.store.clone(), app.clock.now(), app.config.library.archive_days);
    let report = app.db.write(move |c| purge(c, &store, now, days, HANDED_OUT_GRACE)).await?;
    let (data, ids) = (app.config.data_dir.clone(), report.purged.clone());
    let _ = tokio::task::spawn_blocking(move || {
        for id in ids {
            if let Err(e) = crate::transcode::job::remove_media_dir(&data, id) {
                tracing::warn!(media = %id, error = %e, "could not remove a purged item's renditions");
            }
        }
    })
    .await;
    Ok(report)
}

/// Blobs waiting for removal (tests, `reelbox doctor`).
pub fn queued_removals(conn: &Connection) -> Result<Vec<String>, LibraryError> {
    Ok(conn
        .prepare("SELECT sha256 FROM blob_removals ORDER BY sha256")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// An item's status, without loading it (`None`: no such item, e.g. purged).
pub fn status_of(conn: &Connection, id: MediaId) -> Result<Option<MediaStatus>, LibraryError> {
    Ok(conn.query_row("SELECT status FROM media_items WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::db::Db;
    use crate::db::ids::CategoryId;
    use crate::library::categories::{self, NewCategory};
    use crate::library::media::{MediaKind, NewMedia, StoredContent};

    struct Fx {
        _dir: tempfile::TempDir,
        db: Db,
        store: BlobStore,
        cat: CategoryId,
        clock: Clock,
    }

    fn setup() -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let store = BlobStore::open(dir.path()).expect("store");
        let cat = db
            .write_blocking(|c| {
                categories::create(
                    c,
                    NewCategory { name: "Science", parent_id: None, description: "", public: false },
                    1,
                )
            })
            .expect("category");
        Fx { _dir: dir, db, store, cat: cat.id, clock: Clock::manual(1_000_000) }
    }

    fn teacher() -> Actor {
        Actor { id: None, name: "teacher".into(), addr: "127.0.0.1".into() }
    }

    impl Fx {
        /// Store `bytes` and make an item pointing to them.
        fn item(&self, bytes: &[u8], kind: MediaKind) -> (MediaItem, Sha256) {
            let stored = self.store.put_bytes(bytes, None).expect("stored");
            let content = StoredContent {
                kind,
                mime: "image/png".into(),
                size: stored.size,
                sha256: stored.hash.to_hex(),
            };
            let now = self.clock.now();
            let item = self
                .db
                .write_blocking(|c| {
                    media::create(
                        c,
                        NewMedia {
                            category_id: self.cat,
                            owner_id: None,
                            title: "Lesson",
                            filename: "a.png",
                            content: Some(content),
                        },
                        now,
                    )
                })
                .expect("item");
            (item, stored.hash)
        }

        fn recycle_and_archive(&self, id: MediaId) {
            let now = self.clock.now();
            self.db.write_blocking(|c| recycle(c, id, &teacher(), now)).expect("recycled");
            self.db.write_blocking(|c| archive(c, id, &teacher(), now)).expect("archived");
        }

        fn purge(&self, days: u32, grace: Duration) -> PurgeReport {
            let now = self.clock.now();
            self.db.write_blocking(|c| purge(c, &self.store, now, days, grace)).expect("purge")
        }

        fn actions(&self) -> Vec<String> {
            self.db
                .read_blocking(|c| {
                    audit::list(c, &audit::Filter { limit: 100, ..Default::default() })
                        .map(|l| l.into_iter().rev().map(|e| e.action).collect::<Vec<_>>())
                })
                .expect("audit")
        }
    }

    #[test]
    fn recycle_archive_restore_round_trip_with_audit() {
        let fx = setup();
        let (video, _) = fx.item(b"video bytes", MediaKind::Video);
        assert_eq!(video.status, MediaStatus::Processing);
        let now = fx.clock.now();
        let r = fx.db.write_blocking(|c| recycle(c, video.id, &teacher(), now)).expect("recycle");
        assert_eq!((r.status, r.recycled_at), (MediaStatus::Recycled, Some(now)));
        let again = fx.db.write_blocking(|c| recycle(c, video.id, &teacher(), now));
        assert!(matches!(again, Err(LibraryError::WrongStatus(_))), "{again:?}");
        assert_eq!(fx.db.read_blocking(|c| list(c, MediaStatus::Recycled, 10)).expect("bin").len(), 1);

        let back = fx.db.write_blocking(|c| restore(c, video.id, &teacher(), now)).expect("restore");
        assert_eq!((back.status, back.recycled_at), (MediaStatus::Processing, None), "back as it was");
        let direct = fx.db.write_blocking(|c| archive(c, video.id, &teacher(), now));
        assert!(matches!(direct, Err(LibraryError::WrongStatus(_))), "archive only from the bin");

        fx.recycle_and_archive(video.id);
        let archived = fx.db.read_blocking(|c| media::require(c, video.id)).expect("item");
        assert_eq!(archived.status, MediaStatus::Archived);
        assert_eq!(purge_due_at(&archived, 90), Some(now + 90 * DAY));
        assert!(fx.db.read_blocking(|c| list(c, MediaStatus::Recycled, 10)).expect("bin").is_empty());
        assert_eq!(fx.db.read_blocking(|c| list(c, MediaStatus::Archived, 10)).expect("archive").len(), 1);
        let back = fx.db.write_blocking(|c| restore(c, video.id, &teacher(), now)).expect("restore");
        assert_eq!(back.status, MediaStatus::Processing);
        assert_eq!(back.archived_at, None);
        let not_deleted = fx.db.write_blocking(|c| restore(c, video.id, &teacher(), now));
        assert!(matches!(not_deleted, Err(LibraryError::WrongStatus(_))));
        assert_eq!(
            fx.actions(),
            ["media.recycled", "media.restored", "media.recycled", "media.archived", "media.restored"]
        );
        let missing = fx.db.write_blocking(|c| recycle(c, MediaId(999), &teacher(), now));
        assert!(matches!(missing, Err(LibraryError::NotFound(_))));
    }

    #[test]
    fn archived_items_purge_after_retention_and_shared_blobs_survive() {
        let fx = setup();
        let (a, hash) = fx.item(b"shared bytes", MediaKind::Image);
        let (b, same) = fx.item(b"shared bytes", MediaKind::Image);
        assert_eq!(hash, same, "dedup");
        fx.recycle_and_archive(a.id);

        fx.clock.advance(30 * DAY - 1);
        assert_eq!(fx.purge(30, Duration::ZERO), PurgeReport::default(), "not before archive_days");
        assert_eq!(fx.db.read_blocking(|c| status_of(c, a.id)).expect("status"), Some(MediaStatus::Archived));

        fx.clock.advance(1);
        let report = fx.purge(30, Duration::ZERO);
        assert_eq!(report.items_purged, 1);
        assert_eq!(report.blobs_still_used, 1, "b still points to the blob");
        assert_eq!(report.blobs_removed, 0);
        assert_eq!(fx.db.read_blocking(|c| status_of(c, a.id)).expect("status"), None);
        assert!(fx.store.exists(&hash).expect("exists"), "shared blob survives");
        assert!(fx.db.read_blocking(queued_removals).expect("queue").is_empty());

        fx.recycle_and_archive(b.id);
        fx.clock.advance(30 * DAY);
        let report = fx.purge(30, Duration::ZERO);
        assert_eq!((report.items_purged, report.blobs_removed), (1, 1));
        assert!(!fx.store.exists(&hash).expect("exists"), "last reference gone: blob removed");
        let actions = fx.actions();
        assert_eq!(actions.iter().filter(|a| *a == "media.purged").count(), 2);
        assert_eq!(actions.last().map(String::as_str), Some("blob.removed"));
    }

    #[test]
    fn a_blob_just_handed_out_to_an_upload_is_not_removed() {
        let fx = setup();
        let (a, hash) = fx.item(b"lesson", MediaKind::Image);
        fx.recycle_and_archive(a.id);
        fx.clock.advance(DAY);
        // An upload of the same content is told "already stored" (it has not written its row).
        let dedup = fx.store.put_bytes(b"lesson", None).expect("stored");
        assert!(dedup.deduplicated);
        let report = fx.purge(1, HANDED_OUT_GRACE);
        assert_eq!((report.items_purged, report.blobs_deferred, report.blobs_removed), (1, 1, 0));
        assert!(fx.store.exists(&hash).expect("exists"), "kept for the upload in flight");
        assert_eq!(fx.db.read_blocking(queued_removals).expect("queue"), vec![hash.to_hex()]);

        // The upload commits its row; later runs find the reference and drop the blob from the queue.
        let (c, _) = fx.item(b"lesson", MediaKind::Image);
        let report = fx.purge(1, Duration::ZERO);
        assert_eq!((report.blobs_still_used, report.blobs_removed), (1, 0));
        assert!(fx.store.exists(&hash).expect("exists"));
        assert!(fx.db.read_blocking(queued_removals).expect("queue").is_empty());
        assert_eq!(fx.db.read_blocking(|c2| status_of(c2, c.id)).expect("status"), Some(MediaStatus::Ready));
    }
}
