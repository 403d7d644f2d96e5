//! `reelbox replica pair | promote | status`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::Cli;
use crate::replica::{promote, state};

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Set this server up as the replica of PRIMARY: writes the shared secret (if the file does
    /// not exist yet) and the `[replica]` configuration; copy the secret file to the primary.
    Pair {
        /// The primary's base URL, e.g. https://media-a.school.example.
        #[arg(long)]
        primary: String,
        /// Where the shared secret is (or will be) kept; mode 0600.
        #[arg(long)]
        secret_file: PathBuf,
        /// Configuration file to write the `[replica]` section to (printed when not given).
        #[arg(long)]
        config_out: Option<PathBuf>,
        /// This replica's own base URL as the primary reaches it.
        #[arg(long)]
        advertise_url: Option<String>,
    },
    /// Make this replica the primary: a new epoch, writes accepted. Works while it runs.
    Promote,
    /// Show the role, epoch, followed primary and position recorded in the data directory.
    Status,
}

pub fn run(cli: &Cli, command: &ReplicaCommand) -> Result<ExitCode, ExitCode> {
    match command {
        ReplicaCommand::Pair { primary, secret_file, config_out, advertise_url } => {
            pair(primary, secret_file, config_out.as_ref(), advertise_url.as_deref())
        }
        ReplicaCommand::Promote => {
            let cfg = super::load_config(cli, None)?;
            match promote::promote_data_dir(&cfg.data_dir, Duration::from_secs(30)) {
                Ok(epoch) => {
                    println!(
                        "promoted: {} is now the primary (epoch {epoch}) and accepts writes",
                        cfg.data_dir.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("reelbox: cannot promote: {e}");
                    Err(ExitCode::from(1))
                }
            }
        }
        ReplicaCommand::Status => {
            let cfg = super::load_config(cli, None)?;
            let s = state::load_state(&cfg.data_dir).map_err(|e| {
                eprintln!("reelbox: {e}");
                ExitCode::from(1)
            })?;
            let p = state::load_position(&cfg.data_dir).ok().flatten();
            let out = serde_json::json!({ "state": s, "applied": p });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn pair(
    primary: &str,
    secret_file: &PathBuf,
    config_out: Option<&PathBuf>,
    advertise_url: Option<&str>,
) -> Result<ExitCode, ExitCode> {
    if let Err(e) = crate::replica::config::check_url("--primary", primary, false) {
        eprintln!("reelbox: {e}");
        return Err(ExitCode::from(2));
    }
    if !secret_file.exists() {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(secret_file)?;
            f.write_all(format!("{secret}\n").as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = written {
            eprintln!("reelbox: cannot write the secret to {}: {e}", secret_file.display());
            return Err(ExitCode::from(1));
        }
    }
    let mut section = format!(
        "[replica]\nrole = \"replica\"\nprimary = \"{primary}\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    );
    if let Some(url) = advertise_url {
        section.push_str(&format!("advertise_url = \"{url}\"\n"));
    }
    match config_out {
        Some(path) => {
            let mut text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains("[replica]") {
                eprintln!("reelbox: {} already has a [replica] section; edit it by hand", path.display());
                return Err(ExitCode::from(1));
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&section);
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("reelbox: cannot write {}: {e}", path.display());
                return Err(ExitCode::from(1));
            }
            println!("wrote the [replica] section to {}", path.display());
        }
        None => print!("{section}"),
    }
    println!(
        "Copy {} to the primary and start it with `--replication-secret-file {}` \
         (or `[replica] secret_file`); then start this server.",
        secret_file.display(),
        secret_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
