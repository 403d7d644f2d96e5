//! What the primary's feed serves, read from the shipper's local spool
//! (`<data>/replication/spool/<generation>/{records,snapshots}/`): the records after a position,
//! the newest snapshot, and the newest shipped position.

use std::path::{Path, PathBuf};

use super::Applied;
use crate::replication::record::parse_record_file_name;
use crate::replication::snapshot::SNAPSHOT_EXT;

pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("replication").join("spool")
}

/// Generation directories, oldest first (ids sort by creation time).
fn generations(spool: &Path) -> Vec<String> {
    let mut gens: Vec<String> = std::fs::read_dir(spool)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.parse::<crate::replication::GenerationId>().is_ok())
        .collect();
    gens.sort();
    gens
}

/// `(first, last, path)` of a generation's records, in order.
fn records(spool: &Path, generation: &str) -> Vec<(u64, u64, PathBuf)> {
    let mut out: Vec<(u64, u64, PathBuf)> = std::fs::read_dir(spool.join(generation).join("records"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (first, last) = parse_record_file_name(&name)?;
            Some((first, last, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// `(txid, path)` of a generation's snapshots, in order.
fn snapshots(spool: &Path, generation: &str) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(spool.join(generation).join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let txid = u64::from_str_radix(name.strip_suffix(SNAPSHOT_EXT)?, 16).ok()?;
            Some((txid, e.path()))
        })
        .collect();
    out.sort();
    out
}

#[derive(Debug, PartialEq)]
pub enum After {
    /// Record files holding the transactions after the position, in order (maybe overlapping it).
    Records(Vec<PathBuf>),
    /// Nothing newer yet.
    Nothing,
    /// The history cannot be continued from there: re-seed from a snapshot.
    Gap,
}

pub fn records_after(data_dir: &Path, generation: &str, after: u64) -> After {
    let spool = spool_dir(data_dir);
    let gens = generations(&spool);
    if !gens.iter().any(|g| g == generation) {
        return After::Gap;
    }
    let newer_exists = gens.last().is_some_and(|g| g.as_str() > generation);
    let all = records(&spool, generation);
    let wanted: Vec<&(u64, u64, PathBuf)> = all.iter().filter(|(_, last, _)| *last > after).collect();
    match wanted.first() {
        None if newer_exists => After::Gap,
        None => After::Nothing,
        Some((first, _, _)) if *first > after + 1 => After::Gap,
        Some(_) => {
            // Only a contiguous run.
            let mut next = after + 1;
            let mut out = Vec::new();
            for (first, last, path) in wanted {
                if *first > next {
                    break;
                }
                out.push(path.clone());
                next = last + 1;
            }
            After::Records(out)
        }
    }
}

/// The newest snapshot of the newest generation that has one.
pub fn latest_snapshot(data_dir: &Path) -> Option<PathBuf> {
    let spool = spool_dir(data_dir);
    generations(&spool).iter().rev().find_map(|g| snapshots(&spool, g).pop().map(|(_, p)| p))
}

/// The newest shipped position: the last transaction of the newest generation (its snapshot's
/// when it has no records yet).
pub fn shipped(data_dir: &Path) -> Option<Applied> {
    let spool = spool_dir(data_dir);
    let generation = generations(&spool).pop()?;
    let txid = records(&spool, &generation)
        .last()
        .map(|(_, last, _)| *last)
        .or_else(|| snapshots(&spool, &generation).last().map(|(t, _)| *t))?;
    Some(Applied { generation, txid, committed_at_ms: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_after_finds_runs_and_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g1 = "0000019a0000000011111111";
        let g2 = "0000019a0000000122222222";
        let recs = spool_dir(dir.path()).join(g1).join("records");
        std::fs::create_dir_all(&recs).expect("dirs");
        for (a, b) in [(1u64, 3u64), (4, 4), (5, 9)] {
            std::fs::write(recs.join(crate::replication::record::record_file_name(a, b)), b"x")
                .expect("write");
        }
        let names = |a: After| match a {
            After::Records(v) => v
                .iter()
                .map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .len(),
            _ => usize::MAX,
        };
        assert_eq!(names(records_after(dir.path(), g1, 0)), 3);
        assert_eq!(names(records_after(dir.path(), g1, 4)), 1);
        assert_eq!(records_after(dir.path(), g1, 9), After::Nothing);
        assert_eq!(records_after(dir.path(), g2, 0), After::Gap);
        assert_eq!(shipped(dir.path()).map(|p| p.txid), Some(9));
        std::fs::create_dir_all(spool_dir(dir.path()).join(g2).join("snapshots")).expect("g2");
        std::fs::write(
            spool_dir(dir.path()).join(g2).join("snapshots").join(format!("{:016x}{SNAPSHOT_EXT}", 0)),
            b"s",
        )
        .expect("snap");
        assert_eq!(records_after(dir.path(), g1, 9), After::Gap, "a newer generation ends this one");
        assert!(latest_snapshot(dir.path()).is_some_and(|p| p.to_string_lossy().contains(g2)));
    }
}
