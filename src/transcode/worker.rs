//! The worker pool: `[transcode] workers` tasks, independent of the HTTP workers, each claiming
//! one job at a time and running it on a blocking thread. A job that panics or whose ffmpeg is
//! killed cannot take the server down: the panic ends at the task's `JoinHandle` and the job is
//! retried or failed. A supervisor re-queues jobs whose worker died and wakes the jobs that
//! waited for ffmpeg when it appears. Stopping kills the ffmpeg children and puts their jobs back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::ffmpeg::{Children, ToolError, Tools};
use super::job::{Context, Outcome, execute};
use super::queue::{self, AfterFailure, Failure, Job};
use super::{NOT_AVAILABLE, TranscodeError};
use crate::App;
use crate::db::ids::MediaId;
use crate::library::media;

/// How often an idle worker looks for due jobs.
const POLL: Duration = Duration::from_millis(500);
/// How often the supervisor looks for stale jobs and for ffmpeg.
const SUPERVISE: Duration = Duration::from_secs(15);

pub struct Workers {
    tasks: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    children: Children,
}

impl Workers {
    /// Start the pool and its supervisor.
    pub fn start(app: &App) -> Workers {
        let children = Children::default();
        let ctx = Context {
            db: app.db.clone(),
            store: app.store.clone(),
            data_dir: app.config.data_dir.clone(),
            tools: Tools::from_config(&app.config.transcode),
            preset: app.config.transcode.preset.clone(),
            children: children.clone(),
            clock: app.clock.clone(),
        };
        let prefix = format!("{}-{:08x}-", std::process::id(), rand::random::<u32>());
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let count = app.config.transcode.worker_count();
        let mut tasks = vec![tokio::spawn(supervise(
            ctx.clone(),
            prefix.clone(),
            stop.clone(),
            wake.clone(),
            app.config.transcode.max_attempts,
        ))];
        for n in 0..count {
            let worker = format!("{prefix}{n}");
            tasks.push(tokio::spawn(work(ctx.clone(), worker, stop.clone(), wake.clone())));
        }
        tracing::info!(workers = count, "transcoding workers started");
        Workers { tasks, stop, wake, children }
    }

    /// Stop: kill running ffmpeg processes (their jobs go back to the queue) and wait for the tasks.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.children.kill_all();
        self.wake.notify_waiters();
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(20), t).await.is_err() {
                tracing::warn!("a transcoding worker did not stop in time");
            }
        }
        tracing::info!("transcoding workers stopped");
    }
}

async fn sleep_or_wake(stop: &AtomicBool, wake: &Notify, d: Duration) {
    if stop.load(Ordering::SeqCst) {
        return;
    }
    let _ = tokio::time::timeout(d, wake.notified()).await;
}

async fn supervise(
    ctx: Context,
    prefix: String,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    max_attempts: u32,
) {
    let now = ctx.clock.now();
    match ctx.db.write(move |c| queue::enqueue_missing(c, max_attempts, now)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "queued video and audio items that had no transcoding job"),
        Err::<_, TranscodeError>(e) => tracing::warn!(error = %e, "queueing items without a job failed"),
    }
    while !stop.load(Ordering::SeqCst) {
        let now = ctx.clock.now();
        let p = prefix.clone();
        match ctx.db.write(move |c| queue::requeue_stale(c, &p, queue::STALE_AFTER, now)).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(jobs = ?ids, "re-queued interrupted transcoding jobs")
            }
            Ok(_) => {}
            Err::<_, TranscodeError>(e) => tracing::warn!(error = %e, "re-queueing stale jobs failed"),
        }
        if ctx.db.read(queue::any_waiting).await.unwrap_or(false) {
            let tools = ctx.tools.clone();
            let found = tokio::task::spawn_blocking(move || tools.check()).await;
            if let Ok(Ok((v, _))) = found {
                let now = ctx.clock.now();
                if let Ok(n) = ctx.db.write(move |c| queue::wake_waiting(c, now)).await {
                    tracing::info!(jobs = n, version = %v, "ffmpeg is available: waiting jobs queued");
                }
            }
        }
        sleep_or_wake(&stop, &wake, SUPERVISE).await;
    }
}

async fn work(ctx: Context, worker: String, stop: Arc<AtomicBool>, wake: Arc<Notify>) {
    while !stop.load(Ordering::SeqCst) {
        let now = ctx.clock.now();
        let due = ctx
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM transcode_jobs WHERE state = 'queued' AND run_after <= ?1)",
                    [now],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(TranscodeError::from)
            })
            .await
            .unwrap_or(false);
        let job = if due {
            let w = worker.clone();
            ctx.db.write(move |c| queue::claim(c, &w, now)).await.unwrap_or_else(|e: TranscodeError| {
                tracing::warn!(error = %e, "claiming a transcoding job failed");
                None
            })
        } else {
            None
        };
        match job {
            Some(job) => run_one(&ctx, job).await,
            None => sleep_or_wake(&stop, &wake, POLL).await,
        }
    }
}

