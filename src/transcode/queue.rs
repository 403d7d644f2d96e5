//! The durable job queue: rows in `transcode_jobs`, one per (item, kind).
//!
//! A worker claims the oldest due job in one `UPDATE … RETURNING` (atomic in SQLite), writes
//! its id and a heartbeat, and keeps the heartbeat fresh while it works. A job whose heartbeat
//! is older than [`STALE_AFTER`] (its worker died) goes back to the queue; so do, at start-up,
//! the jobs of a previous process. A job that fails for a passing reason (ffmpeg killed, disk
//! full) is retried after an exponential backoff, up to `max_attempts`; a source that cannot be
//! decoded fails at once.

use rusqlite::{Connection, OptionalExtension, params};

use super::{NOT_AVAILABLE, TranscodeError};
use crate::clock::Timestamp;
use crate::db::ids::MediaId;

/// A running job whose heartbeat is older than this has lost its worker.
pub const STALE_AFTER: i64 = 60;
/// How often a worker refreshes the heartbeat of the job it runs.
pub const HEARTBEAT_EVERY: u64 = 10;
/// The first retry waits this long; each further one twice as long as the one before.
pub const BACKOFF_BASE: i64 = 10;
/// No retry waits longer than this.
pub const BACKOFF_MAX: i64 = 3600;

/// A claimed job, as a worker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub media_id: MediaId,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub worker: String,
}

/// Why a job did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Worth trying again later (killed, disk full, a crash): retried with backoff.
    pub transient: bool,
    /// For people.
    pub message: String,
    /// For the log and administrators.
    pub detail: String,
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(Timestamp),
    Failed,
    /// The job was no longer this worker's (requeued as stale, or the item is gone).
    Lost,
}

/// The wait before retry number `attempt` (1 = after the first failure).
pub fn backoff(attempt: u32) -> i64 {
    let shift = attempt.saturating_sub(1).min(20);
    (BACKOFF_BASE << shift).min(BACKOFF_MAX)
}

/// Queue the ladder of an item. `false` when it already has a job (nothing runs twice).
pub fn enqueue(
    conn: &Connection,
    media: MediaId,
    max_attempts: u32,
    now: Timestamp,
) -> Result<bool, TranscodeError> {
    let n = conn.execute(
        "INSERT INTO transcode_jobs (media_id, kind, state, max_attempts, run_after, created_at, updated_at)
         VALUES (?1, 'ladder', 'queued', ?2, ?3, ?3, ?3)
         ON CONFLICT (media_id, kind) DO NOTHING",
        params![media, max_attempts.max(1), now],
    )?;
    Ok(n == 1)
}

/// Queue the video and audio items still `processing` that have no job (uploaded before the
/// transcoder existed, or while queueing failed). Returns how many were queued.
pub fn enqueue_missing(
    conn: &Connection,
    max_attempts: u32,
    now: Timestamp,
) -> Result<usize, TranscodeError> {
    Ok(conn.execute(
        "INSERT INTO transcode_jobs (media_id, kind, state, max_attempts, run_after, created_at, updated_at)
         SELECT m.id, 'ladder', 'queued', ?1, ?2, ?2, ?2 FROM media_items m
         WHERE m.status = 'processing' AND m.kind IN ('video', 'audio') AND m.sha256 IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM transcode_jobs j WHERE j.media_id = m.id AND j.kind = 'ladder')",
        params![max_attempts.max(1), now],
    )?)
}

/// Claim the oldest due job for `worker`, or `None`.
pub fn claim(conn: &Connection, worker: &str, now: Timestamp) -> Result<Option<Job>, TranscodeError> {
    Ok(conn
        .query_row(
            "UPDATE transcode_jobs
             SET state = 'running', worker = ?1, heartbeat_at = ?2, attempts = attempts + 1,
                 started_at = ?2, updated_at = ?2, progress = 0, eta_seconds = NULL
             WHERE id = (SELECT id FROM transcode_jobs WHERE state = 'queued' AND run_after <= ?2
                         ORDER BY run_after, id LIMIT 1)
             RETURNING id, media_id, attempts, max_attempts",
            params![worker, now],
            |r| {
                Ok(Job {
                    id: r.get(0)?,
                    media_id: r.get(1)?,
                    attempt: r.get::<_, i64>(2)?.max(0) as u32,
                    max_attempts: r.get::<_, i64>(3)?.max(1) as u32,
                    worker: worker.to_string(),
                })
            },
        )
        .optional()?)
}

