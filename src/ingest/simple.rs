//! Single-request uploads for scripts: the body is the file, `Content-Digest` its SHA-256.
//! The body is streamed to a blocking thread that writes and hashes; the async side only
//! counts bytes and passes them on, so a slow disk never stalls an async worker.

use std::fmt::Display;

use futures_util::{Stream, StreamExt};

use super::detect::{DetectError, HEAD_LEN};
use super::{IngestError, OLE2_MAGIC, check_kind, detect};
use crate::App;
use crate::accounts::login::Actor;
use crate::db::ids::CategoryId;
use crate::insights::audit::{self, Outcome};
use crate::library::LibraryError;
use crate::library::media::{self, MediaItem, NewMedia, StoredContent};
use crate::store::{BlobWriter, Sha256, StoreError, Stored};

use super::{BATCH_BYTES, CHANNEL_BATCHES};

pub struct SimpleUpload {
    pub category: CategoryId,
    pub filename: String,
    pub title: String,
    /// From `Content-Digest`.
    pub expected: Sha256,
    /// From `Content-Length`, when the client sent one.
    pub declared_len: Option<u64>,
}

enum Chunk<B> {
    Head(Vec<u8>),
    Body(B),
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Chunk<B> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Chunk::Head(v) => v,
            Chunk::Body(b) => b.as_ref(),
        }
    }
}

/// Store the body and create its item (the caller has checked `contribute` on the category).
/// Refusals are audited as `upload.rejected`; success as `upload.completed`, in the same
/// transaction as the row.
pub async fn upload<S, B, E>(
    app: &App,
    actor: &Actor,
    up: SimpleUpload,
    body: S,
) -> Result<MediaItem, IngestError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
    E: Display,
{
    let filename = up.filename.clone();
    let category = up.category;
    match store_and_record(app, actor, up, body).await {
        Ok(item) => Ok(item),
        Err(e) => {
            if matches!(
                e,
                IngestError::DigestMismatch { .. }
                    | IngestError::Detect(_)
                    | IngestError::TooLarge { .. }
                    | IngestError::Incomplete { .. }
            ) {
                record_rejection(app, actor, category, &filename, &e).await;
            }
            Err(e)
        }
    }
}

pub(crate) async fn record_rejection(
    app: &App,
    actor: &Actor,
    category: CategoryId,
    filename: &str,
    e: &IngestError,
) {
    let event = actor
        .event("upload.rejected")
        .target("category", category, filename)
        .outcome(Outcome::Failure)
        .detail(e.to_string());
    let now = app.clock.now();
    if let Err(err) = app.db.write(move |c| audit::record(c, &event, now)).await {
        tracing::warn!(error = %err, "could not record a rejected upload in the audit trail");
    }
}

