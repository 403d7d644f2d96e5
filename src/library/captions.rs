//! Captions: one WebVTT track per item and language. Uploads in WebVTT or SubRip (SRT, converted)
//! are parsed and written out again as clean WebVTT — only cues survive (no STYLE, REGION or
//! NOTE blocks), so what is served is exactly what was checked. The cue text feeds search.
//! Owns the tables `captions` and `caption_search`.
//!
//! Stored in the database, not the blob store: captions are small, replaced as a whole, and
//! their search index must change in the same transaction (see `0007_captions.sql`).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::db::DbError;
use crate::db::ids::{MediaId, UserId};
use crate::error::{AppError, ErrorKind};

/// Largest caption file accepted.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// More cues than any real lesson has (a 3-hour film has about 2,000).
const MAX_CUES: usize = 20_000;
/// Longest cue timestamp accepted: 24 hours.
const MAX_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum CaptionError {
    #[error("caption file larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("caption file is not UTF-8 text")]
    NotText,
    #[error("caption file: {0}")]
    Malformed(String),
    #[error("caption file has no cues")]
    Empty,
    #[error("bad language tag {0:?}")]
    BadLanguage(String),
    #[error("no captions in that language")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for CaptionError {
    fn from(e: rusqlite::Error) -> Self {
        CaptionError::Db(DbError::Sqlite(e))
    }
}

impl AppError for CaptionError {
    fn code(&self) -> &'static str {
        match self {
            CaptionError::TooLarge => "captions-too-large",
            CaptionError::NotText => "captions-not-text",
            CaptionError::Malformed(_) => "captions-malformed",
            CaptionError::Empty => "captions-empty",
            CaptionError::BadLanguage(_) => "captions-bad-language",
            CaptionError::NotFound => "not-found",
            CaptionError::Db(e) => e.code(),
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            CaptionError::TooLarge => ErrorKind::PayloadTooLarge,
            CaptionError::NotText | CaptionError::Malformed(_) | CaptionError::Empty => {
                ErrorKind::Unprocessable
            }
            CaptionError::BadLanguage(_) => ErrorKind::BadRequest,
            CaptionError::NotFound => ErrorKind::NotFound,
            CaptionError::Db(e) => e.kind(),
        }
    }
    fn user_message(&self) -> String {
        match self {
            CaptionError::TooLarge => {
                format!("Caption files can be at most {} MB.", MAX_BYTES / (1024 * 1024))
            }
            CaptionError::NotText => {
                "The caption file is not UTF-8 text. Save it as UTF-8 WebVTT (.vtt) or SubRip (.srt).".into()
            }
            CaptionError::Malformed(why) => {
                format!("The caption file could not be read: {why}. Upload WebVTT (.vtt) or SubRip (.srt).")
            }
            CaptionError::Empty => "The caption file has no captions in it.".into(),
            CaptionError::BadLanguage(_) => "Give the language as a code such as en, de, fr or pt-BR.".into(),
            CaptionError::NotFound => "There are no captions in that language for this item.".into(),
            CaptionError::Db(e) => e.user_message(),
        }
    }
}

/// A BCP 47-style language tag, normalised: `en`, `pt-BR`, `zh-Hant`, `es-419`. Letters and
/// digits only, so it is safe in a URL path and a file name.
pub fn normalise_lang(code: &str) -> Result<String, CaptionError> {
    let bad = || CaptionError::BadLanguage(code.chars().take(40).collect());
    let mut parts = code.trim().split(['-', '_']);
    let primary =
        parts.next().filter(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let mut out = primary.ok_or_else(bad)?.to_ascii_lowercase();
    for (i, sub) in parts.enumerate() {
        if i >= 3 || !(2..=8).contains(&sub.len()) || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        out.push('-');
        if sub.len() == 2 && sub.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str(&sub.to_ascii_uppercase()); // region
        } else if sub.len() == 4 && sub.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str(&sub[..1].to_ascii_uppercase()); // script
            out.push_str(&sub[1..].to_ascii_lowercase());
        } else {
            out.push_str(&sub.to_ascii_lowercase());
        }
    }
    Ok(out)
}

