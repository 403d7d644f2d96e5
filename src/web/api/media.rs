//! Media items over JSON: the single-request upload for scripts, an item's details and its
//! original file (ranges, `Repr-Digest`, never rendered by the browser as a page).

use std::io::{Read, Seek, SeekFrom};

use actix_web::body::SizedStream;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::Stream;
use serde::Deserialize;

use crate::App;
use crate::accounts::grants::Role;
use crate::db::ids::{CategoryId, MediaId};
use crate::ingest::detect::{Disposition, content_disposition};
use crate::ingest::simple::{self, SimpleUpload};
use crate::ingest::{IngestError, parse_sha256_digest};
use crate::insights::audit;
use crate::library::media::{self, MediaItem, MediaStatus};
use crate::store::Sha256;
use crate::web::auth::{CurrentUser, Viewer, require_role};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, get, post};

/// Bytes read from disk per chunk when serving a file.
const SERVE_CHUNK: usize = 256 * 1024;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        post(
            "/api/v1/media",
            Access::Category(Role::Contribute),
            "Upload a file in one request: ?category=ID&filename=NAME[&title=T], the file as the body, \
             `Content-Digest: sha-256=:BASE64:` required (RFC 9530). 201 with the item; 422 on a hash mismatch",
            upload,
        ),
        get(
            "/api/v1/media/{id}",
            Access::Category(Role::View),
            "One media item: id, title, kind, status, sha256, size, category_id, ...",
            one,
        ),
        post(
            "/api/v1/media/{id}/retry",
            Access::Category(Role::Edit),
            "Convert a failed video or audio item again (its owner, edit on the category, or an \
             administrator); 202 with the new playback state, 409 when it is not failed",
            retry,
        ),
        get(
            "/api/v1/media/{id}/original",
            Access::Category(Role::View),
            "The original file as uploaded (Range, If-Range; ETag and Repr-Digest carry its SHA-256)",
            original,
        ),
        Endpoint::new(
            actix_web::http::Method::PATCH,
            "/api/v1/media/{id}",
            Access::Category(Role::Edit),
            "Change an item's details: {title?, description?, tags?, category_id?} (its owner, or edit on \
             the category; moving needs contribute on the target)",
            patch,
        ),
        get(
            "/api/v1/media/{id}/thumbnail/{size}",
            Access::Category(Role::View),
            "An image's JPEG thumbnail, 320 or 960 pixels on its longest edge (404 when there is none)",
            crate::web::pages::media::thumbnail,
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaPatch {
    title: Option<String>,
    description: Option<String>,
    tags: Option<String>,
    category_id: Option<CategoryId>,
}

async fn patch(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    body: web::Json<MediaPatch>,
) -> Result<HttpResponse, WebError> {
    use crate::web::pages::media::{apply_edit, editable_item};
    let item = editable_item(&app, &user, path.into_inner()).await?;
    let b = body.into_inner();
    let edit = crate::library::catalogue::MediaEdit {
        title: b.title,
        description: b.description,
        tags: b.tags,
        category_id: b.category_id,
    };
    Ok(HttpResponse::Ok().json(apply_edit(&app, &user, &item, edit).await?))
}

#[derive(Deserialize)]
pub struct OriginalQuery {
    /// Ask for `inline` (the item page's PDF frame and image link) instead of a download. Only
    /// kinds a browser shows without running anything are ever inline.
    #[serde(default)]
    inline: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    category: CategoryId,
    filename: String,
    title: Option<String>,
}

fn header_str(req: &HttpRequest, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn upload(
    app: web::Data<App>,
    user: CurrentUser,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let q = query.into_inner();
    require_role(&app, Some(&user), q.category, Role::Contribute).await?;
    let expected = parse_sha256_digest(header_str(&req, "content-digest").unwrap_or(""))?;
    let declared_len =
        match header_str(&req, header::CONTENT_LENGTH) {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                WebError::from(IngestError::BadRequest("Content-Length is not a number".into()))
            })?),
            None => None,
        };
    let up = SimpleUpload {
        category: q.category,
        filename: q.filename,
        title: q.title.unwrap_or_default(),
        expected,
        declared_len,
    };
    let item = simple::upload(&app, &user.actor(), up, body).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/media/{}", item.id)))
        .json(item))
}

