//! One `Config` for the whole server: built-in defaults < TOML file < `REELBOX_*` environment < flags.
//!
//! Every layer is checked against the same struct with unknown keys denied, so a typo in the
//! file or in an environment variable stops the server with the file (or variable), the key and
//! what is allowed, instead of being silently ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Where the configuration file lives when `--config` is not given (used only if it exists).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/reelbox/reelbox.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} cannot be read: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: {key}: {message}")]
    BadValue { key: &'static str, message: String },
    #[error("secret file {path} for `{key}` cannot be read: {source}")]
    SecretFile { key: &'static str, path: PathBuf, source: std::io::Error },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Unreadable { .. } => "config-unreadable",
            ConfigError::Invalid(_) | ConfigError::BadValue { .. } => "config-invalid",
            ConfigError::SecretFile { .. } => "config-secret-file",
        }
    }
}

/// A secret value: never printed by `Debug` or `config show`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(Option<String>);

impl Secret {
    pub fn new(value: Option<String>) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "\"<redacted>\"" } else { "None" })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the database, blobs and uploads.
    pub data_dir: PathBuf,
    /// Address the web server binds, `HOST:PORT`.
    pub listen: String,
    /// The address people use to reach this server, e.g. `https://media.school.example`.
    /// Used in printed links and to check the `Origin` of form posts. Derived from `listen` when unset.
    pub public_url: Option<String>,
    /// Shown on pages, e.g. "Hillside Academy".
    pub school_name: String,
    /// Whom people should ask for access, shown to accounts that have no grants yet.
    pub access_contact: String,
    pub sessions: SessionConfig,
    pub passwords: PasswordConfig,
    pub login: LoginConfig,
    pub limits: LimitConfig,
    pub uploads: UploadConfig,
    pub library: LibraryConfig,
    pub transcode: TranscodeConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub embed: EmbedConfig,
    /// HTTPS: where the certificate comes from and the listeners (`[tls]`, src/tls).
    pub tls: TlsConfig,
    /// The backup target and what is copied there (`[backup]`).
    pub backup: BackupConfig,
    /// WAL shipping of the database to the backup target (`[replication]`).
    pub replication: ReplicationConfig,
    /// This node's role in a primary/replica pair (`[replica]`, src/replica).
    pub replica: crate::replica::config::ReplicaConfig,
    /// The file this configuration was read from (backed up daily by `backup::files`).
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session ends after this many minutes without a request.
    pub idle_timeout_minutes: u32,
    /// A session ends this many hours after sign-in, whatever happens.
    pub absolute_lifetime_hours: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Argon2id memory cost in KiB (OWASP minimum 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP minimum 2 at 19 MiB).
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Minimum password length in characters.
    pub min_length: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failures for one account before sign-in slows down (exponential backoff).
    pub free_failures: u32,
    /// Hard cap of failed sign-ins per account per hour.
    pub max_failures_per_hour: u32,
    /// Failures from one client address before it slows down.
    pub free_failures_per_address: u32,
    /// Longest wait imposed by backoff, in seconds.
    pub max_backoff_seconds: u32,
    /// How long a first-run setup link stays valid, in minutes.
    pub setup_link_minutes: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// Largest JSON or form body accepted, in bytes.
    pub max_form_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Largest file accepted, in bytes (checked before any byte is written).
    pub max_size_bytes: u64,
    /// Resumable uploads untouched for this many hours are removed with their bytes.
    pub expire_hours: u32,
    /// Kinds of media people may upload: any of `video`, `audio`, `image`, `document`.
    pub allowed_kinds: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryConfig {
    /// Permanently deleted (archived) items are kept this many days, then purged with their bytes.
    pub archive_days: u32,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        LibraryConfig { archive_days: 90 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    /// Transcoding jobs run at once; 0 means half the CPU cores, at least 1.
    pub workers: u32,
    /// The ffmpeg program: a path, or a name looked up on `PATH`.
    pub ffmpeg: PathBuf,
    /// The ffprobe program: a path, or a name looked up on `PATH`.
    pub ffprobe: PathBuf,
    /// Attempts before a job that keeps failing for a passing reason (killed, disk full) is failed.
    pub max_attempts: u32,
    /// x264 preset for the ladder (`ultrafast` .. `slow`): speed against size.
    pub preset: String,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            workers: 0,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            max_attempts: 3,
            preset: "veryfast".into(),
        }
    }
}

