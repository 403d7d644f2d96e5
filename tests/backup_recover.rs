//! Partial restore with the real binary: a copy of the database stands in for a restore; an
//! item and its access are deleted live and purged; `reelbox compare` lists what went, `reelbox
//! recover` brings the item back identical (metadata, captions, grants, the same bytes fetched
//! from the backup target) and it downloads again; a live item that differs is refused unless
//! `--replace`.

mod backup_support;
mod common;
mod ingest_support;

use std::path::Path;
use std::time::Duration;

use backup_support::*;
use common::{reelbox, text};
use ingest_support::{pdf, sha256_hex};
use reelbox::App;
use reelbox::clock::Clock;
use reelbox::config::Config;
use reelbox::db::Db;
use reelbox::ingest::tus::Uploads;
use reelbox::library::lifecycle::{self, DAY};
use reelbox::store::BlobStore;
use reqwest::Method;
use serde_json::{Value, json};

const SRT: &str = "1\n00:00:00,000 --> 00:00:02,000\nPhotosynthesis turns light into sugar.\n";

fn cli(args: &[&str]) -> std::process::Output {
    reelbox().args(args).output().expect("run reelbox")
}

fn query_i64(data: &Path, sql: &str, id: i64) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        data.join("reelbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    c.query_row(sql, [id], |r| r.get(0)).expect("query")
}

