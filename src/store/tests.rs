//! Blob store tests on real files in a temp directory (and one on a real, tiny tmpfs).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};

use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::error::{AppError, ErrorKind};

fn setup() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

fn blob_files(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("blobs/sha256"))
}

fn temp_files(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("blobs/tmp"))
}

/// Deterministic bytes that do not compress or repeat (xorshift64).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn read_all(store: &BlobStore, hash: &Sha256) -> Vec<u8> {
    let mut out = Vec::new();
    store.open_blob(hash).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn store_and_read_back() {
    let (_dir, store) = setup();
    let data = b"a lesson about photosynthesis".to_vec();
    let stored = store.put_bytes(&data, None).unwrap();
    assert_eq!(stored.hash, Sha256::digest(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert!(!stored.deduplicated);
    assert!(store.exists(&stored.hash).unwrap());
    assert_eq!(store.size(&stored.hash).unwrap(), data.len() as u64);
    assert_eq!(read_all(&store, &stored.hash), data);
    assert!(store.verify(&stored.hash).unwrap());

    let missing = Sha256::digest(b"never stored");
    assert!(!store.exists(&missing).unwrap());
    assert!(matches!(store.open_blob(&missing), Err(StoreError::NotFound { hash }) if hash == missing));
    let err = store.size(&missing).unwrap_err();
    assert_eq!((err.code(), err.kind()), ("blob-not-found", ErrorKind::NotFound));
}

#[test]
fn path_layout_is_sha256_ab_cd_hex() {
    let (dir, store) = setup();
    let stored = store.put_bytes(b"layout", None).unwrap();
    let hex = stored.hash.to_hex();
    let expected = dir.path().join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(&hex);
    assert_eq!(store.path(&stored.hash), expected);
    assert_eq!(blob_files(dir.path()), vec![expected.clone()]);
    assert_eq!(fs::read(&expected).unwrap(), b"layout");
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn identical_content_is_stored_once() {
    let (dir, store) = setup();
    let first = store.put_bytes(b"same bytes", None).unwrap();
    let second = store.put_bytes(b"same bytes", Some(&first.hash)).unwrap();
    assert!(!first.deduplicated);
    assert!(second.deduplicated);
    assert_eq!((second.hash, second.size), (first.hash, first.size));
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert!(temp_files(dir.path()).is_empty(), "the duplicate's temp file is removed");
}

#[test]
fn hash_mismatch_stores_nothing() {
    let (dir, store) = setup();
    let claimed = Sha256::digest(b"what the client meant to send");
    let mut writer = store.writer().unwrap();
    writer.write(b"what actually arrived").unwrap();
    let err = writer.finish(Some(&claimed)).unwrap_err();
    match &err {
        StoreError::HashMismatch { expected, actual } => {
            assert_eq!(*expected, claimed);
            assert_eq!(*actual, Sha256::digest(b"what actually arrived"));
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_eq!((err.code(), err.kind()), ("hash-mismatch", ErrorKind::BadRequest));
    let msg = err.user_message();
    assert!(msg.contains(&claimed.to_hex()), "{msg}");
    assert!(msg.contains(&Sha256::digest(b"what actually arrived").to_hex()), "{msg}");
    assert!(msg.contains("upload the file again"), "{msg}");
    assert!(blob_files(dir.path()).is_empty());
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn dropped_writer_leaves_no_temp_file() {
    let (dir, store) = setup();
    let mut writer = store.writer().unwrap();
    writer.write(&[7u8; 100_000]).unwrap();
    writer.sync().unwrap();
    assert_eq!(temp_files(dir.path()), vec![writer.path().to_path_buf()]);
    drop(writer);
    assert!(temp_files(dir.path()).is_empty());
    assert!(blob_files(dir.path()).is_empty());
}

#[test]
fn startup_sweep_removes_stale_temps_but_not_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("blobs/tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join("0123.part"), b"left by a crash").unwrap();
    fs::write(tmp.join("other"), b"also stale").unwrap();

    let store = BlobStore::open(dir.path()).unwrap();
    assert!(temp_files(dir.path()).is_empty());

    // A second opening of the same data directory (say `reelbox doctor` next to `serve`) must
    // not pull a temp file from under a live writer.
    let mut live = store.writer().unwrap();
    live.write(b"in flight").unwrap();
    fs::write(tmp.join("stale.part"), b"stale").unwrap();
    let other = BlobStore::open(dir.path()).unwrap();
    assert_eq!(temp_files(dir.path()), vec![live.path().to_path_buf()]);
    assert_eq!(other.sweep_temp().unwrap(), 0);
    let stored = live.finish(None).unwrap();
    assert_eq!(read_all(&other, &stored.hash), b"in flight");
}

#[test]
fn verify_detects_a_corrupt_blob() {
    let (_dir, store) = setup();
    let good = store.put_bytes(&pseudo_random(10_000, 1), None).unwrap();
    let bad = store.put_bytes(&pseudo_random(10_000, 2), None).unwrap();
    flip_byte(&store.path(&bad.hash), 5_000);
    assert!(store.verify(&good.hash).unwrap());
    assert!(!store.verify(&bad.hash).unwrap());
    assert_eq!(store.size(&bad.hash).unwrap(), 10_000, "same size: only a re-hash can tell");
    let missing = Sha256::digest(b"missing");
    assert!(matches!(store.verify(&missing), Err(StoreError::NotFound { .. })));
}

#[test]
fn corrupt_read_back_is_removed_and_reported() {
    let (dir, store) = setup();
    let mut events = store.subscribe();
    let data = pseudo_random(200_000, 9);
    store.corrupt_next_commit();
    let err = store.put_bytes(&data, None).unwrap_err();
    let hash = Sha256::digest(&data);
    assert!(matches!(err, StoreError::Corrupt { hash: h, actual } if h == hash && actual != hash), "{err:?}");
    assert_eq!((err.code(), err.kind()), ("blob-corrupt", ErrorKind::Internal));
    assert!(!err.user_message().contains(&hash.to_hex()), "internal detail stays in the log");
    assert!(blob_files(dir.path()).is_empty());
    assert!(temp_files(dir.path()).is_empty());
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    // The next attempt is stored normally.
    assert!(!store.put_bytes(&data, None).unwrap().deduplicated);
    assert!(store.verify(&hash).unwrap());
}

#[test]
fn dedup_replaces_a_corrupt_or_truncated_copy() {
    let (dir, store) = setup();
    let data = pseudo_random(50_000, 3);
    let first = store.put_bytes(&data, None).unwrap();
    let mut events = store.subscribe();

    flip_byte(&store.path(&first.hash), 123);
    let again = store.put_bytes(&data, None).unwrap();
    assert!(!again.deduplicated, "a rotten copy is not a duplicate");
    assert!(store.verify(&first.hash).unwrap());
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Stored { hash: first.hash, size: 50_000 });

    fs::write(store.path(&first.hash), &data[..1000]).unwrap();
    let third = store.put_bytes(&data, None).unwrap();
    assert!(!third.deduplicated);
    assert_eq!(read_all(&store, &first.hash), data);
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn concurrent_writers_of_the_same_content() {
    let (dir, store) = setup();
    let mut events = store.subscribe();
    let data = Arc::new(pseudo_random(3 * 1024 * 1024, 4));
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut writer = store.writer().unwrap();
                for chunk in data.chunks(64 * 1024) {
                    writer.write(chunk).unwrap();
                }
                barrier.wait();
                writer.finish(None)
            })
        })
        .collect();
    let results: Vec<Stored> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    let expected = Sha256::digest(&data);
    assert!(results.iter().all(|r| r.hash == expected && r.size == data.len() as u64));
    assert_eq!(results.iter().filter(|r| !r.deduplicated).count(), 1, "{results:?}");
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert!(temp_files(dir.path()).is_empty());
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Stored { hash: expected, size: data.len() as u64 });
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    assert!(store.verify(&expected).unwrap());
}

#[test]
fn one_event_per_new_blob() {
    let (_dir, store) = setup();
    let mut events = store.subscribe();
    let a = store.put_bytes(b"a", None).unwrap();
    store.put_bytes(b"a", None).unwrap();
    let b = store.put_bytes(b"bb", None).unwrap();
    let _ = store.put_bytes(b"x", Some(&a.hash)).unwrap_err();
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Stored { hash: a.hash, size: 1 });
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Stored { hash: b.hash, size: 2 });
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn large_streaming_write_matches_sha256sum() {
    let (_dir, store) = setup();
    let chunk_len = 64 * 1024;
    let chunks = 50 * 1024 * 1024 / chunk_len;
    let mut writer = store.writer().unwrap();
    for i in 0..chunks {
        writer.write(&pseudo_random(chunk_len, i as u64 + 10)).unwrap();
    }
    assert_eq!(writer.size(), 50 * 1024 * 1024);
    let stored = writer.finish(None).unwrap();
    assert_eq!(stored.size, 50 * 1024 * 1024);

    let out =
        Command::new("sha256sum").arg(store.path(&stored.hash)).output().expect("run sha256sum (coreutils)");
    assert!(out.status.success(), "sha256sum failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.split_whitespace().next(), Some(stored.hash.to_hex().as_str()));
}

#[test]
fn resume_rebuilds_the_hash_from_the_partial_file() {
    let (dir, store) = setup();
    let uploads = dir.path().join("uploads");
    fs::create_dir_all(&uploads).unwrap();
    let partial = uploads.join("upload-1");
    fs::File::create(&partial).unwrap();
    let data = pseudo_random(3 * 1024 * 1024 + 17, 5);
    let (head, tail) = data.split_at(1_500_000);

    let mut writer = BlobWriter::resume(&store, &partial, Some(0)).unwrap();
    writer.write(head).unwrap();
    let durable = writer.sync().unwrap();
    drop(writer); // a restart: the caller's file stays
    assert_eq!(fs::metadata(&partial).unwrap().len(), durable);

    // A torn write after the last sync: bytes the upload never acknowledged.
    let mut torn = fs::read(&partial).unwrap();
    torn.extend_from_slice(b"garbage past the recorded offset");
    fs::write(&partial, torn).unwrap();

    let mut writer = BlobWriter::resume(&store, &partial, Some(durable)).unwrap();
    assert_eq!(writer.size(), head.len() as u64);
    assert!(matches!(BlobWriter::resume(&store, &partial, None), Err(StoreError::InUse { .. })));
    writer.write(tail).unwrap();
    let stored = writer.finish(Some(&Sha256::digest(&data))).unwrap();
    assert!(!stored.deduplicated);
    assert_eq!(read_all(&store, &stored.hash), data);
    assert!(!partial.exists(), "moved into the store");
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn resumed_upload_with_wrong_digest_is_left_to_the_caller() {
    let (dir, store) = setup();
    let partial = dir.path().join("partial");
    fs::write(&partial, b"half an upl").unwrap();
    let mut writer = BlobWriter::resume(&store, &partial, None).unwrap();
    writer.write(b"oad").unwrap();
    let err = writer.finish(Some(&Sha256::digest(b"something else"))).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }));
    assert_eq!(fs::read(&partial).unwrap(), b"half an upload");
    assert!(blob_files(dir.path()).is_empty());
}

