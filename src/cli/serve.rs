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
use crate::config::{Config, TlsMode};
use crate::replica::Role;
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
    // The command line may write while the server runs; its caches must see that.
    db.watch_other_writers().map_err(|e| fail(e.to_string()))?;
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

    // Before listening, so a wrong backup setting stops the start with the reason. One target
    // (directory or S3) takes the shipped database and the copies of media and server files.
    let backup_target = crate::replication::target::open(&cfg)
        .map_err(|e| fail(format!("cannot open the backup target: {e}")))?;
    // The database is shipped to the backup target and into the spool a replica follows; only
    // a primary ships (a replica's copy changes by replication) and a replica starts when promoted.
    let ships = backup_target.is_some() || cfg.replica.secret.is_set();
    let primary_at_start = app.replica.role() == Role::Primary;
    if ships && primary_at_start {
        start_shipping(&app, backup_target.clone())
            .await
            .map_err(|e| fail(format!("cannot start shipping the database: {e}")))?;
    }
    let has_admin = app.db.read(users::admin_exists).await.map_err(|e| fail(format!("{e}")))?;
    // After a crash, partial uploads hold bytes that were acknowledged but maybe never synced:
    // cut them back to the recorded durable offsets before anyone asks for one.
    match crate::ingest::tus_recovery::recover(&app).await {
        _ if !app.replica.accepts_writes() => {}
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "partial uploads shorter than recorded"),
        Err(e) => return Err(fail(format!("cannot check the partial uploads: {e}"))),
    }
    // HTTPS (src/tls): the certificate source, the HTTPS listener and the redirect listener.
    let tls = if cfg.tls.mode == TlsMode::Off {
        tracing::warn!(
            "TLS is off: serving plain HTTP, for development only; use --tls acme|files|self-signed in production"
        );
        None
    } else {
        app.tls.persist_to(&cfg.data_dir);
        Some(crate::tls::prepare(&cfg, &app.tls).map_err(|e| fail(format!("HTTPS cannot start: {e}")))?)
    };
    let (main_addr, main_flag) =
        if tls.is_some() { (cfg.tls.https.as_str(), "--https") } else { (cfg.listen.as_str(), "--listen") };
    let listener = std::net::TcpListener::bind(main_addr).map_err(|e| {
        fail(format!(
            "cannot listen on {main_addr}: {e}; is another server using it? Choose another with {main_flag}"
        ))
    })?;
    let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let base = cfg.base_url_for(bound);
    let redirect_listener = match cfg.tls.http_addr() {
        Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|e| {
            fail(format!("cannot listen on {addr}: {e}; choose another with --http, or --http off"))
        })?),
        None => None,
    };
    app.replica.set_self_url(cfg.replica.advertise_url.clone().unwrap_or_else(|| base.clone()));

    // Listen for SIGTERM/SIGINT before announcing anything, so a signal sent as soon as the URL
    // is printed still stops the server gracefully.
    let signals = (|| {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
    })()
    .map_err(|e| fail(format!("cannot install signal handlers: {e}")))?;

    let state = app.clone();
    let factory = move || {
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
    };
    // HTTPS goes through actix's HttpServer (rustls, HTTP/2 by ALPN); plain HTTP through
    // HttpServer's parts over a stream that can `sendfile` media files (see web::sendfile).
    let (server, acme_driver) = match tls {
        Some(prepared) => {
            let server = HttpServer::new(factory)
                .disable_signals()
                .workers(workers)
                .max_connection_rate(256)
                .shutdown_timeout(30)
                .listen_rustls_0_23(listener, prepared.server_config)
                .map_err(|e| fail(format!("cannot listen on {bound}: {e}")))?
                .run();
            (server, prepared.driver)
        }
        None => {
            let server = web::sendfile::server(
                factory,
                listener,
                web::sendfile::Settings { workers, shutdown_timeout_secs: 30 },
                {
                    let state = app.clone();
                    std::sync::Arc::new(move |req: &actix_http::Request| {
                        web::media_files::fast::answer(&state, req)
                    })
                },
            )
            .map_err(|e| fail(format!("cannot listen on {bound}: {e}")))?;
            (server, None)
        }
    };
    let acme_task = acme_driver.map(|d| tokio::spawn(d.run()));
    let redirect = match redirect_listener {
        Some(l) => {
            let http_bound = l.local_addr().map_err(|e| fail(e.to_string()))?;
            let target = crate::tls::redirect::Target {
                https_port: bound.port(),
                public_url: cfg.public_url.clone().filter(|u| u.starts_with("https://")),
            };
            let state = app.clone();
            let srv = HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(actix_web::web::Data::new(target.clone()))
                    .app_data(actix_web::web::Data::new(state.clone()))
                    .route("/healthz", actix_web::web::get().to(web::api::ops::healthz))
                    .default_service(actix_web::web::to(crate::tls::redirect::to_https))
            })
            .disable_signals()
            .workers(1)
            .shutdown_timeout(5)
            .listen(l)
            .map_err(|e| fail(format!("cannot listen on {http_bound}: {e}")))?
            .run();
            println!("redirecting http://{http_bound} to HTTPS");
            tracing::info!(%http_bound, "plain HTTP answers with redirects to HTTPS");
            let handle = srv.handle();
            tokio::spawn(srv);
            Some(handle)
        }
        None => None,
    };

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
    crate::ops::service::notify_ready(&format!("serving {base}"));
    let watchdog = crate::ops::service::start_watchdog(&app, bound);

    let handle = server.handle();
    tokio::spawn(async move {
        let (mut term, mut int) = signals;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing requests in flight, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing requests in flight, then stopping"),
        }
        if let Some(r) = redirect {
            r.stop(true).await;
        }
        crate::ops::service::notify_stopping();
        handle.stop(true).await;
    });
    let housekeeping = tokio::spawn(housekeeping(app.clone()));
    let pair_tasks = crate::replica::tasks::spawn(&app);
    // Transcoders write: they run on a primary only, and start when a replica is promoted.
    let transcoders = crate::replica::tasks::when_primary(&app, crate::transcode::Workers::start).await;
    let media_backup = primary_duties(&app, backup_target, ships && !primary_at_start);
    let result = server.await;
    crate::ops::service::notify_stopping();
    if let Some(w) = watchdog {
        w.abort();
    }
    for t in pair_tasks {
        t.abort();
    }
    housekeeping.abort();
    if let Some(t) = acme_task {
        t.abort();
    }
    if let Some((media, files)) = media_backup.lock().await.take() {
        media.stop();
        files.abort();
    }
    let synced = crate::ingest::tus_recovery::sync_open(&app).await;
    if synced > 0 {
        tracing::info!(uploads = synced, "open uploads synced and recorded");
    }
    if let Some(t) = transcoders.lock().await.take() {
        t.stop().await;
    }
    match app.replication.get() {
        Some(shipper) => {
            shipper.close(&app.db);
            shipper.finish(Duration::from_secs(10)).await;
        }
        None => app.db.close(),
    }
    tracing::info!("stopped");
    result.map(|_| ExitCode::SUCCESS).map_err(|e| fail(format!("server error: {e}")))
}

