//! `reelbox backup list --from DIR|s3://bucket/prefix` and `reelbox backup checksum --db FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::replication::{restore, state_checksum, target};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Show the generations, snapshots and the restorable time range in a backup target.
    List {
        /// The backup directory (as given to `serve --backup-dir`), or `s3://bucket/prefix` (the
        /// endpoint and credentials from the `AWS_*` environment variables, as for `serve`).
        #[arg(long)]
        from: PathBuf,
    },
    /// Print the state checksum of a database file (what a restore must reproduce).
    Checksum {
        #[arg(long)]
        db: PathBuf,
    },
}

fn fail(message: String) -> ExitCode {
    eprintln!("reelbox: {message}");
    ExitCode::from(1)
}

pub fn run(command: &BackupCommand) -> Result<ExitCode, ExitCode> {
    match command {
        BackupCommand::List { from } => {
            let target = target::open_location(from).map_err(|e| fail(e.to_string()))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let lines = rt.block_on(restore::describe(&target)).map_err(|e| fail(e.to_string()))?;
            if lines.is_empty() {
                println!("No database backup in {}.", from.display());
            }
            for l in lines {
                println!("{l}");
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Checksum { db } => {
            if !db.is_file() {
                return Err(fail(format!("{} is not a file", db.display())));
            }
            let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| fail(format!("cannot open {}: {e}", db.display())))?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| fail(e.to_string()))?;
            let sum = state_checksum(&conn).map_err(|e| fail(e.to_string()))?;
            println!("{}", hex::encode(sum));
            Ok(ExitCode::SUCCESS)
        }
    }
}
