//! Renditions: files derived from an item's original, stored as blobs like the originals (so
//! replication, backups and the scrub copy and check them) and listed in the table
//! `renditions`. For now the JPEG thumbnails of images, made when an upload completes.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::LibraryError;
use super::media::{MediaItem, MediaKind};
use super::thumbnails::{self, ThumbnailError};
use crate::clock::Timestamp;
use crate::db::Db;
use crate::db::ids::MediaId;
use crate::error::AppError;
use crate::insights::audit::{self, Outcome};
use crate::store::{BlobStore, Sha256, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendition {
    pub media_id: MediaId,
    pub name: String,
    pub sha256: String,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    pub created_at: Timestamp,
}

/// The name of the thumbnail whose longest edge is `edge` pixels ("thumb-320").
pub fn thumbnail_name(edge: u32) -> String {
    format!("thumb-{edge}")
}

/// A thumbnail size a client may ask for, or `None`.
pub fn thumbnail_size(edge: u32) -> Option<u32> {
    thumbnails::SIZES.into_iter().find(|s| *s == edge)
}

pub fn get(conn: &Connection, media: MediaId, name: &str) -> Result<Option<Rendition>, LibraryError> {
    Ok(conn
        .query_row(
            "SELECT media_id, name, sha256, mime, width, height, size, created_at
             FROM renditions WHERE media_id = ?1 AND name = ?2",
            params![media, name],
            |r| {
                Ok(Rendition {
                    media_id: r.get(0)?,
                    name: r.get(1)?,
                    sha256: r.get(2)?,
                    mime: r.get(3)?,
                    width: r.get::<_, i64>(4)?.clamp(0, u32::MAX as i64) as u32,
                    height: r.get::<_, i64>(5)?.clamp(0, u32::MAX as i64) as u32,
                    size: r.get::<_, i64>(6)?.max(0) as u64,
                    created_at: r.get(7)?,
                })
            },
        )
        .optional()?)
}

/// Record (or replace) a rendition whose blob is already stored and verified.
pub fn put(conn: &Connection, r: &Rendition) -> Result<(), LibraryError> {
    conn.execute(
        "INSERT INTO renditions (media_id, name, sha256, mime, width, height, size, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (media_id, name) DO UPDATE SET sha256 = excluded.sha256, mime = excluded.mime,
             width = excluded.width, height = excluded.height, size = excluded.size,
             created_at = excluded.created_at",
        params![r.media_id, r.name, r.sha256, r.mime, r.width, r.height, r.size as i64, r.created_at],
    )?;
    Ok(())
}

/// What happened when thumbnails were asked for.
#[derive(Debug)]
pub enum ThumbnailOutcome {
    /// Not an image, or no stored original: nothing to do.
    NotAnImage,
    Made(Vec<Rendition>),
    /// The image does not decode (or is over the limits): no thumbnails, the reason audited.
    Undecodable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RenditionError {
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Library(#[from] LibraryError),
}

impl From<crate::db::DbError> for RenditionError {
    fn from(e: crate::db::DbError) -> Self {
        RenditionError::Library(LibraryError::Db(e))
    }
}

impl From<rusqlite::Error> for RenditionError {
    fn from(e: rusqlite::Error) -> Self {
        RenditionError::Library(e.into())
    }
}

/// Make the 320 and 960 px JPEG thumbnails of an image item, store them as blobs and record
/// them. Blocking (decodes the image): run it in `spawn_blocking`.
///
/// An image that does not decode keeps its item as it is and gets no thumbnails; the reason is
/// audited as `media.preview_failed` so an administrator can find it.
pub fn make_image_thumbnails(
    db: &Db,
    store: &BlobStore,
    item: &MediaItem,
    now: Timestamp,
) -> Result<ThumbnailOutcome, RenditionError> {
    let Some(hex) = item.sha256.as_deref().filter(|_| item.kind == Some(MediaKind::Image)) else {
        return Ok(ThumbnailOutcome::NotAnImage);
    };
    let hash = Sha256::from_hex(hex)?;
    let thumbs = match thumbnails::thumbnails_of_file(&store.path(&hash), &thumbnails::SIZES) {
        Ok(t) => t,
        Err(e) if e.kind().is_client_error() => {
            let reason = e.to_string();
            let event = audit::Event::new("media.preview_failed")
                .actor(None, "reelbox")
                .target("media", item.id, &item.title)
                .outcome(Outcome::Failure)
                .detail(reason.clone());
            db.write_blocking(|c| audit::record(c, &event, now))?;
            return Ok(ThumbnailOutcome::Undecodable(reason));
        }
        Err(e) => return Err(e.into()),
    };
    let mut made = Vec::with_capacity(thumbs.len());
    for (edge, t) in thumbnails::SIZES.into_iter().zip(thumbs) {
        let stored = store.put_bytes(&t.bytes, None)?;
        made.push(Rendition {
            media_id: item.id,
            name: thumbnail_name(edge),
            sha256: stored.hash.to_hex(),
            mime: t.mime.to_string(),
            width: t.width,
            height: t.height,
            size: stored.size,
            created_at: now,
        });
    }
    let id = item.id;
    let rows = made.clone();
    db.write_blocking(move |c| {
        let tx = c.transaction()?;
        // The item may have been removed meanwhile (an unfinished upload cannot be, but be safe).
        if super::media::get(&tx, id)?.is_some() {
            for r in &rows {
                put(&tx, r)?;
            }
        }
        tx.commit()?;
        Ok::<_, RenditionError>(())
    })?;
    Ok(ThumbnailOutcome::Made(made))
}

/// After an upload commits: queue a video's or audio's transcode; make an image's thumbnails
/// on the blocking pool. Failures are
/// logged, never returned: the upload itself has succeeded and the item page falls back to a
/// placeholder.
pub async fn after_upload(app: &crate::App, item: &MediaItem) {
    if matches!(item.kind, Some(MediaKind::Video | MediaKind::Audio)) {
        // The transcoder's workers pick it up; the item stays `processing` until they finish.
        if let Err(e) = crate::transcode::worker::enqueue(app, item.id).await {
            tracing::error!(media = %item.id, error = %e, "queueing the transcode failed");
        }
        return;
    }
    if item.kind != Some(MediaKind::Image) {
        return;
    }
    let (db, store, item, now) = (app.db.clone(), app.store.clone(), item.clone(), app.clock.now());
    let id = item.id;
    match tokio::task::spawn_blocking(move || make_image_thumbnails(&db, &store, &item, now)).await {
        Ok(Ok(ThumbnailOutcome::Undecodable(reason))) => {
            tracing::warn!(media = %id, %reason, "uploaded image does not decode; no thumbnails");
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(media = %id, error = %e, "making thumbnails failed"),
        Err(e) => tracing::error!(media = %id, error = %e, "thumbnail task panicked"),
    }
}

/// Every stored file the library points at (originals and renditions), with its size: what a
/// replica must hold so that everything that plays on the primary plays on it.
pub fn blobs_in_use(conn: &Connection) -> Result<Vec<(String, u64)>, LibraryError> {
    let mut stmt = conn.prepare(
        "SELECT sha256, max(size) FROM (
             SELECT sha256, size FROM media_items
              WHERE sha256 IS NOT NULL AND status IN ('processing', 'ready', 'recycled', 'archived')
             UNION ALL SELECT sha256, size FROM renditions)
         GROUP BY sha256 ORDER BY sha256",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::categories::{self, NewCategory};
    use crate::library::media::{self, NewMedia, StoredContent};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).expect("encode png");
        out.into_inner()
    }

    fn item_with(db: &Db, store: &BlobStore, bytes: &[u8]) -> MediaItem {
        let stored = store.put_bytes(bytes, None).expect("store original");
        db.write_blocking(|c| {
            let cat = categories::create(
                c,
                NewCategory { name: "Art", parent_id: None, description: "", public: false },
                1,
            )?;
            media::create(
                c,
                NewMedia {
                    category_id: cat.id,
                    owner_id: None,
                    title: "",
                    filename: "a.png",
                    content: Some(StoredContent {
                        kind: MediaKind::Image,
                        mime: "image/png".into(),
                        size: stored.size,
                        sha256: stored.hash.to_hex(),
                    }),
                },
                1,
            )
        })
        .expect("item")
    }

    #[test]
    fn thumbnails_are_blobs_and_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let store = BlobStore::open(dir.path()).expect("store");
        let item = item_with(&db, &store, &png(1200, 600));
        let ThumbnailOutcome::Made(made) = make_image_thumbnails(&db, &store, &item, 5).expect("thumbs")
        else {
            panic!("expected thumbnails")
        };
        assert_eq!(made.len(), 2);
        let small = db.read_blocking(|c| get(c, item.id, "thumb-320")).expect("get").expect("row");
        assert_eq!((small.width, small.height, small.mime.as_str()), (320, 160, "image/jpeg"));
        let large = db.read_blocking(|c| get(c, item.id, "thumb-960")).expect("get").expect("row");
        assert_eq!((large.width, large.height), (960, 480));
        let hash = Sha256::from_hex(&large.sha256).expect("hex");
        assert!(store.verify(&hash).expect("verify"), "the blob is stored under its hash");
        assert_eq!(store.size(&hash).expect("size"), large.size);
        // Again: replaced, not duplicated.
        make_image_thumbnails(&db, &store, &item, 6).expect("again");
        let count: i64 = db
            .read_blocking(|c| {
                c.query_row("SELECT count(*) FROM renditions", [], |r| r.get(0)).map_err(LibraryError::from)
            })
            .expect("count");
        assert_eq!(count, 2);
    }

    #[test]
    fn undecodable_images_get_no_thumbnails_and_an_audit_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let store = BlobStore::open(dir.path()).expect("store");
        let mut fake = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
        fake.extend([7u8; 500]);
        let item = item_with(&db, &store, &fake);
        let out = make_image_thumbnails(&db, &store, &item, 5).expect("handled");
        assert!(matches!(out, ThumbnailOutcome::Undecodable(_)), "{out:?}");
        assert!(db.read_blocking(|c| get(c, item.id, "thumb-320")).expect("get").is_none());
        let audited: i64 = db
            .read_blocking(|c| {
                c.query_row(
                    "SELECT count(*) FROM audit_events WHERE action = 'media.preview_failed'",
                    [],
                    |r| r.get(0),
                )
                .map_err(LibraryError::from)
            })
            .expect("count");
        assert_eq!(audited, 1);
        assert_eq!(thumbnail_size(320), Some(320));
        assert_eq!(thumbnail_size(100), None);
    }
}
