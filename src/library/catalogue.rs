//! The catalogue: listing a category's items page by page, full-text search over what people
//! may view, and editing an item's description and place. Read-side queries over
//! `media_items`, `media_search` and `renditions`; permission decisions are made by the caller
//! and passed in (the categories a person may view), so counts and pages agree with them.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::LibraryError;
use super::media::{self, MediaItem};
use crate::clock::Timestamp;
use crate::db::ids::{CategoryId, MediaId, UserId};

/// Items per page of a category or of search results.
pub const PER_PAGE: u32 = 24;
/// Pages beyond this are not served (deep offsets cost more than anyone will click through).
pub const MAX_PAGE: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    Title,
    Size,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Newest, Sort::Oldest, Sort::Title, Sort::Size];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Title => "title",
            Sort::Size => "size",
        }
    }

    /// Unknown values fall back to the default rather than failing the page.
    pub fn parse(s: &str) -> Sort {
        Sort::ALL.into_iter().find(|x| x.as_str() == s).unwrap_or_default()
    }

    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "m.created_at DESC, m.id DESC",
            Sort::Oldest => "m.created_at ASC, m.id ASC",
            Sort::Title => "m.title COLLATE NOCASE ASC, m.id ASC",
            Sort::Size => "m.size DESC, m.id DESC",
        }
    }
}

/// An item in a list, with whether its small thumbnail exists.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Listed {
    #[serde(flatten)]
    pub item: MediaItem,
    pub has_thumbnail: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Page {
    /// How many items match in all (every page).
    pub total: u64,
    pub items: Vec<Listed>,
}

impl Page {
    pub fn pages(&self) -> u32 {
        (self.total.div_ceil(PER_PAGE as u64)).clamp(1, MAX_PAGE as u64) as u32
    }
}

const COLUMNS: &str = "m.id, m.category_id, m.owner_id, m.title, m.description, m.tags, m.original_filename,
     m.kind, m.mime, m.size, m.sha256, m.status, m.created_at, m.updated_at, m.recycled_at, m.archived_at,
     EXISTS (SELECT 1 FROM renditions r WHERE r.media_id = m.id AND r.name = 'thumb-320')";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Listed> {
    Ok(Listed { item: super::media::from_row(r)?, has_thumbnail: r.get(16)? })
}

fn offset(page: u32) -> i64 {
    (page.clamp(1, MAX_PAGE) as i64 - 1) * PER_PAGE as i64
}

/// One page (1-based) of the items of `category` that people who may view it see: ready and
/// processing items, plus the viewer's own unfinished (uploading or failed) uploads.
pub fn list_category(
    conn: &Connection,
    category: CategoryId,
    viewer: Option<UserId>,
    sort: Sort,
    page: u32,
) -> Result<Page, LibraryError> {
    const WHERE: &str = "m.category_id = ?1 AND (m.status IN ('processing', 'ready')
                         OR (m.status IN ('uploading', 'failed') AND m.owner_id IS NOT NULL AND m.owner_id = ?2))";
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM media_items m WHERE {WHERE}"),
        params![category, viewer],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM media_items m WHERE {WHERE} ORDER BY {} LIMIT ?3 OFFSET ?4",
        sort.order_by()
    ))?;
    let items = stmt
        .query_map(params![category, viewer, PER_PAGE, offset(page)], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(Page { total: total.max(0) as u64, items })
}

/// One page (1-based) of the items `owner` uploaded, newest first: finished, processing,
/// unfinished and failed ones; not those in the recycle bin or the archive (hidden everywhere).
pub fn list_owned(conn: &Connection, owner: UserId, page: u32) -> Result<Page, LibraryError> {
    const WHERE: &str = "m.owner_id = ?1 AND m.status IN ('uploading', 'processing', 'ready', 'failed')";
    let total: i64 =
        conn.query_row(&format!("SELECT count(*) FROM media_items m WHERE {WHERE}"), [owner], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM media_items m WHERE {WHERE} ORDER BY {} LIMIT ?2 OFFSET ?3",
        Sort::Newest.order_by()
    ))?;
    let items =
        stmt.query_map(params![owner, PER_PAGE, offset(page)], from_row)?.collect::<Result<_, _>>()?;
    Ok(Page { total: total.max(0) as u64, items })
}