/// A name people recognise for common language codes; the code itself otherwise.
pub fn default_label(lang: &str) -> String {
    let primary = lang.split('-').next().unwrap_or(lang);
    let name = match primary {
        "en" => "English",
        "de" => "Deutsch",
        "fr" => "Français",
        "es" => "Español",
        "it" => "Italiano",
        "nl" => "Nederlands",
        "pt" => "Português",
        "pl" => "Polski",
        "tr" => "Türkçe",
        "ar" => "العربية",
        "uk" => "Українська",
        "ru" => "Русский",
        "zh" => "中文",
        "ja" => "日本語",
        "cy" => "Cymraeg",
        "ga" => "Gaeilge",
        _ => return lang.to_string(),
    };
    if primary == lang { name.to_string() } else { format!("{name} ({lang})") }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Cue settings after the timing (`line:0 align:start`), WebVTT only.
    pub settings: String,
    pub text: String,
}

/// `01:02:03.456`, `02:03.456` (WebVTT) or `01:02:03,456` (SRT) → milliseconds.
fn parse_timestamp(s: &str) -> Option<u64> {
    let s = s.trim();
    let (clock, frac) = s.rsplit_once(['.', ','])?;
    if frac.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fields: Vec<&str> = clock.split(':').collect();
    let num = |f: &str| {
        (!f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()))
            .then(|| f.parse::<u64>().ok())
            .flatten()
    };
    let (h, m, sec) = match fields.as_slice() {
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        [m, s] => (0, num(m)?, num(s)?),
        _ => return None,
    };
    if m > 59 || sec > 59 {
        return None;
    }
    let ms = ((h * 60 + m) * 60 + sec) * 1000 + frac.parse::<u64>().ok()?;
    (ms <= MAX_MS).then_some(ms)
}

fn format_timestamp(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000)
}

/// Parse a timing line `START --> END [settings]`.
fn parse_timing(line: &str, n: usize) -> Result<(u64, u64, String), CaptionError> {
    let bad = |why: &str| CaptionError::Malformed(format!("cue {n}: {why}"));
    let (a, rest) = line.split_once("-->").ok_or_else(|| bad("no “-->” in the timing line"))?;
    let rest = rest.trim_start();
    let (b, settings) = match rest.split_once([' ', '\t']) {
        Some((b, s)) => (b, s.trim()),
        None => (rest, ""),
    };
    let start = parse_timestamp(a).ok_or_else(|| bad("bad start time"))?;
    let end = parse_timestamp(b).ok_or_else(|| bad("bad end time"))?;
    if end < start {
        return Err(bad("ends before it starts"));
    }
    Ok((start, end, settings.to_string()))
}

