//! `reelbox restore --from DIR|s3://bucket/prefix [--at RFC3339] --output FILE`, or into a data directory
//! (`--data DIR`, the service stopped), keeping the replaced database aside.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::replication::{restore, target};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (as given to `serve --backup-dir`), or `s3://bucket/prefix` (the
    /// endpoint and credentials from the `AWS_*` environment variables, as for `serve`).
    #[arg(long)]
    pub from: PathBuf,
    /// Restore the database as it was at this time (RFC 3339, e.g. 2026-03-01T14:30:00Z); latest when absent.
    #[arg(long)]
    pub at: Option<String>,
    /// Write the restored database to this new file (beside the live one, to compare and recover).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

fn fail(message: String) -> ExitCode {
    eprintln!("reelbox: {message}");
    ExitCode::from(1)
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// Refuse to replace a database that a running server has open.
fn check_stopped(db: &Path) -> Result<(), ExitCode> {
    if !db.exists() {
        return Ok(());
    }
    let conn =
        rusqlite::Connection::open(db).map_err(|e| fail(format!("cannot open {}: {e}", db.display())))?;
    conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;").map_err(|_| {
        fail(format!("{} is in use: stop the reelbox service before a full restore", db.display()))
    })
}

pub fn run(args: &RestoreArgs, data_dir: Option<&Path>) -> Result<ExitCode, ExitCode> {
    let at_ms = match &args.at {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    fail(format!("--at {s:?} is not an RFC 3339 time (e.g. 2026-03-01T14:30:00Z): {e}"))
                })?
                .timestamp_millis(),
        ),
    };
    let (out, replace) = match (&args.output, data_dir) {
        (Some(out), _) => {
            if out.exists() {
                return Err(fail(format!(
                    "{} already exists; choose a new file for --output",
                    out.display()
                )));
            }
            (out.clone(), None)
        }
        (None, Some(data)) => {
            let live = data.join(crate::db::DB_FILE);
            check_stopped(&live)?;
            (data.join("reelbox.db.restored"), Some(live))
        }
        (None, None) => {
            return Err(fail(
                "say where to restore: --output FILE, or --data DIR to replace that server's database".into(),
            ));
        }
    };
    let target = target::open_location(&args.from).map_err(|e| fail(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut progress = |line: String| eprintln!("restore: {line}");
    let done = rt
        .block_on(restore::restore(&target, at_ms, &out, &mut progress))
        .map_err(|e| fail(e.to_string()))?;
    if let Some(live) = replace {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = side(&live, &format!(".replaced-{stamp}"));
        for suffix in ["", "-wal", "-shm"] {
            let from = side(&live, suffix);
            if from.exists() {
                std::fs::rename(&from, side(&aside, suffix))
                    .map_err(|e| fail(format!("cannot move {} aside: {e}", from.display())))?;
            }
        }
        std::fs::rename(&out, &live)
            .map_err(|e| fail(format!("cannot put the restored database in place: {e}")))?;
        eprintln!("restore: the replaced database is kept as {}", aside.display());
    }
    let at = chrono::DateTime::from_timestamp_millis(done.committed_at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    println!(
        "restored generation {} transaction {} (committed {at}); integrity ok; state {}",
        done.generation,
        done.txid,
        hex::encode(done.state_checksum)
    );
    Ok(ExitCode::SUCCESS)
}
