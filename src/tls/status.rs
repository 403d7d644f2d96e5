//! What the admin dashboard and `reelbox doctor` show about HTTPS: the mode, the certificate in
//! use (names, issuer, expiry), the last renewal and the last error. The server keeps it in
//! memory and writes it to `<data>/tls/status.json` so `reelbox doctor`, a separate process,
//! can read it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::TlsMode;

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertSummary {
    /// The names the certificate is valid for (subject alternative names, else the common name).
    pub names: Vec<String>,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsStatus {
    /// `off`, `acme`, `files` or `self-signed`.
    pub mode: String,
    pub cert: Option<CertSummary>,
    /// When a new certificate was last put in use while running (ACME order, files reloaded), unix seconds.
    pub last_renewal: Option<i64>,
    /// The last failure (ordering, reloading) and when, unix seconds; cleared by the next success.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// The shared, live status. Cheap to clone.
#[derive(Clone, Default)]
pub struct StatusHandle {
    inner: Arc<Mutex<TlsStatus>>,
    file: Arc<Mutex<Option<PathBuf>>>,
}

impl StatusHandle {
    /// Persist every change to `<data>/tls/status.json` from now on.
    pub fn persist_to(&self, data: &Path) {
        if let Ok(mut f) = self.file.lock() {
            *f = Some(super::tls_dir(data).join(STATUS_FILE));
        }
        self.update(|_| {});
    }

    pub fn get(&self) -> TlsStatus {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_mode(&self, mode: TlsMode) {
        self.update(|s| s.mode = mode.as_str().to_string());
    }

    /// A certificate is in use; `renewed` when it replaced another while running.
    pub fn certificate(&self, cert: Option<CertSummary>, renewed: bool) {
        let now = chrono::Utc::now().timestamp();
        self.update(|s| {
            s.cert = cert;
            if renewed {
                s.last_renewal = Some(now);
            }
            s.last_error = None;
            s.last_error_at = None;
        });
    }

    pub fn error(&self, message: String) {
        let now = chrono::Utc::now().timestamp();
        self.update(|s| {
            s.last_error = Some(message);
            s.last_error_at = Some(now);
        });
    }

    fn update(&self, change: impl FnOnce(&mut TlsStatus)) {
        let snapshot = match self.inner.lock() {
            Ok(mut s) => {
                change(&mut s);
                s.clone()
            }
            Err(_) => return,
        };
        let path = self.file.lock().ok().and_then(|f| f.clone());
        if let Some(path) = path {
            match serde_json::to_vec_pretty(&snapshot) {
                Ok(bytes) => {
                    if let Err(e) = super::write_atomic(&path, &bytes, false) {
                        tracing::warn!(error = %e, "cannot record the TLS status");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode the TLS status"),
            }
        }
    }
}

/// The status the last running server recorded in `data`, if any.
pub fn read_recorded(data: &Path) -> Option<TlsStatus> {
    let bytes = std::fs::read(super::tls_dir(data).join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Names, issuer and validity of a DER certificate.
pub fn summarize(der: &[u8]) -> Option<CertSummary> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                    16 => <[u8; 16]>::try_from(*ip).ok().map(|b| std::net::Ipv6Addr::from(b).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names =
            cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(String::from).collect();
    }
    Some(CertSummary {
        names,
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// A one-line description for people: "media.school.example, expires 2027-01-01 (36 days), issued by …".
pub fn describe(status: &TlsStatus, now: i64) -> String {
    match &status.cert {
        None => format!("{}: no certificate in use yet", status.mode),
        Some(c) => {
            let days = (c.not_after - now).div_euclid(86_400);
            let expiry = crate::clock::format_utc(c.not_after);
            let when = if c.not_after <= now { "expired".to_string() } else { format!("{days} days left") };
            format!(
                "{}: {} — expires {expiry} ({when}); issued by {}",
                status.mode,
                c.names.join(", "),
                c.issuer
            )
        }
    }
}
