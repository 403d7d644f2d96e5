//! WAL shipping: every committed transaction leaves the machine as a checksummed record, and
//! any instant of the retention window can be restored exactly.
//!
//! - [`record`]: the record format (whole transactions, contiguous ids, state checksums).
//! - [`apply`]: applying a transaction through `sqlite_dbpage`; the state checksum.
//! - [`snapshot`]: page-exact zstd snapshots.

pub mod apply;
pub mod compact;
pub mod dir_target;
pub mod lost;
pub mod notify;
mod prune;
pub mod record;
pub mod restore;
pub mod retention;
pub mod shipper;
pub mod snapshot;
pub mod target;
mod upload;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use apply::{StateHasher, apply_txn, state_checksum};
pub use record::{GenerationId, Record, Txn, decode, encode};
pub use snapshot::{SnapshotInfo, restore_snapshot, write_snapshot, write_snapshot_at};

use crate::error::{AppError, ErrorKind};

/// Where a shipped history stands: the last transaction of a generation, and when it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub generation: GenerationId,
    pub txid: u64,
    pub committed_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corrupt transaction record: {0}")]
    CorruptRecord(String),
    #[error("corrupt snapshot {}: {why}", path.display())]
    CorruptSnapshot { path: PathBuf, why: String },
    #[error("page size mismatch: the record has {expected}-byte pages, the database {found}")]
    PageSize { expected: u32, found: u32 },
    #[error("{0}")]
    BadName(String),
    #[error("state checksum mismatch after transaction {txid}: the result would not be exact")]
    StateMismatch { txid: u64 },
    #[error("backup target: {0}")]
    Target(String),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("the WAL was reset by another process")]
    WalReset,
    #[error("no continuous history after that position in the spool")]
    Gap,
    #[error("{0}")]
    NothingToRestore(String),
    #[error("{file} is damaged ({why}); the last good point is {last_good}")]
    CorruptInTarget { file: String, why: String, last_good: String },
}

impl AppError for ReplicationError {
    fn code(&self) -> &'static str {
        match self {
            ReplicationError::Sqlite(_) | ReplicationError::Db(_) => "db",
            ReplicationError::Io { .. } => "replication-io",
            ReplicationError::CorruptRecord(_) => "corrupt-record",
            ReplicationError::CorruptSnapshot { .. } => "corrupt-snapshot",
            ReplicationError::PageSize { .. } => "page-size-mismatch",
            ReplicationError::BadName(_) => "bad-name",
            ReplicationError::StateMismatch { .. } => "state-mismatch",
            ReplicationError::Target(_) => "backup-target",
            ReplicationError::WalReset => "wal-reset",
            ReplicationError::Gap => "replication-gap",
            ReplicationError::NothingToRestore(_) => "nothing-to-restore",
            ReplicationError::CorruptInTarget { .. } => "corrupt-backup",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            ReplicationError::BadName(_) => ErrorKind::BadRequest,
            ReplicationError::Target(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
    fn user_message(&self) -> String {
        match self {
            ReplicationError::BadName(m) => m.clone(),
            ReplicationError::Target(_) => {
                "The backup target cannot be reached right now; changes are kept locally and sent when it is back.".into()
            }
            _ => "Something went wrong with database replication. Please tell your IT administrator.".into(),
        }
    }
}

/// What the shipper and uploader have done, for the dashboard and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub target: String,
    /// Last transaction in the local spool.
    pub shipped: Option<Position>,
    /// Last transaction durable in the target, and when it got there.
    pub uploaded: Option<Position>,
    pub uploaded_at_ms: Option<i64>,
    /// (generation, txid, when uploaded)
    pub last_snapshot: Option<(GenerationId, u64, i64)>,
    pub target_error: Option<String>,
    pub target_error_since_ms: Option<i64>,
    pub target_failures: u64,
    pub shipper_error: Option<String>,
    /// The last retention pass failed (the target keeps more than it must; nothing is lost).
    pub retention_error: Option<String>,
    pub retention_days: u32,
    pub lag_alarm_seconds: u32,
    /// The target lost its history (see `lost.rs`).
    pub lost: Option<lost::Lost>,
}

impl Status {
    /// Seconds the target is behind the last local commit (0 when caught up or no target).
    pub fn lag_seconds(&self, now_ms: i64) -> f64 {
        if self.target.is_empty() {
            return 0.0;
        }
        match (&self.shipped, &self.uploaded) {
            (Some(s), Some(u)) if s.generation == u.generation && s.txid <= u.txid => 0.0,
            (Some(s), Some(u)) if s.generation == u.generation => {
                (now_ms - u.committed_at_ms).max(0) as f64 / 1000.0
            }
            (Some(s), _) if s.txid == 0 => 0.0,
            (Some(s), _) => (now_ms - s.committed_at_ms).max(0) as f64 / 1000.0,
            _ => 0.0,
        }
    }

