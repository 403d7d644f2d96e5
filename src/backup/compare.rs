//! `reelbox compare`: what differs between the live database and another reelbox database
//! (a restore beside it), per kind of record, in words a school administrator reads: titles,
//! names, category paths and which fields changed. Everything is read through the functions of
//! the modules that own the tables.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::BackupError;
use crate::accounts::grants::{self, Grantee};
use crate::accounts::{groups, users};
use crate::db::ids::{CategoryId, MediaId};
use crate::library::categories::{self, Category};
use crate::library::{captions, media};

/// One record as the comparison sees it.
#[derive(Debug, Clone)]
struct Record {
    key: String,
    label: String,
    fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    /// The value in the other database (the restore).
    pub other: String,
    pub live: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Changed {
    pub key: String,
    pub label: String,
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KindDiff {
    pub kind: &'static str,
    /// In the other database only: deleted (or purged) live since.
    pub only_in_other: Vec<Entry>,
    /// Live only: added since.
    pub only_live: Vec<Entry>,
    pub changed: Vec<Changed>,
}

impl KindDiff {
    pub fn is_empty(&self) -> bool {
        self.only_in_other.is_empty() && self.only_live.is_empty() && self.changed.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub live: PathBuf,
    pub other: PathBuf,
    pub kinds: Vec<KindDiff>,
}

impl Comparison {
    pub fn kind(&self, kind: &str) -> Option<&KindDiff> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(KindDiff::is_empty)
    }
}

/// A database to compare with or recover from, opened read-only. One made by an older
/// reelbox is copied aside and migrated first (the file given is never changed).
pub struct OtherDb {
    pub conn: Connection,
    pub path: PathBuf,
    migrated_copy: Option<PathBuf>,
}

impl Drop for OtherDb {
    fn drop(&mut self) {
        if let Some(p) = &self.migrated_copy {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
        }
    }
}

pub fn open_other(file: &Path) -> Result<OtherDb, BackupError> {
    let not_db = |detail: String| BackupError::NotADatabase { file: file.to_path_buf(), detail };
    if !file.is_file() {
        return Err(not_db("no such file".into()));
    }
    let conn =
        Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| not_db(e.to_string()))?;
    let version: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| not_db(e.to_string()))?;
    let has_items: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'media_items')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_db(e.to_string()))?;
    if !has_items || version < 1 {
        return Err(not_db("it has no reelbox tables".into()));
    }
    let known = crate::db::latest_version() as i64;
    if version > known {
        return Err(not_db(format!(
            "it is at schema version {version}, newer than this reelbox understands ({known}); use the newer reelbox"
        )));
    }
    if version == known {
        return Ok(OtherDb { conn, path: file.to_path_buf(), migrated_copy: None });
    }
    let copy = std::env::temp_dir().join(format!("reelbox-other-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&copy);
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]).map_err(|e| not_db(e.to_string()))?;
    drop(conn);
    let mut migrated = Connection::open(&copy).map_err(|e| not_db(e.to_string()))?;
    crate::db::migrate(&mut migrated, &copy)?;
    Ok(OtherDb { conn: migrated, path: file.to_path_buf(), migrated_copy: Some(copy) })
}

/// Compare `live` with `other`.
pub fn compare(
    live: &Connection,
    other: &Connection,
    live_path: &Path,
    other_path: &Path,
) -> Result<Comparison, BackupError> {
    let a = load(other)?;
    let b = load(live)?;
    let kinds = a.into_iter().zip(b).map(|((kind, other), (_, live))| diff(kind, other, live)).collect();
    Ok(Comparison { live: live_path.to_path_buf(), other: other_path.to_path_buf(), kinds })
}

