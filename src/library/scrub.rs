//! The integrity scrub: re-hash every blob, report each one that is missing or no longer
//! matches its name, and mark the media items that point to it. Run by `reelbox verify` and,
//! weekly, by the server's housekeeping. Owns the tables `scrubs` and `media_damage`.
//!
//! A damaged item keeps its status (ready, recycled, archived...): the mark lives beside it in
//! `media_damage`, so restoring the blob from a backup and scrubbing again clears the mark
//! without anyone having to remember what the item's status was. Status `failed` would also
//! have been wrong: it means "the upload never completed", and unfinished items are removed —
//! together with the only record of which bytes to restore.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};

use crate::App;
use crate::clock::{Clock, Timestamp};
use crate::db::ids::{MediaId, UserId};
use crate::db::{Db, DbError};
use crate::insights::audit::{self, Event, Outcome};
use crate::store::{BlobStore, Sha256, StoreError};

/// How often the server scrubs by itself.
pub const INTERVAL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot list the blob store: {0}")]
    Store(#[from] StoreError),
    #[error("the scrub was stopped before it finished")]
    Cancelled,
}

impl From<rusqlite::Error> for ScrubError {
    fn from(e: rusqlite::Error) -> Self {
        ScrubError::Db(DbError::Sqlite(e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `reelbox verify`
    Command,
    /// The weekly job in `reelbox serve`.
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Command => "command",
            Trigger::Schedule => "schedule",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No file where the blob should be.
    Missing,
    /// The bytes on disk hash to something else.
    Corrupt,
    /// The file is there but could not be read (I/O error, permissions).
    Unreadable,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub hash: Sha256,
    pub kind: ProblemKind,
    pub detail: String,
    /// The items whose original this blob is (none for a blob nothing points to).
    pub items: Vec<MediaId>,
}

/// One blob checked, for progress output.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Bytes hashed so far, over all blobs.
    pub bytes: u64,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scrub_id: i64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub blobs: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub items_marked: u64,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
    fn count(&self, kind: ProblemKind) -> i64 {
        self.problems.iter().filter(|p| p.kind == kind).count() as i64
    }
}

/// What the dashboard shows about the most recent scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub started_at: Timestamp,
    /// `None`: interrupted before it finished.
    pub finished_at: Option<Timestamp>,
    pub blobs: i64,
    pub problems: i64,
}

/// Scrub the whole store now. `cancel` is checked between blobs; `progress` is called after each.
pub fn run(
    db: &Db,
    store: &BlobStore,
    clock: &Clock,
    trigger: Trigger,
    actor: (Option<UserId>, &str),
    cancel: &AtomicBool,
    mut progress: impl FnMut(Progress),
) -> Result<Report, ScrubError> {
    let started_at = clock.now();
    let scrub_id = db.write_blocking(|c| {
        c.execute(
            "INSERT INTO scrubs (trigger, started_at) VALUES (?1, ?2)",
            params![trigger.as_str(), started_at],
        )?;
        Ok::<_, ScrubError>(c.last_insert_rowid())
    })?;

    // Every blob an item points to, and every blob on disk (derived or unreferenced ones too).
    let mut targets: BTreeMap<Sha256, Vec<MediaId>> = db.read_blocking(referenced)?;
    for hash in store.walk()? {
        targets.entry(hash?).or_default();
    }

    let total = targets.len();
    let clock_start = Instant::now();
    let (mut bytes, mut problems) = (0u64, Vec::new());
    for (done, (hash, items)) in targets.into_iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(ScrubError::Cancelled);
        }
        match check(store, &hash) {
            Ok(size) => bytes += size,
            Err((kind, detail)) => problems.push(Problem { hash, kind, detail, items }),
        }
        progress(Progress {
            done: done + 1,
            total,
            bytes,
            elapsed_seconds: clock_start.elapsed().as_secs_f64(),
        });
    }

    let mut report = Report {
        scrub_id,
        started_at,
        finished_at: clock.now(),
        blobs: total as u64,
        bytes,
        problems,
        items_marked: 0,
    };
    db.write_blocking(|c| record(c, &mut report, actor))?;
    Ok(report)
}

