//! Copies of what the transcoder published under `<data>/media/<id>/` (HLS, downloads,
//! posters, sprites): each file by hash under `media/`, like blobs, and one manifest per item,
//! `renditions/<id>.json`, listing each relative path with its hash and size. `recover` puts an
//! item's directory back from its manifest.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use super::media::{Ctx, Retention, expire_or_mark};
use super::{BackupError, Target, blob_key, transfer};
use crate::db::ids::MediaId;
use crate::store::Sha256;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub media_id: MediaId,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Relative to `<data>/media/<id>/`, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

pub fn manifest_key(id: MediaId) -> ObjectPath {
    ObjectPath::from(format!("renditions/{id}.json"))
}

fn marker_key(id: MediaId) -> ObjectPath {
    ObjectPath::from(format!("renditions/{id}.json.purged"))
}

/// Published files of an item: (relative path, absolute path, size), hidden entries (`.work`,
/// temp files) left out, sorted.
fn scan(dir: &Path) -> std::io::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if name.starts_with('.') {
                continue;
            }
            let rel_name = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let t = entry.file_type()?;
            if t.is_dir() {
                stack.push((entry.path(), rel_name));
            } else if t.is_file() {
                out.push((rel_name, entry.path(), entry.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn hash_file(path: &Path) -> Result<Sha256, BackupError> {
    use sha2::Digest;
    let mut f =
        fs::File::open(path).map_err(|e| BackupError::io(format!("opening {}", path.display()), e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
    Ok(Sha256::from_bytes(h.finalize().into()))
}

async fn read_manifest(target: &Target, id: MediaId) -> Result<Option<Manifest>, BackupError> {
    match transfer::get_bytes(target, &manifest_key(id)).await? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        None => Ok(None),
    }
}

/// Copy an item's published files and write its manifest. `in_target` (hex → size) saves a
/// lookup per file during a walk. Files already listed by the manifest with the same size are
/// not re-hashed unless `deep`. Returns the hashes the manifest lists.
pub async fn sync_item(
    ctx: &Ctx,
    id: MediaId,
    in_target: Option<&HashMap<String, u64>>,
    deep: bool,
) -> Result<Vec<Sha256>, BackupError> {
    let dir = crate::transcode::media_dir(&ctx.data_dir, id);
    let d = dir.clone();
    let files = match tokio::task::spawn_blocking(move || scan(&d)).await {
        Ok(Ok(files)) => files,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Ok(Err(e)) => return Err(BackupError::io(format!("listing {}", dir.display()), e)),
        Err(e) => return Err(BackupError::domain(format!("scan task failed: {e}"))),
    };
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let old = read_manifest(&ctx.target, id).await?;
    let known: HashMap<&str, (&str, u64)> = old
        .as_ref()
        .map(|m| m.files.iter().map(|f| (f.path.as_str(), (f.sha256.as_str(), f.size))).collect())
        .unwrap_or_default();
    let mut manifest = Manifest { media_id: id, files: Vec::new() };
    for (rel, abs, size) in &files {
        let reuse = match known.get(rel.as_str()) {
            Some((hex, n)) if *n == *size && !deep => Sha256::from_hex(hex).ok(),
            _ => None,
        };
        let hash = match reuse {
            Some(h) => h,
            None => {
                let p = abs.clone();
                tokio::task::spawn_blocking(move || hash_file(&p))
                    .await
                    .map_err(|e| BackupError::domain(format!("hash task failed: {e}")))??
            }
        };
        let key = blob_key(&hash);
        let there = match in_target {
            Some(map) => map.get(&hash.to_hex()).copied(),
            None => transfer::size_of(&ctx.target, &key).await?,
        };
        let damaged = deep
            && there == Some(*size)
            && transfer::hash_of(&ctx.target, &key).await?.is_none_or(|(h, _)| h != hash);
        if there != Some(*size) || damaged {
            let n = transfer::upload_file(&ctx.target, abs, &key, &hash).await?;
            ctx.status.update(|s| {
                s.copied += 1;
                s.copied_bytes += n;
                if damaged {
                    s.repaired += 1;
                }
            });
        }
        manifest.files.push(ManifestFile { path: rel.clone(), sha256: hash.to_hex(), size: *size });
    }
    if old.as_ref() != Some(&manifest) {
        transfer::put_bytes(&ctx.target, &manifest_key(id), serde_json::to_vec_pretty(&manifest)?).await?;
        tracing::debug!(media = %id, files = manifest.files.len(), "rendition manifest written to the backup target");
    }
    transfer::delete(&ctx.target, &marker_key(id)).await?;
    manifest.files.iter().map(|f| Sha256::from_hex(&f.sha256).map_err(BackupError::from)).collect()
}

#[derive(Debug, Default)]
pub struct RenditionReport {
    pub copied: usize,
    pub marked: usize,
    pub expired: usize,
    pub failed: usize,
}

/// Sync every item directory; mark or expire manifests of items the server no longer has.
/// Returns every hash a kept manifest lists (not orphans).
pub async fn reconcile(
    ctx: &Ctx,
    in_target: &HashMap<String, u64>,
    deep: bool,
) -> Result<(HashSet<String>, RenditionReport), BackupError> {
    let now = ctx.clock.now();
    let mut report = RenditionReport::default();
    let mut kept = HashSet::new();
    let root = ctx.data_dir.join("media");
    let ids: Vec<MediaId> = match fs::read_dir(&root) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()))
            .map(MediaId)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(BackupError::io(format!("listing {}", root.display()), e)),
    };
    let local: HashSet<MediaId> = ids.iter().copied().collect();
    for id in ids {
        match sync_item(ctx, id, Some(in_target), deep).await {
            Ok(hashes) => {
                report.copied += hashes.iter().filter(|h| !in_target.contains_key(&h.to_hex())).count();
                kept.extend(hashes.iter().map(Sha256::to_hex));
            }
            Err(e) => {
                tracing::warn!(media = %id, error = %e, "could not copy renditions to the backup target");
                ctx.status.failed(now, &e);
                report.failed += 1;
            }
        }
    }

    let mut manifests = HashMap::new();
    let mut markers = HashMap::new();
    let prefix = ObjectPath::from("renditions");
    let mut list = ctx.target.list(Some(&prefix));
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(|e| BackupError::target("listing renditions/", e))?;
        let Some(name) = meta.location.filename().map(str::to_owned) else { continue };
        if let Some(id) = name.strip_suffix(".json.purged").and_then(|n| n.parse::<i64>().ok()) {
            markers.insert(MediaId(id), meta.location.clone());
        } else if let Some(id) = name.strip_suffix(".json").and_then(|n| n.parse::<i64>().ok()) {
            manifests.insert(MediaId(id), meta.location.clone());
        }
    }
    for (id, key) in &manifests {
        if local.contains(id) {
            continue;
        }
        match expire_or_mark(&ctx.target, key, &marker_key(*id), markers.get(id), now, &ctx.cfg).await? {
            Retention::Expired => report.expired += 1,
            r => {
                if matches!(r, Retention::Marked) {
                    report.marked += 1;
                }
                if let Some(m) = read_manifest(&ctx.target, *id).await? {
                    kept.extend(m.files.into_iter().map(|f| f.sha256));
                }
            }
        }
    }
    Ok((kept, report))
}

