//! The transcoder: a durable job queue in SQLite, ffprobe facts, and the one-pass HLS ladder
//! (fMP4, 4 s segments, keyframes every 2 s) with a progressive download, a poster and a
//! thumbnail sprite, written under `<data>/media/<id>/`.
//!
//! Owns the tables `transcode_jobs`, `media_probes`, `media_rungs` and `media_assets`.
//! Nothing partial is ever at a published path: work happens in `<data>/media/<id>/.work/`,
//! a complete rung directory is renamed into `hls/`, and `master.m3u8` is replaced by
//! write-temp + fsync + rename.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::db::DbError;
use crate::db::ids::MediaId;
use crate::error::{AppError, ErrorKind};

pub mod ffmpeg;
pub mod job;
pub mod ladder;
pub mod probe;
pub mod queue;
pub mod worker;

pub use worker::Workers;

/// The message shown while jobs wait for an ffmpeg that is not installed.
pub const NOT_AVAILABLE: &str = "transcoder not available";

/// `<data>/media/<id>`: everything published for one item.
pub fn media_dir(data_dir: &Path, id: MediaId) -> PathBuf {
    data_dir.join("media").join(id.to_string())
}

/// Where a job's state stands, as the API and pages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// No job (not a video or audio item, or from before the transcoder).
    None,
    /// Waiting for the transcoder (ffmpeg missing).
    Waiting,
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::None => "none",
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "none" => JobState::None,
            "waiting" => JobState::Waiting,
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Playback {
    /// At least one complete rung (or the audio rung) is published.
    pub playable: bool,
    /// 0..=100 over the whole job.
    pub progress: u8,
    pub eta_seconds: Option<u64>,
    pub state: JobState,
    /// Complete, published rungs, highest first.
    pub renditions: Vec<Rung>,
    /// A human message when failed, or [`NOT_AVAILABLE`].
    pub error: Option<String>,
    pub duration_seconds: Option<f64>,
    /// `download.mp4` / `download.m4a` published.
    pub has_download: bool,
    pub has_poster: bool,
    pub has_sprite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rung {
    pub name: String,
    pub height: u32,
    pub width: u32,
    pub bandwidth: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed in this state: {0}")]
    WrongState(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for TranscodeError {
    fn from(e: rusqlite::Error) -> Self {
        TranscodeError::Db(DbError::Sqlite(e))
    }
}

impl AppError for TranscodeError {
    fn code(&self) -> &'static str {
        match self {
            TranscodeError::NotFound(_) => "not-found",
            TranscodeError::WrongState(_) => "wrong-status",
            TranscodeError::Db(e) => e.code(),
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            TranscodeError::NotFound(_) => ErrorKind::NotFound,
            TranscodeError::WrongState(_) => ErrorKind::Conflict,
            TranscodeError::Db(e) => e.kind(),
        }
    }
    fn user_message(&self) -> String {
        match self {
            TranscodeError::NotFound(what) => {
                format!("That {what} does not exist (it may have been removed).")
            }
            TranscodeError::WrongState(why) => format!("That cannot be done right now: {why}."),
            TranscodeError::Db(e) => e.user_message(),
        }
    }
}

fn u32_of(v: i64) -> u32 {
    v.clamp(0, u32::MAX as i64) as u32
}

/// The published rungs of an item, highest first.
pub fn rungs(conn: &Connection, id: MediaId) -> Result<Vec<Rung>, TranscodeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, height, width, bandwidth FROM media_rungs WHERE media_id = ?1
         ORDER BY height DESC, name",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Rung {
            name: r.get(0)?,
            height: u32_of(r.get(1)?),
            width: u32_of(r.get(2)?),
            bandwidth: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Read-only, cheap, for pages and the API; runs inside `app.db.read(...)`.
pub fn playback(conn: &Connection, id: MediaId) -> Result<Playback, TranscodeError> {
    let job: Option<(String, i64, Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT state, progress, eta_seconds, error FROM transcode_jobs
             WHERE media_id = ?1 AND kind = 'ladder'",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let renditions = rungs(conn, id)?;
    let mut assets = conn.prepare_cached("SELECT name FROM media_assets WHERE media_id = ?1")?;
    let assets: Vec<String> = assets.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let duration_seconds: Option<f64> = conn
        .prepare_cached("SELECT duration_seconds FROM media_probes WHERE media_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    let (state, progress, eta_seconds, error) = match job {
        None => (JobState::None, 0, None, None),
        Some((state, progress, eta, error)) => {
            let state = JobState::parse(&state).unwrap_or(JobState::Queued);
            let progress = if state == JobState::Done { 100 } else { progress.clamp(0, 100) as u8 };
            let eta = if state == JobState::Running { eta.map(|e| e.max(0) as u64) } else { None };
            let error = match state {
                JobState::Failed => error,
                JobState::Waiting => Some(error.unwrap_or_else(|| NOT_AVAILABLE.to_string())),
                _ => None,
            };
            (state, progress, eta, error)
        }
    };
    let has = |n: &str| assets.iter().any(|a| a == n);
    Ok(Playback {
        playable: !renditions.is_empty(),
        progress,
        eta_seconds,
        state,
        renditions,
        error,
        duration_seconds,
        has_download: has("download.mp4") || has("download.m4a"),
        has_poster: has("poster.jpg"),
        has_sprite: has("sprite"),
    })
}

// --- backup and partial restore (src/backup/) ---

/// Items with files published at or after `since` (the media backup copies them).
pub fn published_since(
    conn: &Connection,
    since: crate::clock::Timestamp,
) -> Result<Vec<MediaId>, TranscodeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT media_id FROM media_rungs WHERE published_at >= ?1
         UNION SELECT media_id FROM media_assets WHERE published_at >= ?1",
    )?;
    let ids = stmt.query_map([since], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Every item with published files and a version of what is published (count and newest
/// time), which changes whenever a rung or file is (re)published: a replica follows these.
pub fn published_versions(conn: &Connection) -> Result<Vec<(MediaId, String)>, TranscodeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT media_id, count(*), max(published_at) FROM
           (SELECT media_id, published_at FROM media_rungs UNION ALL SELECT media_id, published_at FROM media_assets)
         GROUP BY media_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, MediaId>(0)?, format!("{}@{}", r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An item's rows in this module's tables, for `reelbox recover`: what ffprobe found, the
/// published rungs and files, and the job (with its files restored, the item plays as before).
pub fn item_rows(conn: &Connection, id: MediaId) -> Result<Vec<crate::db::rows::Rows>, TranscodeError> {
    use crate::db::rows::select;
    Ok(vec![
        select(conn, "media_probes", "media_id", id.0)?,
        select(conn, "media_rungs", "media_id", id.0)?,
        select(conn, "media_assets", "media_id", id.0)?,
        select(conn, "transcode_jobs", "media_id", id.0)?,
    ])
}
// --- end backup ---

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn an_item_without_a_job_is_not_playable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let p = db.read_blocking(|c| playback(c, MediaId(42))).expect("playback");
        assert!(!p.playable);
        assert_eq!(p.state, JobState::None);
        assert_eq!(serde_json::to_value(p.state).expect("json"), "none");
        assert_eq!(media_dir(Path::new("/d"), MediaId(7)), PathBuf::from("/d/media/7"));
    }
}
