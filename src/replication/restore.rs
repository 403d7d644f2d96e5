//! Point-in-time restore from the target: the latest snapshot at or before the time, then the
//! records in order up to the last transaction committed at or before it. Every transaction's
//! state checksum is checked as it is applied, then `PRAGMA integrity_check` and the checksum of
//! the finished file. The result takes its name only when all of that passed.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;
use rusqlite::Connection;

use super::record::{self, GenerationId};
use super::snapshot::fsync_rename;
use super::target::{self, GenerationEntry, Target};
use super::{ReplicationError, state_checksum};

#[derive(Debug, Clone)]
pub struct Restored {
    pub generation: GenerationId,
    pub txid: u64,
    /// Commit time of the last transaction applied (the snapshot's time when none was).
    pub committed_at_ms: i64,
    pub state_checksum: [u8; 32],
    pub records: usize,
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

async fn snapshot_created_ms(
    target: &Target,
    key: &object_store::path::Path,
) -> Result<i64, ReplicationError> {
    let head = target
        .get_range(key, 0..96)
        .await
        .map_err(|e| ReplicationError::Target(format!("reading {key}: {e}")))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&head[80..88]);
    Ok(i64::from_be_bytes(b))
}

/// The (generation, snapshot txid) to start from for `at_ms` (latest when `None`).
pub(crate) async fn choose(
    target: &Target,
    catalog: &std::collections::BTreeMap<GenerationId, GenerationEntry>,
    at_ms: Option<i64>,
) -> Result<Option<(GenerationId, u64)>, ReplicationError> {
    for (generation, entry) in catalog.iter().rev() {
        for (&txid, meta) in entry.snapshots.iter().rev() {
            match at_ms {
                None => return Ok(Some((generation.clone(), txid))),
                Some(at) => {
                    if snapshot_created_ms(target, &meta.location).await? <= at {
                        return Ok(Some((generation.clone(), txid)));
                    }
                }
            }
        }
    }
    Ok(None)
}

fn side_path(out: &Path, suffix: &str) -> PathBuf {
    let mut p = out.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// Removes a file (and its `-wal`/`-shm`) when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(side_path(&self.0, suffix));
        }
    }
}

