//! The school's library: categories now; media items, search, recycle bin and archive arrive
//! with ingest. Owns the table `categories`.

pub mod captions;
pub mod catalogue;
pub mod categories;
pub mod lifecycle;
pub mod media;
pub mod positions;
pub mod renditions;
pub mod scrub;
pub mod thumbnails;

use crate::db::DbError;
use crate::error::{AppError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid category name: {0}")]
    InvalidName(&'static str),
    #[error("a category named {0:?} already exists here")]
    NameTaken(String),
    #[error("category move refused: {0}")]
    BadParent(&'static str),
    #[error("category is not empty: {0}")]
    NotEmpty(&'static str),
    #[error("not allowed in this state: {0}")]
    WrongStatus(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for LibraryError {
    fn from(e: rusqlite::Error) -> Self {
        LibraryError::Db(DbError::Sqlite(e))
    }
}

impl AppError for LibraryError {
    fn code(&self) -> &'static str {
        match self {
            LibraryError::NotFound(_) => "not-found",
            LibraryError::InvalidName(_) => "invalid-name",
            LibraryError::NameTaken(_) => "category-name-taken",
            LibraryError::BadParent(_) => "invalid-parent",
            LibraryError::NotEmpty(_) => "category-not-empty",
            LibraryError::WrongStatus(_) => "wrong-status",
            LibraryError::Db(e) => e.code(),
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            LibraryError::NotFound(_) => ErrorKind::NotFound,
            LibraryError::InvalidName(_) | LibraryError::BadParent(_) => ErrorKind::BadRequest,
            LibraryError::NameTaken(_) | LibraryError::NotEmpty(_) | LibraryError::WrongStatus(_) => {
                ErrorKind::Conflict
            }
            LibraryError::Db(e) => e.kind(),
        }
    }
    fn user_message(&self) -> String {
        match self {
            LibraryError::NotFound(what) => format!("That {what} does not exist (it may have been removed)."),
            LibraryError::InvalidName(why) => format!("That name cannot be used: {why}."),
            LibraryError::NameTaken(name) => {
                format!("A category called “{name}” already exists in the same place. Choose another name.")
            }
            LibraryError::BadParent(why) => format!("The category cannot go there: {why}."),
            LibraryError::NotEmpty(why) => format!("The category cannot be removed: {why}."),
            LibraryError::WrongStatus(why) => format!("That cannot be done right now: {why}."),
            LibraryError::Db(e) => e.user_message(),
        }
    }
}
