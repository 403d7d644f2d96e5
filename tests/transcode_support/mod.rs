//! Shared by the transcoding tests: clips made with ffmpeg's test sources, a server that
//! transcodes with the real ffmpeg, uploads, waiting for the ladder, and checks of what was
//! published (playlists parse, segments decode, durations).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{self, Api, Server};

/// Make a clip with ffmpeg: `inputs_and_options` are everything between `ffmpeg -y` and the output.
pub fn clip(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let res = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&out)
        .output()
        .expect("ffmpeg is installed (apt install ffmpeg)");
    assert!(res.status.success(), "making {name}: {}", common::text(&res.stderr));
    out
}

pub struct Site {
    pub server: Server,
    pub admin: Api,
    pub teacher: Api,
    pub category: i64,
}

pub fn start_server(data: &Path, logs: &Path) -> Server {
    Server::start_with(data, logs, common::with_ffmpeg).unwrap_or_else(|e| panic!("{e}"))
}

impl Site {
    pub async fn start(dir: &Path) -> Site {
        let server = start_server(&dir.join("data"), dir);
        server.add_user("ada", true);
        server.add_user("tess", false);
        let admin = server.api(&server.token("ada"));
        let teacher = server.api(&server.token("tess"));
        let category =
            admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Films"})), 201).await["id"]
                .as_i64()
                .expect("category id");
        let grants = json!([{"username": "tess", "role": "contribute"}]);
        admin.call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&grants), 204).await;
        Site { server, admin, teacher, category }
    }

    pub fn data(&self) -> PathBuf {
        self.server.data_dir().to_path_buf()
    }

    /// Kill the server (SIGKILL) and start it again on the same data directory.
    pub fn restart(self, logs: &Path) -> Site {
        let data = self.data();
        let Site { server, admin, teacher, category } = self;
        drop(server);
        let server = start_server(&data, logs);
        let follow = |api: Api| Api { client: api.client, base: server.base.clone(), token: api.token };
        let (admin, teacher) = (follow(admin), follow(teacher));
        Site { server, admin, teacher, category }
    }

    /// Upload `file` as the teacher; the new item's id.
    pub async fn upload(&self, file: &Path) -> i64 {
        use base64::Engine;
        use sha2::Digest;
        let bytes = std::fs::read(file).expect("read clip");
        let digest = format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes))
        );
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        let res = self
            .teacher
            .client
            .post(self.teacher.url(&format!("/api/v1/media?category={}&filename={name}", self.category)))
            .bearer_auth(&self.teacher.token)
            .header("Content-Digest", digest)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("json");
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    }

    pub async fn item(&self, id: i64) -> Value {
        self.teacher.get_json(&format!("/api/v1/media/{id}")).await
    }

    /// Poll until the item is `ready` or `failed`; the last JSON, and whether it was seen
    /// playable while still processing.
    pub async fn finished(&self, id: i64, limit: Duration) -> (Value, bool) {
        let deadline = Instant::now() + limit;
        let mut early = false;
        loop {
            let item = self.item(id).await;
            let status = item["status"].as_str().unwrap_or_default().to_string();
            if status == "processing" && item["playable"] == true {
                early = true;
            }
            if status == "ready" || status == "failed" {
                return (item, early);
            }
            assert!(
                Instant::now() < deadline,
                "item {id} not finished in {limit:?}: {item}\n{}",
                self.server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn media(&self, id: i64) -> PathBuf {
        self.data().join("media").join(id.to_string())
    }

    /// A value from the server's database (read-only), e.g. the job's remux flag.
    pub fn query_i64(&self, sql: &str, id: i64) -> i64 {
        let c = rusqlite::Connection::open_with_flags(
            self.data().join("reelbox.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db");
        c.query_row(sql, [id], |r| r.get(0)).expect("query")
    }
}

/// The rung names of a master playlist, in order, with their RESOLUTION.
pub fn master_rungs(master: &str) -> Vec<(String, Option<String>)> {
    assert!(master.starts_with("#EXTM3U\n"), "{master}");
    let mut out = Vec::new();
    let mut lines = master.lines();
    while let Some(l) = lines.next() {
        if let Some(attrs) = l.strip_prefix("#EXT-X-STREAM-INF:") {
            assert!(attrs.contains("BANDWIDTH="), "{l}");
            let res = attrs.split(',').find_map(|a| a.strip_prefix("RESOLUTION=")).map(str::to_string);
            let uri = lines.next().expect("URI after STREAM-INF");
            let name = uri.strip_suffix("/index.m3u8").expect("relative rung URI");
            assert!(!name.contains('/') && !name.contains(".."), "{uri}");
            out.push((name.to_string(), res));
        }
    }
    out
}

/// Check one published rung: a VOD playlist of 4 s fMP4 segments, every file present; decode it
/// all with ffmpeg; return its duration (sum of EXTINF).
pub fn check_rung(dir: &Path) -> f64 {
    let playlist = std::fs::read_to_string(dir.join("index.m3u8")).expect("rung playlist");
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{playlist}");
    assert!(dir.join("init.mp4").is_file());
    let mut total = 0.0;
    for (i, l) in playlist.lines().enumerate() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().expect("EXTINF");
            assert!(d <= 4.6, "segment longer than 4 s: {d} in {}:\n{playlist}", dir.display());
            total += d;
            let seg = playlist.lines().nth(i + 1).expect("segment uri");
            assert!(seg.starts_with("seg-") && seg.ends_with(".m4s"), "{seg}");
            assert!(dir.join(seg).is_file(), "{seg} missing");
        }
    }
    assert!(playlist.contains("seg-00001.m4s"), "{playlist}");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i"])
        .arg(dir.join("index.m3u8"))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "rung {} does not decode: {}", dir.display(), common::text(&out.stderr));
    total
}

