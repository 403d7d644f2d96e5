//! `reelbox serve`: open the data directory, print where to go, serve until SIGTERM/SIGINT,
//! finish in-flight requests and close the database cleanly.

use std::process::ExitCode;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::middleware::from_fn;

use crate::App;
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::users;
use crate::clock::Clock;
use crate::config::Config;
use crate::web;

pub fn run(cfg: Config) -> Result<ExitCode, ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("reelbox: cannot start the async runtime: {e}");
        ExitCode::from(1)
    })?;
    runtime.block_on(serve(cfg))
}

fn fail(message: String) -> ExitCode {
    eprintln!("reelbox: {message}");
    tracing::error!("{message}");
    ExitCode::from(1)
}

async fn serve(cfg: Config) -> Result<ExitCode, ExitCode> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| fail(format!("cannot create data directory {}: {e}", cfg.data_dir.display())))?;
    let probe = cfg.data_dir.join(".write-test");
    std::fs::write(&probe, b"").and_then(|_| std::fs::remove_file(&probe)).map_err(|e| {
        fail(format!(
            "the data directory {} is not writable ({e}); give the reelbox user write access or choose another with --data",
            cfg.data_dir.display()
        ))
    })?;
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
    let db = crate::db::Db::open(&cfg.data_dir, workers as u32 * 2).map_err(|e| fail(e.to_string()))?;
    let store = crate::store::BlobStore::open(&cfg.data_dir).map_err(|e| fail(e.to_string()))?;
    let uploads = crate::ingest::tus::Uploads::open(&cfg.data_dir).map_err(|e| fail(e.to_string()))?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics disabled"))
        .ok();
    let app = App::new(cfg.clone(), db.clone(), store, uploads, Clock::System, metrics)
        .map_err(|e| fail(format!("bad password settings: {e}")))?;
    // Replication: the pair's state file, the database fence on a replica, and (a primary that
    // knows its peer) the question whether it was replaced while it was away.
    let _server_lock = crate::replica::promote::lock_server(&cfg.data_dir)
        .map_err(|e| fail(format!("is another reelbox running on this data directory? {e}")))?;
    app.replica.start(&db).map_err(|e| fail(format!("replication state: {e}")))?;
    crate::replica::fence::check_peer(&app.replica, Duration::from_secs(2)).await;

    let has_admin = app.db.read(users::admin_exists).await.map_err(|e| fail(format!("{e}")))?;
    // After a crash, partial uploads hold bytes that were acknowledged but maybe never synced:
    // cut them back to the recorded durable offsets before anyone asks for one.
    match crate::ingest::tus_recovery::recover(&app).await {
        _ if !app.replica.accepts_writes() => {}
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "partial uploads shorter than recorded"),
        Err(e) => return Err(fail(format!("cannot check the partial uploads: {e}"))),
    }
    let listener = std::net::TcpListener::bind(&cfg.listen).map_err(|e| {
        fail(format!(
            "cannot listen on {}: {e}; is another server using it? Choose another with --listen",
            cfg.listen
        ))
    })?;
    let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let base = cfg.base_url_for(bound);
    app.replica.set_self_url(cfg.replica.advertise_url.clone().unwrap_or_else(|| base.clone()));

    // Listen for SIGTERM/SIGINT before announcing anything, so a signal sent as soon as the URL
    // is printed still stops the server gracefully.
    let signals = (|| {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
    })()
    .map_err(|e| fail(format!("cannot install signal handlers: {e}")))?;

    let state = app.clone();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .configure(web::configure(state.clone()))
            .default_service(actix_web::web::to(|| async {
                Err::<actix_web::HttpResponse, _>(web::error::WebError::not_found())
            }))
            .wrap(from_fn(web::auth::csrf_guard))
            .wrap(from_fn(web::auth::authenticate))
            .wrap(from_fn(crate::replica::forward::middleware))
            .wrap(from_fn(web::error::render_errors))
            .wrap(from_fn(web::middleware::security_headers))
            .wrap(from_fn(web::middleware::observe))
    })
    .disable_signals()
    .workers(workers)
    .max_connection_rate(256)
    .shutdown_timeout(30)
    .listen(listener)
    .map_err(|e| fail(format!("cannot listen on {bound}: {e}")))?
    .run();

    println!("reelbox {} serving {base}", crate::VERSION);
    if !has_admin {
        let minutes = i64::from(app.config.login.setup_link_minutes);
        let token = app.setup.issue(app.clock.now() + minutes * 60);
        println!(
            "No administrator yet. Create one within {minutes} minutes at:\n  {base}/setup?token={token}"
        );
    } else {
        println!("Sign in at {base}/login");
    }
    tracing::info!(%bound, "listening");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let handle = server.handle();
    tokio::spawn(async move {
        let (mut term, mut int) = signals;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing requests in flight, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing requests in flight, then stopping"),
        }
        handle.stop(true).await;
    });
    let housekeeping = tokio::spawn(housekeeping(app.clone()));
    let pair_tasks = crate::replica::tasks::spawn(&app);
    // Transcoders write: they run on a primary only, and start when a replica is promoted.
    let transcoders = crate::replica::tasks::when_primary(&app, crate::transcode::Workers::start).await;
    let result = server.await;
    for t in pair_tasks {
        t.abort();
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    housekeeping.abort();
    let synced = crate::ingest::tus_recovery::sync_open(&app).await;
    if synced > 0 {
        tracing::info!(uploads = synced, "open uploads synced and recorded");
    }
    if let Some(t) = transcoders.lock().await.take() {
        t.stop().await;
    }
    app.db.close();
    tracing::info!("stopped");
    result.map(|_| ExitCode::SUCCESS).map_err(|e| fail(format!("server error: {e}")))
}

/// Remove expired sessions and abandoned uploads now and then (and once at start); start the
/// weekly integrity scrub when it is due.
async fn housekeeping(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    let mut weekly_scrub = crate::library::scrub::Weekly::default();
    loop {
        tick.tick().await;
        if !app.replica.accepts_writes() {
            // A replica's database changes only by replication; the primary does this work.
            continue;
        }
        weekly_scrub.poll(&app);
        let policy = SessionPolicy::from_config(&app.config.sessions);
        let now = app.clock.now();
        if let Err(e) = app.db.write(move |c| sessions::purge_expired(c, policy, now)).await {
            tracing::warn!(error = %e, "session clean-up failed");
        }
        match crate::ingest::tus::expire(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "clean-up of abandoned uploads failed"),
        }
        match crate::library::lifecycle::purge_due(&app).await {
            Ok(r) if r == Default::default() => {}
            Ok(r) => tracing::info!(
                items = r.items_purged,
                media_dirs = r.purged.len(),
                blobs = r.blobs_removed,
                deferred = r.blobs_deferred,
                "purged archived items past retention"
            ),
            Err(e) => tracing::warn!(error = %e, "purge of archived items failed"),
        }
    }
}
