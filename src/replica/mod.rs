//! The geo-redundant pair: a **primary** takes writes and serves the replication feed; a
//! **replica** follows it (pages of committed transactions, applied atomically), serves reads
//! from its copy, forwards writes to the primary and can be promoted.
//!
//! The fence: every promotion raises the **epoch** (kept in `<data>/replica/state.json`, not in
//! the replicated database). A node that learns of a higher epoch than its own — from its
//! peer's `/healthz`, the feed's headers, or a follower's request — stops taking writes at once,
//! exports what it accepted after the split to `<data>/split-brain/<time>/` and becomes a replica
//! of the newer primary. Nothing is merged silently.
//!
//! Replication traffic carries an HMAC-SHA256 with the shared secret: requests (method, path,
//! time) and responses (epoch, position, body), so a record changed in flight is rejected.

pub mod audit;
pub mod auth;
pub mod config;
pub mod fence;

pub mod follower;
pub mod forward;
pub mod media;
pub mod promote;
pub mod renditions;
pub mod scrub;
pub mod spool;
pub mod state;
pub mod status;
pub mod tasks;
pub mod touch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, ErrorKind};
pub use state::{Applied, Failover, NodeState, Role};

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("replication request not authenticated: {0}")]
    Unauthorized(&'static str),
    #[error("the primary cannot be reached: {0}")]
    Unreachable(String),
    #[error("the primary answered unexpectedly: {0}")]
    Protocol(String),
    #[error("this node is the primary; there is nothing to promote")]
    AlreadyPrimary,
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("replication: {0}")]
    Replication(String),
}

impl ReplicaError {
    pub fn io(path: PathBuf, source: std::io::Error) -> Self {
        ReplicaError::Io { path, source }
    }
}

