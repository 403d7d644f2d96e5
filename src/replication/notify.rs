//! The commit signal: every reelbox connection that writes has a WAL hook that records the
//! commit (its WAL frame count and wall-clock time) and wakes the shipper. With no shipper
//! running the hook checkpoints like SQLite's automatic checkpoint would.

use std::collections::VecDeque;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Frames after which a process that does not ship checkpoints by itself (SQLite's default).
const AUTOCHECKPOINT_FRAMES: c_int = 1000;
/// Commit times remembered for the shipper; older ones are dropped (it then uses its own clock).
const MAX_COMMITS: usize = 65536;

#[derive(Default)]
struct State {
    seq: u64,
    /// (frames in the WAL after the commit, commit time in ms)
    commits: VecDeque<(u32, i64)>,
}

static STATE: Mutex<State> = Mutex::new(State { seq: 0, commits: VecDeque::new() });
static WAKE: Condvar = Condvar::new();
static SHIPPING: AtomicBool = AtomicBool::new(false);

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The WAL hook of every writing connection (see `crate::db`).
pub fn on_commit(wal: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    if SHIPPING.load(Ordering::Acquire) {
        if let Ok(mut s) = STATE.lock() {
            s.seq += 1;
            if s.commits.len() >= MAX_COMMITS {
                s.commits.pop_front();
            }
            s.commits.push_back((frames.max(0) as u32, now_ms()));
        }
        WAKE.notify_all();
    } else if frames >= AUTOCHECKPOINT_FRAMES {
        // Best effort, like SQLite's own: a busy checkpoint is simply tried again later.
        let _ = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE);
    }
    Ok(())
}

/// Turn shipping on (commits are recorded, checkpoints left to the shipper) or off.
pub fn set_shipping(on: bool) {
    SHIPPING.store(on, Ordering::Release);
}

pub fn wake() {
    if let Ok(mut s) = STATE.lock() {
        s.seq += 1;
    }
    WAKE.notify_all();
}

/// The commit sequence number now.
pub fn seq() -> u64 {
    STATE.lock().map(|s| s.seq).unwrap_or(0)
}

/// Wait until the sequence passes `seen` or `timeout` elapses; returns the sequence.
pub fn wait(seen: u64, timeout: Duration) -> u64 {
    let Ok(guard) = STATE.lock() else { return seen };
    match WAKE.wait_timeout_while(guard, timeout, |s| s.seq == seen) {
        Ok((s, _)) => s.seq,
        Err(_) => seen,
    }
}

/// The commit time of the transaction whose commit left `frames` frames in the WAL, forgetting
/// older entries. `None` when it was not seen (another process committed it).
pub fn commit_time(frames: u64) -> Option<i64> {
    let mut s = STATE.lock().ok()?;
    while let Some(&(f, _)) = s.commits.front() {
        if u64::from(f) < frames {
            s.commits.pop_front();
        } else {
            break;
        }
    }
    s.commits.front().filter(|(f, _)| u64::from(*f) == frames).map(|&(_, t)| t)
}

/// Forget recorded commits (the WAL was restarted: frame counts start again).
pub fn forget_commits() {
    if let Ok(mut s) = STATE.lock() {
        s.commits.clear();
    }
}
