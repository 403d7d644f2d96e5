//! Applying shipped transactions to a database, and the database state checksum.
//!
//! Pages are written through the `sqlite_dbpage` virtual table inside one write transaction, so
//! readers of the database see either the state before or after a transaction, never a mix.
//!
//! The state checksum has a fixed definition so every node computes the same value:
//! `acc = XOR over pgno in 1..=db_pages of SHA-256(pgno u32 BE || page)` and
//! `state = SHA-256("reelbox-state-v2" || page_size u32 BE || db_pages u32 BE || acc)`.
//! XOR makes it incremental: replacing a page removes the old page's hash and adds the new one.
//! Page 1 is hashed with its file change counter (bytes 24..28) and "version-valid-for" number
//! (92..96) zeroed: SQLite's pager rewrites both from the local file's own counter whenever page 1
//! is written in WAL mode, so a copy that applied the primary's page 1 holds its own values there,
//! and they say nothing about the content.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::ReplicationError;
use super::record::{Txn, valid_page_size};

const STATE_DOMAIN: &[u8] = b"reelbox-state-v2";

/// Bytes of page 1 that SQLite's pager keeps per file: the change counter and the
/// version-valid-for number (see the module notes).
const PAGE1_LOCAL: [std::ops::Range<usize>; 2] = [24..28, 92..96];

fn page_hash(pgno: u32, page: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pgno.to_be_bytes());
    if pgno == 1 && page.len() >= 100 {
        let (a, b) = (&PAGE1_LOCAL[0], &PAGE1_LOCAL[1]);
        h.update(&page[..a.start]);
        h.update([0u8; 4]);
        h.update(&page[a.end..b.start]);
        h.update([0u8; 4]);
        h.update(&page[b.end..]);
    } else {
        h.update(page);
    }
    h.finalize().into()
}

fn xor_into(acc: &mut [u8; 32], h: &[u8; 32]) {
    for (a, b) in acc.iter_mut().zip(h) {
        *a ^= b;
    }
}

/// The state checksum, kept up to date page by page.
#[derive(Debug, Clone)]
pub struct StateHasher {
    page_size: u32,
    /// Hash of each page, index = pgno - 1.
    hashes: Vec<[u8; 32]>,
    acc: [u8; 32],
    zero_page: Vec<u8>,
}

impl StateHasher {
    /// The state of an empty database (no pages).
    pub fn new(page_size: u32) -> StateHasher {
        StateHasher { page_size, hashes: Vec::new(), acc: [0; 32], zero_page: vec![0; page_size as usize] }
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    pub fn db_pages(&self) -> u32 {
        self.hashes.len() as u32
    }

    /// Set page `pgno` (1-based); a page past the end grows the database (pages between read as zeros).
    pub fn set_page(&mut self, pgno: u32, page: &[u8]) {
        if pgno == 0 {
            return;
        }
        if pgno as usize > self.hashes.len() {
            self.truncate(pgno);
        }
        let slot = &mut self.hashes[pgno as usize - 1];
        xor_into(&mut self.acc, slot);
        *slot = page_hash(pgno, page);
        let new = *slot;
        xor_into(&mut self.acc, &new);
    }

    /// Set the database size in pages: drop pages past it, or add zero pages up to it.
    pub fn truncate(&mut self, db_pages: u32) {
        let n = db_pages as usize;
        while self.hashes.len() > n {
            if let Some(h) = self.hashes.pop() {
                xor_into(&mut self.acc, &h);
            }
        }
        while self.hashes.len() < n {
            let h = page_hash(self.hashes.len() as u32 + 1, &self.zero_page);
            xor_into(&mut self.acc, &h);
            self.hashes.push(h);
        }
    }

    /// Apply a shipped transaction: its pages, then its size.
    pub fn apply(&mut self, txn: &Txn) {
        for (pgno, page) in &txn.pages {
            if *pgno <= txn.db_pages {
                self.set_page(*pgno, page);
            }
        }
        self.truncate(txn.db_pages);
    }

    pub fn finish(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(STATE_DOMAIN);
        h.update(self.page_size.to_be_bytes());
        h.update((self.hashes.len() as u32).to_be_bytes());
        h.update(self.acc);
        h.finalize().into()
    }

    /// Read every page of `conn`'s main database (in the caller's transaction, or a fresh read
    /// transaction when there is none).
    pub fn from_conn(conn: &Connection) -> Result<StateHasher, ReplicationError> {
        in_read_txn(conn, |c| {
            let page_size = page_size(c)?;
            let mut h = StateHasher::new(page_size);
            for_each_page(c, |pgno, page| {
                h.set_page(pgno, page);
                Ok(())
            })?;
            let count: u32 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
            h.truncate(count);
            Ok(h)
        })
    }
}

/// The state checksum of `conn`'s main database, computed from scratch in a read transaction.
pub fn state_checksum(conn: &Connection) -> Result<[u8; 32], ReplicationError> {
    Ok(StateHasher::from_conn(conn)?.finish())
}

pub(crate) fn page_size(conn: &Connection) -> Result<u32, ReplicationError> {
    Ok(conn.pragma_query_value(None, "page_size", |r| r.get(0))?)
}

/// Run `f` inside a read transaction: the caller's if one is open, otherwise a new one.
pub(crate) fn in_read_txn<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, ReplicationError>,
) -> Result<T, ReplicationError> {
    if !conn.is_autocommit() {
        return f(conn);
    }
    conn.execute_batch("BEGIN DEFERRED")?;
    // The read transaction starts at the first read; the schema read pins the snapshot.
    let result = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(Into::into)
        .and_then(|()| f(conn));
    let end = conn.execute_batch("COMMIT");
    let value = result?;
    end?;
    Ok(value)
}

