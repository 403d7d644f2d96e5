//! What ffprobe says about an original: duration, streams, codecs, resolution, rotation,
//! frame rate and bit rate, read from its JSON output and stored in `media_probes`.

use std::path::Path;
use std::process::{Command, Stdio};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::TranscodeError;
use super::ffmpeg::{ToolError, human_message_of};
use crate::clock::Timestamp;
use crate::db::ids::MediaId;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Probe {
    pub format_name: String,
    pub duration_seconds: Option<f64>,
    pub bit_rate: Option<u64>,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
    /// Every stream, summarised, as JSON.
    pub streams: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoStream {
    pub codec: String,
    pub profile: String,
    pub pix_fmt: String,
    /// As coded, before rotation.
    pub width: u32,
    pub height: u32,
    /// Degrees clockwise to turn the picture for display: 0, 90, 180 or 270.
    pub rotation: u32,
    pub frame_rate: Option<f64>,
    pub variable_frame_rate: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioStream {
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
}

impl VideoStream {
    /// Width and height as shown, after rotation.
    pub fn displayed(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 { (self.height, self.width) } else { (self.width, self.height) }
    }
}

/// Run ffprobe on `file`.
pub fn probe(ffprobe: &Path, file: &Path) -> Result<Probe, ToolError> {
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ToolError::spawn(ffprobe, e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        return Err(ToolError::Source { message: human_message_of(&err), detail: err });
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| ToolError::Source {
        message: "The file could not be converted for playback: its streams could not be read.".into(),
        detail: format!("ffprobe output unreadable: {e}"),
    })?;
    let probe = parse(&json);
    if probe.video.is_none() && probe.audio.is_none() {
        return Err(ToolError::Source {
            message: "The file could not be converted for playback: it has no video or audio in it.".into(),
            detail: json.to_string(),
        });
    }
    Ok(probe)
}

fn num<T: std::str::FromStr>(v: &Value) -> Option<T> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// "30000/1001" → 29.97; "0/0" → None.
fn rate(v: &Value) -> Option<f64> {
    let s = v.as_str()?;
    let (a, b) = s.split_once('/')?;
    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0.0 && b > 0.0).then(|| a / b)
}

/// Clockwise rotation from the display matrix side data or the older `rotate` tag.
fn rotation(stream: &Value) -> u32 {
    let from_matrix = stream["side_data_list"].as_array().and_then(|list| {
        list.iter().find_map(|sd| num::<f64>(&sd["rotation"]).map(|r| -r)) // counter-clockwise there
    });
    let from_tag = num::<f64>(&stream["tags"]["rotate"]);
    let deg = from_matrix.or(from_tag).unwrap_or(0.0).round() as i64;
    let deg = deg.rem_euclid(360);
    // Only quarter turns are meaningful for video.
    (((deg + 45) / 90 * 90) % 360) as u32
}

/// The facts from ffprobe's JSON (`-show_format -show_streams`).
pub fn parse(json: &Value) -> Probe {
    let mut p = Probe {
        format_name: json["format"]["format_name"].as_str().unwrap_or("").to_string(),
        duration_seconds: num(&json["format"]["duration"]),
        bit_rate: num(&json["format"]["bit_rate"]),
        ..Probe::default()
    };
    for s in json["streams"].as_array().into_iter().flatten() {
        let kind = s["codec_type"].as_str().unwrap_or("");
        let codec = s["codec_name"].as_str().unwrap_or("").to_string();
        let attached = s["disposition"]["attached_pic"].as_i64() == Some(1);
        p.streams.push(serde_json::json!({
            "index": s["index"], "type": kind, "codec": codec, "width": s["width"], "height": s["height"],
            "channels": s["channels"], "sample_rate": s["sample_rate"], "bit_rate": s["bit_rate"],
            "avg_frame_rate": s["avg_frame_rate"], "attached_pic": attached,
        }));
        match kind {
            "video" if p.video.is_none() && !attached => {
                let r = rate(&s["r_frame_rate"]);
                let avg = rate(&s["avg_frame_rate"]);
                p.video = Some(VideoStream {
                    codec,
                    profile: s["profile"].as_str().unwrap_or("").to_string(),
                    pix_fmt: s["pix_fmt"].as_str().unwrap_or("").to_string(),
                    width: num(&s["width"]).unwrap_or(0),
                    height: num(&s["height"]).unwrap_or(0),
                    rotation: rotation(s),
                    frame_rate: avg.or(r),
                    variable_frame_rate: matches!((r, avg), (Some(r), Some(a)) if (r - a).abs() > 0.01 * r),
                });
            }
            "audio" if p.audio.is_none() => {
                p.audio = Some(AudioStream {
                    codec,
                    channels: num(&s["channels"]).unwrap_or(0),
                    sample_rate: num(&s["sample_rate"]).unwrap_or(0),
                });
            }
            _ => {}
        }
    }
    p
}

pub fn store(conn: &Connection, media: MediaId, p: &Probe, now: Timestamp) -> Result<(), TranscodeError> {
    let v = p.video.as_ref();
    let a = p.audio.as_ref();
    conn.execute(
        "INSERT OR REPLACE INTO media_probes (media_id, format_name, duration_seconds, bit_rate, video_codec,
             width, height, rotation, frame_rate, variable_frame_rate, pix_fmt, audio_codec, audio_channels,
             audio_sample_rate, streams, probed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            media,
            p.format_name,
            p.duration_seconds,
            p.bit_rate.map(|b| b.min(i64::MAX as u64) as i64),
            v.map(|v| v.codec.as_str()),
            v.map(|v| v.width),
            v.map(|v| v.height),
            v.map_or(0, |v| v.rotation),
            v.and_then(|v| v.frame_rate),
            v.is_some_and(|v| v.variable_frame_rate),
            v.map(|v| v.pix_fmt.as_str()),
            a.map(|a| a.codec.as_str()),
            a.map(|a| a.channels),
            a.map(|a| a.sample_rate),
            Value::Array(p.streams.clone()).to_string(),
            now
        ],
    )?;
    Ok(())
}