impl AppError for ReplicaError {
    fn code(&self) -> &'static str {
        match self {
            ReplicaError::Io { .. } => "replica-io",
            ReplicaError::Corrupt { .. } => "replica-state-corrupt",
            ReplicaError::Unauthorized(_) => "replication-unauthorized",
            ReplicaError::Unreachable(_) => "replica-read-only",
            ReplicaError::Protocol(_) => "replication-protocol",
            ReplicaError::AlreadyPrimary => "already-primary",
            ReplicaError::Db(e) => e.code(),
            ReplicaError::Replication(_) => "replication",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            ReplicaError::Unauthorized(_) => ErrorKind::Unauthorized,
            ReplicaError::AlreadyPrimary => ErrorKind::Conflict,
            ReplicaError::Unreachable(_) => ErrorKind::Unavailable,
            ReplicaError::Db(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
    fn user_message(&self) -> String {
        match self {
            ReplicaError::Unauthorized(_) => {
                "Replication needs the secret shared by both servers (see `reelbox replica pair`).".into()
            }
            ReplicaError::Unreachable(_) => "This server is temporarily read-only: it is the school's standby \
                                              copy and cannot reach the main server right now. Nothing was saved; \
                                              please try again in a few minutes."
                .into(),
            ReplicaError::AlreadyPrimary => "This server already takes writes.".into(),
            ReplicaError::Db(e) => e.user_message(),
            _ => "Something went wrong with replication. Tell your IT administrator.".into(),
        }
    }
}

/// This node's place in the pair, shared by the web layer and the background tasks.
#[derive(Clone)]
pub struct Node(Arc<NodeInner>);

pub struct NodeInner {
    data_dir: PathBuf,
    pub config: config::ReplicaConfig,
    state: RwLock<NodeState>,
    db: std::sync::OnceLock<Db>,
    /// This node's base URL as its peer reaches it.
    self_url: std::sync::OnceLock<String>,
    /// What this replica has applied (the follower publishes, forwarded writes wait on it).
    pub applied: watch::Sender<Option<Applied>>,
    /// What this primary has shipped (fed from the shipper; followers long-poll on it).
    pub shipped: watch::Sender<Option<Applied>>,
    /// Replication delay of the newest applied transaction, ms; -1 before the first.
    lag_ms: AtomicI64,
    /// Milliseconds (Unix) of the last successful answer from the primary; 0 never.
    last_contact_ms: AtomicI64,
    /// Bytes of media the replica still has to fetch.
    pub media_bytes_behind: AtomicU64,
    /// Bytes of published renditions (HLS rungs, downloads, posters) still to fetch.
    pub rendition_bytes_behind: AtomicU64,
    /// The current role; background tasks watch it to start or stop with promotions and demotions.
    pub role_watch: watch::Sender<Role>,
    pub http: reqwest::Client,
    /// Audit events seen while this node could not write its database (opened by `start`).
    audit_outbox: std::sync::OnceLock<audit::Outbox>,
    /// Hashes of published files the primary has listed for its replica.
    pub rendition_hashes: renditions::HashCache,
    /// Each follow task's last success and last error, kept apart (records, media, renditions, scrub).
    pub follow: status::FollowStatus,
}

impl std::ops::Deref for Node {
    type Target = NodeInner;
    fn deref(&self) -> &NodeInner {
        &self.0
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Node {
    /// The node as configured, before its state file is read (no I/O).
    pub fn new(cfg: &Config) -> Node {
        let rc = cfg.replica.clone();
        let role = if rc.is_replica() { Role::Replica } else { Role::Primary };
        let initial = NodeState::initial(role, rc.primary.clone(), rc.peer.clone());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Node(Arc::new(NodeInner {
            data_dir: cfg.data_dir.clone(),
            config: rc,
            state: RwLock::new(initial),
            db: std::sync::OnceLock::new(),
            self_url: std::sync::OnceLock::new(),
            applied: watch::channel(None).0,
            shipped: watch::channel(None).0,
            lag_ms: AtomicI64::new(-1),
            last_contact_ms: AtomicI64::new(0),
            media_bytes_behind: AtomicU64::new(0),
            rendition_bytes_behind: AtomicU64::new(0),
            role_watch: watch::channel(role).0,
            http,
            audit_outbox: std::sync::OnceLock::new(),
            rendition_hashes: renditions::HashCache::default(),
            follow: status::FollowStatus::default(),
        }))
    }

    /// Read (or create) `<data>/replica/state.json` and fence the database on a replica.
    /// The role in the state file wins once a failover has changed it.
    pub fn start(&self, db: &Db) -> Result<(), ReplicaError> {
        let _ = self.db.set(db.clone());
        let configured = self.state().clone();
        let state = match state::load_state(&self.data_dir)? {
            Some(mut saved) => {
                if !saved.role_from_failover {
                    saved.role = configured.role;
                }
                if saved.role == Role::Replica && configured.primary.is_some() && !saved.role_from_failover {
                    saved.primary = configured.primary.clone();
                }
                if saved.peer.is_none() {
                    saved.peer = configured.peer.clone();
                }
                saved
            }
            None => configured,
        };
        let mut state = state;
        if state.node_id.is_empty() {
            state.node_id = format!("node-{}", hex::encode(rand::random::<[u8; 12]>()));
        }
        state::save_state(&self.data_dir, &state)?;
        db.set_read_only(state.role == Role::Replica);
        if state.role == Role::Replica {
            let pos = state::load_position(&self.data_dir)?;
            self.applied.send_replace(pos);
        }
        let node_id = state.node_id.clone();
        let recorded = {
            let id = node_id.clone();
            db.read_blocking(move |c| crate::insights::relay::recorded_up_to(c, &id))?
        };
        if self.audit_outbox.get().is_none() {
            let _ = self.audit_outbox.set(audit::Outbox::open(&self.data_dir, &node_id, recorded)?);
        }
        self.role_watch.send_replace(state.role);
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        Ok(())
    }

    /// The queue of audit events to relay (none before `start`).
    pub fn audit_outbox(&self) -> Option<&audit::Outbox> {
        self.audit_outbox.get()
    }

    pub fn state(&self) -> std::sync::RwLockReadGuard<'_, NodeState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn role(&self) -> Role {
        self.state().role
    }

    pub fn epoch(&self) -> u64 {
        self.state().epoch
    }

    pub fn primary_url(&self) -> Option<String> {
        self.state().primary.clone()
    }

    /// Whether requests may change this node's database.
    pub fn accepts_writes(&self) -> bool {
        self.role() == Role::Primary
    }

    pub fn secret(&self) -> Option<&[u8]> {
        self.config.secret.expose().map(str::as_bytes)
    }

    /// Change the state durably, then in memory; the database fence follows the role.
    pub fn update(&self, f: impl FnOnce(&mut NodeState)) -> Result<NodeState, ReplicaError> {
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        f(&mut next);
        if next.role == Role::Replica
            && let Some(db) = self.db.get()
        {
            // Fence first: from here on nothing but the follower writes.
            db.set_read_only(true);
        }
        state::save_state(&self.data_dir, &next)?;
        if next.role == Role::Primary
            && let Some(db) = self.db.get()
        {
            db.set_read_only(false);
        }
        *guard = next.clone();
        drop(guard);
        self.role_watch.send_if_modified(|r| std::mem::replace(r, next.role) != next.role);
        Ok(next)
    }

    pub fn set_self_url(&self, url: String) {
        let _ = self.self_url.set(url);
    }

    pub fn self_url(&self) -> Option<&str> {
        self.self_url.get().map(String::as_str)
    }

    /// What this primary has shipped: from the shipper when it publishes, else from its spool.
    pub fn shipped_now(&self) -> Option<Applied> {
        self.shipped.borrow().clone().or_else(|| spool::shipped(&self.data_dir))
    }

    pub fn db(&self) -> Option<&Db> {
        self.db.get()
    }

    pub fn note_contact(&self) {
        self.last_contact_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_contact_ms(&self) -> Option<i64> {
        Some(self.last_contact_ms.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    pub fn set_lag_ms(&self, ms: i64) {
        self.lag_ms.store(ms.max(0), Ordering::Relaxed);
    }

    /// Replication lag in milliseconds: 0 on a primary; on a replica the delay of the newest
    /// applied transaction, or the time since the primary last answered if that is longer.
    pub fn lag_ms(&self) -> Option<i64> {
        if self.role() == Role::Primary {
            return Some(0);
        }
        let lag = self.lag_ms.load(Ordering::Relaxed);
        if lag < 0 {
            return None;
        }
        let silent = self.last_contact_ms().map(|t| now_ms() - t).unwrap_or(0);
        Some(if silent > 5_000 { lag.max(silent) } else { lag })
    }

    /// Wait (at most `limit`) until this replica has applied `(generation, txid)`; true if it has.
    pub async fn wait_applied(&self, generation: &str, txid: u64, limit: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        let reached = async {
            loop {
                if rx.borrow_and_update().as_ref().is_some_and(|a| a.covers(generation, txid)) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(limit, reached).await.unwrap_or(false)
    }

    /// Become the primary: a new epoch, writes accepted. Returns the new epoch.
    pub fn promote(&self, how: &str) -> Result<u64, ReplicaError> {
        if self.role() == Role::Primary {
            return Err(ReplicaError::AlreadyPrimary);
        }
        let fork = self.applied.borrow().clone();
        let how = how.to_string();
        let next = self.update(move |s| {
            let from = s.epoch;
            s.epoch += 1;
            s.role = Role::Primary;
            s.role_from_failover = true;
            s.peer = s.primary.take().or(s.peer.take());
            s.last_failover =
                Some(Failover { at_ms: now_ms(), from_epoch: from, to_epoch: s.epoch, how, position: fork });
        })?;
        tracing::warn!(epoch = next.epoch, "promoted: this node is now the primary and takes writes");
        Ok(next.epoch)
    }
}