/// User input as an FTS5 query: every word becomes a quoted prefix term and all must match, so
/// no input is ever an FTS5 syntax error. `None` when there is no word to search for.
pub fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Search titles, descriptions, tags and captions among listed (ready or processing) items in the
/// `viewable` categories, optionally within one of them. Best matches first.
pub fn search(
    conn: &Connection,
    query: &str,
    viewable: &[CategoryId],
    within: Option<CategoryId>,
    page: u32,
) -> Result<Page, LibraryError> {
    let empty = Page { total: 0, items: Vec::new() };
    let Some(fts) = fts_query(query) else { return Ok(empty) };
    let allowed: Vec<String> =
        viewable.iter().filter(|c| within.is_none_or(|w| w == **c)).map(|c| c.0.to_string()).collect();
    if allowed.is_empty() {
        return Ok(empty);
    }
    // The category filter is a JSON array bound as one parameter, so the count is computed in
    // SQL over exactly what the person may see.
    let allowed = format!("[{}]", allowed.join(","));
    // Matches in titles, descriptions and tags, and in caption text (`captions`); an item found
    // both ways counts once with its better rank, and caption matches rank below the item's own
    // words (bm25 ranks are negative: halving moves them towards zero, i.e. later).
    const FROM: &str = "FROM (SELECT id, min(rank) AS rank FROM (
             SELECT rowid AS id, rank FROM media_search WHERE media_search MATCH ?1
             UNION ALL
             SELECT c.media_id, cs.rank / 2 FROM caption_search cs JOIN captions c ON c.id = cs.rowid
             WHERE caption_search MATCH ?1
         ) GROUP BY id) s JOIN media_items m ON m.id = s.id
         WHERE m.status IN ('processing', 'ready')
           AND m.category_id IN (SELECT value FROM json_each(?2))";
    let total: i64 =
        conn.query_row(&format!("SELECT count(*) {FROM}"), params![fts, allowed], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} {FROM} ORDER BY s.rank, m.created_at DESC, m.id DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let items =
        stmt.query_map(params![fts, allowed, PER_PAGE, offset(page)], from_row)?.collect::<Result<_, _>>()?;
    Ok(Page { total: total.max(0) as u64, items })
}

/// A change to an item's description or place; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MediaEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<String>,
    pub category_id: Option<CategoryId>,
}

/// Tags typed as "a, b ,, c" → "a, b, c" (duplicates removed, case kept from the first).
pub fn normalise_tags(s: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out: Vec<&str> = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let key = t.to_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
            out.push(t);
        }
    }
    out.join(", ")
}

/// Apply `edit` (the caller has checked the person may edit the item and contribute to the new
/// category). Returns the item before and after, for the audit trail.
pub fn edit(
    conn: &Connection,
    id: MediaId,
    edit: &MediaEdit,
    now: Timestamp,
) -> Result<(MediaItem, MediaItem), LibraryError> {
    let before = media::require(conn, id)?;
    if matches!(before.status, media::MediaStatus::Recycled | media::MediaStatus::Archived) {
        return Err(LibraryError::WrongStatus("restore the item before changing it"));
    }
    let title = edit.title.as_deref().unwrap_or(&before.title);
    let description = edit.description.as_deref().unwrap_or(&before.description);
    let tags = edit.tags.as_deref().map(normalise_tags).unwrap_or_else(|| before.tags.clone());
    let moved_to = edit.category_id.filter(|c| *c != before.category_id);
    if let Some(cat) = moved_to {
        super::categories::require(conn, cat)?;
    }
    let mut after = media::update_text(conn, id, title, description, &tags, now)?;
    if let Some(cat) = moved_to {
        conn.execute(
            "UPDATE media_items SET category_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, cat, now],
        )?;
        after = media::require(conn, id)?;
    }
    Ok((before, after))
}

