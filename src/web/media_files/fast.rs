//! The segments of a playing video, answered before actix's router and middleware.
//!
//! A player fetches a segment every few seconds per viewer, and on a plain HTTP/1.1 connection
//! the kernel sends its bytes (`sendfile`); what is left is the request's way through the web
//! stack — routing over every pattern, six middleware layers, extractors — which costs more
//! CPU than the rest of the answer. The sendfile server ([`crate::web::sendfile::server`]) asks
//! [`answer`] first, and this module answers only when everything the full pipeline would
//! consult is already cached: the session (live, no renewal due, no password change pending),
//! the item (listed: processing or ready) and the person's access (view on its category).
//! Anything else — a cache miss, a bearer token, a signed URL, a query string, a missing file,
//! an error — returns `None`, and the request takes the long way, which has the same rules and
//! says what went wrong. The answer carries what the long way adds: the security headers, the
//! request's metrics and log line.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::BoxBody;
use actix_web::http::Method;

use super::{answer_for, media_dir, rung_file_kind};
use crate::App;
use crate::db::ids::MediaId;
use crate::web::middleware::{add_security_headers, record};
use crate::web::sendfile::Slot;
use crate::web::{api, auth, ranges};

/// The route the answers are counted under, as the router names it.
const PATTERN: &str = "/media/{id}/hls/{rung}/{file}";

/// The answer to `req` when it is a rung file (segment, init segment, playlist) that may be
/// served from cached facts alone; `None` sends it through the full pipeline.
pub fn answer(app: &App, req: &actix_http::Request) -> Option<actix_http::Response<BoxBody>> {
    let start = Instant::now();
    if req.method() != Method::GET || req.uri().query().is_some() {
        return None;
    }
    let slot = req.conn_data::<Slot>()?.clone();
    let (id, rung, name) = rung_path(req.path())?;
    let kind = rung_file_kind(rung, name)?;
    // Commits by the command line count before anything cached is trusted, as for every
    // request (see `auth::authenticate`).
    app.db.generation();
    let session = auth::cached_session(app, req.headers())?;
    let item = api::media::cached_listed_item(app, &session.user, id)?;
    let path = media_dir(&app.config.data_dir, item.id).join("hls").join(rung).join(name);
    let cond = ranges::Conditions::from_headers(req.headers());
    let prepared = ranges::prepare_for(&path, &cond, true).ok()??;
    let mut res: actix_http::Response<BoxBody> =
        ranges::respond_prepared_via(answer_for(kind), prepared, Some(slot)).into();
    add_security_headers(res.headers_mut(), app.is_https());
    record("GET", PATTERN, res.status().as_u16(), start);
    Some(res)
}

/// `/media/{id}/hls/{rung}/{file}` with a plain decimal id; anything else (percent-escapes,
/// extra segments) is left to the router.
fn rung_path(path: &str) -> Option<(MediaId, &str, &str)> {
    let mut parts = path.strip_prefix("/media/")?.split('/');
    let (id, hls, rung, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || hls != "hls" || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((MediaId(id.parse().ok()?), rung, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_rung_paths_are_taken() {
        assert_eq!(
            rung_path("/media/12/hls/720p/seg-00001.m4s"),
            Some((MediaId(12), "720p", "seg-00001.m4s"))
        );
        for path in [
            "/media/12/hls/720p",
            "/media/12/hls/720p/seg-00001.m4s/x",
            "/media/%31/hls/720p/seg-00001.m4s",
            "/media/-1/hls/720p/seg-00001.m4s",
            "/media//hls/720p/seg-00001.m4s",
            "/media/12/dash/720p/seg-00001.m4s",
            "/media/99999999999999999999/hls/720p/seg-00001.m4s",
            "/api/v1/media/12/hls/720p/seg-00001.m4s",
        ] {
            assert_eq!(rung_path(path), None, "{path}");
        }
    }
}
