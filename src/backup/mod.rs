//! Backups of media and server files, and the partial-restore tools (`compare`, `recover`).
//!
//! The database itself is shipped by `replication/`; this module copies what lives beside it
//! to the same backup target (an `object_store::ObjectStore`):
//!
//! ```text
//! media/<sha256 hex[0..2]>/<sha256 hex>          a blob (original, thumbnail) or a rendition file, by hash
//! media/<sha256 hex[0..2]>/<sha256 hex>.purged   when the walk first saw the blob gone from the server (Unix seconds)
//! renditions/<media id>.json                     what `<data>/media/<id>/` held: relative path → sha256, size
//! renditions/<media id>.json.purged              when the walk first saw that directory gone
//! files/<YYYY-MM-DD>/...                         the day's copy of the configuration (secrets redacted) + MANIFEST.json
//! ```
//!
//! Every copy is read back from the target and hashed before it counts as done; a copy that is
//! present with the right size is skipped, and every `backup.media_verify_days` the walk re-reads
//! and re-hashes every copy and replaces the bad ones. Nothing in the target is deleted before it
//! has been absent from the server for `backup.media_keep_days`.
//!
//! Secrets (`<data>/secrets/`, `*_file` targets, inline tokens) are never copied: a backup volume
//! is usually readable by more people than the server, and every one of them can be re-created
//! (signed media URLs get a new key; tokens are re-issued).

pub mod compare;
pub mod files;
pub mod media;
pub mod recover;
pub mod renditions;
mod transfer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::db::DbError;
use crate::error::{AppError, ErrorKind};
use crate::store::{Sha256, StoreError};

/// A backup target: a directory or S3-compatible storage.
pub type Target = Arc<dyn ObjectStore>;

/// Open the configured target (`[backup] dir`, `serve --backup-dir`, or `[backup] url`), the
/// same one the database is shipped to. `None`: no backups.
pub fn open_target(cfg: &Config) -> Result<Option<Target>, BackupError> {
    crate::replication::target::open(cfg).map_err(BackupError::domain)
}

/// `media/ab/abcd…`
pub fn blob_key(hash: &Sha256) -> ObjectPath {
    let hex = hash.to_hex();
    ObjectPath::from(format!("media/{}/{hex}", &hex[0..2]))
}

/// `media/ab/abcd….purged`
pub fn blob_marker_key(hash: &Sha256) -> ObjectPath {
    let hex = hash.to_hex();
    ObjectPath::from(format!("media/{}/{hex}.purged", &hex[0..2]))
}

/// What the media backup has done and how far behind it is, for the dashboard and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BackupStatus {
    /// Where copies go (a directory or a bucket), as the target describes itself.
    pub target: String,
    /// Blobs and rendition files copied (and verified) since the server started.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Known to be missing from the target and not yet copied: the lag.
    pub pending: u64,
    pub pending_bytes: u64,
    /// Copies found damaged in the target (and copied again).
    pub repaired: u64,
    /// Blobs deleted from the target after their retention.
    pub expired: u64,
    pub last_walk_at: Option<Timestamp>,
    pub last_verify_at: Option<Timestamp>,
    pub last_files_backup: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// Shared view of [`BackupStatus`]; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle(Arc<Mutex<BackupStatus>>);

impl StatusHandle {
    pub fn snapshot(&self) -> BackupStatus {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut BackupStatus)) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        metrics::gauge!("reelbox_backup_media_pending_bytes").set(s.pending_bytes as f64);
        metrics::gauge!("reelbox_backup_media_pending").set(s.pending as f64);
    }

    pub(crate) fn failed(&self, now: Timestamp, e: &BackupError) {
        metrics::counter!("reelbox_backup_media_failures_total").increment(1);
        self.update(|s| {
            s.last_error = Some(e.to_string());
            s.last_error_at = Some(now);
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup target: {context}: {source}")]
    Target { context: String, source: object_store::Error },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("the copy of {what} in the backup target is damaged: it hashes to {actual}, not {expected}")]
    Corrupt { what: String, expected: Sha256, actual: Sha256 },
    #[error("{0} is not in the backup target")]
    NotInBackup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Domain(String),
    #[error("{file} is not a reelbox database: {detail}")]
    NotADatabase { file: PathBuf, detail: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl BackupError {
    pub(crate) fn target(context: impl Into<String>, source: object_store::Error) -> BackupError {
        BackupError::Target { context: context.into(), source }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> BackupError {
        BackupError::Io { context: context.into(), source }
    }

    pub(crate) fn domain(e: impl std::fmt::Display) -> BackupError {
        BackupError::Domain(e.to_string())
    }
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Db(DbError::Sqlite(e))
    }
}

impl AppError for BackupError {
    fn code(&self) -> &'static str {
        match self {
            BackupError::Target { .. } => "backup-target",
            BackupError::Io { .. } => "backup-io",
            BackupError::Corrupt { .. } => "backup-corrupt",
            BackupError::NotInBackup(_) => "backup-missing",
            BackupError::Store(e) => e.code(),
            BackupError::Db(e) => e.code(),
            BackupError::Domain(_) => "backup-domain",
            BackupError::NotADatabase { .. } => "not-a-database",
            BackupError::Conflict(_) => "recover-conflict",
            BackupError::NotFound(_) => "not-found",
            BackupError::Json(_) => "backup-json",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            BackupError::NotADatabase { .. } => ErrorKind::BadRequest,
            BackupError::Conflict(_) => ErrorKind::Conflict,
            BackupError::NotFound(_) | BackupError::NotInBackup(_) => ErrorKind::NotFound,
            BackupError::Target { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    fn user_message(&self) -> String {
        match self {
            BackupError::Target { .. } => {
                "The backup target cannot be reached; copies resume when it is back.".into()
            }
            BackupError::Conflict(m) | BackupError::NotFound(m) => m.clone(),
            BackupError::NotADatabase { .. } | BackupError::NotInBackup(_) | BackupError::Corrupt { .. } => {
                self.to_string()
            }
            _ => "Something went wrong with the backup; the server log has the details.".into(),
        }
    }
}
