//! WAL shipping: every committed transaction leaves the machine as a checksummed record, and
//! any instant of the retention window can be restored exactly.
//!
//! - [`record`]: the record format (whole transactions, contiguous ids, state checksums).
//! - [`apply`]: applying a transaction through `sqlite_dbpage`; the state checksum.
//! - [`snapshot`]: page-exact zstd snapshots.

pub mod apply;
pub mod record;
pub mod snapshot;

use std::path::PathBuf;

pub use apply::{StateHasher, apply_txn, state_checksum};
pub use record::{GenerationId, Record, Txn, decode, encode};
pub use snapshot::{SnapshotInfo, restore_snapshot, write_snapshot, write_snapshot_at};

use crate::error::{AppError, ErrorKind};

/// Where a shipped history stands: the last transaction of a generation, and when it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub generation: GenerationId,
    pub txid: u64,
    pub committed_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corrupt transaction record: {0}")]
    CorruptRecord(String),
    #[error("corrupt snapshot {}: {why}", path.display())]
    CorruptSnapshot { path: PathBuf, why: String },
    #[error("page size mismatch: the record has {expected}-byte pages, the database {found}")]
    PageSize { expected: u32, found: u32 },
    #[error("{0}")]
    BadName(String),
    #[error("state checksum mismatch after transaction {txid}: the result would not be exact")]
    StateMismatch { txid: u64 },
    #[error("backup target: {0}")]
    Target(String),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
}

impl AppError for ReplicationError {
    fn code(&self) -> &'static str {
        match self {
            ReplicationError::Sqlite(_) | ReplicationError::Db(_) => "db",
            ReplicationError::Io { .. } => "replication-io",
            ReplicationError::CorruptRecord(_) => "corrupt-record",
            ReplicationError::CorruptSnapshot { .. } => "corrupt-snapshot",
            ReplicationError::PageSize { .. } => "page-size-mismatch",
            ReplicationError::BadName(_) => "bad-name",
            ReplicationError::StateMismatch { .. } => "state-mismatch",
            ReplicationError::Target(_) => "backup-target",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            ReplicationError::BadName(_) => ErrorKind::BadRequest,
            ReplicationError::Target(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
    fn user_message(&self) -> String {
        match self {
            ReplicationError::BadName(m) => m.clone(),
            ReplicationError::Target(_) => {
                "The backup target cannot be reached right now; changes are kept locally and sent when it is back.".into()
            }
            _ => "Something went wrong with database replication. Please tell your IT administrator.".into(),
        }
    }
}
