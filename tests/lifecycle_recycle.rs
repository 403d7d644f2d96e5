//! The recycle bin, the archive and the purge: against the real binary for who may do what (the
//! API and `reelbox archive`), and against the real database and blob store with a manual clock
//! for retention.

mod common;
mod ingest_support;

use std::time::Duration;

use ingest_support::*;
use reelbox::accounts::login::Actor;
use reelbox::clock::Clock;
use reelbox::db::Db;
use reelbox::library::categories::{self, NewCategory};
use reelbox::library::lifecycle::{self, DAY};
use reelbox::library::media::{self, MediaKind, MediaStatus, NewMedia, StoredContent};
use reelbox::store::BlobStore;
use reqwest::Method;
use serde_json::{Value, json};

async fn call(api: &common::Api, method: Method, path: &str) -> (u16, Value) {
    status_and_json(api.send(method, path, None).await).await
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"].as_array().map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycle_restore_archive_and_restore_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    lib.server.add_user("manon", false);
    let manager = lib.server.api(&lib.server.token("manon"));
    let grants = json!([
        {"username": "tess", "role": "contribute"},
        {"username": "stu", "role": "view"},
        {"username": "manon", "role": "manage"},
    ]);
    lib.admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grants), 204).await;

    let image = png(7, 5_000);
    let res = post_media(
        &lib.teacher,
        &format!("category={cat}&filename=a.png"),
        image.clone(),
        Some(content_digest(&image)),
    )
    .await;
    let (status, item) = status_and_json(res).await;
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_i64().expect("id");
    let item_path = format!("/api/v1/media/{id}");

    // A viewer may not delete; the owner (contribute only) may.
    assert_eq!(call(&lib.student, Method::DELETE, &item_path).await.0, 403);
    let (status, recycled) = call(&lib.teacher, Method::DELETE, &item_path).await;
    assert_eq!((status, recycled["status"].as_str()), (200, Some("recycled")), "{recycled}");
    assert_eq!(call(&lib.teacher, Method::DELETE, &item_path).await.0, 404, "hidden from its owner now");

    // Hidden from everyone but managers and administrators, download included.
    for api in [&lib.student, &lib.teacher, &lib.outsider] {
        assert_eq!(call(api, Method::GET, &item_path).await.0, 404);
        assert_eq!(api.get(&format!("{item_path}/original")).await.status().as_u16(), 404);
    }
    assert_eq!(call(&manager, Method::GET, &item_path).await.0, 200);
    assert_eq!(ids(&manager.get_json("/api/v1/recycle").await), vec![id]);
    assert_eq!(ids(&lib.admin.get_json("/api/v1/recycle").await), vec![id]);
    assert!(ids(&lib.student.get_json("/api/v1/recycle").await).is_empty(), "not a manager: empty bin");
    assert_eq!(call(&lib.student, Method::GET, "/api/v1/recycle?archived=true").await.0, 403);

    // Restore: managers, one call; back exactly as it was.
    assert_eq!(call(&lib.teacher, Method::POST, &format!("{item_path}/restore")).await.0, 404);
    let (status, back) = call(&manager, Method::POST, &format!("{item_path}/restore")).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("ready")), "{back}");
    assert_eq!(call(&lib.student, Method::GET, &item_path).await.0, 200);
    assert_eq!(call(&manager, Method::POST, &format!("{item_path}/restore")).await.0, 409, "not deleted");

    // Delete permanently: only from the recycle bin, then administrators alone see it.
    assert_eq!(call(&manager, Method::DELETE, &format!("{item_path}?permanent=true")).await.0, 409);
    assert_eq!(call(&manager, Method::DELETE, &item_path).await.0, 200);
    let (status, archived) = call(&manager, Method::DELETE, &format!("{item_path}?permanent=true")).await;
    assert_eq!((status, archived["status"].as_str()), (200, Some("archived")), "{archived}");
    assert_eq!(call(&manager, Method::GET, &item_path).await.0, 404);
    assert_eq!(call(&manager, Method::POST, &format!("{item_path}/restore")).await.0, 404);
    assert!(ids(&manager.get_json("/api/v1/recycle").await).is_empty());
    assert_eq!(call(&manager, Method::GET, "/api/v1/recycle?archived=true").await.0, 403);
    let archive = lib.admin.get_json("/api/v1/recycle?archived=true").await;
    assert_eq!(ids(&archive), vec![id]);
    let entry = &archive["items"][0];
    assert_eq!(
        entry["purge_due_at"].as_i64(),
        entry["archived_at"].as_i64().map(|t| t + 90 * DAY),
        "kept archive_days (90 by default): {entry}"
    );

    // `reelbox archive` beside the running server.
    let data = lib.data();
    let data = data.to_str().expect("utf-8 path");
    let out = common::run_cli(&["archive", "list", "--data", data], "");
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert!(common::text(&out.stdout).starts_with(&format!("{id}\t")), "{}", common::text(&out.stdout));
    let out = common::run_cli(&["archive", "restore", "999999", "--data", data], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out.stderr).contains("no item 999999"), "{}", common::text(&out.stderr));
    let out = common::run_cli(&["archive", "restore", &id.to_string(), "--data", data], "");
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let (status, back) = call(&lib.student, Method::GET, &item_path).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("ready")), "{back}");
    assert_eq!(lib.student.get(&format!("{item_path}/original")).await.bytes().await.expect("body"), image);

    for (action, n) in [("media.recycled", 2), ("media.restored", 2), ("media.archived", 1)] {
        let events = audit(&lib.admin, action).await;
        assert_eq!(events.len(), n, "{action}: {events:?}");
        let target = id.to_string();
        assert!(events.iter().all(|e| e["target_id"].as_str() == Some(target.as_str())), "{events:?}");
    }
    assert_eq!(audit(&lib.admin, "media.restored").await[0]["actor"], "command line");
}

