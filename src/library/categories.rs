//! A tree of categories ("Science" › "Year 9" › "Forces"); access is granted on them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::LibraryError;
use crate::clock::Timestamp;
use crate::db::ids::CategoryId;

/// Deepest nesting allowed; keeps breadcrumbs readable and inheritance cheap.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Category {
    pub id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub name: String,
    pub description: String,
    pub public: bool,
    pub created_at: Timestamp,
}

const SELECT: &str = "SELECT id, parent_id, name, description, public, created_at FROM categories";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Category> {
    Ok(Category {
        id: r.get(0)?,
        parent_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        public: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

pub struct NewCategory<'a> {
    pub name: &'a str,
    pub parent_id: Option<CategoryId>,
    pub description: &'a str,
    pub public: bool,
}

pub fn create(conn: &Connection, new: NewCategory<'_>, now: Timestamp) -> Result<Category, LibraryError> {
    crate::accounts::check_name(new.name, 100).map_err(LibraryError::InvalidName)?;
    if let Some(parent) = new.parent_id {
        let depth = ancestry(conn, parent)?.len();
        if depth >= MAX_DEPTH {
            return Err(LibraryError::BadParent("categories can be nested at most 8 deep"));
        }
    }
    match conn.execute(
        "INSERT INTO categories (parent_id, name, description, public, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new.parent_id, new.name, new.description, new.public, now],
    ) {
        Ok(_) => require(conn, CategoryId(conn.last_insert_rowid())),
        Err(e) if unique_violation(&e) => Err(LibraryError::NameTaken(new.name.into())),
        Err(e) => Err(e.into()),
    }
}

pub fn get(conn: &Connection, id: CategoryId) -> Result<Option<Category>, LibraryError> {
    Ok(conn.query_row(&format!("{SELECT} WHERE id = ?1"), [id], from_row).optional()?)
}

pub fn require(conn: &Connection, id: CategoryId) -> Result<Category, LibraryError> {
    get(conn, id)?.ok_or(LibraryError::NotFound("category"))
}

/// Put back a category exactly as it was (same id), for `reelbox recover`.
pub fn insert_exact(conn: &Connection, c: &Category) -> Result<(), LibraryError> {
    match conn.execute(
        "INSERT INTO categories (id, parent_id, name, description, public, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![c.id, c.parent_id, c.name, c.description, c.public, c.created_at],
    ) {
        Ok(_) => Ok(()),
        Err(e) if unique_violation(&e) => Err(LibraryError::NameTaken(c.name.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Every category, parents before children, siblings by name.
pub fn list(conn: &Connection) -> Result<Vec<Category>, LibraryError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY name COLLATE NOCASE"))?;
    let rows: Vec<Category> = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(tree_order(rows))
}

/// Sort into depth-first tree order so a flat list renders as an indented tree.
fn tree_order(all: Vec<Category>) -> Vec<Category> {
    fn walk(parent: Option<CategoryId>, all: &[Category], out: &mut Vec<Category>, depth: usize) {
        if depth > MAX_DEPTH + 1 {
            return;
        }
        for c in all.iter().filter(|c| c.parent_id == parent) {
            out.push(c.clone());
            walk(Some(c.id), all, out, depth + 1);
        }
    }
    let mut out = Vec::with_capacity(all.len());
    walk(None, &all, &mut out, 0);
    out
}

/// Depth of each category in a tree-ordered list (0 for roots).
pub fn depths(ordered: &[Category]) -> Vec<usize> {
    let mut depth_of = std::collections::HashMap::new();
    ordered
        .iter()
        .map(|c| {
            let d = c.parent_id.and_then(|p| depth_of.get(&p).map(|d| d + 1)).unwrap_or(0);
            depth_of.insert(c.id, d);
            d
        })
        .collect()
}

/// The category and its ancestors, root first.
pub fn ancestry(conn: &Connection, id: CategoryId) -> Result<Vec<Category>, LibraryError> {
    let mut chain = Vec::new();
    let mut cursor = Some(id);
    while let Some(current) = cursor {
        let c = require(conn, current)?;
        cursor = c.parent_id;
        chain.push(c);
        if chain.len() > MAX_DEPTH + 1 {
            break;
        }
    }
    chain.reverse();
    Ok(chain)
}

pub fn children(conn: &Connection, id: CategoryId) -> Result<Vec<Category>, LibraryError> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE parent_id = ?1 ORDER BY name COLLATE NOCASE"))?;
    let rows = stmt.query_map([id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub struct CategoryUpdate<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub public: bool,
    pub parent_id: Option<CategoryId>,
}

pub fn update(conn: &Connection, id: CategoryId, up: CategoryUpdate<'_>) -> Result<Category, LibraryError> {
    crate::accounts::check_name(up.name, 100).map_err(LibraryError::InvalidName)?;
    require(conn, id)?;
    if let Some(parent) = up.parent_id {
        let chain = ancestry(conn, parent)?;
        if chain.iter().any(|c| c.id == id) {
            return Err(LibraryError::BadParent("a category cannot be moved inside itself"));
        }
        if chain.len() >= MAX_DEPTH {
            return Err(LibraryError::BadParent("categories can be nested at most 8 deep"));
        }
    }
    match conn.execute(
        "UPDATE categories SET name = ?2, description = ?3, public = ?4, parent_id = ?5 WHERE id = ?1",
        params![id, up.name, up.description, up.public, up.parent_id],
    ) {
        Ok(_) => require(conn, id),
        Err(e) if unique_violation(&e) => Err(LibraryError::NameTaken(up.name.into())),
        Err(e) => Err(e.into()),
    }
}

/// Remove an empty category (no subcategories). Its grants go with it.
pub fn delete(conn: &Connection, id: CategoryId) -> Result<Category, LibraryError> {
    let c = require(conn, id)?;
    if !children(conn, id)?.is_empty() {
        return Err(LibraryError::NotEmpty("it has subcategories; move or remove them first"));
    }
    conn.execute("DELETE FROM categories WHERE id = ?1", [id])?;
    Ok(c)
}
