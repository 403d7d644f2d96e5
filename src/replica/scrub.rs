//! The replica's scrub. A file copied from the primary was checked when it arrived, but a disk
//! can damage it later; nothing would notice until a viewer got broken video. So a replica
//! re-hashes, every `replica.scrub_interval_seconds` (a day by default), every file it copied:
//! each original blob (its name is its SHA-256) and each published rendition file (against the
//! hash recorded when it was copied, `renditions::Record`, or the primary's listing for a copy
//! without a record). What no longer matches is confirmed once more and copied again from the
//! primary — a blob through the blob store, which replaces a corrupt copy; a rendition file with
//! the rest of its rung, moved into place whole — then logged and audited (`replica.repaired`,
//! relayed to the primary like every audit event on a replica).
//!
//! The cost is bounded: reading is paced to `replica.scrub_bytes_per_second` (16 MiB/s by
//! default) over the whole pass, so a pass spreads over time rather than competing with viewers
//! for the disk, and one pass runs at a time. Repairs that fail (the primary away) are tried
//! again every 30 seconds. The last pass is kept in `<data>/replica/scrub.json`, so a restart
//! neither repeats nor skips one.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::sync::Mutex;

use super::renditions::{self, Copied, FileEntry, Record};
use super::status::ScrubReport;
use super::{ReplicaError, Role, now_ms};
use crate::App;
use crate::db::ids::MediaId;
use crate::insights::audit::{Event, Outcome};
use crate::store::{BlobStore, Sha256, StoreError};
use crate::transcode::media_dir;

const STATE_FILE: &str = "scrub.json";
/// How soon repairs that failed are tried again.
const RETRY: Duration = Duration::from_secs(30);
const CHUNK: usize = 256 * 1024;

/// Reads at most `rate` bytes per second on average; time spent idle earns no credit, so there
/// is never a burst after a pause.
pub struct Pacer {
    rate: u64,
    next: Instant,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer { rate: rate.max(1), next: Instant::now() }
    }

    /// Account for `n` bytes read; sleeps (blocking) while ahead of the rate.
    pub fn take(&mut self, n: u64) {
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        self.next += Duration::from_secs_f64(n as f64 / self.rate as f64);
        let ahead = self.next.saturating_duration_since(now);
        if ahead >= Duration::from_millis(20) {
            std::thread::sleep(ahead);
        }
    }
}

/// Hex SHA-256 and size of the file at `path`, read at the pacer's rate (blocking).
fn hash_paced(path: &Path, pacer: &mut Pacer) -> std::io::Result<(String, u64)> {
    hash_reader(std::fs::File::open(path)?, pacer)
}

fn hash_reader(mut r: impl Read, pacer: &mut Pacer) -> std::io::Result<(String, u64)> {
    let mut h = sha2::Sha256::new();
    let (mut buf, mut size) = (vec![0u8; CHUNK], 0u64);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(h.finalize()), size));
        }
        h.update(&buf[..n]);
        size += n as u64;
        pacer.take(n as u64);
    }
}

/// What a pass found that no longer matches.
#[derive(Debug, Clone)]
enum Damage {
    /// An original (or derived) blob whose bytes no longer hash to its name.
    Blob(Sha256),
    /// Published files of an item, as they should be (listed or recorded), for `version`.
    Files { id: MediaId, version: String, files: Vec<FileEntry> },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    last_started_ms: i64,
    last: Option<ScrubReport>,
}

