//! Streaming bytes into the store: a temp file that is hashed as it is written, owned by the
//! writer and removed if the writer is dropped unfinished.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::disk::{IO_CHUNK, Verify, read_some, remove_quietly};
use super::trail::{Trail, WRITEBACK_STEP};
use super::{BlobStore, Sha256, StoreError, Stored};

type Result<T> = std::result::Result<T, StoreError>;

/// Attempts at a fresh temp name before giving up (a clash needs 128 random bits to collide, or
/// a sweep to remove the file between its creation and its lock).
const CREATE_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A temp file under `blobs/tmp/`, removed when the writer is dropped unfinished.
    Store,
    /// A partial file the caller keeps (a resumable upload); left in place unless stored.
    Caller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A write failed part-way: what is on disk no longer matches the hash state.
    Failed,
    /// Renamed into the store (or deduplicated and removed).
    Done,
}

/// Bytes on their way into the store. Every `write` is appended to the file and fed to the
/// hash, so `finish` knows the SHA-256 without reading the file again before it is in place.
/// The file is locked (flock) for as long as the writer lives: the temp sweep leaves it
/// alone, and a second writer cannot resume the same partial upload.
///
/// Once a writer has more than a few megabytes (or is synced by its caller), a trailing thread
/// (`trail`) makes the written ranges durable while more arrives and reads each durable range
/// back to hash it, so the final fsync and the read-back verification overlap the upload
/// instead of following it.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    path: PathBuf,
    file: BufWriter<File>,
    hasher: sha2::Sha256,
    size: u64,
    /// `size` when the trail was last told how far the file is written.
    told: u64,
    /// `size` at the last `sync` by the writer itself.
    synced: u64,
    trail: Option<Trail>,
    owner: Owner,
    state: State,
}