/// The item, if `user` may see it: view on its category, and for items not (yet) listed the
/// right role — an unfinished upload its owner and editors, a recycled item managers, an
/// archived one administrators. Anything else is reported as missing.
pub async fn visible_item(app: &App, user: Option<&CurrentUser>, id: MediaId) -> Result<MediaItem, WebError> {
    let item = app.db.read(move |c| media::get(c, id)).await?.ok_or_else(WebError::not_found)?;
    let access = match require_role(app, user, item.category_id, Role::View).await {
        Ok(a) => a,
        // Forbidden would reveal the item exists; view on the category is all that was missing.
        Err(e) if e.status == StatusCode::FORBIDDEN => return Err(WebError::not_found()),
        Err(e) => return Err(e),
    };
    let owner = user.is_some_and(|u| Some(u.user.id) == item.owner_id);
    let may = match item.status {
        MediaStatus::Processing | MediaStatus::Ready => true,
        MediaStatus::Uploading | MediaStatus::Failed => owner || access.can(item.category_id, Role::Edit),
        MediaStatus::Recycled => access.can(item.category_id, Role::Manage),
        MediaStatus::Archived => access.is_admin,
    };
    if may { Ok(item) } else { Err(WebError::not_found()) }
}

async fn one(
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = visible_item(&app, viewer.0.as_ref(), path.into_inner()).await?;
    let id = item.id;
    let playback = app.db.read(move |c| crate::transcode::playback(c, id)).await?;
    let damaged = app.db.read(move |c| crate::library::scrub::damaged(c, id)).await?;
    let mut json = serde_json::to_value(&item).map_err(WebError::internal)?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("playable".into(), playback.playable.into());
        obj.insert("progress".into(), playback.progress.into());
        obj.insert("eta_seconds".into(), serde_json::to_value(playback.eta_seconds).unwrap_or_default());
        obj.insert("renditions".into(), serde_json::to_value(&playback.renditions).unwrap_or_default());
        obj.insert("error".into(), serde_json::to_value(&playback.error).unwrap_or_default());
        obj.insert("transcode_state".into(), playback.state.as_str().into());
        // The integrity scrub found the original damaged: `{since, problem, detail}`, else null.
        obj.insert("damaged".into(), serde_json::to_value(&damaged).unwrap_or_default());
    }
    Ok(HttpResponse::Ok().json(json))
}

/// Queue a failed video or audio item for conversion again (its owner, edit on the category,
/// or an administrator).
async fn retry(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = crate::web::pages::media::editable_item(&app, &user, path.into_inner()).await?;
    if !matches!(
        item.kind,
        Some(crate::library::media::MediaKind::Video | crate::library::media::MediaKind::Audio)
    ) || !matches!(item.status, MediaStatus::Failed | MediaStatus::Processing)
        || item.sha256.is_none()
    {
        return Err(crate::transcode::TranscodeError::WrongState(
            "only a video or audio item that failed can be retried",
        )
        .into());
    }
    crate::transcode::worker::retry(&app, item.id).await?;
    let event = user.actor().event("media.transcode_retried").target("media", item.id, &item.title);
    let now = app.clock.now();
    app.db.write(move |c| audit::record(c, &event, now)).await?;
    let id = item.id;
    let playback = app.db.read(move |c| crate::transcode::playback(c, id)).await?;
    Ok(HttpResponse::Accepted().json(playback))
}