fn diff(kind: &'static str, other: Vec<Record>, live: Vec<Record>) -> KindDiff {
    let live: BTreeMap<String, Record> = live.into_iter().map(|r| (r.key.clone(), r)).collect();
    let other: BTreeMap<String, Record> = other.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut d = KindDiff { kind, only_in_other: Vec::new(), only_live: Vec::new(), changed: Vec::new() };
    for (key, o) in &other {
        match live.get(key) {
            None => d.only_in_other.push(Entry { key: key.clone(), label: o.label.clone() }),
            Some(l) => {
                let changes: Vec<FieldChange> = o
                    .fields
                    .iter()
                    .zip(&l.fields)
                    .filter(|((_, a), (_, b))| a != b)
                    .map(|((field, a), (_, b))| FieldChange { field, other: a.clone(), live: b.clone() })
                    .collect();
                if !changes.is_empty() {
                    d.changed.push(Changed { key: key.clone(), label: l.label.clone(), changes });
                }
            }
        }
    }
    for (key, l) in &live {
        if !other.contains_key(key) {
            d.only_live.push(Entry { key: key.clone(), label: l.label.clone() });
        }
    }
    d
}

fn paths(all: &[Category]) -> HashMap<CategoryId, String> {
    let by_id: HashMap<CategoryId, &Category> = all.iter().map(|c| (c.id, c)).collect();
    all.iter()
        .map(|c| {
            let mut names = vec![c.name.clone()];
            let mut at = c.parent_id;
            while let Some(p) = at.and_then(|id| by_id.get(&id)) {
                if names.len() > categories::MAX_DEPTH {
                    break;
                }
                names.push(p.name.clone());
                at = p.parent_id;
            }
            names.reverse();
            (c.id, names.join(" › "))
        })
        .collect()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Every kind, in the order shown.
fn load(conn: &Connection) -> Result<Vec<(&'static str, Vec<Record>)>, BackupError> {
    fn e(x: impl std::fmt::Display) -> BackupError {
        BackupError::domain(x)
    }
    let cats = categories::list(conn).map_err(e)?;
    let path = paths(&cats);
    let cat_name = |id: CategoryId| path.get(&id).cloned().unwrap_or_else(|| format!("category {id}"));
    let people = users::all(conn).map_err(e)?;
    let username: HashMap<_, _> = people.iter().map(|u| (u.id, u.username.clone())).collect();
    let group_list = groups::list(conn).map_err(e)?;
    let items = media::all(conn).map_err(e)?;
    let titles: HashMap<MediaId, String> = items.iter().map(|m| (m.id, m.title.clone())).collect();

    let media_records = items
        .iter()
        .map(|m| Record {
            key: m.id.to_string(),
            label: format!(
                "\"{}\" (item {}, {} in {})",
                m.title,
                m.id,
                m.kind.map_or("file", |k| k.as_str()),
                cat_name(m.category_id)
            ),
            fields: vec![
                ("title", m.title.clone()),
                ("description", m.description.clone()),
                ("tags", m.tags.clone()),
                ("category", cat_name(m.category_id)),
                (
                    "owner",
                    m.owner_id.and_then(|o| username.get(&o).cloned()).unwrap_or_else(|| "nobody".into()),
                ),
                ("state", m.status.as_str().into()),
                ("file name", m.original_filename.clone()),
                ("file content (SHA-256)", m.sha256.clone().unwrap_or_default()),
            ],
        })
        .collect();
    let category_records = cats
        .iter()
        .map(|c| Record {
            key: c.id.to_string(),
            label: cat_name(c.id),
            fields: vec![
                ("name", c.name.clone()),
                (
                    "place",
                    c.parent_id.map_or_else(|| "top level".into(), |p| format!("inside {}", cat_name(p))),
                ),
                ("description", c.description.clone()),
                ("public", yes_no(c.public)),
            ],
        })
        .collect();
    let grant_records = grants::all(conn)
        .map_err(e)?
        .into_iter()
        .map(|g| {
            let (key, who) = match g.grantee {
                Grantee::Group(id) => {
                    (format!("{}/group/{id}", g.category_id), format!("group {}", g.grantee_name))
                }
                Grantee::User(id) => {
                    (format!("{}/user/{id}", g.category_id), format!("{} (person)", g.grantee_name))
                }
            };
            Record {
                key,
                label: format!("{who} on {}", cat_name(g.category_id)),
                fields: vec![("role", g.role.as_str().into())],
            }
        })
        .collect();
    let user_records = people
        .iter()
        .map(|u| Record {
            key: u.id.to_string(),
            label: if u.display_name.is_empty() {
                u.username.clone()
            } else {
                format!("{} ({})", u.username, u.display_name)
            },
            fields: vec![
                ("username", u.username.clone()),
                ("display name", u.display_name.clone()),
                ("email", u.email.clone().unwrap_or_default()),
                ("administrator", yes_no(u.is_admin)),
                ("disabled", yes_no(u.disabled)),
            ],
        })
        .collect();
    let mut member_records = Vec::new();
    let group_records = group_list
        .iter()
        .map(|g| {
            Ok(Record {
                key: g.id.to_string(),
                label: g.name.clone(),
                fields: vec![("name", g.name.clone()), ("description", g.description.clone())],
            })
        })
        .collect::<Result<Vec<_>, BackupError>>()?;
    for g in &group_list {
        for m in groups::members(conn, g.id).map_err(e)? {
            member_records.push(Record {
                key: format!("{}/{}", g.id, m.user_id),
                label: format!("{} in {}", m.username, g.name),
                fields: Vec::new(),
            });
        }
    }
    let caption_records = captions::all_tracks(conn)
        .map_err(e)?
        .into_iter()
        .map(|(id, lang, label, fingerprint)| Record {
            key: format!("{id}/{lang}"),
            label: format!(
                "{label} captions ({lang}) of \"{}\" (item {id})",
                titles.get(&id).map_or("?", String::as_str)
            ),
            fields: vec![("label", label.clone()), ("text", fingerprint)],
        })
        .collect();
    Ok(vec![
        ("media items", media_records),
        ("categories", category_records),
        ("access grants", grant_records),
        ("captions", caption_records),
        ("people", user_records),
        ("groups", group_records),
        ("group members", member_records),
    ])
}

/// The comparison as a school administrator reads it.
pub fn to_text(c: &Comparison) -> String {
    use std::fmt::Write;
    let other = c
        .other
        .file_name()
        .map_or_else(|| c.other.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut out = String::new();
    let _ = writeln!(out, "Comparing the live database {} with {}.", c.live.display(), c.other.display());
    if c.is_empty() {
        let _ = writeln!(out, "They hold the same records.");
        return out;
    }
    for k in &c.kinds {
        let title = capitalise(k.kind);
        if k.is_empty() {
            let _ = writeln!(out, "\n{title}: no differences.");
            continue;
        }
        let _ = writeln!(
            out,
            "\n{title}: {} only in {other}, {} only live, {} changed.",
            k.only_in_other.len(),
            k.only_live.len(),
            k.changed.len()
        );
        for e in &k.only_in_other {
            let _ = writeln!(out, "  - {}: in {other}, not live (removed since)", e.label);
        }
        for e in &k.only_live {
            let _ = writeln!(out, "  + {}: live, not in {other} (added since)", e.label);
        }
        for ch in &k.changed {
            let what: Vec<String> = ch
                .changes
                .iter()
                .map(|f| {
                    if f.other.len() > 60
                        || f.live.len() > 60
                        || f.field.contains("SHA-256")
                        || f.field == "text"
                    {
                        format!("{} changed", f.field)
                    } else {
                        format!("{} was \"{}\", now \"{}\"", f.field, f.other, f.live)
                    }
                })
                .collect();
            let _ = writeln!(out, "  ~ {}: {}", ch.label, what.join("; "));
        }
    }
    let _ = writeln!(
        out,
        "\nTo bring media items back from {other}: reelbox recover --from {} --media ID ...",
        c.other.display()
    );
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
