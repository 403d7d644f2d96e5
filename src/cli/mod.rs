//! The command line: one file per subcommand. Each returns an exit code; messages go to stderr.

pub mod archive;
pub mod backup;
pub mod compare;
pub mod config_cmd;
pub mod doctor;
pub mod recover;
pub mod replica;
pub mod restore;
pub mod serve;
pub mod tls_args;
pub mod token;
pub mod user;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(name = "reelbox", version, about = "Your school's own media library")]
pub struct Cli {
    /// Configuration file (default: /etc/reelbox/reelbox.toml when it exists).
    #[arg(long, global = true, env = "REELBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (database, media). Overrides the configuration.
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server.
    Serve {
        /// Address to listen on, HOST:PORT.
        #[arg(long)]
        listen: Option<String>,
        /// Back up media and server files to this directory (a mounted volume); `[backup] dir`.
        #[arg(long)]
        backup_dir: Option<PathBuf>,
        #[command(flatten)]
        tls: tls_args::TlsArgs,
        /// `primary` or `replica` (a replica follows `--primary` and forwards writes to it).
        #[arg(long)]
        role: Option<String>,
        /// The primary's base URL (replicas), e.g. https://media-a.school.example.
        #[arg(long)]
        primary: Option<String>,
        /// File holding the secret shared by primary and replica (`reelbox replica pair` writes it).
        #[arg(long)]
        replication_secret_file: Option<PathBuf>,
    },
    /// Pair a replica with its primary, promote a replica, show the pair's state.
    Replica {
        #[command(subcommand)]
        command: replica::ReplicaCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Show the effective configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Check the server's set-up and say how to fix problems.
    Doctor,
    /// Permanently deleted items kept until the purge: list them, restore one.
    Archive {
        #[command(subcommand)]
        command: archive::ArchiveCommand,
    },
    /// Re-hash every stored file, report missing or corrupt ones and mark their items
    /// (exit 0: all intact, 1: problems found, 2: could not check).
    Verify,
    /// Compare the live database with another reelbox database (e.g. a restore): what was
    /// added, removed or changed, per kind of record.
    Compare(compare::CompareArgs),
    /// Bring chosen media items back from another reelbox database (e.g. a restore), with
    /// their captions, access and files.
    Recover(recover::RecoverArgs),
    /// Database backups in a backup target: list them; the state checksum of a database file.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Restore the database from a backup target, as of now or of a moment in the past.
    Restore(restore::RestoreArgs),
}

pub fn load_config(cli: &Cli, listen: Option<String>) -> Result<Config, ExitCode> {
    load_config_with(cli, Overrides { listen, ..Default::default() })
}

/// Like [`load_config`] with more command-line overrides (`serve --backup-dir`).
pub fn load_config_with(cli: &Cli, mut overrides: Overrides) -> Result<Config, ExitCode> {
    overrides.data_dir = cli.data.clone();
    Config::load(cli.config.as_deref(), &overrides).map(|l| l.config).map_err(|e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(2)
    })
}

/// What a command-line tool does with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbUse {
    Read,
    Write,
}

/// Open the database for a command-line tool, with a message that says what to do on failure.
/// A replica's database changes only by replication: a tool that writes is refused there (it
/// would make the copy differ from the primary), and one that reads gets a read-only handle.
pub fn open_db(cfg: &Config, using: DbUse) -> Result<crate::db::Db, ExitCode> {
    if let Err(e) = std::fs::create_dir_all(&cfg.data_dir) {
        eprintln!("reelbox: cannot create data directory {}: {e}", cfg.data_dir.display());
        return Err(ExitCode::from(1));
    }
    let role = match crate::replica::state::load_state(&cfg.data_dir) {
        Ok(Some(state)) => (state.role, state.primary),
        Ok(None) => (
            if cfg.replica.is_replica() {
                crate::replica::Role::Replica
            } else {
                crate::replica::Role::Primary
            },
            cfg.replica.primary.clone(),
        ),
        Err(e) => {
            eprintln!("reelbox: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let replica = role.0 == crate::replica::Role::Replica;
    if replica && using == DbUse::Write {
        let dir = cfg.data_dir.display();
        eprintln!(
            "reelbox: {dir} belongs to a replica: its database changes only by replication from {}. \
             Run this command on the primary server, or promote this one first \
             (`reelbox replica promote --data {dir}`). Nothing was changed.",
            role.1.as_deref().unwrap_or("its primary")
        );
        return Err(ExitCode::from(2));
    }
    let db = crate::db::Db::open(&cfg.data_dir, 2).map_err(|e| {
        eprintln!("reelbox: {e}");
        ExitCode::from(1)
    })?;
    db.set_read_only(replica);
    Ok(db)
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Serve { listen, backup_dir, tls, role, primary, replication_secret_file } => {
            let replica = crate::replica::config::ReplicaOverrides {
                role: role.clone(),
                primary: primary.clone(),
                secret_file: replication_secret_file.clone(),
            };
            load_config_with(
                &cli,
                Overrides {
                    listen: listen.clone(),
                    backup: backup_dir.clone().map(|dir| crate::config::BackupDirOverride { dir }),
                    tls: tls.overrides(),
                    replica,
                    ..Default::default()
                },
            )
            .and_then(serve::run)
        }
        Command::Replica { command } => replica::run(&cli, command),
        Command::User { command } => load_config(&cli, None).and_then(|c| user::run(&c, command)),
        Command::Token { command } => load_config(&cli, None).and_then(|c| token::run(&c, command)),
        Command::Config { command } => load_config(&cli, None).and_then(|c| config_cmd::run(&c, command)),
        Command::Doctor => load_config(&cli, None).and_then(|c| doctor::run(&c)),
        Command::Archive { command } => load_config(&cli, None).and_then(|c| archive::run(&c, command)),
        Command::Verify => load_config(&cli, None).and_then(|c| verify::run(&c)),
        Command::Compare(args) => load_config(&cli, None).and_then(|c| compare::run(&c, args)),
        Command::Recover(args) => load_config(&cli, None).and_then(|c| recover::run(&c, args)),
        Command::Backup { command } => backup::run(command),
        Command::Restore(args) => restore::run(args, cli.data.as_deref()),
    };
    result.unwrap_or_else(|code| code)
}