/// Refresh the heartbeat; `false` when the job is no longer this worker's.
pub fn heartbeat(conn: &Connection, job: &Job, now: Timestamp) -> Result<bool, TranscodeError> {
    Ok(conn.execute(
        "UPDATE transcode_jobs SET heartbeat_at = ?3 WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![job.id, job.worker, now],
    )? == 1)
}

/// Record progress (also a heartbeat).
pub fn set_progress(
    conn: &Connection,
    job: &Job,
    progress: u8,
    eta_seconds: Option<u64>,
    now: Timestamp,
) -> Result<bool, TranscodeError> {
    Ok(conn.execute(
        "UPDATE transcode_jobs SET progress = ?3, eta_seconds = ?4, heartbeat_at = ?5, updated_at = ?5
         WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![
            job.id,
            job.worker,
            progress.min(100),
            eta_seconds.map(|e| e.min(i64::MAX as u64) as i64),
            now
        ],
    )? == 1)
}

/// Remember that the source's own rung was packaged without re-encoding.
pub fn set_remuxed(conn: &Connection, job: &Job) -> Result<(), TranscodeError> {
    conn.execute("UPDATE transcode_jobs SET remuxed = 1 WHERE id = ?1", [job.id])?;
    Ok(())
}

/// The job is done. `false` when it was no longer this worker's.
pub fn finish(conn: &Connection, job: &Job, now: Timestamp) -> Result<bool, TranscodeError> {
    Ok(conn.execute(
        "UPDATE transcode_jobs SET state = 'done', progress = 100, eta_seconds = NULL, error = NULL,
             detail = '', worker = NULL, finished_at = ?3, updated_at = ?3
         WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![job.id, job.worker, now],
    )? == 1)
}

/// An attempt failed: retry later, or fail the job.
pub fn fail(
    conn: &Connection,
    job: &Job,
    failure: &Failure,
    now: Timestamp,
) -> Result<AfterFailure, TranscodeError> {
    let retry = failure.transient && job.attempt < job.max_attempts;
    let (state, run_after, outcome) = if retry {
        let at = now + backoff(job.attempt);
        ("queued", at, AfterFailure::RetryAt(at))
    } else {
        ("failed", now, AfterFailure::Failed)
    };
    let n = conn.execute(
        "UPDATE transcode_jobs SET state = ?3, run_after = ?4, error = ?5, detail = ?6, worker = NULL,
             eta_seconds = NULL, updated_at = ?7, finished_at = CASE WHEN ?3 = 'failed' THEN ?7 END
         WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![job.id, job.worker, state, run_after, failure.message, failure.detail, now],
    )?;
    Ok(if n == 1 { outcome } else { AfterFailure::Lost })
}

/// ffmpeg is missing: park the job, without counting the attempt, until it appears.
pub fn wait_for_transcoder(conn: &Connection, job: &Job, now: Timestamp) -> Result<(), TranscodeError> {
    conn.execute(
        "UPDATE transcode_jobs SET state = 'waiting', attempts = max(attempts - 1, 0), error = ?3,
             worker = NULL, updated_at = ?4
         WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![job.id, job.worker, NOT_AVAILABLE, now],
    )?;
    Ok(())
}

/// Shutting down mid-job: back to the queue, the attempt not counted.
pub fn release(conn: &Connection, job: &Job, now: Timestamp) -> Result<(), TranscodeError> {
    conn.execute(
        "UPDATE transcode_jobs SET state = 'queued', attempts = max(attempts - 1, 0), worker = NULL,
             run_after = ?3, eta_seconds = NULL, updated_at = ?3
         WHERE id = ?1 AND worker = ?2 AND state = 'running'",
        params![job.id, job.worker, now],
    )?;
    Ok(())
}

/// ffmpeg is there (again): queue the jobs that waited for it.
pub fn wake_waiting(conn: &Connection, now: Timestamp) -> Result<usize, TranscodeError> {
    Ok(conn.execute(
        "UPDATE transcode_jobs SET state = 'queued', error = NULL, run_after = ?1, updated_at = ?1
         WHERE state = 'waiting'",
        [now],
    )?)
}

/// Whether any job waits for the transcoder.
pub fn any_waiting(conn: &Connection) -> Result<bool, TranscodeError> {
    Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM transcode_jobs WHERE state = 'waiting')", [], |r| {
        r.get(0)
    })?)
}