/// Retention with a manual clock, on the real database and blob store.
#[test]
fn archived_items_purge_after_archive_days_and_shared_blobs_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), 1).expect("db");
    let store = BlobStore::open(dir.path()).expect("store");
    let clock = Clock::manual(1_700_000_000);
    let cat = db
        .write_blocking(|c| {
            categories::create(
                c,
                NewCategory { name: "Music", parent_id: None, description: "", public: false },
                1,
            )
        })
        .expect("category")
        .id;
    let actor = Actor { id: None, name: "teacher".into(), addr: String::new() };
    let make = |bytes: &[u8]| {
        let stored = store.put_bytes(bytes, None).expect("stored");
        let content = StoredContent {
            kind: MediaKind::Audio,
            mime: "audio/mpeg".into(),
            size: stored.size,
            sha256: stored.hash.to_hex(),
        };
        let item = db
            .write_blocking(|c| {
                media::create(
                    c,
                    NewMedia {
                        category_id: cat,
                        owner_id: None,
                        title: "",
                        filename: "a.mp3",
                        content: Some(content),
                    },
                    clock.now(),
                )
            })
            .expect("item");
        (item.id, stored.hash)
    };
    let delete = |id| {
        db.write_blocking(|c| lifecycle::recycle(c, id, &actor, clock.now())).expect("recycle");
        db.write_blocking(|c| lifecycle::archive(c, id, &actor, clock.now())).expect("archive");
    };
    let purge = |days| {
        db.write_blocking(|c| lifecycle::purge(c, &store, clock.now(), days, Duration::ZERO)).expect("purge")
    };
    let status = |id| db.read_blocking(|c| lifecycle::status_of(c, id)).expect("status");

    let (shared_a, hash) = make(b"shared song");
    let (shared_b, _) = make(b"shared song");
    let (alone, alone_hash) = make(b"only copy");
    delete(shared_a);
    delete(alone);

    clock.advance(7 * DAY - 1);
    assert_eq!(purge(7).items_purged, 0, "not before archive_days");
    assert_eq!(status(shared_a), Some(MediaStatus::Archived));
    assert!(store.exists(&alone_hash).expect("exists"));

    clock.advance(1);
    let report = purge(7);
    assert_eq!((report.items_purged, report.blobs_removed, report.blobs_still_used), (2, 1, 1), "{report:?}");
    assert_eq!((status(shared_a), status(alone)), (None, None));
    assert!(store.exists(&hash).expect("exists"), "still referenced by the other item");
    assert!(!store.exists(&alone_hash).expect("exists"), "nothing refers to it: removed");
    assert_eq!(status(shared_b), Some(MediaStatus::Processing));
    assert!(db.read_blocking(lifecycle::queued_removals).expect("queue").is_empty());
}

