//! The administration home: counts, what needs attention, recent activity.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::{DashboardView, TlsView, dashboard_page};

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
