//! Sign-in throttling: exponential backoff per account and per client address, and a hard cap
//! of failures per account per hour. Unknown usernames are counted the same way as real ones so
//! the responses do not reveal which accounts exist.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::AccountsError;
use crate::clock::Timestamp;
use crate::config::LoginConfig;

const WINDOW_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct Lockout {
    pub username: String,
    pub failures_last_hour: u32,
    pub locked_until: Timestamp,
}

fn failures(
    conn: &Connection,
    column: &str,
    key: &str,
    now: Timestamp,
) -> Result<(u32, Timestamp, Timestamp), AccountsError> {
    // `column` is one of two constants below, never input.
    Ok(conn.query_row(
        &format!("SELECT count(*), ifnull(min(at), 0), ifnull(max(at), 0) FROM login_failures WHERE {column} = ?1 AND at > ?2"),
        params![key, now - WINDOW_SECS],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

/// When the next attempt is allowed, given `count` failures, the first and last in the window.
fn allowed_at(
    count: u32,
    first: Timestamp,
    last: Timestamp,
    free: u32,
    cap: Option<u32>,
    max_backoff: u32,
) -> Timestamp {
    if let Some(cap) = cap
        && count >= cap
    {
        return first + WINDOW_SECS;
    }
    if count < free {
        return 0;
    }
    let exponent = (count - free).min(20);
    let wait = (1i64 << exponent).min(i64::from(max_backoff));
    last + wait
}

/// Seconds to wait before another attempt for this account from this address, if any.
pub fn check(
    conn: &Connection,
    cfg: &LoginConfig,
    username: &str,
    client_addr: &str,
    now: Timestamp,
) -> Result<Option<u64>, AccountsError> {
    let (n, first, last) = failures(conn, "username", username, now)?;
    let by_account = allowed_at(
        n,
        first,
        last,
        cfg.free_failures,
        Some(cfg.max_failures_per_hour),
        cfg.max_backoff_seconds,
    );
    let (n, first, last) = failures(conn, "client_addr", client_addr, now)?;
    let by_addr = allowed_at(n, first, last, cfg.free_failures_per_address, None, cfg.max_backoff_seconds);
    let until = by_account.max(by_addr);
    Ok((until > now).then(|| (until - now) as u64))
}

/// Count a failure. Returns true when this failure starts a lockout (for the audit trail).
pub fn record_failure(
    conn: &Connection,
    cfg: &LoginConfig,
    username: &str,
    client_addr: &str,
    now: Timestamp,
) -> Result<bool, AccountsError> {
    let name: String = username.chars().take(128).collect();
    conn.execute(
        "INSERT INTO login_failures (username, client_addr, at) VALUES (?1, ?2, ?3)",
        params![name, client_addr, now],
    )?;
    conn.execute("DELETE FROM login_failures WHERE at <= ?1", [now - WINDOW_SECS])?;
    let (n, _, _) = failures(conn, "username", &name, now)?;
    Ok(n == cfg.free_failures || n == cfg.max_failures_per_hour)
}

/// Forget an account's failures (after a successful sign-in, or an administrator's unlock).
pub fn clear(conn: &Connection, username: &str) -> Result<usize, AccountsError> {
    Ok(conn.execute("DELETE FROM login_failures WHERE username = ?1", [username])?)
}

/// Accounts that cannot sign in right now because of failures, for the admin console.
pub fn lockouts(conn: &Connection, cfg: &LoginConfig, now: Timestamp) -> Result<Vec<Lockout>, AccountsError> {
    let mut stmt = conn.prepare_cached(
        "SELECT username, count(*), min(at), max(at) FROM login_failures WHERE at > ?1
         GROUP BY username COLLATE NOCASE ORDER BY max(at) DESC LIMIT 500",
    )?;
    let rows = stmt.query_map([now - WINDOW_SECS], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (username, n, first, last) = row?;
        let until = allowed_at(
            n,
            first,
            last,
            cfg.free_failures,
            Some(cfg.max_failures_per_hour),
            cfg.max_backoff_seconds,
        );
        if until > now {
            out.push(Lockout { username, failures_last_hour: n, locked_until: until });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(allowed_at(4, 100, 200, 5, Some(100), 900), 0);
        assert_eq!(allowed_at(5, 100, 200, 5, Some(100), 900), 201);
        assert_eq!(allowed_at(6, 100, 200, 5, Some(100), 900), 202);
        assert_eq!(allowed_at(9, 100, 200, 5, Some(100), 900), 216);
        assert_eq!(allowed_at(30, 100, 200, 5, Some(100), 900), 1100);
        assert_eq!(
            allowed_at(100, 100, 200, 5, Some(100), 900),
            3700,
            "hard cap holds until the window passes"
        );
    }
}
