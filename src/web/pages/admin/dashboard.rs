//! The administration home: counts, what needs attention, recent activity.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::{BackupView, DashboardView, TlsView, dashboard_page};

use crate::App;
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::{AccountsError, groups, throttle, users};
use crate::clock::format_utc;
use crate::insights::audit;
use crate::library::{categories, scrub};
use crate::web::auth::AdminUser;
use crate::web::error::WebError;
use crate::web::pages::html;
use crate::web::{Access, Endpoint, chrome, get};

pub fn endpoints() -> Vec<Endpoint> {
    vec![get("/admin", Access::Admin, "Administration dashboard", dashboard)]
}

async fn dashboard(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
) -> Result<HttpResponse, WebError> {
    let now = app.clock.now();
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let login_cfg = app.config.login.clone();
    let (counts, group_count, category_count, live, lockouts, recent, last_scrub) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((
                users::count(c)?,
                groups::list(c)?.len(),
                categories::list(c)?.len(),
                sessions::count_live(c, policy, now)?,
                throttle::lockouts(c, &login_cfg, now)?,
                audit::list(c, &audit::Filter { limit: 10, ..Default::default() })?,
                scrub::last(c)?,
            ))
        })
        .await?;
    let view = DashboardView {
        users: counts.0,
        admins: counts.1,
        disabled: counts.2,
        groups: group_count as i64,
        categories: category_count as i64,
        live_sessions: live,
        lockouts: lockouts
            .iter()
            .map(|l| (l.username.clone(), l.failures_last_hour, format_utc(l.locked_until)))
            .collect(),
        recent: recent
            .iter()
            .map(|e| {
                (format_utc(e.at), e.actor.clone(), e.action.clone(), e.target.clone(), e.outcome.clone())
            })
            .collect(),
        version: crate::VERSION,
        last_scrub: last_scrub.map(|s| {
            let at = match s.finished_at {
                Some(t) => format_utc(t),
                None => format!("{} (still running, or interrupted)", format_utc(s.started_at)),
            };
            (at, s.blobs, s.problems)
        }),
        tls: tls_view(&app, now),
        backup: backup_view(&app).await,
    };
    Ok(html(dashboard_page(&chrome(&req, Some(&admin.0)), &view)))
}

/// The HTTPS card: the live status the server keeps (mode, certificate, renewals, errors).
fn tls_view(app: &App, now: i64) -> TlsView {
    let s = app.tls.get();
    TlsView {
        mode: if s.mode.is_empty() { app.config.tls.mode.as_str().to_string() } else { s.mode.clone() },
        names: s.cert.as_ref().map(|c| c.names.join(", ")),
        issuer: s.cert.as_ref().map(|c| c.issuer.clone()),
        expires: s.cert.as_ref().map(|c| (format_utc(c.not_after), (c.not_after - now).div_euclid(86_400))),
        last_renewal: s.last_renewal.map(format_utc),
        last_error: s.last_error.clone().map(|e| (s.last_error_at.map(format_utc).unwrap_or_default(), e)),
    }
}

