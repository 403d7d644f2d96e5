//! Rendition follow. What the transcoder publishes under `<data>/media/<id>/` (HLS rungs, the
//! master playlist, the download file, poster and sprite) is not in the blob store, so a replica
//! copies it item by item: the primary lists an item's files with their sizes and SHA-256 (a
//! signed answer); the replica fetches what it lacks or what differs, checks every hash,
//! assembles each rung directory beside the published one and moves it into place whole, and
//! writes the master playlist last — the order the transcoder publishes in, so a viewer on the
//! replica never gets a playlist naming a file that is not there. Items the (replicated)
//! database no longer has published files for lose their directory.
//!
//! What was copied, and the hash each file had when it was checked, is recorded per item in
//! `<data>/replica/renditions/<id>.json`: the next copy of that item trusts a file here only if
//! its recorded hash is the one now listed (a file without a record is hashed), and the scrub
//! (`replica::scrub`) re-hashes the files against these records to find damage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ReplicaError, auth};
use crate::App;
use crate::db::ids::MediaId;
use crate::transcode::media_dir;

/// `{FILES_PATH}/{id}/files` lists an item's files; `{FILES_PATH}/{id}/file?path=` sends one.
pub const FILES_PATH: &str = "/replication/v1/media";
/// Where a replica assembles files before they take their place (like the transcoder's
/// `.work`, a dot-directory: never listed or served).
const STAGING: &str = ".follow";
const STATE_FILE: &str = "renditions.json";
/// `<data>/replica/renditions/<id>.json`: the listing an item's copy was checked against.
const RECORDS_DIR: &str = "renditions";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the item's directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub files: Vec<FileEntry>,
}

/// What this replica copied of one item: the published version and every file with the size and
/// hash it was checked against when it arrived (or was last repaired).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: String,
    pub files: Vec<FileEntry>,
}

fn record_path(data_dir: &Path, id: MediaId) -> PathBuf {
    super::state::dir(data_dir).join(RECORDS_DIR).join(format!("{id}.json"))
}

/// The record of an item's copy; `None` when there is none (copied by an older version, or
/// unreadable: the files are then hashed instead of trusted).
pub fn load_record(data_dir: &Path, id: MediaId) -> Option<Record> {
    let bytes = std::fs::read(record_path(data_dir, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn save_record(data_dir: &Path, id: MediaId, record: &Record) -> Result<(), ReplicaError> {
    super::state::write_json(&record_path(data_dir, id), record)
}

fn remove_record(data_dir: &Path, id: MediaId) -> Result<(), ReplicaError> {
    let path = record_path(data_dir, id);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReplicaError::io(path, e)),
    }
}

/// File hashes the primary has computed, by path, size and modification time.
#[derive(Default)]
pub struct HashCache(Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>);

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReplicaError + '_ {
    move |e| ReplicaError::io(path.to_path_buf(), e)
}

/// A relative path from a listing or a request, if it stays inside the item's directory and
/// outside its work directories.
pub fn safe_rel(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) if !s.to_string_lossy().starts_with('.') => out.push(s),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

pub(super) fn sha256_file(path: &Path) -> Result<String, ReplicaError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Every file under `dir` (outside dot-directories), relative and sorted.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>, ReplicaError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ReplicaError::io(d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&d))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = entry.metadata().map_err(io(&path))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push((rel, path, meta));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// On the primary: an item's published files with their hashes (blocking).
pub fn list_published(data_dir: &Path, id: MediaId, cache: &HashCache) -> Result<Listing, ReplicaError> {
    let mut files = Vec::new();
    for (rel, path, meta) in walk(&media_dir(data_dir, id))? {
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let known = cache.0.lock().unwrap_or_else(|p| p.into_inner()).get(&path).cloned();
        let sha256 = match known {
            Some((size, at, sha)) if size == meta.len() && at == modified => sha,
            _ => {
                let sha = sha256_file(&path)?;
                let mut c = cache.0.lock().unwrap_or_else(|p| p.into_inner());
                if c.len() > 200_000 {
                    c.clear();
                }
                c.insert(path.clone(), (meta.len(), modified, sha.clone()));
                sha
            }
        };
        files.push(FileEntry { path: rel, size: meta.len(), sha256 });
    }
    Ok(Listing { files })
}

