//! The verifier that trails a large write: one thread per writer that makes what has been
//! written durable in steps (fdatasync) while more arrives, and reads back and hashes each
//! range once it is durable. The final fsync then has little left to flush, and the read-back
//! verification is mostly done by the time the blob is renamed into place; what remains (the
//! tail) is read after the rename (see `BlobStore::commit`).
//!
//! The thread has its own read-only open of the file, so the writer's flock is not shared with
//! it: a dropped writer's lock is released at once, even while this thread is still winding down.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use sha2::Digest;

use super::disk::IO_CHUNK;
use super::{Sha256, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Bytes written between two kicks of the kernel's writeback (see `start_writeback`): the disk
/// starts on each megabyte as soon as it is written instead of when the final fsync comes.
pub(super) const WRITEBACK_STEP: u64 = 1024 * 1024;
/// Unsynced bytes that make the trail fdatasync, so that it can read them back. Each fdatasync
/// commits the filesystem journal and flushes the disk cache, which is slow when frequent.
const SYNC_STEP: u64 = 32 * 1024 * 1024;
/// The most the trail reads and hashes before it publishes its progress.
const VERIFY_STEP: u64 = 8 * 1024 * 1024;

#[derive(Debug, Default)]
struct Progress {
    /// Bytes the writer has handed to the kernel (no longer in its buffer).
    written: u64,
    /// Bytes whose writeback has been started.
    kicked: u64,
    /// Bytes known to be on disk (an fdatasync or fsync returned after they were written).
    durable: u64,
    /// Bytes read back from the file and hashed.
    verified: u64,
    /// The writer is done: verify up to `written` (all of it durable) and return.
    finishing: bool,
    /// The writer went away unfinished.
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the trail read back: the hash of bytes `0..size` of the file with identity `(dev, ino)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadBack {
    pub hash: Sha256,
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
}

#[derive(Debug)]
pub(super) struct Trail {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<ReadBack>>>,
}

impl Trail {
    /// Start trailing the file at `path`; the writer's open file is `writer_file`, whose
    /// identity the trail's own open must match.
    pub(super) fn start(path: &Path, writer_file: &File, written: u64) -> Result<Trail> {
        let file = File::open(path).map_err(|e| StoreError::io_at("opening for verification", path, e))?;
        let ours = file.metadata().map_err(|e| StoreError::io_at("reading", path, e))?;
        let theirs = writer_file.metadata().map_err(|e| StoreError::io_at("reading", path, e))?;
        if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
            return Err(StoreError::io_at(
                "opening for verification",
                path,
                io::Error::other("the path no longer names the file being written"),
            ));
        }
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress { written, ..Progress::default() }),
            changed: Condvar::new(),
        });
        let (s, p) = (shared.clone(), path.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("blob-verify".into())
            .spawn(move || run(&s, file, p, (ours.dev(), ours.ino())))
            .map_err(|e| StoreError::io("starting the verification thread", e))?;
        Ok(Trail { shared, thread: Some(thread) })
    }

    /// The writer handed bytes up to `written` to the kernel.
    pub(super) fn wrote(&self, written: u64) {
        let mut p = self.shared.lock();
        p.written = written;
        if p.written - p.kicked.max(p.durable) >= WRITEBACK_STEP || p.written - p.durable >= SYNC_STEP {
            self.shared.changed.notify_all();
        }
    }

    /// The writer made bytes up to `durable` durable itself (fsync at the end of a request).
    pub(super) fn synced(&self, durable: u64) {
        let mut p = self.shared.lock();
        p.written = p.written.max(durable);
        if durable > p.durable {
            p.durable = durable;
            self.shared.changed.notify_all();
        }
    }

    /// Bytes known to be on disk: an fdatasync (the trail's, or the writer's) returned after
    /// they were written.
    pub(super) fn durable(&self) -> u64 {
        self.shared.lock().durable
    }

    /// Everything (`size` bytes) is written and fsynced: read back what is left and return what
    /// the trail read.
    pub(super) fn finish(mut self, size: u64) -> Result<ReadBack> {
        {
            let mut p = self.shared.lock();
            p.written = size;
            p.durable = size;
            p.finishing = true;
            self.shared.changed.notify_all();
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => {
                Err(StoreError::io("verifying", io::Error::other("the verification thread failed")))
            }
        }
    }
}

impl Trail {
    fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
    }

    /// Stop the thread and wait until it has closed its descriptor: after this, removing the
    /// file frees its space at once. Blocking (an fdatasync in progress is waited for).
    pub(super) fn stop_and_wait(mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Trail {
    fn drop(&mut self) {
        // Not joined: an fdatasync in progress may take a while and the caller may be async.
        // The thread notices `stop` after its current step and exits; it holds no lock.
        self.stop();
    }
}

enum Step {
    Stop,
    Writeback(u64, u64),
    Sync(u64),
    Verify(u64, u64),
    Done,
}

fn run(shared: &Shared, file: File, path: PathBuf, (dev, ino): (u64, u64)) -> Result<ReadBack> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        let step = {
            let mut p = shared.lock();
            loop {
                if p.stop {
                    break Step::Stop;
                }
                if p.durable > p.verified {
                    break Step::Verify(p.verified, p.durable.min(p.verified + VERIFY_STEP));
                }
                if p.finishing {
                    break Step::Done;
                }
                if p.written - p.durable >= SYNC_STEP {
                    break Step::Sync(p.written);
                }
                let kicked = p.kicked.max(p.durable);
                if p.written - kicked >= WRITEBACK_STEP {
                    break Step::Writeback(kicked, p.written);
                }
                p = shared.changed.wait(p).unwrap_or_else(PoisonError::into_inner);
            }
        };
        match step {
            Step::Stop => {
                return Err(StoreError::io_at("verifying", &path, io::Error::other("the writer went away")));
            }
            Step::Writeback(from, to) => {
                start_writeback(&file, from, to);
                shared.lock().kicked = to;
            }
            Step::Sync(target) => {
                // On Linux fsync works on a read-only descriptor and flushes the whole file.
                file.sync_data().map_err(|e| StoreError::io_at("syncing", &path, e))?;
                let mut p = shared.lock();
                p.durable = p.durable.max(target);
            }
            Step::Verify(from, to) => {
                read_range(&file, &path, from, to, &mut buf, &mut hasher)?;
                shared.lock().verified = to;
            }
            Step::Done => {
                let size = shared.lock().verified;
                // Bytes past the end (a writer that appended after saying it was done) would
                // not be in the hash: the caller compares `size` with what it wrote.
                let hash = Sha256::from_hasher(hasher);
                return Ok(ReadBack { hash, size, dev, ino });
            }
        }
    }
}

/// Ask the kernel to start writing `from..to` out now, without waiting and without the journal
/// commit and cache flush of an fdatasync. On Linux, `POSIX_FADV_DONTNEED` starts writeback of
/// the range's dirty pages and then drops only pages already clean, so what was just written
/// (dirty, or under writeback) stays cached for the read-back. Elsewhere it is a no-op; the
/// fsyncs still make everything durable, only later.
fn start_writeback(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    if let Some(len) = std::num::NonZeroU64::new(to - from)
        && let Err(e) = rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed)
    {
        tracing::debug!(error = %e, "could not start writeback early; the fsync will do it");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

fn read_range(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    buf: &mut [u8],
    hasher: &mut sha2::Sha256,
) -> Result<()> {
    let mut at = from;
    while at < to {
        let want = usize::try_from(to - at).unwrap_or(usize::MAX).min(buf.len());
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) => {
                return Err(StoreError::io_at(
                    "reading back",
                    path,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ends at {at}, before {to}"),
                    ),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io_at("reading back", path, e)),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}
