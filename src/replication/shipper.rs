//! The shipper: reads committed transactions from the WAL as soon as they commit, writes them
//! as records into the local spool (fsynced), and checkpoints only what it has shipped. The
//! uploader (`upload.rs`) copies the spool to the target.
//!
//! It keeps a read transaction open on its own connection: while it is open SQLite can neither
//! backfill frames committed after it nor restart the WAL, so nothing unshipped can disappear.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::apply::StateHasher;
use super::notify;
use super::record::{self, GenerationId, Record, Txn};
use super::snapshot::{SNAPSHOT_EXT, fsync_rename, write_snapshot_hashed};
use super::wal::{WalCursor, read_committed, read_header};
use super::{Position, ReplicationError};
use crate::db::Db;

/// Frames per record at most (batching under load stays bounded in memory).
const MAX_FRAMES_PER_RECORD: u64 = 4096;
/// Checkpoint (PASSIVE) after this many shipped frames, or this long after the last one.
const CHECKPOINT_FRAMES: u64 = 1000;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Something for the uploader: a finished spool file.
#[derive(Debug, Clone)]
pub enum Spooled {
    Snapshot { generation: GenerationId, txid: u64, path: PathBuf },
    Record { generation: GenerationId, name: String, path: PathBuf, last: Position },
}

pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("replication").join("spool")
}

pub fn generation_dir(spool: &Path, generation: &GenerationId) -> PathBuf {
    spool.join(generation.as_str())
}

pub(crate) struct Core {
    db: Db,
    wal_path: PathBuf,
    spool: PathBuf,
    hold: Connection,
    wal: Option<(File, u64)>,
    cursor: Option<WalCursor>,
    pub(crate) generation: GenerationId,
    next_txid: u64,
    hasher: StateHasher,
    last: Option<Position>,
    frames_since_checkpoint: u64,
    last_checkpoint: Instant,
    wal_truncate_bytes: u64,
    out: tokio::sync::mpsc::UnboundedSender<Spooled>,
    position: tokio::sync::watch::Sender<Option<Position>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReplicationError + '_ {
    move |source| ReplicationError::Io { path: path.to_path_buf(), source }
}

fn inode(f: &File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    f.metadata().map(|m| m.ino()).unwrap_or(0)
}

impl Core {
    pub(crate) fn start(
        db: Db,
        data_dir: &Path,
        wal_truncate_bytes: u64,
        out: tokio::sync::mpsc::UnboundedSender<Spooled>,
        position: tokio::sync::watch::Sender<Option<Position>>,
    ) -> Result<Core, ReplicationError> {
        let hold = db.open_connection(true)?;
        let mut wal_path = db.path().as_os_str().to_os_string();
        wal_path.push("-wal");
        let mut core = Core {
            wal_path: PathBuf::from(wal_path),
            spool: spool_dir(data_dir),
            hold,
            wal: None,
            cursor: None,
            generation: GenerationId::new(),
            next_txid: 1,
            hasher: StateHasher::new(4096),
            last: None,
            frames_since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            wal_truncate_bytes,
            out,
            position,
            db,
        };
        core.new_generation()?;
        Ok(core)
    }

