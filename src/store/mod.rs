//! Content-addressed blob store: every original and derived file is stored once, named by its
//! SHA-256, at `<data>/blobs/sha256/ab/cd/<hex>`. Blobs are immutable.
//!
//! Writing follows one path (see `BlobWriter::finish`): stream into a temp file under
//! `<data>/blobs/tmp/` while hashing, fsync, compare with the digest the client sent, rename into
//! place, fsync the directory, re-read the stored file and verify its hash. Only after that
//! returns `Ok` may the caller commit the database row that points to the blob.
//!
//! Large writes overlap those steps: a trailing thread per writer fsyncs what has been written
//! in steps while more arrives and reads back each range once it is durable (`trail`), so only
//! the tail is fsynced and re-read after the last byte.
//!
//! All I/O here is blocking: call it from `tokio::task::spawn_blocking` (or a job thread), never
//! from an async worker. `BlobStore` is cheap to clone and safe to share between threads.
//!
//! Replication and backup follow new blobs through `BlobStore::subscribe` and catch up with
//! `BlobStore::walk` (a reconciliation walk, also the answer to a lagged subscriber).

mod disk;
mod hash;
mod trail;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{AppError, ErrorKind};

pub use disk::{BlobStore, Removal, StoreEvent, Stored, Walk};
pub use hash::Sha256;
pub use writer::BlobWriter;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid sha-256: {reason}")]
    InvalidHash { reason: &'static str },
    #[error("content hash mismatch: the client said {expected}, the bytes received hash to {actual}")]
    HashMismatch { expected: Sha256, actual: Sha256 },
    #[error("blob {hash} not found")]
    NotFound { hash: Sha256 },
    #[error("disk full while {context}: {source}")]
    DiskFull { context: String, source: io::Error },
    #[error(
        "blob {hash} is corrupt: the bytes read back from disk hash to {actual} \
         (check the disk and the kernel log; restore the blob from the replica or a backup)"
    )]
    Corrupt { hash: Sha256, actual: Sha256 },
    #[error("{path} is locked by another writer")]
    InUse { path: PathBuf },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl StoreError {
    /// Wrap an I/O error with what we were doing; a full disk becomes `DiskFull` wherever it
    /// happens (write, fsync, mkdir, rename), so the person is told the real reason.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> StoreError {
        let context = context.into();
        if is_disk_full(&source) {
            StoreError::DiskFull { context, source }
        } else {
            StoreError::Io { context, source }
        }
    }

    pub(crate) fn io_at(what: &str, path: &Path, source: io::Error) -> StoreError {
        StoreError::io(format!("{what} {}", path.display()), source)
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

impl AppError for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidHash { .. } => "invalid-hash",
            StoreError::HashMismatch { .. } => "hash-mismatch",
            StoreError::NotFound { .. } => "blob-not-found",
            StoreError::DiskFull { .. } => "disk-full",
            StoreError::Corrupt { .. } => "blob-corrupt",
            StoreError::InUse { .. } => "upload-in-use",
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::ReadOnlyFilesystem => {
                "read-only"
            }
            StoreError::Io { .. } => "storage-io",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::InvalidHash { .. } | StoreError::HashMismatch { .. } => ErrorKind::BadRequest,
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::DiskFull { .. } => ErrorKind::InsufficientStorage,
            StoreError::InUse { .. } => ErrorKind::Conflict,
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::ReadOnlyFilesystem => {
                ErrorKind::Unavailable
            }
            StoreError::Corrupt { .. } | StoreError::Io { .. } => ErrorKind::Internal,
        }
    }

    fn user_message(&self) -> String {
        match self {
            StoreError::InvalidHash { reason } => format!("That is not a valid SHA-256 checksum: {reason}."),
            StoreError::HashMismatch { expected, actual } => format!(
                "The file did not arrive intact: your device said its SHA-256 checksum is {expected}, \
                 but what the server received has the checksum {actual}. Nothing was stored. \
                 Please upload the file again."
            ),
            StoreError::NotFound { .. } => "The file's content is not in the server's storage. \
                                            If it should be there, please tell your IT administrator."
                .into(),
            StoreError::DiskFull { .. } => {
                "The server's disk is full, so nothing was stored. Please tell your \
                                            IT administrator; try again once space has been freed."
                    .into()
            }
            StoreError::InUse { .. } => "This upload is already being written by another request. \
                                         Wait for that one to finish, then try again."
                .into(),
            StoreError::Io { .. } if self.code() == "read-only" => {
                "The server cannot write to its storage right now, so nothing was stored. \
                 Please tell your IT administrator."
                    .into()
            }
            StoreError::Corrupt { .. } | StoreError::Io { .. } => {
                "Something went wrong on the server while storing the file, so it was not saved. \
                 Please try again, and tell your IT administrator if it keeps happening."
                    .into()
            }
        }
    }
}