#[test]
fn put_file_copies_and_adopt_file_moves() {
    let (dir, store) = setup();
    let src = dir.path().join("poster.jpg");
    fs::write(&src, pseudo_random(2_500_000, 6)).unwrap();
    let copied = store.put_file(&src, None).unwrap();
    assert!(src.exists());
    assert_eq!(read_all(&store, &copied.hash), fs::read(&src).unwrap());

    let again = store.adopt_file(&src, Some(&copied.hash)).unwrap();
    assert!(again.deduplicated);
    assert!(!src.exists(), "adopted even when already stored");

    let other = dir.path().join("other.bin");
    fs::write(&other, b"adopted bytes").unwrap();
    let adopted = store.adopt_file(&other, None).unwrap();
    assert!(!other.exists());
    assert_eq!(read_all(&store, &adopted.hash), b"adopted bytes");
    assert!(store.verify(&adopted.hash).unwrap());
}

#[test]
fn walk_lists_every_blob_and_skips_strays() {
    let (dir, store) = setup();
    let mut expected: Vec<Sha256> =
        (0..20u8).map(|i| store.put_bytes(&[i; 10], None).unwrap().hash).collect();
    expected.sort();
    let root = dir.path().join("blobs/sha256");
    fs::write(root.join("README"), b"stray").unwrap();
    let hex = expected[0].to_hex();
    fs::write(root.join(&hex[..2]).join(&hex[2..4]).join("notes.txt"), b"stray").unwrap();
    // A valid hash in the wrong fan-out directory is not listed as stored.
    fs::create_dir_all(root.join("00/00")).unwrap();
    fs::write(root.join("00/00").join(Sha256::digest(b"misplaced").to_hex()), b"misplaced").unwrap();

    let mut walked: Vec<Sha256> = store.walk().unwrap().collect::<Result<_, _>>().unwrap();
    walked.sort();
    assert_eq!(walked, expected);
}