fn load(data_dir: &Path) -> Saved {
    std::fs::read(super::state::dir(data_dir).join(STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

async fn save(data_dir: &Path, saved: &Saved) {
    let path = super::state::dir(data_dir).join(STATE_FILE);
    let bytes = serde_json::to_vec_pretty(saved).unwrap_or_default();
    let written = tokio::task::spawn_blocking(move || super::state::write_atomic(&path, &bytes)).await;
    if let Ok(Err(e)) = written {
        tracing::warn!(error = %e, "cannot record the replica scrub's progress");
    }
}

/// Run for the life of the server: a pass every interval while this node is a replica, and the
/// retries of repairs that failed. `copied` is the rendition follow's lock: repairs hold it, so
/// they never race a copy of the same item.
pub async fn run(app: App, copied: Arc<Mutex<Copied>>) {
    let interval_ms =
        i64::try_from(app.replica.config.scrub_interval_seconds.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    if interval_ms == 0 {
        return;
    }
    let data_dir = app.config.data_dir.clone();
    let mut saved = tokio::task::spawn_blocking({
        let d = data_dir.clone();
        move || load(&d)
    })
    .await
    .unwrap_or_default();
    if let Some(last) = &saved.last {
        app.replica.follow.scrub_finished(last.clone());
    }
    let first = if saved.last_started_ms > 0 { saved.last_started_ms } else { now_ms() };
    let mut next = first.saturating_add(interval_ms);
    let mut retry: Vec<Damage> = Vec::new();
    loop {
        let until_pass = Duration::from_millis(next.saturating_sub(now_ms()).max(0) as u64);
        tokio::time::sleep(if retry.is_empty() { until_pass } else { until_pass.min(RETRY) }).await;
        if app.replica.role() != Role::Replica {
            retry.clear();
            next = now_ms().saturating_add(interval_ms);
            continue;
        }
        if now_ms() < next {
            let (_, failed) = repair_all(&app, &copied, std::mem::take(&mut retry)).await;
            if failed.is_empty() {
                app.replica.follow.scrub.ok();
            }
            retry = failed;
            continue;
        }
        let started = now_ms();
        next = started.saturating_add(interval_ms);
        saved.last_started_ms = started;
        save(&data_dir, &saved).await;
        match pass(&app, &copied, started).await {
            Ok((report, failed, errors)) => {
                tracing::info!(
                    files = report.files,
                    bytes = report.bytes,
                    repaired = report.repaired,
                    "replica scrub finished"
                );
                if failed.is_empty() && errors == 0 {
                    app.replica.follow.scrub.ok();
                }
                saved.last = Some(report.clone());
                save(&data_dir, &saved).await;
                app.replica.follow.scrub_finished(report);
                retry = failed;
            }
            Err(e) => {
                tracing::warn!(error = %e, "replica scrub interrupted; the next pass starts on schedule");
                app.replica.follow.scrub.failed(&e);
            }
        }
    }
}

/// One pass over every copied file: check all of them (paced), then repair what differs.
/// Returns the report, the damage that could not be repaired yet, and how many items could not
/// be checked.
async fn pass(
    app: &App,
    copied: &Arc<Mutex<Copied>>,
    started: i64,
) -> Result<(ScrubReport, Vec<Damage>, usize), ReplicaError> {
    let mut pacer = Pacer::new(app.replica.config.scrub_bytes_per_second);
    let mut report = ScrubReport { started_at_ms: started, ..Default::default() };
    let (mut damage, mut errors) = (Vec::new(), 0);

    // Originals (and derived blobs) the library points at; missing ones are the media follow's.
    let wanted = app
        .db
        .read(|c| {
            crate::library::renditions::blobs_in_use(c).map_err(|e| ReplicaError::Replication(e.to_string()))
        })
        .await?;
    for (hex, _) in wanted {
        if app.replica.role() != Role::Replica {
            return Err(ReplicaError::Replication("this node was promoted during the scrub".into()));
        }
        let Ok(hash) = Sha256::from_hex(&hex) else { continue };
        let store = app.store.clone();
        let (checked, p) = blocking(move || {
            let r = check_blob(&store, &hash, &mut pacer);
            Ok((r, pacer))
        })
        .await?;
        pacer = p;
        match checked {
            Ok(Some(size)) => {
                report.files += 1;
                report.bytes += size;
            }
            Ok(None) => {}
            Err(why) => {
                tracing::error!(%hash, why = %why, "a blob on this replica is damaged; copying it again from the primary");
                damage.push(Damage::Blob(hash));
            }
        }
    }

    // Published renditions, item by item, against the record of the copy (or the primary's list).
    let data_dir = app.config.data_dir.clone();
    let items = copied.lock().await.items();
    for (id, version) in items {
        if app.replica.role() != Role::Replica {
            return Err(ReplicaError::Replication("this node was promoted during the scrub".into()));
        }
        let data = data_dir.clone();
        let record = blocking(move || Ok(renditions::load_record(&data, id))).await?;
        let (expected, recorded) = match record {
            Some(r) if r.version == version => (r.files, true),
            _ => match renditions::list_item(app, id).await {
                Ok(listing) => (listing.files, false),
                Err(e) => {
                    tracing::warn!(media = %id, error = %e, "the scrub cannot list this item on the primary; skipped");
                    app.replica.follow.scrub.failed(&e);
                    errors += 1;
                    continue;
                }
            },
        };
        let (dir, check) = (media_dir(&data_dir, id), expected.clone());
        let (bad, files, bytes, p) = blocking(move || {
            let (mut bad, mut files, mut bytes) = (Vec::new(), 0u64, 0u64);
            for f in &check {
                let Some(rel) = renditions::safe_rel(&f.path) else { continue };
                match hash_paced(&dir.join(rel), &mut pacer) {
                    Ok((sha, size)) if size == f.size && sha == f.sha256 => {
                        files += 1;
                        bytes += size;
                    }
                    Ok((sha, size)) => {
                        tracing::error!(media = %id, path = %f.path, size, sha256 = %sha, expected_size = f.size,
                            expected = %f.sha256, "a published file on this replica is damaged");
                        bad.push(f.clone());
                    }
                    Err(e) => {
                        tracing::error!(media = %id, path = %f.path, error = %e, "a published file on this replica cannot be read");
                        bad.push(f.clone());
                    }
                }
            }
            Ok((bad, files, bytes, pacer))
        })
        .await?;
        pacer = p;
        report.files += files;
        report.bytes += bytes;
        if !bad.is_empty() {
            damage.push(Damage::Files { id, version, files: bad });
        } else if !recorded {
            // Copied before records were kept: what was just checked becomes the record.
            let guard = copied.lock().await;
            if guard.version(id) == Some(version.as_str()) {
                let (data, record) = (data_dir.clone(), Record { version, files: expected });
                blocking(move || renditions::save_record(&data, id, &record)).await?;
            }
            drop(guard);
        }
    }

    let (repaired, failed) = repair_all(app, copied, damage).await;
    report.repaired = repaired;
    report.finished_at_ms = now_ms();
    Ok((report, failed, errors))
}

/// `Ok(Some(size))` intact, `Ok(None)` not here (yet), `Err(why)` damaged or unreadable.
fn check_blob(store: &BlobStore, hash: &Sha256, pacer: &mut Pacer) -> Result<Option<u64>, String> {
    let file = match store.open_blob(hash) {
        Ok(f) => f,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match hash_reader(file, pacer) {
        Ok((sha, size)) if sha == hash.to_hex() => Ok(Some(size)),
        Ok((sha, _)) => Err(format!("its bytes hash to {sha}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Confirm and repair each damage; returns the files repaired and the damage still there.
async fn repair_all(app: &App, copied: &Arc<Mutex<Copied>>, damage: Vec<Damage>) -> (u64, Vec<Damage>) {
    let (mut repaired, mut failed) = (0, Vec::new());
    for d in damage {
        match repair(app, copied, &d).await {
            Ok(n) => repaired += n,
            Err(e) => {
                tracing::warn!(error = %e, "repairing a damaged copy failed; trying again shortly");
                app.replica.follow.scrub.failed(&e);
                failed.push(d);
            }
        }
    }
    app.replica.follow.repaired(repaired);
    (repaired, failed)
}

/// Repair one damage if it is still there; returns the number of files copied again.
async fn repair(app: &App, copied: &Arc<Mutex<Copied>>, damage: &Damage) -> Result<u64, ReplicaError> {
    match damage {
        Damage::Blob(hash) => {
            let (store, h) = (app.store.clone(), *hash);
            // Unpaced: one file, and only when a paced read found it damaged.
            let still = blocking(move || match store.verify(&h) {
                Ok(intact) => Ok(!intact),
                Err(StoreError::NotFound { .. }) => Ok(false),
                Err(_) => Ok(true),
            })
            .await?;
            if !still {
                return Ok(0);
            }
            super::media::fetch(app, hash).await?;
            tracing::warn!(%hash, "repaired a damaged blob on this replica from the primary");
            audit(
                app,
                Event::new("replica.repaired").target("blob", hash.to_hex(), "stored file"),
                "the stored file",
            )
            .await;
            Ok(1)
        }
        Damage::Files { id, version, files } => {
            let guard = copied.lock().await;
            if guard.version(*id) != Some(version.as_str()) {
                return Ok(0); // copied again since, by the follow
            }
            let dir = media_dir(&app.config.data_dir, *id);
            let expected = files.clone();
            let still: HashSet<String> = blocking(move || {
                Ok(expected
                    .into_iter()
                    .filter(|f| {
                        let Some(rel) = renditions::safe_rel(&f.path) else { return false };
                        !renditions::sha256_file(&dir.join(rel)).is_ok_and(|h| h == f.sha256)
                    })
                    .map(|f| f.path)
                    .collect())
            })
            .await?;
            if still.is_empty() {
                return Ok(0);
            }
            let mut paths: Vec<String> = still.iter().cloned().collect();
            paths.sort();
            let fetched = renditions::repair(app, *id, version, still).await?;
            drop(guard);
            tracing::warn!(media = %id, files = ?paths, "repaired damaged published files on this replica from the primary");
            let what = format!("{} published file(s): {}", paths.len(), paths.join(", "));
            audit(app, Event::new("replica.repaired").target("media", id, "published files"), &what).await;
            Ok(fetched.max(paths.len() as u64))
        }
    }
}

async fn audit(app: &App, event: Event, what: &str) {
    let event = event.actor(None, "system").outcome(Outcome::Success).detail(format!(
        "{what} on the replica no longer matched the checked copy and were copied again from the primary"
    ));
    if let Err(e) = super::audit::record_access(app, event, None).await {
        tracing::warn!(error = %e, "cannot queue the audit event of a repair");
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReplicaError> + Send + 'static,
) -> Result<T, ReplicaError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ReplicaError::Replication(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_holds_the_rate() {
        let mut p = Pacer::new(1024 * 1024);
        let t = Instant::now();
        for _ in 0..8 {
            p.take(64 * 1024);
        }
        let took = t.elapsed();
        // 512 KiB at 1 MiB/s: about half a second, never a burst.
        assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn hashes_match_the_blob_store_and_damage_is_told_apart_from_absence() {
        let data = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(data.path()).expect("store");
        let hash = store.put_bytes(b"an original", None).expect("put").hash;
        let mut pacer = Pacer::new(u64::MAX);
        assert_eq!(check_blob(&store, &hash, &mut pacer), Ok(Some(11)));
        let mut bytes = std::fs::read(store.path(&hash)).expect("read");
        bytes[3] ^= 0x01;
        std::fs::write(store.path(&hash), &bytes).expect("flip a byte");
        assert!(check_blob(&store, &hash, &mut pacer).is_err());
        let absent = Sha256::digest(b"never stored");
        assert_eq!(check_blob(&store, &absent, &mut pacer), Ok(None));
    }
}