/// Hash the blob from disk: its size when intact, otherwise what is wrong.
fn check(store: &BlobStore, hash: &Sha256) -> Result<u64, (ProblemKind, String)> {
    let size = match store.size(hash) {
        Ok(size) => size,
        Err(StoreError::NotFound { .. }) => {
            return Err((ProblemKind::Missing, "no file in the blob store".into()));
        }
        Err(e) => return Err((ProblemKind::Unreadable, e.to_string())),
    };
    match store.verify(hash) {
        Ok(true) => Ok(size),
        Ok(false) => Err((ProblemKind::Corrupt, "its bytes no longer hash to its name".into())),
        Err(StoreError::NotFound { .. }) => Err((ProblemKind::Missing, "no file in the blob store".into())),
        Err(e) => Err((ProblemKind::Unreadable, e.to_string())),
    }
}

/// Hash → items, for every item whose original should be in the store.
fn referenced(conn: &Connection) -> Result<BTreeMap<Sha256, Vec<MediaId>>, ScrubError> {
    let mut stmt = conn.prepare(
        "SELECT id, sha256 FROM media_items
         WHERE sha256 IS NOT NULL AND status IN ('processing', 'ready', 'recycled', 'archived')
         ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, MediaId>(0)?, r.get::<_, String>(1)?)))?;
    let mut out: BTreeMap<Sha256, Vec<MediaId>> = BTreeMap::new();
    for row in rows {
        let (id, hex) = row?;
        match Sha256::from_hex(&hex) {
            Ok(hash) => out.entry(hash).or_default().push(id),
            Err(e) => tracing::warn!(media_id = %id, error = %e, "media item has an invalid hash; skipped"),
        }
    }
    Ok(out)
}

/// Finish the scrub row, mark damaged items (and clear marks of items now intact), audit — one
/// transaction, so the dashboard never shows counts that disagree with the marks.
fn record(
    conn: &mut Connection,
    report: &mut Report,
    actor: (Option<UserId>, &str),
) -> Result<(), ScrubError> {
    let tx = conn.transaction()?;
    let mut marked = 0u64;
    for p in &mut report.problems {
        // Items purged while the scrub ran took their blob with them; they are not damaged.
        let mut still = Vec::new();
        for id in &p.items {
            let n = tx.execute(
                "INSERT INTO media_damage (media_id, problem, sha256, detail, detected_at, scrub_id)
                 SELECT id, ?2, sha256, ?3, ?4, ?5 FROM media_items
                 WHERE id = ?1 AND sha256 = ?6 AND status IN ('processing', 'ready', 'recycled', 'archived')
                 ON CONFLICT (media_id) DO UPDATE
                 SET problem = excluded.problem, detail = excluded.detail, scrub_id = excluded.scrub_id",
                params![id, p.kind.as_str(), p.detail, report.finished_at, report.scrub_id, p.hash.to_hex()],
            )?;
            if n > 0 {
                still.push(*id);
            }
        }
        marked += still.len() as u64;
        p.items = still;
    }
    // A referenced blob that vanished only because its items were purged meanwhile is no problem.
    report.problems.retain(|p| p.kind != ProblemKind::Missing || !p.items.is_empty());
    report.items_marked = marked;
    // Every other item was found intact (or is no longer in the store's care): unmark it.
    tx.execute("DELETE FROM media_damage WHERE scrub_id != ?1", [report.scrub_id])?;
    tx.execute(
        "UPDATE scrubs SET finished_at = ?2, blobs = ?3, bytes = ?4, missing = ?5, corrupt = ?6,
                           unreadable = ?7, items_marked = ?8
         WHERE id = ?1",
        params![
            report.scrub_id,
            report.finished_at,
            report.blobs as i64,
            report.bytes as i64,
            report.count(ProblemKind::Missing),
            report.count(ProblemKind::Corrupt),
            report.count(ProblemKind::Unreadable),
            marked as i64
        ],
    )?;
    let detail = format!(
        "{} blobs, {} bytes checked; {} missing, {} corrupt, {} unreadable; {} items marked damaged",
        report.blobs,
        report.bytes,
        report.count(ProblemKind::Missing),
        report.count(ProblemKind::Corrupt),
        report.count(ProblemKind::Unreadable),
        marked
    );
    let event = Event::new("scrub.completed")
        .actor(actor.0, actor.1)
        .target("scrub", report.scrub_id, "blob store")
        .outcome(if report.is_clean() { Outcome::Success } else { Outcome::Failure })
        .detail(detail);
    audit::record(&tx, &event, report.finished_at)?;
    tx.commit()?;
    Ok(())
}

