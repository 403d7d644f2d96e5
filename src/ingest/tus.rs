//! Resumable uploads, tus 1.0.0 (core, creation, creation-with-upload, creation-defer-length,
//! termination, expiration, checksum). Owns the table `uploads` and the partial files under
//! `<data>/uploads/`.
//!
//! Creation makes the media item (status `uploading`) and the upload row, then an empty partial
//! file. Each PATCH appends through a `BlobWriter` kept in memory between requests (one at a
//! time per upload; `BlobWriter::resume` re-reads a partial file to rebuild the hash after a
//! restart). A chunk whose `Upload-Checksum` does not match is cut off again. The last PATCH
//! detects the kind, compares the whole-file hash with the declared one, fsyncs, moves the file
//! into the store, re-reads and verifies it, and only then completes the item.
//!
//! Durability rule. A PATCH does not wait for an fsync: its `Upload-Offset` is what was received
//! and written to the partial file (in the page cache, not necessarily on disk yet), and HEAD on
//! the same running server answers that too, since the upload's writer is still open. The offset
//! recorded in `uploads.received` is only ever a durable one: the blob store's trail fdatasyncs
//! the file in 32 MiB steps while the upload goes on, and each PATCH records how far that got.
//! After a crash (`kill -9`, power loss) the server starts by cutting every partial file back to
//! its recorded offset (`tus_recovery::recover`), and HEAD answers that, which may be less than
//! a PATCH acknowledged; a tus client HEADs before it resumes, so it sends the rest again. A
//! graceful stop (SIGTERM) fsyncs every open upload and records its full offset
//! (`tus_recovery::sync_open`), so HEAD then equals what was acknowledged.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{Stream, StreamExt};
use rusqlite::{Connection, OptionalExtension, params};

use super::detect::{self, DetectError};
use super::simple::with_full_sync;
use super::tus_headers::ChunkHasher;
pub use super::tus_headers::{Checksum, NewUpload, parse_metadata};
use super::{BATCH_BYTES, CHANNEL_BATCHES, IngestError, OLE2_MAGIC, simple};
use crate::App;
use crate::accounts::login::Actor;
use crate::clock::Timestamp;
use crate::db::ids::{MediaId, UserId};
use crate::error::{AppError, ErrorKind};
use crate::insights::audit::{self, Outcome};
use crate::library::LibraryError;
use crate::library::media::{self, MediaItem, NewMedia, StoredContent};
use crate::store::{BlobWriter, Sha256, StoreError};

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum";
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
const UPLOADS_DIR: &str = "uploads";

pub(super) type Slot = Arc<tokio::sync::Mutex<Option<BlobWriter>>>;

/// The partial files and the writers kept open between PATCHes.
pub struct Uploads {
    dir: PathBuf,
    open: Mutex<HashMap<String, Slot>>,
    /// The offset last acknowledged for each upload whose writer is open (ahead of the
    /// recorded, durable offset until the trail or a graceful stop syncs it).
    acked: Mutex<HashMap<String, u64>>,
}