/// Decode an upload: UTF-8 (a BOM is dropped), line endings normalised.
fn decode(bytes: &[u8]) -> Result<String, CaptionError> {
    if bytes.len() > MAX_BYTES {
        return Err(CaptionError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| CaptionError::NotText)?;
    if text.contains('\0') {
        return Err(CaptionError::NotText);
    }
    // Lines of blanks separate blocks like empty ones do.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    Ok(text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n"))
}

/// Parse a WebVTT or SRT file into cues (the format is told by the `WEBVTT` signature).
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, CaptionError> {
    let text = decode(bytes)?;
    let is_vtt = text.starts_with("WEBVTT")
        && text[6..].chars().next().is_none_or(|c| c == ' ' || c == '\t' || c == '\n');
    let mut blocks = text.split("\n\n").map(|b| b.trim_matches('\n')).filter(|b| !b.trim().is_empty());
    if is_vtt {
        blocks.next(); // the header block
    }
    let mut cues = Vec::new();
    for block in blocks {
        let n = cues.len() + 1;
        let lines: Vec<&str> = block.lines().collect();
        let first = lines[0].trim_start();
        if is_vtt && (first.starts_with("NOTE") || first.starts_with("STYLE") || first.starts_with("REGION"))
        {
            continue;
        }
        // An identifier line (SRT's counter, or a WebVTT cue id) may come before the timing.
        let at = match lines.iter().position(|l| l.contains("-->")) {
            Some(i) if i <= 1 => i,
            _ => {
                return Err(CaptionError::Malformed(format!(
                    "block {n} has no timing line (“00:00:01.000 --> 00:00:04.000”)"
                )));
            }
        };
        let (start_ms, end_ms, settings) = parse_timing(lines[at], n)?;
        let body: Vec<&str> = lines[at + 1..].to_vec();
        if body.iter().any(|l| l.contains("-->")) {
            return Err(CaptionError::Malformed(format!(
                "cue {n}: two timing lines without a blank line between"
            )));
        }
        let settings = if is_vtt { settings } else { String::new() };
        cues.push(Cue { start_ms, end_ms, settings, text: body.join("\n") });
        if cues.len() > MAX_CUES {
            return Err(CaptionError::Malformed(format!("more than {MAX_CUES} cues")));
        }
    }
    if cues.is_empty() {
        return Err(CaptionError::Empty);
    }
    Ok(cues)
}

/// Cues as a WebVTT file.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for c in cues {
        out.push('\n');
        out.push_str(&format_timestamp(c.start_ms));
        out.push_str(" --> ");
        out.push_str(&format_timestamp(c.end_ms));
        if !c.settings.is_empty() {
            out.push(' ');
            out.push_str(&c.settings);
        }
        out.push('\n');
        if !c.text.is_empty() {
            out.push_str(&c.text);
            out.push('\n');
        }
    }
    out
}