/// Put an item's published files back from its manifest: downloaded and hash-checked into a
/// hidden directory beside it, then renamed into place. `Ok(false)`: no manifest in the target.
pub async fn restore_item(target: &Target, data_dir: &Path, id: MediaId) -> Result<bool, BackupError> {
    let Some(manifest) = read_manifest(target, id).await? else { return Ok(false) };
    let dest = crate::transcode::media_dir(data_dir, id);
    let staging = data_dir.join("media").join(format!(".recover-{id}"));
    let _ = fs::remove_dir_all(&staging);
    for f in &manifest.files {
        if f.path.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(BackupError::domain(format!(
                "rendition manifest of item {id} has a bad path {:?}",
                f.path
            )));
        }
        let hash = Sha256::from_hex(&f.sha256)?;
        transfer::download_file(target, &blob_key(&hash), &hash, &staging.join(&f.path)).await?;
    }
    if dest.exists() {
        let aside = data_dir.join("media").join(format!(".replaced-{id}"));
        let _ = fs::remove_dir_all(&aside);
        fs::rename(&dest, &aside)
            .map_err(|e| BackupError::io(format!("moving {} aside", dest.display()), e))?;
        let _ = fs::remove_dir_all(&aside);
    }
    fs::rename(&staging, &dest).map_err(|e| BackupError::io(format!("moving into {}", dest.display()), e))?;
    Ok(true)
}