/// The most recent scrub, finished or not.
pub fn last(conn: &Connection) -> Result<Option<Summary>, DbError> {
    Ok(conn
        .query_row(
            "SELECT started_at, finished_at, blobs, missing + corrupt + unreadable
             FROM scrubs ORDER BY started_at DESC, id DESC LIMIT 1",
            [],
            |r| {
                Ok(Summary {
                    started_at: r.get(0)?,
                    finished_at: r.get(1)?,
                    blobs: r.get(2)?,
                    problems: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Whether the weekly scrub is due: a week after the last one started (by any trigger; an
/// interrupted one counts, so restarts never bring it forward).
pub fn due(conn: &Connection, now: Timestamp) -> Result<bool, DbError> {
    let last: Option<Timestamp> = conn.query_row("SELECT MAX(started_at) FROM scrubs", [], |r| r.get(0))?;
    Ok(last.is_none_or(|t| now - t >= INTERVAL_SECONDS))
}

/// (problem, hash) when the item is marked damaged.
pub fn damage(conn: &Connection, id: MediaId) -> Result<Option<(String, String)>, DbError> {
    Ok(conn
        .query_row("SELECT problem, sha256 FROM media_damage WHERE media_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// A damage mark as people see it (the item page, `GET /api/v1/media/{id}`): since when the
/// scrub has found the item's stored copy damaged, and what is wrong in words. The scrub's own
/// detail stays in the audit trail and the command's output: it may name paths on the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// When a scrub first found the problem (Unix seconds, UTC); later scrubs keep it.
    pub since: Timestamp,
    /// `missing`, `corrupt` or `unreadable`.
    pub problem: String,
    pub detail: String,
}

/// The item's damage mark, if the last scrub found its original damaged.
pub fn damaged(conn: &Connection, id: MediaId) -> Result<Option<Damage>, DbError> {
    Ok(conn
        .query_row("SELECT problem, detected_at FROM media_damage WHERE media_id = ?1", [id], |r| {
            let problem: String = r.get(0)?;
            let detail = match problem.as_str() {
                "missing" => "The stored copy of the original file is missing.",
                "corrupt" => "The stored copy of the original file no longer matches its SHA-256 checksum.",
                _ => "The stored copy of the original file could not be read.",
            };
            Ok(Damage { since: r.get(1)?, problem, detail: detail.into() })
        })
        .optional()?)
}

/// The weekly scrub inside `reelbox serve`: `poll` starts one when due and none is running;
/// dropping this stops a running scrub between two blobs (so shutdown does not wait for it).
#[derive(Default)]
pub struct Weekly {
    running: Option<(tokio::task::JoinHandle<()>, Arc<AtomicBool>)>,
}

impl Weekly {
    pub fn poll(&mut self, app: &App) {
        if self.running.as_ref().is_some_and(|(h, _)| !h.is_finished()) {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (app, stop) = (app.clone(), cancel.clone());
        let handle = tokio::spawn(async move {
            let now = app.clock.now();
            match app.db.read(move |c| due(c, now)).await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => return tracing::warn!(error = %e, "cannot tell whether the weekly scrub is due"),
            }
            tracing::info!("weekly integrity scrub started");
            let result = tokio::task::spawn_blocking(move || {
                run(&app.db, &app.store, &app.clock, Trigger::Schedule, (None, "system"), &stop, |_| {})
            })
            .await;
            match result {
                Ok(Ok(r)) if r.is_clean() => {
                    tracing::info!(blobs = r.blobs, bytes = r.bytes, "weekly integrity scrub: all intact")
                }
                Ok(Ok(r)) => tracing::error!(
                    blobs = r.blobs,
                    problems = r.problems.len(),
                    items = r.items_marked,
                    "weekly integrity scrub found damaged blobs; run `reelbox verify` for the list and restore them from a backup"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "weekly integrity scrub failed"),
                Err(e) => tracing::warn!(error = %e, "weekly integrity scrub task failed"),
            }
        });
        self.running = Some((handle, cancel));
    }
}

impl Drop for Weekly {
    fn drop(&mut self) {
        if let Some((handle, cancel)) = self.running.take() {
            cancel.store(true, Ordering::Relaxed);
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;
    use crate::db::ids::CategoryId;
    use crate::library::categories::{self, NewCategory};
    use crate::library::media::{self, MediaKind, NewMedia, StoredContent};

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        store: BlobStore,
        clock: Clock,
        category: CategoryId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let store = BlobStore::open(dir.path()).expect("store");
        let category = db
            .write_blocking(|c| {
                categories::create(
                    c,
                    NewCategory { name: "Science", parent_id: None, description: "", public: false },
                    1,
                )
            })
            .expect("category")
            .id;
        Fixture { _dir: dir, db, store, clock: Clock::manual(1_000_000), category }
    }

    impl Fixture {
        /// Store `bytes` and create an item pointing to them.
        fn item(&self, bytes: &[u8]) -> (MediaId, Sha256) {
            let stored = self.store.put_bytes(bytes, None).expect("stored");
            let content = StoredContent {
                kind: MediaKind::Document,
                mime: "application/pdf".into(),
                size: stored.size,
                sha256: stored.hash.to_hex(),
            };
            let item = self
                .db
                .write_blocking(|c| {
                    media::create(
                        c,
                        NewMedia {
                            category_id: self.category,
                            owner_id: None,
                            title: "",
                            filename: "notes.pdf",
                            content: Some(content),
                        },
                        self.clock.now(),
                    )
                })
                .expect("item");
            (item.id, stored.hash)
        }

        fn scrub(&self) -> Report {
            let never = AtomicBool::new(false);
            let mut seen = Vec::new();
            let report =
                run(&self.db, &self.store, &self.clock, Trigger::Command, (None, "test"), &never, |p| {
                    seen.push(p)
                })
                .expect("scrub runs");
            assert_eq!(seen.len() as u64, report.blobs, "progress after every blob");
            assert!(seen.iter().enumerate().all(|(i, p)| p.done == i + 1 && p.total == seen.len()));
            report
        }

        fn damage(&self, id: MediaId) -> Option<(String, String)> {
            self.db.read_blocking(|c| damage(c, id)).expect("damage")
        }

        fn audit_details(&self) -> Vec<(String, String)> {
            self.db
                .read_blocking(|c| {
                    let mut s = c.prepare(
                        "SELECT outcome, detail FROM audit_events WHERE action = 'scrub.completed' ORDER BY id",
                    )?;
                    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
                })
                .expect("audit")
        }
    }

    #[test]
    fn a_clean_store_is_reported_clean() {
        let f = fixture();
        let (a, _) = f.item(b"%PDF-1.7 first");
        let (b, _) = f.item(b"%PDF-1.7 second, a little longer");
        f.item(b"%PDF-1.7 first"); // dedup: one blob, two items
        let report = f.scrub();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.blobs, 2);
        assert_eq!(
            report.bytes,
            (b"%PDF-1.7 first".len() + b"%PDF-1.7 second, a little longer".len()) as u64
        );
        assert_eq!(report.items_marked, 0);
        assert_eq!(f.damage(a), None);
        assert_eq!(f.damage(b), None);
        let last = f.db.read_blocking(last).expect("last").expect("a scrub is recorded");
        assert_eq!(
            last,
            Summary { started_at: 1_000_000, finished_at: Some(1_000_000), blobs: 2, problems: 0 }
        );
        let audit = f.audit_details();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].0, "success");
        assert!(audit[0].1.contains("2 blobs") && audit[0].1.contains("0 missing"), "{audit:?}");
    }

    #[test]
    fn a_flipped_byte_and_a_deleted_blob_are_reported_and_marked_until_restored() {
        let f = fixture();
        let good = b"%PDF-1.7 intact".to_vec();
        let rotten = b"%PDF-1.7 this one rots on disk".to_vec();
        let lost = b"%PDF-1.7 this one is deleted".to_vec();
        let (ok_id, _) = f.item(&good);
        let (rot_id, rot_hash) = f.item(&rotten);
        let (lost_id, lost_hash) = f.item(&lost);
        let (lost_twin, _) = f.item(&lost);
        // An unreferenced blob (e.g. a derived file) is scrubbed too.
        let loose = f.store.put_bytes(b"derived bytes", None).expect("loose blob").hash;

        let path = f.store.path(&rot_hash);
        let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open blob");
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(5)).expect("seek");
        file.read_exact(&mut byte).expect("read");
        file.seek(SeekFrom::Start(5)).expect("seek");
        file.write_all(&[byte[0] ^ 0x01]).expect("flip a byte");
        drop(file);
        std::fs::remove_file(f.store.path(&lost_hash)).expect("delete blob");

        f.clock.advance(60);
        let report = f.scrub();
        assert!(!report.is_clean());
        assert_eq!(report.blobs, 4, "three referenced blobs and the loose one");
        let mut kinds: Vec<_> = report.problems.iter().map(|p| (p.hash, p.kind, p.items.clone())).collect();
        kinds.sort_by_key(|k| k.1.as_str());
        assert_eq!(
            kinds,
            vec![
                (rot_hash, ProblemKind::Corrupt, vec![rot_id]),
                (lost_hash, ProblemKind::Missing, vec![lost_id, lost_twin])
            ]
        );
        assert_eq!(report.items_marked, 3);
        assert_eq!(f.damage(rot_id), Some(("corrupt".into(), rot_hash.to_hex())));
        assert_eq!(f.damage(lost_id), Some(("missing".into(), lost_hash.to_hex())));
        assert_eq!(f.damage(lost_twin), Some(("missing".into(), lost_hash.to_hex())));
        assert_eq!(f.damage(ok_id), None);
        assert!(f.store.exists(&loose).expect("exists"));
        let status =
            f.db.read_blocking(|c| media::require(c, rot_id).map_err(|_| DbError::Poisoned)).expect("item");
        assert_eq!(status.status, media::MediaStatus::Ready, "the mark leaves the item's status alone");
        let last = f.db.read_blocking(last).expect("last").expect("recorded");
        assert_eq!((last.blobs, last.problems), (4, 2));
        let audit = f.audit_details();
        assert_eq!(audit.last().map(|a| a.0.as_str()), Some("failure"));
        assert!(
            audit[0].1.contains("1 missing, 1 corrupt") && audit[0].1.contains("3 items marked"),
            "{audit:?}"
        );

        // What people are shown: since the first scrub that found it (a later one keeps the
        // date), in words, without the scrub's detail.
        let first_found = f.clock.now();
        f.clock.advance(3600);
        f.scrub();
        let shown = f.db.read_blocking(|c| damaged(c, rot_id)).expect("damaged").expect("marked");
        assert_eq!((shown.since, shown.problem.as_str()), (first_found, "corrupt"));
        assert!(shown.detail.contains("no longer matches its SHA-256"), "{shown:?}");
        let shown = f.db.read_blocking(|c| damaged(c, lost_id)).expect("damaged").expect("marked");
        assert_eq!(
            (shown.problem.as_str(), shown.detail.as_str()),
            ("missing", "The stored copy of the original file is missing.")
        );
        assert_eq!(f.db.read_blocking(|c| damaged(c, ok_id)).expect("damaged"), None);

        // Restore the bytes (as from a backup): the next scrub is clean and clears the marks.
        f.store.put_bytes(&rotten, Some(&rot_hash)).expect("replace the corrupt copy");
        f.store.put_bytes(&lost, Some(&lost_hash)).expect("restore the lost blob");
        f.clock.advance(60);
        let again = f.scrub();
        assert!(again.is_clean(), "{again:?}");
        for id in [rot_id, lost_id, lost_twin] {
            assert_eq!(f.damage(id), None, "mark of {id} cleared");
            assert_eq!(f.db.read_blocking(|c| damaged(c, id)).expect("damaged"), None);
        }
    }

    #[test]
    fn the_weekly_scrub_is_due_a_week_after_the_last_start() {
        let f = fixture();
        let now = f.clock.now();
        assert!(f.db.read_blocking(|c| due(c, now)).expect("due"), "never scrubbed: due");
        f.scrub();
        for (offset, expect) in [(0, false), (INTERVAL_SECONDS - 1, false), (INTERVAL_SECONDS, true)] {
            assert_eq!(f.db.read_blocking(|c| due(c, now + offset)).expect("due"), expect, "{offset}");
        }
    }

    #[test]
    fn a_cancelled_scrub_stops_and_still_counts_for_the_schedule() {
        let f = fixture();
        f.item(b"%PDF-1.7 one");
        let stop = AtomicBool::new(true);
        let result = run(&f.db, &f.store, &f.clock, Trigger::Schedule, (None, "system"), &stop, |_| {});
        assert!(matches!(result, Err(ScrubError::Cancelled)), "{result:?}");
        let last = f.db.read_blocking(last).expect("last").expect("recorded");
        assert_eq!(last.finished_at, None, "shown as interrupted");
        assert!(!f.db.read_blocking(|c| due(c, f.clock.now() + 60)).expect("due"));
    }
}