/// Run the retention job on `data` with a clock past the archive retention.
async fn purge(data: &Path, archived_at: i64) {
    let config = Config { data_dir: data.to_path_buf(), ..Default::default() };
    let days = config.library.archive_days;
    let db = Db::open(data, 2).expect("db");
    let store = BlobStore::open(data).expect("store");
    let uploads = Uploads::open(data).expect("uploads");
    let clock = Clock::manual(archived_at + i64::from(days) * DAY + 1);
    let app = App::new(config, db, store, uploads, clock, None).expect("app");
    let report = lifecycle::purge_due(&app).await.expect("purge");
    assert_eq!(report.items_purged, 1, "{report:?}");
    app.db.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_lists_a_deleted_item_and_recover_brings_it_back_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, target) = (dir.path().join("data"), dir.path().join("target"));
    let data_s = data.to_str().expect("path").to_string();
    let restore = dir.path().join("restore.db");
    let restore_s = restore.to_str().expect("path").to_string();

    let mut server = start(&data, dir.path(), &target, &[]);
    server.add_user("ada", true);
    server.add_user("stan", false);
    let admin = server.api(&server.token("ada"));
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category");
    let group = admin.call(Method::POST, "/api/v1/groups", Some(&json!({"name": "Year 9"})), 201).await["id"]
        .as_i64()
        .expect("group");
    admin
        .call(
            Method::POST,
            &format!("/api/v1/groups/{group}/members"),
            Some(&json!({"username": "stan"})),
            204,
        )
        .await;
    let grants = json!([{"group_id": group, "role": "view"}]);
    admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grants), 204).await;

    let (kept, _) = upload(&admin, cat, "worksheet.pdf", pdf(1, 40_000)).await;
    let lesson_bytes = pdf(2, 250_000);
    let (lesson, hex) = upload(&admin, cat, "photosynthesis.pdf", lesson_bytes.clone()).await;
    let edit =
        json!({"title": "Photosynthesis", "description": "Light into sugar", "tags": "biology, plants"});
    admin.call(Method::PATCH, &format!("/api/v1/media/{lesson}"), Some(&edit), 200).await;
    let res = admin
        .client
        .post(admin.url(&format!("/api/v1/media/{lesson}/captions?lang=en")))
        .bearer_auth(&admin.token)
        .body(SRT)
        .send()
        .await
        .expect("captions");
    assert_eq!(res.status().as_u16(), 201);
    let before = admin.get_json(&format!("/api/v1/media/{lesson}")).await;
    let captions_before = admin.get_json(&format!("/api/v1/media/{lesson}/captions")).await;
    wait_for_copy(&server, &target, &hex, Duration::from_secs(60));

    // The "restore": a consistent copy of the live database, beside it.
    {
        let c = rusqlite::Connection::open(data.join("reelbox.db")).expect("open live db");
        c.execute("VACUUM INTO ?1", [&restore_s]).expect("vacuum into");
    }

    // Live: the lesson is deleted for good and Year 9 loses its access.
    admin.call(Method::DELETE, &format!("/api/v1/media/{lesson}"), None, 200).await;
    admin.call(Method::DELETE, &format!("/api/v1/media/{lesson}?permanent=true"), None, 200).await;
    admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&json!([])), 204).await;
    let archived_at = query_i64(&data, "SELECT archived_at FROM media_items WHERE id = ?1", lesson);
    assert!(server.stop_gracefully().success());
    purge(&data, archived_at).await;
    assert!(!ingest_support::blobs(&data).iter().any(|p| p.ends_with(&hex)), "the purge removed the blob");

    let server = start(&data, dir.path(), &target, &[]);
    let admin = server.api(&admin.token);
    let stan = server.api(&server.token("stan"));
    assert_eq!(stan.get(&format!("/api/v1/media/{kept}")).await.status().as_u16(), 404, "no access any more");

    // compare: in words, then as JSON.
    let out = cli(&["compare", "--data", &data_s, "--with", &restore_s]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", text(&out.stderr));
    assert!(said.contains("Media items: 1 only in restore.db, 0 only live, 0 changed."), "{said}");
    assert!(
        said.contains(&format!(
            "\"Photosynthesis\" (item {lesson}, document in Science): in restore.db, not live"
        )),
        "{said}"
    );
    assert!(said.contains("group Year 9 on Science: in restore.db, not live"), "{said}");
    assert!(said.contains("Captions: 1 only in restore.db"), "{said}");
    assert!(said.contains("People: no differences."), "{said}");
    let out = cli(&["compare", "--data", &data_s, "--with", &restore_s, "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let media =
        json["kinds"].as_array().and_then(|k| k.iter().find(|k| k["kind"] == "media items")).expect("media");
    assert_eq!(media["only_in_other"][0]["key"], lesson.to_string(), "{json}");

    // recover, with the server running. Without the backup target the purged file is missing.
    let lesson_s = lesson.to_string();
    let target_s = target.to_str().expect("path").to_string();
    let out = cli(&["recover", "--data", &data_s, "--from", &restore_s, "--media", &lesson_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no longer on the server and no backup target"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&[
        "recover",
        "--data",
        &data_s,
        "--from",
        &restore_s,
        "--media",
        &lesson_s,
        "--backup-dir",
        &target_s,
    ]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("fetched from the backup target and checked"), "{said}");
    assert!(said.contains("access restored: group Year 9: view on Science"), "{said}");

    let out = cli(&["compare", "--data", &data_s, "--with", &restore_s]);
    assert_eq!(out.status.code(), Some(0), "identical again: {}", text(&out.stdout));
    assert!(text(&out.stdout).contains("They hold the same records."));
    assert!(ingest_support::blobs(&data).iter().any(|p| p.ends_with(&hex)), "the blob is back in the store");

    let after = admin.get_json(&format!("/api/v1/media/{lesson}")).await;
    for field in
        ["title", "description", "tags", "sha256", "size", "kind", "status", "category_id", "created_at"]
    {
        assert_eq!(after[field], before[field], "{field}: {after}");
    }
    assert_eq!(admin.get_json(&format!("/api/v1/media/{lesson}/captions")).await, captions_before);
    // The running server caches access lists per write of its own; its next write (here: any
    // admin change) picks up what `recover` wrote from another process.
    admin.call(Method::POST, "/api/v1/groups", Some(&json!({"name": "Year 10"})), 201).await;
    let res = stan.get(&format!("/api/v1/media/{lesson}/original")).await;
    assert_eq!(res.status().as_u16(), 200, "Year 9 may see it again");
    let body = res.bytes().await.expect("body");
    assert_eq!(sha256_hex(&body), hex, "the same bytes download");
    assert_eq!(body.len(), lesson_bytes.len());
    let audit = admin.get_json("/api/v1/audit?action=media.recovered").await;
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");

    // Again: nothing to do.
    let out = cli(&["recover", "--data", &data_s, "--from", &restore_s, "--media", &lesson_s]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("unchanged"), "{}", text(&out.stdout));

    // A live item that differs is refused, and nothing changes; --replace overwrites it.
    admin
        .call(Method::PATCH, &format!("/api/v1/media/{kept}"), Some(&json!({"title": "Renamed live"})), 200)
        .await;
    let kept_s = kept.to_string();
    let out = cli(&["recover", "--data", &data_s, "--from", &restore_s, "--media", &kept_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("differs") && err.contains("Renamed live") && err.contains("--replace"), "{err}");
    assert_eq!(admin.get_json(&format!("/api/v1/media/{kept}")).await["title"], "Renamed live");
    let out = cli(&["recover", "--data", &data_s, "--from", &restore_s, "--media", &kept_s, "--replace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(admin.get_json(&format!("/api/v1/media/{kept}")).await["title"], "worksheet");

    // Bad input: not a database, an unknown item.
    let out = cli(&["compare", "--data", &data_s, "--with", "/etc/hostname"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a reelbox database"), "{}", text(&out.stderr));
    let out = cli(&["recover", "--data", &data_s, "--from", &restore_s, "--media", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Item 999 is not in"), "{}", text(&out.stderr));
}
