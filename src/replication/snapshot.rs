//! Page-exact snapshots: every page of the database as one read transaction sees it, zstd
//! compressed, with the state checksum so a restore proves it got exactly that database.
//!
//! Layout: a fixed 96-byte header, then one zstd frame (with its content checksum) holding
//! `db_pages × page_size` bytes.
//!
//! ```text
//! magic "RBXSNAP" + version u8 (= 1) · generation (24 ASCII) · txid u64 · page_size u32 ·
//! db_pages u32 · state_checksum [32] · created_ms i64 · reserved [8]
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::ReplicationError;
use super::apply::{StateHasher, for_each_page, in_read_txn, page_size};
use super::record::{GenerationId, valid_page_size};

const MAGIC: &[u8; 8] = b"RBXSNAP\x01";
const HEADER: usize = 96;
const CHECKSUM_AT: usize = 8 + 24 + 8 + 4 + 4;
/// zstd level: fast enough to snapshot a large database in the background.
const LEVEL: i32 = 3;
pub const SNAPSHOT_EXT: &str = ".db.zst";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub generation: GenerationId,
    pub txid: u64,
    pub state_checksum: [u8; 32],
    pub page_size: u32,
    pub db_pages: u32,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReplicationError + '_ {
    move |source| ReplicationError::Io { path: path.to_path_buf(), source }
}

fn tmp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// Make a finished file durable under its final name.
pub(crate) fn fsync_rename(tmp: &Path, out: &Path) -> Result<(), ReplicationError> {
    std::fs::rename(tmp, out).map_err(io_err(out))?;
    if let Some(dir) = out.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

/// A snapshot of `conn`'s database that starts a new lineage: a fresh generation, txid 0.
pub fn write_snapshot(conn: &Connection, out: &Path) -> Result<SnapshotInfo, ReplicationError> {
    write_snapshot_at(conn, out, &GenerationId::new(), 0)
}

/// A snapshot labelled with the position (generation, txid) that `conn`'s read transaction sees.
/// The caller makes sure the label is true (the shipper takes it with everything shipped).
pub fn write_snapshot_at(
    conn: &Connection,
    out: &Path,
    generation: &GenerationId,
    txid: u64,
) -> Result<SnapshotInfo, ReplicationError> {
    write_snapshot_hashed(conn, out, generation, txid).map(|(info, _)| info)
}

/// As [`write_snapshot_at`], also returning the page hashes (the shipper continues from them).
pub fn write_snapshot_hashed(
    conn: &Connection,
    out: &Path,
    generation: &GenerationId,
    txid: u64,
) -> Result<(SnapshotInfo, StateHasher), ReplicationError> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = tmp_path(out);
    let result = write_to(conn, &tmp, generation, txid);
    match result {
        Ok(done) => {
            fsync_rename(&tmp, out)?;
            Ok(done)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_to(
    conn: &Connection,
    tmp: &Path,
    generation: &GenerationId,
    txid: u64,
) -> Result<(SnapshotInfo, StateHasher), ReplicationError> {
    let file = File::create(tmp).map_err(io_err(tmp))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&[0; HEADER]).map_err(io_err(tmp))?;
    let (hasher, w) = in_read_txn(conn, |c| {
        let ps = page_size(c)?;
        let mut hasher = StateHasher::new(ps);
        let mut enc = zstd::stream::Encoder::new(w, LEVEL).map_err(io_err(tmp))?;
        enc.include_checksum(true).map_err(io_err(tmp))?;
        let mut expected = 1u32;
        for_each_page(c, |pgno, page| {
            if pgno != expected || page.len() != ps as usize {
                return Err(ReplicationError::CorruptRecord(format!("page {pgno} could not be read whole")));
            }
            expected += 1;
            hasher.set_page(pgno, page);
            enc.write_all(page).map_err(io_err(tmp))
        })?;
        let w = enc.finish().map_err(io_err(tmp))?;
        Ok((hasher, w))
    })?;
    let info = SnapshotInfo {
        generation: generation.clone(),
        txid,
        state_checksum: hasher.finish(),
        page_size: hasher.page_size(),
        db_pages: hasher.db_pages(),
    };
    let mut file =
        w.into_inner().map_err(|e| ReplicationError::Io { path: tmp.into(), source: e.into_error() })?;
    file.seek(SeekFrom::Start(0)).map_err(io_err(tmp))?;
    file.write_all(&header(&info)).map_err(io_err(tmp))?;
    file.sync_all().map_err(io_err(tmp))?;
    Ok((info, hasher))
}

fn header(info: &SnapshotInfo) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..32].copy_from_slice(info.generation.as_str().as_bytes());
    h[32..40].copy_from_slice(&info.txid.to_be_bytes());
    h[40..44].copy_from_slice(&info.page_size.to_be_bytes());
    h[44..48].copy_from_slice(&info.db_pages.to_be_bytes());
    h[CHECKSUM_AT..CHECKSUM_AT + 32].copy_from_slice(&info.state_checksum);
    let now = chrono::Utc::now().timestamp_millis();
    h[80..88].copy_from_slice(&now.to_be_bytes());
    h
}

