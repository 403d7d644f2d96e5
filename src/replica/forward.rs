//! Writes on a replica: every request that could change state is passed to the primary as it
//! came (method, path, headers, streamed body) and the primary's answer is passed back, so an
//! upload, an edit or a sign-in works on either node. When the primary cannot be reached the
//! request is refused with `503 replica-read-only` (a page or problem JSON) — never applied here.
//!
//! Read-your-writes: for a forwarded request the primary adds `X-Reelbox-Position` (what it has
//! shipped once the request finished); the replica holds its answer until it has applied that
//! position (bounded by `replica.read_your_writes_wait_ms`), so the next read on this node
//! shows the write.

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use super::auth::{CLIENT_AUTH_HEADER, CLIENT_HEADER, POSITION_HEADER};
use super::{Applied, Role};
use crate::App;
use crate::web::error::WebError;

/// Set by a replica on requests it forwards; the primary then reports its position.
pub const FORWARDED_HEADER: &str = "x-reelbox-forwarded";

/// Whether a request may change state (and so must reach the primary).
pub fn is_write(method: &Method, path: &str) -> bool {
    if path.starts_with("/replication/") || path.starts_with("/static/") || path == "/healthz" {
        return false;
    }
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

pub fn read_only_error(detail: impl std::fmt::Display) -> WebError {
    let mut e = WebError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "replica-read-only",
        "This server is temporarily read-only: it is the school's standby copy and cannot reach the \
         main server right now. Nothing was saved; please try again in a few minutes.",
    );
    e.detail = detail.to_string();
    e.retry_after = Some(30);
    e
}

/// The middleware: forward writes on a replica; on a primary, stamp forwarded requests' answers
/// with the position the replica must reach.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(app) = req.app_data::<web::Data<App>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    if !is_write(req.method(), req.path()) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    if app.replica.role() == Role::Replica {
        let (http_req, payload) = req.into_parts();
        let res = match proxy(&app, &http_req, payload).await {
            Ok(r) => r,
            // Carried as an error so `render_errors` answers with a page or problem JSON.
            Err(e) => HttpResponse::from_error(actix_web::Error::from(e)),
        };
        return Ok(ServiceResponse::new(http_req, res).map_into_right_body());
    }
    let forwarded = req.headers().contains_key(FORWARDED_HEADER);
    let before = if forwarded { Some((app.db.known_generation(), app.replica.shipped_now())) } else { None };
    let mut res = next.call(req).await?;
    if let Some((generation, shipped)) = before
        && app.db.known_generation() != generation
        && let Some(pos) = shipped_after_write(&app, shipped).await
        && let Ok(v) = header::HeaderValue::from_str(&pos.header())
    {
        res.headers_mut().insert(header::HeaderName::from_static(POSITION_HEADER), v);
    }
    Ok(res.map_into_left_body())
}

/// The shipped position that covers the request's write: the first one published after the
/// one seen before the request ran (the shipper is woken by every commit), bounded.
async fn shipped_after_write(app: &App, before: Option<Applied>) -> Option<Applied> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let now = app.replica.shipped_now();
        if now.is_some() && now != before {
            return now;
        }
        if tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn proxy(
    app: &App,
    req: &actix_web::HttpRequest,
    payload: actix_web::dev::Payload,
) -> Result<HttpResponse, WebError> {
    let Some(primary) = app.replica.primary_url() else {
        return Err(read_only_error("no primary configured"));
    };
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| WebError::bad_request("bad-method", e.to_string()))?;
    let mut out = app.replica.http.request(method, format!("{primary}{pq}"));
    for (name, value) in req.headers() {
        if !hop_by_hop(name) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let client = crate::web::auth::client_addr(req);
    if let Some(secret) = app.replica.secret() {
        let auth =
            super::auth::client_auth(secret, super::now_ms() / 1000, req.method().as_str(), pq, &client);
        out = out.header(CLIENT_HEADER, client.as_str()).header(CLIENT_AUTH_HEADER, auth);
    }
    out = out.header(FORWARDED_HEADER, "1").header("x-forwarded-for", client);
    // actix's payload lives on this thread; a local task feeds it into a channel the
    // (thread-safe) request body reads, with back-pressure from the bounded channel.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    out = out.body(reqwest::Body::wrap_stream(body));
    let answer = out.send().await.map_err(|e| {
        tracing::warn!(error = %e, "cannot forward a write to the primary");
        read_only_error(format!("forwarding to {primary}: {e}"))
    })?;
    app.replica.note_contact();
    if let Some(pos) = answer.headers().get(POSITION_HEADER).and_then(|v| v.to_str().ok())
        && let Some((generation, txid)) = Applied::parse_header(pos)
    {
        let wait = Duration::from_millis(u64::from(app.replica.config.read_your_writes_wait_ms));
        if !app.replica.wait_applied(&generation, txid, wait).await {
            tracing::info!(position = pos, "answering a forwarded write before it was replicated here");
        }
    }
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut res = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if let Ok(n) = header::HeaderName::from_bytes(name.as_str().as_bytes())
            && !hop_by_hop(&n)
            && n.as_str() != POSITION_HEADER
            && let Ok(v) = header::HeaderValue::from_bytes(value.as_bytes())
        {
            res.append_header((n, v));
        }
    }
    Ok(res.streaming(answer.bytes_stream()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_state_changes_are_forwarded() {
        assert!(is_write(&Method::POST, "/login"));
        assert!(is_write(&Method::PATCH, "/api/v1/uploads/abc"));
        assert!(is_write(&Method::DELETE, "/api/v1/media/3"));
        assert!(!is_write(&Method::GET, "/media/3"));
        assert!(!is_write(&Method::HEAD, "/api/v1/uploads/abc"));
        assert!(!is_write(&Method::POST, "/replication/v1/touch"));
    }
}
