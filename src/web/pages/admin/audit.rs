//! The audit trail: filter, page through (newest first) and export. Events are never edited or
//! deleted, so this page only reads.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::audit::{AuditFilters, AuditRow, AuditView, audit_page};
use serde::Deserialize;

use crate::App;
use crate::clock::format_utc;
use crate::insights::audit;
use crate::web::api::ops::AuditQuery;
use crate::web::auth::AdminUser;
use crate::web::error::WebError;
use crate::web::pages::html_status;
use crate::web::{Access, Endpoint, chrome, get};

/// Events per page.
const PAGE: u32 = 50;

pub fn endpoints() -> Vec<Endpoint> {
    vec![get(
        "/admin/audit",
        Access::Admin,
        "The audit log, newest first (filters: actor, action, target, outcome, from, to; paging: before)",
        audit_log,
    )]
}

/// The filters as typed, to show them back and to build the paging and export links.
#[derive(Deserialize, Default)]
pub struct Typed {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl Typed {
    /// The filters (not the paging) as a query string.
    fn query(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", urlencoding::encode(v.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
    fn filters(&self) -> AuditFilters {
        AuditFilters {
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            outcome: self.outcome.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_string() } else { format!("{path}?{query}") }
}

async fn audit_log(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
) -> Result<HttpResponse, WebError> {
    let typed =
        web::Query::<Typed>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
    let filter = web::Query::<AuditQuery>::from_query(req.query_string())
        .map_err(|_| {
            WebError::bad_request(
                "invalid-filter",
                "The filter could not be understood. Clear it and try again.",
            )
        })
        .and_then(|q| q.to_filter(PAGE));
    let query = typed.query();
    let filters = typed.filters();
    let csv = with_query("/admin/audit.csv", &query);
    let newest = (!typed.before.trim().is_empty()).then(|| with_query("/admin/audit", &query));
    let mut filter = match filter {
        Ok(f) => f,
        Err(e) if e.status.is_client_error() => {
            let view =
                AuditView { filters: &filters, rows: &[], older: None, newest, csv, error: Some(&e.message) };
            return Ok(html_status(
                StatusCode::BAD_REQUEST,
                audit_page(&chrome(&req, Some(&admin.0)), &view),
            ));
        }
        Err(e) => return Err(e),
    };
    // One more than shown tells whether there is an older page.
    let page = filter.limit.clamp(1, 500);
    filter.limit = page + 1;
    let mut events = app.db.read(move |c| audit::list(c, &filter)).await?;
    let older = if events.len() > page as usize {
        events.truncate(page as usize);
        events.last().map(|e| {
            let before = format!("before={}", e.id.0);
            with_query("/admin/audit", &if query.is_empty() { before } else { format!("{query}&{before}") })
        })
    } else {
        None
    };
    let rows: Vec<AuditRow> = events
        .into_iter()
        .map(|e| AuditRow {
            at: format_utc(e.at),
            actor: e.actor,
            action: e.action,
            target: match (e.target.is_empty(), e.target_type.is_empty()) {
                (false, false) => format!("{} {}", e.target_type, e.target),
                (false, true) => e.target,
                (true, _) => e.target_type,
            },
            outcome: e.outcome,
            detail: e.detail,
            addr: e.client_addr,
        })
        .collect();
    let view = AuditView { filters: &filters, rows: &rows, older, newest, csv, error: None };
    Ok(html_status(StatusCode::OK, audit_page(&chrome(&req, Some(&admin.0)), &view)))
}