fn corrupt(src: &Path, why: &str) -> ReplicationError {
    ReplicationError::CorruptSnapshot { path: src.to_path_buf(), why: why.to_owned() }
}

fn parse_header(src: &Path, h: &[u8; HEADER]) -> Result<SnapshotInfo, ReplicationError> {
    if &h[..8] != MAGIC {
        return Err(corrupt(src, "not a reelbox snapshot (bad magic or version)"));
    }
    let generation = std::str::from_utf8(&h[8..32])
        .ok()
        .and_then(|s| s.parse::<GenerationId>().ok())
        .ok_or_else(|| corrupt(src, "bad generation id"))?;
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let mut txid = [0u8; 8];
    txid.copy_from_slice(&h[32..40]);
    let mut state_checksum = [0u8; 32];
    state_checksum.copy_from_slice(&h[CHECKSUM_AT..CHECKSUM_AT + 32]);
    let info = SnapshotInfo {
        generation,
        txid: u64::from_be_bytes(txid),
        state_checksum,
        page_size: be32(40),
        db_pages: be32(44),
    };
    if !valid_page_size(info.page_size) {
        return Err(corrupt(src, "bad page size"));
    }
    Ok(info)
}

/// The header of a snapshot file, without reading its pages.
pub fn read_snapshot_info(src: &Path) -> Result<SnapshotInfo, ReplicationError> {
    let mut h = [0u8; HEADER];
    File::open(src).and_then(|mut f| f.read_exact(&mut h)).map_err(io_err(src))?;
    parse_header(src, &h)
}

/// Decompress `src` into a new database file `out_db` (replacing it, and removing its `-wal`
/// and `-shm`: nobody may have it open), verifying the state checksum before it takes the name.
pub fn restore_snapshot(src: &Path, out_db: &Path) -> Result<SnapshotInfo, ReplicationError> {
    restore_snapshot_with(src, out_db).map(|(info, _)| info)
}

/// As [`restore_snapshot`], also returning the page hashes so records can be applied and checked.
pub fn restore_snapshot_with(
    src: &Path,
    out_db: &Path,
) -> Result<(SnapshotInfo, StateHasher), ReplicationError> {
    let file = File::open(src).map_err(io_err(src))?;
    restore_snapshot_from(BufReader::with_capacity(1 << 20, file), src, out_db)
}

