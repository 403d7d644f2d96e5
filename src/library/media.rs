//! Media items: one row per upload, pointing to its bytes in the blob store by SHA-256.
//! Identical content is stored once, but each upload is its own item. Owns the tables
//! `media_items` and `media_search` (FTS5, kept in step by triggers).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::LibraryError;
use crate::clock::Timestamp;
use crate::db::ids::{CategoryId, MediaId, UserId};

/// Longest title kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                $name::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown {} {s:?}", stringify!($name)).into()))
            }
        }
    };
}

/// What an item is, detected from its content (never from the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
    Image,
    Document,
}
text_enum!(MediaKind { Video => "video", Audio => "audio", Image => "image", Document => "document" });

impl MediaKind {
    /// The status an item of this kind has once its bytes are stored: video and audio wait for
    /// the transcoder, the rest can be shown straight away.
    pub fn status_when_stored(self) -> MediaStatus {
        match self {
            MediaKind::Video | MediaKind::Audio => MediaStatus::Processing,
            MediaKind::Image | MediaKind::Document => MediaStatus::Ready,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    Uploading,
    Processing,
    Ready,
    Failed,
    Recycled,
    Archived,
}
text_enum!(MediaStatus {
    Uploading => "uploading", Processing => "processing", Ready => "ready",
    Failed => "failed", Recycled => "recycled", Archived => "archived",
});

impl MediaStatus {
    /// Items that the people who may view the category see (recycled and archived items are
    /// hidden from everyone but managers and administrators).
    pub fn is_listed(self) -> bool {
        matches!(self, MediaStatus::Processing | MediaStatus::Ready)
    }
    /// Whether the original's bytes are in the store.
    pub fn has_original(self) -> bool {
        matches!(
            self,
            MediaStatus::Processing | MediaStatus::Ready | MediaStatus::Recycled | MediaStatus::Archived
        )
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaItem {
    pub id: MediaId,
    pub category_id: CategoryId,
    pub owner_id: Option<UserId>,
    pub title: String,
    pub description: String,
    pub tags: String,
    pub original_filename: String,
    pub kind: Option<MediaKind>,
    pub mime: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
    pub status: MediaStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub recycled_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
}

const SELECT: &str =
    "SELECT id, category_id, owner_id, title, description, tags, original_filename, kind, mime,
                             size, sha256, status, created_at, updated_at, recycled_at, archived_at
                      FROM media_items";

/// A `MediaItem` from the first 16 columns, in the order of `SELECT` (the catalogue reuses it).
pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaItem> {
    Ok(MediaItem {
        id: r.get(0)?,
        category_id: r.get(1)?,
        owner_id: r.get(2)?,
        title: r.get(3)?,
        description: r.get(4)?,
        tags: r.get(5)?,
        original_filename: r.get(6)?,
        kind: r.get(7)?,
        mime: r.get(8)?,
        size: r.get::<_, i64>(9)?.max(0) as u64,
        sha256: r.get(10)?,
        status: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        recycled_at: r.get(14)?,
        archived_at: r.get(15)?,
    })
}

/// What the bytes turned out to be, once stored and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    pub kind: MediaKind,
    pub mime: String,
    pub size: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

pub struct NewMedia<'a> {
    pub category_id: CategoryId,
    pub owner_id: Option<UserId>,
    /// Empty: derived from the file name.
    pub title: &'a str,
    /// As the client sent it; sanitised here.
    pub filename: &'a str,
    /// `None` while a resumable upload is in progress (status `uploading`).
    pub content: Option<StoredContent>,
}

/// Create an item: `uploading` without content, otherwise in the status its kind starts in.
pub fn create(conn: &Connection, new: NewMedia<'_>, now: Timestamp) -> Result<MediaItem, LibraryError> {
    let filename = crate::ingest::detect::sanitise_filename(new.filename);
    let title = match clean_text(new.title, MAX_NAME_CHARS) {
        t if t.is_empty() => title_from_filename(&filename),
        t => t,
    };
    let status = new.content.as_ref().map_or(MediaStatus::Uploading, |c| c.kind.status_when_stored());
    let c = new.content.as_ref();
    conn.execute(
        "INSERT INTO media_items (category_id, owner_id, title, original_filename, kind, mime, size, sha256,
                                  status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            new.category_id,
            new.owner_id,
            title,
            filename,
            c.map(|c| c.kind),
            c.map(|c| c.mime.as_str()),
            c.map_or(0, |c| c.size as i64),
            c.map(|c| c.sha256.as_str()),
            status,
            now
        ],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            LibraryError::NotFound("category")
        }
        other => other.into(),
    })?;
    require(conn, MediaId(conn.last_insert_rowid()))
}

pub fn get(conn: &Connection, id: MediaId) -> Result<Option<MediaItem>, LibraryError> {
    Ok(get_row(conn, id)?)
}

