//! People and what they may do: users, passwords, sessions, API tokens, groups, grants and
//! sign-in throttling. This module owns the tables `users`, `groups`, `group_members`,
//! `grants`, `sessions`, `api_tokens` and `login_failures`.

pub mod grants;
pub mod groups;
pub mod login;
pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use crate::db::DbError;
use crate::error::{AppError, ErrorKind};

pub use passwords::{Hasher, PasswordRule};

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("sign-in throttled for {retry_after_secs}s")]
    Throttled { retry_after_secs: u64 },
    #[error("account is disabled")]
    Disabled,
    #[error("password rejected: {0}")]
    PasswordRejected(#[from] PasswordRule),
    #[error("current password is wrong")]
    WrongCurrentPassword,
    #[error("username {0:?} is already taken")]
    UsernameTaken(String),
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    #[error("group name {0:?} is already taken")]
    GroupNameTaken(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Refused(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Library(#[from] crate::library::LibraryError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for AccountsError {
    fn from(e: rusqlite::Error) -> Self {
        AccountsError::Db(DbError::Sqlite(e))
    }
}

impl AppError for AccountsError {
    fn code(&self) -> &'static str {
        match self {
            AccountsError::InvalidCredentials => "invalid-credentials",
            AccountsError::Throttled { .. } => "sign-in-throttled",
            AccountsError::Disabled => "account-disabled",
            AccountsError::PasswordRejected(_) => "password-rejected",
            AccountsError::WrongCurrentPassword => "wrong-current-password",
            AccountsError::UsernameTaken(_) => "username-taken",
            AccountsError::InvalidUsername(_) => "invalid-username",
            AccountsError::InvalidName(_) => "invalid-name",
            AccountsError::GroupNameTaken(_) => "group-name-taken",
            AccountsError::NotFound(_) => "not-found",
            AccountsError::Refused(_) => "refused",
            AccountsError::Hashing(_) => "password-hashing",
            AccountsError::Library(e) => e.code(),
            AccountsError::Db(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            AccountsError::InvalidCredentials | AccountsError::Disabled => ErrorKind::Unauthorized,
            AccountsError::Throttled { retry_after_secs } => {
                ErrorKind::TooManyRequests { retry_after_secs: *retry_after_secs }
            }
            AccountsError::PasswordRejected(_)
            | AccountsError::WrongCurrentPassword
            | AccountsError::InvalidUsername(_)
            | AccountsError::InvalidName(_) => ErrorKind::BadRequest,
            AccountsError::UsernameTaken(_)
            | AccountsError::GroupNameTaken(_)
            | AccountsError::Refused(_) => ErrorKind::Conflict,
            AccountsError::NotFound(_) => ErrorKind::NotFound,
            AccountsError::Hashing(_) => ErrorKind::Internal,
            AccountsError::Library(e) => e.kind(),
            AccountsError::Db(e) => e.kind(),
        }
    }

    fn user_message(&self) -> String {
        match self {
            AccountsError::InvalidCredentials => {
                "The username or password is not right. Check them and try again.".into()
            }
            AccountsError::Throttled { retry_after_secs } => format!(
                "Too many unsuccessful sign-in attempts. Please wait {} before trying again, \
                 or ask your IT administrator to unlock the account.",
                human_wait(*retry_after_secs)
            ),
            AccountsError::Disabled => {
                "This account has been disabled. Ask your IT administrator if you think this is a mistake."
                    .into()
            }
            AccountsError::PasswordRejected(rule) => format!("That password cannot be used: it {rule}."),
            AccountsError::WrongCurrentPassword => "Your current password is not right.".into(),
            AccountsError::UsernameTaken(name) => {
                format!("The username “{name}” is already taken. Choose another.")
            }
            AccountsError::InvalidUsername(why) => format!("That username cannot be used: {why}."),
            AccountsError::InvalidName(why) => format!("That name cannot be used: {why}."),
            AccountsError::GroupNameTaken(name) => format!("A group called “{name}” already exists."),
            AccountsError::NotFound(what) => {
                format!("That {what} does not exist (it may have been removed).")
            }
            AccountsError::Refused(why) => format!("Not done: {why}."),
            AccountsError::Hashing(_) => "Something went wrong on the server while handling the password. \
                                          Please try again."
                .into(),
            AccountsError::Library(e) => e.user_message(),
            AccountsError::Db(e) => e.user_message(),
        }
    }
}

pub fn human_wait(secs: u64) -> String {
    match secs {
        0..=1 => "a second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "a minute".into(),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

/// 32 random bytes as URL-safe base64: session tokens, CSRF tokens, API tokens.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens are stored as their SHA-256: a stolen database does not yield usable sessions.
pub fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Rules shared by usernames, group and category names.
pub fn check_name(name: &str, max: usize) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("it is empty");
    }
    if name.trim() != name {
        return Err("it starts or ends with a space");
    }
    if name.chars().count() > max {
        return Err("it is too long");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    Ok(())
}
