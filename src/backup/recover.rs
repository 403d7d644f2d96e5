//! `reelbox recover`: bring chosen media items back from another reelbox database (a restore
//! beside the live one) into the live database — the item, its thumbnails, captions, playback
//! positions, what the transcoder published, its category (re-created when it is gone) and the
//! access grants on that category and its parents that the restore has and the live database
//! lacks. Blobs the server no longer has come from the backup target, hash-checked by the store.
//!
//! Nothing is written until every item has been checked: an item that exists live and differs
//! from the restore stops the whole run with what differs (`--replace` overwrites the live one).
//! All database changes of one item are one transaction, audited as `media.recovered`.
//!
//! It runs beside a running server (SQLite WAL, the normal writer lock and busy timeout) or
//! with it stopped. A running server sees the item at once; its cached category tree and
//! access lists refresh at its next write (any sign-in or edit), or restart it.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

use super::compare::OtherDb;
use super::{BackupError, Target, blob_key, renditions, transfer};
use crate::accounts::grants::{self, Grantee};
use crate::accounts::{groups, users};
use crate::clock::Timestamp;
use crate::db::Db;
use crate::db::ids::{CategoryId, MediaId, UserId};
use crate::db::rows::Rows;
use crate::insights::audit::{self, Event};
use crate::library::categories::{self, Category};
use crate::library::media::{self, MediaItem};
use crate::store::{BlobStore, Sha256};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub media: Vec<MediaId>,
    /// Overwrite an item that exists live and differs.
    pub replace: bool,
    /// Leave access grants as they are live.
    pub skip_grants: bool,
    /// Who runs it, for the audit trail.
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recovered {
    pub id: MediaId,
    pub title: String,
    /// `recovered`, `replaced` or `unchanged` (already live and the same).
    pub outcome: &'static str,
    /// Where the original came from: `server`, `backup` or `none` (the item has no content).
    pub content: &'static str,
    pub categories_recreated: Vec<String>,
    pub grants_restored: Vec<String>,
    pub captions: usize,
    /// `restored` (from the backup target), `kept` (still on the server), `converting again`, `none`.
    pub renditions: &'static str,
    pub notes: Vec<String>,
}

/// What was planned for one item before anything is written.
struct Plan {
    item: MediaItem,
    library_rows: Vec<Rows>,
    transcode_rows: Vec<Rows>,
    categories: Vec<Category>,
    grants: Vec<(CategoryId, Grantee, grants::Role, String)>,
    replace: bool,
    result: Recovered,
}

fn e(x: impl std::fmt::Display) -> BackupError {
    BackupError::domain(x)
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        _ => None,
    }
}

fn differences(other: &MediaItem, live: &MediaItem) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |name: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{name} is \"{b}\" live, \"{a}\" in the restore"));
        }
    };
    check("title", other.title.clone(), live.title.clone());
    check("description", other.description.clone(), live.description.clone());
    check("tags", other.tags.clone(), live.tags.clone());
    check("category", other.category_id.to_string(), live.category_id.to_string());
    check("state", other.status.as_str().into(), live.status.as_str().into());
    check("file name", other.original_filename.clone(), live.original_filename.clone());
    check("content", other.sha256.clone().unwrap_or_default(), live.sha256.clone().unwrap_or_default());
    check("created", other.created_at.to_string(), live.created_at.to_string());
    d
}

