//! The daily copy of the server's own files: `files/<YYYY-MM-DD>/` holds the configuration file
//! (values of keys that hold secrets replaced by a note) and `MANIFEST.json` (reelbox version,
//! what was copied, what was deliberately left out). Kept `backup.files_keep_days` days.
//!
//! Not copied, by decision: `<data>/secrets/` and files named by `*_file` keys. A backup volume
//! is typically readable by more people than the server; every secret can be re-created (the
//! signed-URL key is generated again when missing, tokens are re-issued).

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use serde::Serialize;

use super::{BackupError, Target, transfer};
use crate::clock::Timestamp;
use crate::config::Config;

#[derive(Debug, Serialize)]
struct Manifest<'a> {
    reelbox: &'a str,
    at: String,
    copied: Vec<String>,
    left_out: Vec<String>,
}

/// Keys whose values are secrets (matched on the last part of the key, before `=`).
fn is_secret_key(key: &str) -> bool {
    let k = key.trim().trim_matches('"').to_ascii_lowercase();
    !k.ends_with("_file") && ["token", "secret", "password", "key"].iter().any(|s| k.contains(s))
}

/// The configuration text with secret values replaced.
pub fn redact(toml: &str) -> String {
    toml.lines()
        .map(|line| match line.split_once('=') {
            Some((key, _)) if !line.trim_start().starts_with('#') && is_secret_key(key) => {
                format!("{key}= \"(left out of the backup: a secret)\"")
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn date_of(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Make today's copy unless it exists, then delete days past the retention. Returns the day.
pub async fn backup_files(target: &Target, cfg: &Config, now: Timestamp) -> Result<String, BackupError> {
    let day = date_of(now);
    let manifest_key = ObjectPath::from(format!("files/{day}/MANIFEST.json"));
    if transfer::size_of(target, &manifest_key).await?.is_none() {
        let mut copied = Vec::new();
        if let Some(path) = &cfg.source_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
            let name =
                path.file_name().map_or_else(|| "reelbox.toml".into(), |n| n.to_string_lossy().into_owned());
            transfer::put_bytes(
                target,
                &ObjectPath::from(format!("files/{day}/{name}")),
                redact(&text).into_bytes(),
            )
            .await?;
            copied.push(format!("{} (secret values left out)", path.display()));
        }
        let manifest = Manifest {
            reelbox: crate::VERSION,
            at: crate::clock::format_utc(now),
            copied,
            left_out: vec![
                format!("{}/secrets/ (keys: re-created when missing)", cfg.data_dir.display()),
                "files named by *_file settings (secrets)".into(),
            ],
        };
        transfer::put_bytes(target, &manifest_key, serde_json::to_vec_pretty(&manifest)?).await?;
        tracing::info!(day, "server files copied to the backup target");
    }
    let oldest = date_of(now - i64::from(cfg.backup.files_keep_days) * 24 * 3600);
    let mut list = target.list(Some(&ObjectPath::from("files")));
    let mut old = Vec::new();
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(|e| BackupError::target("listing files/", e))?;
        let day_part = meta.location.parts().nth(1).map(|p| p.as_ref().to_owned()).unwrap_or_default();
        if day_part.len() == 10 && day_part < oldest {
            old.push(meta.location);
        }
    }
    for key in old {
        transfer::delete(target, &key).await?;
    }
    Ok(day)
}

/// Once at start and then every few hours (a new day gets its copy). A failed copy (the target
/// away) is tried again after 15 s, doubling to 10 minutes, not at the next 3-hourly tick.
pub fn start(
    target: Target,
    cfg: Config,
    clock: crate::clock::Clock,
    status: super::StatusHandle,
) -> tokio::task::JoinHandle<()> {
    use std::time::Duration;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3 * 3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut retry_in = Duration::from_secs(15);
            loop {
                match backup_files(&target, &cfg, clock.now()).await {
                    Ok(day) => {
                        status.update(|s| s.last_files_backup = Some(day));
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_s = retry_in.as_secs(), "could not copy the server files to the backup target");
                        status.failed(clock.now(), &e);
                        tokio::time::sleep(retry_in).await;
                        retry_in = (retry_in * 2).min(Duration::from_secs(600));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let text = "listen = \"0.0.0.0:443\"\n[metrics]\ntoken = \"s3cret\"\ntoken_file = \"/etc/t\"\n# token = \"x\"\n";
        let out = redact(text);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("listen = \"0.0.0.0:443\""));
        assert!(out.contains("token_file = \"/etc/t\""));
        assert!(out.contains("# token = \"x\""));
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(86_400 * 365), "1971-01-01");
    }
}
