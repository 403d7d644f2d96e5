//! API tokens for scripts (`Authorization: Bearer rbx_...`). Stored as SHA-256; shown once.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::users::User;
use super::{AccountsError, random_token, token_hash};
use crate::clock::Timestamp;
use crate::db::ids::{TokenId, UserId};

pub const PREFIX: &str = "rbx_";
/// Record `last_used_at` at most this often per token.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: TokenId,
    pub user_id: UserId,
    pub username: String,
    pub name: String,
    /// The first characters, so a person can tell their tokens apart.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

pub fn create(
    conn: &Connection,
    user: UserId,
    name: &str,
    now: Timestamp,
) -> Result<(TokenId, String), AccountsError> {
    super::check_name(name, 100).map_err(AccountsError::InvalidName)?;
    let token = format!("{PREFIX}{}", random_token());
    let prefix: String = token.chars().take(PREFIX.len() + 6).collect();
    conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user, name, token_hash(&token), prefix, now],
    )?;
    Ok((TokenId(conn.last_insert_rowid()), token))
}

/// The token's id and owner when the token is valid (not revoked, owner enabled).
pub fn lookup(
    conn: &Connection,
    token: &str,
) -> Result<Option<(TokenId, Option<Timestamp>, User)>, AccountsError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let found = conn
        .prepare_cached(
            "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([token_hash(token)], |r| Ok((r.get::<_, TokenId>(0)?, r.get::<_, UserId>(1)?, r.get(2)?)))
        .optional()?;
    let Some((id, user_id, last_used)) = found else { return Ok(None) };
    match super::users::get(conn, user_id)? {
        Some(user) if !user.disabled => Ok(Some((id, last_used, user))),
        _ => Ok(None),
    }
}

pub fn needs_touch(last_used: Option<Timestamp>, now: Timestamp) -> bool {
    last_used.is_none_or(|t| now - t >= LAST_USED_GRANULARITY_SECS)
}

pub fn touch(conn: &Connection, id: TokenId, now: Timestamp) -> Result<(), AccountsError> {
    conn.execute("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1", params![id, now])?;
    Ok(())
}

const SELECT: &str =
    "SELECT t.id, t.user_id, u.username, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at
                      FROM api_tokens t JOIN users u ON u.id = t.user_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        user_id: r.get(1)?,
        username: r.get(2)?,
        name: r.get(3)?,
        prefix: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// Tokens of one user, or of everyone when `user` is `None`; newest first.
pub fn list(conn: &Connection, user: Option<UserId>) -> Result<Vec<TokenInfo>, AccountsError> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id DESC"))?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, id: TokenId) -> Result<Option<TokenInfo>, AccountsError> {
    Ok(conn.query_row(&format!("{SELECT} WHERE t.id = ?1"), [id], from_row).optional()?)
}

/// Revoke; idempotent. Returns the token as it was.
pub fn revoke(conn: &Connection, id: TokenId, now: Timestamp) -> Result<TokenInfo, AccountsError> {
    let info = get(conn, id)?.ok_or(AccountsError::NotFound("API token"))?;
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ifnull(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    Ok(info)
}