/// The unit a file is published in: its rung directory (`hls/240p`), else the file itself.
fn unit(path: &str) -> String {
    match path.strip_prefix("hls/").and_then(|rest| rest.split_once('/')) {
        Some((rung, _)) => format!("hls/{rung}"),
        None => path.to_string(),
    }
}

/// Whether the local copy of `e` at `path` is the listed file: the same size and either the
/// same hash in the record of what was copied (damage since is the scrub's to find), or, with
/// no record of it, the same hash read now.
fn same_here(path: &Path, e: &FileEntry, recorded: Option<&FileEntry>) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == e.size => match recorded {
            Some(r) if r.size == e.size => r.sha256 == e.sha256,
            _ => sha256_file(path).is_ok_and(|h| h == e.sha256),
        },
        _ => false,
    }
}

/// What this replica has copied: item → the published version it copied.
fn load_state(data_dir: &Path) -> BTreeMap<i64, String> {
    std::fs::read(super::state::dir(data_dir).join(STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(data_dir: &Path, state: &BTreeMap<i64, String>) -> Result<(), ReplicaError> {
    super::state::write_json(&super::state::dir(data_dir).join(STATE_FILE), state)
}

/// What this replica has copied, kept across passes (read from its file once).
pub struct Copied {
    items: BTreeMap<i64, String>,
    /// The first pass also removes directories no copy accounts for (left by an earlier run).
    swept: bool,
}

impl Copied {
    pub fn load(data_dir: &Path) -> Copied {
        Copied { items: load_state(data_dir), swept: false }
    }

    /// The published version of item `id` this replica holds a copy of.
    pub fn version(&self, id: MediaId) -> Option<&str> {
        self.items.get(&id.0).map(String::as_str)
    }

    /// Every item copied, with its version.
    pub fn items(&self) -> Vec<(MediaId, String)> {
        self.items.iter().map(|(id, v)| (MediaId(*id), v.clone())).collect()
    }
}

/// On a replica: copy every item whose published files changed since the last pass, and remove
/// the directories of items that have none any more. Returns the number of items copied.
///
/// Every changed item is listed first, so that the bytes still to fetch
/// (`Node::rendition_bytes_behind`) are known before copying starts, and count down as it goes.
pub async fn follow(app: &App, copied: &mut Copied) -> Result<usize, ReplicaError> {
    let published: BTreeMap<i64, String> = app
        .db
        .read(|c| {
            crate::transcode::published_versions(c).map_err(|e| ReplicaError::Replication(e.to_string()))
        })
        .await?
        .into_iter()
        .map(|(id, v)| (id.0, v))
        .collect();
    let data_dir = app.config.data_dir.clone();
    let mut plans = Vec::new();
    for (id, version) in &published {
        if copied.items.get(id) == Some(version) {
            continue;
        }
        let id = MediaId(*id);
        let listing = list_item(app, id).await?;
        let plan = plan_item(&data_dir, id, listing, HashSet::new()).await?;
        plans.push((plan, version.clone()));
    }
    let behind = &app.replica.rendition_bytes_behind;
    behind.store(plans.iter().map(|(p, _)| p.missing()).sum(), Ordering::Relaxed);
    let mut done = 0;
    for (plan, version) in plans {
        let id = plan.id;
        let files = copy_planned(app, plan).await?.files;
        copied.items.insert(id.0, version.clone());
        let (dir, items) = (data_dir.clone(), copied.items.clone());
        blocking(move || {
            save_record(&dir, id, &Record { version, files })?;
            save_state(&dir, &items)
        })
        .await?;
        done += 1;
    }
    behind.store(0, Ordering::Relaxed);
    // Items purged (or never transcoded) on the primary: nothing of theirs stays here.
    let gone: Vec<i64> = if copied.swept {
        copied.items.keys().copied().filter(|id| !published.contains_key(id)).collect()
    } else {
        let dir = data_dir.clone();
        blocking(move || local_items(&dir))
            .await?
            .into_iter()
            .filter(|id| !published.contains_key(id))
            .collect()
    };
    for id in gone {
        let (dir, data) = (media_dir(&data_dir, MediaId(id)), data_dir.clone());
        blocking(move || {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(media = id, "removed the files of an item the primary no longer publishes")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ReplicaError::io(dir, e)),
            }
            remove_record(&data, MediaId(id))
        })
        .await?;
    }
    copied.swept = true;
    if copied.items.keys().any(|id| !published.contains_key(id)) {
        copied.items.retain(|id, _| published.contains_key(id));
        let (dir, items) = (data_dir.clone(), copied.items.clone());
        blocking(move || save_state(&dir, &items)).await?;
    }
    Ok(done)
}

/// File system work, off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReplicaError> + Send + 'static,
) -> Result<T, ReplicaError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ReplicaError::Replication(e.to_string()))?
}

