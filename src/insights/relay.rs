//! Audit events seen on a replica and recorded on the primary, each exactly once.
//!
//! A replica numbers the events it queues (per node, increasing); the primary records those
//! above the number it last recorded for that node and keeps the new highest number in
//! `audit_relay`, in the same transaction. A batch sent again after a lost answer is therefore
//! recorded once, and a promoted replica reads its own row (replicated from the old primary) to
//! learn which queued events were already recorded.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use crate::clock::Timestamp;
use crate::db::DbError;

/// One queued event: its number on the node that saw it, when, and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relayed {
    pub seq: u64,
    pub at: Timestamp,
    /// Count it once per person (or address) and target within this many seconds before `at`
    /// (`playback.started`), as the primary does for its own viewers.
    #[serde(default)]
    pub once_within: Option<i64>,
    pub event: Event,
}

/// What a replica sends to the primary in one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub node: String,
    pub events: Vec<Relayed>,
}

/// The highest number recorded for `node` (0 when none).
pub fn recorded_up_to(conn: &Connection, node: &str) -> Result<u64, DbError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM audit_relay WHERE node = ?1")?
        .query_row([node], |r| r.get(0))
        .optional()?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

/// Record the events of `batch` not recorded before, in one transaction; returns the highest
/// number now recorded for the node (what the replica may drop from its queue). Times from the
/// future are clamped to `now`.
pub fn record(conn: &mut Connection, batch: &Batch, now: Timestamp) -> Result<u64, DbError> {
    let tx = conn.transaction()?;
    let mut done = recorded_up_to(&tx, &batch.node)?;
    let mut sorted: Vec<&Relayed> = batch.events.iter().filter(|r| r.seq > done).collect();
    sorted.sort_by_key(|r| r.seq);
    for r in sorted {
        let at = r.at.min(now);
        match r.once_within {
            Some(window) => {
                audit::record_once_since(&tx, &r.event, at - window, at)?;
            }
            None => {
                audit::record(&tx, &r.event, at)?;
            }
        }
        done = r.seq;
    }
    tx.prepare_cached(
        "INSERT INTO audit_relay (node, seq) VALUES (?1, ?2)
         ON CONFLICT (node) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![batch.node, done as i64])?;
    tx.commit()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated database in a directory that lives as long as the connection is used.
    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(dir.path(), 1).expect("open");
        let conn = db.open_connection(false).expect("conn");
        (dir, conn)
    }

    fn playback(seq: u64, at: Timestamp, who: &str) -> Relayed {
        Relayed {
            seq,
            at,
            once_within: Some(3600),
            event: Event::new("playback.started").addr(who).target("media", 7, "Volcanoes"),
        }
    }

    fn count(conn: &Connection, action: &str) -> i64 {
        conn.query_row("SELECT count(*) FROM audit_events WHERE action = ?1", [action], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_batch_sent_twice_is_recorded_once_and_windows_hold() {
        let (_dir, mut conn) = db();
        let batch = Batch {
            node: "node-aaaaaaaa".into(),
            events: vec![
                playback(1, 1000, "10.0.0.1"),
                // The same viewer again within the hour: one viewing.
                playback(2, 1500, "10.0.0.1"),
                playback(3, 1600, "10.0.0.2"),
                Relayed {
                    seq: 4,
                    at: 1700,
                    once_within: None,
                    event: Event::new("media.downloaded").addr("10.0.0.2").target("media", 7, "Volcanoes"),
                },
            ],
        };
        assert_eq!(record(&mut conn, &batch, 2000).expect("record"), 4);
        assert_eq!(record(&mut conn, &batch, 2000).expect("again"), 4);
        assert_eq!(count(&conn, "playback.started"), 2);
        assert_eq!(count(&conn, "media.downloaded"), 1);
        assert_eq!(recorded_up_to(&conn, "node-aaaaaaaa").expect("seq"), 4);
        assert_eq!(recorded_up_to(&conn, "node-bbbbbbbb").expect("seq"), 0);
        let addr: String = conn
            .query_row("SELECT client_addr FROM audit_events WHERE action = 'media.downloaded'", [], |r| {
                r.get(0)
            })
            .expect("addr");
        assert_eq!(addr, "10.0.0.2");
    }

    #[test]
    fn later_numbers_only_and_no_times_from_the_future() {
        let (_dir, mut conn) = db();
        let first = Batch { node: "node-aaaaaaaa".into(), events: vec![playback(5, 1000, "10.0.0.1")] };
        record(&mut conn, &first, 2000).expect("record");
        // An older number (already recorded) and a newer one with a clock ahead of ours.
        let second = Batch {
            node: "node-aaaaaaaa".into(),
            events: vec![playback(4, 1000, "10.0.0.9"), playback(6, 99_999, "10.0.0.3")],
        };
        assert_eq!(record(&mut conn, &second, 3000).expect("record"), 6);
        assert_eq!(count(&conn, "playback.started"), 2);
        let latest: i64 =
            conn.query_row("SELECT max(at) FROM audit_events", [], |r| r.get(0)).expect("max at");
        assert_eq!(latest, 3000);
    }
}
