use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment and flags) as TOML, secrets redacted.
    Show,
}

pub fn run(cfg: &Config, cmd: &ConfigCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        ConfigCommand::Show => {
            print!("{}", cfg.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
