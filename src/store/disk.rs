//! The blob store on the local disk: layout, commit (rename, fsync, verify), dedup, lookups,
//! scrubbing, the reconciliation walk, the start-up sweep and the events replication follows.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, ReadDir};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::trail::Trail;
use super::writer::BlobWriter;
use super::{Sha256, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

const BLOBS_DIR: &str = "blobs";
const SHA256_DIR: &str = "sha256";
const TMP_DIR: &str = "tmp";
/// Reads for hashing and copying. Large enough that the syscall cost vanishes next to SHA-NI.
pub(super) const IO_CHUNK: usize = 1024 * 1024;
/// Events a subscriber may fall behind by before it sees `RecvError::Lagged` (then it walks).
const EVENT_CAPACITY: usize = 1024;

/// Handed-out hashes remembered at most this long when the table is pruned (see `remove_unreferenced`).
const HANDED_OUT_PRUNE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Prune the handed-out table when it grows past this many hashes.
const HANDED_OUT_PRUNE_AT: usize = 4096;

/// What `remove_unreferenced` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// There was no such blob (already removed).
    Absent,
    /// The caller's check found a reference; nothing was touched.
    Referenced,
    /// An upload was told about this blob within the grace period (it may be about to commit a
    /// row that points to it); nothing was touched. Try again later.
    RecentlyHandedOut,
}

/// The outcome of storing bytes: what the row should point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub hash: Sha256,
    pub size: u64,
    /// The content was already stored (and verified intact); nothing new was written.
    pub deduplicated: bool,
}

/// How `commit` re-reads a blob after the rename.
#[derive(Debug)]
pub(super) enum Verify {
    /// Read the whole file back at its new name.
    ReadBack,
    /// The writer's trail has read back what was fsynced so far; it reads the rest.
    Trail(Trail),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A blob was written, fsynced and verified (also after replacing a corrupt copy). Not sent
    /// for dedup hits: those bytes were announced when they were first stored.
    Stored { hash: Sha256, size: u64 },
}

#[derive(Clone)]
pub struct BlobStore(Arc<Inner>);