/// The words of the cues without markup (`<i>`, `<v Speaker>`, `{\an8}`), for search.
pub fn plain_text(cues: &[Cue]) -> String {
    let mut out = String::new();
    for c in cues {
        let mut depth_angle = false;
        let mut depth_brace = false;
        for ch in c.text.chars() {
            match ch {
                '<' => depth_angle = true,
                '>' if depth_angle => depth_angle = false,
                '{' => depth_brace = true,
                '}' if depth_brace => depth_brace = false,
                _ if depth_angle || depth_brace => {}
                '\n' => out.push(' '),
                _ => out.push(ch),
            }
        }
        out.push('\n');
    }
    out.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", " ")
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptionTrack {
    pub lang: String,
    pub label: String,
    pub created_at: Timestamp,
}

/// Store (or replace) the captions of `media` in `lang`.
pub fn put(
    conn: &Connection,
    media: MediaId,
    lang: &str,
    label: &str,
    cues: &[Cue],
    by: Option<UserId>,
    now: Timestamp,
) -> Result<CaptionTrack, CaptionError> {
    conn.execute(
        "INSERT INTO captions (media_id, lang, label, vtt, text, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (media_id, lang) DO UPDATE SET label = excluded.label, vtt = excluded.vtt,
             text = excluded.text, created_by = excluded.created_by, created_at = excluded.created_at",
        params![media, lang, label, to_vtt(cues), plain_text(cues), by, now],
    )?;
    Ok(CaptionTrack { lang: lang.to_string(), label: label.to_string(), created_at: now })
}

pub fn list(conn: &Connection, media: MediaId) -> Result<Vec<CaptionTrack>, CaptionError> {
    let mut stmt = conn.prepare_cached(
        "SELECT lang, label, created_at FROM captions WHERE media_id = ?1 ORDER BY label, lang",
    )?;
    let rows = stmt
        .query_map([media], |r| {
            Ok(CaptionTrack { lang: r.get(0)?, label: r.get(1)?, created_at: r.get(2)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The WebVTT text and when it was stored (for the ETag).
pub fn vtt(
    conn: &Connection,
    media: MediaId,
    lang: &str,
) -> Result<Option<(String, Timestamp)>, CaptionError> {
    Ok(conn
        .query_row(
            "SELECT vtt, created_at FROM captions WHERE media_id = ?1 AND lang = ?2",
            params![media, lang],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn remove(conn: &Connection, media: MediaId, lang: &str) -> Result<(), CaptionError> {
    let n = conn.execute("DELETE FROM captions WHERE media_id = ?1 AND lang = ?2", params![media, lang])?;
    if n == 0 { Err(CaptionError::NotFound) } else { Ok(()) }
}

// --- backup and partial restore (src/backup/) ---

/// Every caption track with a fingerprint of its text (`reelbox compare`): (item, language,
/// label, SHA-256 of the WebVTT).
pub fn all_tracks(conn: &Connection) -> Result<Vec<(MediaId, String, String, String)>, CaptionError> {
    let mut stmt = conn.prepare("SELECT media_id, lang, label, vtt FROM captions ORDER BY media_id, lang")?;
    let rows = stmt
        .query_map([], |r| {
            let vtt: String = r.get(3)?;
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, crate::store::Sha256::digest(vtt.as_bytes()).to_hex()))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
// --- end backup ---

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_becomes_vtt() {
        let srt = "\u{feff}1\r\n00:00:01,000 --> 00:00:03,500\r\nHello <i>class</i>\r\n\r\n2\r\n00:01:02,003 --> 01:00:00,000\r\nTwo\r\nlines\r\n";
        let cues = parse(srt.as_bytes()).expect("SRT parses");
        assert_eq!(cues.len(), 2);
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:03.500\nHello <i>class</i>\n\n00:01:02.003 --> 01:00:00.000\nTwo\nlines\n"
        );
        assert_eq!(plain_text(&cues), "Hello class\nTwo lines\n");
    }

    #[test]
    fn vtt_is_cleaned() {
        let vtt = "WEBVTT - lesson\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 align:start\n<v Ms Lee>Magnets &amp; fields\n";
        let cues = parse(vtt.as_bytes()).expect("VTT parses");
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].settings, "align:start");
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000 align:start\n<v Ms Lee>Magnets &amp; fields\n"
        );
        assert_eq!(plain_text(&cues), "Magnets & fields\n");
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        assert!(matches!(parse(b"\xff\xfe\x00h"), Err(CaptionError::NotText)));
        assert!(matches!(parse(b"WEBVTT\n\n"), Err(CaptionError::Empty)));
        assert!(matches!(parse(b""), Err(CaptionError::Empty)));
        assert!(matches!(parse(b"just some text\nwith lines"), Err(CaptionError::Malformed(_))));
        assert!(matches!(
            parse(b"1\n00:00:05,000 --> 00:00:01,000\nbackwards"),
            Err(CaptionError::Malformed(_))
        ));
        assert!(matches!(parse(b"1\n00:00:01 --> 00:00:02\nno millis"), Err(CaptionError::Malformed(_))));
        assert!(matches!(parse(b"1\n00:61:01,000 --> 00:62:02,000\nx"), Err(CaptionError::Malformed(_))));
        assert!(matches!(parse(&vec![b'a'; MAX_BYTES + 1]), Err(CaptionError::TooLarge)));
        let e = parse(b"WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\nnot a cue").expect_err("second block");
        assert!(e.user_message().contains("block 2"), "{}", e.user_message());
    }

    #[test]
    fn language_tags() {
        assert_eq!(normalise_lang("EN").expect("en"), "en");
        assert_eq!(normalise_lang("pt_br").expect("pt-BR"), "pt-BR");
        assert_eq!(normalise_lang("zh-hant").expect("zh-Hant"), "zh-Hant");
        assert_eq!(normalise_lang("es-419").expect("es-419"), "es-419");
        for bad in ["", "e", "english", "en-", "en/../x", "en US", "de-DE-x-y-z-w", "<b>"] {
            assert!(normalise_lang(bad).is_err(), "{bad:?}");
        }
        assert_eq!(default_label("de"), "Deutsch");
        assert_eq!(default_label("pt-BR"), "Português (pt-BR)");
        assert_eq!(default_label("xx"), "xx");
    }
}
