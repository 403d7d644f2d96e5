//! The ladder against the real binary and the real ffmpeg, on clips made here: which rungs each
//! source gets, the remux fast path, rotation, odd sizes, no audio, audio only, variable frame
//! rate; every rung's playlist parses and its segments decode; durations within one segment.

mod common;
mod transcode_support;

use std::time::Duration;

use transcode_support::*;

const LIMIT: Duration = Duration::from_secs(240);

fn names(rungs: &[(String, Option<String>)]) -> Vec<&str> {
    rungs.iter().map(|r| r.0.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_aac_720p_takes_the_remux_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    let src = clip(
        dir.path(),
        "lesson.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=8",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let id = site.upload(&src).await;
    let (item, _) = site.finished(id, LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, id, &item, 8.0);
    assert_eq!(names(&rungs), ["720p", "480p", "360p", "240p"]);
    assert_eq!(rungs[0].1.as_deref(), Some("1280x720"));
    assert_eq!(rungs[1].1.as_deref(), Some("854x480"));
    assert_eq!(
        site.query_i64("SELECT remuxed FROM transcode_jobs WHERE media_id = ?1", id),
        1,
        "the job records the remux"
    );
    assert_eq!(
        site.query_i64("SELECT remuxed FROM media_rungs WHERE media_id = ?1 AND name = '720p'", id),
        1
    );
    assert_eq!(
        site.query_i64("SELECT remuxed FROM media_rungs WHERE media_id = ?1 AND name = '480p'", id),
        0
    );
    assert_eq!(site.query_i64("SELECT height FROM media_probes WHERE media_id = ?1", id), 720);
    let r = &item["renditions"][0];
    assert_eq!((r["height"].as_u64(), r["width"].as_u64()), (Some(720), Some(1280)));
    assert!(r["bandwidth"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_1080p_is_re_encoded_to_every_rung() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    let src = clip(
        dir.path(),
        "talk.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=24:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=6",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let id = site.upload(&src).await;
    let (item, _) = site.finished(id, LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, id, &item, 6.0);
    assert_eq!(names(&rungs), ["1080p", "720p", "480p", "360p", "240p"]);
    assert_eq!(rungs[0].1.as_deref(), Some("1920x1080"));
    assert_eq!(site.query_i64("SELECT remuxed FROM transcode_jobs WHERE media_id = ?1", id), 0);
    let codec = video_size(&site.media(id).join("hls/1080p/init.mp4"));
    assert_eq!(codec, Some((1920, 1080)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portrait_odd_sizes_silent_and_variable_frame_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    // A phone's portrait video: stored landscape with a rotation of 90°.
    // (ffmpeg 5.1 writes the display matrix only when the stream is copied.)
    let landscape = clip(
        dir.path(),
        "landscape.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let landscape = landscape.to_str().expect("path");
    let portrait =
        clip(dir.path(), "phone.mp4", &["-i", landscape, "-c", "copy", "-metadata:s:v:0", "rotate=90"]);
    // Odd width and height, no audio.
    let odd = clip(
        dir.path(),
        "odd.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=321x243:rate=25:duration=7",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p",
        ],
    );
    // Variable frame rate: frames dropped unevenly, timestamps kept.
    let vfr = clip(
        dir.path(),
        "vfr.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=480x270:rate=30:duration=8",
            "-vf",
            "select='not(mod(n\\,3))+between(n\\,60\\,120)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let ids = [site.upload(&portrait).await, site.upload(&odd).await, site.upload(&vfr).await];

    let (item, _) = site.finished(ids[0], LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, ids[0], &item, 6.0);
    assert_eq!(names(&rungs), ["360p", "240p"]);
    assert_eq!(rungs[0].1.as_deref(), Some("360x640"), "upright: taller than wide");
    assert_eq!(video_size(&site.media(ids[0]).join("hls/360p/init.mp4")), Some((360, 640)));
    let rotation = site.query_i64("SELECT rotation FROM media_probes WHERE media_id = ?1", ids[0]);
    assert!(rotation == 90 || rotation == 270, "a quarter turn recorded: {rotation}");
    let (pw, ph) = video_size(&site.media(ids[0]).join("poster.jpg")).expect("poster");
    assert!(ph > pw, "poster upright: {pw}x{ph}");

    let (item, _) = site.finished(ids[1], LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, ids[1], &item, 7.0);
    assert_eq!(names(&rungs), ["240p"]);
    assert_eq!(rungs[0].1.as_deref(), Some("318x240"), "even sizes, aspect kept");
    assert_eq!(
        site.query_i64(
            "SELECT count(*) FROM media_probes WHERE media_id = ?1 AND audio_codec IS NULL",
            ids[1]
        ),
        1
    );

    let (item, _) = site.finished(ids[2], LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, ids[2], &item, 8.0);
    assert_eq!(names(&rungs), ["240p"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_gets_an_aac_rung_and_m4a() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    let src = clip(
        dir.path(),
        "song.mp3",
        &["-f", "lavfi", "-i", "sine=frequency=330:duration=9", "-c:a", "libmp3lame", "-b:a", "96k"],
    );
    let id = site.upload(&src).await;
    let (item, _) = site.finished(id, LIMIT).await;
    assert_eq!(item["status"], "ready", "{item}");
    assert_eq!(item["kind"], "audio");
    let dir_ = site.media(id);
    let master = std::fs::read_to_string(dir_.join("hls/master.m3u8")).expect("master");
    assert_eq!(master_rungs(&master), [("audio".to_string(), None)]);
    let d = check_rung(&dir_.join("hls/audio"));
    assert!((d - 9.0).abs() <= 4.0, "{d}");
    assert!((duration(&dir_.join("download.m4a")) - 9.0).abs() <= 1.0);
    assert!(!dir_.join("poster.jpg").exists() && !dir_.join("download.mp4").exists());
    assert_eq!(item["renditions"][0]["name"], "audio");
    assert_eq!(item["playable"], true);
}
