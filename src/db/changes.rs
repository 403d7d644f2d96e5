//! Commits by other processes. The command line (`user add`, `token create`, `archive
//! restore`, `recover`) writes the database beside the running server, without passing through
//! its [`Db`], so the server's caches of database state (sessions, access, items) would not know.
//!
//! Two watches, for two kinds of writer:
//! - **inotify on the data directory**, read on every [`Db::generation`] call (one `read` that
//!   usually answers "nothing"; the web layer makes that call once per request, as it starts,
//!   and reads [`Db::known_generation`] after it). A commit writes the WAL file, and a process
//!   that wrote it closes it when it ends — after its commit is visible to readers. By the time
//!   the command has exited, its events are queued, so the next request after `reelbox archive
//!   restore` already sees the restored item. (The write itself is noticed too, but it can come
//!   just before the commit is visible; the close is what makes the command line exact.)
//! - **`PRAGMA data_version`** polled by a thread every [`OTHER_WRITERS_POLL`], for a writer
//!   that commits and stays open, and for when inotify is unavailable (its limits reached).
//!
//! This process's own commits produce events too and bump the generation again: harmless, its
//! writes bump it anyway.

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rustix::fd::OwnedFd;
use rustix::fs::inotify;

use super::{DB_FILE, Db, DbError};

/// How often the data-version thread looks for commits by other processes.
pub const OTHER_WRITERS_POLL: Duration = Duration::from_millis(200);

/// A non-blocking inotify descriptor on the data directory.
pub(super) struct ChangeWatch {
    fd: OwnedFd,
    /// Held while events are drained and the generation bumped, so a concurrent caller cannot
    /// read the old generation after another has taken the events that end it.
    draining: Mutex<()>,
}

impl ChangeWatch {
    fn new(dir: &Path) -> rustix::io::Result<ChangeWatch> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let flags = inotify::WatchFlags::MODIFY
            | inotify::WatchFlags::CLOSE_WRITE
            | inotify::WatchFlags::CREATE
            | inotify::WatchFlags::DELETE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::MOVED_FROM;
        inotify::add_watch(&fd, dir, flags)?;
        Ok(ChangeWatch { fd, draining: Mutex::new(()) })
    }

    /// Drain the queued events; bump `generation` if any concerns the database's files.
    pub(super) fn bump_if_changed(&self, generation: &AtomicU64) {
        let Ok(_held) = self.draining.lock() else { return };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&self.fd, &mut buf);
        let mut changed = false;
        loop {
            match events.next() {
                Ok(event) => changed |= concerns_database(&event),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => {
                    // Not expected from a valid descriptor; count it as a change, never as
                    // "nothing happened".
                    tracing::debug!(error = %e, "reading the database change watch");
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            generation.fetch_add(1, Ordering::Release);
        }
    }
}

fn concerns_database(event: &inotify::Event<'_>) -> bool {
    if event.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
        return true;
    }
    let Some(name) = event.file_name().map(|n| n.to_bytes()) else { return false };
    let wal = name.strip_suffix(b"-wal").is_some_and(|n| n == DB_FILE.as_bytes());
    let replaced = !event.events().intersects(inotify::ReadFlags::MODIFY | inotify::ReadFlags::CLOSE_WRITE);
    // Checkpoints write the database file itself without changing what it holds; only its
    // replacement (a restore moving a file into place) counts.
    wal || (replaced && name == DB_FILE.as_bytes())
}