#[test]
fn disk_full_stores_nothing_and_says_so() {
    let Some(mount) = TmpfsMount::new("1m") else { return };
    let store = BlobStore::open(mount.path()).unwrap();
    let mut writer = store.writer().unwrap();
    let chunk = pseudo_random(64 * 1024, 7);
    let err = loop {
        match writer.write(&chunk) {
            Ok(()) if writer.size() < 4 * 1024 * 1024 => {}
            Ok(()) => panic!("wrote {} bytes to a 1 MiB filesystem", writer.size()),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert_eq!((err.code(), err.kind()), ("disk-full", ErrorKind::InsufficientStorage));
    assert!(err.user_message().contains("disk is full"));
    assert!(writer.write(b"more").is_err(), "a failed writer refuses more bytes");
    drop(writer);
    assert!(temp_files(mount.path()).is_empty());
    assert!(blob_files(mount.path()).is_empty());
    // The space really came back.
    let stored = store.put_bytes(&pseudo_random(512 * 1024, 8), None).unwrap();
    assert!(store.verify(&stored.hash).unwrap());
}

/// A real, size-limited tmpfs, unmounted on drop. Needs root (CI runs as root).
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> Option<TmpfsMount> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(TmpfsMount { dir }),
            _ if std::env::var_os("REELBOX_SKIP_MOUNT_TESTS").is_some() => {
                eprintln!("skipped: cannot mount a tmpfs (REELBOX_SKIP_MOUNT_TESTS is set)");
                None
            }
            other => panic!(
                "cannot mount a tmpfs for the disk-full test ({other:?}): run the tests as root \
                 (as CI does), or set REELBOX_SKIP_MOUNT_TESTS=1 to skip it"
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn trailing_verifier_catches_corruption_after_the_rename() {
    let (dir, store) = setup();
    // Big enough for the trail to fsync and read back the first ranges while writing goes on.
    let data = pseudo_random(40 * 1024 * 1024 + 5, 21);
    let mut writer = store.writer().unwrap();
    for chunk in data.chunks(1024 * 1024) {
        writer.write_chunks(&[chunk]).unwrap();
    }
    store.corrupt_next_commit();
    let err = writer.finish(None).unwrap_err();
    let hash = Sha256::digest(&data);
    assert!(matches!(err, StoreError::Corrupt { hash: h, actual } if h == hash && actual != hash), "{err:?}");
    assert!(blob_files(dir.path()).is_empty());
    assert!(temp_files(dir.path()).is_empty());

    // Unharmed, the same bytes written through the trail are stored and verified.
    let mut writer = store.writer().unwrap();
    writer.write_chunks(&data.chunks(300_000).collect::<Vec<_>>()).unwrap();
    writer.sync().unwrap();
    let stored = writer.finish(Some(&hash)).unwrap();
    assert_eq!((stored.hash, stored.size), (hash, data.len() as u64));
    assert_eq!(read_all(&store, &hash), data);
}

#[test]
fn flushed_bytes_are_readable_and_the_trail_makes_them_durable_in_steps() {
    let (dir, store) = setup();
    let uploads = dir.path().join("uploads");
    fs::create_dir_all(&uploads).unwrap();
    let partial = uploads.join("upload-2");
    fs::File::create(&partial).unwrap();
    let data = pseudo_random(40 * 1024 * 1024 + 5, 9);
    let (small, rest) = data.split_at(1000);

    let mut writer = BlobWriter::resume(&store, &partial, Some(0)).unwrap();
    writer.write(small).unwrap();
    assert_eq!(writer.flush().unwrap(), 1000);
    assert_eq!(fs::read(&partial).unwrap(), small, "flushed bytes are in the file");
    assert_eq!(writer.durable(), 0, "not synced yet, so not durable");

    // Past the trail's 32 MiB step it fdatasyncs on its own.
    for chunk in rest.chunks(1024 * 1024) {
        writer.write_chunks(&[chunk]).unwrap();
    }
    writer.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while writer.durable() < 32 * 1024 * 1024 {
        assert!(std::time::Instant::now() < deadline, "the trail never synced: {}", writer.durable());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(writer.durable() <= writer.size());
    assert_eq!(writer.sync().unwrap(), data.len() as u64);
    assert_eq!(writer.durable(), data.len() as u64);
    let stored = writer.finish(Some(&Sha256::digest(&data))).unwrap();
    assert_eq!(read_all(&store, &stored.hash), data);
}

/// Descriptors this process holds on `path` (Linux: the links under /proc/self/fd).
fn open_descriptors(path: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| fs::read_link(e.path()).is_ok_and(|target| target == path))
        .count()
}

#[test]
fn a_closed_writer_holds_its_file_nowhere_so_removing_it_frees_the_space() {
    let (dir, store) = setup();
    let uploads = dir.path().join("uploads");
    fs::create_dir_all(&uploads).unwrap();
    let partial = uploads.join("upload-3");
    fs::File::create(&partial).unwrap();
    let mut writer = BlobWriter::resume(&store, &partial, Some(0)).unwrap();
    // Enough that the trail has started and opened the file too.
    for chunk in pseudo_random(8 * 1024 * 1024, 4).chunks(1024 * 1024) {
        writer.write_chunks(&[chunk]).unwrap();
    }
    writer.sync().unwrap();
    assert_eq!(open_descriptors(&partial), 2, "the writer's and the trail's");
    writer.close();
    assert_eq!(open_descriptors(&partial), 0, "nothing holds the file after close");
    assert!(partial.exists(), "the caller's file stays until the caller removes it");
}
