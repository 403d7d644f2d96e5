//! WAL shipping benchmark (issue 6), in-process on real SQLite files and a directory target:
//!
//! 1. **Write throughput**: the same workload of small write transactions (one row each, the size
//!    of a typical audit or category row) with shipping off and on, in one run: tx/s and the ratio
//!    (target ≥ 0.9×).
//! 2. **Lag** from commit to the record being in the target, per transaction, at a paced 500 tx/s:
//!    p50 and p99 (target p99 ≤ 250 ms).
//! 3. **Restore** of a database of `BENCH_RESTORE_MIB` (default 1024) plus `BENCH_DAY_TXNS`
//!    (default 20 000, a busy school day) transactions of records, against `cp` of the database
//!    file: seconds and the ratio (target ≤ 3×).
//!
//! `cargo bench --bench ship`; `BENCH_TXNS` (default 20 000) sets the throughput workload,
//! `BENCH_LAG_SECS` (default 10) the paced run.

use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reelbox::config::ReplicationConfig;
use reelbox::db::{Db, DbError};
use reelbox::replication::{Shipper, restore::restore, target};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench ship: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench ship: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let txns = env_usize("BENCH_TXNS", 20_000);
    let lag_secs = env_usize("BENCH_LAG_SECS", 10);
    let restore_mib = env_usize("BENCH_RESTORE_MIB", 1024);
    let day_txns = env_usize("BENCH_DAY_TXNS", 20_000);
    let scratch = tempfile::Builder::new().prefix("reelbox-bench-ship").tempdir_in(bench_dir())?;
    println!("bench ship: scratch {}", scratch.path().display());

    // 1. Throughput, off then on, then off again (the machine's drift shows in the two offs).
    let off1 = throughput(&scratch.path().join("off1"), txns, false).await?;
    let on = throughput(&scratch.path().join("on"), txns, true).await?;
    let off2 = throughput(&scratch.path().join("off2"), txns, false).await?;
    let off = off1.max(off2);
    println!(
        "write tx/s: shipping off {off1:.0} / {off2:.0}, on {on:.0} -> ratio {:.2}x (target >= 0.9x)",
        on / off
    );

    // 2. Lag at 500 tx/s.
    let (p50, p99, max) = lag(&scratch.path().join("lag"), lag_secs).await?;
    println!(
        "commit -> target lag at 500 tx/s for {lag_secs} s: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (target p99 <= 250 ms)"
    );

    // 3. Restore against cp.
    let (restore_s, cp_s, size) =
        restore_vs_cp(&scratch.path().join("restore"), restore_mib, day_txns).await?;
    println!(
        "restore of a {:.0} MiB database + {day_txns} transactions: {restore_s:.2} s; cp of the database file: {cp_s:.2} s -> ratio {:.2}x (target <= 3x)",
        size as f64 / (1024.0 * 1024.0),
        restore_s / cp_s
    );
    Ok(())
}

/// Where scratch files go: `BENCH_DIR`, else the system's temporary directory.
fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("BENCH_DIR").map(Into::into).unwrap_or_else(std::env::temp_dir)
}

fn open(dir: &Path) -> Result<Db> {
    std::fs::create_dir_all(dir)?;
    let db = Db::open(dir, 2)?;
    db.write_blocking(|c| {
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, at INTEGER, v TEXT)",
        )?;
        Ok::<_, DbError>(())
    })?;
    Ok(db)
}

fn one_txn(db: &Db, i: usize) -> Result<()> {
    db.write_blocking(|c| {
        c.execute(
            "INSERT INTO bench_rows (at, v) VALUES (?1, ?2)",
            rusqlite::params![i as i64, format!("row {i} {}", "x".repeat(150))],
        )?;
        Ok::<_, DbError>(())
    })?;
    Ok(())
}

async fn start_shipper(db: &Db, dir: &Path) -> Result<Arc<Shipper>> {
    let target = target::open_dir(&dir.join("target"))?;
    let shipper = Shipper::start(db.clone(), dir, Some(target), &ReplicationConfig::default()).await?;
    Ok(Arc::new(shipper))
}

async fn stop(db: Db, shipper: Option<Arc<Shipper>>) {
    match shipper {
        Some(s) => {
            s.close(&db);
            s.finish(Duration::from_secs(30)).await;
        }
        None => db.close(),
    }
}

async fn throughput(dir: &Path, txns: usize, ship: bool) -> Result<f64> {
    let db = open(dir)?;
    let shipper = if ship { Some(start_shipper(&db, dir).await?) } else { None };
    let writer = db.clone();
    let elapsed = tokio::task::spawn_blocking(move || -> std::result::Result<Duration, String> {
        let started = Instant::now();
        for i in 0..txns {
            one_txn(&writer, i).map_err(|e| e.to_string())?;
        }
        Ok(started.elapsed())
    })
    .await??;
    stop(db, shipper).await;
    Ok(txns as f64 / elapsed.as_secs_f64())
}