/// The stored facts as (video codec, width, height, rotation, duration, variable frame rate).
pub type Summary = (Option<String>, Option<u32>, Option<u32>, u32, Option<f64>, bool);

pub fn summary(conn: &Connection, media: MediaId) -> Result<Option<Summary>, TranscodeError> {
    Ok(conn
        .query_row(
            "SELECT video_codec, width, height, rotation, duration_seconds, variable_frame_rate
             FROM media_probes WHERE media_id = ?1",
            [media],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_from_matrix_or_tag() {
        let m =
            serde_json::json!({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]});
        assert_eq!(rotation(&m), 90);
        let m = serde_json::json!({"side_data_list": [{"rotation": 90}]});
        assert_eq!(rotation(&m), 270);
        let t = serde_json::json!({"tags": {"rotate": "180"}});
        assert_eq!(rotation(&t), 180);
        assert_eq!(rotation(&serde_json::json!({})), 0);
    }

    #[test]
    fn parses_streams() {
        let j = serde_json::json!({
            "format": {"format_name": "mov,mp4", "duration": "9.5", "bit_rate": "800000"},
            "streams": [
                {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
                 "r_frame_rate": "60/1", "avg_frame_rate": "24/1", "pix_fmt": "yuv420p"},
                {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "48000"}
            ]
        });
        let p = parse(&j);
        assert_eq!(p.duration_seconds, Some(9.5));
        assert_eq!(p.bit_rate, Some(800_000));
        let v = p.video.expect("video");
        assert_eq!((v.width, v.height, v.frame_rate), (1280, 720, Some(24.0)));
        assert!(v.variable_frame_rate);
        assert_eq!(p.audio.expect("audio").sample_rate, 48_000);
        assert_eq!(p.streams.len(), 2);
    }
}
