//! reelbox: a self-hosted media platform for schools. The binary in `main.rs` is a thin shell
//! over this library, which the integration tests use too.

pub mod accounts;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod ingest;
pub mod insights;
pub mod library;
pub mod ops;
pub mod replica;
pub mod replication;
pub mod store;
pub mod tls;
pub mod transcode;
pub mod web;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use accounts::Hasher;
use accounts::login::SetupLink;
use clock::Clock;
use config::Config;
use db::Db;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a request handler or a background task needs, cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    /// Originals and derived files, by SHA-256.
    pub store: store::BlobStore,
    /// Resumable uploads in progress.
    pub uploads: ingest::tus::Uploads,
    pub clock: Clock,
    pub hasher: Hasher,
    pub setup: SetupLink,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub started: Instant,
    pub caches: web::cache::Caches,
    /// The key of signed media URLs (`?t=`), read from the data directory on first use.
    pub media_url_key: web::media_files::signed::UrlKey,
    /// HTTPS status (mode, certificate, renewals, errors) for the dashboard.
    pub tls: tls::StatusHandle,
    /// The WAL shipper, when a backup target is configured (set once by `serve`).
    pub replication: std::sync::OnceLock<Arc<replication::Shipper>>,
    /// What the backup of media and server files has done (set when it starts).
    pub backup: std::sync::OnceLock<backup::StatusHandle>,
    /// This node's role in the primary/replica pair, its epoch and replication progress.
    pub replica: replica::Node,
    /// `is_https`, worked out once: every request asks (cookie name, HSTS).
    https: bool,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    pub fn new(
        config: Config,
        db: Db,
        store: store::BlobStore,
        uploads: ingest::tus::Uploads,
        clock: Clock,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<App, argon2::Error> {
        let hasher = Hasher::new(&config.passwords)?;
        let replica = replica::Node::new(&config);
        let https = config.base_url().starts_with("https://");
        Ok(App(Arc::new(AppInner {
            config,
            db,
            store,
            uploads,
            clock,
            hasher,
            setup: SetupLink::default(),
            metrics,
            started: Instant::now(),
            caches: web::cache::Caches::default(),
            media_url_key: Default::default(),
            tls: Default::default(),
            replication: std::sync::OnceLock::new(),
            backup: std::sync::OnceLock::new(),
            replica,
            https,
        })))
    }

    /// Whether links and cookies are for HTTPS (`__Host-` cookie prefix, `Secure`, HSTS).
    pub fn is_https(&self) -> bool {
        self.https
    }
}
