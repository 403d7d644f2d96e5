//! `kill -9` of the server in the middle of a transcode: what was published before is whole
//! (nothing partial at a published path), and after the restart the job resumes — the rungs
//! already published are kept — and the item ends `ready`.

mod common;
mod transcode_support;

use std::time::{Duration, Instant};

use transcode_support::*;

/// Every rung the master lists is complete and decodes; no rung directory is unlisted.
fn published_is_whole(site: &Site, id: i64) -> Vec<String> {
    let hls = site.media(id).join("hls");
    let master = std::fs::read_to_string(hls.join("master.m3u8")).expect("master after the first rung");
    let listed: Vec<String> = master_rungs(&master).into_iter().map(|r| r.0).collect();
    for name in &listed {
        check_rung(&hls.join(name));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&hls)
        .expect("hls dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted, "every rung directory is complete and listed");
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_transcode_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    // MPEG-4 Part 2: no remux, every rung encoded; long enough to be caught in the middle.
    let src = clip(
        dir.path(),
        "assembly.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=10",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=10",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let id = site.upload(&src).await;
    // Wait for the first rung to be published and the second pass to be under way.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item = site.item(id).await;
        assert_ne!(item["status"], "ready", "finished before it could be interrupted: {item}");
        if item["playable"] == true
            && item["transcode_state"] == "running"
            && item["progress"].as_u64() > Some(15)
        {
            assert_eq!(item["status"], "processing");
            break;
        }
        assert!(Instant::now() < deadline, "never reached the second pass: {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_published =
        site.query_i64("SELECT published_at FROM media_rungs WHERE media_id = ?1 AND name = '240p'", id);

    let site = site.restart(dir.path());
    let listed = published_is_whole(&site, id);
    assert_eq!(listed, ["240p"], "only the first rung was published before the crash");
    let item = site.item(id).await;
    assert_eq!(item["playable"], true, "still playable after the restart: {item}");

    let (item, _) = site.finished(id, Duration::from_secs(240)).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, id, &item, 10.0);
    assert_eq!(rungs.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["720p", "480p", "360p", "240p"]);
    published_is_whole(&site, id);
    assert_eq!(
        site.query_i64("SELECT published_at FROM media_rungs WHERE media_id = ?1 AND name = '240p'", id),
        first_published,
        "the rung published before the crash was kept, not made again"
    );
    assert_eq!(site.query_i64("SELECT attempts FROM transcode_jobs WHERE media_id = ?1", id), 2);
}
