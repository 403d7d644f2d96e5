//! The `[replica]` section of the configuration: which role this node starts in, where its
//! primary is, and the shared secret that authenticates replication traffic.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Secret};

/// Shortest shared secret accepted (characters); `reelbox replica pair` writes 64 hex digits.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    /// `primary` (takes writes) or `replica` (follows `primary`, serves reads, forwards writes).
    /// This is the role at first start; after a promotion or a demotion the role recorded in
    /// `<data>/replica/state.json` wins.
    pub role: String,
    /// The primary's base URL, e.g. `https://media-a.school.example` (replicas only).
    pub primary: Option<String>,
    /// The other node's base URL, which a primary asks at start whether it was replaced
    /// (optional; a replica tells its primary its own URL when it follows).
    pub peer: Option<String>,
    /// This node's own base URL as its peer reaches it (sent to the primary when following).
    pub advertise_url: Option<String>,
    /// The secret shared by both nodes (set by `reelbox replica pair`).
    pub secret: Secret,
    /// File holding `secret` (takes the place of `secret`).
    pub secret_file: Option<PathBuf>,
    /// Allow `http://` to a primary that is not on a loopback address (not recommended: the
    /// replication feed then crosses the network unencrypted, though still authenticated).
    pub allow_plain_http: bool,
    /// Promote this replica by itself after the primary has been unreachable this many seconds;
    /// 0 (the default) leaves promotion to the administrator.
    pub auto_promote_after_seconds: u32,
    /// How long a write forwarded to the primary may wait until the replica has applied it, in
    /// milliseconds, before answering anyway (read-your-writes).
    pub read_your_writes_wait_ms: u32,
    /// A replica re-hashes every file it copied (original blobs and published renditions) this
    /// often, start to start, and copies again from the primary what no longer matches; 0 turns
    /// the scrub off. The first pass comes one interval after the first start.
    pub scrub_interval_seconds: u64,
    /// How fast the scrub reads, in bytes per second (at least 65536), so it never competes
    /// with viewers for the disk; a pass takes as long as the copy's size divided by this.
    pub scrub_bytes_per_second: u64,
}

/// One day between scrub passes.
pub const DEFAULT_SCRUB_INTERVAL_SECONDS: u64 = 24 * 3600;
/// 16 MiB/s: about 1.4 TB a day, a few per cent of one core for SHA-256.
pub const DEFAULT_SCRUB_BYTES_PER_SECOND: u64 = 16 * 1024 * 1024;
const MIN_SCRUB_BYTES_PER_SECOND: u64 = 64 * 1024;

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            role: "primary".into(),
            primary: None,
            peer: None,
            advertise_url: None,
            secret: Secret::default(),
            secret_file: None,
            allow_plain_http: false,
            auto_promote_after_seconds: 0,
            read_your_writes_wait_ms: 3000,
            scrub_interval_seconds: DEFAULT_SCRUB_INTERVAL_SECONDS,
            scrub_bytes_per_second: DEFAULT_SCRUB_BYTES_PER_SECOND,
        }
    }
}

/// Command-line flags of `reelbox serve` that land in `[replica]`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplicaOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

impl ReplicaOverrides {
    pub fn is_empty(&self) -> bool {
        self.role.is_none() && self.primary.is_none() && self.secret_file.is_none()
    }
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::BadValue { key, message: message.into() }
}

impl ReplicaConfig {
    pub fn is_replica(&self) -> bool {
        self.role == "replica"
    }