/// Chunks of the snapshot on their way from the target to the decoder (a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => (self.buf, self.pos) = (chunk, 0),
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decompress the snapshot at `key` into `building` as it arrives from the target.
async fn stream_snapshot(
    target: &Target,
    key: &object_store::path::Path,
    building: &Path,
) -> Result<(super::SnapshotInfo, super::StateHasher), ReplicationError> {
    use futures_util::StreamExt;
    let got = target.get(key).await.map_err(|e| ReplicationError::Target(format!("reading {key}: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (name, out) = (PathBuf::from(key.to_string()), building.to_path_buf());
    let decoder = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { rx, buf: Vec::new(), pos: 0 };
        super::snapshot::restore_snapshot_from(
            std::io::BufReader::with_capacity(1 << 20, reader),
            &name,
            &out,
        )
    });
    let mut stream = got.into_stream();
    let mut read_error = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map(|b| b.to_vec()).map_err(|e| {
            read_error = Some(format!("reading {key}: {e}"));
            std::io::Error::other(e.to_string())
        });
        let failed = chunk.is_err();
        // The decoder stopped (it found the snapshot damaged): its error says why.
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let result = decoder.await.map_err(|e| ReplicationError::Target(format!("restoring {key}: {e}")))?;
    match (result, read_error) {
        (Err(_), Some(e)) => Err(ReplicationError::Target(e)),
        (result, _) => result,
    }
}

/// Restore the database as of `at_ms` (latest when `None`) into `out`.
pub async fn restore(
    target: &Target,
    at_ms: Option<i64>,
    out: &Path,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Restored, ReplicationError> {
    let catalog = target::catalog(target).await?;
    let Some((generation, snap_txid)) = choose(target, &catalog, at_ms).await? else {
        return Err(ReplicationError::NothingToRestore(match at_ms {
            Some(at) => format!("the backup has no snapshot from before {}", fmt_ms(at)),
            None => "the backup target holds no database snapshot".into(),
        }));
    };
    let entry = &catalog[&generation];
    let snap_key = target::snapshot_key(&generation, snap_txid);
    progress(format!("snapshot {snap_key}"));
    let building = side_path(out, ".restoring");
    let result = stream_snapshot(target, &snap_key, &building).await;
    let (info, mut hasher) = result?;
    // Whatever goes wrong from here, no half-built database is left behind (after the final
    // rename there is nothing under this name to remove).
    let _cleanup = RemoveOnDrop(building.clone());
    let mut last_ms = generation.created_ms();
    let mut txid = info.txid;
    let chain = entry.chain_after(txid);
    let total = chain.len();
    let file = OpenOptions::new()
        .write(true)
        .open(&building)
        .map_err(|source| ReplicationError::Io { path: building.clone(), source })?;
    let ps = u64::from(info.page_size);
    let mut applied_records = 0;
    'records: for (i, r) in chain.into_iter().enumerate() {
        let key = &r.meta.location;
        let good = format!("transaction {txid} of generation {generation} ({})", fmt_ms(last_ms));
        let last_good = || good.clone();
        let bytes = target::get(target, key).await?;
        let rec = record::decode(&bytes).map_err(|e| ReplicationError::CorruptInTarget {
            file: key.to_string(),
            why: e.to_string(),
            last_good: last_good(),
        })?;
        if rec.page_size != info.page_size || rec.generation != generation {
            return Err(ReplicationError::CorruptInTarget {
                file: key.to_string(),
                why: "the record belongs to another database".into(),
                last_good: last_good(),
            });
        }
        for t in &rec.txns {
            if t.txid <= txid {
                continue;
            }
            if at_ms.is_some_and(|at| t.committed_at_ms > at) {
                break 'records;
            }
            if t.txid != txid + 1 {
                return Err(ReplicationError::CorruptInTarget {
                    file: key.to_string(),
                    why: "transaction ids skip".into(),
                    last_good: last_good(),
                });
            }
            hasher.apply(t);
            if hasher.finish() != t.state_checksum {
                return Err(ReplicationError::CorruptInTarget {
                    file: key.to_string(),
                    why: format!("state checksum mismatch at transaction {}", t.txid),
                    last_good: last_good(),
                });
            }
            for (pgno, page) in &t.pages {
                if *pgno <= t.db_pages {
                    file.write_all_at(page, u64::from(pgno - 1) * ps)
                        .map_err(|source| ReplicationError::Io { path: building.clone(), source })?;
                }
            }
            file.set_len(u64::from(t.db_pages) * ps)
                .map_err(|source| ReplicationError::Io { path: building.clone(), source })?;
            txid = t.txid;
            last_ms = t.committed_at_ms;
        }
        applied_records += 1;
        if i + 1 == total || i % 50 == 0 {
            progress(format!("records {}/{total} (transaction {txid}, {})", i + 1, fmt_ms(last_ms)));
        }
    }
    file.sync_all().map_err(|source| ReplicationError::Io { path: building.clone(), source })?;
    drop(file);
    progress("checking the restored database".into());
    let expected = hasher.finish();
    let check = (|| -> Result<(), ReplicationError> {
        let conn = Connection::open(&building)?;
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(ReplicationError::CorruptRecord(format!(
                "integrity_check of the restored database: {ok}"
            )));
        }
        if state_checksum(&conn)? != expected {
            return Err(ReplicationError::StateMismatch { txid });
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    })();
    if let Err(e) = check {
        let _ = std::fs::remove_file(&building);
        return Err(e);
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(side_path(out, suffix));
        let _ = std::fs::remove_file(side_path(&building, suffix));
    }
    fsync_rename(&building, out)?;
    Ok(Restored {
        generation,
        txid,
        committed_at_ms: last_ms,
        state_checksum: expected,
        records: applied_records,
    })
}

/// A line per generation for `reelbox backup list`.
pub async fn describe(target: &Target) -> Result<Vec<String>, ReplicationError> {
    let catalog = target::catalog(target).await?;
    let mut lines = Vec::new();
    for (generation, entry) in &catalog {
        let mut snaps = Vec::new();
        for (txid, meta) in &entry.snapshots {
            let at =
                snapshot_created_ms(target, &meta.location).await.map(fmt_ms).unwrap_or_else(|_| "?".into());
            snaps.push(format!("txid {txid} at {at}"));
        }
        let first = entry.snapshots.keys().next().copied().unwrap_or(0);
        let chain = entry.chain_after(first);
        let until = match chain.last() {
            Some(r) => {
                let bytes = target::get(target, &r.meta.location).await?;
                record::decode(&bytes)
                    .ok()
                    .and_then(|rec| rec.txns.last().map(|t| fmt_ms(t.committed_at_ms)))
                    .unwrap_or_else(|| "? (last record unreadable)".into())
            }
            None => "its first snapshot".into(),
        };
        lines.push(format!(
            "generation {generation} (started {}): snapshots [{}]; {} record files, transactions up to {}; restorable until {until}",
            fmt_ms(generation.created_ms()),
            snaps.join(", "),
            entry.records.len(),
            entry.last_txid(),
        ));
    }
    Ok(lines)
}