impl TranscodeConfig {
    /// The number of workers to start.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) / 2).max(1),
            n => n as usize,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` to requests from the loopback interface without a token.
    pub allow_loopback: bool,
    /// A bearer token a Prometheus scraper may use (admins' API tokens work too).
    pub token: Secret,
    /// File holding `token` (takes the place of `token`).
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// Sites that may show `/embed/{id}` in an iframe (CSP `frame-ancestors` sources):
    /// `'self'`, or origins such as `https://moodle.school.example` (`https://*.school.example`).
    pub allowed_origins: Vec<String>,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig { allowed_origins: vec!["'self'".into()] }
    }
}

impl EmbedConfig {
    /// Whether `s` is a source `frame-ancestors` may list: `'self'`, or `http(s)://host[:port]`
    /// where the host may start with `*.`. Nothing that could end the directive or add another.
    pub fn valid_source(s: &str) -> bool {
        if s == "'self'" {
            return true;
        }
        let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) else {
            return false;
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host = host.strip_prefix("*.").unwrap_or(host);
        !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

// --- TLS (src/tls) ---------------------------------------------------------------------------

/// Where the HTTPS certificate comes from; `off` serves plain HTTP on `listen`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    #[default]
    Off,
    Acme,
    Files,
    SelfSigned,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Acme => "acme",
            TlsMode::Files => "files",
            TlsMode::SelfSigned => "self-signed",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `off` (plain HTTP on `listen`, development only), `acme`, `files` or `self-signed`.
    pub mode: TlsMode,
    /// Address of the HTTPS listener when `mode` is not `off`.
    pub https: String,
    /// Address of the plain-HTTP listener that only redirects to HTTPS, or `off`.
    pub http: String,
    /// `files`: the certificate chain (PEM), re-read when it changes.
    pub cert_file: Option<PathBuf>,
    /// `files`: the private key (PEM), re-read when it changes.
    pub key_file: Option<PathBuf>,
    /// `acme` (and the names of a `self-signed` certificate): the host names to serve.
    pub domains: Vec<String>,
    /// `acme`: the directory URL of the ACME CA.
    pub acme_directory: String,
    /// `acme`: an extra CA certificate (PEM) trusted when talking to the ACME server.
    pub acme_ca_file: Option<PathBuf>,
    /// `acme`: e-mail addresses the CA may write to about the certificates.
    pub acme_contact: Vec<String>,
}

pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::Off,
            https: "[::]:443".into(),
            http: "[::]:80".into(),
            cert_file: None,
            key_file: None,
            domains: Vec::new(),
            acme_directory: LETS_ENCRYPT_DIRECTORY.into(),
            acme_ca_file: None,
            acme_contact: Vec::new(),
        }
    }
}

impl TlsConfig {
    /// The redirect listener's address, if there is one.
    pub fn http_addr(&self) -> Option<&str> {
        (self.mode != TlsMode::Off && self.http != "off").then_some(self.http.as_str())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::BadValue { key, message: message.into() }
        }
        if self.mode == TlsMode::Off {
            return Ok(());
        }
        if self.https.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "tls.https",
                format!("`{}` is not HOST:PORT; use for example `[::]:443` or `127.0.0.1:8443`", self.https),
            ));
        }
        if self.http != "off" && self.http.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "tls.http",
                format!("`{}` is not HOST:PORT or `off`; use for example `[::]:80`", self.http),
            ));
        }
        if let Some(bad_name) = self.domains.iter().find(|d| !valid_domain(d)) {
            return Err(bad(
                "tls.domains",
                format!("`{bad_name}` is not a host name like media.school.example"),
            ));
        }
        match self.mode {
            TlsMode::Files if self.cert_file.is_none() || self.key_file.is_none() => Err(bad(
                "tls.cert_file",
                "`files` mode needs both tls.cert_file and tls.key_file (PEM files; --cert-file and --key-file)",
            )),
            TlsMode::Acme if self.domains.is_empty() => Err(bad(
                "tls.domains",
                "`acme` mode needs at least one host name that points at this server (--domain media.school.example)",
            )),
            TlsMode::Acme if !self.acme_directory.starts_with("https://") => {
                Err(bad("tls.acme_directory", format!("`{}` must be an https:// URL", self.acme_directory)))
            }
            _ => Ok(()),
        }
    }
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// TLS settings given as flags to `serve`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TlsOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_ca_file: Option<PathBuf>,
}