/// Put back in the queue the running jobs whose heartbeat is older than `stale_after` seconds,
/// and those not held by a worker whose id starts with `live_prefix` (a previous process).
/// Returns the media of the jobs requeued.
pub fn requeue_stale(
    conn: &Connection,
    live_prefix: &str,
    stale_after: i64,
    now: Timestamp,
) -> Result<Vec<MediaId>, TranscodeError> {
    let mut stmt = conn.prepare(
        "UPDATE transcode_jobs SET state = 'queued', worker = NULL, run_after = ?1, updated_at = ?1,
             eta_seconds = NULL
         WHERE state = 'running' AND (heartbeat_at < ?2 OR worker IS NULL OR substr(worker, 1, length(?3)) <> ?3)
         RETURNING media_id",
    )?;
    let rows = stmt.query_map(params![now, now - stale_after, live_prefix], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queue a failed (or finished) job again from its first attempt, or create it. Refused while
/// the job is queued or running.
pub fn retry(
    conn: &Connection,
    media: MediaId,
    max_attempts: u32,
    now: Timestamp,
) -> Result<(), TranscodeError> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM transcode_jobs WHERE media_id = ?1 AND kind = 'ladder'", [media], |r| {
            r.get(0)
        })
        .optional()?;
    match state.as_deref() {
        None => {
            enqueue(conn, media, max_attempts, now)?;
        }
        Some("queued" | "running") => {
            return Err(TranscodeError::WrongState("the item is already being converted"));
        }
        Some(_) => {
            conn.execute(
                "UPDATE transcode_jobs SET state = 'queued', attempts = 0, max_attempts = ?2, run_after = ?3,
                     error = NULL, detail = '', progress = 0, eta_seconds = NULL, worker = NULL,
                     finished_at = NULL, updated_at = ?3
                 WHERE media_id = ?1 AND kind = 'ladder'",
                params![media, max_attempts.max(1), now],
            )?;
        }
    }
    Ok(())
}

/// The job's state and attempts, for tests and tools.
pub fn state_of(conn: &Connection, media: MediaId) -> Result<Option<(String, u32)>, TranscodeError> {
    Ok(conn
        .query_row(
            "SELECT state, attempts FROM transcode_jobs WHERE media_id = ?1 AND kind = 'ladder'",
            [media],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u32)),
        )
        .optional()?)
}