/// Run a claimed job with a heartbeat beside it, and record how it ended.
async fn run_one(ctx: &Context, job: Job) {
    let id = job.media_id;
    tracing::info!(media = %id, attempt = job.attempt, worker = %job.worker, "transcoding started");
    let beat = {
        let (db, clock, job) = (ctx.db.clone(), ctx.clock.clone(), job.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(queue::HEARTBEAT_EVERY));
            loop {
                every.tick().await;
                let (j, now) = (job.clone(), clock.now());
                if let Ok(false) = db.write(move |c| queue::heartbeat(c, &j, now)).await {
                    break;
                }
            }
        })
    };
    let (c, j) = (ctx.clone(), job.clone());
    let result = tokio::task::spawn_blocking(move || execute(&c, &j)).await;
    beat.abort();
    let now = ctx.clock.now();
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(media = %id, error = %e, "transcoding job panicked");
            Err(ToolError::Io(format!("the job stopped unexpectedly: {e}")))
        }
    };
    let j = job.clone();
    let recorded = match result {
        Ok(outcome) => ctx
            .db
            .write(move |c| {
                let tx = c.transaction().map_err(TranscodeError::from)?;
                if queue::finish(&tx, &j, now)? && outcome == Outcome::Done {
                    media::set_processed(&tx, j.media_id, true, now)
                        .map_err(|e| TranscodeError::Db(db_of(e)))?;
                }
                tx.commit().map_err(TranscodeError::from)?;
                Ok::<_, TranscodeError>(())
            })
            .await
            .map(|_| tracing::info!(media = %id, "transcoding finished")),
        Err(ToolError::Cancelled) => {
            ctx.db.write(move |c| queue::release(c, &j, now)).await.map(
                |_| tracing::info!(media = %id, "transcoding stopped for shutdown; the job stays queued"),
            )
        }
        Err(ToolError::Missing { program, detail }) => {
            tracing::warn!(media = %id, %program, %detail, "{NOT_AVAILABLE}: the job waits for ffmpeg");
            ctx.db.write(move |c| queue::wait_for_transcoder(c, &j, now)).await
        }
        Err(e) => {
            let transient = !matches!(e, ToolError::Source { .. });
            let message = match &e {
                ToolError::Source { message, .. } => message.clone(),
                ToolError::DiskFull { .. } => {
                    "The server ran out of disk space while converting this file. Please tell your IT administrator."
                        .into()
                }
                _ => "Converting this file was interrupted. Please try again, and tell your IT administrator if it keeps happening.".into(),
            };
            let failure = Failure { transient, message, detail: e.detail() };
            tracing::warn!(media = %id, error = %e, detail = %failure.detail, transient, "transcoding attempt failed");
            ctx.db
                .write(move |c| {
                    let tx = c.transaction().map_err(TranscodeError::from)?;
                    let after = queue::fail(&tx, &j, &failure, now)?;
                    if after == AfterFailure::Failed {
                        media::set_processed(&tx, j.media_id, false, now)
                            .map_err(|e| TranscodeError::Db(db_of(e)))?;
                    }
                    tx.commit().map_err(TranscodeError::from)?;
                    Ok::<_, TranscodeError>(after)
                })
                .await
                .map(|after| tracing::info!(media = %id, ?after, "transcoding failure recorded"))
        }
    };
    if let Err(e) = recorded {
        tracing::error!(media = %id, error = %e, "recording the end of a transcoding job failed");
    }
}

fn db_of(e: crate::library::LibraryError) -> crate::db::DbError {
    match e {
        crate::library::LibraryError::Db(d) => d,
        other => crate::db::DbError::Task(other.to_string()),
    }
}

/// Queue the ladder of a freshly uploaded video or audio item (from `after_upload`).
pub async fn enqueue(app: &App, id: MediaId) -> Result<bool, TranscodeError> {
    let (now, max) = (app.clock.now(), app.config.transcode.max_attempts);
    app.db.write(move |c| queue::enqueue(c, id, max, now)).await
}

/// Queue a failed item again, and put it back to `processing` (the retry button).
pub async fn retry(app: &App, id: MediaId) -> Result<(), TranscodeError> {
    let (now, max) = (app.clock.now(), app.config.transcode.max_attempts);
    app.db
        .write(move |c| {
            let tx = c.transaction().map_err(TranscodeError::from)?;
            queue::retry(&tx, id, max, now)?;
            media::reopen_for_processing(&tx, id, now).map_err(|e| TranscodeError::Db(db_of(e)))?;
            tx.commit().map_err(TranscodeError::from)?;
            Ok(())
        })
        .await
}