/// Wait until transaction `at_least` (or later) is shipped and everything shipped is in the
/// target; the shipped txid then.
async fn quiescent(shipper: &Shipper, at_least: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = shipper.status();
        if let (Some(a), Some(b)) = (&s.shipped, &s.uploaded)
            && a.generation == b.generation
            && a.txid == b.txid
            && a.txid >= at_least
        {
            return Ok(a.txid);
        }
        if Instant::now() > deadline {
            return Err("the target never caught up".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lag(dir: &Path, secs: usize) -> Result<(f64, f64, f64)> {
    let db = open(dir)?;
    let shipper = start_shipper(&db, dir).await?;
    // A fresh generation: its snapshot is transaction 0, this write is 1.
    one_txn(&db, 0)?;
    let base = quiescent(&shipper, 1).await?;
    // Watch the uploaded position every millisecond: (txid, when it was first seen).
    let seen: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (shipper, seen, done) = (shipper.clone(), seen.clone(), done.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                if let Some(u) = shipper.status().uploaded
                    && u.txid > last
                {
                    last = u.txid;
                    if let Ok(mut v) = seen.lock() {
                        v.push((u.txid, Instant::now()));
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let n = secs * 500;
    let writer = db.clone();
    let commits = tokio::task::spawn_blocking(move || -> std::result::Result<Vec<Instant>, String> {
        let started = Instant::now();
        let mut commits = Vec::with_capacity(n);
        for i in 0..n {
            let due = started + Duration::from_micros(2000 * i as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            one_txn(&writer, i + 1).map_err(|e| e.to_string())?;
            commits.push(Instant::now());
        }
        Ok(commits)
    })
    .await??;
    let last = quiescent(&shipper, base + n as u64).await?;
    if last != base + n as u64 {
        return Err(format!("expected transaction {} last, the target has {last}", base + n as u64).into());
    }
    done.store(true, Ordering::Release);
    let _ = watcher.join();
    let seen = seen.lock().map_err(|_| "poisoned")?.clone();
    let mut lags: Vec<f64> = Vec::with_capacity(n);
    for (k, committed) in commits.iter().enumerate() {
        let txid = base + k as u64 + 1;
        let at = seen
            .iter()
            .find(|(t, _)| *t >= txid)
            .map(|(_, at)| *at)
            .ok_or("a transaction never reached the target")?;
        lags.push(at.saturating_duration_since(*committed).as_secs_f64() * 1000.0);
    }
    stop(db, Some(shipper)).await;
    lags.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    Ok((pct(0.50), pct(0.99), lags[lags.len() - 1]))
}

async fn restore_vs_cp(dir: &Path, mib: usize, day_txns: usize) -> Result<(f64, f64, u64)> {
    let db = open(dir)?;
    // The database: rows of mixed text, about 1 KiB each, in transactions of 1000 rows.
    let rows = mib * 1024;
    let writer = db.clone();
    tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
        let mut done = 0;
        while done < rows {
            writer
                .write_blocking(|c| {
                    c.execute(
                        "INSERT INTO bench_rows (at, v)
                         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                         SELECT i, printf('%s %s', hex(randomblob(256)), hex(zeroblob(250))) FROM n",
                        [],
                    )?;
                    Ok::<_, DbError>(())
                })
                .map_err(|e| e.to_string())?;
            done += 1000;
        }
        Ok(())
    })
    .await??;
    let shipper = start_shipper(&db, dir).await?;
    let writer = db.clone();
    tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
        for i in 0..day_txns {
            one_txn(&writer, i).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await??;
    quiescent(&shipper, day_txns as u64).await?;
    stop(db, Some(shipper)).await;
    let db_file = dir.join("reelbox.db");
    let size = std::fs::metadata(&db_file)?.len();

    let target = target::open_dir(&dir.join("target"))?;
    let out = dir.join("restored.db");
    // Cold-ish caches for both: what the page cache holds is the same for both runs.
    let started = Instant::now();
    restore(&target, None, &out, &mut |_| {}).await?;
    let restore_s = started.elapsed().as_secs_f64();

    let copy = dir.join("copy.db");
    let started = Instant::now();
    let status = Command::new("cp").arg(&db_file).arg(&copy).status()?;
    if !status.success() {
        return Err("cp failed".into());
    }
    // `restore` fsyncs its result; so must the baseline.
    std::fs::File::open(&copy)?.sync_all()?;
    let cp_s = started.elapsed().as_secs_f64();
    Ok((restore_s, cp_s, size))
}
