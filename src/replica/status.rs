//! What each of a replica's follow tasks last did, kept apart per task: the database records,
//! the original blobs, the published renditions and the scrub that re-checks what was copied.
//! One task succeeding must not hide another one failing, so each keeps its own last error,
//! when it happened and when the task last succeeded; `/healthz` and the dashboard show them.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::now_ms;

/// One task's record. A task is *failing* when its last error is newer than its last success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskState {
    /// When the task last finished a round without error (Unix milliseconds).
    pub last_ok_at_ms: Option<i64>,
    /// The last error, as logged (it stays after a later success, for the record).
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
}

impl TaskState {
    pub fn failing(&self) -> bool {
        match (self.last_error_at_ms, self.last_ok_at_ms) {
            (Some(err), Some(ok)) => err >= ok,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

#[derive(Debug, Default)]
pub struct TaskStatus(Mutex<TaskState>);

impl TaskStatus {
    fn update(&self, f: impl FnOnce(&mut TaskState)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn ok(&self) {
        let now = now_ms();
        self.update(|s| s.last_ok_at_ms = Some(now));
    }

    pub fn failed(&self, e: &dyn std::fmt::Display) {
        let (now, text) = (now_ms(), e.to_string());
        self.update(|s| {
            s.last_error = Some(text);
            s.last_error_at_ms = Some(now);
        });
    }

    pub fn get(&self) -> TaskState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The last finished scrub pass (see `replica::scrub`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub files: u64,
    pub bytes: u64,
    /// Files found damaged or missing here and copied again from the primary.
    pub repaired: u64,
}

/// The follow tasks of this node, by name.
#[derive(Debug, Default)]
pub struct FollowStatus {
    /// Database transactions (`replica::follower`).
    pub records: TaskStatus,
    /// Original blobs (`replica::media`).
    pub media: TaskStatus,
    /// Published renditions (`replica::renditions`).
    pub renditions: TaskStatus,
    /// The periodic re-check of copied files (`replica::scrub`).
    pub scrub: TaskStatus,
    /// The last finished scrub pass, and the files repaired since the server started.
    scrub_report: Mutex<(Option<ScrubReport>, u64)>,
}

impl FollowStatus {
    /// Every task's state, in a fixed order.
    pub fn tasks(&self) -> [(&'static str, TaskState); 4] {
        [
            ("records", self.records.get()),
            ("media", self.media.get()),
            ("renditions", self.renditions.get()),
            ("scrub", self.scrub.get()),
        ]
    }

    pub fn scrub_finished(&self, report: ScrubReport) {
        let mut r = self.scrub_report.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = Some(report);
    }

    pub fn repaired(&self, n: u64) {
        self.scrub_report.lock().unwrap_or_else(|p| p.into_inner()).1 += n;
    }

    /// The last scrub pass, and the files repaired since start.
    pub fn scrub_report(&self) -> (Option<ScrubReport>, u64) {
        self.scrub_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// For `/healthz`: `{records: {last_ok_at_ms, last_error, last_error_at_ms, failing}, …}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (name, state) in self.tasks() {
            let mut v = serde_json::to_value(&state).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("failing".into(), state.failing().into());
            }
            m.insert(name.into(), v);
        }
        serde_json::Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_keeps_its_own_error() {
        let s = FollowStatus::default();
        s.media.failed(&"blob abc: HTTP 500");
        s.renditions.ok();
        s.records.ok();
        let tasks = s.tasks();
        assert!(tasks[1].1.failing(), "media still failing after renditions succeeded");
        assert!(!tasks[2].1.failing() && !tasks[0].1.failing());
        assert_eq!(tasks[1].1.last_error.as_deref(), Some("blob abc: HTTP 500"));
        let json = s.to_json();
        assert_eq!(json["media"]["failing"], true);
        assert_eq!(json["renditions"]["last_error"], serde_json::Value::Null);
        // A later success clears "failing" but keeps the error for the record.
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.media.ok();
        let media = s.media.get();
        assert!(!media.failing() && media.last_error.is_some());
    }
}