async fn store_and_record<S, B, E>(
    app: &App,
    actor: &Actor,
    up: SimpleUpload,
    mut body: S,
) -> Result<MediaItem, IngestError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
    E: Display,
{
    let max = app.config.uploads.max_size_bytes;
    match up.declared_len {
        Some(n) if n > max => return Err(IngestError::TooLarge { size: n, max }),
        Some(0) => return Err(DetectError::Empty.into()),
        _ => {}
    }
    // Look at the first bytes before anything is written: an unwanted type is refused early.
    let mut head = Vec::new();
    let mut pending: Option<B> = None;
    while head.len() < HEAD_LEN {
        match body.next().await {
            None => break,
            Some(Err(e)) => return Err(IngestError::Interrupted(e.to_string())),
            Some(Ok(b)) => {
                let bytes = b.as_ref();
                if head.len() + bytes.len() <= HEAD_LEN {
                    head.extend_from_slice(bytes);
                } else {
                    pending = Some(b);
                    break;
                }
            }
        }
    }
    let mut size = head.len() as u64 + pending.as_ref().map_or(0, |b| b.as_ref().len() as u64);
    if size > max {
        return Err(IngestError::TooLarge { size, max });
    }
    let sniff: &[u8] = if head.is_empty() { pending.as_ref().map_or(&[], |b| b.as_ref()) } else { &head };
    let allowed = app.config.uploads.kinds();
    let detected = if sniff.starts_with(&OLE2_MAGIC) { None } else { Some(check_kind(sniff, &allowed)?) };

    let store = app.store.clone();
    // Batches of chunks, so the writer thread is woken once per megabyte, not once per socket read.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk<B>>>(CHANNEL_BATCHES);
    // Dropping the sender without reaching `finish` drops the writer, which removes its temp file.
    let writer = tokio::task::spawn_blocking(move || -> Result<BlobWriter, StoreError> {
        let mut w = store.writer()?;
        while let Some(batch) = rx.blocking_recv() {
            if let Err(e) = w.write_chunks(&batch) {
                // Removed and closed everywhere before the answer: on a full disk the space is
                // free again when the client hears of it.
                w.close();
                return Err(e);
            }
        }
        Ok(w)
    });
    let mut batch = vec![];
    if !head.is_empty() {
        batch.push(Chunk::Head(head));
    }
    if let Some(b) = pending {
        batch.push(Chunk::Body(b));
    }
    let mut batched = size as usize;
    let mut writer_gone = false;
    while !writer_gone {
        match body.next().await {
            None => break,
            Some(Err(e)) => return Err(IngestError::Interrupted(e.to_string())),
            Some(Ok(b)) => {
                let len = b.as_ref().len();
                size += len as u64;
                if size > max {
                    return Err(IngestError::TooLarge { size, max });
                }
                batch.push(Chunk::Body(b));
                batched += len;
                if batched >= BATCH_BYTES {
                    writer_gone = tx.send(std::mem::take(&mut batch)).await.is_err();
                    batched = 0;
                }
            }
        }
    }
    if !batch.is_empty() && !writer_gone {
        // A failed send means the writer stopped on an error, which `writer.await` reports.
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let w = writer.await.map_err(|e| IngestError::Task(e.to_string()))??;
    if let Some(declared) = up.declared_len
        && declared != w.size()
    {
        return Err(IngestError::Incomplete { expected: declared, received: w.size() });
    }
    let expected = up.expected;
    let (detected, stored): (detect::Detected, Stored) = tokio::task::spawn_blocking(move || {
        let mut w = w;
        let detected = match detected {
            Some(d) => d,
            None => {
                w.sync()?;
                detect::detect_file(w.path(), &allowed)?
            }
        };
        super::check_image(&mut w, &detected, &expected)?;
        let stored = w.finish(Some(&expected)).map_err(|e| match e {
            StoreError::HashMismatch { expected, actual } => IngestError::DigestMismatch { expected, actual },
            other => IngestError::Store(other),
        })?;
        Ok::<_, IngestError>((detected, stored))
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))??;

    // The blob is fsynced, in place and re-read: now the row may point to it.
    let content = StoredContent {
        kind: detected.kind,
        mime: detected.mime.to_string(),
        size: stored.size,
        sha256: stored.hash.to_hex(),
    };
    let now = app.clock.now();
    let (actor, dedup) = (actor.clone(), stored.deduplicated);
    let item = app
        .db
        .write(move |conn| {
            with_full_sync(conn, |conn| {
                let tx = conn.transaction()?;
                let item = media::create(
                    &tx,
                    NewMedia {
                        category_id: up.category,
                        owner_id: actor.id,
                        title: &up.title,
                        filename: &up.filename,
                        content: Some(content),
                    },
                    now,
                )?;
                audit::record(
                    &tx,
                    &actor.event("upload.completed").target("media", item.id, &item.title).detail(format!(
                        "{} {} bytes sha256 {}{}",
                        item.original_filename,
                        item.size,
                        item.sha256.as_deref().unwrap_or(""),
                        if dedup { " (content already stored)" } else { "" }
                    )),
                    now,
                )?;
                tx.commit()?;
                Ok::<_, LibraryError>(item)
            })
        })
        .await?;
    crate::library::renditions::after_upload(app, &item).await;
    Ok(item)
}

/// Run `f` with `synchronous = FULL`: the commit that acknowledges an upload must survive a
/// power cut, not just a crash.
pub(crate) fn with_full_sync<T>(
    conn: &mut rusqlite::Connection,
    f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, LibraryError>,
) -> Result<T, LibraryError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let result = f(conn);
    let restored = conn.pragma_update(None, "synchronous", "NORMAL");
    let value = result?;
    restored?;
    Ok(value)
}
