//! Media files in the layout the transcoder publishes (`<data>/media/<id>/...`), made with the
//! real ffmpeg, for tests of serving and of the player that must not depend on the transcoder.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub fn ffmpeg() -> String {
    std::env::var("REELBOX_TEST_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

fn run(args: &[&str], what: &str) {
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ffmpeg ({e}); install it: apt-get install ffmpeg"));
    assert!(out.status.success(), "{what}: ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A short H.264/AAC MP4 (test pattern and a tone), small enough for the test upload limit;
/// also left in `dir` as `clip-{seconds}.mp4`.
pub fn clip(dir: &Path, seconds: u32) -> Vec<u8> {
    make_clip(&dir.join(format!("clip-{seconds}.mp4")), seconds, "320x240")
}

/// [`clip`] at another frame size (`WxH`), e.g. `640x360` for a ladder of two rungs; left in
/// `dir` as `clip-{seconds}-{size}.mp4`.
pub fn clip_sized(dir: &Path, seconds: u32, size: &str) -> Vec<u8> {
    make_clip(&dir.join(format!("clip-{seconds}-{size}.mp4")), seconds, size)
}

fn make_clip(path: &Path, seconds: u32, size: &str) -> Vec<u8> {
    let t = seconds.to_string();
    let pattern = format!("testsrc=size={size}:rate=25");
    run(
        &[
            "-f",
            "lavfi",
            "-i",
            &pattern,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            &t,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "35",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-movflags",
            "+faststart",
            path.to_str().expect("utf-8 path"),
        ],
        "make a clip",
    );
    std::fs::read(path).expect("read the clip")
}

/// Publish `source` for item `id` as the transcoder would: one 240p rung of fMP4 HLS (4 s
/// segments), master playlist, progressive MP4, poster and sprite. Written in a scratch
/// directory on the same file system and renamed into place, like the transcoder does.
pub fn publish(data: &Path, id: i64, source: &Path) {
    let media = data.join("media").join(id.to_string());
    // Beside the data directory, not in `<media>/.work`, which the server's sweep may remove.
    let work = data.parent().expect("data has a parent").join(format!("publish-{id}"));
    let rung = work.join("240p");
    std::fs::create_dir_all(&rung).expect("work dir");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    run(
        &[
            "-i",
            &s(source),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-f",
            "hls",
            "-hls_time",
            "4",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
            "-hls_segment_filename",
            &s(&rung.join("seg-%05d.m4s")),
            &s(&rung.join("index.m3u8")),
        ],
        "package HLS",
    );
    run(
        &["-i", &s(source), "-c", "copy", "-movflags", "+faststart", &s(&work.join("download.mp4"))],
        "download.mp4",
    );
    run(&["-ss", "1", "-i", &s(source), "-frames:v", "1", &s(&work.join("poster.jpg"))], "poster");
    run(
        &[
            "-i",
            &s(source),
            "-vf",
            "fps=1/2,scale=80:-2,tile=4x4",
            "-frames:v",
            "1",
            &s(&work.join("sprite.jpg")),
        ],
        "sprite",
    );
    let mut vtt = String::from("WEBVTT\n");
    for i in 0..16u32 {
        let (x, y) = ((i % 4) * 80, (i / 4) * 60);
        vtt.push_str(&format!(
            "\n00:00:{:02}.000 --> 00:00:{:02}.000\nsprite.jpg#xywh={x},{y},80,60\n",
            i * 2,
            i * 2 + 2
        ));
    }
    std::fs::write(work.join("sprite.vtt"), vtt).expect("sprite.vtt");
    let hls = media.join("hls");
    std::fs::create_dir_all(&hls).expect("hls dir");
    std::fs::rename(&rung, hls.join("240p")).expect("publish the rung");
    for f in ["download.mp4", "poster.jpg", "sprite.jpg", "sprite.vtt"] {
        std::fs::rename(work.join(f), media.join(f)).expect("publish a file");
    }
    std::fs::write(
        hls.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240,CODECS=\"avc1.42c00d,mp4a.40.2\"\n240p/index.m3u8\n",
    )
    .expect("master");
}

/// A SubRip file with one cue per two seconds saying what second it is.
pub fn srt(seconds: u32, word: &str) -> String {
    let mut out = String::new();
    for i in 0..seconds / 2 {
        out.push_str(&format!(
            "{}\r\n00:00:{:02},000 --> 00:00:{:02},000\r\n{word} {}\r\n\r\n",
            i + 1,
            i * 2,
            i * 2 + 2,
            i * 2
        ));
    }
    out
}