    fn open_wal(&mut self) -> Result<Option<File>, ReplicationError> {
        let current = match File::open(&self.wal_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.wal = None;
                return Ok(None);
            }
            Err(e) => return Err(ReplicationError::Io { path: self.wal_path.clone(), source: e }),
        };
        let ino = inode(&current);
        if self.wal.as_ref().map(|(_, i)| *i) != Some(ino) {
            self.wal = Some((current, ino));
        }
        match &self.wal {
            Some((f, _)) => f.try_clone().map(Some).map_err(io(&self.wal_path)),
            None => Ok(None),
        }
    }

    fn begin_hold(&self) -> Result<(), ReplicationError> {
        if self.hold.is_autocommit() {
            self.hold.execute_batch("BEGIN DEFERRED")?;
            self.hold.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        }
        Ok(())
    }

    fn end_hold(&self) -> Result<(), ReplicationError> {
        if !self.hold.is_autocommit() {
            self.hold.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Start a new generation: with writes held off, find the end of the WAL and pin a read
    /// transaction there, then snapshot that state as txid 0.
    pub(crate) fn new_generation(&mut self) -> Result<(), ReplicationError> {
        self.end_hold()?;
        let db = self.db.clone();
        db.write_blocking(|w| -> Result<(), ReplicationError> {
            w.execute_batch("BEGIN IMMEDIATE")?;
            let result = (|| {
                self.cursor = None;
                if let Some(f) = self.open_wal()?
                    && let Some(h) = read_header(&f).map_err(io(&self.wal_path))?
                {
                    let (_, c) =
                        read_committed(&f, WalCursor::start(h), u64::MAX).map_err(io(&self.wal_path))?;
                    self.cursor = Some(c);
                }
                self.begin_hold()
            })();
            w.execute_batch("ROLLBACK")?;
            result
        })?;
        notify::forget_commits();
        self.generation = GenerationId::new();
        self.next_txid = 1;
        let path = generation_dir(&self.spool, &self.generation)
            .join("snapshots")
            .join(format!("{:016x}{SNAPSHOT_EXT}", 0));
        let (info, hasher) = write_snapshot_hashed(&self.hold, &path, &self.generation, 0)?;
        self.hasher = hasher;
        let pos =
            Position { generation: self.generation.clone(), txid: 0, committed_at_ms: notify::now_ms() };
        self.last = Some(pos.clone());
        self.position.send_replace(Some(pos));
        tracing::info!(generation = %self.generation, pages = info.db_pages, "replication: new generation, snapshot taken");
        let _ = self.out.send(Spooled::Snapshot { generation: self.generation.clone(), txid: 0, path });
        Ok(())
    }

    /// Ship every whole transaction in the WAL now. Returns how many.
    pub(crate) fn ship(&mut self) -> Result<usize, ReplicationError> {
        let mut total = 0;
        loop {
            let n = self.ship_batch()?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    fn ship_batch(&mut self) -> Result<usize, ReplicationError> {
        let wal_path = self.wal_path.clone();
        let Some(file) = self.open_wal()? else { return Ok(0) };
        let Some(header) = read_header(&file).map_err(io(&wal_path))? else { return Ok(0) };
        let cursor = match self.cursor {
            None => WalCursor::start(header),
            Some(c) if c.header.salt == header.salt => c,
            Some(c) if header.is_restart_of(&c.header) => {
                // SQLite restarted the WAL after a checkpoint of frames we had shipped.
                notify::forget_commits();
                WalCursor::start(header)
            }
            Some(_) => return Err(ReplicationError::WalReset),
        };
        let (txns, next) = read_committed(&file, cursor, MAX_FRAMES_PER_RECORD).map_err(io(&wal_path))?;
        if txns.is_empty() {
            self.cursor = Some(cursor);
            return Ok(0);
        }
        let now = notify::now_ms();
        let mut record = Record {
            generation: self.generation.clone(),
            page_size: header.page_size,
            txns: Vec::with_capacity(txns.len()),
        };
        if header.page_size != self.hasher.page_size() {
            return Err(ReplicationError::PageSize {
                expected: self.hasher.page_size(),
                found: header.page_size,
            });
        }
        let mut last_commit = self.last.as_ref().map(|p| p.committed_at_ms).unwrap_or(0);
        for (i, t) in txns.into_iter().enumerate() {
            // Commit times never go backwards within a history, whatever the clock does.
            let at = notify::commit_time(t.end_frame).unwrap_or(now).max(last_commit);
            last_commit = at;
            let txn = Txn {
                txid: self.next_txid + i as u64,
                committed_at_ms: at,
                db_pages: t.db_pages,
                state_checksum: [0; 32],
                pages: t.pages.into_iter().collect(),
            };
            self.hasher.apply(&txn);
            record.txns.push(Txn { state_checksum: self.hasher.finish(), ..txn });
        }
        let count = record.txns.len();
        let name = record.file_name();
        let dir = generation_dir(&self.spool, &self.generation).join("records");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(&name);
        let tmp = dir.join(format!("{name}.partial"));
        let bytes = record::encode(&record);
        (|| {
            use std::io::Write;
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })()
        .map_err(io(&tmp))?;
        fsync_rename(&tmp, &path)?;
        self.frames_since_checkpoint += next.frames - cursor.frames;
        self.cursor = Some(next);
        self.next_txid += count as u64;
        let last = Position {
            generation: self.generation.clone(),
            txid: record.last_txid(),
            committed_at_ms: last_commit,
        };
        self.last = Some(last.clone());
        self.position.send_replace(Some(last.clone()));
        metrics::counter!("reelbox_replication_txns_shipped_total").increment(count as u64);
        let _ = self.out.send(Spooled::Record { generation: self.generation.clone(), name, path, last });
        Ok(count)
    }

    pub(crate) fn checkpoint_due(&self) -> bool {
        self.frames_since_checkpoint >= CHECKPOINT_FRAMES
            || (self.frames_since_checkpoint > 0 && self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
    }

    /// Checkpoint what is shipped: with in-process writes held off, ship the tail, let go of
    /// the read transaction, checkpoint (TRUNCATE when the WAL is past its bound), pin again.
    /// If the WAL held frames we had not shipped (another process wrote), start a new generation.
    pub(crate) fn checkpoint(&mut self) -> Result<(), ReplicationError> {
        let truncate =
            std::fs::metadata(&self.wal_path).map(|m| m.len()).unwrap_or(0) > self.wal_truncate_bytes;
        let db = self.db.clone();
        let foreign = db.write_blocking(|w| -> Result<bool, ReplicationError> {
            self.ship()?;
            self.end_hold()?;
            let sql =
                if truncate { "PRAGMA wal_checkpoint(TRUNCATE)" } else { "PRAGMA wal_checkpoint(PASSIVE)" };
            let result = w.query_row(sql, [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)));
            self.begin_hold()?;
            let (busy, log) = result?;
            let shipped = self.cursor.map(|c| c.frames as i64).unwrap_or(0);
            if truncate && busy == 0 {
                self.cursor = None;
            }
            Ok(log > shipped && log > 0)
        })?;
        self.frames_since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        if foreign {
            tracing::warn!(
                "replication: the WAL held frames from another process at checkpoint; starting a new generation"
            );
            self.new_generation()?;
        }
        Ok(())
    }

    /// A snapshot of the current state, labelled with the last shipped txid. The pages are
    /// written by the returned closure, which may run on another thread.
    pub(crate) fn snapshot_job(&mut self) -> Result<SnapshotJob, ReplicationError> {
        let conn = self.db.open_connection(true)?;
        let db = self.db.clone();
        db.write_blocking(|w| -> Result<(), ReplicationError> {
            w.execute_batch("BEGIN IMMEDIATE")?;
            let result = self.ship().and_then(|_| {
                conn.execute_batch("BEGIN DEFERRED")?;
                conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
                Ok(())
            });
            w.execute_batch("ROLLBACK")?;
            result
        })?;
        let txid = self.next_txid - 1;
        let path = generation_dir(&self.spool, &self.generation)
            .join("snapshots")
            .join(format!("{txid:016x}{SNAPSHOT_EXT}"));
        Ok(SnapshotJob { conn, generation: self.generation.clone(), txid, path, out: self.out.clone() })
    }

    pub(crate) fn release(&mut self) {
        let _ = self.end_hold();
    }
}

pub(crate) struct SnapshotJob {
    conn: Connection,
    generation: GenerationId,
    txid: u64,
    path: PathBuf,
    out: tokio::sync::mpsc::UnboundedSender<Spooled>,
}

impl SnapshotJob {
    pub(crate) fn run(self) -> Result<(), ReplicationError> {
        let (info, _) = write_snapshot_hashed(&self.conn, &self.path, &self.generation, self.txid)?;
        self.conn.execute_batch("COMMIT")?;
        tracing::info!(generation = %info.generation, txid = info.txid, "replication: snapshot taken");
        let _ = self.out.send(Spooled::Snapshot {
            generation: self.generation,
            txid: self.txid,
            path: self.path,
        });
        Ok(())
    }
}

/// The shipper thread: wakes on commit, ships, checkpoints, snapshots on schedule.
pub(crate) fn run(
    core: Arc<Mutex<Core>>,
    stop: Arc<AtomicBool>,
    snapshot_every: Duration,
    status: Arc<Mutex<super::Status>>,
    regenerate: Arc<AtomicBool>,
) {
    let mut seen = notify::seq();
    let mut last_snapshot = Instant::now();
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Acquire) {
        seen = notify::wait(seen, Duration::from_secs(1));
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(mut c) = core.lock() else { return };
        let result = (|| -> Result<(), ReplicationError> {
            c.ship()?;
            // The target lost its history (`lost.rs`): start again from a full snapshot.
            if regenerate.swap(false, Ordering::AcqRel) {
                c.new_generation()?;
                last_snapshot = Instant::now();
            }
            if c.checkpoint_due() {
                c.checkpoint()?;
            }
            if last_snapshot.elapsed() >= snapshot_every {
                last_snapshot = Instant::now();
                let job = c.snapshot_job()?;
                std::thread::spawn(move || {
                    if let Err(e) = job.run() {
                        tracing::warn!(error = %e, "replication: snapshot failed");
                    }
                });
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                if let Ok(mut s) = status.lock() {
                    s.shipper_error = None;
                }
            }
            Err(ReplicationError::WalReset) => {
                tracing::warn!("replication: the WAL was reset by someone else; starting a new generation");
                if let Err(e) = c.new_generation() {
                    tracing::error!(error = %e, "replication: cannot start a new generation");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "replication: shipping failed; retrying");
                if let Ok(mut s) = status.lock() {
                    s.shipper_error = Some(e.to_string());
                }
                metrics::counter!("reelbox_replication_ship_failures_total").increment(1);
                drop(c);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                // A failed write may have left the hashes ahead of the spool: start over.
                if let Ok(mut c) = core.lock()
                    && let Err(e) = c.new_generation()
                {
                    tracing::error!(error = %e, "replication: cannot start a new generation");
                }
            }
        }
    }
}
