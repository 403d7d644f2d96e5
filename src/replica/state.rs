//! What a node remembers about its place in the pair, kept in the data directory beside (not
//! inside) the database: a replica's database is a page copy of the primary's, so nothing of
//! the node's own can live there. Every file is replaced atomically (temp file, fsync, rename,
//! fsync of the directory), so a crash leaves the old or the new version, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ReplicaError;

pub const DIR: &str = "replica";
const STATE_FILE: &str = "state.json";
const POSITION_FILE: &str = "position.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

/// A point in the primary's stream of transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub generation: String,
    pub txid: u64,
    /// When the primary committed `txid` (Unix milliseconds).
    pub committed_at_ms: i64,
}

impl Applied {
    /// `generation/txid`, the form used in the `X-Reelbox-Position` header.
    pub fn header(&self) -> String {
        format!("{}/{}", self.generation, self.txid)
    }

    pub fn parse_header(v: &str) -> Option<(String, u64)> {
        let (g, t) = v.rsplit_once('/')?;
        Some((g.to_string(), t.parse().ok()?))
    }

    /// Whether this position has reached `(generation, txid)`: same generation and at least that
    /// far, or a newer generation (generation ids sort by time).
    pub fn covers(&self, generation: &str, txid: u64) -> bool {
        match self.generation.as_str().cmp(generation) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => self.txid >= txid,
            std::cmp::Ordering::Less => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    pub at_ms: i64,
    pub from_epoch: u64,
    pub to_epoch: u64,
    /// `promote` (operator), `automatic` (primary silent), or `demoted` (this node learned of a newer primary).
    pub how: String,
    /// The primary's position this node had applied when it was promoted (the fork point).
    pub position: Option<Applied>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub role: Role,
    /// Raised by every promotion. A node that sees a higher epoch than its own stops taking writes.
    pub epoch: u64,
    /// The primary this node follows (replicas).
    pub primary: Option<String>,
    /// The other node, as last learned (a primary learns it from its follower).
    pub peer: Option<String>,
    /// True once a promotion or demotion changed the role: the state file then wins over the
    /// role in the configuration.
    pub role_from_failover: bool,
    pub last_failover: Option<Failover>,
    /// Directories under `<data>/split-brain/` holding writes this node took after it was replaced.
    #[serde(default)]
    pub split_brain_exports: Vec<String>,
    /// This node's own name in the pair, made once: the primary counts the audit events a
    /// replica relays per node (see `replica::audit`).
    #[serde(default)]
    pub node_id: String,
}

impl NodeState {
    pub fn initial(role: Role, primary: Option<String>, peer: Option<String>) -> Self {
        NodeState {
            role,
            epoch: 1,
            primary,
            peer,
            role_from_failover: false,
            last_failover: None,
            split_brain_exports: Vec::new(),
            node_id: String::new(),
        }
    }
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

pub fn load_state(data_dir: &Path) -> Result<Option<NodeState>, ReplicaError> {
    read_json(&dir(data_dir).join(STATE_FILE))
}

pub fn save_state(data_dir: &Path, state: &NodeState) -> Result<(), ReplicaError> {
    write_json(&dir(data_dir).join(STATE_FILE), state)
}

pub fn load_position(data_dir: &Path) -> Result<Option<Applied>, ReplicaError> {
    read_json(&dir(data_dir).join(POSITION_FILE))
}

pub fn save_position(data_dir: &Path, p: &Applied) -> Result<(), ReplicaError> {
    write_json(&dir(data_dir).join(POSITION_FILE), p)
}

pub fn clear_position(data_dir: &Path) -> Result<(), ReplicaError> {
    match std::fs::remove_file(dir(data_dir).join(POSITION_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReplicaError::io(dir(data_dir).join(POSITION_FILE), e)),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ReplicaError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReplicaError::io(path.to_path_buf(), e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReplicaError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })
}

/// Replace `path` atomically and durably.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ReplicaError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| ReplicaError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
    write_atomic(path, &bytes)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReplicaError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ReplicaError::io(parent.to_path_buf(), e))?;
    let tmp = path.with_extension("tmp");
    let io = |e| ReplicaError::io(tmp.clone(), e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| ReplicaError::io(path.to_path_buf(), e))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| ReplicaError::io(parent.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_position_round_trip_and_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_state(dir.path()).expect("none"), None);
        let mut s = NodeState::initial(Role::Replica, Some("http://127.0.0.2:1".into()), None);
        save_state(dir.path(), &s).expect("save");
        s.epoch = 2;
        s.role = Role::Primary;
        save_state(dir.path(), &s).expect("replace");
        assert_eq!(load_state(dir.path()).expect("load"), Some(s));
        let p = Applied { generation: "0001".into(), txid: 7, committed_at_ms: 5 };
        save_position(dir.path(), &p).expect("save");
        assert_eq!(load_position(dir.path()).expect("load"), Some(p.clone()));
        assert!(p.covers("0001", 7) && !p.covers("0001", 8) && p.covers("0000", 99) && !p.covers("0002", 0));
        assert_eq!(Applied::parse_header(&p.header()), Some(("0001".into(), 7)));
        clear_position(dir.path()).expect("clear");
        assert_eq!(load_position(dir.path()).expect("gone"), None);
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(super::dir(dir.path())).expect("dir");
        std::fs::write(super::dir(dir.path()).join(STATE_FILE), b"{nope").expect("write");
        assert!(matches!(load_state(dir.path()), Err(ReplicaError::Corrupt { .. })));
    }
}