fn plan(
    live: &Connection,
    other: &Connection,
    id: MediaId,
    opts: &Options,
    file: &Path,
) -> Result<Option<Plan>, BackupError> {
    let item = media::get(other, id)
        .map_err(e)?
        .ok_or_else(|| BackupError::NotFound(format!("Item {id} is not in {}.", file.display())))?;
    let mut replace = false;
    if let Some(current) = media::get(live, id).map_err(e)? {
        let diffs = differences(&item, &current);
        if diffs.is_empty() {
            return Ok(None);
        }
        if !opts.replace {
            return Err(BackupError::Conflict(format!(
                "Item {id} exists live as \"{}\" and differs from the restore: {}. Nothing was changed. \
                 Run again with --replace to overwrite the live item with the restore's version.",
                current.title,
                diffs.join("; ")
            )));
        }
        replace = true;
    }
    let mut result = Recovered {
        id,
        title: item.title.clone(),
        outcome: if replace { "replaced" } else { "recovered" },
        content: "none",
        categories_recreated: Vec::new(),
        grants_restored: Vec::new(),
        captions: 0,
        renditions: "none",
        notes: Vec::new(),
    };

    // The category and its parents, top first; re-create the ones that are gone.
    let chain = categories::ancestry(other, item.category_id).map_err(e)?;
    let mut recreate = Vec::new();
    for c in &chain {
        if categories::get(live, c.id).map_err(e)?.is_none() {
            recreate.push(c.clone());
        }
    }
    let names: Vec<&str> = chain.iter().map(|c| c.name.as_str()).collect();
    result.categories_recreated = recreate.iter().map(|c| c.name.clone()).collect();

    // Grants on the chain that the restore has and the live database lacks.
    let mut wanted = Vec::new();
    if !opts.skip_grants {
        for c in &chain {
            let live_grants = if recreate.iter().any(|r| r.id == c.id) {
                Vec::new()
            } else {
                grants::for_category(live, c.id).map_err(e)?
            };
            for g in grants::for_category(other, c.id).map_err(e)? {
                let place = names[..=chain.iter().position(|x| x.id == c.id).unwrap_or(0)].join(" › ");
                let who = match g.grantee {
                    Grantee::Group(_) => format!("group {}", g.grantee_name),
                    Grantee::User(_) => g.grantee_name.clone(),
                };
                if let Some(l) = live_grants.iter().find(|l| l.grantee == g.grantee) {
                    if l.role != g.role {
                        result.notes.push(format!(
                            "{who} has {} on {place} live ({} in the restore); left as it is live",
                            l.role.as_str(),
                            g.role.as_str()
                        ));
                    }
                    continue;
                }
                let exists = match g.grantee {
                    Grantee::Group(gid) => {
                        groups::get(live, gid).map_err(e)?.is_some_and(|x| x.name == g.grantee_name)
                    }
                    Grantee::User(uid) => {
                        users::get(live, uid).map_err(e)?.is_some_and(|x| x.username == g.grantee_name)
                    }
                };
                if !exists {
                    result.notes.push(format!(
                        "{who} no longer exists; its {} access on {place} was not restored",
                        g.role.as_str()
                    ));
                    continue;
                }
                wanted.push((c.id, g.grantee, g.role, format!("{who}: {} on {place}", g.role.as_str())));
            }
        }
    }

    let mut library_rows = media::item_rows(other, id).map_err(e)?;
    let mut transcode_rows = crate::transcode::item_rows(other, id).map_err(e)?;
    let user_live = |v: &Value| -> Result<bool, BackupError> {
        match as_i64(v) {
            Some(u) => Ok(users::get(live, UserId(u)).map_err(e)?.is_some()),
            None => Ok(true),
        }
    };
    for rows in &mut library_rows {
        // People deleted live since the restore: their links are dropped, not invented.
        for column in ["owner_id", "created_by"] {
            let mut missing = Vec::new();
            for v in rows.column(column) {
                if !user_live(&v)? {
                    missing.push(v);
                }
            }
            if !missing.is_empty() {
                if column == "owner_id" {
                    result.notes.push("its owner's account no longer exists; it now has no owner".into());
                }
                rows.map_column(column, |v| if missing.contains(v) { Value::Null } else { v.clone() });
            }
        }
        if rows.table == "playback_positions" {
            let mut keep = Vec::new();
            for v in rows.column("user_id") {
                keep.push((v.clone(), user_live(&v)?));
            }
            rows.retain("user_id", |v| keep.iter().any(|(k, ok)| k == v && *ok));
        }
        if rows.table == "captions" {
            result.captions = rows.values.len();
        }
    }
    transcode_rows.retain(|r| !r.is_empty());
    Ok(Some(Plan {
        item,
        library_rows,
        transcode_rows,
        categories: recreate,
        grants: wanted,
        replace,
        result,
    }))
}

/// Make sure the blob `hex` is in the store, fetching it from the target when it is not.
async fn ensure_blob(
    store: &BlobStore,
    target: Option<&Target>,
    hex: &str,
    what: &str,
) -> Result<&'static str, BackupError> {
    let hash = Sha256::from_hex(hex)?;
    if store.exists(&hash)? {
        return Ok("server");
    }
    let Some(target) = target else {
        return Err(BackupError::NotFound(format!(
            "The file of {what} (SHA-256 {hex}) is no longer on the server and no backup target is \
             configured; give --backup-dir (or set [backup] dir) to fetch it from the backup."
        )));
    };
    match transfer::download_blob(target, &blob_key(&hash), &hash, store).await {
        Ok(_) => Ok("backup"),
        Err(BackupError::NotInBackup(_)) => Err(BackupError::NotFound(format!(
            "The file of {what} (SHA-256 {hex}) is neither on the server nor in the backup target {target}."
        ))),
        Err(other) => Err(other),
    }
}