type MediaBackupTasks = (crate::backup::media::MediaBackup, tokio::task::JoinHandle<()>);

/// Start the WAL shipper and publish what it has shipped to the replica feed.
async fn start_shipping(
    app: &App,
    target: Option<crate::replication::target::Target>,
) -> Result<(), crate::replication::ReplicationError> {
    let shipper = crate::replication::Shipper::start(
        app.db.clone(),
        &app.config.data_dir,
        target,
        &app.config.replication,
    )
    .await?;
    let mut position = shipper.position();
    let _ = app.replication.set(std::sync::Arc::new(shipper));
    let node = app.replica.clone();
    tokio::spawn(async move {
        loop {
            let p = position.borrow_and_update().clone();
            if let Some(p) = p {
                node.shipped.send_replace(Some(crate::replica::Applied {
                    generation: p.generation.as_str().to_owned(),
                    txid: p.txid,
                    committed_at_ms: p.committed_at_ms,
                }));
            }
            if position.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// The copies of media and server files in the backup target, made by the primary: now, or
/// (a replica) once it is promoted, when it also starts shipping the database (`ship_later`).
fn primary_duties(
    app: &App,
    target: Option<crate::replication::target::Target>,
    ship_later: bool,
) -> std::sync::Arc<tokio::sync::Mutex<Option<MediaBackupTasks>>> {
    let slot = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let (app, later) = (app.clone(), slot.clone());
    tokio::spawn(async move {
        let mut role = app.replica.role_watch.subscribe();
        while *role.borrow_and_update() != Role::Primary {
            if role.changed().await.is_err() {
                return;
            }
        }
        if ship_later && let Err(e) = start_shipping(&app, target.clone()).await {
            tracing::error!(error = %e, "promoted, but shipping the database could not start");
        }
        let Some(target) = target else { return };
        let ctx = crate::backup::media::Ctx::from_app(&app, target.clone());
        let _ = app.backup.set(ctx.status.clone());
        let files = crate::backup::files::start(
            target.clone(),
            app.config.clone(),
            app.clock.clone(),
            ctx.status.clone(),
        );
        tracing::info!(target = %target, "backing up media and server files");
        *later.lock().await = Some((crate::backup::media::MediaBackup::start(ctx), files));
    });
    slot
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
