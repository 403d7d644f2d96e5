//! The follower: a replica reads its primary's transaction records (long-poll, resuming from
//! its position), checks the signature of every answer and the state checksum after every
//! transaction, and applies each transaction atomically (one SQLite write transaction through
//! `sqlite_dbpage`, so local readers see the state before or after it, never between). Its
//! position lives in `<data>/replica/position.json`, written after the pages are committed:
//! after a crash it re-applies a few transactions, which is harmless because each record holds
//! whole page images applied in order. A gap it cannot close (a new generation, records past
//! retention) or a checksum that does not match makes it re-seed from a snapshot by itself.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::auth::{self, EPOCH_HEADER, NODE_HEADER, POSITION_HEADER, SIGNATURE_HEADER};
use super::{Applied, ReplicaError, Role, now_ms, state};
use crate::App;
use crate::replication::{self, StateHasher, Txn};

pub const RECORDS_PATH: &str = "/replication/v1/records";
pub const SNAPSHOT_PATH: &str = "/replication/v1/snapshot";
/// How long the primary holds a records request open when there is nothing new.
const LONG_POLL_MS: u64 = 20_000;

/// Run for the life of the server: follow while this node is a replica.
pub async fn run(app: App) {
    let mut role = app.replica.role_watch.subscribe();
    let mut backoff = Duration::from_millis(250);
    loop {
        while *role.borrow_and_update() != Role::Replica {
            if role.changed().await.is_err() {
                return;
            }
        }
        let mut f = Follower { app: app.clone(), hasher: None };
        match f.follow().await {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                app.replica.follow.records.failed(&e);
                match &e {
                    ReplicaError::Unreachable(_) => tracing::debug!(error = %e, "primary unreachable"),
                    _ => tracing::warn!(error = %e, "replication interrupted"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
}

struct Follower {
    app: App,
    /// The state checksum of the local copy, page by page (rebuilt when following starts).
    hasher: Option<StateHasher>,
}

/// Where a records answer says the primary stands.
struct Answer {
    epoch: String,
    position: String,
}

impl Follower {
    fn primary(&self) -> Result<(String, Vec<u8>), ReplicaError> {
        let node = &self.app.replica;
        let primary = node.primary_url().ok_or(ReplicaError::Protocol("no primary configured".into()))?;
        let secret =
            node.secret().ok_or(ReplicaError::Unauthorized("no replication secret configured"))?.to_vec();
        Ok((primary, secret))
    }

    async fn get(&self, pq: &str, timeout: Duration) -> Result<(reqwest::Response, Answer), ReplicaError> {
        let (primary, secret) = self.primary()?;
        let node = &self.app.replica;
        let mut req = auth::signed(&node.http, &secret, reqwest::Method::GET, &primary, pq, Vec::new())
            .header(EPOCH_HEADER, node.epoch().to_string())
            .timeout(timeout);
        if let Some(me) = node.self_url() {
            req = req.header(NODE_HEADER, me);
        }
        let res = req.send().await.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
        node.note_contact();
        let header = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let answer = Answer { epoch: header(EPOCH_HEADER), position: header(POSITION_HEADER) };
        match res.status().as_u16() {
            401 | 403 => {
                return Err(ReplicaError::Unauthorized(
                    "the primary refused the replication secret: both servers need the same one",
                ));
            }
            _ => {}
        }
        self.check_epoch(&answer.epoch)?;
        Ok((res, answer))
    }

    /// A primary of a newer epoch is followed and its epoch adopted; one of an older epoch is a
    /// stale node that must not be followed.
    fn check_epoch(&self, sent: &str) -> Result<(), ReplicaError> {
        let Ok(theirs) = sent.parse::<u64>() else { return Ok(()) };
        let ours = self.app.replica.epoch();
        if theirs > ours {
            self.app.replica.update(|s| s.epoch = theirs)?;
        } else if theirs < ours {
            return Err(ReplicaError::Protocol(format!(
                "the configured primary is at epoch {theirs}, older than this node's {ours}: it was \
                 replaced by a promotion and is not followed"
            )));
        }
        Ok(())
    }

    async fn follow(&mut self) -> Result<(), ReplicaError> {
        let node = self.app.replica.clone();
        loop {
            if node.role() != Role::Replica {
                return Ok(());
            }
            let Some(pos) = node.applied.borrow().clone() else {
                self.seed().await?;
                continue;
            };
            if self.hasher.is_none() {
                let db = self.app.db.clone();
                let h = tokio::task::spawn_blocking(move || {
                    db.read_blocking(|c| {
                        StateHasher::from_conn(c).map_err(|e| ReplicaError::Replication(e.to_string()))
                    })
                })
                .await
                .map_err(|e| ReplicaError::Replication(e.to_string()))??;
                self.hasher = Some(h);
            }
            let pq = format!(
                "{RECORDS_PATH}?generation={}&after={}&wait_ms={LONG_POLL_MS}",
                pos.generation, pos.txid
            );
            let (res, answer) = self.get(&pq, Duration::from_millis(LONG_POLL_MS + 10_000)).await?;
            match res.status().as_u16() {
                204 => {
                    if Applied::parse_header(&answer.position).is_some_and(|(g, t)| pos.covers(&g, t)) {
                        node.set_lag_ms(0);
                    }
                    node.follow.records.ok();
                    continue;
                }
                410 => {
                    tracing::info!(generation = %pos.generation, "the primary cannot continue this history: re-seeding");
                    self.seed().await?;
                    continue;
                }
                200 => {}
                other => return Err(ReplicaError::Protocol(format!("records: HTTP {other}"))),
            }
            let sig = res.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = res.bytes().await.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
            let (_, secret) = self.primary()?;
            auth::verify_response(&secret, &pq, &answer.epoch, &answer.position, &body, sig.as_deref())?;
            match self.apply_batch(pos, body.to_vec()).await {
                Ok(()) => node.follow.records.ok(),
                Err(ReplicaError::Replication(why)) => {
                    node.follow.records.failed(&why);
                    tracing::error!(why = %why, "the replica's copy cannot continue: re-seeding from a snapshot");
                    self.seed().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Decode, check and apply the records of one answer. `Replication(_)` means the local copy
    /// cannot continue (gap, checksum): the caller re-seeds.
    async fn apply_batch(&mut self, mut pos: Applied, body: Vec<u8>) -> Result<(), ReplicaError> {
        let mut hasher = self.hasher.take().ok_or(ReplicaError::Replication("no state hasher".into()))?;
        let db = self.app.db.clone();
        let data_dir = self.app.replica.data_dir().to_path_buf();
        let node = self.app.replica.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut at = 0usize;
            let mut applied_any = false;
            let outcome = (|| -> Result<(), ReplicaError> {
                while at < body.len() {
                    let len = body
                        .get(at..at + 4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or(ReplicaError::Protocol("truncated record frame".into()))?;
                    let bytes = body
                        .get(at + 4..at + 4 + len)
                        .ok_or(ReplicaError::Protocol("truncated record".into()))?;
                    at += 4 + len;
                    let record = replication::decode(bytes)
                        .map_err(|e| ReplicaError::Protocol(format!("a record was rejected: {e}")))?;
                    if record.generation.as_str() != pos.generation {
                        return Err(ReplicaError::Replication(format!(
                            "record of generation {} while following {}",
                            record.generation, pos.generation
                        )));
                    }
                    let start = pos.txid;
                    for txn in record.txns.iter().filter(|t| t.txid > start) {
                        if txn.txid != pos.txid + 1 {
                            return Err(ReplicaError::Replication(format!(
                                "gap: transaction {} after {}",
                                txn.txid, pos.txid
                            )));
                        }
                        apply_one(&db, &mut hasher, record.page_size, txn)?;
                        pos.txid = txn.txid;
                        pos.committed_at_ms = txn.committed_at_ms;
                        applied_any = true;
                    }
                }
                Ok(())
            })();
            if applied_any {
                // Nobody else checkpoints a replica's database: keep its WAL short.
                if let Err(e) = db.write_replicated_blocking(|c| {
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(crate::db::DbError::from)
                }) {
                    tracing::debug!(error = %e, "checkpoint on the replica failed; retried after the next batch");
                }
                // The pages are committed; now the position (a crash before this re-applies).
                state::save_position(&data_dir, &pos)?;
                node.set_lag_ms(now_ms() - pos.committed_at_ms);
                node.applied.send_replace(Some(pos.clone()));
            }
            outcome.map(|()| hasher)
        })
        .await
        .map_err(|e| ReplicaError::Replication(e.to_string()))?;
        self.hasher = Some(result?);
        Ok(())
    }

    /// Fetch a snapshot from the primary and make the local copy exactly it, in one transaction.
    async fn seed(&mut self) -> Result<(), ReplicaError> {
        self.hasher = None;
        let dir = state::dir(self.app.replica.data_dir());
        let (primary, secret) = self.primary()?;
        let (res, answer) = self.get(SNAPSHOT_PATH, Duration::from_secs(3600)).await?;
        if !res.status().is_success() {
            return Err(ReplicaError::Protocol(format!("snapshot: HTTP {}", res.status().as_u16())));
        }
        let sig = res.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let download = dir.join("seed.snapshot");
        let mut verifier =
            auth::ResponseVerifier::new(&secret, SNAPSHOT_PATH, &answer.epoch, &answer.position);
        let mut out =
            tokio::fs::File::create(&download).await.map_err(|e| ReplicaError::io(download.clone(), e))?;
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
            verifier.update(&chunk);
            out.write_all(&chunk).await.map_err(|e| ReplicaError::io(download.clone(), e))?;
        }
        out.flush().await.map_err(|e| ReplicaError::io(download.clone(), e))?;
        drop(out);
        verifier.verify(sig.as_deref())?;
        let db = self.app.db.clone();
        let node = self.app.replica.clone();
        let (pos, hasher) = tokio::task::spawn_blocking(move || seed_from_file(&db, &node, &download))
            .await
            .map_err(|e| ReplicaError::Replication(e.to_string()))??;
        tracing::info!(primary = %primary, generation = %pos.generation, txid = pos.txid, "seeded from the primary's snapshot");
        self.hasher = Some(hasher);
        Ok(())
    }
}

fn apply_one(
    db: &crate::db::Db,
    hasher: &mut StateHasher,
    page_size: u32,
    txn: &Txn,
) -> Result<(), ReplicaError> {
    let mut next = hasher.clone();
    next.apply(txn);
    if next.finish() != txn.state_checksum {
        return Err(ReplicaError::Replication(format!(
            "state checksum after transaction {} differs from the primary's",
            txn.txid
        )));
    }
    db.write_replicated_blocking(|c| {
        replication::apply_txn(c, page_size, txn).map_err(|e| ReplicaError::Replication(e.to_string()))
    })?;
    *hasher = next;
    Ok(())
}

/// Restore the downloaded snapshot beside the database, then write all its pages into the live
/// database as one transaction (readers keep working) and record the position.
fn seed_from_file(
    db: &crate::db::Db,
    node: &super::Node,
    download: &std::path::Path,
) -> Result<(Applied, StateHasher), ReplicaError> {
    let restored = download.with_extension("db");
    let repl = |e: replication::ReplicationError| ReplicaError::Replication(e.to_string());
    let info = replication::restore_snapshot(download, &restored).map_err(repl)?;
    let _ = std::fs::remove_file(download);
    // The restored file is the pages in order, nothing else.
    let bytes = std::fs::read(&restored).map_err(|e| ReplicaError::io(restored.clone(), e))?;
    let size = info.page_size as usize;
    if bytes.len() != size * info.db_pages as usize {
        return Err(ReplicaError::Replication("the restored snapshot has the wrong size".into()));
    }
    let pages: Vec<(u32, Vec<u8>)> =
        bytes.chunks_exact(size).enumerate().map(|(i, p)| (i as u32 + 1, p.to_vec())).collect();
    drop(bytes);
    let mut hasher = StateHasher::new(info.page_size);
    for (pgno, page) in &pages {
        hasher.set_page(*pgno, page);
    }
    let _ = std::fs::remove_file(&restored);
    let txn = Txn {
        txid: info.txid,
        committed_at_ms: now_ms(),
        db_pages: info.db_pages,
        state_checksum: info.state_checksum,
        pages,
    };
    db.write_replicated_blocking(|c| replication::apply_txn(c, info.page_size, &txn).map_err(repl))?;
    // Prove the live copy is now exactly the snapshot.
    let live = db.read_blocking(|c| replication::state_checksum(c).map_err(repl))?;
    if live != info.state_checksum {
        return Err(ReplicaError::Replication(
            "the seeded copy's state checksum differs from the snapshot's".into(),
        ));
    }
    let pos = Applied { generation: info.generation.to_string(), txid: info.txid, committed_at_ms: now_ms() };
    state::save_position(node.data_dir(), &pos)?;
    node.set_lag_ms(0);
    node.applied.send_replace(Some(pos.clone()));
    Ok((pos, hasher))
}
