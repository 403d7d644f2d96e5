//! The backup target (a directory or S3-compatible storage) and SHIP's part of its layout:
//! `db/<generation>/snapshots/<txid:016x>.db.zst` and `db/<generation>/records/<first>-<last>.rec`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use super::ReplicationError;
use super::record::{GenerationId, parse_record_file_name};
use super::snapshot::SNAPSHOT_EXT;
use crate::config::Config;

pub type Target = Arc<dyn ObjectStore>;

/// Open the configured target: `[backup] dir` (or `serve --backup-dir`), or `[backup] url`
/// (`s3://bucket/prefix`). `None` when no target is configured.
pub fn open(cfg: &Config) -> Result<Option<Target>, ReplicationError> {
    if let Some(dir) = &cfg.backup.dir {
        return open_dir(dir).map(Some);
    }
    match &cfg.backup.url {
        None => Ok(None),
        Some(url) => open_url(url).map(Some),
    }
}

/// A directory target whose writes and deletes are synced to disk (see `dir_target`).
pub fn open_dir(dir: &std::path::Path) -> Result<Target, ReplicationError> {
    Ok(Arc::new(super::dir_target::DirTarget::open(dir)?))
}

/// What `backup list --from` and `restore --from` read: `s3://bucket/prefix`, or an existing
/// directory.
pub fn open_location(from: &std::path::Path) -> Result<Target, ReplicationError> {
    if let Some(url) = from.to_str().filter(|s| s.starts_with("s3://")) {
        return open_url(url);
    }
    if !from.is_dir() {
        return Err(ReplicationError::Target(format!(
            "{} is not a directory (give the backup directory, or s3://bucket/prefix)",
            from.display()
        )));
    }
    open_dir(from)
}

/// `s3://bucket/prefix`, with the endpoint, region and credentials from the environment
/// variables `object_store` reads: `AWS_ENDPOINT` (or `AWS_ENDPOINT_URL`) for S3-compatible
/// storage, `AWS_ALLOW_HTTP=true` for a plain-http endpoint, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`.
#[cfg(feature = "aws")]
pub fn open_url(url: &str) -> Result<Target, ReplicationError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| ReplicationError::Target(format!("backup.url must start with s3:// (got {url})")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ReplicationError::Target(format!(
            "backup.url {url} names no bucket (s3://bucket/prefix)"
        )));
    }
    let builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint).unwrap_or_default();
    let allow_http = builder
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if endpoint.starts_with("http://") && !allow_http {
        // object_store would refuse every request with a message that names no setting.
        return Err(ReplicationError::Target(format!(
            "the S3 endpoint (AWS_ENDPOINT) is {endpoint}, plain http: set AWS_ALLOW_HTTP=true to \
             send backups unencrypted (a trusted network only), or give an https:// endpoint"
        )));
    }
    // The uploader and the media backup retry on their own (with backoff, the spool keeping
    // everything meanwhile); object_store's default (ten retries, up to three minutes per request)
    // would hide an unreachable target from the dashboard for minutes.
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(20),
    };
    let s3 = builder
        .with_retry(retry)
        .build()
        .map_err(|e| ReplicationError::Target(format!("cannot open {url}: {e}")))?;
    let store: Target = Arc::new(s3);
    if prefix.trim_matches('/').is_empty() {
        Ok(store)
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix.trim_matches('/').to_owned())))
    }
}

#[cfg(not(feature = "aws"))]
pub fn open_url(url: &str) -> Result<Target, ReplicationError> {
    Err(ReplicationError::Target(format!(
        "backup.url {url}: this reelbox was built without S3 support (build with --features aws)"
    )))
}

pub fn snapshot_key(generation: &GenerationId, txid: u64) -> ObjectPath {
    ObjectPath::from(format!("db/{generation}/snapshots/{txid:016x}{SNAPSHOT_EXT}"))
}

pub fn record_key(generation: &GenerationId, name: &str) -> ObjectPath {
    ObjectPath::from(format!("db/{generation}/records/{name}"))
}

#[derive(Debug, Clone)]
pub struct RecordEntry {
    pub first: u64,
    pub last: u64,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone, Default)]
pub struct GenerationEntry {
    /// By txid.
    pub snapshots: BTreeMap<u64, ObjectMeta>,
    /// By (first, last).
    pub records: Vec<RecordEntry>,
}

impl GenerationEntry {
    /// The records that continue the history after `txid`, in order, without gaps: at each step
    /// the file that starts at the next txid and reaches furthest (compacted files overlap the
    /// small ones they replace until those are deleted).
    pub fn chain_after(&self, txid: u64) -> Vec<&RecordEntry> {
        let mut out = Vec::new();
        let mut next = txid + 1;
        loop {
            let best = self
                .records
                .iter()
                .filter(|r| r.first <= next && r.last >= next)
                .max_by_key(|r| (r.last, u64::MAX - r.first));
            match best {
                Some(r) => {
                    next = r.last + 1;
                    out.push(r);
                }
                None => return out,
            }
        }
    }

    pub fn last_txid(&self) -> u64 {
        let from = self.snapshots.keys().next().copied().unwrap_or(0);
        self.chain_after(from).last().map(|r| r.last).unwrap_or(from)
    }
}

/// Everything SHIP keeps in the target, by generation (oldest first).
pub async fn catalog(target: &Target) -> Result<BTreeMap<GenerationId, GenerationEntry>, ReplicationError> {
    let prefix = ObjectPath::from("db");
    let metas: Vec<ObjectMeta> = target
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| ReplicationError::Target(format!("listing {prefix}: {e}")))?;
    let mut out: BTreeMap<GenerationId, GenerationEntry> = BTreeMap::new();
    for meta in metas {
        let parts: Vec<String> = meta.location.parts().map(|p| p.as_ref().to_owned()).collect();
        let [_, generation, kind, name] = parts.as_slice() else { continue };
        let Ok(generation) = generation.parse::<GenerationId>() else { continue };
        match kind.as_str() {
            "snapshots" => {
                if let Some(txid) =
                    name.strip_suffix(SNAPSHOT_EXT).and_then(|h| u64::from_str_radix(h, 16).ok())
                {
                    out.entry(generation).or_default().snapshots.insert(txid, meta);
                }
            }
            "records" => {
                if let Some((first, last)) = parse_record_file_name(name) {
                    out.entry(generation).or_default().records.push(RecordEntry { first, last, meta });
                }
            }
            _ => {}
        }
    }
    for g in out.values_mut() {
        g.records.sort_by_key(|r| (r.first, r.last));
    }
    Ok(out)
}

pub async fn put(target: &Target, key: &ObjectPath, bytes: Vec<u8>) -> Result<(), ReplicationError> {
    target
        .put(key, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|e| ReplicationError::Target(format!("writing {key}: {e}")))
}

pub async fn get(target: &Target, key: &ObjectPath) -> Result<Vec<u8>, ReplicationError> {
    let got = target.get(key).await.map_err(|e| ReplicationError::Target(format!("reading {key}: {e}")))?;
    let bytes = got.bytes().await.map_err(|e| ReplicationError::Target(format!("reading {key}: {e}")))?;
    Ok(bytes.to_vec())
}

pub async fn delete(target: &Target, key: &ObjectPath) -> Result<(), ReplicationError> {
    match target.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(ReplicationError::Target(format!("deleting {key}: {e}"))),
    }
}

pub async fn exists(target: &Target, key: &ObjectPath) -> Result<bool, ReplicationError> {
    match target.head(key).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(ReplicationError::Target(format!("checking {key}: {e}"))),
    }
}
