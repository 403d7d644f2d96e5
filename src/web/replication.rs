//! HTTP side of the pair: the replication feed a replica reads from its primary (signed with
//! the shared secret, refused otherwise), session renewals and audit events a replica sends, the
//! admin's promote
//! action, and the pair's fields in `/healthz`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::App;
use crate::replica::auth::{self, AUTH_HEADER, TIME_HEADER};
use crate::replica::touch::{self, TouchBatch};
use crate::replica::{ReplicaError, Role};
use crate::web::auth::{AdminUser, Confirm, CsrfForm};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, post};

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = vec![
        post(
            touch::TOUCH_PATH,
            Access::Replication,
            "Session and token renewals seen by the replica",
            touch_batch,
        ),
        post(
            crate::replica::audit::AUDIT_PATH,
            Access::Replication,
            "Audit events seen by the replica (playback, downloads), recorded once each",
            audit_batch,
        ),
        post("/admin/replica/promote", Access::Admin, "Promote this replica to primary (new epoch)", promote),
    ];
    all.extend(super::replication_feed::endpoints());
    all
}

/// `role`, `primary`, `lag_ms`, `epoch` and the rest of the pair's state for `/healthz`.
pub fn health_fields(app: &App) -> serde_json::Map<String, serde_json::Value> {
    let node = &app.replica;
    let s = node.state().clone();
    let applied = node.applied.borrow().clone();
    let shipped = node.shipped.borrow().clone();
    let promoted_from =
        s.last_failover.as_ref().filter(|f| f.how != "demoted").and_then(|f| f.position.clone());
    let mut m = serde_json::Map::new();
    m.insert("role".into(), s.role.as_str().into());
    m.insert("primary".into(), serde_json::to_value(&s.primary).unwrap_or_default());
    m.insert("epoch".into(), s.epoch.into());
    m.insert("lag_ms".into(), serde_json::to_value(node.lag_ms()).unwrap_or_default());
    m.insert(
        "position".into(),
        serde_json::to_value(if s.role == Role::Replica { applied } else { shipped }).unwrap_or_default(),
    );
    m.insert("promoted_from".into(), serde_json::to_value(promoted_from).unwrap_or_default());
    // Blobs (originals) and published renditions alike: what a viewer could miss here.
    let blobs = node.media_bytes_behind.load(std::sync::atomic::Ordering::Relaxed);
    let renditions = node.rendition_bytes_behind.load(std::sync::atomic::Ordering::Relaxed);
    m.insert("media_bytes_behind".into(), (blobs + renditions).into());
    m.insert("rendition_bytes_behind".into(), renditions.into());
    // Each follow task on its own: one succeeding never hides another failing.
    m.insert("follow".into(), node.follow.to_json());
    let (last_pass, repaired) = node.follow.scrub_report();
    m.insert(
        "scrub".into(),
        serde_json::json!({
            "interval_seconds": node.config.scrub_interval_seconds,
            "last_pass": last_pass,
            "repaired_since_start": repaired,
        }),
    );
    m
}

/// Check the signature of a replication request (the body is part of it).
pub fn authenticate(req: &HttpRequest, app: &App, body: &[u8]) -> Result<(), WebError> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    auth::verify_request(
        app.replica.secret(),
        header(TIME_HEADER),
        header(AUTH_HEADER),
        req.method().as_str(),
        pq,
        body,
        crate::replica::now_ms() / 1000,
    )
    .map_err(|e| {
        tracing::warn!(addr = %crate::web::auth::client_addr(req), error = %e, "replication request refused");
        WebError::from(e)
    })
}

/// A batch the replica sends to its primary: signed, refused on a replica, JSON of type `T`.
fn replica_batch<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    app: &App,
    body: &[u8],
    code: &'static str,
    what: &str,
) -> Result<T, WebError> {
    authenticate(req, app, body)?;
    if !app.replica.accepts_writes() {
        return Err(WebError::from(ReplicaError::Protocol(format!("{what} go to the primary"))));
    }
    serde_json::from_slice(body)
        .map_err(|e| WebError::bad_request(code, format!("not a batch of {what}: {e}")))
}

async fn touch_batch(
    req: HttpRequest,
    app: web::Data<App>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let batch: TouchBatch = replica_batch(&req, &app, &body, "bad-touch", "renewals")?;
    touch::apply(&app, batch, app.clock.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn audit_batch(
    req: HttpRequest,
    app: web::Data<App>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let batch = replica_batch(&req, &app, &body, "bad-audit-batch", "audit events")?;
    let recorded = crate::replica::audit::record_here(&app, batch).await?;
    Ok(HttpResponse::Ok().json(crate::replica::audit::Recorded { recorded }))
}

async fn promote(
    app: web::Data<App>,
    admin: AdminUser,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let epoch = crate::replica::promote::promote_running(&app, "promote").await?;
    tracing::warn!(admin = %admin.0.user.username, epoch, "promoted from the admin page");
    Ok(HttpResponse::build(StatusCode::SEE_OTHER)
        .insert_header((actix_web::http::header::LOCATION, "/admin?notice=promoted"))
        .finish())
}