/// [`get`] with SQLite's own error, for [`crate::db::Db::read_point`].
pub fn get_row(conn: &Connection, id: MediaId) -> rusqlite::Result<Option<MediaItem>> {
    // Cached: this runs for every segment a player fetches.
    conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?.query_row([id], from_row).optional()
}

pub fn require(conn: &Connection, id: MediaId) -> Result<MediaItem, LibraryError> {
    get(conn, id)?.ok_or(LibraryError::NotFound("media item"))
}

/// Attach verified content to an item that was `uploading`.
pub fn complete_upload(
    conn: &Connection,
    id: MediaId,
    content: &StoredContent,
    now: Timestamp,
) -> Result<MediaItem, LibraryError> {
    let changed = conn.execute(
        "UPDATE media_items SET kind = ?2, mime = ?3, size = ?4, sha256 = ?5, status = ?6, updated_at = ?7
         WHERE id = ?1 AND status = 'uploading'",
        params![
            id,
            content.kind,
            content.mime,
            content.size as i64,
            content.sha256,
            content.kind.status_when_stored(),
            now
        ],
    )?;
    if changed == 0 {
        require(conn, id)?;
        return Err(LibraryError::WrongStatus("the upload of this item is already complete"));
    }
    require(conn, id)
}

/// The transcoder's verdict on a video or audio item: `processing` becomes `ready` (or
/// `failed`). An item recycled meanwhile keeps its place in the bin and is restored as `ready`.
pub fn set_processed(conn: &Connection, id: MediaId, ok: bool, now: Timestamp) -> Result<(), LibraryError> {
    let to = if ok { MediaStatus::Ready } else { MediaStatus::Failed };
    conn.execute(
        "UPDATE media_items SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'processing'",
        params![id, to, now],
    )?;
    if ok {
        conn.execute(
            "UPDATE media_items SET status_before_recycle = 'ready'
             WHERE id = ?1 AND status IN ('recycled', 'archived') AND status_before_recycle = 'processing'",
            [id],
        )?;
    }
    Ok(())
}

/// A failed video or audio item goes back to `processing` for another try.
pub fn reopen_for_processing(conn: &Connection, id: MediaId, now: Timestamp) -> Result<(), LibraryError> {
    conn.execute(
        "UPDATE media_items SET status = 'processing', updated_at = ?2
         WHERE id = ?1 AND status = 'failed' AND sha256 IS NOT NULL AND kind IN ('video', 'audio')",
        params![id, now],
    )?;
    Ok(())
}

/// Remove an item whose upload never completed (rejected, terminated or expired). Items with
/// stored content are never removed this way: they go through the recycle bin and archive.
pub fn remove_unfinished(conn: &Connection, id: MediaId) -> Result<MediaItem, LibraryError> {
    let item = require(conn, id)?;
    if !matches!(item.status, MediaStatus::Uploading | MediaStatus::Failed) {
        return Err(LibraryError::WrongStatus("only unfinished uploads can be removed"));
    }
    conn.execute("DELETE FROM media_items WHERE id = ?1", [id])?;
    Ok(item)
}

/// Ids of items matching a full-text query (FTS5 syntax is not exposed: each word is a
/// prefix term, all must match), best first.
pub fn search_ids(conn: &Connection, query: &str, limit: u32) -> Result<Vec<MediaId>, LibraryError> {
    let terms: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT rowid FROM media_search WHERE media_search MATCH ?1 ORDER BY rank LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![terms.join(" "), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Change what people type about an item (title, description, tags).
pub fn update_text(
    conn: &Connection,
    id: MediaId,
    title: &str,
    description: &str,
    tags: &str,
    now: Timestamp,
) -> Result<MediaItem, LibraryError> {
    let title = clean_text(title, MAX_NAME_CHARS);
    if title.is_empty() {
        return Err(LibraryError::InvalidName("a title is required"));
    }
    conn.execute(
        "UPDATE media_items SET title = ?2, description = ?3, tags = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, title, clean_text(description, 10_000), clean_text(tags, 1_000), now],
    )?;
    require(conn, id)
}

/// Trim, drop control characters, cap the length.
fn clean_text(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\n').take(max_chars).collect::<String>().trim().to_string()
}

/// "forces_lesson-2.mp4" → "forces lesson 2".
pub fn title_from_filename(filename: &str) -> String {
    let stem = match filename.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => filename,
    };
    let t: String = stem.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() { filename.to_string() } else { t }
}

// --- backup and partial restore (src/backup/) ---

/// Every item in any status, by id (`reelbox compare`).
pub fn all(conn: &Connection) -> Result<Vec<MediaItem>, LibraryError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY id"))?;
    let items = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(items)
}