// --- end TLS ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `reelbox=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            school_name: "reelbox".into(),
            access_contact: "your school's IT administrator".into(),
            sessions: SessionConfig::default(),
            passwords: PasswordConfig::default(),
            login: LoginConfig::default(),
            limits: LimitConfig::default(),
            uploads: UploadConfig::default(),
            library: LibraryConfig::default(),
            transcode: TranscodeConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            embed: EmbedConfig::default(),
            tls: TlsConfig::default(),
            backup: BackupConfig::default(),
            replication: ReplicationConfig::default(),
            replica: Default::default(),
            source_file: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { idle_timeout_minutes: 60, absolute_lifetime_hours: 12 }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            min_length: 12,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            free_failures: 5,
            max_failures_per_hour: 100,
            free_failures_per_address: 20,
            max_backoff_seconds: 900,
            setup_link_minutes: 60,
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig { max_form_bytes: 256 * 1024 }
    }
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_size_bytes: 50 * 1024 * 1024 * 1024,
            expire_hours: 24,
            allowed_kinds: ["video", "audio", "image", "document"].map(String::from).to_vec(),
        }
    }
}

impl UploadConfig {
    /// The allowed kinds, parsed (validation has refused unknown names).
    pub fn kinds(&self) -> Vec<crate::library::media::MediaKind> {
        self.allowed_kinds.iter().filter_map(|k| crate::library::media::MediaKind::parse(k)).collect()
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { allow_loopback: true, token: Secret::default(), token_file: None }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

// --- backup (media and files: src/backup/) ---
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A directory target (a mounted volume); `--backup-dir` on `serve`.
    pub dir: Option<PathBuf>,
    /// Blobs whose items were purged stay in the target this many days, then are deleted there.
    pub media_keep_days: u32,
    /// Daily copies of the configuration and server files are kept this many days.
    pub files_keep_days: u32,
    /// Minutes between reconciliation walks (local blobs and renditions against the target).
    pub media_check_minutes: u32,
    /// Every target copy is read back and re-hashed this often (days; 0: at every walk).
    pub media_verify_days: u32,
    /// An S3-compatible target instead of `dir`: `s3://bucket/prefix` (needs the `aws` build
    /// feature; credentials from the standard AWS environment variables).
    pub url: Option<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: None,
            media_keep_days: 90,
            files_keep_days: 30,
            media_check_minutes: 60,
            media_verify_days: 7,
            url: None,
        }
    }
}
// --- end backup ---

// --- replication (WAL shipping of the database: src/replication/) ---
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Hours between database snapshots in the target (one is also taken at every new generation).
    pub snapshot_hours: u32,
    /// Days of database history kept restorable in the target.
    pub retention_days: u32,
    /// Seconds from commit to the target above which the dashboard raises an alarm.
    pub lag_alarm_seconds: u32,
    /// WAL size (MiB) past which shipped frames are checkpointed with TRUNCATE.
    pub wal_truncate_mib: u32,
    /// Records in the target smaller than this (KiB) are merged into larger ones.
    pub compact_below_kib: u32,
    /// Seconds between checks that the target still holds the newest snapshot uploaded; when it
    /// is gone (an emptied bucket), a new generation starts from a full snapshot.
    pub target_check_seconds: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            snapshot_hours: 24,
            retention_days: 30,
            lag_alarm_seconds: 60,
            wal_truncate_mib: 64,
            compact_below_kib: 1024,
            target_check_seconds: 600,
        }
    }
}
// --- end replication ---

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOverrides>,
    /// `serve --backup-dir`, nested as `backup.dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupDirOverride>,
    #[serde(skip_serializing_if = "crate::replica::config::ReplicaOverrides::is_empty")]
    pub replica: crate::replica::config::ReplicaOverrides,
}