/// Every page of the main database in order, as the current transaction sees it.
pub(crate) fn for_each_page(
    conn: &Connection,
    mut f: impl FnMut(u32, &[u8]) -> Result<(), ReplicationError>,
) -> Result<(), ReplicationError> {
    let mut stmt = conn.prepare_cached("SELECT pgno, data FROM sqlite_dbpage('main') ORDER BY pgno")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let pgno: u32 = row.get(0)?;
        let data = match row.get_ref(1)? {
            rusqlite::types::ValueRef::Blob(b) => b,
            _ => &[],
        };
        f(pgno, data)?;
    }
    Ok(())
}

/// Apply one shipped transaction to `conn`'s main database in ONE write transaction: write its
/// pages, then cut the file to `txn.db_pages`. Verifies only that the page size matches; the
/// caller checks the state checksum if it wants to.
pub fn apply_txn(conn: &Connection, page_size: u32, txn: &Txn) -> Result<(), ReplicationError> {
    if !valid_page_size(page_size) {
        return Err(ReplicationError::PageSize { expected: page_size, found: 0 });
    }
    let current = self::page_size(conn)?;
    if current != page_size {
        let empty: u32 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        if empty != 0 {
            return Err(ReplicationError::PageSize { expected: page_size, found: current });
        }
        conn.pragma_update(None, "page_size", page_size)?;
    }
    if let Some((pgno, page)) = txn.pages.iter().find(|(_, p)| p.len() != page_size as usize) {
        return Err(ReplicationError::CorruptRecord(format!(
            "page {pgno} of transaction {} has {} bytes, not {page_size}",
            txn.txid,
            page.len()
        )));
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), ReplicationError> {
        // Pages are only written up to `db_pages`, so the file ends up longer than that only if
        // it already was. Asked before writing: once page 1 changes, no statement may re-read
        // the schema inside this transaction (SQLite would check it against the old size).
        let before: u32 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let mut insert = conn.prepare_cached("INSERT INTO sqlite_dbpage(pgno, data) VALUES (?1, ?2)")?;
        // Page 1 (which holds the schema cookie) goes last, so the statements before it do not
        // re-read a schema whose pages are not all written yet.
        let mut first = None;
        for (pgno, page) in &txn.pages {
            if *pgno == 1 {
                first = Some(page);
            } else if *pgno <= txn.db_pages {
                insert.execute(params![pgno, page])?;
            }
        }
        if let Some(page) = first {
            insert.execute(params![1u32, page])?;
        }
        if before > txn.db_pages && txn.db_pages >= 1 {
            // Must be the last write of the transaction: it takes effect at commit.
            insert.execute(params![txn.db_pages + 1, Option::<Vec<u8>>::None])?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &std::path::Path, name: &str) -> Connection {
        let c = Connection::open(dir.join(name)).expect("open");
        c.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).expect("wal");
        c
    }

    fn all_pages(c: &Connection) -> Vec<(u32, Vec<u8>)> {
        let mut v = Vec::new();
        in_read_txn(c, |c| {
            for_each_page(c, |p, d| {
                v.push((p, d.to_vec()));
                Ok(())
            })
        })
        .expect("pages");
        v
    }

    #[test]
    fn incremental_equals_from_scratch() {
        let mut h = StateHasher::new(512);
        h.set_page(1, &[1; 512]);
        h.set_page(3, &[3; 512]);
        let mut fresh = StateHasher::new(512);
        fresh.set_page(3, &[3; 512]);
        fresh.set_page(1, &[1; 512]);
        fresh.set_page(2, &[0; 512]);
        assert_eq!(h.finish(), fresh.finish());
        h.set_page(3, &[4; 512]);
        assert_ne!(h.finish(), fresh.finish());
        h.truncate(2);
        fresh.truncate(2);
        assert_eq!(h.finish(), fresh.finish());
        assert_eq!(h.db_pages(), 2);
        assert_ne!(StateHasher::new(512).finish(), StateHasher::new(1024).finish());
    }

    #[test]
    fn applying_pages_reproduces_the_source_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = db(dir.path(), "src.db");
        src.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000)
             INSERT INTO t(v) SELECT printf('row %d %s', i, hex(randomblob(40))) FROM n;",
        )
        .expect("fill");
        let dst = db(dir.path(), "dst.db");
        let reader = Connection::open(dir.path().join("dst.db")).expect("reader");
        let ps = page_size(&src).expect("ps");
        let first = Txn {
            txid: 1,
            committed_at_ms: 0,
            db_pages: all_pages(&src).len() as u32,
            state_checksum: state_checksum(&src).expect("sum"),
            pages: all_pages(&src),
        };
        apply_txn(&dst, ps, &first).expect("apply");
        assert_eq!(state_checksum(&dst).expect("dst sum"), first.state_checksum);
        let n: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 2000);

        // Shrink the source a lot and ship all of its pages again: the copy is cut to size.
        src.execute_batch("DELETE FROM t WHERE id > 10; VACUUM;").expect("shrink");
        let pages = all_pages(&src);
        let shrink = Txn {
            txid: 2,
            committed_at_ms: 0,
            db_pages: pages.len() as u32,
            state_checksum: state_checksum(&src).expect("sum"),
            pages,
        };
        assert!(shrink.db_pages < first.db_pages);
        apply_txn(&dst, ps, &shrink).expect("apply shrink");
        assert_eq!(state_checksum(&dst).expect("dst sum"), shrink.state_checksum);
        let n: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 10);
        let ok: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(ok, "ok");

        let mut inc = StateHasher::new(ps);
        inc.apply(&first);
        inc.apply(&shrink);
        assert_eq!(inc.finish(), shrink.state_checksum);
    }

    #[test]
    fn page_one_counters_do_not_count() {
        let mut page = vec![7u8; 512];
        let base = page_hash(1, &page);
        page[24..28].copy_from_slice(&[1, 2, 3, 4]);
        page[92..96].copy_from_slice(&[5, 6, 7, 8]);
        assert_eq!(page_hash(1, &page), base, "change counter and version-valid-for are local");
        page[28] = 0;
        assert_ne!(page_hash(1, &page), base, "the database size in the header counts");
        let mut other = vec![7u8; 512];
        other[24] = 9;
        assert_ne!(page_hash(2, &other), page_hash(2, &[7u8; 512]), "only page 1 is masked");
    }

    #[test]
    fn bad_pages_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dst = db(dir.path(), "dst.db");
        dst.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").expect("fill");
        let before = state_checksum(&dst).expect("sum");
        let ps = page_size(&dst).expect("ps");
        let bad = Txn {
            txid: 1,
            committed_at_ms: 0,
            db_pages: 2,
            state_checksum: [0; 32],
            pages: vec![(2, vec![0; 100])],
        };
        assert!(apply_txn(&dst, ps, &bad).is_err());
        let wrong_size = Txn { pages: vec![(2, vec![0; 1024])], ..bad };
        assert!(matches!(apply_txn(&dst, 1024, &wrong_size), Err(ReplicationError::PageSize { .. })));
        assert_eq!(state_checksum(&dst).expect("sum"), before);
        assert!(dst.is_autocommit());
    }
}
