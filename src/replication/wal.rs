//! Reading committed transactions straight from the `-wal` file.
//!
//! A frame counts only if its salts match the header and the cumulative checksum chain is
//! unbroken; reading stops at the first frame that fails (old frames from before a reset stay
//! in the file) and only whole transactions — up to the last commit frame — are returned.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const HEADER_LEN: u64 = 32;
const FRAME_HEADER: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    /// The checksum words are big-endian (magic 0x377f0683) or little-endian (0x377f0682).
    pub big_endian: bool,
    pub page_size: u32,
    pub ckpt_seq: u32,
    pub salt: (u32, u32),
    pub cksum: (u32, u32),
}

impl WalHeader {
    /// True when `next` is what SQLite writes when it restarts this WAL once.
    pub fn is_restart_of(&self, prev: &WalHeader) -> bool {
        next_seq(prev.ckpt_seq) == self.ckpt_seq && prev.salt.0.wrapping_add(1) == self.salt.0
    }
}

fn next_seq(s: u32) -> u32 {
    s.wrapping_add(1)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn checksum(big_endian: bool, data: &[u8], seed: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for w in data.chunks_exact(8) {
        let (x0, x1) = if big_endian {
            (be32(&w[0..4]), be32(&w[4..8]))
        } else {
            (u32::from_le_bytes([w[0], w[1], w[2], w[3]]), u32::from_le_bytes([w[4], w[5], w[6], w[7]]))
        };
        s0 = s0.wrapping_add(x0).wrapping_add(s1);
        s1 = s1.wrapping_add(x1).wrapping_add(s0);
    }
    (s0, s1)
}

/// The WAL header, or `None` when the file is empty, short or not (yet) a valid WAL.
pub fn read_header(file: &File) -> io::Result<Option<WalHeader>> {
    let mut h = [0u8; HEADER_LEN as usize];
    match file.read_exact_at(&mut h, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let magic = be32(&h[0..4]);
    if magic & !1 != 0x377f_0682 {
        return Ok(None);
    }
    let big_endian = magic & 1 == 1;
    let cksum = (be32(&h[24..28]), be32(&h[28..32]));
    if checksum(big_endian, &h[..24], (0, 0)) != cksum {
        return Ok(None);
    }
    let page_size = match be32(&h[8..12]) {
        1 => 65536,
        n => n,
    };
    Ok(Some(WalHeader {
        big_endian,
        page_size,
        ckpt_seq: be32(&h[12..16]),
        salt: (be32(&h[16..20]), be32(&h[20..24])),
        cksum,
    }))
}

/// Where the reader stands in one WAL: frames read so far (all of whole transactions) and the
/// running checksum after the last of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCursor {
    pub header: WalHeader,
    pub frames: u64,
    pub cksum: (u32, u32),
}

impl WalCursor {
    pub fn start(header: WalHeader) -> WalCursor {
        WalCursor { header, frames: 0, cksum: header.cksum }
    }
}

/// One committed transaction as found in the WAL.
#[derive(Debug, Clone)]
pub struct WalTxn {
    /// Database size in pages after the commit.
    pub db_pages: u32,
    /// The newest version of each page the transaction wrote, pages past `db_pages` dropped.
    pub pages: BTreeMap<u32, Vec<u8>>,
    /// Frames in the WAL up to and including this transaction's commit frame.
    pub end_frame: u64,
}

/// Read the whole transactions after `cursor`, at most `max_frames` frames (at least one whole
/// transaction is always returned when there is one). Returns them and the cursor after them.
pub fn read_committed(
    file: &File,
    cursor: WalCursor,
    max_frames: u64,
) -> io::Result<(Vec<WalTxn>, WalCursor)> {
    let ps = cursor.header.page_size as usize;
    let frame_len = (FRAME_HEADER + ps) as u64;
    let mut buf = vec![0u8; FRAME_HEADER + ps];
    let mut txns = Vec::new();
    let mut done = cursor;
    let mut running = cursor.cksum;
    let mut frame = cursor.frames;
    let mut pending: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    loop {
        let at = HEADER_LEN + frame * frame_len;
        match file.read_exact_at(&mut buf, at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let salt = (be32(&buf[8..12]), be32(&buf[12..16]));
        if salt != cursor.header.salt {
            break;
        }
        let sum = checksum(cursor.header.big_endian, &buf[..8], running);
        let sum = checksum(cursor.header.big_endian, &buf[FRAME_HEADER..], sum);
        if sum != (be32(&buf[16..20]), be32(&buf[20..24])) {
            break;
        }
        running = sum;
        frame += 1;
        let pgno = be32(&buf[0..4]);
        pending.insert(pgno, buf[FRAME_HEADER..].to_vec());
        let commit = be32(&buf[4..8]);
        if commit != 0 {
            let mut pages = std::mem::take(&mut pending);
            pages.retain(|&p, _| p >= 1 && p <= commit);
            txns.push(WalTxn { db_pages: commit, pages, end_frame: frame });
            done = WalCursor { header: cursor.header, frames: frame, cksum: running };
            if frame - cursor.frames >= max_frames {
                break;
            }
        }
    }
    Ok((txns, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn reads_what_sqlite_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.db");
        let c = Connection::open(&path).expect("open");
        c.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).expect("wal");
        c.pragma_update(None, "wal_autocheckpoint", 0).expect("no auto");
        // Keep a reader so nothing checkpoints on close of the writer.
        c.execute_batch(
            "CREATE TABLE t(v); INSERT INTO t VALUES (1); INSERT INTO t VALUES (randomblob(9000));",
        )
        .expect("writes");
        let wal = File::open(dir.path().join("a.db-wal")).expect("wal file");
        let header = read_header(&wal).expect("read").expect("header");
        assert_eq!(header.page_size, 4096);
        let (txns, cursor) = read_committed(&wal, WalCursor::start(header), u64::MAX).expect("frames");
        assert_eq!(txns.len(), 3);
        assert_eq!(cursor.frames, txns[2].end_frame);
        let (more, same) = read_committed(&wal, cursor, u64::MAX).expect("again");
        assert!(more.is_empty());
        assert_eq!(same, cursor);
        c.execute_batch("INSERT INTO t VALUES (2)").expect("one more");
        let (more, _) = read_committed(&wal, cursor, u64::MAX).expect("tail");
        assert_eq!(more.len(), 1);
        // One transaction at a time when asked for few frames.
        let (first, c1) = read_committed(&wal, WalCursor::start(header), 1).expect("one");
        assert_eq!(first.len(), 1);
        assert_eq!(c1.frames, txns[0].end_frame);
    }
}