impl BlobWriter {
    pub(super) fn create(store: &BlobStore) -> Result<BlobWriter> {
        for _ in 0..CREATE_ATTEMPTS {
            let name = format!("{}.part", hex::encode(rand::random::<[u8; 16]>()));
            let path = store.tmp_dir().join(name);
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io_at("creating temp file", &path, e)),
            };
            // A sweep running between create and lock may hold the lock or have unlinked the
            // file; either way the name is no longer ours, so take another.
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => continue,
                Err(fs::TryLockError::Error(e)) => return Err(StoreError::io_at("locking", &path, e)),
            }
            if !same_file(&file, &path)? {
                continue;
            }
            return Ok(BlobWriter::new(store, path, file, sha2::Sha256::new(), 0, Owner::Store));
        }
        Err(StoreError::io(
            format!("creating a temp file in {}", store.tmp_dir().display()),
            io::Error::other("no free temp name after several attempts"),
        ))
    }

    /// Continue a partial upload the caller keeps on disk (e.g. under `<data>/uploads/`), after
    /// a restart or between requests, by re-reading it to rebuild the hash state.
    ///
    /// `truncate_to` drops bytes past the length the caller last recorded as durable (see
    /// `sync`): after a crash the file may hold a torn tail. `size()` tells where to continue.
    /// The file must be on the same filesystem as the store, so `finish` can rename it in.
    /// Dropping the writer leaves the file; `finish` moves it into the store on success.
    pub fn resume(store: &BlobStore, partial: &Path, truncate_to: Option<u64>) -> Result<BlobWriter> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(partial)
            .map_err(|e| StoreError::io_at("opening partial upload", partial, e))?;
        lock(&file, partial)?;
        let meta = file.metadata().map_err(|e| StoreError::io_at("reading", partial, e))?;
        if !meta.is_file() {
            return Err(StoreError::io_at(
                "resuming",
                partial,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        if meta.dev() != store.tmp_device() {
            return Err(StoreError::io_at(
                "resuming",
                partial,
                io::Error::new(
                    io::ErrorKind::CrossesDevices,
                    format!("not on the same filesystem as {}", store.tmp_dir().display()),
                ),
            ));
        }
        if let Some(len) = truncate_to
            && meta.len() > len
        {
            file.set_len(len).map_err(|e| StoreError::io_at("truncating", partial, e))?;
        }

        file.seek(SeekFrom::Start(0)).map_err(|e| StoreError::io_at("seeking", partial, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let n = read_some(&mut file, &mut buf).map_err(|e| StoreError::io_at("reading", partial, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        // Appends go after what was hashed, whatever else touched the file offset.
        file.seek(SeekFrom::Start(size)).map_err(|e| StoreError::io_at("seeking", partial, e))?;
        Ok(BlobWriter::new(store, partial.into(), file, hasher, size, Owner::Caller))
    }

    fn new(
        store: &BlobStore,
        path: PathBuf,
        file: File,
        hasher: sha2::Sha256,
        size: u64,
        owner: Owner,
    ) -> Self {
        BlobWriter {
            store: store.clone(),
            path,
            file: BufWriter::with_capacity(IO_CHUNK, file),
            hasher,
            size,
            told: 0,
            synced: 0,
            trail: None,
            owner,
            state: State::Open,
        }
    }

    /// Append `buf` and hash it. After an error the writer refuses further use: drop it.
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.check_open()?;
        if let Err(e) = self.file.write_all(buf) {
            self.state = State::Failed;
            return Err(StoreError::io_at("writing", &self.path, e));
        }
        // sha2 0.10 uses SHA-NI (x86-64) or the ARMv8 SHA2 instructions when the CPU has them,
        // detected at run time, so hashing keeps up with the disk.
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.keep_trail_up()
    }

    /// Append several buffers (say, the chunks a request body arrived in) with as few system
    /// calls as possible and no copy through the writer's buffer, and hash them.
    pub fn write_chunks<B: AsRef<[u8]>>(&mut self, chunks: &[B]) -> Result<()> {
        self.check_open()?;
        let total: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
        if total < IO_CHUNK / 4 {
            for c in chunks {
                self.write(c.as_ref())?;
            }
            return Ok(());
        }
        let written = self.file.flush().and_then(|()| {
            let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c.as_ref())).collect();
            write_all_vectored(self.file.get_mut(), &mut slices)
        });
        if let Err(e) = written {
            self.state = State::Failed;
            return Err(StoreError::io_at("writing", &self.path, e));
        }
        for c in chunks {
            self.hasher.update(c.as_ref());
        }
        self.size += total as u64;
        self.keep_trail_up()
    }

    /// Tell the trail (starting it once there is enough to sync) how far the file is written.
    fn keep_trail_up(&mut self) -> Result<()> {
        if self.size - self.told < WRITEBACK_STEP {
            return Ok(());
        }
        if let Err(e) = self.file.flush() {
            self.state = State::Failed;
            return Err(StoreError::io_at("writing", &self.path, e));
        }
        let size = self.size;
        self.trail()?.wrote(size);
        self.told = size;
        Ok(())
    }

    fn trail(&mut self) -> Result<&Trail> {
        let trail = match self.trail.take() {
            Some(t) => t,
            None => Trail::start(&self.path, self.file.get_ref(), self.size)?,
        };
        Ok(self.trail.insert(trail))
    }

    /// Bytes written so far (for a resumed writer: including what was already on disk).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file being written: a temp file, or the caller's partial upload.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hand everything written so far to the kernel (readable through the file, not yet
    /// necessarily on disk) and let the trail start on it; returns the size. A resumable upload
    /// may acknowledge this length, but must record only `durable()` as its offset.
    pub fn flush(&mut self) -> Result<u64> {
        self.check_open()?;
        if let Err(e) = self.file.flush() {
            self.state = State::Failed;
            return Err(StoreError::io_at("writing", &self.path, e));
        }
        if self.size > self.told {
            let size = self.size;
            self.trail()?.wrote(size);
            self.told = size;
        }
        Ok(self.size)
    }

    /// The length known to be on disk: made durable by the trail's fdatasync steps or by
    /// `sync`. Never more than `size()`; after a crash, the file holds at least this much.
    pub fn durable(&self) -> u64 {
        let trailed = self.trail.as_ref().map_or(0, Trail::durable);
        trailed.max(self.synced).min(self.size)
    }

    /// Make everything written so far durable; returns the length a resumable upload may
    /// report and record as its offset.
    pub fn sync(&mut self) -> Result<u64> {
        self.check_open()?;
        if let Err(e) = self.file.flush().and_then(|()| self.file.get_ref().sync_data()) {
            self.state = State::Failed;
            return Err(StoreError::io_at("syncing", &self.path, e));
        }
        // What is durable now can be read back while the caller waits for more bytes.
        let size = self.size;
        self.synced = size;
        self.trail()?.synced(size);
        self.told = size;
        Ok(size)
    }

    /// Store what was written. With `expected` (the digest the client sent), a mismatch stores
    /// nothing. Otherwise: fsync, rename into `blobs/sha256/ab/cd/`, fsync the directory, re-read
    /// and verify — only after `Ok` may the row that points to the blob be committed. With a
    /// trail, the re-read of the ranges fsynced earlier has already been done; the rest is read
    /// after the rename, from the same file (checked by device and inode).
    ///
    /// On `Err` a temp file is removed; a resumed caller's file is left where it was, except
    /// after `Corrupt`, when the bytes that failed verification are gone.
    pub fn finish(mut self, expected: Option<&Sha256>) -> Result<Stored> {
        self.check_open()?;
        if let Err(e) = self.file.flush() {
            self.state = State::Failed;
            return Err(StoreError::io_at("writing", &self.path, e));
        }
        let hash = Sha256::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = expected
            && *expected != hash
        {
            self.state = State::Failed;
            return Err(StoreError::HashMismatch { expected: *expected, actual: hash });
        }
        if let Err(e) = self.file.get_ref().sync_all() {
            self.state = State::Failed;
            return Err(StoreError::io_at("syncing", &self.path, e));
        }
        // From here on the temp file may already have been renamed into the store; never remove
        // the path afterwards (it is either gone or still our temp, which Drop handles).
        self.state = State::Failed;
        let verify = match self.trail.take() {
            Some(trail) => Verify::Trail(trail),
            None => Verify::ReadBack,
        };
        let stored = self.store.commit(&self.path, hash, self.size, verify)?;
        self.state = State::Done;
        Ok(stored)
    }

    /// Give up on this writer and wait until nothing holds its file open any more, the trailing
    /// thread included, so that removing the file frees its space at once (a full disk needs
    /// that room back before the database can record the removal). Blocking.
    pub fn close(mut self) {
        if let Some(trail) = self.trail.take() {
            trail.stop_and_wait();
        }
    }

    fn check_open(&self) -> Result<()> {
        match self.state {
            State::Open => Ok(()),
            State::Failed | State::Done => Err(StoreError::io_at(
                "using blob writer for",
                &self.path,
                io::Error::other("an earlier write failed; start again with a new writer"),
            )),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.owner == Owner::Store && self.state != State::Done {
            remove_quietly(&self.path);
        }
    }
}

/// `Write::write_all_vectored` (not stable yet): write every slice, however the kernel splits it.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn lock(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::InUse { path: path.into() }),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::io_at("locking", path, e)),
    }
}

fn same_file(file: &File, path: &Path) -> Result<bool> {
    let open = file.metadata().map_err(|e| StoreError::io_at("reading", path, e))?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io_at("reading", path, e)),
    }
}
