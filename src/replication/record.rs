//! Transaction records: the unit of WAL shipping.
//!
//! A record holds one or more whole transactions of one generation, with contiguous transaction
//! ids. It is self-describing and checksummed so a restore can read it without any other state
//! and prove it intact. Layout (all integers big-endian):
//!
//! ```text
//! magic     8 bytes  "RBXREC" + version u16 (= 1)
//! gen_len   u8, then the generation id (ASCII)
//! page_size u32
//! txn_count u32 (>= 1)
//! per transaction:
//!   txid u64 · committed_at_ms i64 · db_pages u32 · state_checksum [32] · page_count u32
//!   page_count × (pgno u32 · page bytes[page_size])
//! trailer   SHA-256 of every byte before it (32 bytes)
//! ```
//!
//! `db_pages` is the database size after the commit; `state_checksum` is the checksum of the
//! whole database at that commit (see [`super::apply::StateHasher`]). Pages beyond `db_pages`
//! are never stored.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::ReplicationError;

const MAGIC: &[u8; 6] = b"RBXREC";
const VERSION: u16 = 1;
const TRAILER: usize = 32;
/// The file name suffix of a record, in the spool and in the target.
pub const RECORD_EXT: &str = ".rec";

/// One lineage of the database: transaction ids are contiguous within a generation. A new one
/// starts when the WAL was reset behind the shipper or the history is broken; it starts with a
/// snapshot. The id is the creation time in milliseconds (16 hex digits) and 8 random hex digits,
/// so ids sort by creation time and are safe as file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenerationId(String);