/// An item's rows in the library's tables, for `reelbox recover`: the item first (the others
/// refer to it), then its thumbnails, captions and playback positions.
pub fn item_rows(conn: &Connection, id: MediaId) -> Result<Vec<crate::db::rows::Rows>, LibraryError> {
    use crate::db::rows::select;
    Ok(vec![
        select(conn, "media_items", "id", id.0)?,
        select(conn, "renditions", "media_id", id.0)?,
        select(conn, "captions", "media_id", id.0)?,
        select(conn, "playback_positions", "media_id", id.0)?,
    ])
}

/// Remove an item row outright (what it owns goes with it by cascade): `reelbox recover
/// --replace`, just before the item is written again from the restore.
pub fn remove_for_replace(conn: &Connection, id: MediaId) -> Result<bool, LibraryError> {
    Ok(conn.execute("DELETE FROM media_items WHERE id = ?1", [id])? > 0)
}
// --- end backup ---

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::library::categories::{self, NewCategory};

    fn setup() -> (tempfile::TempDir, Db, CategoryId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let cat = db
            .write_blocking(|c| {
                categories::create(
                    c,
                    NewCategory { name: "Science", parent_id: None, description: "", public: false },
                    1,
                )
            })
            .expect("category");
        (dir, db, cat.id)
    }

    fn content(kind: MediaKind) -> StoredContent {
        StoredContent { kind, mime: "image/png".into(), size: 3, sha256: "ab".repeat(32) }
    }

    #[test]
    fn create_complete_and_search() {
        let (_dir, db, cat) = setup();
        let item = db
            .write_blocking(|c| {
                create(
                    c,
                    NewMedia {
                        category_id: cat,
                        owner_id: None,
                        title: "",
                        filename: "../../etc/Forces_lesson-2.mp4",
                        content: None,
                    },
                    10,
                )
            })
            .expect("create");
        assert_eq!(item.status, MediaStatus::Uploading);
        assert_eq!(item.original_filename, "Forces_lesson-2.mp4");
        assert_eq!(item.title, "Forces lesson 2");
        assert_eq!(item.kind, None);

        let done = db
            .write_blocking(|c| complete_upload(c, item.id, &content(MediaKind::Video), 20))
            .expect("complete");
        assert_eq!(done.status, MediaStatus::Processing);
        assert_eq!(done.size, 3);
        let again = db.write_blocking(|c| complete_upload(c, item.id, &content(MediaKind::Video), 21));
        assert!(matches!(again, Err(LibraryError::WrongStatus(_))), "{again:?}");

        let found = db.read_blocking(|c| search_ids(c, "forc", 10)).expect("search");
        assert_eq!(found, vec![item.id]);
        db.write_blocking(|c| update_text(c, item.id, "Magnetism", "fields and poles", "physics y9", 30))
            .expect("update");
        assert!(db.read_blocking(|c| search_ids(c, "forces", 10)).expect("search").is_empty());
        assert_eq!(db.read_blocking(|c| search_ids(c, "poles physics", 10)).expect("search"), vec![item.id]);
        assert!(db.read_blocking(|c| search_ids(c, "\"* OR", 10)).expect("odd input").is_empty());
    }

    #[test]
    fn images_are_ready_and_unfinished_uploads_removable() {
        let (_dir, db, cat) = setup();
        let img = db
            .write_blocking(|c| {
                create(
                    c,
                    NewMedia {
                        category_id: cat,
                        owner_id: None,
                        title: "  Diagram ",
                        filename: "d.png",
                        content: Some(content(MediaKind::Image)),
                    },
                    5,
                )
            })
            .expect("create");
        assert_eq!(img.status, MediaStatus::Ready);
        assert_eq!(img.title, "Diagram");
        let refused = db.write_blocking(|c| remove_unfinished(c, img.id));
        assert!(matches!(refused, Err(LibraryError::WrongStatus(_))));

        let pending = db
            .write_blocking(|c| {
                create(
                    c,
                    NewMedia {
                        category_id: cat,
                        owner_id: None,
                        title: "x",
                        filename: "x.bin",
                        content: None,
                    },
                    5,
                )
            })
            .expect("create");
        db.write_blocking(|c| remove_unfinished(c, pending.id)).expect("removed");
        assert!(db.read_blocking(|c| get(c, pending.id)).expect("get").is_none());
        assert!(
            db.read_blocking(|c| search_ids(c, "x", 10)).expect("search").is_empty(),
            "index follows deletes"
        );
    }

    #[test]
    fn unknown_category_is_not_found() {
        let (_dir, db, _) = setup();
        let err = db.write_blocking(|c| {
            create(
                c,
                NewMedia {
                    category_id: CategoryId(999),
                    owner_id: None,
                    title: "",
                    filename: "a.png",
                    content: None,
                },
                1,
            )
        });
        assert!(matches!(err, Err(LibraryError::NotFound("category"))), "{err:?}");
    }
}
