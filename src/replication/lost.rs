//! History lost from the backup target. The uploader knows what it has put there, not what is
//! still there: a bucket emptied by a lifecycle rule or by hand, or a backup volume swapped for
//! a blank one, would leave the shipper adding records to a generation whose snapshot is gone —
//! a chain no restore can start — while every status said "backed up".
//!
//! Every `[replication] target_check_seconds` the newest snapshot the uploader put in the target
//! is looked for (one `HEAD`). When it is gone, the shipper starts a new generation at once (a
//! full snapshot of the database as it is now, then records again), and the dashboard and
//! `/metrics` say what happened: restores to moments before the loss are no longer possible
//! from this target. Retention never removes the newest snapshot, so only a loss makes it go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::record::GenerationId;
use super::target::{self, Target};
use super::{Status, notify};

/// How long the dashboard keeps saying so after history was lost.
const REPORTED_FOR_MS: i64 = 24 * 3600 * 1000;

/// A loss found in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The generation whose newest snapshot was gone.
    pub generation: GenerationId,
    pub found_at_ms: i64,
}

impl Lost {
    /// The dashboard's alarm, until a day after the loss.
    pub fn alarm(&self, last_snapshot: Option<&GenerationId>, now_ms: i64) -> Option<String> {
        if now_ms - self.found_at_ms > REPORTED_FOR_MS {
            return None;
        }
        let healed = last_snapshot.is_some_and(|g| *g != self.generation);
        Some(if healed {
            "The backup target lost the database history it held (found missing today). A new full \
             snapshot is in the target and shipping goes on from it; restores to moments before the \
             loss are not possible from this target."
                .to_string()
        } else {
            "The backup target lost the database history it held. A new full snapshot of the \
             database is being uploaded; until it lands, the target cannot restore the database."
                .to_string()
        })
    }
}

/// Look for the newest uploaded snapshot every `every`; when it is gone, record the loss and
/// raise `regenerate` for the shipper thread.
pub(crate) fn spawn_check(
    target: Target,
    status: Arc<Mutex<Status>>,
    regenerate: Arc<AtomicBool>,
    every: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let newest = || status.lock().ok().and_then(|s| s.last_snapshot.clone());
            let Some((generation, txid, _)) = newest() else { continue };
            match target::exists(&target, &target::snapshot_key(&generation, txid)).await {
                Ok(true) => {}
                // A newer snapshot may have landed while we looked: only the newest counts.
                Ok(false) if newest().is_some_and(|(g, t, _)| g == generation && t == txid) => {
                    tracing::error!(
                        %generation, txid, target = %target,
                        "replication: the backup target lost its newest database snapshot; starting a new generation"
                    );
                    metrics::counter!("reelbox_replication_history_lost_total").increment(1);
                    if let Ok(mut s) = status.lock() {
                        s.lost = Some(Lost { generation, found_at_ms: notify::now_ms() });
                    }
                    regenerate.store(true, Ordering::Release);
                }
                Ok(false) => {}
                // The uploader reports a failing target; this check waits for it to answer.
                Err(e) => tracing::debug!(error = %e, "replication: could not check the target's history"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_says_whether_the_new_snapshot_landed_and_ends_after_a_day() {
        let (old, new) = (GenerationId::new(), GenerationId::new());
        let lost = Lost { generation: old.clone(), found_at_ms: 1_000 };
        let waiting = lost.alarm(Some(&old), 2_000).expect("alarm");
        assert!(waiting.contains("being uploaded"), "{waiting}");
        let healed = lost.alarm(Some(&new), 2_000).expect("alarm");
        assert!(healed.contains("not possible from this target"), "{healed}");
        assert_eq!(lost.alarm(Some(&new), 1_000 + REPORTED_FOR_MS + 1), None);
    }
}
