use std::process::ExitCode;

use clap::Subcommand;

use crate::accounts::{AccountsError, tokens, users};
use crate::config::Config;
use crate::error::AppError;
use crate::insights::audit::{self, Event};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a person and print it (alone on one line).
    Create {
        #[arg(long)]
        username: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "command line")]
        name: String,
    },
}

pub fn run(cfg: &Config, cmd: &TokenCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        TokenCommand::Create { username, name } => {
            let db = super::open_db(cfg, super::DbUse::Write)?;
            let now = chrono::Utc::now().timestamp();
            let result = db.write_blocking(|c| {
                let tx = c.transaction()?;
                let user = users::by_username(&tx, username)?.ok_or(AccountsError::NotFound("user"))?;
                if user.disabled {
                    return Err(AccountsError::Disabled);
                }
                let (id, token) = tokens::create(&tx, user.id, name, now)?;
                let e = Event::new("token.create").actor(None, "command line").target(
                    "token",
                    id,
                    &format!("{name} ({})", user.username),
                );
                audit::record(&tx, &e, now)?;
                tx.commit()?;
                Ok::<_, AccountsError>(token)
            });
            match result {
                Ok(token) => {
                    println!("{token}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(AccountsError::NotFound(_)) => {
                    eprintln!(
                        "reelbox: there is no account called {username:?}; create it with `reelbox user add`"
                    );
                    Err(ExitCode::from(1))
                }
                Err(e) => {
                    eprintln!("reelbox: {}", e.user_message());
                    Err(ExitCode::from(1))
                }
            }
        }
    }
}
