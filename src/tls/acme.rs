//! `acme`: certificates from an ACME CA (Let's Encrypt by default) through rustls-acme, proving
//! control of the names with TLS-ALPN-01 on the HTTPS port itself, so only 443 must be reachable.
//!
//! The account key and the certificate are cached under `<data>/tls/acme/` (owner-only files,
//! written atomically): a restart reuses both, so no new account is registered and no certificate
//! is ordered while the cached one is fresh. rustls-acme renews when two thirds of the validity
//! have passed, while the server runs; the resolver switches to the new certificate at once.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::ResolvesServerCert;
use rustls_acme::{AccountCache, AcmeConfig, AcmeState, CertCache, EventOk};
use sha2::{Digest, Sha256};

use super::{StatusHandle, TlsError, status};
use crate::config::Config;

/// Files of the ACME cache, under `<data>/tls/acme/`.
pub struct DirCache {
    dir: PathBuf,
    /// The certificate PEM last loaded or stored, to describe it in the status.
    last: Mutex<Option<Vec<u8>>>,
}

fn file_name(prefix: &str, parts: &[String], directory: &str) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.update(directory.as_bytes());
    format!("{prefix}-{}.pem", &hex::encode(h.finalize())[..16])
}

impl DirCache {
    pub fn new(dir: PathBuf) -> Self {
        DirCache { dir, last: Mutex::new(None) }
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        super::write_atomic(&self.dir.join(name), bytes, true).map_err(io::Error::other)
    }

    fn remember(&self, pem: &[u8]) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(pem.to_vec());
        }
    }

    /// The summary of the certificate last loaded or stored.
    fn last_summary(&self) -> Option<status::CertSummary> {
        let pem = self.last.lock().ok()?.clone()?;
        let leaf = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
        status::summarize(&leaf)
    }
}

#[async_trait::async_trait]
impl CertCache for DirCache {
    type EC = io::Error;
    async fn load_cert(&self, domains: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, io::Error> {
        let found = self.read(&file_name("cert", domains, directory_url))?;
        if let Some(pem) = &found {
            self.remember(pem);
        }
        Ok(found)
    }
    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> Result<(), io::Error> {
        self.remember(cert);
        self.write(&file_name("cert", domains, directory_url), cert)
    }
}

#[async_trait::async_trait]
impl AccountCache for DirCache {
    type EA = io::Error;
    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, io::Error> {
        self.read(&file_name("account", contact, directory_url))
    }
    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> Result<(), io::Error> {
        self.write(&file_name("account", contact, directory_url), account)
    }
}

/// Orders, caches and renews; run it with `tokio::spawn(driver.run())`.
pub struct Driver {
    state: AcmeState<io::Error, io::Error>,
    cache: Arc<DirCache>,
    status: StatusHandle,
}

/// A cache shared between the ACME state (which owns a boxed cache) and the driver.
struct SharedCache(Arc<DirCache>);

#[async_trait::async_trait]
impl CertCache for SharedCache {
    type EC = io::Error;
    async fn load_cert(&self, d: &[String], u: &str) -> Result<Option<Vec<u8>>, io::Error> {
        self.0.load_cert(d, u).await
    }
    async fn store_cert(&self, d: &[String], u: &str, c: &[u8]) -> Result<(), io::Error> {
        self.0.store_cert(d, u, c).await
    }
}

#[async_trait::async_trait]
impl AccountCache for SharedCache {
    type EA = io::Error;
    async fn load_account(&self, c: &[String], u: &str) -> Result<Option<Vec<u8>>, io::Error> {
        self.0.load_account(c, u).await
    }
    async fn store_account(&self, c: &[String], u: &str, a: &[u8]) -> Result<(), io::Error> {
        self.0.store_account(c, u, a).await
    }
}

/// The TLS client used to talk to the ACME server: the public web roots plus the extra CA
/// (`tls.acme_ca_file`), for a school's own ACME server or a test CA.
fn client_config(cfg: &Config) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = &cfg.tls.acme_ca_file {
        let pem = std::fs::read(path).map_err(|source| TlsError::Read {
            what: "ACME CA certificate",
            path: path.clone(),
            source,
        })?;
        let mut added = 0;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|e| TlsError::BadPem {
                what: "CA certificate",
                path: path.clone(),
                detail: e.to_string(),
            })?;
            roots.add(der)?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::BadPem {
                what: "CA certificate",
                path: path.clone(),
                detail: "no BEGIN CERTIFICATE block".into(),
            });
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(super::policy::provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The resolver for the HTTPS listener and the driver that fills it.
pub fn start(cfg: &Config, status: StatusHandle) -> Result<(Arc<dyn ResolvesServerCert>, Driver), TlsError> {
    let dir = super::tls_dir(&cfg.data_dir).join("acme");
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Write { path: dir.clone(), source })?;
    let cache = Arc::new(DirCache::new(dir));
    let state = AcmeConfig::new_with_client_config(&cfg.tls.domains, client_config(cfg)?)
        .directory(&cfg.tls.acme_directory)
        .contact(cfg.tls.acme_contact.iter().map(|e| format!("mailto:{e}")))
        .cache(SharedCache(cache.clone()))
        .state();
    let resolver: Arc<dyn ResolvesServerCert> = state.resolver();
    tracing::info!(directory = %cfg.tls.acme_directory, domains = ?cfg.tls.domains, "ACME: certificates by TLS-ALPN-01 on the HTTPS port");
    Ok((resolver, Driver { state, cache, status }))
}

impl Driver {
    /// Run until the server stops: each event updates the status and the log.
    pub async fn run(mut self) {
        while let Some(event) = self.state.next().await {
            match event {
                Ok(EventOk::DeployedCachedCert) => {
                    let summary = self.cache.last_summary();
                    log_cert("ACME: using the cached certificate", summary.as_ref());
                    self.status.certificate(summary, false);
                }
                Ok(EventOk::DeployedNewCert) => tracing::info!("ACME: new certificate in use"),
                Ok(EventOk::CertCacheStore) => {
                    let summary = self.cache.last_summary();
                    log_cert("ACME: certificate issued and cached", summary.as_ref());
                    self.status.certificate(summary, true);
                }
                Ok(EventOk::AccountCacheStore) => {
                    tracing::info!("ACME: new account key created and cached")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ACME: certificate order failed; retrying with backoff");
                    self.status.error(e.to_string());
                }
            }
        }
    }
}

fn log_cert(what: &str, summary: Option<&status::CertSummary>) {
    match summary {
        Some(s) => tracing::info!(
            names = %s.names.join(","),
            expires = %crate::clock::format_utc(s.not_after),
            "{what}"
        ),
        None => tracing::info!("{what}"),
    }
}
