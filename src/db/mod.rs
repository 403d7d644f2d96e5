//! Every SQLite connection reelbox uses is opened here, so the pragmas — and above all the
//! checkpoint policy, which WAL shipping will take over — are set in exactly one place.
//!
//! One writer connection behind a mutex (SQLite allows one writer at a time anyway, and queueing
//! here is cheaper than `SQLITE_BUSY` retries) and a pool of readers. All work runs on the
//! blocking thread pool, never on the async workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

mod changes;
pub mod ids;
pub mod rows;

/// The schema, one file per version. Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_media.sql"),
    include_str!("migrations/0003_scrubs.sql"),
    include_str!("migrations/0004_renditions.sql"),
    include_str!("migrations/0005_lifecycle.sql"),
    include_str!("migrations/0006_transcode.sql"),
    include_str!("migrations/0007_captions.sql"),
    include_str!("migrations/0008_audit_relay.sql"),
];

/// SQLite never checkpoints by itself: the WAL hook of the writer (`replication::notify`) wakes
/// the shipper, which checkpoints only frames already shipped (or, in a process that does not
/// ship, checkpoints like SQLite's automatic checkpoint). No other code sets this.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 0;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
pub use changes::OTHER_WRITERS_POLL;
pub const DB_FILE: &str = "reelbox.db";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "database {path} is at schema version {found}, newer than this reelbox understands (up to {known}); \
         run the newer reelbox version or restore a backup — it was not modified"
    )]
    TooNew { path: PathBuf, found: usize, known: usize },
    #[error(
        "migrating database {path} to schema version {version} failed (nothing was changed by that step): {detail}"
    )]
    Migration { path: PathBuf, version: usize, detail: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("database lock poisoned by an earlier panic")]
    Poisoned,
    /// This node is a replica (or a fenced old primary): its database is a copy of the
    /// primary's and only the replication follower may change it.
    #[error("write refused: this node is a read-only replica")]
    ReadOnlyReplica,
}

impl DbError {
    pub fn code(&self) -> &'static str {
        match self {
            DbError::Open { .. } => "db-open",
            DbError::TooNew { .. } => "db-too-new",
            DbError::Migration { .. } => "db-migration",
            DbError::Sqlite(e) if is_disk_full(e) => "disk-full",
            DbError::Sqlite(e) if is_read_only(e) => "read-only",
            DbError::Sqlite(_) => "db",
            DbError::Pool(_) | DbError::Task(_) | DbError::Poisoned => "db-unavailable",
            DbError::ReadOnlyReplica => "replica-read-only",
        }
    }

    /// True when the cause is the disk (full, read-only) rather than a bug: the web layer says so.
    pub fn is_storage_problem(&self) -> bool {
        matches!(self, DbError::Sqlite(e) if is_disk_full(e) || is_read_only(e))
    }
}

fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::SystemIoFailure
        )
    )
}

fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    configure(conn)?;
    // Replaces SQLite's automatic checkpoint: see `replication::notify::on_commit`.
    conn.wal_hook(Some(crate::replication::notify::on_commit));
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Closing the last connection must not checkpoint frames the shipper has not read yet.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
    ))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// The newest schema version this binary knows.
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// Apply pending migrations one version at a time, each in its own transaction; refuse a newer database.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    let found: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?.max(0) as usize;
    let known = latest_version();
    if found > known {
        return Err(DbError::TooNew { path: path.into(), found, known });
    }
    let ms = migrations();
    for version in found + 1..=known {
        ms.to_version(conn, version).map_err(|e| DbError::Migration {
            path: path.into(),
            version,
            detail: e.to_string(),
        })?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}

/// Migrate only up to `version` (tests of upgrades from earlier schemas).
pub fn migrate_to(conn: &mut Connection, version: usize) -> Result<(), DbError> {
    migrations().to_version(conn, version).map_err(|e| DbError::Migration {
        path: PathBuf::new(),
        version,
        detail: e.to_string(),
    })
}