impl GenerationId {
    pub fn new() -> GenerationId {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        GenerationId(format!("{ms:016x}{:08x}", rand::random::<u32>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Creation time in milliseconds since the epoch.
    pub fn created_ms(&self) -> i64 {
        i64::from_str_radix(&self.0[..16], 16).unwrap_or(0)
    }
}

impl Default for GenerationId {
    fn default() -> Self {
        GenerationId::new()
    }
}

impl fmt::Display for GenerationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for GenerationId {
    type Err = ReplicationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(GenerationId(s.to_owned()))
        } else {
            Err(ReplicationError::BadName(format!("not a generation id: {s:?}")))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub txid: u64,
    pub committed_at_ms: i64,
    pub db_pages: u32,
    pub state_checksum: [u8; 32],
    pub pages: Vec<(u32, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub generation: GenerationId,
    pub page_size: u32,
    pub txns: Vec<Txn>,
}

impl Record {
    pub fn first_txid(&self) -> u64 {
        self.txns.first().map(|t| t.txid).unwrap_or(0)
    }
    pub fn last_txid(&self) -> u64 {
        self.txns.last().map(|t| t.txid).unwrap_or(0)
    }
    /// `<first:016x>-<last:016x>.rec`
    pub fn file_name(&self) -> String {
        record_file_name(self.first_txid(), self.last_txid())
    }
}

pub fn record_file_name(first: u64, last: u64) -> String {
    format!("{first:016x}-{last:016x}{RECORD_EXT}")
}

/// The transaction id range of a record file name, `None` for anything else.
pub fn parse_record_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(RECORD_EXT)?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 16 || b.len() != 16 {
        return None;
    }
    let first = u64::from_str_radix(a, 16).ok()?;
    let last = u64::from_str_radix(b, 16).ok()?;
    (first <= last).then_some((first, last))
}

pub fn valid_page_size(page_size: u32) -> bool {
    (512..=65536).contains(&page_size) && page_size.is_power_of_two()
}

pub fn encode(r: &Record) -> Vec<u8> {
    let page_bytes: usize = r.txns.iter().map(|t| t.pages.len() * (4 + r.page_size as usize)).sum();
    let mut out = Vec::with_capacity(64 + r.txns.len() * 60 + page_bytes + TRAILER);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    let generation = r.generation.as_str().as_bytes();
    out.push(generation.len() as u8);
    out.extend_from_slice(generation);
    out.extend_from_slice(&r.page_size.to_be_bytes());
    out.extend_from_slice(&(r.txns.len() as u32).to_be_bytes());
    for t in &r.txns {
        out.extend_from_slice(&t.txid.to_be_bytes());
        out.extend_from_slice(&t.committed_at_ms.to_be_bytes());
        out.extend_from_slice(&t.db_pages.to_be_bytes());
        out.extend_from_slice(&t.state_checksum);
        out.extend_from_slice(&(t.pages.len() as u32).to_be_bytes());
        for (pgno, page) in &t.pages {
            out.extend_from_slice(&pgno.to_be_bytes());
            out.extend_from_slice(page);
        }
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReplicationError> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ReplicationError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ReplicationError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, ReplicationError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
}

fn corrupt(why: &str) -> ReplicationError {
    ReplicationError::CorruptRecord(why.to_owned())
}

/// Parse and verify a record: magic, version, checksum, page sizes, contiguous transaction ids.
pub fn decode(bytes: &[u8]) -> Result<Record, ReplicationError> {
    if bytes.len() < MAGIC.len() + 2 + TRAILER {
        return Err(corrupt("too short to be a record"));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a transaction record (bad magic)"));
    }
    let version = u16::from_be_bytes([bytes[6], bytes[7]]);
    if version != VERSION {
        return Err(corrupt(&format!(
            "record format version {version} is not supported (this reelbox reads {VERSION})"
        )));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER);
    if Sha256::digest(body).as_slice() != trailer {
        return Err(corrupt("checksum mismatch: the record is damaged"));
    }
    let mut r = Reader { buf: body, at: 8 };
    let gen_len = r.u8()? as usize;
    let generation = std::str::from_utf8(r.take(gen_len)?)
        .map_err(|_| corrupt("generation id is not text"))?
        .parse::<GenerationId>()
        .map_err(|_| corrupt("bad generation id"))?;
    let page_size = r.u32()?;
    if !valid_page_size(page_size) {
        return Err(corrupt("bad page size"));
    }
    let count = r.u32()? as usize;
    if count == 0 {
        return Err(corrupt("record holds no transaction"));
    }
    let mut txns = Vec::with_capacity(count.min(65536));
    for _ in 0..count {
        let txid = r.u64()?;
        let committed_at_ms = r.u64()? as i64;
        let db_pages = r.u32()?;
        let mut state_checksum = [0u8; 32];
        state_checksum.copy_from_slice(r.take(32)?);
        let n = r.u32()? as usize;
        let mut pages = Vec::with_capacity(n.min(body.len() / page_size as usize + 1));
        for _ in 0..n {
            let pgno = r.u32()?;
            if pgno == 0 || pgno > db_pages {
                return Err(corrupt("page number outside the database"));
            }
            pages.push((pgno, r.take(page_size as usize)?.to_vec()));
        }
        if let Some(prev) = txns.last().map(|t: &Txn| t.txid)
            && prev.checked_add(1) != Some(txid)
        {
            return Err(corrupt("transaction ids are not contiguous"));
        }
        txns.push(Txn { txid, committed_at_ms, db_pages, state_checksum, pages });
    }
    if r.at != body.len() {
        return Err(corrupt("trailing bytes after the last transaction"));
    }
    Ok(Record { generation, page_size, txns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            generation: GenerationId::new(),
            page_size: 512,
            txns: vec![
                Txn {
                    txid: 7,
                    committed_at_ms: 1_700_000_000_000,
                    db_pages: 3,
                    state_checksum: [1; 32],
                    pages: vec![(1, vec![9; 512]), (3, vec![8; 512])],
                },
                Txn {
                    txid: 8,
                    committed_at_ms: 1_700_000_000_500,
                    db_pages: 2,
                    state_checksum: [2; 32],
                    pages: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let bytes = encode(&r);
        assert_eq!(decode(&bytes).expect("decode"), r);
        assert_eq!(r.file_name(), "0000000000000007-0000000000000008.rec");
        assert_eq!(parse_record_file_name(&r.file_name()), Some((7, 8)));
        assert_eq!(parse_record_file_name("0000000000000009-0000000000000008.rec"), None);
        assert_eq!(parse_record_file_name("x.rec"), None);
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let bytes = encode(&sample());
        for at in [0, 7, 10, 40, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(matches!(decode(&bad), Err(ReplicationError::CorruptRecord(_))), "flip at {at}");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn gaps_and_bad_versions_are_refused() {
        let mut r = sample();
        r.txns[1].txid = 9;
        let err = decode(&encode(&r)).expect_err("gap");
        assert!(err.to_string().contains("contiguous"), "{err}");

        let mut bytes = encode(&sample());
        bytes[7] = 2;
        let body = bytes.len() - 32;
        let sum = Sha256::digest(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum);
        let err = decode(&bytes).expect_err("version");
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn generation_ids_sort_by_time_and_parse() {
        let a = GenerationId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = GenerationId::new();
        assert!(a < b);
        assert_eq!(a.as_str().parse::<GenerationId>().expect("parse"), a);
        assert!("../etc".parse::<GenerationId>().is_err());
        assert!(a.created_ms() > 1_700_000_000_000);
    }
}
