//! Backups of media: the real binary copies each stored blob to a directory target and checks
//! the copy; after a restart its walk copies what is missing, skips what is there and replaces a
//! damaged copy; blobs purged from the server stay in the target for the retention, then go.

mod backup_support;
mod common;
mod ingest_support;

use std::time::Duration;

use backup_support::*;
use ingest_support::{pdf, sha256_hex};
use reelbox::backup::media::{Copied, Ctx, copy_blob, reconcile};
use reelbox::backup::{StatusHandle, Target};
use reelbox::clock::Clock;
use reelbox::config::BackupConfig;
use reelbox::db::Db;
use reelbox::store::{BlobStore, Removal, Sha256};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_copied_verified_reconciled_and_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, target) = (dir.path().join("data"), dir.path().join("target"));
    let mut server = start(&data, dir.path(), &target, &[]);
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category");

    let mut hashes = Vec::new();
    for seed in 1..=3u8 {
        let (_, hex) =
            upload(&admin, cat, &format!("notes-{seed}.pdf"), pdf(seed, 300_000 + usize::from(seed))).await;
        hashes.push(hex);
    }
    for hex in &hashes {
        wait_for_copy(&server, &target, hex, Duration::from_secs(60));
    }
    // The dashboard shows where copies go and how far they are.
    let browser = server.browser_login("ada", common::PASSWORD).await;
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    for shown in
        ["Backups and replication", "Database in the target", "Media copied since start", "transaction "]
    {
        assert!(page.contains(shown), "{shown:?} on the dashboard: {page}");
    }
    assert!(!page.contains("No backup target is configured"), "{page}");
    assert!(server.stop_gracefully().success());

    // While the server is down: one copy lost, one damaged (same size), one intact.
    let lost = target_blob(&target, &hashes[0]);
    std::fs::remove_file(&lost).expect("remove a copy");
    let damaged = target_blob(&target, &hashes[1]);
    let mut bytes = std::fs::read(&damaged).expect("read copy");
    bytes[1000] ^= 0x55;
    std::fs::write(&damaged, &bytes).expect("damage a copy");
    let intact = target_blob(&target, &hashes[2]);
    let intact_mtime = std::fs::metadata(&intact).and_then(|m| m.modified()).expect("mtime");

    let server = start(&data, dir.path(), &target, &[]);
    let log = wait_for_log(&server, "media backup walk done", Duration::from_secs(60));
    let walk = log.lines().find(|l| l.contains("media backup walk done")).unwrap_or_default();
    assert!(
        walk.contains("copied: 2") && walk.contains("repaired: 1") && walk.contains("present: 1"),
        "{walk}"
    );
    for hex in &hashes {
        let b = std::fs::read(target_blob(&target, hex)).expect("copy there");
        assert_eq!(sha256_hex(&b), *hex, "the copy of {hex} is intact again");
    }
    assert_eq!(
        std::fs::metadata(&intact).and_then(|m| m.modified()).expect("mtime"),
        intact_mtime,
        "an intact copy is not written again"
    );
    // The day's server files are there too, with nothing secret.
    let days: Vec<_> = std::fs::read_dir(target.join("files")).expect("files/").flatten().collect();
    assert_eq!(days.len(), 1, "one day of server files");
    assert!(days[0].path().join("MANIFEST.json").is_file());
}

fn ctx(dir: &std::path::Path, target: Target, clock: Clock) -> (Ctx, BlobStore) {
    let store = BlobStore::open(dir).expect("store");
    let db = Db::open(dir, 1).expect("db");
    let ctx = Ctx {
        target,
        store: store.clone(),
        db,
        data_dir: dir.to_path_buf(),
        clock,
        cfg: BackupConfig::default(),
        status: StatusHandle::default(),
    };
    (ctx, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_blobs_stay_for_the_retention_then_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target_dir = dir.path().join("target");
    std::fs::create_dir_all(&target_dir).expect("target");
    let target: Target = std::sync::Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(&target_dir).expect("target"),
    );
    let clock = Clock::manual(1_700_000_000);
    let (ctx, store) = ctx(&dir.path().join("data"), target, clock.clone());

    let kept = store.put_bytes(&pdf(7, 50_000), None).expect("store").hash;
    let purged = store.put_bytes(&pdf(8, 60_000), None).expect("store").hash;
    let r = reconcile(&ctx, false).await.expect("walk");
    assert_eq!((r.copied, r.present), (2, 0), "{r:?}");
    assert_eq!(copy_blob(&ctx, &kept).await.expect("copy"), Copied::Present, "skipped when present");

    // The purge removes the blob from the server (nothing refers to it).
    let removal = store.remove_unreferenced(&purged, Duration::ZERO, || Ok(false)).expect("remove");
    assert_eq!(removal, Removal::Removed);
    let copy = target_blob(&target_dir, &purged.to_hex());
    let r = reconcile(&ctx, false).await.expect("walk");
    assert_eq!(r.marked, 1, "{r:?}");
    assert!(copy.is_file(), "kept after the purge");

    clock.advance(89 * 24 * 3600);
    let r = reconcile(&ctx, false).await.expect("walk");
    assert_eq!((r.marked, r.expired), (0, 0), "{r:?}");
    assert!(copy.is_file(), "kept for 90 days");

    clock.advance(24 * 3600);
    let r = reconcile(&ctx, true).await.expect("walk");
    assert_eq!(r.expired, 1, "{r:?}");
    assert!(!copy.exists(), "deleted after 90 days");
    assert!(
        !target_dir
            .join("media")
            .join(&purged.to_hex()[0..2])
            .join(format!("{}.purged", purged.to_hex()))
            .exists()
    );
    assert!(target_blob(&target_dir, &kept.to_hex()).is_file(), "what the server has stays");
    assert_eq!(Sha256::digest(&std::fs::read(target_blob(&target_dir, &kept.to_hex())).expect("read")), kept);
}
