//! ffmpeg and ffprobe behind one module: finding them, their versions, and running ffmpeg
//! through ffmpeg-sidecar (no downloader: an explicit path) on a blocking thread, with progress
//! events, a kill switch for shutdown, and a verdict from the exit status alone (its error
//! events are not trusted: some are spurious).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::child::FfmpegChild;
use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};

/// How many of ffmpeg's last log lines are kept for the log and the job's detail.
const KEPT_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed (or not where the configuration says).
    #[error("{program} not found: {detail}")]
    Missing { program: String, detail: String },
    /// The source cannot be read or converted: retrying will not help.
    #[error("{message}")]
    Source { message: String, detail: String },
    /// ffmpeg was killed (by a signal, the OOM killer, or us at shutdown).
    #[error("ffmpeg was stopped before it finished ({detail})")]
    Killed { detail: String },
    #[error("the disk is full")]
    DiskFull { detail: String },
    #[error("{0}")]
    Io(String),
    /// Shutting down: the job goes back to the queue.
    #[error("stopped for shutdown")]
    Cancelled,
}

impl ToolError {
    pub fn spawn(program: &Path, e: std::io::Error) -> ToolError {
        if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::PermissionDenied {
            ToolError::Missing { program: program.display().to_string(), detail: e.to_string() }
        } else {
            ToolError::Io(format!("starting {}: {e}", program.display()))
        }
    }

    pub fn io(what: &str, e: std::io::Error) -> ToolError {
        if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
            ToolError::DiskFull { detail: format!("{what}: {e}") }
        } else {
            ToolError::Io(format!("{what}: {e}"))
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ToolError::Source { detail, .. }
            | ToolError::Killed { detail }
            | ToolError::DiskFull { detail } => detail.clone(),
            ToolError::Missing { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }
}

/// The last `n` non-empty lines of `text`, joined by " / ".
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Where ffmpeg and ffprobe are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    pub fn from_config(c: &crate::config::TranscodeConfig) -> Tools {
        Tools { ffmpeg: c.ffmpeg.clone(), ffprobe: c.ffprobe.clone() }
    }

    /// Both programs run: `Ok((ffmpeg version line, ffprobe version line))`.
    pub fn check(&self) -> Result<(String, String), ToolError> {
        Ok((version(&self.ffmpeg)?, version(&self.ffprobe)?))
    }
}

