//! Cross-cutting HTTP behaviour: security headers on every response, one log line and metrics
//! per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::App;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = req.app_data::<web::Data<App>>().is_some_and(|a| a.is_https());
    let mut res = next.call(req).await?;
    add_security_headers(res.headers_mut(), https);
    Ok(res)
}

/// The headers every answer carries (see [`security_headers`]).
pub fn add_security_headers(h: &mut HeaderMap, https: bool) {
    // A handler that sets its own policy owns framing too: only `/embed/{id}` does, to let the
    // configured sites frame it (X-Frame-Options cannot name other origins, so it is left out).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Route pattern (`/admin/users/{id}`), not the raw path, so metrics stay bounded and no ids or
/// query strings (which may hold a setup token) reach the logs.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let res = next.call(req).await?;
    let pattern = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    record(method.as_str(), &pattern, res.status().as_u16(), start);
    Ok(res)
}

/// The metrics and the log line of one answered request (see [`observe`]).
pub fn record(method: &str, pattern: &str, status: u16, start: Instant) {
    let elapsed = start.elapsed();
    metrics::counter!("reelbox_http_requests_total", "method" => method.to_string(), "route" => pattern.to_string(), "status" => status.to_string()).increment(1);
    metrics::histogram!("reelbox_http_request_duration_seconds", "route" => pattern.to_string())
        .record(elapsed.as_secs_f64());
    tracing::info!(target: "reelbox::http", %method, route = %pattern, status, ms = elapsed.as_millis() as u64, "request");
}