/// Recover the chosen items. Checks everything first; writes nothing when any item conflicts.
pub async fn recover(
    db: &Db,
    store: &BlobStore,
    target: Option<&Target>,
    data_dir: &Path,
    other: &OtherDb,
    opts: &Options,
    now: Timestamp,
) -> Result<Vec<Recovered>, BackupError> {
    let mut plans = Vec::new();
    let mut results = Vec::new();
    for id in &opts.media {
        let (id, o) = (*id, opts.clone());
        let path = other.path.clone();
        let planned = {
            let other_conn = &other.conn;
            db.read_blocking(|live| plan(live, other_conn, id, &o, &path))?
        };
        match planned {
            Some(p) => plans.push(p),
            None => {
                let title = media::get(&other.conn, id).map_err(e)?.map(|m| m.title).unwrap_or_default();
                results.push(Recovered {
                    id,
                    title,
                    outcome: "unchanged",
                    content: "server",
                    categories_recreated: Vec::new(),
                    grants_restored: Vec::new(),
                    captions: 0,
                    renditions: "kept",
                    notes: vec!["already live and the same as in the restore".into()],
                });
            }
        }
    }

    for mut p in plans {
        let id = p.item.id;
        let label = format!("item {id} \"{}\"", p.item.title);
        if let Some(hex) = &p.item.sha256 {
            p.result.content = ensure_blob(store, target, hex, &label).await?;
        }
        // Thumbnails: fetch, or leave out the ones the backup does not have.
        for rows in &mut p.library_rows {
            if rows.table != "renditions" {
                continue;
            }
            let mut missing = Vec::new();
            for v in rows.column("sha256") {
                if let Value::Text(hex) = &v
                    && ensure_blob(store, target, hex, &format!("a thumbnail of {label}")).await.is_err()
                {
                    missing.push(v.clone());
                }
            }
            if !missing.is_empty() {
                p.result
                    .notes
                    .push(format!("{} thumbnail(s) could not be found and were left out", missing.len()));
                rows.retain("sha256", |v| !missing.contains(v));
            }
        }
        // What the transcoder published: still on disk, or from the backup, or convert again.
        let published =
            p.transcode_rows.iter().any(|r| r.table == "media_rungs" || r.table == "media_assets");
        let dir = crate::transcode::media_dir(data_dir, id);
        let mut requeue = false;
        if published {
            let on_disk = !p.replace && dir.join("hls").join("master.m3u8").is_file();
            if on_disk {
                p.result.renditions = "kept";
            } else if let Some(t) = target
                && renditions::restore_item(t, data_dir, id).await?
            {
                p.result.renditions = "restored";
            } else {
                p.transcode_rows.retain(|r| r.table == "media_probes");
                requeue = true;
                p.result.renditions = "converting again";
                p.result
                    .notes
                    .push("its converted files were not in the backup; it is converted again".into());
            }
        }

        let actor = opts.actor.clone();
        let detail = format!(
            "from {}; content from the {}; captions {}; renditions {}; categories re-created: {}; grants restored: {}",
            other.path.display(),
            p.result.content,
            p.result.captions,
            p.result.renditions,
            if p.result.categories_recreated.is_empty() {
                "none".into()
            } else {
                p.result.categories_recreated.join(", ")
            },
            if p.grants.is_empty() {
                "none".into()
            } else {
                p.grants.iter().map(|g| g.3.clone()).collect::<Vec<_>>().join(", ")
            },
        );
        let (cats, lib, tc, wanted, replace, item) = (
            p.categories.clone(),
            p.library_rows.clone(),
            p.transcode_rows.clone(),
            p.grants.clone(),
            p.replace,
            p.item.clone(),
        );
        db.write_blocking(|conn| -> Result<(), BackupError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if replace {
                media::remove_for_replace(&tx, id).map_err(e)?;
            }
            for c in &cats {
                categories::insert_exact(&tx, c).map_err(|x| {
                    BackupError::Conflict(format!(
                        "The category \"{}\" of item {id} cannot be re-created: {x}. Nothing was changed for this item.",
                        c.name
                    ))
                })?;
            }
            for rows in lib.iter().chain(&tc) {
                crate::db::rows::insert(&tx, rows)?;
            }
            if requeue {
                crate::transcode::queue::enqueue(&tx, id, 3, now).map_err(e)?;
                tx.execute("UPDATE media_items SET status = 'processing' WHERE id = ?1 AND status = 'ready'", [id])?;
            }
            for (cat, grantee, role, _) in &wanted {
                grants::set(&tx, *cat, *grantee, *role, now).map_err(e)?;
            }
            let event = Event::new("media.recovered").actor(None, &actor).target("media", id, &item.title).detail(detail);
            audit::record(&tx, &event, now)?;
            tx.commit()?;
            Ok(())
        })?;
        p.result.grants_restored = p.grants.iter().map(|g| g.3.clone()).collect();
        // The server's purge may have removed a queued blob between the fetch and the commit.
        if let Some(hex) = &p.item.sha256 {
            ensure_blob(store, target, hex, &label).await?;
        }
        results.push(p.result);
    }
    Ok(results)
}