/// The first line of `program -version`.
pub fn version(program: &Path) -> Result<String, ToolError> {
    let out = Command::new(program)
        .args(["-hide_banner", "-version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ToolError::spawn(program, e))?;
    if !out.status.success() {
        return Err(ToolError::Missing {
            program: program.display().to_string(),
            detail: format!("`{} -version` exited with {}", program.display(), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string())
}

/// The running ffmpeg processes, so shutdown can stop them all.
#[derive(Clone, Default)]
pub struct Children {
    next: Arc<AtomicU64>,
    running: Arc<Mutex<HashMap<u64, Arc<Mutex<FfmpegChild>>>>>,
    stopping: Arc<AtomicBool>,
}

impl Children {
    /// Kill every running ffmpeg; later runs are refused.
    pub fn kill_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let all: Vec<_> = match self.running.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => return,
        };
        for child in all {
            if let Ok(mut c) = child.lock() {
                let _ = c.kill();
            }
        }
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn add(&self, child: Arc<Mutex<FfmpegChild>>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.running.lock() {
            map.insert(id, child);
        }
        id
    }

    fn remove(&self, id: u64) {
        if let Ok(mut map) = self.running.lock() {
            map.remove(&id);
        }
    }
}

/// `00:01:02.50` → 62.5.
pub fn parse_time(t: &str) -> Option<f64> {
    let mut secs = 0.0;
    for part in t.trim().split(':') {
        secs = secs * 60.0 + part.parse::<f64>().ok()?;
    }
    (secs >= 0.0).then_some(secs)
}

/// Run ffmpeg with `args` (after `-loglevel level+info`, which ffmpeg-sidecar puts first) to the
/// end. `on_progress` gets the output time reached, in seconds. Blocking.
pub fn run(
    ffmpeg: &Path,
    args: &[String],
    children: &Children,
    on_progress: &mut dyn FnMut(f64),
) -> Result<(), ToolError> {
    if children.stopping() {
        return Err(ToolError::Cancelled);
    }
    let mut cmd = FfmpegCommand::new_with_path(ffmpeg);
    // stdin stays piped (ffmpeg-sidecar requires it); the arguments carry `-nostdin`.
    cmd.args(args);
    let mut child = cmd.spawn().map_err(|e| ToolError::spawn(ffmpeg, e))?;
    let events = child.iter().map_err(|e| ToolError::Io(format!("reading ffmpeg's output: {e}")));
    let child = Arc::new(Mutex::new(child));
    let id = children.add(child.clone());
    // Killed at shutdown between spawn and registration: make sure it stops.
    if children.stopping()
        && let Ok(mut c) = child.lock()
    {
        let _ = c.kill();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if let Ok(events) = events {
        for event in events {
            match event {
                FfmpegEvent::Progress(p) => {
                    if let Some(t) = parse_time(&p.time) {
                        on_progress(t);
                    }
                }
                FfmpegEvent::Log(level, line) => {
                    let line = strip_prefixes(&line);
                    if matches!(level, LogLevel::Error | LogLevel::Fatal) {
                        errors.push(line.clone());
                    }
                    lines.push(line);
                    if lines.len() > KEPT_LINES * 2 {
                        lines.drain(..KEPT_LINES);
                    }
                }
                _ => {}
            }
        }
    }
    let status = child.lock().map_err(|_| ToolError::Io("ffmpeg handle poisoned".into()))?.wait();
    children.remove(id);
    let status = status.map_err(|e| ToolError::Io(format!("waiting for ffmpeg: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let tail = lines[lines.len().saturating_sub(KEPT_LINES)..].join("\n");
    if children.stopping() {
        return Err(ToolError::Cancelled);
    }
    let all = format!("{}\n{tail}", errors.join("\n"));
    Err(match classify(status.code(), &all) {
        Verdict::Killed => ToolError::Killed { detail: format!("{status}; {}", last_lines(&tail, 3)) },
        Verdict::DiskFull => ToolError::DiskFull { detail: tail },
        Verdict::OurSide => ToolError::Io(format!("ffmpeg failed ({status}): {}", last_lines(&tail, 3))),
        Verdict::Source => ToolError::Source { message: human_message(&errors, &tail), detail: tail },
    })
}

/// Whose fault a failed ffmpeg run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stopped by a signal (the OOM killer, an operator): try again later.
    Killed,
    /// Our disk is full: try again later.
    DiskFull,
    /// Our side (writing the output, memory, files): try again later.
    OurSide,
    /// The source cannot be read or decoded: retrying will not help.
    Source,
}

/// Messages of the system (strerror) that point at our side, not at the source.
const OUR_SIDE: [&str; 11] = [
    "No such file or directory",
    "Permission denied",
    "Input/output error",
    "Read-only file system",
    "Cannot allocate memory",
    "Too many open files",
    "Broken pipe",
    "Resource temporarily unavailable",
    "Failed to open segment",
    "Error writing trailer",
    "Operation not permitted",
];

/// What ffmpeg says when the source itself is broken or unusable.
const SOURCE: [&str; 20] = [
    "Invalid data found when processing input",
    // No decoder for the source's codec (ffmpeg 5+ words it these ways).
    "not found for input stream",
    "Error while opening decoder for input stream",
    "Unknown decoder",
    // A stream whose header or first frames cannot be made sense of.
    "Error splitting the input into NAL units",
    "Invalid frame dimensions",
    "Header missing",
    "moov atom not found",
    "corrupt decoded frame",
    "Error while decoding",
    "could not find codec parameters",
    "Could not find codec parameters",
    "matches no streams",
    "does not contain any stream",
    "Decoding requested, but no decoder",
    "Unsupported codec",
    "EBML header parsing failed",
    "Invalid NAL unit",
    "no frame!",
    "Failed to read frame size",
];

/// Judge a failed run from its exit status (`code` is None when a signal ended it) and what it
/// wrote to stderr. Only a source that cannot be decoded fails at once; anything that may be
/// ours (output I/O, a full disk, a signal, an unknown message) is retried with backoff.
pub fn classify(code: Option<i32>, stderr: &str) -> Verdict {
    // ffmpeg exits 255 after catching SIGTERM or SIGINT ("Exiting normally, received signal 15.").
    if code.is_none() || stderr.contains("received signal") {
        return Verdict::Killed;
    }
    if stderr.contains("No space left on device") || stderr.contains("Disk quota exceeded") {
        return Verdict::DiskFull;
    }
    if OUR_SIDE.iter().any(|p| stderr.contains(p)) {
        return Verdict::OurSide;
    }
    if SOURCE.iter().any(|p| stderr.contains(p)) {
        return Verdict::Source;
    }
    Verdict::OurSide
}

/// `[hls @ 0x55…] [error] Failed to open` → `Failed to open`: the bracketed context and level
/// ffmpeg puts first.
fn strip_prefixes(line: &str) -> String {
    let mut rest = line.trim();
    while rest.starts_with('[') {
        match rest.find(']') {
            Some(end) => rest = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    // "/data/blobs/sha256/…: Invalid data…": the server's paths are nobody's business.
    if rest.starts_with('/')
        && let Some((_, after)) = rest.split_once(": ")
    {
        rest = after;
    }
    rest.to_string()
}

/// A person's sentence from the text ffprobe or ffmpeg wrote to stderr.
pub fn human_message_of(stderr: &str) -> String {
    let lines: Vec<String> = stderr.lines().map(strip_prefixes).filter(|l| !l.is_empty()).collect();
    human_message(&lines, "")
}

/// A person's sentence from ffmpeg's last error lines: the specific ones, not "Conversion failed!".
fn human_message(errors: &[String], tail: &str) -> String {
    let generic = |l: &str| {
        l.contains("Conversion failed")
            || l.starts_with("Error while")
            || l.contains("Error opening output")
            || l.contains("Nothing was written")
            || l.trim().is_empty()
    };
    let mut specific: Vec<&str> = errors.iter().map(|s| s.trim()).filter(|l| !generic(l)).collect();
    specific.dedup();
    let picked = if specific.is_empty() {
        last_lines(tail, 2)
    } else {
        specific[specific.len().saturating_sub(2)..].join(" / ")
    };
    let picked: String = picked.chars().take(300).collect();
    format!("The file could not be converted for playback: {picked}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_lines() {
        assert_eq!(parse_time("00:01:02.50"), Some(62.5));
        assert_eq!(parse_time("N/A"), None);
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b / c");
        assert_eq!(strip_prefixes("[hls @ 0x1] [error] Failed to open"), "Failed to open");
        let m = human_message_of("[mov @ 0x5] moov atom not found\n/data/blobs/ab: Invalid data found\n");
        assert_eq!(
            m,
            "The file could not be converted for playback: moov atom not found / Invalid data found"
        );
        let m = human_message(&["moov atom not found".into(), "Conversion failed!".into()], "");
        assert!(m.ends_with("moov atom not found"), "{m}");
    }

    /// Real stderr of ffmpeg 5.1 (`-loglevel level+info`), captured from failing runs.
    #[test]
    fn failures_are_told_apart_on_real_stderr() {
        let cases: [(&str, Option<i32>, &str); 8] = [
            // A file of random bytes named .mp4.
            ("garbage", Some(1), include_str!("stderr/garbage.txt")),
            // An AVI with damaged bytes, decoded with -xerror.
            ("corrupt", Some(1), include_str!("stderr/corrupt.txt")),
            // `-map 0:v:0` on a WAV file.
            ("nostream", Some(1), include_str!("stderr/nostream.txt")),
            // Output to /dev/full.
            ("full", Some(1), include_str!("stderr/full.txt")),
            // HLS output into a directory that does not exist.
            ("missingdir", Some(1), include_str!("stderr/missingdir.txt")),
            // The input is not there (our store lost it): not the source's fault.
            ("missing_in", Some(1), include_str!("stderr/missing_in.txt")),
            // SIGTERM: ffmpeg stops and exits 255.
            ("term", Some(255), include_str!("stderr/term.txt")),
            // SIGKILL: no exit code.
            ("killed", None, include_str!("stderr/killed.txt")),
        ];
        let expected = [
            Verdict::Source,
            Verdict::Source,
            Verdict::Source,
            Verdict::DiskFull,
            Verdict::OurSide,
            Verdict::OurSide,
            Verdict::Killed,
            Verdict::Killed,
        ];
        for ((name, code, text), want) in cases.iter().zip(expected) {
            assert_eq!(classify(*code, text), want, "{name}");
        }
        assert_eq!(classify(Some(1), "[error] something new"), Verdict::OurSide, "unknown: retried");
        for permanent in [
            "[fatal] Decoder (codec none) not found for input stream #0:0",
            "[error] Error while opening decoder for input stream #0:0 : Invalid data found",
            "[h264 @ 0x1] [error] Error splitting the input into NAL units.",
            "[mp3float @ 0x1] [error] Header missing",
            "[error] Invalid frame dimensions 0x0.",
        ] {
            assert_eq!(classify(Some(1), permanent), Verdict::Source, "{permanent}");
        }
    }

    #[test]
    fn a_missing_program_is_reported_as_missing() {
        let err = version(Path::new("/nonexistent/ffmpeg")).expect_err("missing");
        assert!(matches!(err, ToolError::Missing { .. }), "{err:?}");
    }
}
