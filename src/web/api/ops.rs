//! Health, metrics, the caller's identity and the audit trail.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::App;
use crate::accounts::{AccountsError, grants, groups};
use crate::db::ids::AuditId;
use crate::insights::audit::{self, Outcome};
use crate::web::auth::{AdminUser, CurrentUser, Principal};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, get};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/healthz", Access::Public, "Liveness and role", healthz),
        get("/metrics", Access::Metrics, "Prometheus metrics", metrics_text),
        get("/api/v1/me", Access::SignedIn, "Who am I: username, admin flag, groups, grants", me),
        get(
            "/api/v1/audit",
            Access::Admin,
            "Audit events, newest first (filters: actor, action, target, outcome, from, to, before, limit)",
            audit_list,
        ),
        get("/admin/audit.csv", Access::Admin, "Audit events as CSV (same filters)", audit_csv),
    ]
}

pub(crate) async fn healthz(app: web::Data<App>) -> HttpResponse {
    // A trivial read proves the database answers.
    let db_ok = app
        .db
        .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(crate::db::DbError::from))
        .await
        .is_ok();
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "version": crate::VERSION,
        "uptime_secs": app.started.elapsed().as_secs(),
    });
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.extend(crate::web::replication::health_fields(&app));
    }
    let mut res = if db_ok { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    res.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

fn metrics_allowed(req: &HttpRequest, app: &App) -> bool {
    use actix_web::HttpMessage;
    let principal = req.extensions().get::<Principal>().cloned();
    if let Some(Principal::Token { user, .. }) = &principal
        && user.is_admin
    {
        return true;
    }
    if let Some(expected) = app.config.metrics.token.expose() {
        let sent = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        if sent.strip_prefix("Bearer ").is_some_and(|t| t == expected) {
            return true;
        }
    }
    let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    // A bearer token that is not an admin's is refused even from loopback: it was meant to identify someone.
    app.config.metrics.allow_loopback
        && loopback
        && !matches!(principal, Some(Principal::Token { .. } | Principal::BadToken))
}

async fn metrics_text(req: HttpRequest, app: web::Data<App>) -> Result<HttpResponse, WebError> {
    if !metrics_allowed(&req, &app) {
        return Err(WebError::forbidden());
    }
    let (connections, idle) = app.db.reader_state();
    metrics::gauge!("reelbox_db_reader_connections").set(f64::from(connections));
    metrics::gauge!("reelbox_db_reader_idle").set(f64::from(idle));
    metrics::gauge!("reelbox_uptime_seconds").set(app.started.elapsed().as_secs_f64());
    let text = app.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}

async fn me(app: web::Data<App>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    let uid = user.user.id;
    let (group_list, grant_list) = app
        .db
        .read(move |c| Ok::<_, AccountsError>((groups::of_user(c, uid)?, grants::for_person(c, uid)?)))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": user.user.id,
        "username": user.user.username,
        "display_name": user.user.display_name,
        "admin": user.user.is_admin,
        "must_change_password": user.user.must_change_password,
        "groups": group_list.iter().map(|g| serde_json::json!({"id": g.id, "name": g.name})).collect::<Vec<_>>(),
        "grants": grant_list.iter().map(|g| serde_json::json!({
            "category_id": g.category_id,
            "role": g.role,
            "via": match g.grantee { grants::Grantee::Group(_) => format!("group:{}", g.grantee_name), grants::Grantee::User(_) => "direct".into() },
        })).collect::<Vec<_>>(),
        "csrf_token": user.csrf(),
    })))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    outcome: Option<String>,
    /// RFC 3339 or a date (YYYY-MM-DD).
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

fn parse_time(s: &str, end_of_day: bool) -> Result<i64, WebError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day { d.and_hms_opt(23, 59, 59) } else { d.and_hms_opt(0, 0, 0) };
        if let Some(t) = t {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(WebError::bad_request(
        "invalid-time",
        format!("“{s}” is not a date (YYYY-MM-DD) or an RFC 3339 time."),
    ))
}

impl AuditQuery {
    pub fn to_filter(&self, default_limit: u32) -> Result<audit::Filter, WebError> {
        let outcome = match self.outcome.as_deref() {
            None | Some("") => None,
            Some("success") => Some(Outcome::Success),
            Some("failure") => Some(Outcome::Failure),
            Some("denied") => Some(Outcome::Denied),
            Some(_) => {
                return Err(WebError::bad_request(
                    "invalid-outcome",
                    "outcome must be success, failure or denied",
                ));
            }
        };
        Ok(audit::Filter {
            actor: self.actor.trim().to_string(),
            action: self.action.trim().to_string(),
            target: self.target.trim().to_string(),
            outcome,
            from: self.from.as_deref().filter(|s| !s.is_empty()).map(|s| parse_time(s, false)).transpose()?,
            to: self.to.as_deref().filter(|s| !s.is_empty()).map(|s| parse_time(s, true)).transpose()?,
            before: self.before.map(AuditId),
            limit: self.limit.unwrap_or(default_limit),
        })
    }
}

async fn audit_list(
    app: web::Data<App>,
    _admin: AdminUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = q.to_filter(100)?;
    let events = app.db.read(move |c| audit::list(c, &filter)).await?;
    Ok(HttpResponse::Ok().json(events))
}

async fn audit_csv(
    app: web::Data<App>,
    admin: AdminUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = q.to_filter(10_000)?;
    let events = app.db.read(move |c| audit::list(c, &filter)).await?;
    let event = admin.0.actor().event("audit.export").detail(format!("{} events", events.len()));
    crate::replica::audit::record_access(&app, event, None).await?;
    let csv = audit::to_csv(&events).map_err(WebError::internal)?;
    let name = format!("reelbox-audit-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(csv))
}