/// The same lifecycle from the pages, without JavaScript: confirm, post, redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_delete_restore_and_archive_without_javascript() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let image = png(9, 4_000);
    let res = post_media(
        &lib.teacher,
        &format!("category={cat}&filename=Volcano.png"),
        image.clone(),
        Some(content_digest(&image)),
    )
    .await;
    let (status, item) = status_and_json(res).await;
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_i64().expect("id");

    // The owner deletes their own upload after a confirmation.
    let tess = lib.server.browser_login("tess", common::PASSWORD).await;
    let page = tess.get(&format!("/media/{id}/delete")).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("page");
    assert!(
        html.contains("Delete “Volcano”?") && html.contains(&format!("action=\"/media/{id}/delete\"")),
        "{html}"
    );
    let res = tess.post_form(&format!("/media/{id}/delete"), &[]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(common::location(&res), format!("/categories/{cat}?notice=removed"));
    let bin = tess.get("/recycle").await.text().await.expect("page");
    assert!(bin.contains("The recycle bin is empty"), "a contributor manages nothing: {bin}");

    // The administrator finds it in the bin, deletes it permanently, then restores it from the archive.
    let ada = lib.server.browser_login("ada", common::PASSWORD).await;
    let bin = ada.get("/recycle").await.text().await.expect("page");
    assert!(bin.contains("Volcano") && bin.contains(&format!("/recycle/{id}/restore")), "{bin}");
    let confirm = ada.get(&format!("/recycle/{id}/delete")).await.text().await.expect("page");
    assert!(confirm.contains("90 days"), "{confirm}");
    let res = ada.post_form(&format!("/recycle/{id}/delete"), &[]).await;
    assert_eq!((res.status().as_u16(), common::location(&res)), (303, "/recycle?notice=removed".to_string()));
    let archive = ada.get("/admin/archive").await.text().await.expect("page");
    assert!(
        archive.contains("Volcano") && archive.contains(&format!("/admin/archive/{id}/restore")),
        "{archive}"
    );
    let res = ada.post_form(&format!("/admin/archive/{id}/restore"), &[]).await;
    assert_eq!(res.status().as_u16(), 303);
    let (status, back) = call(&lib.student, Method::GET, &format!("/api/v1/media/{id}")).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("ready")), "{back}");
    assert!(ada.get("/admin/archive").await.text().await.expect("page").contains("The archive is empty"));
}

/// The recycle bin is in the main navigation of administrators and of people who manage some
/// category, and of nobody else; it appears as soon as the grant is given and goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recycle_bin_is_in_the_navigation_of_managers_and_admins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    lib.server.add_user("manon", false);
    const LINK: &str = "<a href=\"/recycle\"";
    let nav_of = |html: &str| -> String {
        let start = html.find("<nav class=\"site-nav\"").unwrap_or(0);
        let end = html[start..].find("</nav>").map_or(html.len(), |e| start + e);
        html[start..end].to_string()
    };
    let (ada, tess, stu, manon) = (
        lib.server.browser_login("ada", common::PASSWORD).await,
        lib.server.browser_login("tess", common::PASSWORD).await,
        lib.server.browser_login("stu", common::PASSWORD).await,
        lib.server.browser_login("manon", common::PASSWORD).await,
    );
    for (who, browser, expected) in
        [("admin", &ada, true), ("contributor", &tess, false), ("viewer", &stu, false)]
    {
        let nav = nav_of(&browser.get("/").await.text().await.expect("page"));
        assert_eq!(nav.contains(LINK), expected, "{who}: {nav}");
    }
    assert!(!nav_of(&manon.get("/account").await.text().await.expect("page")).contains(LINK));

    // Manage on one category: the link shows on every page, marked current on the bin itself.
    let grants = json!([
        {"username": "tess", "role": "contribute"},
        {"username": "stu", "role": "view"},
        {"username": "manon", "role": "manage"},
    ]);
    lib.admin
        .call(Method::PUT, &format!("/api/v1/categories/{}/grants", lib.category), Some(&grants), 204)
        .await;
    for path in ["/", "/account", &format!("/categories/{}", lib.category)] {
        let nav = nav_of(&manon.get(path).await.text().await.expect("page"));
        assert!(nav.contains(LINK), "{path}: {nav}");
    }
    let nav = nav_of(&manon.get("/recycle").await.text().await.expect("page"));
    assert!(nav.contains("<a href=\"/recycle\" aria-current=\"page\">Recycle bin</a>"), "{nav}");

    // The grant goes: so does the link.
    let grants = json!([{"username": "tess", "role": "contribute"}, {"username": "stu", "role": "view"}]);
    lib.admin
        .call(Method::PUT, &format!("/api/v1/categories/{}/grants", lib.category), Some(&grants), 204)
        .await;
    assert!(!nav_of(&manon.get("/").await.text().await.expect("page")).contains(LINK));
}