struct Inner {
    /// `<data>/blobs/sha256`
    root: PathBuf,
    /// `<data>/blobs/tmp`: on the same filesystem as `root`, so a finished blob is renamed in.
    tmp: PathBuf,
    tmp_device: u64,
    events: broadcast::Sender<StoreEvent>,
    /// Hashes being committed right now. Two writers of the same content take turns, so exactly
    /// one stores it (one event) and the other sees a complete, verified blob and dedups.
    committing: Mutex<HashSet<Sha256>>,
    committed: Condvar,
    /// When each hash was last answered by `commit` (stored or deduplicated): the caller has not
    /// necessarily committed its row yet. Memory only — a restart ends every such caller.
    handed_out: Mutex<HashMap<Sha256, Instant>>,
    /// Tests flip a byte of the next blob between rename and read-back, to exercise `Corrupt`.
    #[cfg(test)]
    pub(super) corrupt_next_commit: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("root", &self.0.root).finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Open (creating if needed) `<data_dir>/blobs/`, and remove temp files a crash left behind.
    pub fn open(data_dir: &Path) -> Result<BlobStore> {
        let blobs = data_dir.join(BLOBS_DIR);
        let root = blobs.join(SHA256_DIR);
        let tmp = blobs.join(TMP_DIR);
        for dir in [&root, &tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io_at("creating", dir, e))?;
        }
        let tmp_device = fs::metadata(&tmp).map_err(|e| StoreError::io_at("reading", &tmp, e))?.dev();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let store = BlobStore(Arc::new(Inner {
            root,
            tmp,
            tmp_device,
            events,
            committing: Mutex::new(HashSet::new()),
            committed: Condvar::new(),
            handed_out: Mutex::new(HashMap::new()),
            #[cfg(test)]
            corrupt_next_commit: Default::default(),
        }));
        store.sweep_temp()?;
        Ok(store)
    }

    /// `<data>/blobs/sha256/ab/cd/abcd…`
    pub fn path(&self, hash: &Sha256) -> PathBuf {
        let hex = hash.to_hex();
        self.0.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    pub(super) fn tmp_dir(&self) -> &Path {
        &self.0.tmp
    }

    pub(super) fn tmp_device(&self) -> u64 {
        self.0.tmp_device
    }

    pub fn exists(&self, hash: &Sha256) -> Result<bool> {
        let path = self.path(hash);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io_at("reading", &path, e)),
        }
    }

    /// The blob for reading (serving, copying to a replica).
    pub fn open_blob(&self, hash: &Sha256) -> Result<File> {
        let path = self.path(hash);
        File::open(&path).map_err(|e| not_found_or(hash, "opening", &path, e))
    }

    pub fn size(&self, hash: &Sha256) -> Result<u64> {
        let path = self.path(hash);
        Ok(fs::metadata(&path).map_err(|e| not_found_or(hash, "reading", &path, e))?.len())
    }

    /// Re-hash the blob from disk (scheduled scrubs). `Ok(false)` means its bytes have rotted;
    /// it is left in place for the caller to restore from the replica or a backup.
    pub fn verify(&self, hash: &Sha256) -> Result<bool> {
        let path = self.path(hash);
        let file = File::open(&path).map_err(|e| not_found_or(hash, "opening", &path, e))?;
        let (actual, _) = hash_reader(file, &path)?;
        if actual != *hash {
            tracing::error!(%hash, %actual, path = %path.display(), "blob is corrupt: its bytes no longer match its name");
        }
        Ok(actual == *hash)
    }

    /// Every stored hash, in no particular order (reconciliation walks). Stray files are logged
    /// and skipped.
    pub fn walk(&self) -> Result<Walk> {
        let top = fs::read_dir(&self.0.root).map_err(|e| StoreError::io_at("listing", &self.0.root, e))?;
        Ok(Walk { stack: vec![(top, String::new())] })
    }

    /// Blobs stored from now on. A receiver that lags (`RecvError::Lagged`) missed events and
    /// should run a `walk`.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.0.events.subscribe()
    }

    /// A writer that streams into a new temp file; dropping it unfinished removes the file.
    pub fn writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(self)
    }

    /// Store a copy of a complete file, hashing while copying. `src` is left untouched.
    pub fn put_file(&self, src: &Path, expected: Option<&Sha256>) -> Result<Stored> {
        let mut file = File::open(src).map_err(|e| StoreError::io_at("opening", src, e))?;
        let mut writer = self.writer()?;
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let n = read_some(&mut file, &mut buf).map_err(|e| StoreError::io_at("reading", src, e))?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n])?;
        }
        writer.finish(expected)
    }

    pub fn put_bytes(&self, data: &[u8], expected: Option<&Sha256>) -> Result<Stored> {
        let mut writer = self.writer()?;
        writer.write(data)?;
        writer.finish(expected)
    }

    /// Move a complete file on the same filesystem into the store without copying (it is read
    /// once to hash it). On success the file is gone from `src`; on error it is left there.
    pub fn adopt_file(&self, src: &Path, expected: Option<&Sha256>) -> Result<Stored> {
        BlobWriter::resume(self, src, None)?.finish(expected)
    }

    /// Remove temp files no live writer holds (their writers lock them). Runs at `open`; safe to
    /// run at any time, also while another process (e.g. `reelbox serve`) is writing.
    pub fn sweep_temp(&self) -> Result<usize> {
        let tmp = &self.0.tmp;
        let entries = fs::read_dir(tmp).map_err(|e| StoreError::io_at("listing", tmp, e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io_at("listing", tmp, e))?;
            let path = entry.path();
            if !entry.file_type().map_err(|e| StoreError::io_at("reading", &path, e))?.is_file() {
                tracing::warn!(path = %path.display(), "not a temp file; left alone");
                continue;
            }
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io_at("opening", &path, e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => continue,
                Err(fs::TryLockError::Error(e)) => return Err(StoreError::io_at("locking", &path, e)),
            }
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io_at("removing", &path, e)),
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %tmp.display(), "removed temp files left by an interrupted write");
        }
        Ok(removed)
    }

    /// Put a finished, fsynced temp file in place as the blob `hash` and verify it there. On a
    /// dedup hit `temp` is removed and the existing blob is kept.
    pub(super) fn commit(&self, temp: &Path, hash: Sha256, size: u64, verify: Verify) -> Result<Stored> {
        let _turn = self.take_turn(hash);
        let stored = self.commit_in_turn(temp, hash, size, verify)?;
        // Still inside the turn, so `remove_unreferenced` (which takes the same turn) sees it.
        self.note_handed_out(hash);
        Ok(stored)
    }

    fn note_handed_out(&self, hash: Sha256) {
        let mut map = self.0.handed_out.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(hash, Instant::now());
        if map.len() > HANDED_OUT_PRUNE_AT {
            map.retain(|_, at| at.elapsed() < HANDED_OUT_PRUNE_AFTER);
        }
    }

    /// Delete the blob `hash` unless it is still needed. Deleting races with dedup: an upload
    /// may have been told "already stored" and not yet have committed the row that points to
    /// the blob. So, holding this hash's commit turn (no commit of it can be in progress),
    /// the blob is kept when it was handed out less than `grace` ago, and otherwise
    /// `referenced` is asked (the caller checks its rows while holding the database writer)
    /// before the file is unlinked and its directory fsynced. A commit of the same content
    /// that comes afterwards finds no blob and stores the bytes again.
    pub fn remove_unreferenced(
        &self,
        hash: &Sha256,
        grace: Duration,
        referenced: impl FnOnce() -> std::result::Result<bool, StoreError>,
    ) -> Result<Removal> {
        let _turn = self.take_turn(*hash);
        let recent = {
            let map = self.0.handed_out.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(hash).is_some_and(|at| at.elapsed() < grace)
        };
        if recent {
            return Ok(Removal::RecentlyHandedOut);
        }
        if referenced()? {
            return Ok(Removal::Referenced);
        }
        let path = self.path(hash);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Absent),
            Err(e) => return Err(StoreError::io_at("removing", &path, e)),
        }
        if let Some(leaf) = path.parent() {
            sync_dir(leaf)?;
        }
        tracing::info!(%hash, "blob removed");
        Ok(Removal::Removed)
    }

    fn commit_in_turn(&self, temp: &Path, hash: Sha256, size: u64, verify: Verify) -> Result<Stored> {
        let dest = self.path(&hash);
        match fs::metadata(&dest) {
            Ok(meta) if meta.len() == size => {
                // A full re-read, not just the size: throwing away a good upload in favour of a
                // copy that has rotted would lose the school's only intact version.
                let file = File::open(&dest).map_err(|e| StoreError::io_at("opening", &dest, e))?;
                let (existing, _) = hash_reader(file, &dest)?;
                if existing == hash {
                    remove_quietly(temp);
                    return Ok(Stored { hash, size, deduplicated: true });
                }
                tracing::error!(%hash, actual = %existing, path = %dest.display(),
                    "stored blob is corrupt; replacing it with the copy just uploaded");
            }
            Ok(meta) => {
                tracing::error!(%hash, expected_size = size, actual_size = meta.len(), path = %dest.display(),
                    "stored blob has the wrong size; replacing it with the copy just uploaded");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io_at("reading", &dest, e)),
        }

        let leaf = dest.parent().unwrap_or(&self.0.root);
        if let Some(fanout) = leaf.parent() {
            ensure_dir(fanout)?;
        }
        ensure_dir(leaf)?;
        // rename(2) replaces atomically: readers see the old file or the new one, never a mix.
        fs::rename(temp, &dest).map_err(|e| StoreError::io_at("renaming into", &dest, e))?;
        sync_dir(leaf)?;
        #[cfg(test)]
        self.inject_corruption(&dest);

        let (actual, actual_size) = match verify {
            Verify::Trail(trail) => {
                let read = trail.finish(size)?;
                let meta = fs::metadata(&dest).map_err(|e| StoreError::io_at("reading", &dest, e))?;
                if (meta.dev(), meta.ino()) == (read.dev, read.ino) {
                    (read.hash, read.size)
                } else {
                    // Something replaced the file under its new name: judge what is there now.
                    read_back(&dest)?
                }
            }
            Verify::ReadBack => read_back(&dest)?,
        };
        if actual != hash || actual_size != size {
            tracing::error!(%hash, %actual, size, actual_size, path = %dest.display(),
                "blob read back after writing does not match what was written; removed it — check the disk");
            if let Err(e) = fs::remove_file(&dest).and_then(|()| sync_dir_io(leaf)) {
                tracing::error!(path = %dest.display(), error = %e, "could not remove the corrupt blob");
            }
            return Err(StoreError::Corrupt { hash, actual });
        }
        tracing::debug!(%hash, size, "blob stored");
        // No receivers is fine: nobody is replicating.
        let _ = self.0.events.send(StoreEvent::Stored { hash, size });
        Ok(Stored { hash, size, deduplicated: false })
    }

    #[cfg(test)]
    pub(super) fn corrupt_next_commit(&self) {
        self.0.corrupt_next_commit.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Flips the last byte in place: a trailing verifier has not read it before the rename.
    /// In place, as a disk's corruption would be: rewriting the file would truncate it first,
    /// and a trail still reading earlier ranges would find the file short instead.
    #[cfg(test)]
    fn inject_corruption(&self, dest: &Path) {
        use std::os::unix::fs::FileExt;
        if self.0.corrupt_next_commit.swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(dest)
            && let Ok(len) = file.metadata().map(|m| m.len())
            && len > 0
        {
            let mut last = [0u8; 1];
            if file.read_exact_at(&mut last, len - 1).is_ok() {
                let _ = file.write_all_at(&[last[0] ^ 0xff], len - 1);
            }
        }
    }

    fn take_turn(&self, hash: Sha256) -> Turn<'_> {
        let mut committing = self.0.committing.lock().unwrap_or_else(PoisonError::into_inner);
        while committing.contains(&hash) {
            committing = self.0.committed.wait(committing).unwrap_or_else(PoisonError::into_inner);
        }
        committing.insert(hash);
        Turn { store: self, hash }
    }
}

