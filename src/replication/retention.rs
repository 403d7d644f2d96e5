//! Retention of database history in the backup target (`[replication] retention_days`).
//!
//! The oldest moment that must stay restorable is `now - retention`. A restore to that moment
//! starts from the latest snapshot written at or before it (the same choice `restore` makes),
//! so that snapshot and everything after it stay; what is older goes: whole older generations,
//! older snapshots of the same generation, and records that end at or before the snapshot.
//! When no snapshot is that old yet, nothing is deleted.

use super::ReplicationError;
use super::restore::choose;
use super::target::{self, Target};

/// What one pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    pub generations: usize,
    pub snapshots: usize,
    pub records: usize,
}

/// Delete what no restore to a moment within `retention_days` of `now_ms` needs.
pub async fn expire(target: &Target, now_ms: i64, retention_days: u32) -> Result<Expired, ReplicationError> {
    let catalog = target::catalog(target).await?;
    let cutoff = now_ms - i64::from(retention_days) * 86_400_000;
    let Some((keep_generation, keep_txid)) = choose(target, &catalog, Some(cutoff)).await? else {
        return Ok(Expired::default());
    };
    let mut out = Expired::default();
    for (generation, entry) in &catalog {
        if *generation < keep_generation {
            for &txid in entry.snapshots.keys() {
                target::delete(target, &target::snapshot_key(generation, txid)).await?;
            }
            for r in &entry.records {
                target::delete(target, &r.meta.location).await?;
            }
            out.generations += 1;
        } else if *generation == keep_generation {
            for &txid in entry.snapshots.keys().filter(|&&t| t < keep_txid) {
                target::delete(target, &target::snapshot_key(generation, txid)).await?;
                out.snapshots += 1;
            }
            for r in entry.records.iter().filter(|r| r.last <= keep_txid) {
                target::delete(target, &r.meta.location).await?;
                out.records += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::record::{GenerationId, record_file_name};

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_800_000_000_000;

    /// A snapshot object whose header says it was written at `created_ms` (all `choose` reads).
    async fn snapshot(t: &Target, g: &GenerationId, txid: u64, created_ms: i64) {
        let mut head = vec![0u8; 96];
        head[80..88].copy_from_slice(&created_ms.to_be_bytes());
        target::put(t, &target::snapshot_key(g, txid), head).await.expect("put snapshot");
    }

    async fn record(t: &Target, g: &GenerationId, first: u64, last: u64) {
        target::put(t, &target::record_key(g, &record_file_name(first, last)), vec![1u8])
            .await
            .expect("put record");
    }

    async fn names(t: &Target) -> Vec<String> {
        let catalog = target::catalog(t).await.expect("catalog");
        let mut v = Vec::new();
        for (g, e) in &catalog {
            let short = &g.as_str()[..4];
            v.extend(e.snapshots.keys().map(|txid| format!("{short}/s{txid}")));
            v.extend(e.records.iter().map(|r| format!("{short}/r{}-{}", r.first, r.last)));
        }
        v
    }

    #[tokio::test]
    async fn keeps_exactly_what_the_oldest_restorable_moment_needs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t: Target = target::open_dir(dir.path()).expect("target");
        let (g1, g2, g3): (GenerationId, GenerationId, GenerationId) = (
            "1111019a0000000011111111".parse().expect("g1"),
            "2222019a0000000022222222".parse().expect("g2"),
            "3333019a0000000033333333".parse().expect("g3"),
        );
        snapshot(&t, &g1, 0, NOW - 40 * DAY).await;
        record(&t, &g1, 1, 5).await;
        snapshot(&t, &g2, 0, NOW - 35 * DAY).await;
        record(&t, &g2, 1, 10).await;
        snapshot(&t, &g2, 10, NOW - 25 * DAY).await;
        record(&t, &g2, 11, 20).await;
        snapshot(&t, &g3, 0, NOW - DAY).await;
        record(&t, &g3, 1, 3).await;

        // Nothing is 50 days old: nothing goes.
        assert_eq!(expire(&t, NOW, 50).await.expect("expire"), Expired::default());
        assert_eq!(names(&t).await.len(), 8);

        // 30 days: a restore to 30 days ago starts at g2's first snapshot; g1 goes whole.
        let out = expire(&t, NOW, 30).await.expect("expire");
        assert_eq!(out, Expired { generations: 1, snapshots: 0, records: 0 });
        assert_eq!(
            names(&t).await,
            ["2222/s0", "2222/s10", "2222/r1-10", "2222/r11-20", "3333/s0", "3333/r1-3"]
        );

        // 20 days: the restore starts at g2's snapshot 10; what only led up to it goes.
        let out = expire(&t, NOW, 20).await.expect("expire");
        assert_eq!(out, Expired { generations: 0, snapshots: 1, records: 1 });
        assert_eq!(names(&t).await, ["2222/s10", "2222/r11-20", "3333/s0", "3333/r1-3"]);
    }
}
