use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;

use crate::accounts::users::{self, NewUser};
use crate::accounts::{AccountsError, Hasher};
use crate::config::Config;
use crate::error::AppError;
use crate::insights::audit::{self, Event};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        /// Make the account a site administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
}

pub fn run(cfg: &Config, cmd: &UserCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        UserCommand::Add { username, admin, password_stdin: _, name } => {
            let mut password = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut password) {
                eprintln!("reelbox: cannot read the password from standard input: {e}");
                return Err(ExitCode::from(2));
            }
            let password = password.trim_end_matches(['\n', '\r']);
            let hasher = Hasher::new(&cfg.passwords).map_err(|e| {
                eprintln!("reelbox: bad password settings: {e}");
                ExitCode::from(2)
            })?;
            let hash = users::check_username(username)
                .and_then(|_| hasher.check_rules(username, password).map_err(AccountsError::from))
                .and_then(|_| hasher.hash(password).map_err(|e| AccountsError::Hashing(e.to_string())))
                .map_err(|e| {
                    eprintln!("reelbox: {}", e.user_message());
                    ExitCode::from(1)
                })?;
            let db = super::open_db(cfg, super::DbUse::Write)?;
            let now = chrono::Utc::now().timestamp();
            let created = db.write_blocking(|c| {
                let tx = c.transaction()?;
                let user = users::create(
                    &tx,
                    NewUser {
                        username,
                        display_name: name,
                        email: None,
                        password_hash: Some(hash),
                        is_admin: *admin,
                        must_change_password: false,
                    },
                    now,
                )?;
                let e = Event::new("user.create")
                    .actor(None, "command line")
                    .target("user", user.id, &user.username)
                    .detail(if *admin { "administrator" } else { "" });
                audit::record(&tx, &e, now)?;
                tx.commit()?;
                Ok::<_, AccountsError>(user)
            });
            match created {
                Ok(user) => {
                    eprintln!(
                        "Created {}{}.",
                        user.username,
                        if user.is_admin { " (administrator)" } else { "" }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("reelbox: {}", e.user_message());
                    Err(ExitCode::from(1))
                }
            }
        }
    }
}