#[derive(Clone)]
pub struct Db {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// Bumped after every write; caches of database state are valid for one generation.
    generation: Arc<AtomicU64>,
    /// Set on a replica: `write` refuses, only `write_replicated_blocking` may change the file.
    read_only: Arc<std::sync::atomic::AtomicBool>,
    /// The writer applied replicated pages (`sqlite_dbpage`), which bypass the B-tree layer: its
    /// parsed pages and schema may be stale, so the next ordinary write reopens it first.
    writer_stale: Arc<std::sync::atomic::AtomicBool>,
    /// Set by [`Db::watch_other_writers`] (the server): notices other processes' commits.
    changes: Arc<std::sync::OnceLock<changes::ChangeWatch>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Db {
    /// Open (creating if needed) `<data_dir>/reelbox.db`, set WAL mode and migrate.
    pub fn open(data_dir: &Path, readers: u32) -> Result<Db, DbError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |source| DbError::Open { path: path.clone(), source };
        let mut writer = open_writer(&path).map_err(open_err)?;
        // Refuse a newer schema before anything (even the journal mode) touches the file.
        let found: i64 = writer.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(open_err)?;
        if found.max(0) as usize > latest_version() {
            return Err(DbError::TooNew { path, found: found as usize, known: latest_version() });
        }
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::Open {
                path: path.clone(),
                source: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode could not be set to WAL (got {mode}); is the data directory on a network filesystem?"
                )),
            });
        }
        configure_writer(&writer).map_err(open_err)?;
        migrate(&mut writer, &path)?;

        let manager = SqliteConnectionManager::file(&path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| configure(c));
        let readers = r2d2::Pool::builder()
            .max_size(readers.max(1))
            // A local file's connection does not go stale; r2d2's check runs a statement on
            // every checkout (every read of every request).
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Db {
            path,
            writer: Arc::new(Mutex::new(writer)),
            readers,
            generation: Arc::new(AtomicU64::new(0)),
            read_only: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            writer_stale: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            changes: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a reader connection on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(DbError::from)?;
            f(&conn)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// A short point read (a row by its key) on the calling thread when a reader is idle and
    /// nothing would make it wait; otherwise on the blocking pool, as [`Db::read`]. For
    /// per-request lookups such as the item behind every media segment, where the round trip
    /// through the pool (two thread wake-ups) costs more than the read itself: a row whose
    /// pages are cached takes microseconds, like the `open` of the file served next. Inline,
    /// the busy timeout is off: a read that would wait (`SQLITE_BUSY`, rare in WAL mode) is
    /// run again on the pool instead of sleeping on an async worker.
    pub async fn read_point<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        if let Some(conn) = self.readers.try_get() {
            let inline = conn.busy_timeout(Duration::ZERO).map(|()| f(&conn));
            if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
                // sqlite3_busy_timeout only fails on misuse; reads on this connection would then
                // answer "busy" instead of waiting, which they report.
                tracing::warn!(error = %e, "could not restore a reader's busy timeout");
            }
            match inline {
                Err(e) | Ok(Err(e)) if !is_busy(&e) => return Err(e.into()),
                Ok(Ok(value)) => return Ok(value),
                _ => {}
            }
        }
        self.read(move |c| f(c).map_err(DbError::from)).await
    }

    /// Run `f` on the writer connection on the blocking pool.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f))
            .await
            .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Run `f` on the writer from a blocking context (command-line tools).
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        let mut conn = self.ordinary_writer()?;
        let result = f(&mut conn);
        // After the commit, so a reader that saw the old generation recomputes next time.
        self.generation.fetch_add(1, Ordering::Release);
        result
    }

    /// The writer for an ordinary write: refused on a replica, and reopened first if it applied
    /// replicated pages.
    fn ordinary_writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>, DbError> {
        if self.read_only.load(Ordering::Acquire) {
            return Err(DbError::ReadOnlyReplica);
        }
        let mut conn = self.writer.lock().map_err(|_| DbError::Poisoned)?;
        if self.writer_stale.load(Ordering::Acquire) {
            let open_err = |source| DbError::Open { path: self.path.clone(), source };
            let fresh = open_writer(&self.path).map_err(open_err)?;
            configure_writer(&fresh).map_err(open_err)?;
            *conn = fresh;
            self.writer_stale.store(false, Ordering::Release);
        }
        Ok(conn)
    }

    /// Refuse (`true`) or allow ordinary writes: a replica's database changes only by replication.
    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Release);
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// The writer for the replication follower, which applies the primary's pages even while
    /// ordinary writes are refused.
    pub fn write_replicated_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        let mut conn = self.writer.lock().map_err(|_| DbError::Poisoned)?;
        self.writer_stale.store(true, Ordering::Release);
        let result = f(&mut conn);
        // After the commit, so a reader that saw the old generation recomputes next time.
        self.generation.fetch_add(1, Ordering::Release);
        result
    }

    /// [`Db::write`] for rows no cache of database state holds — audit events, playback
    /// positions — so frequent bookkeeping (a player saving its position every few seconds)
    /// does not empty the caches of sessions, access and items (`web::cache`) for everyone.
    /// Anything that changes who may see what, or a session, uses [`Db::write`].
    pub async fn write_keeping_caches<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.ordinary_writer()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// The write generation, after counting the commits by other processes that the change
    /// watch has queued (one `read` of its descriptor). The web layer calls it once, as a request
    /// starts; everything the request caches afterwards uses [`Db::known_generation`].
    pub fn generation(&self) -> u64 {
        if let Some(watch) = self.changes.get() {
            watch.bump_if_changed(&self.generation);
        }
        self.generation.load(Ordering::Acquire)
    }

    /// The write generation as last counted, with no system call: this process's own commits,
    /// and other processes' as of the last [`Db::generation`]. Read it *before* querying when
    /// caching a result. Within a request whose start called [`Db::generation`] it is exact:
    /// a command that ended before the request arrived is counted.
    pub fn known_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Run `f` on a reader from a blocking context.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let conn = self.readers.get().map_err(DbError::from)?;
        f(&conn)
    }

    /// Pool state for `/metrics`: (connections, idle).
    pub fn reader_state(&self) -> (u32, u32) {
        let s = self.readers.state();
        (s.connections, s.idle_connections)
    }

    /// A connection of its own on the database (replication: the shipper's read transaction
    /// and snapshots), configured like the others.
    pub fn open_connection(&self, read_only: bool) -> Result<Connection, DbError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|source| DbError::Open { path: self.path.clone(), source })?;
        configure(&conn)?;
        Ok(conn)
    }

    /// At shutdown: `PRAGMA optimize`, then checkpoint the whole WAL into the database and
    /// truncate it, so the files on disk are complete even if a connection outlives us.
    pub fn close(&self) {
        self.close_with(|| {});
    }

    /// As [`Db::close`], calling `before_checkpoint` (the shipper's last shipment) with writes
    /// held off after the last write and before the WAL is checkpointed.
    pub fn close_with(&self, before_checkpoint: impl FnOnce()) {
        if let Ok(conn) = self.writer.lock() {
            if let Err(e) = conn.execute_batch("PRAGMA optimize;") {
                tracing::warn!(error = %e, "closing the database: optimize failed");
            }
            before_checkpoint();
            if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                tracing::warn!(error = %e, "closing the database: checkpoint failed; the WAL is replayed at next start");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_categories(db: &Db, from: usize, n: usize) {
        db.write_blocking(|c| {
            for i in from..from + n {
                c.execute("INSERT INTO categories (name, created_at) VALUES (?1, 0)", [format!("c{i}")])?;
            }
            Ok::<_, DbError>(())
        })
        .expect("insert");
    }

    /// A promoted replica's writer applied pages through `sqlite_dbpage`, under its B-tree's
    /// feet; its next ordinary writes must still leave a sound file.
    #[test]
    fn ordinary_writes_after_replicated_pages_keep_the_file_sound() {
        use crate::replication::{Txn, apply, apply_txn, state_checksum};
        let (d1, d2) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let primary = Db::open(d1.path(), 1).expect("open primary");
        let replica = Db::open(d2.path(), 1).expect("open replica");
        add_categories(&replica, 0, 5);
        add_categories(&primary, 0, 40);
        let txn = primary
            .read_blocking(|c| {
                apply::in_read_txn(c, |c| {
                    let mut pages = Vec::new();
                    apply::for_each_page(c, |pgno, page| {
                        pages.push((pgno, page.to_vec()));
                        Ok(())
                    })?;
                    let state_checksum = state_checksum(c)?;
                    Ok(Txn {
                        txid: 1,
                        committed_at_ms: 0,
                        db_pages: pages.len() as u32,
                        state_checksum,
                        pages,
                    })
                })
                .map_err(|e| DbError::Task(e.to_string()))
            })
            .expect("pages");
        let page_size = primary
            .read_blocking(|c| Ok::<u32, DbError>(c.pragma_query_value(None, "page_size", |r| r.get(0))?))
            .expect("page size");
        replica
            .write_replicated_blocking(|c| {
                apply_txn(c, page_size, &txn).map_err(|e| DbError::Task(e.to_string()))
            })
            .expect("apply");
        add_categories(&replica, 100, 30);
        let (check, count): (String, i64) = replica
            .read_blocking(|c| {
                Ok::<_, DbError>((
                    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?,
                    c.query_row("SELECT count(*) FROM categories", [], |r| r.get(0))?,
                ))
            })
            .expect("check");
        assert_eq!((check.as_str(), count), ("ok", 70));
    }

    #[test]
    fn fresh_database_migrates_to_latest_and_is_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 2).expect("open");
        let (version, mode): (i64, String) = db
            .read_blocking(|c| {
                Ok::<_, DbError>((
                    c.pragma_query_value(None, "user_version", |r| r.get(0))?,
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                ))
            })
            .expect("query");
        assert_eq!(version as usize, latest_version());
        assert_eq!(mode, "wal");
        let fk: i64 = db
            .write_blocking(|c| {
                c.pragma_query_value(None, "foreign_keys", |r| r.get(0)).map_err(DbError::from)
            })
            .expect("fk");
        assert_eq!(fk, 1);
    }

    #[test]
    fn each_earlier_version_upgrades() {
        for start in 0..latest_version() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(DB_FILE);
            {
                let mut c = Connection::open(&path).expect("open");
                migrate_to(&mut c, start).expect("to earlier version");
            }
            let db = Db::open(dir.path(), 1).expect("upgrade from earlier version");
            let v: i64 = db
                .read_blocking(|c| {
                    c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(DbError::from)
                })
                .expect("version");
            assert_eq!(v as usize, latest_version(), "from {start}");
        }
    }

    #[test]
    fn newer_database_is_refused_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        {
            let c = Connection::open(&path).expect("open");
            c.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 999;").expect("future schema");
        }
        let before = std::fs::read(&path).expect("read");
        let err = Db::open(dir.path(), 1).expect_err("refused");
        assert!(matches!(err, DbError::TooNew { found: 999, .. }), "{err}");
        assert!(err.to_string().contains("newer"));
        let c = Connection::open(&path).expect("reopen");
        let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(v, 999);
        drop(c);
        assert_eq!(std::fs::read(&path).expect("read").len(), before.len());
    }

    /// A point read runs in place when a reader is idle, and waits on the pool (never on the
    /// async worker) when none is.
    #[test]
    fn a_point_read_without_an_idle_reader_waits_on_the_pool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("open");
        add_categories(&db, 0, 3);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let count =
            |c: &Connection| c.query_row("SELECT count(*) FROM categories", [], |r| r.get::<_, i64>(0));
        assert_eq!(rt.block_on(db.read_point(count)).expect("inline read"), 3);

        // The only reader is busy elsewhere for a while.
        let (held, hold) = (std::sync::Arc::new(std::sync::Barrier::new(2)), db.clone());
        let barrier = held.clone();
        let holder = std::thread::spawn(move || {
            hold.read_blocking(|_| {
                barrier.wait();
                std::thread::sleep(Duration::from_millis(300));
                Ok::<_, DbError>(())
            })
        });
        held.wait();
        let started = std::time::Instant::now();
        let ticks = std::sync::Arc::new(AtomicU64::new(0));
        let read = rt.block_on(async {
            // The runtime's only thread keeps running other tasks while the read waits.
            let t = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            let read = db.read_point(count).await;
            ticker.abort();
            read
        });
        assert_eq!(read.expect("read once the reader is back"), 3);
        assert!(started.elapsed() >= Duration::from_millis(200), "it waited: {:?}", started.elapsed());
        assert!(ticks.load(Ordering::Relaxed) >= 5, "the async thread was not blocked meanwhile");
        holder.join().expect("holder").expect("held read");
    }
}