/// The backups card: WAL shipping, media and files backup, the replica pair.
async fn backup_view(app: &App) -> BackupView {
    let now_ms = crate::replication::notify::now_ms();
    let at = |ms: i64| format_utc(ms.div_euclid(1000));
    let mut v = BackupView {
        role: app.replica.role().as_str().to_string(),
        epoch: app.replica.epoch(),
        primary: app.replica.primary_url(),
        replica_lag_ms: app.replica.lag_ms(),
        paired: app.config.replica.secret.is_set(),
        ..Default::default()
    };
    {
        let state = app.replica.state();
        v.peer = state.peer.clone();
        let exports = app.config.data_dir.join("split-brain");
        v.split_brain_exports =
            state.split_brain_exports.iter().map(|d| exports.join(d).display().to_string()).collect();
        v.last_failover = state.last_failover.as_ref().map(|f| {
            let how = match f.how.as_str() {
                "promote" => "promoted by an administrator",
                "automatic" => "promoted automatically (the primary was silent)",
                "demoted" => "stepped down (another node had been promoted)",
                other => other,
            };
            format!("{}: {how}, epoch {} → {}", at(f.at_ms), f.from_epoch, f.to_epoch)
        });
    }
    if app.replica.role() == crate::replica::Role::Replica {
        v.follow_problems = app
            .replica
            .follow
            .tasks()
            .into_iter()
            .filter(|(_, t)| t.failing())
            .map(|(name, t)| {
                let what = match name {
                    "records" => "the database",
                    "media" => "media",
                    "renditions" => "published renditions",
                    _ => "repairs of damaged copies",
                };
                (
                    what.to_string(),
                    t.last_error_at_ms.map(at).unwrap_or_default(),
                    t.last_error.unwrap_or_default(),
                )
            })
            .collect();
        let (last, repaired) = app.replica.follow.scrub_report();
        v.last_scrub = last.map(|r| {
            format!(
                "{}: {} files, {:.1} MiB checked; {} repaired ({repaired} since start)",
                at(r.finished_at_ms),
                r.files,
                r.bytes as f64 / (1024.0 * 1024.0),
                r.repaired
            )
        });
    }
    v.position = match app.replica.role() {
        crate::replica::Role::Replica => app.replica.applied.borrow().as_ref().map(|p| p.header()),
        crate::replica::Role::Primary => app.replica.shipped_now().map(|p| p.header()),
    };
    if let Some(shipper) = app.replication.get() {
        let s = shipper.status();
        if !s.target.is_empty() {
            v.target = Some(s.target.clone());
            v.db_in_target = s.uploaded.as_ref().map(|p| {
                format!(
                    "transaction {} of {}, uploaded {}",
                    p.txid,
                    p.generation,
                    s.uploaded_at_ms.map(at).unwrap_or_default()
                )
            });
            v.db_lag_seconds = Some(s.lag_seconds(now_ms));
            v.db_last_snapshot =
                s.last_snapshot.as_ref().map(|(_, txid, when)| format!("{} (transaction {txid})", at(*when)));
        }
        v.alarms.extend(s.alarm(now_ms));
        if let Some(e) = &s.retention_error {
            v.alarms.push(format!(
                "Removing database history older than {} days from the target failed (nothing is lost; it keeps more): {e}",
                s.retention_days
            ));
        }
    } else if app.replica.accepts_writes()
        && (app.config.backup.dir.is_some() || app.config.backup.url.is_some())
    {
        v.alarms.push(
            "A backup target is configured but the database is not being shipped to it; see the server log."
                .into(),
        );
    }
    v.retention = format!(
        "database history {} days, media {} days after deletion, server files {} days",
        app.config.replication.retention_days,
        app.config.backup.media_keep_days,
        app.config.backup.files_keep_days
    );
    if let Some(dir) = app.config.backup.dir.clone() {
        v.target_free =
            tokio::task::spawn_blocking(move || crate::ops::doctor::free_bytes(&dir)).await.ok().flatten();
    }
    if let Some(handle) = app.backup.get() {
        let s = handle.snapshot();
        v.target.get_or_insert(s.target.clone());
        v.media_copied = Some((s.copied, s.copied_bytes));
        v.media_pending = Some((s.pending, s.pending_bytes));
        v.media_last_walk = s.last_walk_at.map(format_utc);
        v.files_last = s.last_files_backup.clone();
        if let Some(e) = &s.last_error {
            v.alarms.push(format!(
                "Copying media or server files failed ({}): {e}",
                s.last_error_at.map(format_utc).unwrap_or_default()
            ));
        }
    } else if v.target.is_none() && !app.replica.accepts_writes() {
        // A replica copies nothing itself; its primary does.
        v.target = configured_target(&app.config);
    }
    if v.target.is_some() {
        // As the administrator wrote it: the storage client calls an S3 target by its prefix only.
        v.target = configured_target(&app.config).or(v.target);
    }
    v
}

fn configured_target(cfg: &crate::config::Config) -> Option<String> {
    cfg.backup.dir.as_ref().map(|d| d.display().to_string()).or(cfg.backup.url.clone())
}
