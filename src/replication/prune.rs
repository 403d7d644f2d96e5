//! Keeping the local spool bounded. Without pruning every record of the running generation
//! would stay in `<data>/replication/spool/` for as long as the server runs.
//!
//! What may go, in the current generation: records wholly covered by the newest snapshot
//! (a restore or a re-seeding replica starts from that snapshot), and older snapshots — in
//! each case only once the file is in the backup target, or at once when there is no target
//! (the spool then only feeds a replica, which re-seeds from the newest snapshot when it is
//! further behind). Older generations without a target go whole; with a target the uploader
//! removes their files as it copies them.

use std::path::{Path, PathBuf};

use super::record::{GenerationId, parse_record_file_name};
use super::shipper::generation_dir;
use super::snapshot::SNAPSHOT_EXT;

/// What the backup target holds of the current generation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InTarget {
    /// Every record up to this txid has been uploaded.
    pub records_through: Option<u64>,
    /// The newest snapshot uploaded (txid).
    pub snapshot: Option<u64>,
}

/// Files removed by one [`prune`].
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pruned {
    pub files: usize,
    pub bytes: u64,
}

fn remove(path: &Path, pruned: &mut Pruned) {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match std::fs::remove_file(path) {
        Ok(()) => {
            pruned.files += 1;
            pruned.bytes += len;
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "replication: cannot prune a spool file")
        }
    }
}

fn snapshots(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let txid = u64::from_str_radix(name.strip_suffix(SNAPSHOT_EXT)?, 16).ok()?;
            Some((txid, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Remove what the spool no longer needs (see the module notes). `target` is `None` when the
/// server has no backup target.
pub(crate) fn prune(spool: &Path, current: &GenerationId, target: Option<InTarget>) -> Pruned {
    let mut pruned = Pruned::default();
    if target.is_none() {
        for entry in std::fs::read_dir(spool).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != current.as_str() && name.parse::<GenerationId>().is_ok() {
                for file in walk(&entry.path()) {
                    remove(&file, &mut pruned);
                }
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = generation_dir(spool, current);
    let snaps = snapshots(&dir);
    let Some(&(newest, _)) = snaps.last() else { return pruned };
    let uploaded = |through: Option<u64>, txid: u64| match target {
        None => true,
        Some(_) => through.is_some_and(|t| t >= txid),
    };
    let in_target = target.unwrap_or_default();
    if uploaded(in_target.snapshot, newest) {
        for (_, path) in &snaps[..snaps.len() - 1] {
            remove(path, &mut pruned);
        }
    }
    for entry in std::fs::read_dir(dir.join("records")).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, last)) = parse_record_file_name(&name)
            && last <= newest
            && uploaded(in_target.records_through, last)
        {
            remove(&entry.path(), &mut pruned);
        }
    }
    pruned
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::record::record_file_name;

    const OLD: &str = "0000019a0000000011111111";
    const CUR: &str = "0000019a0000000122222222";

    fn spool_with_files() -> (tempfile::TempDir, GenerationId) {
        let dir = tempfile::tempdir().expect("tempdir");
        for generation in [OLD, CUR] {
            let g = dir.path().join(generation);
            std::fs::create_dir_all(g.join("records")).expect("records");
            std::fs::create_dir_all(g.join("snapshots")).expect("snapshots");
            for (a, b) in [(1u64, 3u64), (4, 9), (10, 12), (13, 13)] {
                std::fs::write(g.join("records").join(record_file_name(a, b)), b"rec").expect("record");
            }
            for txid in [0u64, 9] {
                std::fs::write(g.join("snapshots").join(format!("{txid:016x}{SNAPSHOT_EXT}")), b"snap")
                    .expect("snapshot");
            }
        }
        (dir, CUR.parse().expect("generation"))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = walk(dir)
            .iter()
            .map(|p| p.strip_prefix(dir).expect("prefix").to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn without_a_target_only_the_newest_snapshot_and_what_follows_stay() {
        let (dir, current) = spool_with_files();
        let pruned = prune(dir.path(), &current, None);
        assert_eq!(
            names(dir.path()),
            vec![
                format!("{CUR}/records/{}", record_file_name(10, 12)),
                format!("{CUR}/records/{}", record_file_name(13, 13)),
                format!("{CUR}/snapshots/0000000000000009{SNAPSHOT_EXT}"),
            ]
        );
        // The old generation (4 records, 2 snapshots), 2 records and 1 snapshot of the current.
        assert_eq!(pruned.files, 9);
        assert_eq!(prune(dir.path(), &current, None), Pruned::default(), "nothing more to do");
    }

    #[test]
    fn with_a_target_nothing_goes_before_it_is_uploaded() {
        let (dir, current) = spool_with_files();
        let before = names(dir.path());
        let offline = InTarget { records_through: None, snapshot: None };
        assert_eq!(prune(dir.path(), &current, Some(offline)).files, 0);
        assert_eq!(names(dir.path()), before, "an offline target keeps the whole spool");

        // Records through 3 uploaded, the newest snapshot not yet.
        let partly = InTarget { records_through: Some(3), snapshot: Some(0) };
        assert_eq!(prune(dir.path(), &current, Some(partly)).files, 1);
        assert!(!dir.path().join(CUR).join("records").join(record_file_name(1, 3)).exists());
        assert!(dir.path().join(CUR).join("records").join(record_file_name(4, 9)).exists());
        assert!(dir.path().join(CUR).join("snapshots").join(format!("{:016x}{SNAPSHOT_EXT}", 0)).exists());

        let all = InTarget { records_through: Some(13), snapshot: Some(9) };
        assert_eq!(prune(dir.path(), &current, Some(all)).files, 2);
        assert!(dir.path().join(CUR).join("records").join(record_file_name(10, 12)).exists());
        assert!(dir.path().join(OLD).join("records").join(record_file_name(1, 3)).exists(), "the uploader's");
    }
}