    pub(crate) fn resolve_secret(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.secret_file else { return Ok(()) };
        if self.secret.is_set() {
            return Err(bad(
                "replica.secret_file",
                "set either `replica.secret` or `replica.secret_file`, not both",
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
            key: "replica.secret_file",
            path: path.clone(),
            source,
        })?;
        self.secret = Secret::new(Some(text.trim().to_string()));
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.role.as_str(), "primary" | "replica") {
            return Err(bad(
                "replica.role",
                format!("`{}` is not a role; use `primary` or `replica`", self.role),
            ));
        }
        if let Some(s) = self.secret.expose()
            && s.len() < MIN_SECRET_LEN
        {
            return Err(bad(
                "replica.secret",
                format!(
                    "the replication secret must be at least {MIN_SECRET_LEN} characters; \
                     `reelbox replica pair` writes a good one"
                ),
            ));
        }
        for (key, url) in [("replica.primary", &self.primary), ("replica.peer", &self.peer)] {
            if let Some(url) = url {
                check_url(key, url, self.allow_plain_http)?;
            }
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("replica.advertise_url", format!("`{url}` must start with https:// or http://")));
        }
        if self.is_replica() {
            if self.primary.is_none() {
                return Err(bad(
                    "replica.primary",
                    "a replica needs its primary's URL: `--primary https://...` or `[replica] primary`",
                ));
            }
            if !self.secret.is_set() {
                return Err(bad(
                    "replica.secret",
                    "a replica needs the replication secret shared with its primary: \
                     `--replication-secret-file FILE` (written by `reelbox replica pair`)",
                ));
            }
        }
        if self.read_your_writes_wait_ms > 60_000 {
            return Err(bad("replica.read_your_writes_wait_ms", "must be at most 60000"));
        }
        if self.scrub_bytes_per_second < MIN_SCRUB_BYTES_PER_SECOND {
            return Err(bad(
                "replica.scrub_bytes_per_second",
                format!(
                    "must be at least {MIN_SCRUB_BYTES_PER_SECOND} (the default is {DEFAULT_SCRUB_BYTES_PER_SECOND})"
                ),
            ));
        }
        Ok(())
    }
}

/// `https://...`, or `http://` to a loopback address (tests, a tunnel), or `http://` anywhere
/// when explicitly allowed.
pub fn check_url(key: &'static str, url: &str, allow_plain_http: bool) -> Result<(), ConfigError> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(bad(key, format!("`{url}` is not a URL; use e.g. https://media-a.school.example")));
    };
    if parsed.path() != "/" || parsed.query().is_some() || url.ends_with('/') {
        return Err(bad(key, format!("`{url}` must be a base URL without a path or trailing slash")));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http || is_loopback(&parsed) => Ok(()),
        "http" => Err(bad(
            key,
            format!(
                "`{url}` is plain HTTP to another machine; use https:// (or set \
                 `[replica] allow_plain_http = true` if the link is protected otherwise)"
            ),
        )),
        other => Err(bad(key, format!("`{other}://` is not supported; use https://"))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_allowed() {
        for ok in [
            "https://media-a.school.example",
            "http://127.0.0.2:8080",
            "http://[::1]:80",
            "http://localhost:1",
        ] {
            check_url("replica.primary", ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for refused in
            ["http://10.0.0.5:8080", "http://media-a.school.example", "ftp://x", "https://a/b", "nonsense"]
        {
            assert!(check_url("replica.primary", refused, false).is_err(), "{refused}");
        }
        check_url("replica.primary", "http://10.0.0.5:8080", true).expect("allowed explicitly");
    }

    #[test]
    fn replica_needs_primary_and_secret() {
        let mut c = ReplicaConfig { role: "replica".into(), ..Default::default() };
        assert!(c.validate().expect_err("no primary").to_string().contains("replica.primary"));
        c.primary = Some("http://127.0.0.2:9000".into());
        assert!(c.validate().expect_err("no secret").to_string().contains("secret"));
        c.secret = Secret::new(Some("short".into()));
        assert!(c.validate().expect_err("short").to_string().contains("at least 32"));
        c.secret = Secret::new(Some("x".repeat(64)));
        c.validate().expect("valid");
        c.scrub_bytes_per_second = 1000;
        assert!(c.validate().expect_err("slow").to_string().contains("scrub_bytes_per_second"));
        c.scrub_bytes_per_second = DEFAULT_SCRUB_BYTES_PER_SECOND;
        c.role = "leader".into();
        assert!(c.validate().expect_err("bad role").to_string().contains("replica.role"));
    }
}
