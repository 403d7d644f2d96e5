//! User accounts.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::AccountsError;
use crate::clock::Timestamp;
use crate::db::ids::UserId;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

impl User {
    /// The name to show: the display name, or the username when none is set.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() { &self.username } else { &self.display_name }
    }
}

const COLUMNS: &str = "id, username, display_name, email, is_admin, must_change_password, disabled_at, created_at, last_login_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        email: r.get(3)?,
        is_admin: r.get(4)?,
        must_change_password: r.get(5)?,
        disabled: r.get::<_, Option<i64>>(6)?.is_some(),
        created_at: r.get(7)?,
        last_login_at: r.get(8)?,
    })
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    /// A PHC string from [`super::Hasher::hash`]; `None` for accounts that sign in elsewhere.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub must_change_password: bool,
}

pub fn check_username(name: &str) -> Result<(), AccountsError> {
    if name.is_empty() {
        return Err(AccountsError::InvalidUsername("it is empty"));
    }
    if name.chars().count() > 64 {
        return Err(AccountsError::InvalidUsername("it is longer than 64 characters"));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')) {
        return Err(AccountsError::InvalidUsername("use letters, digits and . _ - @ only"));
    }
    Ok(())
}

pub fn create(conn: &Connection, new: NewUser<'_>, now: Timestamp) -> Result<User, AccountsError> {
    check_username(new.username)?;
    super::check_name(new.display_name, 128)
        .or_else(|e| if new.display_name.is_empty() { Ok(()) } else { Err(e) })
        .map_err(AccountsError::InvalidName)?;
    let result = conn.execute(
        "INSERT INTO users (username, display_name, email, password_hash, is_admin, must_change_password, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            new.username,
            new.display_name,
            new.email,
            new.password_hash,
            new.is_admin,
            new.must_change_password,
            now
        ],
    );
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(AccountsError::UsernameTaken(new.username.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    get(conn, UserId(conn.last_insert_rowid()))?.ok_or(AccountsError::NotFound("user"))
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

pub fn get(conn: &Connection, id: UserId) -> Result<Option<User>, AccountsError> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"), [id], from_row).optional()?)
}

pub fn require(conn: &Connection, id: UserId) -> Result<User, AccountsError> {
    get(conn, id)?.ok_or(AccountsError::NotFound("user"))
}

/// Every account, by id (`reelbox compare`).
pub fn all(conn: &Connection) -> Result<Vec<User>, AccountsError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn by_username(conn: &Connection, username: &str) -> Result<Option<User>, AccountsError> {
    Ok(conn
        .query_row(&format!("SELECT {COLUMNS} FROM users WHERE username = ?1"), [username], from_row)
        .optional()?)
}

/// The user and their stored password hash, for sign-in.
pub fn credentials(
    conn: &Connection,
    username: &str,
) -> Result<Option<(User, Option<String>)>, AccountsError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE username = ?1"),
            [username],
            |r| Ok((from_row(r)?, r.get(9)?)),
        )
        .optional()?)
}

pub fn password_hash(conn: &Connection, id: UserId) -> Result<Option<String>, AccountsError> {
    Ok(conn
        .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Users whose username or display name contains `query` (all when empty), by username.
pub fn search(conn: &Connection, query: &str, limit: u32) -> Result<Vec<User>, AccountsError> {
    let pattern = format!("%{}%", query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE username LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\'
         ORDER BY username LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![pattern, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count(conn: &Connection) -> Result<(i64, i64, i64), AccountsError> {
    Ok(conn.query_row(
        "SELECT count(*), ifnull(sum(is_admin), 0), ifnull(sum(disabled_at IS NOT NULL), 0) FROM users",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

/// True when at least one enabled administrator exists (the first-run setup is then closed).
pub fn admin_exists(conn: &Connection) -> Result<bool, AccountsError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE is_admin = 1 AND disabled_at IS NULL)",
        [],
        |r| r.get(0),
    )?)
}

fn enabled_admins_other_than(conn: &Connection, id: UserId) -> Result<i64, AccountsError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE is_admin = 1 AND disabled_at IS NULL AND id <> ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Disable (ending every session and token use) or enable an account. Call inside a transaction.
pub fn set_disabled(
    tx: &Connection,
    id: UserId,
    disabled: bool,
    now: Timestamp,
) -> Result<User, AccountsError> {
    let user = require(tx, id)?;
    if disabled && user.is_admin && enabled_admins_other_than(tx, id)? == 0 {
        return Err(AccountsError::Refused(
            "this is the last enabled administrator; make someone else an administrator first",
        ));
    }
    tx.execute(
        "UPDATE users SET disabled_at = CASE WHEN ?2 THEN ifnull(disabled_at, ?3) ELSE NULL END WHERE id = ?1",
        params![id, disabled, now],
    )?;
    if disabled {
        // Sessions end and API tokens are revoked for good: enabling the account again must not
        // bring back credentials that may have leaked while it was disabled.
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
    }
    require(tx, id)
}

/// Make or unmake a site administrator. Call inside a transaction.
pub fn set_admin(tx: &Connection, id: UserId, admin: bool) -> Result<User, AccountsError> {
    let user = require(tx, id)?;
    if !admin && user.is_admin && enabled_admins_other_than(tx, id)? == 0 {
        return Err(AccountsError::Refused("this is the last enabled administrator"));
    }
    tx.execute("UPDATE users SET is_admin = ?2 WHERE id = ?1", params![id, admin])?;
    require(tx, id)
}

pub fn update_profile(
    conn: &Connection,
    id: UserId,
    display_name: &str,
    email: Option<&str>,
) -> Result<User, AccountsError> {
    if !display_name.is_empty() {
        super::check_name(display_name, 128).map_err(AccountsError::InvalidName)?;
    }
    let n = conn.execute(
        "UPDATE users SET display_name = ?2, email = ?3 WHERE id = ?1",
        params![id, display_name, email],
    )?;
    if n == 0 {
        return Err(AccountsError::NotFound("user"));
    }
    require(conn, id)
}

/// Store a new password hash. `must_change` marks a temporary password set by an administrator.
/// When `end_sessions_except` is given, every other session of the user ends.
pub fn set_password_hash(
    conn: &mut Connection,
    id: UserId,
    hash: &str,
    must_change: bool,
    end_sessions_except: Option<Option<crate::db::ids::SessionId>>,
) -> Result<(), AccountsError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = ?3 WHERE id = ?1",
        params![id, hash, must_change],
    )?;
    if n == 0 {
        return Err(AccountsError::NotFound("user"));
    }
    if let Some(keep) = end_sessions_except {
        tx.execute("DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2", params![id, keep])?;
    }
    tx.commit()?;
    Ok(())
}

/// Upgrade a hash in place after a successful sign-in (parameters raised).
pub fn rehash(conn: &Connection, id: UserId, hash: &str) -> Result<(), AccountsError> {
    conn.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![id, hash])?;
    Ok(())
}

pub fn record_login(conn: &Connection, id: UserId, now: Timestamp) -> Result<(), AccountsError> {
    conn.execute("UPDATE users SET last_login_at = ?2 WHERE id = ?1", params![id, now])?;
    Ok(())
}
