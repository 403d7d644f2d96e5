//! Server-side sessions. The cookie carries only a random 256-bit token; the table keeps its
//! SHA-256, so neither a database copy nor a log line can be replayed as a session.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::users::User;
use super::{AccountsError, random_token, token_hash};
use crate::clock::Timestamp;
use crate::db::ids::{SessionId, UserId};

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Seconds without a request before the session ends.
    pub idle_secs: i64,
    /// Seconds after sign-in before the session ends regardless.
    pub absolute_secs: i64,
}

impl SessionPolicy {
    pub fn from_config(cfg: &crate::config::SessionConfig) -> Self {
        SessionPolicy {
            idle_secs: i64::from(cfg.idle_timeout_minutes) * 60,
            absolute_secs: i64::from(cfg.absolute_lifetime_hours) * 3600,
        }
    }
}

/// Renew `last_seen_at` at most this often: one write a minute per active person, not one per request.
pub const TOUCH_INTERVAL_SECS: i64 = 60;

pub struct NewSession {
    pub id: SessionId,
    /// Goes into the cookie; never stored.
    pub token: String,
    pub csrf: String,
}

#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub id: SessionId,
    pub user: User,
    pub csrf: String,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub client_addr: String,
    pub user_agent: String,
}

pub fn create(
    conn: &Connection,
    user: UserId,
    policy: SessionPolicy,
    now: Timestamp,
    client_addr: &str,
    user_agent: &str,
) -> Result<NewSession, AccountsError> {
    let token = random_token();
    let csrf = random_token();
    let ua: String = user_agent.chars().take(256).collect();
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
        params![token_hash(&token), user, csrf, now, now + policy.absolute_secs, client_addr, ua],
    )?;
    Ok(NewSession { id: SessionId(conn.last_insert_rowid()), token, csrf })
}

/// The live session for `token`, or `None` when unknown, idle too long, past its lifetime, or
/// its account is disabled.
pub fn lookup(
    conn: &Connection,
    token: &str,
    policy: SessionPolicy,
    now: Timestamp,
) -> Result<Option<ActiveSession>, AccountsError> {
    let found = conn
        .prepare_cached(
            "SELECT s.id, s.csrf_token, s.last_seen_at, s.expires_at, s.user_id FROM sessions s WHERE s.token_hash = ?1",
        )?
        .query_row([token_hash(token)], |r| {
            Ok((r.get::<_, SessionId>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get::<_, UserId>(4)?))
        })
        .optional()?;
    let Some((id, csrf, last_seen_at, expires_at, user_id)) = found else { return Ok(None) };
    if !is_live(last_seen_at, expires_at, policy, now) {
        return Ok(None);
    }
    let Some(user) = super::users::get(conn, user_id)? else { return Ok(None) };
    if user.disabled {
        return Ok(None);
    }
    Ok(Some(ActiveSession { id, user, csrf, last_seen_at, expires_at }))
}

pub fn is_live(
    last_seen_at: Timestamp,
    expires_at: Timestamp,
    policy: SessionPolicy,
    now: Timestamp,
) -> bool {
    now < expires_at && now < last_seen_at + policy.idle_secs
}

/// Does this request need to renew the idle timer?
pub fn needs_touch(session: &ActiveSession, now: Timestamp) -> bool {
    now - session.last_seen_at >= TOUCH_INTERVAL_SECS
}

pub fn touch(conn: &Connection, id: SessionId, now: Timestamp) -> Result<(), AccountsError> {
    conn.execute("UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1", params![id, now])?;
    Ok(())
}

/// End one session; returns its owner when it existed.
pub fn revoke(conn: &Connection, id: SessionId) -> Result<Option<UserId>, AccountsError> {
    Ok(conn
        .query_row("DELETE FROM sessions WHERE id = ?1 RETURNING user_id", [id], |r| r.get(0))
        .optional()?)
}

pub fn revoke_all(conn: &Connection, user: UserId) -> Result<usize, AccountsError> {
    Ok(conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user])?)
}

pub fn list_for_user(
    conn: &Connection,
    user: UserId,
    policy: SessionPolicy,
    now: Timestamp,
) -> Result<Vec<SessionInfo>, AccountsError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, created_at, last_seen_at, expires_at, client_addr, user_agent
         FROM sessions WHERE user_id = ?1 ORDER BY last_seen_at DESC",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(SessionInfo {
            id: r.get(0)?,
            user_id: r.get(1)?,
            created_at: r.get(2)?,
            last_seen_at: r.get(3)?,
            expires_at: r.get(4)?,
            client_addr: r.get(5)?,
            user_agent: r.get(6)?,
        })
    })?;
    let all: Vec<SessionInfo> = rows.collect::<Result<_, _>>()?;
    Ok(all.into_iter().filter(|s| is_live(s.last_seen_at, s.expires_at, policy, now)).collect())
}

pub fn count_live(conn: &Connection, policy: SessionPolicy, now: Timestamp) -> Result<i64, AccountsError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sessions WHERE expires_at > ?1 AND last_seen_at > ?2",
        params![now, now - policy.idle_secs],
        |r| r.get(0),
    )?)
}

/// Remove sessions that can no longer be used.
pub fn purge_expired(
    conn: &Connection,
    policy: SessionPolicy,
    now: Timestamp,
) -> Result<usize, AccountsError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
        params![now, now - policy.idle_secs],
    )?)
}
