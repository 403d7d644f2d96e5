//! Compaction of small records in the backup target (`[replication] compact_below_kib`).
//!
//! The shipper writes one record per batch, often a few KiB each, so a day of records can run to
//! tens of thousands of files. A restore reads every one of them. Compaction merges runs of
//! consecutive small records into one file of up to 16 times the threshold. The merged file is
//! written and read back (decoded, its transactions checked against the originals) before the
//! small ones are deleted. A crash in between leaves both; a restore reads whichever file reaches
//! furthest (`GenerationEntry::chain_after`), so nothing is ever missing. The newest record of a
//! generation stays as it is: the uploader may still be adding after it.

use super::ReplicationError;
use super::record::{self, Record};
use super::target::{self, RecordEntry, Target};

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Merged files written.
    pub written: usize,
    /// Small files removed.
    pub removed: usize,
}

/// Merge runs of consecutive records smaller than `below_bytes` in every generation.
pub async fn compact(target: &Target, below_bytes: u64) -> Result<Compacted, ReplicationError> {
    let mut out = Compacted::default();
    if below_bytes == 0 {
        return Ok(out);
    }
    let limit = below_bytes * 16;
    for (generation, entry) in target::catalog(target).await? {
        // The chain a restore would read, without the newest file.
        let from = entry.snapshots.keys().next().copied().unwrap_or(0);
        let mut chain: Vec<&RecordEntry> = entry.chain_after(from);
        chain.pop();
        let mut run: Vec<&RecordEntry> = Vec::new();
        let mut run_bytes = 0;
        for r in chain {
            let size = r.meta.size;
            if size < below_bytes && run_bytes + size <= limit {
                run.push(r);
                run_bytes += size;
                continue;
            }
            merge(target, &generation, &run, &mut out).await?;
            run.clear();
            run_bytes = 0;
            if size < below_bytes {
                run.push(r);
                run_bytes = size;
            }
        }
        merge(target, &generation, &run, &mut out).await?;
    }
    Ok(out)
}

async fn merge(
    target: &Target,
    generation: &record::GenerationId,
    run: &[&RecordEntry],
    out: &mut Compacted,
) -> Result<(), ReplicationError> {
    if run.len() < 2 {
        return Ok(());
    }
    let mut merged = Record { generation: generation.clone(), page_size: 0, txns: Vec::new() };
    for r in run {
        let bytes = target::get(target, &r.meta.location).await?;
        let rec = record::decode(&bytes).map_err(|e| ReplicationError::CorruptInTarget {
            file: r.meta.location.to_string(),
            why: e.to_string(),
            last_good: "not compacted".into(),
        })?;
        if merged.page_size == 0 {
            merged.page_size = rec.page_size;
        }
        if rec.generation != *generation || rec.page_size != merged.page_size {
            return Ok(());
        }
        let next = merged.txns.last().map(|t| t.txid + 1);
        for t in rec.txns {
            // Overlapping files (an earlier compaction interrupted) contribute each txid once.
            if next.is_none_or(|n| t.txid >= n) && merged.txns.last().is_none_or(|l| t.txid == l.txid + 1) {
                merged.txns.push(t);
            }
        }
    }
    let (first, last) = match (merged.txns.first(), merged.txns.last()) {
        (Some(f), Some(l)) => (f.txid, l.txid),
        _ => return Ok(()),
    };
    let run_last = run.last().map(|r| r.last).unwrap_or(last);
    if first != run[0].first || last != run_last {
        // Not one contiguous history: leave these files alone.
        return Ok(());
    }
    let key = target::record_key(generation, &merged.file_name());
    target::put(target, &key, record::encode(&merged)).await?;
    // Read it back before anything is deleted.
    let check = record::decode(&target::get(target, &key).await?).map_err(|e| {
        ReplicationError::Target(format!("the compacted record {key} does not read back: {e}"))
    })?;
    if check.txns.len() != merged.txns.len()
        || check.txns.iter().zip(&merged.txns).any(|(a, b)| a.state_checksum != b.state_checksum)
    {
        return Err(ReplicationError::Target(format!(
            "the compacted record {key} differs from what was written"
        )));
    }
    out.written += 1;
    for r in run {
        if r.meta.location != key {
            target::delete(target, &r.meta.location).await?;
            out.removed += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::record::{GenerationId, Txn};

    async fn put_record(t: &Target, g: &GenerationId, first: u64, last: u64) {
        let txns = (first..=last)
            .map(|txid| Txn {
                txid,
                committed_at_ms: txid as i64,
                db_pages: 1,
                state_checksum: [txid as u8; 32],
                pages: vec![(1, vec![txid as u8; 512])],
            })
            .collect();
        let rec = Record { generation: g.clone(), page_size: 512, txns };
        target::put(t, &target::record_key(g, &rec.file_name()), record::encode(&rec)).await.expect("put");
    }

    #[tokio::test]
    async fn small_records_merge_into_one_that_holds_every_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t: Target = target::open_dir(dir.path()).expect("target");
        let g: GenerationId = "0000019a0000000011111111".parse().expect("generation");
        for txid in 1..=10u64 {
            put_record(&t, &g, txid, txid).await;
        }
        let out = compact(&t, 64 * 1024).await.expect("compact");
        // 1..=9 merged; the newest (10) stays for the uploader.
        assert_eq!(out, Compacted { written: 1, removed: 9 });
        let catalog = target::catalog(&t).await.expect("catalog");
        let entry = &catalog[&g];
        let files: Vec<(u64, u64)> = entry.records.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(files, [(1, 9), (10, 10)]);
        let merged = record::decode(&target::get(&t, &entry.records[0].meta.location).await.expect("get"))
            .expect("decode");
        let ids: Vec<u64> = merged.txns.iter().map(|t| t.txid).collect();
        assert_eq!(ids, (1..=9).collect::<Vec<_>>());
        assert_eq!(merged.txns[4].pages[0].1, vec![5u8; 512], "pages kept as they were");
        assert_eq!(entry.chain_after(0).len(), 2, "a restore now reads two files");

        // Nothing more to do; large records are left alone.
        assert_eq!(compact(&t, 64 * 1024).await.expect("again"), Compacted::default());
        assert_eq!(compact(&t, 10).await.expect("tiny threshold"), Compacted::default());
    }
}
