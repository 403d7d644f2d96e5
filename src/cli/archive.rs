//! `reelbox archive`: what was deleted permanently and is waiting for the purge, and bringing
//! an item back from there (also possible from the web page `/admin/archive`).

use std::process::ExitCode;

use clap::Subcommand;

use crate::accounts::login::Actor;
use crate::clock::format_utc;
use crate::config::Config;
use crate::db::ids::MediaId;
use crate::error::AppError;
use crate::library::media::MediaStatus;
use crate::library::{LibraryError, lifecycle};

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// List archived items: id, when it was deleted, when the purge removes it, title.
    List,
    /// Restore an archived (or recycled) item to the library.
    Restore {
        /// The item's id (as shown by `reelbox archive list`).
        id: i64,
    },
}

fn command_line() -> Actor {
    Actor { id: None, name: "command line".into(), addr: String::new() }
}

pub fn run(cfg: &Config, cmd: &ArchiveCommand) -> Result<ExitCode, ExitCode> {
    let using = match cmd {
        ArchiveCommand::List => super::DbUse::Read,
        ArchiveCommand::Restore { .. } => super::DbUse::Write,
    };
    let db = super::open_db(cfg, using)?;
    let fail = |e: LibraryError| {
        eprintln!("reelbox: {}", e.user_message());
        ExitCode::from(1)
    };
    match cmd {
        ArchiveCommand::List => {
            let items =
                db.read_blocking(|c| lifecycle::list(c, MediaStatus::Archived, u32::MAX)).map_err(fail)?;
            if items.is_empty() {
                eprintln!("The archive is empty.");
            }
            for item in items {
                let deleted = item.archived_at.map(format_utc).unwrap_or_default();
                let due = lifecycle::purge_due_at(&item, cfg.library.archive_days)
                    .map(format_utc)
                    .unwrap_or_default();
                println!("{}\t{deleted}\t{due}\t{}", item.id, item.title);
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Restore { id } => {
            let id = MediaId(*id);
            let now = chrono::Utc::now().timestamp();
            match db.write_blocking(|c| lifecycle::restore(c, id, &command_line(), now)) {
                Ok(item) => {
                    eprintln!("Restored {} “{}” (now {}).", item.id, item.title, item.status);
                    Ok(ExitCode::SUCCESS)
                }
                Err(LibraryError::NotFound(_)) => {
                    eprintln!(
                        "reelbox: there is no item {id}; it may have been purged already. \
                         `reelbox archive list` shows what can be restored"
                    );
                    Err(ExitCode::from(1))
                }
                Err(e) => Err(fail(e)),
            }
        }
    }
}
