//! One ladder job, start to end, on a blocking thread: probe, plan, the quick first pass and
//! its publication (the item is playable from here), the poster, the second pass, the
//! download file and the sprite. Work happens in `<media>/.work/`; each finished piece is moved
//! to its published path with a rename, so nothing partial is ever served. Rungs published by
//! an earlier, interrupted attempt are kept and not made again.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::params;

use super::ffmpeg::{self, Children, ToolError, Tools};
use super::ladder::{self, Plan};
use super::queue::{self, Job};
use super::{TranscodeError, media_dir, probe};
use crate::clock::Clock;
use crate::db::Db;
use crate::library::media::{self, MediaKind};
use crate::store::{BlobStore, Sha256};

/// Everything a job needs, cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub db: Db,
    pub store: BlobStore,
    pub data_dir: PathBuf,
    pub tools: Tools,
    pub preset: String,
    pub children: Children,
    pub clock: Clock,
}

/// How a job ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The item is gone, or not a video or audio item: nothing to do.
    Nothing,
}

impl From<TranscodeError> for ToolError {
    fn from(e: TranscodeError) -> Self {
        ToolError::Io(format!("database: {e}"))
    }
}

impl From<crate::library::LibraryError> for ToolError {
    fn from(e: crate::library::LibraryError) -> Self {
        ToolError::Io(format!("database: {e}"))
    }
}

/// Share of the job's progress each step stands for.
const FIRST_SHARE: f64 = 0.15;
const SECOND_SHARE: f64 = 0.80;

/// Progress over the whole job, written at most once a second, never going back.
struct Progress<'a> {
    ctx: &'a Context,
    job: &'a Job,
    started: Instant,
    last: Option<Instant>,
    reached: f64,
}

impl Progress<'_> {
    /// Record `fraction` (0..1 of the whole job) if a second has passed since the last write.
    fn report(&mut self, fraction: f64) {
        if self.last.is_some_and(|l| l.elapsed().as_millis() < 1000) {
            return;
        }
        self.write(fraction);
    }

    /// Record `fraction` now (the end of a step).
    fn write(&mut self, fraction: f64) {
        let fraction = fraction.max(self.reached).min(0.99);
        self.reached = fraction;
        self.last = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = (fraction > 0.02).then(|| (elapsed * (1.0 - fraction) / fraction).round() as u64);
        let (job, now) = (self.job.clone(), self.ctx.clock.now());
        let pct = (fraction * 100.0).floor() as u8;
        if let Err(e) = self.ctx.db.write_blocking(|c| queue::set_progress(c, &job, pct, eta, now)) {
            tracing::warn!(error = %e, "recording transcode progress failed");
        }
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> ToolError + '_ {
    move |e| ToolError::io(what, e)
}

/// fsync every file of `dir`, then the directory itself.
fn sync_dir(dir: &Path) -> Result<(), ToolError> {
    for entry in fs::read_dir(dir).map_err(io("reading a rung directory"))? {
        let path = entry.map_err(io("reading a rung directory"))?.path();
        if path.is_file() {
            fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io("syncing a rendition"))?;
        }
    }
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io("syncing a rendition directory"))
}

/// Write `bytes` to `path` through a temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ToolError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io("writing a playlist"))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io("writing a playlist"))?;
    fs::rename(&tmp, path).map_err(io("publishing a playlist"))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io("syncing a directory"))?;
    }
    Ok(())
}

/// Move a complete file or directory to its published place (replacing a stale one).
fn publish_path(from: &Path, to: &Path) -> Result<(), ToolError> {
    if from.is_dir() {
        sync_dir(from)?;
    } else {
        fs::File::open(from).and_then(|f| f.sync_all()).map_err(io("syncing a rendition"))?;
    }
    if to.is_dir() {
        fs::remove_dir_all(to).map_err(io("replacing a stale rendition"))?;
    }
    fs::rename(from, to).map_err(io("publishing a rendition"))
}

/// Rename the finished rungs into `hls/`, record them, rewrite the master playlist.
fn publish_rungs(
    ctx: &Context,
    id: crate::db::ids::MediaId,
    plan: &Plan,
    which: &[usize],
) -> Result<(), ToolError> {
    let dir = media_dir(&ctx.data_dir, id);
    let hls = dir.join("hls");
    fs::create_dir_all(&hls).map_err(io("creating the hls directory"))?;
    for &i in which {
        let r = &plan.rungs[i];
        let done = dir.join(".work").join("hls").join(&r.name);
        written_whole(&done, &r.name)?;
        publish_path(&done, &hls.join(&r.name))?;
    }
    let now = ctx.clock.now();
    let rows: Vec<_> = which.iter().map(|&i| plan.rungs[i].clone()).collect();
    let listed = ctx.db.write_blocking(move |c| {
        let tx = c.transaction().map_err(TranscodeError::from)?;
        for r in &rows {
            tx.execute(
                "INSERT OR REPLACE INTO media_rungs (media_id, name, width, height, bandwidth, codecs, remuxed, published_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, r.name, r.width, r.height, r.bandwidth.min(i64::MAX as u64) as i64, r.codecs, r.copy, now],
            )?;
        }
        let listed = published(&tx, id)?;
        tx.commit().map_err(TranscodeError::from)?;
        Ok::<_, TranscodeError>(listed)
    })?;
    write_atomic(&hls.join("master.m3u8"), ladder::master_playlist(&listed).as_bytes())
}

