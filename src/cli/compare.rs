//! `reelbox compare --with FILE [--json]`: what differs between the live database and FILE.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::backup::compare;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Another reelbox database, e.g. one made by `reelbox restore --output FILE`.
    #[arg(long)]
    pub with: PathBuf,
    /// Print JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0: the same; 1: differences listed; 2: could not compare.
pub fn run(cfg: &Config, args: &CompareArgs) -> Result<ExitCode, ExitCode> {
    let other = compare::open_other(&args.with).map_err(|e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(2)
    })?;
    let db = super::open_db(cfg, super::DbUse::Read).map_err(|_| ExitCode::from(2))?;
    let path = db.path().to_path_buf();
    let result = db.read_blocking(|live| compare::compare(live, &other.conn, &path, &args.with));
    let c = result.map_err(|e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(2)
    })?;
    if args.json {
        match serde_json::to_string_pretty(&c) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("reelbox: {e}");
                return Err(ExitCode::from(2));
            }
        }
    } else {
        print!("{}", compare::to_text(&c));
    }
    Ok(if c.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