/// What the browser is told the file is. Only types a browser shows without running anything
/// keep their type; everything else (and SVG, which may carry script) is a download of bytes.
pub fn served_content_type(mime: Option<&str>) -> &str {
    match mime {
        Some("image/svg+xml") => "application/octet-stream",
        Some(m)
            if m.starts_with("image/")
                || m.starts_with("video/")
                || m.starts_with("audio/")
                || m == "application/pdf" =>
        {
            m
        }
        _ => "application/octet-stream",
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// One `bytes=` range against a file of `size` bytes. Several ranges or a malformed header are
/// answered with the whole file, which RFC 9110 allows.
fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeRequest::Whole,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return RangeRequest::Whole,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else { return RangeRequest::Whole };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                return RangeRequest::Unsatisfiable;
            }
            (start, end)
        }
    };
    if size == 0 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start: parsed.0, end: parsed.1 }
}

fn file_stream(
    mut file: std::fs::File,
    start: u64,
    len: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; (left as usize).min(SERVE_CHUNK)];
            match file.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::ErrorKind::UnexpectedEof.into()));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

async fn original(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<MediaId>,
    query: web::Query<OriginalQuery>,
) -> Result<HttpResponse, WebError> {
    let user = viewer.0;
    let item = visible_item(&app, user.as_ref(), path.into_inner()).await?;
    let Some(hex) = item.sha256.as_deref().filter(|_| item.status.has_original()) else {
        return Err(WebError::not_found());
    };
    let hash = Sha256::from_hex(hex).map_err(WebError::internal)?;
    let store = app.store.clone();
    let (file, size) = tokio::task::spawn_blocking(move || {
        let file = store.open_blob(&hash)?;
        let size = file.metadata().map_err(|e| crate::store::StoreError::io("reading a blob", e))?.len();
        Ok::<_, crate::store::StoreError>((file, size))
    })
    .await
    .map_err(WebError::internal)??;

    let etag = format!("\"{hex}\"");
    let if_range_ok = header_str(&req, header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range =
        if if_range_ok { parse_range(header_str(&req, header::RANGE), size) } else { RangeRequest::Whole };
    let mut res = HttpResponse::build(StatusCode::OK);
    res.insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("Repr-Digest", format!("sha-256=:{}:", hash.to_base64())))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(
                match (query.inline, item.kind, served_content_type(item.mime.as_deref())) {
                    (true, Some(kind), served) if served != "application/octet-stream" => {
                        crate::ingest::detect::disposition_for(kind, served)
                    }
                    _ => Disposition::Attachment,
                },
                &item.original_filename,
            ),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    let (start, len) = match range {
        RangeRequest::Unsatisfiable => {
            return Ok(res
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish());
        }
        RangeRequest::Whole => (0, size),
        RangeRequest::Part { start, end } => {
            res.status(StatusCode::PARTIAL_CONTENT)
                .insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            (start, end - start + 1)
        }
    };
    if start == 0 {
        // Once per download, not per seek of a player.
        let event = match &user {
            Some(u) => u.actor().event("media.downloaded"),
            None => audit::Event::new("media.downloaded").addr(&crate::web::auth::client_addr(&req)),
        }
        .target("media", item.id, &item.title);
        let now = app.clock.now();
        app.db.write(move |c| audit::record(c, &event, now)).await?;
    }
    res.content_type(served_content_type(item.mime.as_deref()));
    Ok(res.body(SizedStream::new(len, Box::pin(file_stream(file, start, len)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeRequest::Part { start: 0, end: 4 });
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeRequest::Part { start: 5, end: 9 });
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeRequest::Part { start: 7, end: 9 });
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeRequest::Part { start: 0, end: 9 });
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeRequest::Part { start: 8, end: 9 });
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
    }

    #[test]
    fn downloads_are_never_pages() {
        assert_eq!(served_content_type(Some("text/html")), "application/octet-stream");
        assert_eq!(served_content_type(Some("image/svg+xml")), "application/octet-stream");
        assert_eq!(served_content_type(Some("image/png")), "image/png");
        assert_eq!(served_content_type(Some("application/pdf")), "application/pdf");
        assert_eq!(served_content_type(None), "application/octet-stream");
    }
}