/// A rung ffmpeg says it finished is whole: its playlist ends, and every file it lists (and the
/// init segment) is there and not empty. ffmpeg 5.1's HLS muxer ignores failed segment writes
/// (a full disk leaves empty files and exit status 0), so this is checked, not assumed.
fn written_whole(dir: &Path, name: &str) -> Result<(), ToolError> {
    let incomplete =
        |why: String| ToolError::Io(format!("ffmpeg wrote an incomplete {name} rendition: {why}"));
    let playlist =
        fs::read_to_string(dir.join("index.m3u8")).map_err(|e| incomplete(format!("no playlist ({e})")))?;
    if !playlist.contains("#EXT-X-ENDLIST") {
        return Err(incomplete("the playlist has no end".into()));
    }
    let files = playlist.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    for file in std::iter::once("init.mp4").chain(files) {
        let len = fs::metadata(dir.join(file)).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Err(incomplete(format!("{file} is missing or empty (is the disk full?)")));
        }
    }
    Ok(())
}

type Listed = (String, u32, u32, u64, String);

fn published(
    conn: &rusqlite::Connection,
    id: crate::db::ids::MediaId,
) -> Result<Vec<Listed>, TranscodeError> {
    let mut stmt = conn.prepare(
        "SELECT name, width, height, bandwidth, codecs FROM media_rungs WHERE media_id = ?1 ORDER BY height DESC",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?.max(0) as u64, r.get(4)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn publish_asset(ctx: &Context, id: crate::db::ids::MediaId, name: &'static str) -> Result<(), ToolError> {
    let now = ctx.clock.now();
    ctx.db.write_blocking(|c| {
        c.execute(
            "INSERT OR REPLACE INTO media_assets (media_id, name, published_at) VALUES (?1, ?2, ?3)",
            params![id, name, now],
        )
        .map_err(TranscodeError::from)
    })?;
    Ok(())
}

/// Run one job. Blocking: call from `spawn_blocking`. The `.work` directory is removed whatever
/// happens.
pub fn execute(ctx: &Context, job: &Job) -> Result<Outcome, ToolError> {
    let work = media_dir(&ctx.data_dir, job.media_id).join(".work");
    let result = execute_in(ctx, job, &work);
    if work.exists()
        && let Err(e) = fs::remove_dir_all(&work)
    {
        tracing::warn!(media = %job.media_id, error = %e, "could not remove the work directory");
    }
    result
}

/// ffmpeg's HLS muxer does not create directories: make the rungs' before a pass.
fn make_rung_dirs(plan: &Plan, which: &[usize], work: &Path) -> Result<(), ToolError> {
    for &i in which {
        fs::create_dir_all(work.join("hls").join(&plan.rungs[i].name))
            .map_err(io("creating a rung directory"))?;
    }
    Ok(())
}

fn execute_in(ctx: &Context, job: &Job, work: &Path) -> Result<Outcome, ToolError> {
    let id = job.media_id;
    let Some(item) = ctx.db.read_blocking(|c| media::get(c, id))? else { return Ok(Outcome::Nothing) };
    let (Some(kind), Some(hex)) = (item.kind, item.sha256.as_deref()) else { return Ok(Outcome::Nothing) };
    if !matches!(kind, MediaKind::Video | MediaKind::Audio) {
        return Ok(Outcome::Nothing);
    }
    ctx.tools.check()?;
    let hash = Sha256::from_hex(hex).map_err(|e| ToolError::Io(format!("bad hash on item: {e}")))?;
    let source = ctx.store.path(&hash);
    let facts = probe::probe(&ctx.tools.ffprobe, &source)?;
    let now = ctx.clock.now();
    ctx.db.write_blocking(|c| probe::store(c, id, &facts, now))?;
    let plan = ladder::plan(&facts);

    if work.exists() {
        fs::remove_dir_all(work).map_err(io("clearing the work directory"))?;
    }
    fs::create_dir_all(work.join("hls")).map_err(io("creating the work directory"))?;
    let dir = media_dir(&ctx.data_dir, id);
    let already: Vec<String> = ctx
        .db
        .read_blocking(|c| super::rungs(c, id))?
        .into_iter()
        .map(|r| r.name)
        .filter(|n| dir.join("hls").join(n).join("index.m3u8").is_file())
        .collect();
    let todo = |which: Vec<usize>| -> Vec<usize> {
        which.into_iter().filter(|&i| !already.contains(&plan.rungs[i].name)).collect()
    };
    let first = todo(plan.first.clone());
    let rest = todo((0..plan.rungs.len()).filter(|i| !plan.first.contains(i)).collect());
    let duration = plan.duration.max(0.1);
    let mut progress = Progress { ctx, job, started: Instant::now(), last: None, reached: 0.0 };

    if !first.is_empty() {
        // The cheapest rung alone, fast, so the item is playable early.
        let preset = if plan.rungs[first[0]].copy { ctx.preset.as_str() } else { "ultrafast" };
        make_rung_dirs(&plan, &first, work)?;
        let args = ladder::pass_args(&plan, &first, false, &source, work, preset);
        ffmpeg::run(&ctx.tools.ffmpeg, &args, &ctx.children, &mut |t| {
            progress.report(FIRST_SHARE * t / duration)
        })?;
        progress.write(FIRST_SHARE);
        publish_rungs(ctx, id, &plan, &first)?;
        if first.iter().any(|&i| plan.rungs[i].copy) {
            ctx.db.write_blocking(|c| queue::set_remuxed(c, job))?;
        }
    }
    if plan.poster.is_some() {
        let out = work.join("poster.jpg");
        ffmpeg::run(
            &ctx.tools.ffmpeg,
            &ladder::poster_args(&plan, &source, &out),
            &ctx.children,
            &mut |_| {},
        )?;
        publish_path(&out, &dir.join("poster.jpg"))?;
        publish_asset(ctx, id, "poster.jpg")?;
    }
    let sprite = plan.sprite.is_some() && !plan.audio_only;
    if !rest.is_empty() || sprite {
        make_rung_dirs(&plan, &rest, work)?;
        if sprite {
            fs::create_dir_all(ladder::thumbs_dir(work)).map_err(io("creating the thumbnail directory"))?;
        }
        let args = ladder::pass_args(&plan, &rest, sprite, &source, work, &ctx.preset);
        ffmpeg::run(&ctx.tools.ffmpeg, &args, &ctx.children, &mut |t| {
            progress.report(FIRST_SHARE + SECOND_SHARE * t / duration)
        })?;
        if !rest.is_empty() {
            publish_rungs(ctx, id, &plan, &rest)?;
        }
        if let Some(sp) = plan.sprite.as_ref().filter(|_| sprite) {
            let jpg = work.join("sprite.jpg");
            if ladder::thumbs_dir(work).join("0001.jpg").is_file() {
                ffmpeg::run(
                    &ctx.tools.ffmpeg,
                    &ladder::sprite_args(sp, work, &jpg),
                    &ctx.children,
                    &mut |_| {},
                )?;
            }
            if jpg.is_file() {
                let vtt = work.join("sprite.vtt");
                fs::write(&vtt, ladder::sprite_vtt(sp, plan.duration))
                    .map_err(io("writing the sprite map"))?;
                publish_path(&jpg, &dir.join("sprite.jpg"))?;
                publish_path(&vtt, &dir.join("sprite.vtt"))?;
                publish_asset(ctx, id, "sprite")?;
            }
        }
    }
    progress.write(FIRST_SHARE + SECOND_SHARE);

    // The download: the chosen rung's init segment and segments, concatenated (a valid
    // fragmented MP4), remuxed with the index first.
    let rung = &plan.rungs[plan.download];
    let (name, out_name) =
        if plan.audio_only { ("download.m4a", "download.m4a") } else { ("download.mp4", "download.mp4") };
    let rung_dir = dir.join("hls").join(&rung.name);
    let frag = work.join("fragmented.mp4");
    concat_rung(&rung_dir, &frag)?;
    let out = work.join(out_name);
    ffmpeg::run(&ctx.tools.ffmpeg, &ladder::download_args(&frag, &out), &ctx.children, &mut |_| {})?;
    publish_path(&out, &dir.join(out_name))?;
    publish_asset(ctx, id, name)?;
    Ok(Outcome::Done)
}

/// `init.mp4` followed by every segment of the rung's playlist, in order.
fn concat_rung(rung_dir: &Path, out: &Path) -> Result<(), ToolError> {
    let playlist = fs::read_to_string(rung_dir.join("index.m3u8")).map_err(io("reading a rung playlist"))?;
    let mut f = fs::File::create(out).map_err(io("writing the download"))?;
    let mut copy = |name: &str| -> Result<(), ToolError> {
        let mut src = fs::File::open(rung_dir.join(name)).map_err(io("reading a segment"))?;
        std::io::copy(&mut src, &mut f).map_err(io("writing the download"))?;
        Ok(())
    };
    copy("init.mp4")?;
    for line in playlist.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.contains('/') || line.contains("..") {
            return Err(ToolError::Io(format!("unexpected segment name in a playlist: {line}")));
        }
        copy(line)?;
    }
    f.sync_all().map_err(io("writing the download"))
}

/// Remove everything published for an item (its `<data>/media/<id>/`).
pub fn remove_media_dir(data_dir: &Path, id: crate::db::ids::MediaId) -> std::io::Result<()> {
    let dir = media_dir(data_dir, id);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