fn local_items(data_dir: &Path) -> Result<Vec<i64>, ReplicaError> {
    let dir = data_dir.join("media");
    match std::fs::read_dir(&dir) {
        Ok(entries) => Ok(entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ReplicaError::io(dir, e)),
    }
}

async fn signed_get(app: &App, pq: &str) -> Result<reqwest::Response, ReplicaError> {
    let node = &app.replica;
    let primary = node.primary_url().ok_or(ReplicaError::Protocol("no primary configured".into()))?;
    let secret = node.secret().ok_or(ReplicaError::Unauthorized("no replication secret configured"))?;
    let res = auth::signed(&node.http, secret, reqwest::Method::GET, &primary, pq, Vec::new())
        .send()
        .await
        .map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
    if !res.status().is_success() {
        return Err(ReplicaError::Protocol(format!("{pq}: HTTP {}", res.status().as_u16())));
    }
    Ok(res)
}

/// Copy again from the primary the files of item `id` at `damaged` (found damaged or missing by
/// the scrub), each with the rest of its unit, and record the copy as `version`. The caller
/// holds the follow lock (`Copied`) and has checked that `version` is the copy it holds.
/// Returns the number of files fetched.
pub async fn repair(
    app: &App,
    id: MediaId,
    version: &str,
    damaged: HashSet<String>,
) -> Result<u64, ReplicaError> {
    let listing = list_item(app, id).await?;
    let data_dir = app.config.data_dir.clone();
    let plan = plan_item(&data_dir, id, listing, damaged).await?;
    let fetched = plan.to_fetch().count() as u64;
    app.replica.rendition_bytes_behind.fetch_add(plan.missing(), Ordering::Relaxed);
    let files = copy_planned(app, plan).await?.files;
    let record = Record { version: version.to_string(), files };
    blocking(move || save_record(&data_dir, id, &record)).await?;
    Ok(fetched)
}

/// What to copy of item `id` against its record, on the blocking pool (it reads and may hash
/// the files here); the paths in `force` are fetched whatever is here.
async fn plan_item(
    data_dir: &Path,
    id: MediaId,
    listing: Listing,
    force: HashSet<String>,
) -> Result<Plan, ReplicaError> {
    let (dir, data) = (media_dir(data_dir, id), data_dir.to_path_buf());
    blocking(move || {
        let record = load_record(&data, id);
        Ok(Plan::new(id, &dir, listing, record.as_ref(), &force))
    })
    .await
}

/// An item's listing from the primary, checked (signature, paths).
pub(super) async fn list_item(app: &App, id: MediaId) -> Result<Listing, ReplicaError> {
    let pq = format!("{FILES_PATH}/{id}/files");
    let res = signed_get(app, &pq).await?;
    let header = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (epoch, position, sig) =
        (header(auth::EPOCH_HEADER), header(auth::POSITION_HEADER), header(auth::SIGNATURE_HEADER));
    let body = res.bytes().await.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
    let secret = app.replica.secret().unwrap_or_default();
    auth::verify_response(
        secret,
        &pq,
        epoch.as_deref().unwrap_or(""),
        position.as_deref().unwrap_or(""),
        &body,
        sig.as_deref(),
    )?;
    let listing: Listing = serde_json::from_slice(&body)
        .map_err(|e| ReplicaError::Protocol(format!("the file list of item {id}: {e}")))?;
    if listing.files.iter().any(|f| safe_rel(&f.path).is_none()) {
        return Err(ReplicaError::Protocol(format!("the file list of item {id} names a path outside it")));
    }
    Ok(listing)
}

