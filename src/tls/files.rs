//! Certificate and key from PEM files (a school's own CA, or the self-signed pair), re-read when
//! either file changes on disk: new connections get the new certificate, no restart needed.
//!
//! The check is a `stat` of both files at most once a second, done on the handshake path. A
//! replacement that is half done (new certificate, old key) or unreadable keeps the old pair in
//! use and is retried on the next check; the failure shows in the TLS status.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{StatusHandle, TlsError, status};

const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of the pair on disk.
type Stamp = [(Option<SystemTime>, u64); 2];

pub struct ReloadingResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    status: StatusHandle,
    state: Mutex<State>,
}

struct State {
    current: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

impl std::fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

fn stamp(path: &Path) -> (Option<SystemTime>, u64) {
    match std::fs::metadata(path) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    }
}

/// Read a certificate chain and its key, and check they belong together.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(cert_path).map_err(|source| TlsError::Read {
        what: "certificate",
        path: cert_path.into(),
        source,
    })?;
    let key_pem = std::fs::read(key_path).map_err(|source| TlsError::Read {
        what: "private key",
        path: key_path.into(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>().map_err(|e| {
            TlsError::BadPem { what: "certificate", path: cert_path.into(), detail: e.to_string() }
        })?;
    if chain.is_empty() {
        return Err(TlsError::BadPem {
            what: "certificate",
            path: cert_path.into(),
            detail: "no BEGIN CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadPem {
        what: "private key",
        path: key_path.into(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &super::policy::provider()).map_err(|e| TlsError::Mismatch {
        cert: cert_path.into(),
        key: key_path.into(),
        detail: e.to_string(),
    })
}

fn summary(key: &CertifiedKey) -> Option<status::CertSummary> {
    key.cert.first().and_then(|c| status::summarize(c))
}

impl ReloadingResolver {
    /// Load the pair now; an error here stops the server with the reason.
    pub fn open(cert_path: PathBuf, key_path: PathBuf, status: StatusHandle) -> Result<Self, TlsError> {
        let stamp_now = [stamp(&cert_path), stamp(&key_path)];
        let current = Arc::new(load_pair(&cert_path, &key_path)?);
        status.certificate(summary(&current), false);
        Ok(ReloadingResolver {
            cert_path,
            key_path,
            status,
            state: Mutex::new(State { current, stamp: stamp_now, checked: Instant::now() }),
        })
    }

    /// The pair to use now, re-read first when the files changed since the last look.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().ok()?;
        if state.checked.elapsed() < CHECK_EVERY {
            return Some(state.current.clone());
        }
        state.checked = Instant::now();
        let now = [stamp(&self.cert_path), stamp(&self.key_path)];
        if now == state.stamp {
            return Some(state.current.clone());
        }
        match load_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => {
                state.current = Arc::new(pair);
                state.stamp = now;
                tracing::info!(cert = %self.cert_path.display(), "certificate files changed: new connections use the new certificate");
                self.status.certificate(summary(&state.current), true);
            }
            Err(e) => {
                // Keep serving the old pair; the stamp stays old so the next check tries again.
                tracing::warn!(error = %e, "certificate files changed but cannot be used yet; still serving the previous certificate");
                self.status.error(e.to_string());
            }
        }
        Some(state.current.clone())
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}
