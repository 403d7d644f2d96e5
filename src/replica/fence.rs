//! The fence: a node that learns of a primary with a higher epoch than its own stops taking
//! writes at once, exports what it holds for the administrator, and becomes that primary's
//! replica (the follower then re-seeds it from a snapshot).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Applied, Failover, Node, ReplicaError, Role, now_ms, state};
use crate::db::DbError;

pub const SPLIT_BRAIN_DIR: &str = "split-brain";

/// What a peer's `/healthz` says about the pair.
#[derive(Debug, Clone, Deserialize)]
pub struct PeerHealth {
    pub role: String,
    pub epoch: u64,
    #[serde(default)]
    pub promoted_from: Option<Applied>,
}

/// What `<data>/split-brain/<time>/summary.json` tells the administrator.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    what: &'static str,
    demoted_at_ms: i64,
    own_epoch: u64,
    new_epoch: u64,
    new_primary: &'a str,
    /// The new primary's copy of this node's data ends here; writes after it never reached it.
    fork_position: Option<&'a Applied>,
    /// What this node had shipped when it stopped.
    own_position: Option<&'a Applied>,
    database_copy: &'static str,
    how_to_review: String,
}

/// Ask the peer who it is; `None` when it cannot be reached or says nothing usable.
pub async fn peer_health(node: &Node, peer: &str, limit: Duration) -> Option<PeerHealth> {
    let res = node.http.get(format!("{peer}/healthz")).timeout(limit).send().await.ok()?;
    res.json::<PeerHealth>().await.ok()
}

/// On a primary: if the peer is a primary of a newer epoch, step down. Returns true if it did.
pub async fn check_peer(node: &Node, limit: Duration) -> bool {
    if node.role() != Role::Primary {
        return false;
    }
    let Some(peer) = node.state().peer.clone() else { return false };
    let Some(h) = peer_health(node, &peer, limit).await else { return false };
    if h.role == "primary" && h.epoch > node.epoch() {
        match demote(node, &peer, h.epoch, h.promoted_from).await {
            Ok(dir) => tracing::error!(
                peer = %peer,
                epoch = h.epoch,
                export = %dir.display(),
                "another primary with a newer epoch exists: this node stopped taking writes and follows it; \
                 what it held is exported for review"
            ),
            Err(e) => tracing::error!(error = %e, "stepping down failed; writes stay refused"),
        }
        return true;
    }
    false
}

/// Step down to replica of `new_primary` (fence first), export, and forget the position so the
/// follower re-seeds. Returns the export directory.
pub async fn demote(
    node: &Node,
    new_primary: &str,
    new_epoch: u64,
    fork: Option<Applied>,
) -> Result<PathBuf, ReplicaError> {
    let own_epoch = node.epoch();
    let own_position = node.shipped.borrow().clone();
    let primary = new_primary.to_string();
    let fork_for_state = fork.clone();
    node.update(move |s| {
        s.role = Role::Replica;
        s.role_from_failover = true;
        s.last_failover = Some(Failover {
            at_ms: now_ms(),
            from_epoch: s.epoch,
            to_epoch: new_epoch,
            how: "demoted".into(),
            position: fork_for_state,
        });
        s.epoch = new_epoch;
        s.peer = Some(primary.clone());
        s.primary = Some(primary);
    })?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let dir = node.data_dir().join(SPLIT_BRAIN_DIR).join(&stamp);
    std::fs::create_dir_all(&dir).map_err(|e| ReplicaError::io(dir.clone(), e))?;
    let copy = dir.join("database-at-demotion.db");
    if let Some(db) = node.db() {
        let target = copy.to_string_lossy().into_owned();
        db.read(move |c| c.execute("VACUUM INTO ?1", [target]).map(|_| ()).map_err(DbError::from)).await?;
    }
    let summary = Summary {
        what: "This server was the primary, another server was promoted while it was away, and it \
               stepped down when it came back. Writes it accepted after the fork position are only \
               in this copy: review them and re-enter what is needed. Nothing was merged.",
        demoted_at_ms: now_ms(),
        own_epoch,
        new_epoch,
        new_primary,
        fork_position: fork.as_ref(),
        own_position: own_position.as_ref(),
        database_copy: "database-at-demotion.db",
        how_to_review: format!(
            "reelbox compare --data <the new primary's data directory> --with {}",
            copy.display()
        ),
    };
    state::write_json(&dir.join("summary.json"), &summary)?;
    state::clear_position(node.data_dir())?;
    node.applied.send_replace(None);
    let name = stamp.clone();
    node.update(move |s| s.split_brain_exports.push(name))?;
    Ok(dir)
}

/// Background watch on a primary: ask the peer every few seconds whether it was replaced.
pub async fn watch_peer(node: Node) {
    loop {
        check_peer(&node, Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}