    pub fn alarm(&self, now_ms: i64) -> Option<String> {
        if let Some(e) = &self.target_error {
            return Some(format!("The backup target is failing: {e}"));
        }
        if let Some(e) = &self.shipper_error {
            return Some(format!("Shipping the database is failing: {e}"));
        }
        if let Some(alarm) =
            self.lost.as_ref().and_then(|l| l.alarm(self.last_snapshot.as_ref().map(|(g, _, _)| g), now_ms))
        {
            return Some(alarm);
        }
        let lag = self.lag_seconds(now_ms);
        (lag > f64::from(self.lag_alarm_seconds)).then(|| format!("The backup is {lag:.0} seconds behind."))
    }
}

/// How often the spool is pruned (`prune.rs`).
const PRUNE_EVERY: Duration = Duration::from_secs(600);

fn spawn_pruning(
    spool: PathBuf,
    status: Arc<Mutex<Status>>,
    current: Arc<Mutex<GenerationId>>,
    has_target: bool,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Ok(generation) = current.lock().map(|g| g.clone()) else { return };
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            let in_target = has_target.then(|| prune::InTarget {
                records_through: s.uploaded.filter(|p| p.generation == generation).map(|p| p.txid),
                snapshot: s.last_snapshot.filter(|(g, _, _)| *g == generation).map(|(_, txid, _)| txid),
            });
            let spool = spool.clone();
            match tokio::task::spawn_blocking(move || prune::prune(&spool, &generation, in_target)).await {
                Ok(p) if p.files > 0 => {
                    tracing::info!(files = p.files, bytes = p.bytes, "replication: spool pruned")
                }
                _ => {}
            }
        }
    });
}

/// How often database history past `[replication] retention_days` is removed from the target
/// and small records are merged (`compact.rs`).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

fn spawn_retention(
    target: target::Target,
    retention_days: u32,
    compact_below: u64,
    status: Arc<Mutex<Status>>,
) {
    tokio::spawn(async move {
        // The first pass a few minutes after start, so a restart loop does not hammer the target.
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(300), RETENTION_EVERY);
        loop {
            tick.tick().await;
            match retention::expire(&target, notify::now_ms(), retention_days).await {
                Ok(e) if e == retention::Expired::default() => {}
                Ok(e) => tracing::info!(
                    generations = e.generations,
                    snapshots = e.snapshots,
                    records = e.records,
                    retention_days,
                    "replication: database history past its retention removed from the target"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "replication: retention pass failed; retrying in an hour");
                    if let Ok(mut s) = status.lock() {
                        s.retention_error = Some(e.to_string());
                    }
                    continue;
                }
            }
            if let Ok(mut s) = status.lock() {
                s.retention_error = None;
            }
            match compact::compact(&target, compact_below).await {
                Ok(c) if c.written > 0 => tracing::info!(
                    written = c.written,
                    removed = c.removed,
                    "replication: small records in the target merged"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "replication: compaction failed; retrying in an hour"),
            }
        }
    });
}

/// The running shipper (started by `serve` when a backup target is configured).
pub struct Shipper {
    core: Arc<Mutex<shipper::Core>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    status: Arc<Mutex<Status>>,
    position: tokio::sync::watch::Receiver<Option<Position>>,
    spool: PathBuf,
    uploader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper").field("spool", &self.spool).finish_non_exhaustive()
    }
}

