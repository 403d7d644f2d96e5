//! `reelbox recover --from FILE --media ID...`: bring items back from FILE into the live database.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::backup::{self, compare, recover};
use crate::config::Config;
use crate::db::ids::MediaId;

#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    /// Another reelbox database, e.g. one made by `reelbox restore --output FILE`.
    #[arg(long)]
    pub from: PathBuf,
    /// The items to bring back (ids as `reelbox compare` lists them).
    #[arg(long, num_args = 1.., required = true)]
    pub media: Vec<i64>,
    /// Overwrite an item that exists live and differs from FILE.
    #[arg(long)]
    pub replace: bool,
    /// Leave access grants as they are live.
    #[arg(long)]
    pub skip_grants: bool,
    /// The backup target to fetch files the server no longer has (default: `[backup] dir`).
    #[arg(long)]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

fn fail(code: u8) -> impl Fn(backup::BackupError) -> ExitCode {
    move |e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(code)
    }
}

/// Exit 0: recovered (or already there); 1: refused (conflict, missing file); 2: could not run.
pub fn run(cfg: &Config, args: &RecoverArgs) -> Result<ExitCode, ExitCode> {
    let mut cfg = cfg.clone();
    if let Some(dir) = &args.backup_dir {
        cfg.backup.dir = Some(dir.clone());
    }
    let other = compare::open_other(&args.from).map_err(fail(2))?;
    let target = backup::open_target(&cfg).map_err(fail(2))?;
    let db = super::open_db(&cfg, super::DbUse::Write).map_err(|_| ExitCode::from(2))?;
    let store = crate::store::BlobStore::open(&cfg.data_dir).map_err(|e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(2)
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("reelbox: cannot start the async runtime: {e}");
        ExitCode::from(2)
    })?;
    let opts = recover::Options {
        media: args.media.iter().copied().map(MediaId).collect(),
        replace: args.replace,
        skip_grants: args.skip_grants,
        actor: "command line (reelbox recover)".into(),
    };
    let now = crate::clock::Clock::System.now();
    let result =
        runtime.block_on(recover::recover(&db, &store, target.as_ref(), &cfg.data_dir, &other, &opts, now));
    db.close();
    let results = result.map_err(|e| {
        eprintln!("reelbox: {e}");
        match e {
            backup::BackupError::Conflict(_)
            | backup::BackupError::NotFound(_)
            | backup::BackupError::Corrupt { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    for r in &results {
        println!("Item {} \"{}\": {}.", r.id, r.title, r.outcome);
        if r.outcome == "unchanged" {
            continue;
        }
        println!(
            "  file: {}",
            match r.content {
                "backup" => "fetched from the backup target and checked",
                "server" => "still on the server",
                _ => "none",
            }
        );
        println!("  captions: {}; converted files: {}", r.captions, r.renditions);
        if !r.categories_recreated.is_empty() {
            println!("  categories re-created: {}", r.categories_recreated.join(" › "));
        }
        for g in &r.grants_restored {
            println!("  access restored: {g}");
        }
        for n in &r.notes {
            println!("  note: {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