/// "title, tags, category" — what an edit changed, for the audit detail.
pub fn changed_fields(before: &MediaItem, after: &MediaItem) -> String {
    let mut out = Vec::new();
    if before.title != after.title {
        out.push("title".to_string());
    }
    if before.description != after.description {
        out.push("description".to_string());
    }
    if before.tags != after.tags {
        out.push("tags".to_string());
    }
    if before.category_id != after.category_id {
        out.push(format!("category {} → {}", before.category_id, after.category_id));
    }
    if out.is_empty() { "nothing".into() } else { out.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::library::categories::{self, NewCategory};
    use crate::library::media::{MediaKind, MediaStatus, NewMedia, StoredContent};

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        a: CategoryId,
        b: CategoryId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 1).expect("db");
        let (a, b) = db
            .write_blocking(|c| {
                c.execute(
                    "INSERT INTO users (id, username, created_at) VALUES (7, 'tess', 1), (8, 'olly', 1)",
                    [],
                )?;
                let mk = |name| {
                    categories::create(
                        c,
                        NewCategory { name, parent_id: None, description: "", public: false },
                        1,
                    )
                };
                Ok::<_, LibraryError>((mk("Physics")?.id, mk("Secret")?.id))
            })
            .expect("setup");
        Fixture { _dir: dir, db, a, b }
    }

    fn add(db: &Db, cat: CategoryId, owner: i64, title: &str, size: u64, at: i64, done: bool) -> MediaId {
        db.write_blocking(|c| {
            media::create(
                c,
                NewMedia {
                    category_id: cat,
                    owner_id: Some(UserId(owner)),
                    title,
                    filename: "f.pdf",
                    content: done.then(|| StoredContent {
                        kind: MediaKind::Document,
                        mime: "application/pdf".into(),
                        size,
                        sha256: format!("{:064x}", at),
                    }),
                },
                at,
            )
        })
        .expect("add")
        .id
    }

    fn ids(p: &Page) -> Vec<i64> {
        p.items.iter().map(|l| l.item.id.0).collect()
    }

    #[test]
    fn category_pages_sort_and_hide_unfinished_uploads_of_others() {
        let f = fixture();
        let x = add(&f.db, f.a, 7, "Bravo", 10, 100, true);
        let y = add(&f.db, f.a, 7, "alpha", 30, 200, true);
        let z = add(&f.db, f.a, 8, "Charlie", 20, 300, true);
        let pending = add(&f.db, f.a, 7, "Pending", 0, 400, false);
        add(&f.db, f.b, 7, "Elsewhere", 1, 500, true);
        f.db.write_blocking(|c| {
            c.execute("UPDATE media_items SET status = 'recycled' WHERE id = ?1", [z])
                .map_err(LibraryError::from)
        })
        .expect("recycle");

        let list = |viewer: Option<i64>, sort| {
            f.db.read_blocking(|c| list_category(c, f.a, viewer.map(UserId), sort, 1)).expect("list")
        };
        let p = list(None, Sort::Newest);
        assert_eq!((p.total, ids(&p)), (2, vec![y.0, x.0]), "recycled and unfinished items are hidden");
        assert_eq!(ids(&list(None, Sort::Oldest)), vec![x.0, y.0]);
        assert_eq!(ids(&list(None, Sort::Title)), vec![y.0, x.0], "title sort ignores case");
        assert_eq!(ids(&list(None, Sort::Size)), vec![y.0, x.0]);
        let own = list(Some(7), Sort::Newest);
        assert_eq!((own.total, ids(&own)), (3, vec![pending.0, y.0, x.0]), "the owner sees their upload");
        assert_eq!(list(Some(8), Sort::Newest).total, 2);
        assert!(!own.items[0].has_thumbnail);
        assert_eq!(Sort::parse("size"), Sort::Size);
        assert_eq!(Sort::parse("<script>"), Sort::Newest);
    }

    #[test]
    fn pagination_counts_every_page() {
        let f = fixture();
        for i in 0..30 {
            add(&f.db, f.a, 7, &format!("Item {i}"), 1, i, true);
        }
        let p1 = f.db.read_blocking(|c| list_category(c, f.a, None, Sort::Oldest, 1)).expect("page 1");
        let p2 = f.db.read_blocking(|c| list_category(c, f.a, None, Sort::Oldest, 2)).expect("page 2");
        assert_eq!((p1.total, p1.items.len(), p1.pages()), (30, 24, 2));
        assert_eq!(p2.items.len(), 6);
        assert_eq!(p2.items[0].item.title, "Item 24");
        let p0 = f.db.read_blocking(|c| list_category(c, f.a, None, Sort::Oldest, 0)).expect("page 0");
        assert_eq!(ids(&p0), ids(&p1), "page 0 is page 1");
    }

    #[test]
    fn search_is_limited_to_viewable_categories_and_safe_with_any_input() {
        let f = fixture();
        let seen = add(&f.db, f.a, 7, "Magnetic fields", 1, 1, true);
        let hidden = add(&f.db, f.b, 7, "Magnetic secrets", 1, 2, true);
        let pending = add(&f.db, f.a, 7, "Magnetic draft", 1, 3, false);
        f.db.write_blocking(|c| {
            media::update_text(c, seen, "Magnetic fields", "poles and compasses", "physics, y9", 4)
        })
        .expect("describe");
        let search = |q: &str, cats: &[CategoryId], within| {
            f.db.read_blocking(|c| search(c, q, cats, within, 1)).expect("search")
        };
        let p = search("magnet", &[f.a], None);
        assert_eq!(
            (p.total, ids(&p)),
            (1, vec![seen.0]),
            "{pending:?} is unfinished, {hidden:?} not viewable"
        );
        assert_eq!(search("magnet", &[f.a, f.b], None).total, 2);
        assert_eq!(ids(&search("magnet", &[f.a, f.b], Some(f.b))), vec![hidden.0]);
        assert_eq!(search("magnet", &[f.a], Some(f.b)).total, 0, "within a category not viewable");
        assert_eq!(ids(&search("COMPASS y9", &[f.a], None)), vec![seen.0], "description and tags");
        assert_eq!(search("magnet", &[], None).total, 0);
        let cues = crate::library::captions::parse(
            b"WEBVTT\n\n00:01.000 --> 00:02.000\nMagnets and an electromagnet lift scrap\n",
        )
        .expect("captions");
        f.db.write_blocking(|c| crate::library::captions::put(c, hidden, "en", "English", &cues, None, 1))
            .expect("captions stored");
        assert_eq!(
            ids(&search("electromagnet", &[f.a, f.b], None)),
            vec![hidden.0],
            "caption text is searched"
        );
        assert_eq!(
            search("electromagnet", &[f.a], None).total,
            0,
            "not in a category the caller cannot view"
        );
        assert_eq!(search("magnet", &[f.a, f.b], None).total, 2, "an item found twice counts once");
        for odd in ["\"", "* OR", "NEAR(", "a AND", "-", "\u{0}", "title:x", "''", ")(*"] {
            assert!(f.db.read_blocking(|c| super::search(c, odd, &[f.a], None, 1)).is_ok(), "{odd:?}");
        }
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("a-b c").as_deref(), Some("\"a\"* \"b\"* \"c\"*"));
    }

    #[test]
    fn edits_change_text_tags_and_category() {
        let f = fixture();
        let id = add(&f.db, f.a, 7, "Old", 1, 1, true);
        let e = MediaEdit {
            title: Some("New title".into()),
            tags: Some(" y9, physics ,, Y9 ".into()),
            category_id: Some(f.b),
            ..Default::default()
        };
        let (before, after) = f.db.write_blocking(|c| edit(c, id, &e, 9)).expect("edit");
        assert_eq!(after.title, "New title");
        assert_eq!(after.tags, "y9, physics");
        assert_eq!(after.category_id, f.b);
        assert_eq!(after.description, "", "untouched");
        assert_eq!(changed_fields(&before, &after), format!("title, tags, category {} → {}", f.a, f.b));
        let empty = MediaEdit { title: Some("   ".into()), ..Default::default() };
        assert!(matches!(f.db.write_blocking(|c| edit(c, id, &empty, 9)), Err(LibraryError::InvalidName(_))));
        let nowhere = MediaEdit { category_id: Some(CategoryId(999)), ..Default::default() };
        assert!(matches!(f.db.write_blocking(|c| edit(c, id, &nowhere, 9)), Err(LibraryError::NotFound(_))));
        f.db.write_blocking(|c| {
            c.execute("UPDATE media_items SET status = ?2 WHERE id = ?1", params![id, MediaStatus::Recycled])
                .map_err(LibraryError::from)
        })
        .expect("recycle");
        let refused = f.db.write_blocking(|c| edit(c, id, &MediaEdit::default(), 9));
        assert!(matches!(refused, Err(LibraryError::WrongStatus(_))), "{refused:?}");
    }
}
