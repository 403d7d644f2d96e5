//! The append-only audit trail: who did what to what, when, from where, and how it ended.
//! The table refuses UPDATE and DELETE (triggers in the schema), so nothing in the product can
//! rewrite history.

use std::borrow::Cow;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::db::DbError;
use crate::db::ids::{AuditId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An event to record. Built with the chained setters; `action` is a stable dotted name.
/// Serialisable, so a replica can queue the events it sees and relay them to its primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub actor_id: Option<UserId>,
    pub actor: String,
    pub action: Cow<'static, str>,
    pub target_type: Cow<'static, str>,
    pub target_id: String,
    pub target: String,
    pub client_addr: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Event {
    pub fn new(action: &'static str) -> Event {
        Event {
            actor_id: None,
            actor: String::new(),
            action: Cow::Borrowed(action),
            target_type: Cow::Borrowed(""),
            target_id: String::new(),
            target: String::new(),
            client_addr: String::new(),
            outcome: Outcome::Success,
            detail: String::new(),
        }
    }
    pub fn actor(mut self, id: Option<UserId>, name: &str) -> Self {
        self.actor_id = id;
        self.actor = name.into();
        self
    }
    pub fn target(mut self, kind: &'static str, id: impl ToString, label: &str) -> Self {
        self.target_type = Cow::Borrowed(kind);
        self.target_id = id.to_string();
        self.target = label.into();
        self
    }
    pub fn addr(mut self, addr: &str) -> Self {
        self.client_addr = addr.into();
        self
    }
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

pub fn record(conn: &Connection, e: &Event, now: Timestamp) -> Result<AuditId, DbError> {
    conn.prepare_cached(
        "INSERT INTO audit_events (at, actor_id, actor, action, target_type, target_id, target, client_addr, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        now,
        e.actor_id,
        e.actor,
        e.action,
        e.target_type,
        e.target_id,
        e.target,
        e.client_addr,
        e.outcome.as_str(),
        e.detail
    ])?;
    Ok(AuditId(conn.last_insert_rowid()))
}

/// Record `e` unless the same action by the same actor (or, for anonymous visitors, the same
/// address) on the same target was recorded at or after `since`. For events that are counted
/// once per viewing, not per request (`playback.started`). Run it on the writer connection so
/// two requests at once cannot both record.
pub fn record_once_since(
    conn: &Connection,
    e: &Event,
    since: Timestamp,
    now: Timestamp,
) -> Result<bool, DbError> {
    let seen: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM audit_events
             WHERE action = ?1 AND at >= ?2 AND target_type = ?3 AND target_id = ?4
               AND ((?5 IS NOT NULL AND actor_id = ?5) OR (?5 IS NULL AND actor_id IS NULL AND client_addr = ?6)))",
        )?
        .query_row(params![e.action, since, e.target_type, e.target_id, e.actor_id, e.client_addr], |r| r.get(0))?;
    if seen {
        return Ok(false);
    }
    record(conn, e, now)?;
    Ok(true)
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub target: String,
    pub client_addr: String,
    pub outcome: String,
    pub detail: String,
}

/// Which events to list. Empty strings and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: String,
    /// An action or the start of one: `user.` lists every user change.
    pub action: String,
    pub target: String,
    pub outcome: Option<Outcome>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Events older than this id (paging, newest first).
    pub before: Option<AuditId>,
    pub limit: u32,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Events matching `f`, newest first.
pub fn list(conn: &Connection, f: &Filter) -> Result<Vec<AuditEvent>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor_id, actor, action, target_type, target_id, target, client_addr, outcome, detail
         FROM audit_events
         WHERE (?1 = '' OR actor LIKE ?1 ESCAPE '\\')
           AND (?2 = '' OR action LIKE ?2 ESCAPE '\\')
           AND (?3 = '' OR target LIKE ?3 ESCAPE '\\' OR target_id = ?8)
           AND (?4 IS NULL OR outcome = ?4)
           AND (?5 IS NULL OR at >= ?5)
           AND (?6 IS NULL OR at <= ?6)
           AND (?7 IS NULL OR id < ?7)
         ORDER BY id DESC LIMIT ?9",
    )?;
    let actor = if f.actor.is_empty() { String::new() } else { format!("%{}%", like_escape(&f.actor)) };
    let action = if f.action.is_empty() { String::new() } else { format!("{}%", like_escape(&f.action)) };
    let target = if f.target.is_empty() { String::new() } else { format!("%{}%", like_escape(&f.target)) };
    let limit = if f.limit == 0 { 100 } else { f.limit.min(10_000) };
    let rows = stmt.query_map(
        params![
            actor,
            action,
            target,
            f.outcome.map(Outcome::as_str),
            f.from,
            f.to,
            f.before,
            f.target,
            limit
        ],
        |r| {
            Ok(AuditEvent {
                id: r.get(0)?,
                at: r.get(1)?,
                actor_id: r.get(2)?,
                actor: r.get(3)?,
                action: r.get(4)?,
                target_type: r.get(5)?,
                target_id: r.get(6)?,
                target: r.get(7)?,
                client_addr: r.get(8)?,
                outcome: r.get(9)?,
                detail: r.get(10)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// CSV with a header row; times in RFC 3339 UTC.
pub fn to_csv(events: &[AuditEvent]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "time_utc",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target",
        "client_addr",
        "outcome",
        "detail",
    ])?;
    for e in events {
        w.write_record([
            e.id.to_string(),
            crate::clock::rfc3339(e.at),
            neutralise(&e.actor),
            e.action.clone(),
            e.target_type.clone(),
            e.target_id.clone(),
            neutralise(&e.target),
            e.client_addr.clone(),
            e.outcome.clone(),
            neutralise(&e.detail),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Spreadsheet programs run cells that start with `=`, `+`, `-` or `@` as formulas; names come
/// from people, so prefix such cells with a quote.
fn neutralise(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_only_and_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(dir.path(), 1).expect("db");
        db.write_blocking(|c| {
            record(c, &Event::new("user.create").actor(None, "admin").target("user", 2, "amy"), 100)?;
            record(c, &Event::new("sign-in").actor(None, "amy").outcome(Outcome::Failure), 200)?;
            record(c, &Event::new("sign-in").actor(None, "=cmd|calc").outcome(Outcome::Success), 300)?;
            Ok::<_, DbError>(())
        })
        .expect("record");
        let err = db
            .write_blocking(|c| c.execute("UPDATE audit_events SET actor = 'x'", []).map_err(DbError::from));
        assert!(err.is_err(), "updates are refused");
        let err = db.write_blocking(|c| c.execute("DELETE FROM audit_events", []).map_err(DbError::from));
        assert!(err.is_err(), "deletes are refused");

        let all = db.read_blocking(|c| list(c, &Filter::default())).expect("list");
        assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), vec![300, 200, 100], "newest first");
        let f = Filter { action: "sign-in".into(), outcome: Some(Outcome::Failure), ..Default::default() };
        let failures = db.read_blocking(|c| list(c, &f)).expect("list");
        assert_eq!(failures.len(), 1);
        let f = Filter { from: Some(150), to: Some(250), ..Default::default() };
        assert_eq!(db.read_blocking(|c| list(c, &f)).expect("list").len(), 1);
        let csv = String::from_utf8(to_csv(&all).expect("csv")).expect("utf8");
        assert!(csv.starts_with("id,time_utc,actor"));
        assert!(csv.contains("'=cmd|calc"), "formula cells are neutralised: {csv}");
    }
}