/// As [`restore_snapshot_with`], reading the snapshot from `r` (`src` names it in messages):
/// a restore streams it from the target without a copy on disk or in memory.
pub fn restore_snapshot_from(
    mut r: impl std::io::BufRead,
    src: &Path,
    out_db: &Path,
) -> Result<(SnapshotInfo, StateHasher), ReplicationError> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h).map_err(|_| corrupt(src, "truncated header"))?;
    let info = parse_header(src, &h)?;
    let tmp = tmp_path(out_db);
    let result = (|| {
        let mut dec = zstd::stream::Decoder::with_buffer(r).map_err(|e| corrupt(src, &e.to_string()))?;
        let out = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = BufWriter::with_capacity(1 << 20, out);
        let mut hasher = StateHasher::new(info.page_size);
        let mut page = vec![0u8; info.page_size as usize];
        for pgno in 1..=info.db_pages {
            dec.read_exact(&mut page).map_err(|e| corrupt(src, &format!("page {pgno}: {e}")))?;
            hasher.set_page(pgno, &page);
            w.write_all(&page).map_err(io_err(&tmp))?;
        }
        // The frame must end here, and its content checksum is checked on reaching the end.
        let mut rest = [0u8; 1];
        match dec.read(&mut rest) {
            Ok(0) => {}
            Ok(_) => return Err(corrupt(src, "more pages than the header says")),
            Err(e) => return Err(corrupt(src, &e.to_string())),
        }
        if hasher.finish() != info.state_checksum {
            return Err(corrupt(src, "state checksum mismatch"));
        }
        let f =
            w.into_inner().map_err(|e| ReplicationError::Io { path: tmp.clone(), source: e.into_error() })?;
        f.sync_all().map_err(io_err(&tmp))?;
        Ok(hasher)
    })();
    match result {
        Ok(hasher) => {
            for suffix in ["-wal", "-shm"] {
                let mut p = out_db.as_os_str().to_os_string();
                p.push(suffix);
                match std::fs::remove_file(PathBuf::from(p)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ReplicationError::Io { path: out_db.into(), source: e }),
                }
            }
            fsync_rename(&tmp, out_db)?;
            Ok((info, hasher))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::apply::state_checksum;
    use super::*;

    #[test]
    fn snapshot_restores_page_exact_while_writes_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("live.db");
        let c = Connection::open(&path).expect("open");
        c.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).expect("wal");
        c.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500)
             INSERT INTO t(v) SELECT randomblob(300) FROM n;",
        )
        .expect("fill");
        let before = state_checksum(&c).expect("sum");

        // The snapshot is of the reader's transaction, even though a writer commits meanwhile.
        let reader = Connection::open(&path).expect("reader");
        reader.execute_batch("BEGIN; SELECT count(*) FROM t;").expect("begin");
        c.execute_batch("INSERT INTO t(v) VALUES (randomblob(5000))").expect("write meanwhile");
        let gen_id = GenerationId::new();
        let snap = dir.path().join(format!("{:016x}{SNAPSHOT_EXT}", 5));
        let info = write_snapshot_at(&reader, &snap, &gen_id, 5).expect("snapshot");
        reader.execute_batch("COMMIT").expect("end");
        assert_eq!(info.state_checksum, before);
        assert_eq!((info.txid, &info.generation), (5, &gen_id));
        assert_eq!(read_snapshot_info(&snap).expect("header"), info);

        let out = dir.path().join("restored.db");
        let restored = restore_snapshot(&snap, &out).expect("restore");
        assert_eq!(restored, info);
        assert_eq!(
            std::fs::metadata(&out).expect("meta").len(),
            u64::from(info.db_pages) * u64::from(info.page_size)
        );
        let r = Connection::open(&out).expect("open restored");
        assert_eq!(state_checksum(&r).expect("sum"), before);
        let n: i64 = r.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 500);
        let ok: String = r.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(ok, "ok");
        let mode: String = r.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn damaged_snapshot_is_refused_and_the_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Connection::open(dir.path().join("a.db")).expect("open");
        c.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (randomblob(20000));").expect("fill");
        let snap = dir.path().join("s.db.zst");
        write_snapshot(&c, &snap).expect("snapshot");
        let mut bytes = std::fs::read(&snap).expect("read");
        let mid = HEADER + (bytes.len() - HEADER) / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&snap, &bytes).expect("damage");
        let out = dir.path().join("out.db");
        std::fs::write(&out, b"keep me").expect("existing");
        let err = restore_snapshot(&snap, &out).expect_err("damaged");
        assert!(matches!(err, ReplicationError::CorruptSnapshot { .. }), "{err}");
        assert_eq!(std::fs::read(&out).expect("read"), b"keep me");
        assert!(!tmp_path(&out).exists());
    }
}