impl Shipper {
    /// Start shipping `db` to `target` (inside a tokio runtime). Takes the first snapshot of a
    /// new generation before returning. Without a target the spool alone is kept, for a
    /// replica to follow (`replica::feed`).
    pub async fn start(
        db: crate::db::Db,
        data_dir: &Path,
        target: Option<target::Target>,
        cfg: &crate::config::ReplicationConfig,
    ) -> Result<Shipper, ReplicationError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (pos_tx, pos_rx) = tokio::sync::watch::channel(None);
        notify::set_shipping(true);
        let data = data_dir.to_path_buf();
        let truncate = u64::from(cfg.wal_truncate_mib) << 20;
        let core = tokio::task::spawn_blocking(move || shipper::Core::start(db, &data, truncate, tx, pos_tx))
            .await
            .map_err(|e| ReplicationError::Target(format!("starting the shipper: {e}")))??;
        let spool = shipper::spool_dir(data_dir);
        let current = Arc::new(Mutex::new(core.generation.clone()));
        let status = Arc::new(Mutex::new(Status {
            target: target.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            retention_days: cfg.retention_days,
            lag_alarm_seconds: cfg.lag_alarm_seconds,
            ..Status::default()
        }));
        let queue = match &target {
            Some(t) => upload::leftovers(t, &spool, &core.generation).await.into(),
            None => Default::default(),
        };
        let core = Arc::new(Mutex::new(core));
        let stop = Arc::new(AtomicBool::new(false));
        let every = Duration::from_secs(u64::from(cfg.snapshot_hours) * 3600);
        let regenerate = Arc::new(AtomicBool::new(false));
        let thread = {
            let (core, stop, status, regenerate) =
                (core.clone(), stop.clone(), status.clone(), regenerate.clone());
            std::thread::Builder::new()
                .name("reelbox-shipper".into())
                .spawn(move || shipper::run(core, stop, every, status, regenerate))
                .map_err(|source| ReplicationError::Io { path: spool.clone(), source })?
        };
        let has_target = target.is_some();
        if let Some(t) = &target {
            lost::spawn_check(
                t.clone(),
                status.clone(),
                regenerate,
                Duration::from_secs(u64::from(cfg.target_check_seconds)),
            );
            spawn_retention(
                t.clone(),
                cfg.retention_days,
                u64::from(cfg.compact_below_kib) * 1024,
                status.clone(),
            );
        }
        let uploader = match target {
            Some(t) => tokio::spawn(upload::run(t, rx, queue, status.clone(), current.clone())),
            None => tokio::spawn(upload::discard(rx)),
        };
        {
            // `/metrics` sees the lag even when nobody opens the dashboard.
            let status = status.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                    metrics::gauge!("reelbox_replication_lag_seconds").set(s.lag_seconds(notify::now_ms()));
                    metrics::gauge!("reelbox_replication_target_failing").set(if s.target_error.is_some() {
                        1.0
                    } else {
                        0.0
                    });
                }
            });
        }
        spawn_pruning(spool.clone(), status.clone(), current.clone(), has_target);
        let mut position = pos_rx.clone();
        let (st, cur) = (status.clone(), current);
        tokio::spawn(async move {
            while position.changed().await.is_ok() {
                let p = position.borrow().clone();
                if let Some(p) = p {
                    metrics::gauge!("reelbox_replication_last_shipped_txid").set(p.txid as f64);
                    if let Ok(mut g) = cur.lock() {
                        *g = p.generation.clone();
                    }
                    if let Ok(mut s) = st.lock() {
                        s.shipped = Some(p);
                    }
                }
            }
        });
        Ok(Shipper {
            core,
            stop,
            thread: Mutex::new(Some(thread)),
            status,
            position: pos_rx,
            spool,
            uploader: Mutex::new(Some(uploader)),
        })
    }

    /// The last transaction in the local spool.
    pub fn position(&self) -> tokio::sync::watch::Receiver<Option<Position>> {
        self.position.clone()
    }

    pub fn status(&self) -> Status {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        metrics::gauge!("reelbox_replication_lag_seconds").set(s.lag_seconds(notify::now_ms()));
        s
    }

    /// Spool record files holding the transactions after `after`, in order, or `Gap` when the
    /// spool cannot continue from there (another generation, or pruned): re-seed from a snapshot.
    pub fn records_after(&self, after: &Position) -> Result<Vec<PathBuf>, ReplicationError> {
        let dir = shipper::generation_dir(&self.spool, &after.generation).join("records");
        let current = self.position.borrow().as_ref().map(|p| p.generation.clone());
        if current.as_ref() != Some(&after.generation) {
            return Err(ReplicationError::Gap);
        }
        let mut files: Vec<(u64, u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|source| ReplicationError::Io { path: dir.clone(), source })?
            .flatten()
            .filter_map(|e| {
                let (a, b) = record::parse_record_file_name(e.file_name().to_str()?)?;
                Some((a, b, e.path()))
            })
            .filter(|(_, last, _)| *last > after.txid)
            .collect();
        files.sort();
        let mut next = after.txid + 1;
        let mut out = Vec::new();
        for (first, last, path) in files {
            if first > next {
                return Err(ReplicationError::Gap);
            }
            if last >= next {
                next = last + 1;
                out.push(path);
            }
        }
        Ok(out)
    }

    /// At shutdown: stop the shipper thread, then — with writes held off, after the last one —
    /// ship the tail and let `Db::close` checkpoint the WAL. The uploader keeps going until
    /// `finish` is awaited.
    ///
    /// The thread is stopped before the writer is taken: it takes its core and then the writer
    /// to checkpoint, so joining it while holding the writer could wait for ever.
    pub fn close(&self, db: &crate::db::Db) {
        self.stop.store(true, Ordering::Release);
        notify::wake();
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            let _ = t.join();
        }
        db.close_with(|| {
            if let Ok(mut c) = self.core.lock() {
                if let Err(e) = c.ship() {
                    tracing::warn!(error = %e, "replication: last shipment failed; the WAL keeps it for the next start");
                }
                c.release();
            }
            notify::set_shipping(false);
        });
    }

    /// Give the uploader up to `grace` to empty its queue, then stop it (the spool keeps the rest).
    pub async fn finish(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let s = self.status();
            let done = match (&s.shipped, &s.uploaded) {
                (Some(a), Some(b)) => a.generation == b.generation && b.txid >= a.txid,
                (Some(a), None) => a.txid == 0,
                _ => true,
            };
            if done || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Ok(mut u) = self.uploader.lock()
            && let Some(u) = u.take()
        {
            u.abort();
        }
    }
}
