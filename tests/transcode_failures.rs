//! When conversion cannot work: a corrupt file fails with a message drawn from ffmpeg and a
//! retry fails again the same way; without ffmpeg items wait as "transcoder not available" and
//! are converted once it is there; `reelbox doctor` says how to install it.

mod common;
mod transcode_support;

use std::time::Duration;

use reqwest::Method;
use transcode_support::*;

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_fails_with_a_message_and_retry_fails_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    // An MP4 whose index (at the end) was cut off: it starts like a video but is not one.
    let whole = clip(
        dir.path(),
        "whole.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let bytes = std::fs::read(&whole).expect("read");
    let cut = dir.path().join("broken.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let id = site.upload(&cut).await;
    let (item, _) = site.finished(id, LIMIT).await;
    assert_eq!(item["status"], "failed", "{item}");
    assert_eq!(item["playable"], false);
    let message = item["error"].as_str().expect("error message").to_string();
    assert!(message.contains("could not be converted") || message.contains("moov atom"), "{message}");
    assert!(message.contains("moov atom not found"), "drawn from ffmpeg's last lines: {message}");
    assert!(!site.media(id).join(".work").exists(), "work directory removed");
    assert!(!site.media(id).join("hls/master.m3u8").exists(), "nothing published");

    // Someone who may only view cannot retry; the owner can, and it fails the same way.
    let res = site.admin.send(Method::POST, &format!("/api/v1/media/{id}/retry"), None).await;
    assert_eq!(res.status().as_u16(), 202, "admins may retry");
    let (again, _) = site.finished(id, LIMIT).await;
    assert_eq!(again["status"], "failed", "{again}");
    assert_eq!(again["error"].as_str(), Some(message.as_str()), "the same reason");
    let res = site.teacher.send(Method::POST, &format!("/api/v1/media/{id}/retry"), None).await;
    assert_eq!(res.status().as_u16(), 202, "the owner may retry");
    let (third, _) = site.finished(id, LIMIT).await;
    assert_eq!(third["error"].as_str(), Some(message.as_str()));
    // Each retry started over: one attempt, not the retry limit.
    assert_eq!(site.query_i64("SELECT attempts FROM transcode_jobs WHERE media_id = ?1", id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ffmpeg_items_wait_and_are_converted_when_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // First without ffmpeg (the default for test servers).
    let server = common::Server::start_with(&data, dir.path(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    server.add_user("ada", true);
    let token = server.token("ada");
    let admin = server.api(&token);
    let cat = admin
        .call(Method::POST, "/api/v1/categories", Some(&serde_json::json!({"name": "Films"})), 201)
        .await["id"]
        .as_i64()
        .expect("id");
    let teacher = server.api(&token);
    let site = Site { admin, teacher, server, category: cat };
    let src = clip(
        dir.path(),
        "short.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let id = site.upload(&src).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let item = site.item(id).await;
        if item["transcode_state"] == "waiting" {
            assert_eq!(item["status"], "processing");
            assert_eq!(item["error"], "transcoder not available");
            assert_eq!(item["playable"], false);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never waiting: {item}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ffmpeg appears (here: the server restarts with it on PATH).
    let site = site.restart(dir.path());
    let (item, _) = site.finished(id, LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    assert_eq!(item["playable"], true);
}

#[test]
fn doctor_reports_ffmpeg_and_how_to_install_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = common::reelbox().args(["--data"]).arg(&data).arg("doctor").output().expect("doctor");
    let text = common::text(&out.stdout);
    assert!(text.contains("ffmpeg") && text.contains("apt install ffmpeg"), "{text}");
    assert!(!out.status.success(), "a missing transcoder is a failed check");
    let mut ok = common::reelbox();
    common::with_ffmpeg(&mut ok);
    let out = ok.arg("--data").arg(&data).arg("doctor").output().expect("doctor");
    let text = common::text(&out.stdout);
    assert!(text.contains("[ok  ] ffmpeg: ffmpeg version"), "{text}");
    assert!(text.contains("[ok  ] ffprobe: ffprobe version"), "{text}");
}
