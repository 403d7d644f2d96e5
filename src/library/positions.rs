//! Where each person stopped watching each item, so the player resumes there. Owns the table
//! `playback_positions`.

use rusqlite::{Connection, OptionalExtension, params};

use super::LibraryError;
use crate::clock::Timestamp;
use crate::db::ids::{MediaId, UserId};

/// Positions this close to the start are not worth resuming from.
const MIN_RESUME_SECS: f64 = 5.0;

/// The saved position of `user` in `media`, in seconds (0 when none).
pub fn get(conn: &Connection, user: UserId, media: MediaId) -> Result<f64, LibraryError> {
    Ok(conn
        .query_row(
            "SELECT seconds FROM playback_positions WHERE user_id = ?1 AND media_id = ?2",
            params![user, media],
            |r| r.get::<_, f64>(0),
        )
        .optional()?
        .unwrap_or(0.0))
}

/// Save a position; one near the start (or a nonsense value) clears it.
pub fn set(
    conn: &Connection,
    user: UserId,
    media: MediaId,
    seconds: f64,
    now: Timestamp,
) -> Result<(), LibraryError> {
    if !seconds.is_finite() || seconds < MIN_RESUME_SECS {
        conn.execute(
            "DELETE FROM playback_positions WHERE user_id = ?1 AND media_id = ?2",
            params![user, media],
        )?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO playback_positions (user_id, media_id, seconds, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, media_id) DO UPDATE SET seconds = excluded.seconds, updated_at = excluded.updated_at",
        params![user, media, seconds.min(7.0 * 24.0 * 3600.0), now],
    )?;
    Ok(())
}
