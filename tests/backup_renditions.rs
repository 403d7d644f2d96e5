//! A transcoded video's published files (HLS, download, poster) are copied to the backup target
//! with a manifest; after the item is purged, `reelbox recover` puts them back byte for byte and
//! the item plays again without being converted again.

mod backup_support;
mod common;
mod ingest_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use backup_support::target_blob;
use common::{Server, reelbox, text};
use ingest_support::{files_under, sha256_hex};
use reelbox::App;
use reelbox::clock::Clock;
use reelbox::config::Config;
use reelbox::db::Db;
use reelbox::ingest::tus::Uploads;
use reelbox::library::lifecycle::{self, DAY};
use reelbox::store::BlobStore;
use reqwest::Method;
use serde_json::{Value, json};

fn start(data: &Path, logs: &Path, target: &Path) -> Server {
    let target = target.to_path_buf();
    Server::start_with(data, logs, move |c| {
        common::with_ffmpeg(c);
        c.arg("--backup-dir").arg(&target);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Relative path → SHA-256 of every file under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).expect("under").to_string_lossy().into_owned();
            (rel, sha256_hex(&std::fs::read(&p).expect("read")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_video_plays_again_from_its_backed_up_renditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, target) = (dir.path().join("data"), dir.path().join("target"));
    let restore = dir.path().join("restore.db");
    let mut server = start(&data, dir.path(), &target);
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Films"})), 201).await["id"]
            .as_i64()
            .expect("category");
    let clip = dir.path().join("short.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=3",
            "-c:v",
            "mpeg4",
            "-y",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(made.success());
    let (id, _) = backup_support::upload(&admin, cat, "short.mp4", std::fs::read(&clip).expect("clip")).await;

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item: Value = admin.get_json(&format!("/api/v1/media/{id}")).await;
        if item["status"] == "ready" {
            break;
        }
        assert!(item["status"] != "failed" && Instant::now() < deadline, "{item}\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let media = data.join("media").join(id.to_string());
    let published = tree(&media);
    assert!(published.contains_key("hls/master.m3u8"), "{published:?}");
    // The backup follows what was published (polled every 20 s).
    let manifest = target.join("renditions").join(format!("{id}.json"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let listed: Option<Value> =
            std::fs::read(&manifest).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if listed.as_ref().and_then(|m| m["files"].as_array()).map(Vec::len) == Some(published.len()) {
            break;
        }
        assert!(Instant::now() < deadline, "manifest {listed:?}\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for hex in published.values() {
        assert!(target_blob(&target, hex).is_file(), "{hex} copied");
    }
    {
        let c = rusqlite::Connection::open(data.join("reelbox.db")).expect("db");
        c.execute("VACUUM INTO ?1", [restore.to_str().expect("path")]).expect("vacuum into");
    }

    admin.call(Method::DELETE, &format!("/api/v1/media/{id}"), None, 200).await;
    admin.call(Method::DELETE, &format!("/api/v1/media/{id}?permanent=true"), None, 200).await;
    let archived_at: i64 = {
        let c = rusqlite::Connection::open(data.join("reelbox.db")).expect("db");
        c.query_row("SELECT archived_at FROM media_items WHERE id = ?1", [id], |r| r.get(0))
            .expect("archived")
    };
    assert!(server.stop_gracefully().success());
    {
        let config = Config { data_dir: data.clone(), ..Default::default() };
        let clock = Clock::manual(archived_at + i64::from(config.library.archive_days) * DAY + 1);
        let app = App::new(
            config,
            Db::open(&data, 2).expect("db"),
            BlobStore::open(&data).expect("store"),
            Uploads::open(&data).expect("uploads"),
            clock,
            None,
        )
        .expect("app");
        assert_eq!(lifecycle::purge_due(&app).await.expect("purge").items_purged, 1);
        app.db.close();
    }
    assert!(!media.exists(), "the purge removed the published files");

    let server = start(&data, dir.path(), &target);
    let admin = server.api(&admin.token);
    let out = reelbox()
        .args(["recover", "--data"])
        .arg(&data)
        .arg("--from")
        .arg(&restore)
        .args(["--media", &id.to_string(), "--backup-dir"])
        .arg(&target)
        .output()
        .expect("recover");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("converted files: restored"), "{}", text(&out.stdout));
    assert_eq!(tree(&media), published, "every published file is back, byte for byte");

    let item = admin.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(item["status"], "ready", "{item}");
    assert_eq!(item["playable"], true, "{item}");
    let res = admin.get(&format!("/media/{id}/hls/master.m3u8")).await;
    assert_eq!(res.status().as_u16(), 200);
    let body = res.bytes().await.expect("master");
    assert_eq!(sha256_hex(&body), published["hls/master.m3u8"]);
}