/// What copying one item takes: the units (a rung directory or a single file) that differ
/// from what is here, master playlist last, each file marked with whether this replica
/// already has it.
struct Plan {
    id: MediaId,
    dir: PathBuf,
    listing: Listing,
    work: Vec<(String, Vec<(FileEntry, bool)>)>,
}

impl Plan {
    /// Blocking: compares files here with the listing (by `recorded` hash, else by hashing
    /// them); the paths in `force` are fetched whatever is here.
    fn new(
        id: MediaId,
        dir: &Path,
        listing: Listing,
        recorded: Option<&Record>,
        force: &HashSet<String>,
    ) -> Plan {
        let mut units: BTreeMap<String, Vec<&FileEntry>> = BTreeMap::new();
        for f in &listing.files {
            units.entry(unit(&f.path)).or_default().push(f);
        }
        let recorded: HashMap<&str, &FileEntry> =
            recorded.map(|r| r.files.iter().map(|f| (f.path.as_str(), f)).collect()).unwrap_or_default();
        // The master playlist goes last: it names the rungs.
        let master = units.remove("hls/master.m3u8");
        let mut work = Vec::new();
        for (name, files) in units.into_iter().chain(master.map(|m| ("hls/master.m3u8".to_string(), m))) {
            let have: Vec<(FileEntry, bool)> = files
                .into_iter()
                .map(|f| {
                    let here = !force.contains(&f.path)
                        && same_here(&dir.join(&f.path), f, recorded.get(f.path.as_str()).copied());
                    (f.clone(), here)
                })
                .collect();
            if have.iter().all(|(_, here)| *here) {
                continue;
            }
            work.push((name, have));
        }
        Plan { id, dir: dir.to_path_buf(), listing, work }
    }

    /// The files to fetch from the primary.
    fn to_fetch(&self) -> impl Iterator<Item = &FileEntry> {
        self.work.iter().flat_map(|(_, files)| files).filter(|(_, here)| !here).map(|(f, _)| f)
    }

    /// Bytes to fetch from the primary.
    fn missing(&self) -> u64 {
        self.to_fetch().map(|f| f.size).sum()
    }
}

/// Copy one item's published files from the primary as planned; returns the listing, now what
/// is here.
async fn copy_planned(app: &App, plan: Plan) -> Result<Listing, ReplicaError> {
    let Plan { id, dir, listing, work, .. } = plan;
    let staging = dir.join(STAGING);
    {
        let staging = staging.clone();
        blocking(move || {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        })
        .await?;
    }
    for (name, files) in work {
        // What is here already is linked into the staged unit in one trip to the blocking pool.
        let kept: Vec<(PathBuf, PathBuf)> = files
            .iter()
            .filter(|(_, here)| *here)
            .map(|(f, _)| (dir.join(&f.path), staging.join(&f.path)))
            .collect();
        blocking(move || {
            for (from, to) in kept {
                let parent = to.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                std::fs::hard_link(&from, &to)
                    .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                    .map_err(io(&to))?;
            }
            Ok(())
        })
        .await?;
        for (f, here) in files {
            if !here {
                let to = staging.join(&f.path);
                fetch(app, id, &f, &to).await?;
                let _ = app.replica.rendition_bytes_behind.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |b| Some(b.saturating_sub(f.size)),
                );
            }
        }
        let (from, to) = (staging.join(&name), dir.join(&name));
        blocking(move || publish(&from, &to)).await?;
    }
    // What the primary no longer publishes goes (a replaced rung, a removed file).
    let count = listing.files.len();
    let listing = blocking(move || {
        let listed: HashSet<String> = listing.files.iter().map(|f| unit(&f.path)).collect();
        for (rel, path, _) in walk(&dir)? {
            if !listed.contains(&unit(&rel)) {
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
        Ok(listing)
    })
    .await?;
    tracing::debug!(media = %id, files = count, "published files copied from the primary");
    Ok(listing)
}

/// Move a staged rung directory or file to its place, syncing it first.
fn publish(from: &Path, to: &Path) -> Result<(), ReplicaError> {
    if from.is_dir() {
        for entry in std::fs::read_dir(from).map_err(io(from))?.flatten() {
            std::fs::File::open(entry.path()).and_then(|f| f.sync_all()).map_err(io(&entry.path()))?;
        }
    }
    std::fs::File::open(from).and_then(|f| f.sync_all()).map_err(io(from))?;
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    if to.is_dir() {
        std::fs::remove_dir_all(to).map_err(io(to))?;
    }
    std::fs::rename(from, to).map_err(io(to))?;
    std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io(parent))
}

