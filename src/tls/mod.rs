//! HTTPS: the rustls policy (TLS 1.2 and 1.3, AEAD suites with ECDHE only, X25519/P-256/P-384),
//! where certificates come from (`acme`, `files`, `self-signed`), the status shown to admins,
//! and the plain-HTTP listener that only redirects.
//!
//! Every mode ends in a `rustls::ServerConfig` whose certificate resolver can change the
//! certificate while the server runs (renewal, files replaced on disk), so no mode needs a restart.

pub mod acme;
pub mod files;
pub mod policy;
pub mod redirect;
pub mod self_signed;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, TlsMode};
use crate::error::{AppError, ErrorKind};

pub use status::{StatusHandle, TlsStatus};

/// Install aws-lc-rs as the process-wide rustls provider. Called first thing in `main`: with more
/// than one provider linked, rustls cannot choose by itself and some clients would panic.
pub fn install_crypto_provider() {
    // Err only means one is installed already (a second call), which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} holds no usable {what}: {detail}")]
    BadPem { what: &'static str, path: PathBuf, detail: String },
    #[error("the certificate {cert} and the key {key} do not belong together: {detail}")]
    Mismatch { cert: PathBuf, key: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot generate the self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS settings refused by rustls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("ACME: {0}")]
    Acme(String),
}

impl AppError for TlsError {
    fn code(&self) -> &'static str {
        match self {
            TlsError::Read { .. } => "tls-unreadable",
            TlsError::BadPem { .. } => "tls-bad-pem",
            TlsError::Mismatch { .. } => "tls-key-mismatch",
            TlsError::Write { .. } => "tls-write",
            TlsError::Generate(_) => "tls-generate",
            TlsError::Rustls(_) => "tls-rustls",
            TlsError::Acme(_) => "tls-acme",
        }
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
    fn user_message(&self) -> String {
        "The server's HTTPS certificate could not be loaded. Please tell your IT administrator.".into()
    }
}

/// Where this mode keeps its files: `<data>/tls/`.
pub fn tls_dir(data: &Path) -> PathBuf {
    data.join("tls")
}

/// What `serve` needs to listen on HTTPS.
pub struct Prepared {
    pub server_config: rustls::ServerConfig,
    /// Drives ACME ordering and renewal; spawn it on the runtime (acme mode only).
    pub driver: Option<acme::Driver>,
}

/// Build the TLS side of `serve` for `cfg.tls.mode` (not `off`).
pub fn prepare(cfg: &Config, status: &StatusHandle) -> Result<Prepared, TlsError> {
    status.set_mode(cfg.tls.mode);
    match cfg.tls.mode {
        TlsMode::Off => Err(TlsError::Acme("TLS is off; nothing to prepare".into())),
        TlsMode::Files => {
            let (cert, key) = match (&cfg.tls.cert_file, &cfg.tls.key_file) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                // Validation refuses this combination; keep a clear error anyway.
                _ => return Err(TlsError::Acme("files mode needs tls.cert_file and tls.key_file".into())),
            };
            let resolver = files::ReloadingResolver::open(cert, key, status.clone())?;
            Ok(Prepared { server_config: policy::server_config(Arc::new(resolver))?, driver: None })
        }
        TlsMode::SelfSigned => {
            let (cert, key) = self_signed::ensure(&cfg.data_dir, &cfg.tls.domains)?;
            let resolver = files::ReloadingResolver::open(cert, key, status.clone())?;
            Ok(Prepared { server_config: policy::server_config(Arc::new(resolver))?, driver: None })
        }
        TlsMode::Acme => {
            let (resolver, driver) = acme::start(cfg, status.clone())?;
            let mut server_config = policy::server_config(resolver)?;
            server_config.alpn_protocols.push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
            Ok(Prepared { server_config, driver: Some(driver) })
        }
    }
}

/// Write `bytes` to `path` through a temporary file and a rename, readable by the owner only
/// when `private` (keys), so a crash never leaves half a key or a world-readable one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true).mode(if private { 0o600 } else { 0o644 });
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}