/// Holding it means this thread is the only one committing `hash`.
struct Turn<'a> {
    store: &'a BlobStore,
    hash: Sha256,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut committing = self.store.0.committing.lock().unwrap_or_else(PoisonError::into_inner);
        committing.remove(&self.hash);
        self.store.0.committed.notify_all();
    }
}

fn read_back(path: &Path) -> Result<(Sha256, u64)> {
    let file = File::open(path).map_err(|e| StoreError::io_at("opening", path, e))?;
    hash_reader(file, path)
}

fn not_found_or(hash: &Sha256, what: &str, path: &Path, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::NotFound { hash: *hash }
    } else {
        StoreError::io_at(what, path, e)
    }
}

/// Create a fan-out directory if missing, and make its name durable in the parent.
fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another writer created it a moment ago; fsync the parent anyway rather than rely on
        // that writer having done so before our blob is acknowledged.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io_at("creating", dir, e)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    sync_dir_io(dir).map_err(|e| StoreError::io_at("syncing directory", dir, e))
}

fn sync_dir_io(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn remove_quietly(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove temp file"),
    }
}

pub(super) fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Hash everything `reader` yields. `path` is for the error message.
pub(super) fn hash_reader(mut reader: impl Read, path: &Path) -> Result<(Sha256, u64)> {
    use sha2::Digest;
    // sha2 0.10 picks its backend at run time (cpufeatures): SHA-NI on x86-64 CPUs that have
    // it, the ARMv8 SHA2 instructions on aarch64, portable code otherwise.
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; IO_CHUNK];
    let mut size = 0u64;
    loop {
        let n = read_some(&mut reader, &mut buf).map_err(|e| StoreError::io_at("reading", path, e))?;
        if n == 0 {
            return Ok((Sha256::from_hasher(hasher), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Lists `blobs/sha256/ab/cd/<hex>` depth first, one directory handle per level.
pub struct Walk {
    /// Open directories with the hex prefix their names spell so far ("", "ab", "abcd").
    stack: Vec<(ReadDir, String)>,
}

impl Iterator for Walk {
    type Item = Result<Sha256>;

    fn next(&mut self) -> Option<Result<Sha256>> {
        loop {
            let (dir, prefix) = self.stack.last_mut()?;
            let entry = match dir.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => return Some(Err(StoreError::io("listing the blob store", e))),
                Some(Ok(entry)) => entry,
            };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %path.display(), "unexpected file in the blob store; skipped");
                continue;
            };
            let is_dir = match entry.file_type() {
                Ok(t) => t.is_dir(),
                Err(e) => return Some(Err(StoreError::io_at("reading", &path, e))),
            };
            if prefix.len() < 4 {
                if is_dir && name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    let spelled = format!("{prefix}{name}");
                    match fs::read_dir(&path) {
                        Ok(sub) => self.stack.push((sub, spelled)),
                        Err(e) => return Some(Err(StoreError::io_at("listing", &path, e))),
                    }
                } else {
                    tracing::warn!(path = %path.display(), "unexpected entry in the blob store; skipped");
                }
                continue;
            }
            match Sha256::from_hex(&name) {
                Ok(hash) if !is_dir && hash.to_hex() == name && name.starts_with(prefix.as_str()) => {
                    return Some(Ok(hash));
                }
                _ => tracing::warn!(path = %path.display(), "unexpected entry in the blob store; skipped"),
            }
        }
    }
}
