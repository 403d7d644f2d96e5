use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    reelbox::tls::install_crypto_provider();
    let cli = reelbox::cli::Cli::parse();
    init_logging();
    reelbox::cli::run(cli)
}

/// Logs go to standard error (journald under systemd). `RUST_LOG` wins over the configured level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(
                std::env::var("REELBOX_LOG__LEVEL").unwrap_or_else(|_| "info".into()),
            )
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    if reelbox::ops::service::logging_to_journal() {
        // journald stamps each line itself; colour codes would show up as noise in journalctl.
        subscriber.without_time().with_ansi(false).init();
    } else {
        subscriber.init();
    }
}