impl Uploads {
    /// `<data>/uploads/`, on the same filesystem as the blob store so finished uploads are
    /// renamed into it.
    pub fn open(data_dir: &Path) -> Result<Uploads, StoreError> {
        let dir = data_dir.join(UPLOADS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io_at("creating", &dir, e))?;
        Ok(Uploads { dir, open: Mutex::new(HashMap::new()), acked: Mutex::new(HashMap::new()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot(&self, id: &str) -> Slot {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        self.acked.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// The uploads with a slot in this process (open writers, or PATCHes in progress).
    pub(super) fn slots(&self) -> Vec<(String, Slot)> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.iter().map(|(id, slot)| (id.clone(), slot.clone())).collect()
    }

    /// Keep `writer` open for the next PATCH (or none, after a failure) and remember the offset
    /// it acknowledges.
    fn park(&self, id: &str, slot: &mut Option<BlobWriter>, writer: Option<BlobWriter>) {
        let mut acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
        match &writer {
            Some(w) => acked.insert(id.to_string(), w.size()),
            None => acked.remove(id),
        };
        *slot = writer;
    }
}

/// What HEAD answers: the acknowledged offset while the upload's writer is open in this
/// process (its bytes are in the file), otherwise the recorded durable one.
pub fn offset(app: &App, upload: &Upload) -> u64 {
    let acked = app.uploads.acked.lock().unwrap_or_else(PoisonError::into_inner).get(&upload.id).copied();
    acked.unwrap_or(upload.received)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub id: String,
    pub media_id: MediaId,
    pub owner_id: Option<UserId>,
    /// The declared length; while `length_deferred`, the most the upload may grow to (the
    /// maximum size when it was created), so the limit holds before any byte is written.
    pub length: u64,
    /// Created with `Upload-Defer-Length: 1`; a later PATCH declares `Upload-Length`.
    pub length_deferred: bool,
    /// The offset last known durable (see the module doc); HEAD may answer more.
    pub received: u64,
    pub expected_sha256: String,
    /// The creation request's `Upload-Metadata`, as sent.
    pub metadata: String,
    pub partial_name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

const SELECT: &str =
    "SELECT id, media_id, owner_id, length, received, expected_sha256, metadata, partial_name,
                             created_at, expires_at FROM uploads";

/// The `metadata` column: the creation's `Upload-Metadata` as sent, and whether the length is
/// still to come.
fn metadata_json(raw: &str, deferred: bool) -> String {
    let mut v = serde_json::json!({ "upload_metadata": raw });
    if deferred {
        v["deferred_length"] = serde_json::Value::Bool(true);
    }
    v.to_string()
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    let metadata: String = r.get(6)?;
    let json = serde_json::from_str::<serde_json::Value>(&metadata).unwrap_or_default();
    let raw = json["upload_metadata"].as_str().map(str::to_string).unwrap_or_default();
    Ok(Upload {
        id: r.get(0)?,
        media_id: r.get(1)?,
        owner_id: r.get(2)?,
        length: r.get::<_, i64>(3)?.max(0) as u64,
        length_deferred: json["deferred_length"].as_bool().unwrap_or(false),
        received: r.get::<_, i64>(4)?.max(0) as u64,
        expected_sha256: r.get(5)?,
        metadata: raw,
        partial_name: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Upload>, LibraryError> {
    Ok(conn.query_row(&format!("{SELECT} WHERE id = ?1"), [id], from_row).optional()?)
}

fn expired(conn: &Connection, now: Timestamp) -> Result<Vec<Upload>, LibraryError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE expires_at <= ?1"))?;
    let rows = stmt.query_map([now], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Create the item (status `uploading`), the upload row and its empty partial file. The caller
/// has checked `contribute` on the category.
pub async fn create(
    app: &App,
    actor: &Actor,
    mut new: NewUpload,
) -> Result<(Upload, MediaItem), IngestError> {
    let max = app.config.uploads.max_size_bytes;
    if new.deferred {
        new.length = max;
    } else if new.length > max {
        simple::record_rejection(
            app,
            actor,
            new.category,
            &new.filename,
            &IngestError::TooLarge { size: new.length, max },
        )
        .await;
        return Err(IngestError::TooLarge { size: new.length, max });
    }
    if new.length == 0 && !new.deferred {
        return Err(DetectError::Empty.into());
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    let partial_name = format!("{id}.part");
    let now = app.clock.now();
    let expires_at = now + i64::from(app.config.uploads.expire_hours) * 3600;
    let actor2 = actor.clone();
    let (upload, item) = {
        let (id, partial_name) = (id.clone(), partial_name.clone());
        app.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let item = media::create(
                    &tx,
                    NewMedia {
                        category_id: new.category,
                        owner_id: actor2.id,
                        title: &new.title,
                        filename: &new.filename,
                        content: None,
                    },
                    now,
                )?;
                let metadata = metadata_json(&new.raw_metadata, new.deferred);
                tx.execute(
                    "INSERT INTO uploads (id, media_id, owner_id, length, received, expected_sha256, metadata,
                                          partial_name, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        id,
                        item.id,
                        actor2.id,
                        new.length as i64,
                        new.expected.to_hex(),
                        metadata,
                        partial_name,
                        now,
                        expires_at
                    ],
                )?;
                audit::record(
                    &tx,
                    &actor2.event("upload.started").target("media", item.id, &item.title).detail(
                        if new.deferred {
                            format!("length to follow, tus upload {id}")
                        } else {
                            format!("{} bytes, tus upload {id}", new.length)
                        },
                    ),
                    now,
                )?;
                let upload = get(&tx, &id)?.ok_or(LibraryError::NotFound("upload"))?;
                tx.commit()?;
                Ok::<_, LibraryError>((upload, item))
            })
            .await?
    };
    // The row comes first, so a sweep never sees a partial file nobody owns while it is made.
    let path = app.uploads.dir().join(&partial_name);
    let created = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map(drop)
            .map_err(|e| StoreError::io_at("creating", &path, e))
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))?;
    if let Err(e) = created {
        discard(app, &upload, None, "upload.failed", &e.to_string()).await?;
        return Err(e.into());
    }
    Ok((upload, item))
}

/// The state after a PATCH.
#[derive(Debug)]
pub struct Appended {
    pub offset: u64,
    pub expires_at: Timestamp,
    /// Set by the PATCH that delivered the last byte.
    pub completed: Option<MediaItem>,
}

/// Re-open the partial file, cut back to `truncate_to`: the recorded durable offset, or the
/// acknowledged offset before a chunk that is cut off again.
async fn resume(app: &App, upload: &Upload, truncate_to: u64) -> Result<BlobWriter, IngestError> {
    let (store, path) = (app.store.clone(), app.uploads.dir().join(&upload.partial_name));
    let w = tokio::task::spawn_blocking(move || BlobWriter::resume(&store, &path, Some(truncate_to)))
        .await
        .map_err(|e| IngestError::Task(e.to_string()))??;
    if w.size() < upload.received {
        // Fewer bytes on disk than recorded: continue from what is really there.
        let (id, size) = (upload.id.clone(), w.size() as i64);
        app.db
            .write(move |c| {
                c.execute("UPDATE uploads SET received = ?2 WHERE id = ?1", params![id, size])
                    .map_err(LibraryError::from)
            })
            .await?;
    }
    Ok(w)
}

/// What a PATCH carries besides its body.
#[derive(Debug, Clone, Default)]
pub struct PatchHeaders {
    pub offset: u64,
    pub checksum: Option<Checksum>,
    /// `Upload-Length`: declares a deferred length (or repeats the known one).
    pub length: Option<u64>,
}

/// Append the PATCH body at `offset`. The caller has checked that the upload is the caller's.
pub async fn append<S, B, E>(
    app: &App,
    actor: &Actor,
    mut upload: Upload,
    patch: PatchHeaders,
    mut body: S,
) -> Result<Appended, IngestError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
    E: Display,
{
    let slot = app.uploads.slot(&upload.id);
    let path = app.uploads.dir().join(&upload.partial_name);
    let mut guard = slot.try_lock_owned().map_err(|_| StoreError::InUse { path: path.clone() })?;
    // The open writer, when there is one, is ahead of the recorded offset by what is not yet
    // durable; otherwise continue from the recorded (durable) offset.
    let writer = match guard.take() {
        Some(w) => w,
        None => resume(app, &upload, upload.received).await?,
    };
    let PatchHeaders { offset, checksum, length } = patch;
    let start = writer.size();
    if offset != start {
        app.uploads.park(&upload.id, &mut guard, Some(writer));
        return Err(IngestError::OffsetMismatch { expected: start, got: offset });
    }
    if let Some(length) = length
        && let Err(e) = declare_length(app, &mut upload, length, start).await
    {
        app.uploads.park(&upload.id, &mut guard, Some(writer));
        return Err(e);
    }
    let room = upload.length - start;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<B>>(CHANNEL_BATCHES);
    let hasher = checksum.as_ref().map(ChunkHasher::for_checksum);
    let task = tokio::task::spawn_blocking(move || {
        let (mut w, mut hasher) = (writer, hasher);
        while let Some(batch) = rx.blocking_recv() {
            if let Err(e) = w.write_chunks(&batch) {
                return (w, Err(e), hasher);
            }
            if let Some(h) = &mut hasher {
                for chunk in &batch {
                    h.update(chunk.as_ref());
                }
            }
        }
        // No fsync here: the answer acknowledges what is in the file, and the trail makes it
        // durable (and reads it back) in steps while the client sends the next PATCH.
        let flushed = w.flush().map(drop);
        (w, flushed, hasher)
    });
    let mut batch = Vec::new();
    let mut batched = 0usize;
    let mut sent = 0u64;
    let mut refused: Option<IngestError> = None;
    let mut interrupted = false;
    loop {
        match body.next().await {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, upload = %upload.id, "PATCH body ended early; keeping what arrived");
                interrupted = true;
                break;
            }
            Some(Ok(b)) => {
                sent += b.as_ref().len() as u64;
                if sent > room {
                    refused = Some(IngestError::BadRequest(format!(
                        "the request sends more than the {} bytes declared in Upload-Length",
                        upload.length
                    )));
                    break;
                }
                batched += b.as_ref().len();
                batch.push(b);
                if batched >= BATCH_BYTES {
                    batched = 0;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if !batch.is_empty() && refused.is_none() {
        // A failed send means the writer stopped on an error, which the task's result reports.
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let (writer, written, hasher) = task.await.map_err(|e| IngestError::Task(e.to_string()))?;

    let checksum_failed = match (&checksum, hasher) {
        (Some(c), Some(h)) if refused.is_none() && !interrupted => (!h.matches(c)).then(|| c.algorithm()),
        // A chunk that cannot be checked (cut short or refused) is not kept.
        (Some(c), _) => Some(c.algorithm()),
        _ => None,
    };
    if let Err(e) = written {
        if matches!(e, StoreError::DiskFull { .. }) {
            drop_on_full_disk(app, actor, &upload, writer, guard, &e.to_string()).await?;
            return Err(e.into());
        }
        drop(writer);
        // What the failed writer left unsynced is not trusted: go back to the durable offset.
        let resumed = resume(app, &upload, upload.received).await.ok();
        app.uploads.park(&upload.id, &mut guard, resumed);
        return Err(e.into());
    }
    if refused.is_some() || checksum_failed.is_some() {
        // Cut the chunk off again: re-open at the offset acknowledged before it.
        drop(writer);
        match resume(app, &upload, start).await {
            Ok(w) => app.uploads.park(&upload.id, &mut guard, Some(w)),
            Err(e) => {
                app.uploads.park(&upload.id, &mut guard, None);
                return Err(e);
            }
        }
        return Err(match (refused, checksum_failed) {
            (Some(e), _) => e,
            (None, Some(algorithm)) => IngestError::ChecksumMismatch { algorithm },
            (None, None) => IngestError::Task("unreachable".into()),
        });
    }

    let new_offset = writer.size();
    let now = app.clock.now();
    let expires_at = now + i64::from(app.config.uploads.expire_hours) * 3600;
    // Record only what the trail has made durable so far (never less than before).
    let durable = writer.durable();
    let recorded = {
        let id = upload.id.clone();
        app.db
            .write(move |c| {
                c.execute(
                    "UPDATE uploads SET received = max(received, ?2), expires_at = ?3 WHERE id = ?1",
                    params![id, durable as i64, expires_at],
                )
                .map_err(LibraryError::from)
            })
            .await
    };
    if let Err(e) = recorded {
        let e = IngestError::from(e);
        if e.kind() == ErrorKind::InsufficientStorage {
            // SQLite found the disk full: the same as the store finding it full.
            drop_on_full_disk(app, actor, &upload, writer, guard, &e.to_string()).await?;
            return Err(e);
        }
        drop(writer);
        let resumed = resume(app, &upload, upload.received).await.ok();
        app.uploads.park(&upload.id, &mut guard, resumed);
        return Err(e);
    }
    let head_len = (detect::HEAD_LEN as u64).min(upload.length);
    if start < head_len && new_offset >= head_len && new_offset < upload.length {
        // Enough has arrived to know what the file is: refuse an unwanted type now rather than
        // after the whole file (the last PATCH checks again, with the whole file at hand).
        if let Err(e) = check_head(app, &path, head_len).await {
            drop(writer);
            discard(app, &upload, Some(actor), "upload.rejected", &e.to_string()).await?;
            return Err(e);
        }
    }
    if upload.length_deferred || new_offset < upload.length {
        app.uploads.park(&upload.id, &mut guard, Some(writer));
        return Ok(Appended { offset: new_offset, expires_at, completed: None });
    }
    let item = complete(app, actor, &upload, writer, &path).await;
    app.uploads.forget(&upload.id);
    drop(guard);
    Ok(Appended { offset: new_offset, expires_at, completed: Some(item?) })
}

/// A PATCH's `Upload-Length`: for a deferred upload, the length from now on (checked against
/// the maximum size and what has arrived before any byte of this PATCH is written); otherwise it
/// must repeat the length declared at creation.
async fn declare_length(
    app: &App,
    upload: &mut Upload,
    length: u64,
    received: u64,
) -> Result<(), IngestError> {
    if !upload.length_deferred {
        return if length == upload.length {
            Ok(())
        } else {
            Err(IngestError::BadRequest(format!(
                "Upload-Length cannot change: this upload was created with {} bytes",
                upload.length
            )))
        };
    }
    let max = app.config.uploads.max_size_bytes;
    if length > max {
        return Err(IngestError::TooLarge { size: length, max });
    }
    if length == 0 {
        return Err(DetectError::Empty.into());
    }
    if length < received {
        return Err(IngestError::BadRequest(format!(
            "Upload-Length {length} is less than the {received} bytes already received"
        )));
    }
    let (id, metadata) = (upload.id.clone(), metadata_json(&upload.metadata, false));
    app.db
        .write(move |c| {
            c.execute(
                "UPDATE uploads SET length = ?2, metadata = ?3 WHERE id = ?1",
                params![id, length as i64, metadata],
            )
            .map_err(LibraryError::from)
        })
        .await?;
    upload.length = length;
    upload.length_deferred = false;
    Ok(())
}

async fn check_head(app: &App, path: &Path, head_len: u64) -> Result<(), IngestError> {
    use std::io::Read;
    let (path, allowed) = (path.to_path_buf(), app.config.uploads.kinds());
    tokio::task::spawn_blocking(move || {
        let mut head = Vec::with_capacity(head_len as usize);
        std::fs::File::open(&path)
            .and_then(|f| f.take(head_len).read_to_end(&mut head))
            .map_err(|e| StoreError::io_at("reading", &path, e))?;
        if head.starts_with(&OLE2_MAGIC) {
            return Ok(());
        }
        detect::detect_among(&head, &allowed).map(drop).map_err(IngestError::from)
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))?
}

/// The last byte arrived: detect the kind, verify the whole-file hash, store, complete the item.
/// Any refusal removes the item and the bytes.
async fn complete(
    app: &App,
    actor: &Actor,
    upload: &Upload,
    mut writer: BlobWriter,
    path: &Path,
) -> Result<MediaItem, IngestError> {
    let allowed = app.config.uploads.kinds();
    let detect_path = path.to_path_buf();
    let expected = Sha256::from_hex(&upload.expected_sha256)?;
    let outcome = tokio::task::spawn_blocking(move || {
        let detected = detect::detect_file(&detect_path, &allowed)?;
        super::check_image(&mut writer, &detected, &expected)?;
        let stored = writer.finish(Some(&expected)).map_err(|e| match e {
            StoreError::HashMismatch { expected, actual } => IngestError::DigestMismatch { expected, actual },
            other => IngestError::Store(other),
        })?;
        Ok::<_, IngestError>((detected, stored))
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))?;
    let (detected, stored) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let action = if matches!(e, IngestError::Store(_)) { "upload.failed" } else { "upload.rejected" };
            discard(app, upload, Some(actor), action, &e.to_string()).await?;
            return Err(e);
        }
    };
    let content = StoredContent {
        kind: detected.kind,
        mime: detected.mime.to_string(),
        size: stored.size,
        sha256: stored.hash.to_hex(),
    };
    let now = app.clock.now();
    let (actor, media_id, id) = (actor.clone(), upload.media_id, upload.id.clone());
    let item = app
        .db
        .write(move |conn| {
            with_full_sync(conn, |conn| {
                let tx = conn.transaction()?;
                let item = media::complete_upload(&tx, media_id, &content, now)?;
                tx.execute("DELETE FROM uploads WHERE id = ?1", [&id])?;
                audit::record(
                    &tx,
                    &actor.event("upload.completed").target("media", item.id, &item.title).detail(format!(
                        "{} {} bytes sha256 {} (tus upload {id})",
                        item.original_filename, item.size, content.sha256
                    )),
                    now,
                )?;
                tx.commit()?;
                Ok(item)
            })
        })
        .await?;
    crate::library::renditions::after_upload(app, &item).await;
    Ok(item)
}

/// Remove an unfinished upload: its item, its row and its bytes (termination, refusal, expiry).
pub async fn discard(
    app: &App,
    upload: &Upload,
    actor: Option<&Actor>,
    action: &'static str,
    detail: &str,
) -> Result<(), IngestError> {
    app.uploads.forget(&upload.id);
    let now = app.clock.now();
    let event = match actor {
        Some(a) => a.event(action),
        None => audit::Event::new(action).actor(None, "reelbox"),
    }
    .target("media", upload.media_id, &upload.id)
    .outcome(if action == "upload.terminated" { Outcome::Success } else { Outcome::Failure })
    .detail(detail.to_string());
    let media_id = upload.media_id;
    app.db
        .write(move |conn| {
            let tx = conn.transaction()?;
            // The item owns the upload row (ON DELETE CASCADE).
            if media::get(&tx, media_id)?.is_some() {
                media::remove_unfinished(&tx, media_id)?;
            }
            audit::record(&tx, &event, now)?;
            tx.commit()?;
            Ok::<_, LibraryError>(())
        })
        .await?;
    remove_partial(app, upload).await
}

/// Keeping a partial upload on a full disk helps nobody and holds space others need: remove its
/// bytes and its item now; the client starts again once there is room. The bytes go first, with
/// the writer closed everywhere (its trail joined, off the runtime), so that the space is free
/// when the database records the removal.
async fn drop_on_full_disk<G>(
    app: &App,
    actor: &Actor,
    upload: &Upload,
    writer: BlobWriter,
    guard: G,
    detail: &str,
) -> Result<(), IngestError> {
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .map_err(|e| IngestError::Task(e.to_string()))?;
    drop(guard);
    remove_partial(app, upload).await?;
    discard(app, upload, Some(actor), "upload.failed", detail).await
}

async fn remove_partial(app: &App, upload: &Upload) -> Result<(), IngestError> {
    let path = app.uploads.dir().join(&upload.partial_name);
    tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io_at("removing", &path, e)),
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))??;
    Ok(())
}

/// Termination (DELETE): refused while a PATCH is writing.
pub async fn terminate(app: &App, actor: &Actor, upload: &Upload) -> Result<(), IngestError> {
    let slot = app.uploads.slot(&upload.id);
    let path = app.uploads.dir().join(&upload.partial_name);
    let guard = slot.try_lock_owned().map_err(|_| StoreError::InUse { path })?;
    drop(guard);
    discard(app, upload, Some(actor), "upload.terminated", "cancelled by the uploader").await
}

/// Remove uploads past their expiry, and partial files no upload owns (a crash between the
/// row and the file). Returns how many uploads expired.
pub async fn expire(app: &App) -> Result<usize, IngestError> {
    let now = app.clock.now();
    let stale = app.db.read(move |c| expired(c, now)).await?;
    for upload in &stale {
        if app.uploads.slot(&upload.id).try_lock().is_err() {
            continue; // being written right now; it is not abandoned
        }
        discard(app, upload, None, "upload.expired", "abandoned; its bytes were removed").await?;
    }
    let known: std::collections::HashSet<String> = app
        .db
        .read(|c| {
            let mut stmt = c.prepare("SELECT partial_name FROM uploads")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
            Ok::<_, LibraryError>(names)
        })
        .await?;
    let dir = app.uploads.dir().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let entries = std::fs::read_dir(&dir).map_err(|e| StoreError::io_at("listing", &dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") && !known.contains(&name) {
                tracing::info!(file = %name, "removing a partial upload nobody owns");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok::<_, StoreError>(())
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))??;
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::db::ids::CategoryId;
    use crate::library::categories::{self, NewCategory};

    fn app(dir: &Path) -> (App, CategoryId) {
        let config = crate::config::Config { data_dir: dir.to_path_buf(), ..Default::default() };
        let db = crate::db::Db::open(dir, 2).expect("db");
        let store = crate::store::BlobStore::open(dir).expect("store");
        let uploads = Uploads::open(dir).expect("uploads");
        let app = App::new(config, db, store, uploads, Clock::manual(1_000_000), None).expect("app");
        let cat = app
            .db
            .write_blocking(|c| {
                categories::create(
                    c,
                    NewCategory { name: "S", parent_id: None, description: "", public: false },
                    1,
                )
            })
            .expect("category");
        (app, cat.id)
    }

    fn new_upload(cat: CategoryId, data: &[u8]) -> NewUpload {
        NewUpload {
            category: cat,
            filename: "clip.mp4".into(),
            title: String::new(),
            length: data.len() as u64,
            deferred: false,
            expected: Sha256::digest(data),
            raw_metadata: String::new(),
        }
    }

    #[tokio::test]
    async fn abandoned_uploads_expire_with_their_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, cat) = app(dir.path());
        let actor = Actor { id: None, name: "tess".into(), addr: String::new() };
        let data = vec![7u8; 1000];
        let (old, _) = create(&app, &actor, new_upload(cat, &data)).await.expect("create");
        let chunk = futures_util::stream::iter([Ok::<_, std::io::Error>(data[..400].to_vec())]);
        let done = append(&app, &actor, old.clone(), PatchHeaders::default(), chunk).await.expect("append");
        assert_eq!((done.offset, done.completed.is_some()), (400, false));
        let partial = app.uploads.dir().join(&old.partial_name);
        assert_eq!(std::fs::metadata(&partial).expect("partial").len(), 400);
        std::fs::write(app.uploads.dir().join("orphan.part"), b"left by a crash").expect("orphan");

        // Not yet: 23 hours later.
        app.clock.advance(23 * 3600);
        let (fresh, _) = create(&app, &actor, new_upload(cat, &data)).await.expect("create");
        assert_eq!(expire(&app).await.expect("expire"), 0);
        assert!(partial.exists());
        assert!(!app.uploads.dir().join("orphan.part").exists(), "files nobody owns are removed");

        app.clock.advance(2 * 3600);
        assert_eq!(expire(&app).await.expect("expire"), 1);
        assert!(!partial.exists(), "the bytes are removed");
        let (gone, item) = app
            .db
            .read(move |c| Ok::<_, LibraryError>((get(c, &old.id)?, media::get(c, old.media_id)?)))
            .await
            .expect("read");
        assert!(gone.is_none() && item.is_none(), "row and item are removed");
        let kept = app.db.read(move |c| get(c, &fresh.id)).await.expect("read");
        assert!(kept.is_some(), "the newer upload is kept");
        let events = app
            .db
            .read(|c| {
                audit::list(c, &audit::Filter { action: "upload.expired".into(), ..Default::default() })
                    .map_err(LibraryError::from)
            })
            .await
            .expect("audit");
        assert_eq!(events.len(), 1);
    }
}
