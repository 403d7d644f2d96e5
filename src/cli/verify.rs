//! `reelbox verify`: re-hash every blob in the data directory, list what is missing or corrupt,
//! mark the affected items, and exit 0 only when everything is intact. Safe to run while
//! `reelbox serve` is using the same data directory.
//!
//! Exit codes: 0 all intact, 1 problems found, 2 the check could not run.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::clock::{Clock, format_utc};
use crate::config::Config;
use crate::library::scrub::{self, Progress, Trigger};
use crate::store::BlobStore;

/// Progress lines at most this often (and always for the first and the last blob).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

fn cannot(message: String) -> ExitCode {
    eprintln!("reelbox verify: {message}");
    ExitCode::from(2)
}

pub fn run(cfg: &Config) -> Result<ExitCode, ExitCode> {
    let data = &cfg.data_dir;
    if !data.join(crate::db::DB_FILE).is_file() {
        return Err(cannot(format!(
            "{} holds no reelbox database; pass the data directory with --data",
            data.display()
        )));
    }
    // It records what it finds (damaged items), so a replica refuses it like any other write.
    let db = super::open_db(cfg, super::DbUse::Write)?;
    let store = BlobStore::open(data).map_err(|e| cannot(e.to_string()))?;
    eprintln!("reelbox verify: checking every blob in {}", data.display());

    let mut last_print: Option<Instant> = None;
    let print = |p: Progress| {
        let now = Instant::now();
        if p.done != 1 && p.done != p.total && last_print.is_some_and(|t| now - t < PROGRESS_EVERY) {
            return;
        }
        last_print = Some(now);
        let rate = if p.elapsed_seconds > 0.0 { p.bytes as f64 / p.elapsed_seconds / 1e6 } else { 0.0 };
        eprintln!("[{}/{}] {} checked, {rate:.1} MB/s", p.done, p.total, human_bytes(p.bytes));
    };
    let never = AtomicBool::new(false);
    let report =
        scrub::run(&db, &store, &Clock::System, Trigger::Command, (None, "command line"), &never, print)
            .map_err(|e| cannot(e.to_string()))?;
    db.close();

    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        let items = if p.items.is_empty() {
            "no item refers to it".to_string()
        } else {
            let ids: Vec<String> = p.items.iter().map(|i| i.to_string()).collect();
            format!("item{} {} marked damaged", if ids.len() == 1 { "" } else { "s" }, ids.join(", "))
        };
        let _ = writeln!(
            out,
            "{} {}: {}; {items}; file {}",
            p.kind.as_str().to_uppercase(),
            p.hash,
            p.detail,
            store.path(&p.hash).display()
        );
    }
    let _ = writeln!(
        out,
        "Checked {} blob{} ({}) at {}: {} problem{}, {} item{} marked damaged.",
        report.blobs,
        if report.blobs == 1 { "" } else { "s" },
        human_bytes(report.bytes),
        format_utc(report.finished_at),
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
        report.items_marked,
        if report.items_marked == 1 { "" } else { "s" },
    );
    if report.is_clean() {
        let _ = writeln!(out, "All blobs are intact.");
        Ok(ExitCode::SUCCESS)
    } else {
        let _ = writeln!(
            out,
            "Restore the damaged blobs from the replica or a backup (copy each to the file named above), \
             then run `reelbox verify` again to clear the marks."
        );
        Ok(ExitCode::from(1))
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} bytes") } else { format!("{v:.1} {}", UNITS[unit]) }
}