/// Fetch one listed file into `to`, checking its size and hash.
async fn fetch(app: &App, id: MediaId, f: &FileEntry, to: &Path) -> Result<(), ReplicaError> {
    use tokio::io::AsyncWriteExt;
    let res =
        signed_get(app, &format!("{FILES_PATH}/{id}/file?path={}", urlencoding::encode(&f.path))).await?;
    let parent = to.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
    let mut out = tokio::fs::File::create(to).await.map_err(io(to))?;
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
        h.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(io(to))?;
    }
    out.flush().await.map_err(io(to))?;
    drop(out);
    let got = hex::encode(h.finalize());
    if size != f.size || got != f.sha256 {
        let _ = tokio::fs::remove_file(to).await;
        return Err(ReplicaError::Protocol(format!(
            "item {id}: {} arrived with {size} bytes and SHA-256 {got}, listed as {} bytes {}",
            f.path, f.size, f.sha256
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_item_and_out_of_work_directories() {
        assert_eq!(safe_rel("hls/240p/seg-1.m4s"), Some(PathBuf::from("hls/240p/seg-1.m4s")));
        assert_eq!(safe_rel("poster.jpg"), Some(PathBuf::from("poster.jpg")));
        for bad in ["../reelbox.db", "/etc/passwd", "hls/../../x", ".work/hls/a", "hls/.follow/x", "", "."] {
            assert_eq!(safe_rel(bad), None, "{bad}");
        }
    }

    #[test]
    fn rung_files_publish_with_their_directory() {
        assert_eq!(unit("hls/240p/index.m3u8"), "hls/240p");
        assert_eq!(unit("hls/master.m3u8"), "hls/master.m3u8");
        assert_eq!(unit("poster.jpg"), "poster.jpg");
    }

    #[test]
    fn listings_hash_files_and_skip_work_directories() {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = media_dir(data.path(), MediaId(4));
        std::fs::create_dir_all(dir.join("hls/240p")).expect("dirs");
        std::fs::create_dir_all(dir.join(".work/hls")).expect("dirs");
        std::fs::write(dir.join("hls/240p/init.mp4"), b"init").expect("write");
        std::fs::write(dir.join("hls/master.m3u8"), b"#EXTM3U\n").expect("write");
        std::fs::write(dir.join(".work/hls/partial"), b"half").expect("write");
        let cache = HashCache::default();
        let listing = list_published(data.path(), MediaId(4), &cache).expect("list");
        let paths: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["hls/240p/init.mp4", "hls/master.m3u8"]);
        assert_eq!(listing.files[0].sha256, hex::encode(Sha256::digest(b"init")));
        // The cache answers while size and time hold; a change is seen.
        std::fs::write(dir.join("hls/master.m3u8"), b"#EXTM3U\n#EXT-X-VERSION:7\n").expect("write");
        let again = list_published(data.path(), MediaId(4), &cache).expect("list");
        assert_eq!(again.files[1].sha256, hex::encode(Sha256::digest(b"#EXTM3U\n#EXT-X-VERSION:7\n")));
    }

    /// A data directory whose item `id` holds `files` (path, bytes); and the item's directory.
    fn item_holding(id: MediaId, files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let data = tempfile::tempdir().expect("tempdir");
        let dir = media_dir(data.path(), id);
        for (path, body) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, body).expect("write");
        }
        (data, dir)
    }

    /// A listed file with `body`'s size and hash.
    fn entry(path: &str, body: &[u8]) -> FileEntry {
        FileEntry { path: path.into(), size: body.len() as u64, sha256: hex::encode(Sha256::digest(body)) }
    }

    #[test]
    fn a_plan_fetches_only_what_differs_and_counts_its_bytes() {
        let (_data, dir) = item_holding(
            MediaId(5),
            &[
                ("hls/240p/init.mp4", b"init"),
                ("hls/240p/index.m3u8", b"old playlist"),
                ("poster.jpg", b"poster"),
            ],
        );
        let listing = Listing {
            files: vec![
                entry("hls/240p/index.m3u8", b"new playlist"),
                entry("hls/240p/init.mp4", b"init"),
                entry("hls/240p/seg-00001.m4s", b"segment one"),
                entry("hls/master.m3u8", b"#EXTM3U\n"),
                entry("poster.jpg", b"poster"),
            ],
        };
        let plan = Plan::new(MediaId(5), &dir, listing, None, &HashSet::new());
        // The poster is here already; the rung is redone whole (its init linked, not fetched);
        // the master comes last.
        let units: Vec<&str> = plan.work.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(units, vec!["hls/240p", "hls/master.m3u8"]);
        let rung: Vec<(&str, bool)> =
            plan.work[0].1.iter().map(|(f, here)| (f.path.as_str(), *here)).collect();
        assert_eq!(
            rung,
            vec![
                ("hls/240p/index.m3u8", false),
                ("hls/240p/init.mp4", true),
                ("hls/240p/seg-00001.m4s", false)
            ]
        );
        assert_eq!(
            plan.missing(),
            (b"new playlist".len() + b"segment one".len() + b"#EXTM3U\n".len()) as u64
        );
    }

    #[test]
    fn recorded_hashes_decide_what_is_here_and_forced_paths_are_fetched() {
        // The download has the listed size but other bytes: hashing finds it differs.
        let (data, dir) = item_holding(
            MediaId(6),
            &[("download.mp4", b"AAAA"), ("hls/240p/seg-00001.m4s", b"seg1"), ("poster.jpg", b"post")],
        );
        let listing = Listing {
            files: vec![
                entry("download.mp4", b"BBBB"),
                entry("hls/240p/seg-00001.m4s", b"seg1"),
                entry("poster.jpg", b"post"),
            ],
        };
        let units = |p: &Plan| -> Vec<(String, Vec<bool>)> {
            p.work.iter().map(|(n, fs)| (n.clone(), fs.iter().map(|(_, here)| *here).collect())).collect()
        };
        // No record: every file is hashed, the download differs.
        let plan = Plan::new(MediaId(6), &dir, listing.clone(), None, &HashSet::new());
        assert_eq!(units(&plan), vec![("download.mp4".to_string(), vec![false])]);
        // A record of the same hash is trusted without reading the file.
        let record = Record { version: "1@1".into(), files: listing.files.clone() };
        let plan = Plan::new(MediaId(6), &dir, listing.clone(), Some(&record), &HashSet::new());
        assert!(plan.work.is_empty());
        // A record of another hash means the listed file is not the one here.
        let mut older = record.clone();
        older.files[2].sha256 = hex::encode(Sha256::digest(b"old poster"));
        let plan = Plan::new(MediaId(6), &dir, listing.clone(), Some(&older), &HashSet::new());
        assert_eq!(units(&plan), vec![("poster.jpg".to_string(), vec![false])]);
        // What the scrub found damaged is fetched whatever is recorded.
        let force: HashSet<String> = ["hls/240p/seg-00001.m4s".to_string()].into();
        let plan = Plan::new(MediaId(6), &dir, listing, Some(&record), &force);
        assert_eq!(units(&plan), vec![("hls/240p".to_string(), vec![false])]);
        assert_eq!((plan.to_fetch().count(), plan.missing()), (1, 4));
        // Records round-trip, and a missing one is `None`.
        save_record(data.path(), MediaId(6), &record).expect("save");
        assert_eq!(load_record(data.path(), MediaId(6)), Some(record));
        remove_record(data.path(), MediaId(6)).expect("remove");
        assert_eq!(load_record(data.path(), MediaId(6)), None);
    }
}
