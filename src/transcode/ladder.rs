//! The adaptive ladder: which rungs an item gets, and the ffmpeg arguments that make them.
//!
//! One ffmpeg process decodes the source once and encodes every rung of a pass (split +
//! scale), each into its own HLS fMP4 playlist with 4-second segments and keyframes forced every
//! 2 seconds (so every rung cuts at the same instants), H.264 + AAC with capped bit rates.
//!
//! Two passes, so the item is playable early: the first makes only the cheapest rung (the
//! source's own rung packaged without re-encoding when it already is H.264/AAC at ≤ 720p, else
//! the lowest rung), the second the rest and the thumbnail sprite.

use std::fmt::Write as _;
use std::path::Path;

use super::probe::Probe;

/// Heights of the ladder, highest first, with their video bit-rate caps (kbit/s) and H.264 levels.
pub const STEPS: [(u32, u32, &str); 5] =
    [(1080, 5000, "4.0"), (720, 2800, "3.1"), (480, 1400, "3.0"), (360, 800, "3.0"), (240, 400, "3.0")];
/// Keyframe interval, seconds.
pub const KEYFRAME_SECONDS: u32 = 2;
/// HLS segment length, seconds.
pub const SEGMENT_SECONDS: u32 = 4;
/// Sprite tiles: size and columns.
pub const TILE_W: u32 = 160;
pub const TILE_H: u32 = 90;
pub const TILE_COLUMNS: u32 = 10;
/// At most this many thumbnails in a sprite.
pub const MAX_TILES: u32 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct RungPlan {
    /// "720p" or "audio".
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Video bit-rate cap, kbit/s (0 for audio and copied rungs).
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// Packaged from the source without re-encoding.
    pub copy: bool,
    /// `BANDWIDTH` in the master playlist, bit/s.
    pub bandwidth: u64,
    /// `CODECS` in the master playlist.
    pub codecs: String,
    level: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sprite {
    /// Seconds between thumbnails.
    pub interval: u32,
    pub count: u32,
    pub rows: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub audio_only: bool,
    pub has_audio: bool,
    pub duration: f64,
    /// Highest first.
    pub rungs: Vec<RungPlan>,
    /// Indexes into `rungs` made by the first, quick pass.
    pub first: Vec<usize>,
    pub sprite: Option<Sprite>,
    /// The rung remuxed into `download.mp4` (or `download.m4a`).
    pub download: usize,
    /// Displayed size of the source, for the poster.
    pub poster: Option<(u32, u32)>,
}

fn even(v: f64) -> u32 {
    (((v / 2.0).round() as u32) * 2).max(2)
}

fn avc_codec(profile: &str, level: &str) -> String {
    let p = match profile {
        "Constrained Baseline" => "42e0",
        "Baseline" => "4200",
        "Main" => "4d40",
        _ => "6400",
    };
    let l: u32 = level
        .parse::<f64>()
        .map(|l| if l < 10.0 { (l * 10.0).round() as u32 } else { l as u32 })
        .unwrap_or(31);
    format!("avc1.{p}{l:02x}")
}

/// The rungs for a probed source.
pub fn plan(p: &Probe) -> Plan {
    let duration = p.duration_seconds.unwrap_or(0.0).max(0.0);
    let has_audio = p.audio.is_some();
    let Some(v) = p.video.as_ref().filter(|v| v.width > 0 && v.height > 0) else {
        let rung = RungPlan {
            name: "audio".into(),
            width: 0,
            height: 0,
            video_kbps: 0,
            audio_kbps: 128,
            copy: false,
            bandwidth: 140_000,
            codecs: "mp4a.40.2".into(),
            level: "",
        };
        return Plan {
            audio_only: true,
            has_audio: true,
            duration,
            rungs: vec![rung],
            first: vec![0],
            sprite: None,
            download: 0,
            poster: None,
        };
    };
    let (dw, dh) = v.displayed();
    let landscape = dw >= dh;
    let short = dw.min(dh);
    let audio_codec = if has_audio { ",mp4a.40.2" } else { "" };
    let copyable = v.codec == "h264"
        && v.pix_fmt == "yuv420p"
        && v.rotation == 0
        && short <= 720
        && dw % 2 == 0
        && dh % 2 == 0
        && p.audio.as_ref().is_none_or(|a| a.codec == "aac");
    let mut rungs = Vec::new();
    for (h, kbps, level) in STEPS {
        if h > short {
            continue;
        }
        let audio_kbps = if !has_audio {
            0
        } else if h >= 480 {
            128
        } else {
            96
        };
        let copy = copyable && h == short;
        let (width, height) = if copy {
            (dw, dh)
        } else if landscape {
            (even(dw as f64 * h as f64 / dh as f64), h)
        } else {
            (h, even(dh as f64 * h as f64 / dw as f64))
        };
        let bandwidth = if copy {
            p.bit_rate.unwrap_or(u64::from(kbps) * 1000).max(1)
        } else {
            u64::from(kbps + audio_kbps) * 1000
        };
        let codecs = if copy {
            format!("{}{audio_codec}", avc_codec(&v.profile, "3.1"))
        } else {
            format!("{}{audio_codec}", avc_codec("High", level))
        };
        rungs.push(RungPlan {
            name: format!("{h}p"),
            width,
            height,
            video_kbps: if copy { 0 } else { kbps },
            audio_kbps,
            copy,
            bandwidth,
            codecs,
            level,
        });
    }
    if rungs.is_empty() {
        // Smaller than the lowest step: one rung at the source's own size.
        let audio_kbps = if has_audio { 96 } else { 0 };
        rungs.push(RungPlan {
            name: "240p".into(),
            width: even(dw as f64),
            height: even(dh as f64),
            video_kbps: 400,
            audio_kbps,
            copy: false,
            bandwidth: u64::from(400 + audio_kbps) * 1000,
            codecs: format!("{}{audio_codec}", avc_codec("High", "3.0")),
            level: "3.0",
        });
    }
    let first = match rungs.iter().position(|r| r.copy) {
        Some(i) => vec![i],
        None if rungs.len() > 1 => vec![rungs.len() - 1],
        None => Vec::new(),
    };
    // Download: the rung nearest 480p, preferring an encoded one (its bit rate is capped).
    let download = rungs
        .iter()
        .enumerate()
        .min_by_key(|(_, r)| (r.copy, r.width.min(r.height).abs_diff(480)))
        .map_or(0, |(i, _)| i);
    let sprite = (duration > 0.0).then(|| {
        let interval = ((duration / MAX_TILES as f64).ceil() as u32).max(2);
        let count = ((duration / interval as f64).ceil() as u32).clamp(1, MAX_TILES);
        Sprite { interval, count, rows: count.div_ceil(TILE_COLUMNS) }
    });
    Plan { audio_only: false, has_audio, duration, rungs, first, sprite, download, poster: Some((dw, dh)) }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn hls_args(args: &mut Vec<String>, dir: &Path) {
    let d = dir.display();
    args.extend([
        s("-f"),
        s("hls"),
        s("-hls_time"),
        SEGMENT_SECONDS.to_string(),
        s("-hls_playlist_type"),
        s("vod"),
        s("-hls_segment_type"),
        s("fmp4"),
        s("-hls_fmp4_init_filename"),
        s("init.mp4"),
        s("-start_number"),
        s("1"),
        s("-hls_segment_filename"),
        format!("{d}/seg-%05d.m4s"),
        format!("{d}/index.m3u8"),
    ]);
}

/// The ffmpeg arguments of one pass: the rungs `which` (indexes into `plan.rungs`) into
/// `<work>/hls/<name>/`, and the sprite into `<work>/sprite.jpg` when `sprite` is set.
pub fn pass_args(
    plan: &Plan,
    which: &[usize],
    sprite: bool,
    source: &Path,
    work: &Path,
    preset: &str,
) -> Vec<String> {
    let mut a: Vec<String> = vec![s("-nostdin"), s("-y"), s("-i"), source.display().to_string()];
    let encoded: Vec<usize> = which.iter().copied().filter(|&i| !plan.rungs[i].copy).collect();
    let sprite = sprite.then_some(plan.sprite.as_ref()).flatten().filter(|_| !plan.audio_only);
    let branches = encoded.len() + usize::from(sprite.is_some());
    if !plan.audio_only && branches > 0 {
        let mut graph = format!("[0:v:0]split={branches}");
        for b in 0..branches {
            let _ = write!(graph, "[s{b}]");
        }
        for (b, &i) in encoded.iter().enumerate() {
            let r = &plan.rungs[i];
            let _ = write!(graph, ";[s{b}]scale={}:{},setsar=1,format=yuv420p[v{i}]", r.width, r.height);
        }
        if let Some(sp) = sprite {
            // Single thumbnails, tiled afterwards by `sprite_args`: a `tile` filter here would
            // hold its output's first frame to the end, and ffmpeg reports no progress at all
            // until every output has started.
            let _ = write!(
                graph,
                ";[s{}]fps=1/{},scale={TILE_W}:{TILE_H}:force_original_aspect_ratio=decrease,\
                 pad={TILE_W}:{TILE_H}:(ow-iw)/2:(oh-ih)/2,setsar=1[sprite]",
                branches - 1,
                sp.interval,
            );
        }
        a.extend([s("-filter_complex"), graph]);
    }
    for &i in which {
        let r = &plan.rungs[i];
        let dir = work.join("hls").join(&r.name);
        if plan.audio_only {
            a.extend([
                s("-map"),
                s("0:a:0"),
                s("-vn"),
                s("-c:a"),
                s("aac"),
                s("-b:a"),
                format!("{}k", r.audio_kbps),
            ]);
            a.extend([s("-ac"), s("2")]);
        } else if r.copy {
            a.extend([s("-map"), s("0:v:0")]);
            if plan.has_audio {
                a.extend([s("-map"), s("0:a:0")]);
            }
            a.extend([s("-c"), s("copy")]);
        } else {
            a.extend([s("-map"), format!("[v{i}]")]);
            if plan.has_audio {
                a.extend([s("-map"), s("0:a:0")]);
            }
            let k = r.video_kbps;
            a.extend([
                s("-c:v"),
                s("libx264"),
                s("-preset"),
                s(preset),
                s("-profile:v"),
                s("high"),
                s("-level:v"),
                s(r.level),
                s("-crf"),
                s("23"),
                s("-maxrate"),
                format!("{k}k"),
                s("-bufsize"),
                format!("{}k", k * 2),
                s("-force_key_frames"),
                format!("expr:gte(t,n_forced*{KEYFRAME_SECONDS})"),
                s("-sc_threshold"),
                s("0"),
            ]);
            if plan.has_audio {
                a.extend([s("-c:a"), s("aac"), s("-b:a"), format!("{}k", r.audio_kbps), s("-ac"), s("2")]);
            }
        }
        hls_args(&mut a, &dir);
    }
    if let Some(sp) = sprite {
        a.extend([
            s("-map"),
            s("[sprite]"),
            s("-frames:v"),
            sp.count.to_string(),
            s("-q:v"),
            s("5"),
            s("-f"),
            s("image2"),
            s("-start_number"),
            s("1"),
            thumbs_dir(work).join("%04d.jpg").display().to_string(),
        ]);
    }
    a
}

/// Where a pass writes the sprite's single thumbnails (`0001.jpg`, …); it must exist first.
pub fn thumbs_dir(work: &Path) -> std::path::PathBuf {
    work.join("thumbs")
}

/// Tile the thumbnails of [`thumbs_dir`] into one sprite image (a short last row stays blank).
pub fn sprite_args(sprite: &Sprite, work: &Path, out: &Path) -> Vec<String> {
    vec![
        s("-nostdin"),
        s("-y"),
        s("-framerate"),
        s("1"),
        s("-start_number"),
        s("1"),
        s("-i"),
        thumbs_dir(work).join("%04d.jpg").display().to_string(),
        s("-vf"),
        format!("tile={TILE_COLUMNS}x{}", sprite.rows),
        s("-frames:v"),
        s("1"),
        s("-q:v"),
        s("5"),
        s("-update"),
        s("1"),
        out.display().to_string(),
    ]
}

/// The one-frame poster, at most 1280 wide, from a tenth of the way in.
pub fn poster_args(plan: &Plan, source: &Path, out: &Path) -> Vec<String> {
    let at = (plan.duration * 0.1).min(10.0);
    vec![
        s("-nostdin"),
        s("-y"),
        s("-ss"),
        format!("{at:.2}"),
        s("-i"),
        source.display().to_string(),
        s("-frames:v"),
        s("1"),
        s("-vf"),
        s("scale='min(1280,iw)':-2,setsar=1"),
        s("-q:v"),
        s("3"),
        s("-update"),
        s("1"),
        out.display().to_string(),
    ]
}

/// Remux a concatenated fMP4 rung (`init.mp4` + segments) into a progressive file, index first.
pub fn download_args(fragmented: &Path, out: &Path) -> Vec<String> {
    vec![
        s("-nostdin"),
        s("-y"),
        s("-i"),
        fragmented.display().to_string(),
        s("-c"),
        s("copy"),
        s("-movflags"),
        s("+faststart"),
        out.display().to_string(),
    ]
}

/// The master playlist for the published rungs.
pub fn master_playlist(rungs: &[(String, u32, u32, u64, String)]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (name, width, height, bandwidth, codecs) in rungs {
        let _ = write!(m, "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}");
        if *width > 0 && *height > 0 {
            let _ = write!(m, ",RESOLUTION={width}x{height}");
        }
        if !codecs.is_empty() {
            let _ = write!(m, ",CODECS=\"{codecs}\"");
        }
        let _ = writeln!(m, "\n{name}/index.m3u8");
    }
    m
}

fn vtt_time(t: f64) -> String {
    let ms = (t * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// The WebVTT map of the sprite: one cue per thumbnail, pointing at its tile.
pub fn sprite_vtt(sprite: &Sprite, duration: f64) -> String {
    let mut v = String::from("WEBVTT\n\n");
    for i in 0..sprite.count {
        let start = f64::from(i * sprite.interval);
        let end = (f64::from((i + 1) * sprite.interval)).min(duration.max(start + 0.001));
        let (x, y) = ((i % TILE_COLUMNS) * TILE_W, (i / TILE_COLUMNS) * TILE_H);
        let _ = write!(
            v,
            "{} --> {}\nsprite.jpg#xywh={x},{y},{TILE_W},{TILE_H}\n\n",
            vtt_time(start),
            vtt_time(end)
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::probe::{AudioStream, VideoStream};

    fn probe(codec: &str, w: u32, h: u32, rotation: u32, audio: Option<&str>) -> Probe {
        Probe {
            duration_seconds: Some(30.0),
            bit_rate: Some(2_000_000),
            video: Some(VideoStream {
                codec: codec.into(),
                profile: "High".into(),
                pix_fmt: "yuv420p".into(),
                width: w,
                height: h,
                rotation,
                frame_rate: Some(30.0),
                variable_frame_rate: false,
            }),
            audio: audio.map(|c| AudioStream { codec: c.into(), channels: 2, sample_rate: 48_000 }),
            ..Probe::default()
        }
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.rungs.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn rungs_not_above_the_source_and_remux_when_possible() {
        let p = plan(&probe("hevc", 1920, 1080, 0, Some("aac")));
        assert_eq!(names(&p), ["1080p", "720p", "480p", "360p", "240p"]);
        assert!(p.rungs.iter().all(|r| !r.copy));
        assert_eq!(p.first, vec![4], "lowest rung first");
        assert_eq!(p.rungs[p.download].name, "480p");
        let p = plan(&probe("h264", 1280, 720, 0, Some("aac")));
        assert_eq!(names(&p), ["720p", "480p", "360p", "240p"]);
        assert!(p.rungs[0].copy && p.first == vec![0], "own rung copied first");
        assert_eq!(p.rungs[1].width, 854);
        let p = plan(&probe("h264", 1280, 720, 0, Some("mp3")));
        assert!(p.rungs.iter().all(|r| !r.copy), "audio not AAC: re-encode");
    }

    #[test]
    fn rotation_and_odd_sizes() {
        // A phone's portrait video: stored 1280x720, shown 720x1280.
        let p = plan(&probe("h264", 1280, 720, 90, None));
        assert_eq!(names(&p), ["720p", "480p", "360p", "240p"]);
        assert_eq!((p.rungs[0].width, p.rungs[0].height), (720, 1280));
        assert!(!p.rungs[0].copy, "rotated sources are re-encoded upright");
        assert_eq!((p.rungs[3].width, p.rungs[3].height), (240, 426));
        let p = plan(&probe("h264", 641, 361, 0, None));
        assert_eq!(names(&p), ["360p", "240p"]);
        assert_eq!((p.rungs[0].width, p.rungs[0].height), (640, 360));
        let p = plan(&probe("h264", 175, 99, 0, None));
        assert_eq!(names(&p), ["240p"]);
        assert_eq!((p.rungs[0].width, p.rungs[0].height), (176, 100));
        assert!(p.first.is_empty(), "one rung: one pass");
    }

    #[test]
    fn playlists_and_sprite_map() {
        let m = master_playlist(&[
            ("720p".into(), 1280, 720, 3_000_000, "avc1.64001f,mp4a.40.2".into()),
            ("audio".into(), 0, 0, 140_000, "mp4a.40.2".into()),
        ]);
        assert!(m.contains("RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8\n"), "{m}");
        assert!(m.contains("BANDWIDTH=140000,CODECS=\"mp4a.40.2\"\naudio/index.m3u8"), "{m}");
        let sp = Sprite { interval: 2, count: 12, rows: 2 };
        let v = sprite_vtt(&sp, 23.5);
        assert!(v.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nsprite.jpg#xywh=0,0,160,90"));
        assert!(v.contains("00:00:22.000 --> 00:00:23.500\nsprite.jpg#xywh=160,90,160,90"), "{v}");
        let p = plan(&probe("vp9", 1920, 1080, 0, None));
        let a = pass_args(&p, &[0, 1], true, Path::new("/s.webm"), Path::new("/w"), "veryfast");
        let joined = a.join(" ");
        assert!(joined.contains("split=3[s0][s1][s2]"), "{joined}");
        assert!(joined.contains("/w/hls/1080p/seg-%05d.m4s /w/hls/1080p/index.m3u8"), "{joined}");
        assert!(!joined.contains("0:a:0"), "no audio mapped: {joined}");
        assert!(!joined.contains("tile="), "the pass writes single thumbnails: {joined}");
        assert!(joined.ends_with("-f image2 -start_number 1 /w/thumbs/%04d.jpg"), "{joined}");
        let sp = p.sprite.as_ref().expect("sprite");
        let t = sprite_args(sp, Path::new("/w"), Path::new("/w/sprite.jpg")).join(" ");
        assert!(t.contains(&format!("-vf tile=10x{}", sp.rows)), "{t}");
        assert_eq!(avc_codec("High", "3.1"), "avc1.64001f");
    }
}
