//! Progress during a real conversion: the API's `progress` moves between 0 and 100 while the
//! ladder is made (both passes, weighted), never goes back, and `eta_seconds` is given.

mod common;
mod transcode_support;

use std::time::{Duration, Instant};

use transcode_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_during_a_conversion_and_never_goes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    // Low resolution, but a minute long and MPEG-4 Part 2 (every rung encoded, a sprite made):
    // several seconds of work.
    let src = clip(
        dir.path(),
        "long.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=60",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=60",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-c:a",
            "mp3",
            "-shortest",
        ],
    );
    let id = site.upload(&src).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen: Vec<u64> = Vec::new();
    let mut eta_seen = false;
    let item = loop {
        let item = site.item(id).await;
        let status = item["status"].as_str().unwrap_or_default().to_string();
        if status == "ready" || status == "failed" {
            break item;
        }
        let p = item["progress"].as_u64().expect("progress is a number");
        assert!(p <= 100, "{item}");
        if let Some(&last) = seen.last() {
            assert!(p >= last, "progress went back from {last} to {p}: {item}");
        }
        if seen.last() != Some(&p) {
            seen.push(p);
        }
        if item["transcode_state"] == "running" && item["eta_seconds"].as_u64().is_some() {
            eta_seen = true;
        }
        assert!(Instant::now() < deadline, "not finished: {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item["status"], "ready", "{item}");
    assert_eq!(item["progress"], 100, "{item}");
    assert!(item["eta_seconds"].is_null(), "no estimate once done: {item}");
    let between: Vec<u64> = seen.iter().copied().filter(|&p| p > 0 && p < 100).collect();
    assert!(between.len() >= 2, "progress values seen while converting: {seen:?}");
    assert!(
        between.iter().any(|&p| p > 15 && p < 90),
        "the second pass reports while it runs, not only at its end: {seen:?}"
    );
    eprintln!("progress seen: {seen:?}");
    assert!(eta_seen, "an estimate was given while running: {seen:?}");
}

/// The conversion fields of an item are in the API's answer and in the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversion_fields_are_documented_and_present() {
    const FIELDS: [&str; 7] =
        ["playable", "progress", "eta_seconds", "renditions", "error", "transcode_state", "damaged"];
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    let doc = site.teacher.get_json("/api/v1/openapi.json").await;
    let get = &doc["paths"]["/api/v1/media/{id}"]["get"]["responses"]["200"];
    assert_eq!(
        get["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/MediaItem",
        "{get}"
    );
    let props = &doc["components"]["schemas"]["MediaItem"]["properties"];
    let src = clip(dir.path(), "beep.wav", &["-f", "lavfi", "-i", "sine=duration=1"]);
    let id = site.upload(&src).await;
    let item = site.item(id).await;
    for f in FIELDS {
        assert!(props.get(f).is_some(), "{f} documented: {props}");
        assert!(item.get(f).is_some(), "{f} in the item: {item}");
    }
    assert!(item.get("state").is_none(), "named transcode_state, beside the item's status: {item}");
}