/// `--backup-dir` in the shape of the `[backup]` table, so it merges over the file's.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BackupDirOverride {
    pub dir: PathBuf,
}

/// Which file the configuration came from, for messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
}

impl Config {
    /// Load from `file` (or the default path when it exists), the environment and `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
        Self::load_with_env(file, overrides, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let file = match file {
            Some(path) => {
                // Read it ourselves first so a missing or unreadable file is reported as such,
                // not as "empty configuration".
                std::fs::metadata(path)
                    .map_err(|source| ConfigError::Unreadable { path: path.into(), source })?;
                Some(path.to_path_buf())
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_PATH);
                default.exists().then(|| default.to_path_buf())
            }
        };
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("REELBOX_") && !NOT_CONFIG_ENV.contains(&k.as_str()))
            .collect();

        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Unreadable { path: path.clone(), source })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env_provider(&env));
        figment = figment.merge(Serialized::defaults(overrides));
        let mut config: Config = figment.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.source_file = file.clone();
        config.resolve_secret_files()?;
        config.validate()?;
        Ok(Loaded { config, file })
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.metrics.token_file {
            if self.metrics.token.is_set() {
                return Err(ConfigError::BadValue {
                    key: "metrics.token_file",
                    message: "set either `metrics.token` or `metrics.token_file`, not both".into(),
                });
            }
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
                key: "metrics.token_file",
                path: path.clone(),
                source,
            })?;
            self.metrics.token = Secret::new(Some(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        self.replica.resolve_secret()?;
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::BadValue { key, message: message.into() }
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "listen",
                format!("`{}` is not HOST:PORT; use for example `127.0.0.1:8080` or `[::]:443`", self.listen),
            ));
        }
        if let Some(url) = &self.public_url
            && (!(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/'))
        {
            return Err(bad(
                "public_url",
                format!("`{url}` must start with http:// or https:// and have no trailing slash"),
            ));
        }
        if self.sessions.idle_timeout_minutes == 0 {
            return Err(bad("sessions.idle_timeout_minutes", "must be at least 1"));
        }
        if self.sessions.absolute_lifetime_hours == 0 {
            return Err(bad("sessions.absolute_lifetime_hours", "must be at least 1"));
        }
        if self.passwords.argon2_memory_kib < 19_456 {
            return Err(bad("passwords.argon2_memory_kib", "must be at least 19456 (OWASP minimum, 19 MiB)"));
        }
        if self.passwords.argon2_iterations < 2 {
            return Err(bad("passwords.argon2_iterations", "must be at least 2"));
        }
        if !(1..=16).contains(&self.passwords.argon2_parallelism) {
            return Err(bad("passwords.argon2_parallelism", "must be between 1 and 16"));
        }
        if self.passwords.min_length < 12 {
            return Err(bad("passwords.min_length", "must be at least 12"));
        }
        if self.login.max_failures_per_hour == 0 || self.login.max_failures_per_hour > 100 {
            return Err(bad("login.max_failures_per_hour", "must be between 1 and 100"));
        }
        if self.limits.max_form_bytes < 1024 {
            return Err(bad("limits.max_form_bytes", "must be at least 1024"));
        }
        if self.uploads.max_size_bytes == 0 {
            return Err(bad("uploads.max_size_bytes", "must be at least 1"));
        }
        if !(1..=24 * 90).contains(&self.uploads.expire_hours) {
            return Err(bad("uploads.expire_hours", "must be between 1 and 2160 (90 days)"));
        }
        if !(1..=3650).contains(&self.library.archive_days) {
            return Err(bad("library.archive_days", "must be between 1 and 3650 (ten years)"));
        }
        if !(1..=3650).contains(&self.backup.media_keep_days) {
            return Err(bad("backup.media_keep_days", "must be between 1 and 3650 (ten years)"));
        }
        if !(1..=3650).contains(&self.backup.files_keep_days) {
            return Err(bad("backup.files_keep_days", "must be between 1 and 3650 (ten years)"));
        }
        if !(1..=24 * 60).contains(&self.backup.media_check_minutes) {
            return Err(bad("backup.media_check_minutes", "must be between 1 and 1440 (a day)"));
        }
        if self.backup.media_verify_days > 365 {
            return Err(bad("backup.media_verify_days", "must be between 0 (every walk) and 365"));
        }
        if !(1..=3650).contains(&self.replication.retention_days) {
            return Err(bad("replication.retention_days", "must be between 1 and 3650 (ten years)"));
        }
        if !(1..=86_400).contains(&self.replication.target_check_seconds) {
            return Err(bad("replication.target_check_seconds", "must be between 1 and 86400 (a day)"));
        }
        if !(1..=24 * 365).contains(&self.replication.snapshot_hours) {
            return Err(bad("replication.snapshot_hours", "must be between 1 and 8760 (a year)"));
        }
        if self.backup.dir.is_some() && self.backup.url.is_some() {
            return Err(bad("backup.url", "give either backup.dir or backup.url, not both"));
        }
        if self.transcode.workers > 64 {
            return Err(bad("transcode.workers", "must be between 0 (half the cores) and 64"));
        }
        if !(1..=10).contains(&self.transcode.max_attempts) {
            return Err(bad("transcode.max_attempts", "must be between 1 and 10"));
        }
        const PRESETS: [&str; 8] =
            ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"];
        if !PRESETS.contains(&self.transcode.preset.as_str()) {
            return Err(bad(
                "transcode.preset",
                format!(
                    "`{}` is not an x264 preset; use one of {}",
                    self.transcode.preset,
                    PRESETS.join(", ")
                ),
            ));
        }
        if self.uploads.allowed_kinds.is_empty() {
            return Err(bad(
                "uploads.allowed_kinds",
                "must name at least one of video, audio, image, document",
            ));
        }
        if let Some(k) =
            self.uploads.allowed_kinds.iter().find(|k| crate::library::media::MediaKind::parse(k).is_none())
        {
            return Err(bad(
                "uploads.allowed_kinds",
                format!("`{k}` is not a kind of media; use any of video, audio, image, document"),
            ));
        }
        if let Some(bad_source) = self.embed.allowed_origins.iter().find(|s| !EmbedConfig::valid_source(s)) {
            return Err(bad(
                "embed.allowed_origins",
                format!(
                    "`{bad_source}` is not an origin; use 'self' or e.g. \"https://moodle.school.example\" \
                     (scheme and host, optionally *. and a port, no path)"
                ),
            ));
        }
        self.tls.validate()?;
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return Err(bad(
                "log.level",
                format!("`{}` is not a log filter ({e}); use e.g. `info`", self.log.level),
            ));
        }
        self.replica.validate()?;
        Ok(())
    }

    /// The base URL printed in links: `public_url`, or derived from `listen` (`tls.https` with TLS on).
    pub fn base_url(&self) -> String {
        let listen = if self.tls.mode == TlsMode::Off { &self.listen } else { &self.tls.https };
        match listen.parse::<std::net::SocketAddr>() {
            Ok(addr) => self.base_url_for(addr),
            Err(_) => self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)),
        }
    }

    /// The base URL once the listener is bound (port 0 becomes the real port).
    pub fn base_url_for(&self, bound: std::net::SocketAddr) -> String {
        let scheme = if self.tls.mode == TlsMode::Off { "http" } else { "https" };
        match &self.public_url {
            Some(url) => url.clone(),
            None if bound.ip().is_unspecified() => format!("{scheme}://localhost:{}", bound.port()),
            None => format!("{scheme}://{bound}"),
        }
    }

    /// The effective configuration as TOML with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.metrics.token.is_set() {
            shown.metrics.token = Secret::new(Some("<redacted>".into()));
        }
        if shown.replica.secret.is_set() {
            shown.replica.secret = Secret::new(Some("<redacted>".into()));
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// Environment variables that steer the program (or its test suite, which `tests/run.sh`
/// exports) but are not configuration keys.
const NOT_CONFIG_ENV: &[&str] = &[
    "REELBOX_CONFIG",
    "REELBOX_CHROMEDRIVER",
    "REELBOX_CHROMIUM",
    "REELBOX_GECKODRIVER",
    "REELBOX_FIREFOX",
    "REELBOX_WEBKITDRIVER",
    "REELBOX_MINIBROWSER",
    "REELBOX_XVFB",
    "REELBOX_SKIP_MOUNT_TESTS",
];

/// `REELBOX_*` variables as a figment provider; `__` separates nesting levels
/// (`REELBOX_SESSIONS__IDLE_TIMEOUT_MINUTES=30`). Values that parse as numbers or booleans are
/// taken as such, the rest as strings.
struct EnvVars(Vec<(String, String)>);

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable(s) REELBOX_*")
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut root = toml::Table::new();
        for (key, raw) in &self.0 {
            let path: Vec<String> =
                key["REELBOX_".len()..].split("__").map(|p| p.to_ascii_lowercase()).collect();
            let value = if let Ok(i) = raw.parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Ok(b) = raw.parse::<bool>() {
                toml::Value::Boolean(b)
            } else {
                toml::Value::String(raw.clone())
            };
            let mut table = &mut root;
            for (i, part) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    table.insert(part.clone(), value.clone());
                } else {
                    let entry =
                        table.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    match entry {
                        toml::Value::Table(t) => table = t,
                        _ => {
                            return Err(figment::Error::from(format!(
                                "{key} conflicts with another variable"
                            )));
                        }
                    }
                }
            }
        }
        Serialized::defaults(root).data()
    }
}