impl Db {
    /// Start noticing commits by other processes (see the module's notes). The polling thread
    /// ends when the last handle of this `Db` is dropped.
    pub fn watch_other_writers(&self) -> Result<(), DbError> {
        if let Some(dir) = self.path.parent() {
            match ChangeWatch::new(dir) {
                Ok(watch) => {
                    let _ = self.changes.set(watch);
                }
                Err(e) => tracing::warn!(
                    error = %e, dir = %dir.display(),
                    "cannot watch the data directory (inotify); commands' changes reach the caches within {OTHER_WRITERS_POLL:?}"
                ),
            }
        }
        let conn = self.open_connection(true)?;
        let generation = Arc::downgrade(&self.generation);
        let version = |c: &Connection| c.pragma_query_value(None, "data_version", |r| r.get::<_, i64>(0));
        let mut last = version(&conn)?;
        std::thread::Builder::new()
            .name("db-change-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(OTHER_WRITERS_POLL);
                    let Some(generation) = generation.upgrade() else { return };
                    match version(&conn) {
                        Ok(now) if now != last => {
                            last = now;
                            generation.fetch_add(1, Ordering::Release);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "could not read the database's data version"),
                    }
                }
            })
            .map_err(|e| DbError::Task(format!("starting the change watch: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database in a temporary directory, watched, and its generation before any change.
    fn watched() -> (tempfile::TempDir, Db, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("open");
        db.watch_other_writers().expect("watch");
        let quiet = db.generation();
        (dir, db, quiet)
    }

    /// A commit by a connection that stays open (a long-running other process) is seen by the
    /// polling thread.
    #[test]
    fn a_writer_that_stays_open_bumps_the_generation_within_the_poll() {
        let (_dir, db, quiet) = watched();
        std::thread::sleep(OTHER_WRITERS_POLL * 3);
        assert_eq!(db.generation(), quiet, "nothing was written, nothing to drop");

        let other = Connection::open(db.path()).expect("another writer");
        other
            .execute("INSERT INTO categories (name, created_at) VALUES ('from elsewhere', 0)", [])
            .expect("insert");
        let deadline = std::time::Instant::now() + OTHER_WRITERS_POLL * 25;
        while db.generation() == quiet {
            assert!(std::time::Instant::now() < deadline, "the other writer's commit went unnoticed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A command that commits and exits: its commit counts on the very next call, with no
    /// polling interval to wait out. The data-version thread cannot have run in between: it
    /// sleeps a whole interval after starting.
    #[test]
    fn a_command_that_committed_and_ended_counts_at_once() {
        let (_dir, db, quiet) = watched();
        // Reads and checkpoints are not changes.
        db.read_blocking(|c| {
            c.query_row("SELECT count(*) FROM categories", [], |r| r.get::<_, i64>(0)).map_err(DbError::from)
        })
        .expect("read");
        assert_eq!(db.generation(), quiet, "a read is not a change");

        let other = Connection::open(db.path()).expect("the command's connection");
        other
            .execute("INSERT INTO categories (name, created_at) VALUES ('restored', 0)", [])
            .expect("insert");
        drop(other);
        let seen = db.generation();
        assert_ne!(seen, quiet, "the command's commit was not noticed at once");
        assert_eq!(db.generation(), seen, "the events are drained once");
    }

    #[test]
    fn only_the_database_files_concern_the_caches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watch = ChangeWatch::new(dir.path()).expect("inotify");
        let generation = AtomicU64::new(0);
        std::fs::write(dir.path().join("config.toml"), "x").expect("write");
        std::fs::write(dir.path().join(format!("{DB_FILE}-shm")), "x").expect("write");
        watch.bump_if_changed(&generation);
        assert_eq!(generation.load(Ordering::Acquire), 0, "other files are not the database");
        std::fs::write(dir.path().join(format!("{DB_FILE}-wal")), "x").expect("write");
        watch.bump_if_changed(&generation);
        assert_eq!(generation.load(Ordering::Acquire), 1, "the WAL is");
        std::fs::write(dir.path().join("new.db"), "x").expect("write");
        std::fs::rename(dir.path().join("new.db"), dir.path().join(DB_FILE)).expect("rename");
        watch.bump_if_changed(&generation);
        assert_eq!(generation.load(Ordering::Acquire), 2, "a database moved into place is");
    }
}
