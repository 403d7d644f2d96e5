//! What every module's error enum tells the web layer: a stable code, the kind of failure
//! (which picks the HTTP status) and a message meant for the person. The `Display` text is
//! the detail for the log and is never sent to the client for server-side failures.

use crate::db::DbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    /// The content is of a type the server does not accept (415).
    UnsupportedMediaType,
    /// Well-formed but wrong, e.g. a checksum that does not match the content (422).
    Unprocessable,
    TooManyRequests {
        retry_after_secs: u64,
    },
    InsufficientStorage,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn is_client_error(self) -> bool {
        !matches!(self, ErrorKind::InsufficientStorage | ErrorKind::Unavailable | ErrorKind::Internal)
    }
}

pub trait AppError: std::error::Error {
    /// Stable kebab-case code, part of the API.
    fn code(&self) -> &'static str;
    fn kind(&self) -> ErrorKind;
    /// What the person should read: what went wrong and what to do.
    fn user_message(&self) -> String;
}

impl AppError for DbError {
    fn code(&self) -> &'static str {
        DbError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        match self {
            DbError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                ErrorKind::InsufficientStorage
            }
            DbError::Sqlite(_) if self.is_storage_problem() => ErrorKind::Unavailable,
            DbError::Pool(_) | DbError::Poisoned | DbError::ReadOnlyReplica => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
    fn user_message(&self) -> String {
        match self.code() {
            "disk-full" => {
                "The server's disk is full, so nothing was saved. Please tell your IT administrator; \
                            try again once space has been freed."
                    .into()
            }
            "read-only" => "The server cannot write to its data directory right now, so nothing was saved. \
                            Please tell your IT administrator."
                .into(),
            "db-unavailable" => "The server is busy. Please try again in a moment.".into(),
            "replica-read-only" => {
                "This server is temporarily read-only: it is the school's standby copy and \
                                    cannot reach the main server right now. Nothing was saved; please try \
                                    again in a few minutes."
                    .into()
            }
            _ => "Something went wrong on the server. Nothing you entered was lost; please try again, \
                  and tell your IT administrator if it keeps happening."
                .into(),
        }
    }
}