fn env_provider(vars: &[(String, String)]) -> EnvVars {
    EnvVars(vars.to_vec())
}

/// A figment error in words a school's IT lead can act on: which key, where it came from, what is allowed.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() { None } else { Some(e.path.join(".")) };
            let source = e.metadata.as_ref().map(|m| match &m.source {
                Some(figment::Source::File(p)) => format!("file {}", p.display()),
                Some(figment::Source::Custom(s)) if m.name.contains("TOML") => format!("file {s}"),
                _ => m.name.to_string(),
            });
            let what = match &e.kind {
                figment::error::Kind::UnknownField(field, allowed) => {
                    format!("unknown key `{}`; allowed keys here are: {}", field, allowed.join(", "))
                }
                other => other.to_string(),
            };
            match (key, source) {
                (Some(k), Some(s)) => format!("{s}: key `{k}`: {what}"),
                (Some(k), None) => format!("key `{k}`: {what}"),
                (None, Some(s)) => format!("{s}: {what}"),
                (None, None) => what,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let loaded = Config::load_with_env(None, &Overrides::default(), Vec::new()).expect("defaults load");
        assert_eq!(loaded.config.listen, "127.0.0.1:8080");
        assert_eq!(loaded.config.data_dir, PathBuf::from("./data"));
        assert_eq!(loaded.config.sessions.idle_timeout_minutes, 60);
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let f = write(
            "listen = \"127.0.0.1:9000\"\nschool_name = \"Hillside\"\n[sessions]\nidle_timeout_minutes = 30\n",
        );
        let env = vec![("REELBOX_SESSIONS__IDLE_TIMEOUT_MINUTES".to_string(), "45".to_string())];
        let flags = Overrides { listen: Some("127.0.0.1:9100".into()), ..Default::default() };
        let c = Config::load_with_env(Some(f.path()), &flags, env).expect("loads").config;
        assert_eq!(c.school_name, "Hillside");
        assert_eq!(c.sessions.idle_timeout_minutes, 45);
        assert_eq!(c.listen, "127.0.0.1:9100");
    }

    #[test]
    fn unknown_key_names_file_key_and_allowed() {
        let f = write("[sessions]\nidle_timout_minutes = 30\n");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("unknown key is refused")
            .to_string();
        assert!(err.contains("idle_timout_minutes"), "{err}");
        assert!(err.contains("idle_timeout_minutes"), "lists allowed keys: {err}");
        assert!(err.contains(&f.path().display().to_string()), "names the file: {err}");
    }

    #[test]
    fn unknown_env_key_is_refused() {
        let env = vec![("REELBOX_LISTNE".to_string(), "x".to_string())];
        let err = Config::load_with_env(None, &Overrides::default(), env).expect_err("refused").to_string();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn bad_value_names_key() {
        let f = write("[sessions]\nidle_timeout_minutes = \"soon\"\n");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("bad type")
            .to_string();
        assert!(err.contains("sessions.idle_timeout_minutes"), "{err}");
        let f = write("listen = \"nowhere\"\n");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("bad listen")
            .to_string();
        assert!(err.contains("listen") && err.contains("HOST:PORT"), "{err}");
        let f = write("[passwords]\nargon2_memory_kib = 1024\n");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("weak argon2")
            .to_string();
        assert!(err.contains("19456"), "{err}");
    }

    #[test]
    fn upload_settings_default_and_validate() {
        let c = Config::load_with_env(None, &Overrides::default(), Vec::new()).expect("defaults").config;
        assert_eq!(c.uploads.max_size_bytes, 50 * 1024 * 1024 * 1024);
        assert_eq!(c.uploads.expire_hours, 24);
        assert_eq!(c.library.archive_days, 90);
        assert_eq!(c.uploads.kinds().len(), 4);
        let f = write("[uploads]\nallowed_kinds = [\"video\", \"spreadsheet\"]\n");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("unknown kind")
            .to_string();
        assert!(err.contains("uploads.allowed_kinds") && err.contains("spreadsheet"), "{err}");
        let env = vec![("REELBOX_UPLOADS__EXPIRE_HOURS".to_string(), "0".to_string())];
        let err =
            Config::load_with_env(None, &Overrides::default(), env).expect_err("zero hours").to_string();
        assert!(err.contains("uploads.expire_hours"), "{err}");
        let env = vec![("REELBOX_LIBRARY__ARCHIVE_DAYS".to_string(), "0".to_string())];
        let err = Config::load_with_env(None, &Overrides::default(), env).expect_err("zero days").to_string();
        assert!(err.contains("library.archive_days"), "{err}");
    }

    #[test]
    fn malformed_toml_is_reported_with_file() {
        let f = write("listen = \n[[[");
        let err = Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new())
            .expect_err("malformed")
            .to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn secrets_from_files_and_redacted() {
        let secret = write("s3cr3t-scrape-token\n");
        let f = write(&format!("[metrics]\ntoken_file = \"{}\"\n", secret.path().display()));
        let c =
            Config::load_with_env(Some(f.path()), &Overrides::default(), Vec::new()).expect("loads").config;
        assert_eq!(c.metrics.token.expose(), Some("s3cr3t-scrape-token"));
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Config::load_with_env(
            Some(Path::new("/nonexistent/reelbox.toml")),
            &Overrides::default(),
            Vec::new(),
        )
        .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/reelbox.toml"));
    }

    #[test]
    fn embed_origins_are_checked() {
        for ok in
            ["'self'", "https://moodle.school.example", "https://*.school.example", "http://localhost:8443"]
        {
            assert!(EmbedConfig::valid_source(ok), "{ok}");
        }
        for bad in [
            "*",
            "https://",
            "moodle.example",
            "https://a.example/path",
            "https://a.example; script-src *",
            "'none' x",
            "https://a..b",
        ] {
            assert!(!EmbedConfig::valid_source(bad), "{bad}");
        }
    }
}