/// (width, height) of the first video stream of a file, or None.
pub fn video_size(file: &Path) -> Option<(u32, u32)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .ok()?;
    let t = common::text(&out.stdout);
    let (w, h) = t.trim().split_once(',')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// Duration of a media file, by ffprobe.
pub fn duration(file: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    common::text(&out.stdout).trim().parse().unwrap_or(0.0)
}

/// Check the whole ladder of a finished video item: each rung listed in the master and in the
/// API, each decodes, durations within one segment of `expected`; poster, sprite and download.
pub fn check_video(site: &Site, id: i64, item: &Value, expected: f64) -> Vec<(String, Option<String>)> {
    let dir = site.media(id);
    let master = std::fs::read_to_string(dir.join("hls/master.m3u8")).expect("master playlist");
    let rungs = master_rungs(&master);
    let api: Vec<&str> = item["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(rungs.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), api, "master and API agree");
    for (name, _) in &rungs {
        let d = check_rung(&dir.join("hls").join(name));
        assert!((d - expected).abs() <= 4.0, "rung {name}: {d} s, expected {expected}");
    }
    assert!(dir.join("poster.jpg").is_file(), "poster");
    let vtt = std::fs::read_to_string(dir.join("sprite.vtt")).expect("sprite map");
    assert!(vtt.starts_with("WEBVTT") && vtt.contains("sprite.jpg#xywh=0,0,160,90"), "{vtt}");
    assert!(video_size(&dir.join("sprite.jpg")).is_some(), "sprite decodes");
    let dl = dir.join("download.mp4");
    assert!((duration(&dl) - expected).abs() <= 4.0, "download duration");
    let head = std::fs::read(&dl).expect("download");
    let moov = head.windows(4).position(|w| w == b"moov").expect("moov");
    let mdat = head.windows(4).position(|w| w == b"mdat").expect("mdat");
    assert!(moov < mdat, "faststart: index before data");
    assert!(!dir.join(".work").exists(), "work directory removed");
    assert_eq!(item["progress"], 100);
    assert_eq!(item["playable"], true);
    assert!(item["error"].is_null(), "{item}");
    rungs
}
