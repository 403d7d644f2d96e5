//! Purging an archived item past retention removes what transcoding published for it
//! (`<data>/media/<id>/`), with the real binary making the renditions and a manual clock
//! running the purge on the same data directory.

mod common;
mod transcode_support;

use std::time::Duration;

use reelbox::App;
use reelbox::clock::Clock;
use reelbox::config::Config;
use reelbox::db::Db;
use reelbox::ingest::tus::Uploads;
use reelbox::library::lifecycle::{self, DAY};
use reelbox::store::BlobStore;
use reqwest::Method;
use transcode_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_an_archived_item_removes_its_media_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    let src = clip(
        dir.path(),
        "short.mp4",
        &["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3", "-c:v", "mpeg4"],
    );
    let id = site.upload(&src).await;
    let (item, _) = site.finished(id, Duration::from_secs(120)).await;
    assert_eq!(item["status"], "ready", "{item}");
    let media = site.media(id);
    assert!(media.join("hls").join("master.m3u8").is_file(), "renditions published");
    assert!(media.join("download.mp4").is_file());

    // Recycle, then delete permanently (archive), as the administrator.
    let path = format!("/api/v1/media/{id}");
    site.admin.call(Method::DELETE, &path, None, 200).await;
    site.admin.call(Method::DELETE, &format!("{path}?permanent=true"), None, 200).await;
    let archived_at = site.query_i64("SELECT archived_at FROM media_items WHERE id = ?1", id);
    let data = site.data();
    drop(site);

    // The same data directory, a clock past the retention.
    let config = Config { data_dir: data.clone(), ..Default::default() };
    let days = config.library.archive_days;
    let db = Db::open(&data, 2).expect("db");
    let store = BlobStore::open(&data).expect("store");
    let uploads = Uploads::open(&data).expect("uploads");
    let clock = Clock::manual(archived_at + i64::from(days) * DAY - 1);
    let app = App::new(config, db, store, uploads, clock.clone(), None).expect("app");

    let report = lifecycle::purge_due(&app).await.expect("purge");
    assert_eq!(report.items_purged, 0, "not before archive_days");
    assert!(media.is_dir(), "kept while the item may still be restored");

    clock.advance(1);
    let report = lifecycle::purge_due(&app).await.expect("purge");
    assert_eq!(report.items_purged, 1, "{report:?}");
    assert!(!media.exists(), "{} is removed with the item", media.display());
    assert!(data.join("media").is_dir(), "only the item's own directory goes");
    app.db.close();
}
