use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment and flags) as TOML, secrets redacted.
    Show,
    /// Load and validate the configuration, then exit: 0 when it is valid, 2 with the key and the
    /// reason when it is not (the installer runs this before starting the service).
    Check,
}

pub fn run(cfg: &Config, cmd: &ConfigCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        ConfigCommand::Show => {
            print!("{}", cfg.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check => {
            println!("configuration is valid (data directory {})", cfg.data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
