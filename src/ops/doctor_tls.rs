//! The HTTPS part of `reelbox doctor`: which certificate the server uses (read from disk, or
//! from the status the running server records), how long it is valid, and the last error.

use std::path::PathBuf;

use super::doctor::{Check, Status};
use crate::config::{Config, TlsMode};
use crate::tls::status::{self, CertSummary, TlsStatus};

fn check(status: Status, summary: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: "https", status, summary: summary.into(), fix: fix.into() }
}

/// The certificate files of `files` and `self-signed` mode.
fn files_of(cfg: &Config) -> Option<(PathBuf, PathBuf)> {
    match cfg.tls.mode {
        TlsMode::Files => Some((cfg.tls.cert_file.clone()?, cfg.tls.key_file.clone()?)),
        TlsMode::SelfSigned => {
            let dir = crate::tls::tls_dir(&cfg.data_dir).join("self-signed");
            Some((dir.join("cert.pem"), dir.join("key.pem")))
        }
        _ => None,
    }
}

pub fn check_tls(cfg: &Config) -> Check {
    let now = chrono::Utc::now().timestamp();
    let recorded = status::read_recorded(&cfg.data_dir).filter(|s| s.mode == cfg.tls.mode.as_str());
    let cert: Option<CertSummary> = match cfg.tls.mode {
        TlsMode::Off => {
            return check(
                Status::Warn,
                "TLS is off: plain HTTP (development only)",
                "set [tls] mode = \"acme\" (with domains) or \"files\" (with cert_file and key_file) in the configuration",
            );
        }
        TlsMode::Files | TlsMode::SelfSigned => {
            let Some((cert, key)) = files_of(cfg) else {
                return check(
                    Status::Fail,
                    "files mode without cert_file and key_file",
                    "set tls.cert_file and tls.key_file",
                );
            };
            match crate::tls::files::load_pair(&cert, &key) {
                Ok(pair) => pair.cert.first().and_then(|c| status::summarize(c)),
                Err(_) if cfg.tls.mode == TlsMode::SelfSigned && !cert.exists() => {
                    return check(Status::Ok, "self-signed: made on first start", "");
                }
                Err(e) => {
                    return check(
                        Status::Fail,
                        e.to_string(),
                        "give reelbox a PEM certificate chain and its matching PEM private key, readable by the reelbox user",
                    );
                }
            }
        }
        TlsMode::Acme => recorded.as_ref().and_then(|s| s.cert.clone()),
    };
    let shown = TlsStatus { mode: cfg.tls.mode.as_str().into(), cert: cert.clone(), ..Default::default() };
    let mut line = status::describe(&shown, now);
    if let Some(at) = recorded.as_ref().and_then(|s| s.last_renewal) {
        line.push_str(&format!("; last renewal {}", crate::clock::format_utc(at)));
    }
    let last_error = recorded.as_ref().and_then(|s| s.last_error.clone());
    match (&cert, last_error) {
        (Some(c), _) if c.not_after <= now => check(
            Status::Fail,
            line,
            match cfg.tls.mode {
                TlsMode::Acme => {
                    "the certificate expired: check that port 443 is reachable from the internet and DNS points here; see the log for ACME errors"
                }
                _ => {
                    "replace the certificate files with a valid certificate; reelbox picks them up without a restart"
                }
            },
        ),
        (_, Some(e)) => check(
            Status::Warn,
            format!("{line}; last error: {e}"),
            match cfg.tls.mode {
                TlsMode::Acme => {
                    "ACME needs port 443 reachable from the internet for every name in tls.domains; if this server is not reachable, use mode \"files\" with the school's certificate"
                }
                _ => "check the certificate files: PEM, matching key, readable by the reelbox user",
            },
        ),
        // ACME renews at two thirds of the validity; a quarter left means renewal is failing.
        (Some(c), None)
            if (cfg.tls.mode == TlsMode::Acme && c.not_after - now < (c.not_after - c.not_before) / 4)
                || (cfg.tls.mode != TlsMode::Acme && c.not_after - now < 14 * 86_400) =>
        {
            check(
                Status::Warn,
                line,
                match cfg.tls.mode {
                    TlsMode::Acme => "renewal is overdue: check the log for ACME errors",
                    _ => "the certificate expires soon: replace the files (no restart needed)",
                },
            )
        }
        (Some(_), None) => check(Status::Ok, line, ""),
        (None, None) => check(
            Status::Warn,
            format!("{}: no certificate obtained yet", cfg.tls.mode.as_str()),
            "start the server; ACME needs port 443 reachable from the internet and DNS for every name in tls.domains",
        ),
    }
}