/// The detail (ffmpeg's last lines) of an item's job.
pub fn detail_of(conn: &Connection, media: MediaId) -> Result<Option<String>, TranscodeError> {
    Ok(conn
        .query_row(
            "SELECT detail FROM transcode_jobs WHERE media_id = ?1 AND kind = 'ladder'",
            [media],
            |r| r.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::library::categories::{self, NewCategory};
    use crate::library::media::{self, MediaKind, NewMedia, StoredContent};

    fn setup(items: usize) -> (tempfile::TempDir, Db, Vec<MediaId>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 2).expect("db");
        let ids = db
            .write_blocking(|c| {
                let cat = categories::create(
                    c,
                    NewCategory { name: "Films", parent_id: None, description: "", public: false },
                    1,
                )?;
                let mut ids = Vec::new();
                for i in 0..items {
                    let item = media::create(
                        c,
                        NewMedia {
                            category_id: cat.id,
                            owner_id: None,
                            title: "",
                            filename: "clip.mp4",
                            content: Some(StoredContent {
                                kind: MediaKind::Video,
                                mime: "video/mp4".into(),
                                size: 10,
                                sha256: format!("{i:064x}"),
                            }),
                        },
                        1,
                    )?;
                    ids.push(item.id);
                }
                Ok::<_, crate::library::LibraryError>(ids)
            })
            .expect("items");
        (dir, db, ids)
    }

    fn w<T>(db: &Db, f: impl FnOnce(&mut Connection) -> Result<T, TranscodeError>) -> T {
        db.write_blocking(f).expect("write")
    }

    #[test]
    fn one_job_per_item_and_claims_are_exclusive() {
        let (_d, db, ids) = setup(2);
        assert!(w(&db, |c| enqueue(c, ids[0], 3, 100)));
        assert!(!w(&db, |c| enqueue(c, ids[0], 3, 101)), "unique (item, kind)");
        assert_eq!(w(&db, |c| enqueue_missing(c, 3, 102)), 1, "the item without a job");
        assert_eq!(w(&db, |c| enqueue_missing(c, 3, 102)), 0);
        assert!(!w(&db, |c| enqueue(c, ids[1], 3, 102)), "already queued");
        let a = w(&db, |c| claim(c, "w-1", 200)).expect("first job");
        let b = w(&db, |c| claim(c, "w-2", 200)).expect("second job");
        assert_eq!((a.media_id, b.media_id), (ids[0], ids[1]), "oldest first, each once");
        assert_eq!(a.attempt, 1);
        assert!(w(&db, |c| claim(c, "w-3", 200)).is_none(), "nothing left");
        assert!(w(&db, |c| finish(c, &a, 210)));
        assert!(!w(&db, |c| finish(c, &a, 211)), "finishing twice does nothing");
        let p = db.read_blocking(|c| super::super::playback(c, ids[0])).expect("playback");
        assert_eq!((p.state, p.progress), (super::super::JobState::Done, 100));
    }

    #[test]
    fn heartbeats_keep_a_job_and_stale_jobs_return_to_the_queue() {
        let (_d, db, ids) = setup(1);
        w(&db, |c| enqueue(c, ids[0], 3, 100));
        let job = w(&db, |c| claim(c, "host-1-0", 100)).expect("job");
        assert!(w(&db, |c| heartbeat(c, &job, 150)));
        assert!(w(&db, |c| requeue_stale(c, "host-1-", STALE_AFTER, 200)).is_empty(), "fresh heartbeat");
        assert_eq!(w(&db, |c| requeue_stale(c, "host-1-", STALE_AFTER, 211)), vec![ids[0]], "stale");
        assert!(!w(&db, |c| heartbeat(c, &job, 212)), "the old worker lost it");
        assert!(!w(&db, |c| set_progress(c, &job, 50, Some(3), 212)));
        let again = w(&db, |c| claim(c, "host-1-1", 213)).expect("claimed again");
        assert_eq!(again.attempt, 2);
        // A job held by another process (an earlier run of the server) is an orphan at once.
        assert_eq!(w(&db, |c| requeue_stale(c, "host-2-", STALE_AFTER, 214)), vec![ids[0]]);
    }

    #[test]
    fn transient_failures_back_off_then_fail_at_the_limit() {
        let (_d, db, ids) = setup(1);
        w(&db, |c| enqueue(c, ids[0], 3, 100));
        let f = Failure { transient: true, message: "killed".into(), detail: "signal 9".into() };
        let j1 = w(&db, |c| claim(c, "w", 100)).expect("1");
        assert_eq!(w(&db, |c| fail(c, &j1, &f, 100)), AfterFailure::RetryAt(100 + BACKOFF_BASE));
        assert!(w(&db, |c| claim(c, "w", 105)).is_none(), "not before the backoff");
        let j2 = w(&db, |c| claim(c, "w", 110)).expect("2");
        assert_eq!(w(&db, |c| fail(c, &j2, &f, 110)), AfterFailure::RetryAt(110 + 2 * BACKOFF_BASE));
        let j3 = w(&db, |c| claim(c, "w", 130)).expect("3");
        assert_eq!(j3.attempt, 3);
        assert_eq!(w(&db, |c| fail(c, &j3, &f, 130)), AfterFailure::Failed, "limit reached");
        let p = db.read_blocking(|c| super::super::playback(c, ids[0])).expect("playback");
        assert_eq!(p.error.as_deref(), Some("killed"));
        assert_eq!(backoff(4), 80);
        assert_eq!(backoff(30), BACKOFF_MAX);
        // A retry starts over; it is refused while the job is queued.
        w(&db, |c| retry(c, ids[0], 3, 140));
        assert_eq!(db.read_blocking(|c| state_of(c, ids[0])).expect("state"), Some(("queued".into(), 0)));
        let err = db.write_blocking(|c| retry(c, ids[0], 3, 141)).expect_err("refused");
        assert!(matches!(err, TranscodeError::WrongState(_)));
    }

    #[test]
    fn bad_sources_fail_at_once_and_missing_ffmpeg_waits() {
        let (_d, db, ids) = setup(1);
        w(&db, |c| enqueue(c, ids[0], 3, 100));
        let job = w(&db, |c| claim(c, "w", 100)).expect("job");
        w(&db, |c| wait_for_transcoder(c, &job, 100));
        let p = db.read_blocking(|c| super::super::playback(c, ids[0])).expect("playback");
        assert_eq!(p.state, super::super::JobState::Waiting);
        assert_eq!(p.error.as_deref(), Some(NOT_AVAILABLE));
        assert!(w(&db, |c| claim(c, "w", 101)).is_none(), "waiting jobs are not claimed");
        assert_eq!(w(&db, |c| wake_waiting(c, 102)), 1);
        let job = w(&db, |c| claim(c, "w", 103)).expect("job again");
        assert_eq!(job.attempt, 1, "waiting did not use up an attempt");
        let f = Failure { transient: false, message: "not a video".into(), detail: String::new() };
        assert_eq!(w(&db, |c| fail(c, &job, &f, 104)), AfterFailure::Failed);
    }
}
