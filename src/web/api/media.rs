//! Media items over JSON: the single-request upload for scripts, an item's details and its
//! original file (ranges, `Repr-Digest`, never rendered by the browser as a page).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

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
use crate::web::ranges;
use crate::web::{Access, Endpoint, get, post};

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
pub async fn visible_item(
    app: &App,
    user: Option<&CurrentUser>,
    id: MediaId,
) -> Result<Arc<MediaItem>, WebError> {
    // This runs for every segment a player fetches: the row is cached for the write generation,
    // and read in place when it can be.
    let generation = app.db.known_generation();
    let item = match app.caches.item(id, generation) {
        Some(item) => item,
        None => {
            let item = app.db.read_point(move |c| media::get_row(c, id)).await?.map(Arc::new);
            app.caches.put_item(id, generation, item.clone());
            item
        }
    };
    let item = item.ok_or_else(WebError::not_found)?;
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

/// [`visible_item`] from the caches alone, for a listed item (processing or ready) and a
/// signed-in person: `None` when anything is not cached or the answer is not a plain "yes", and
/// the caller takes the long way. The caller has counted other processes' commits for this
/// request ([`crate::db::Db::generation`]).
pub fn cached_listed_item(
    app: &App,
    user: &crate::accounts::users::User,
    id: MediaId,
) -> Option<Arc<MediaItem>> {
    let generation = app.db.known_generation();
    let item = app.caches.item(id, generation)??;
    let access = app.caches.access(&Some((user.id, user.is_admin)), generation)?;
    let listed = matches!(item.status, MediaStatus::Processing | MediaStatus::Ready);
    (listed && access.can(item.category_id, Role::View)).then_some(item)
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
    let mut json = serde_json::to_value(&*item).map_err(WebError::internal)?;
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
    let plan = ranges::plan(&req, size, &etag);
    let mut res = HttpResponse::build(StatusCode::OK);
    res.insert_header(("Repr-Digest", format!("sha-256=:{}:", hash.to_base64())))
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
    let start = match plan {
        ranges::Plan::Send { start, .. } => start,
        _ => return Ok(ranges::respond(res, plan, file, size, &etag)),
    };
    if start == 0 {
        // Once per download, not per seek of a player.
        let event = match &user {
            Some(u) => u.actor().event("media.downloaded"),
            None => audit::Event::new("media.downloaded").addr(&crate::web::auth::client_addr(&req)),
        }
        .target("media", item.id, &item.title);
        crate::replica::audit::record_access(&app, event, None).await?;
    }
    res.content_type(served_content_type(item.mime.as_deref()));
    Ok(ranges::respond(res, plan, file, size, &etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_never_pages() {
        assert_eq!(served_content_type(Some("text/html")), "application/octet-stream");
        assert_eq!(served_content_type(Some("image/svg+xml")), "application/octet-stream");
        assert_eq!(served_content_type(Some("image/png")), "image/png");
        assert_eq!(served_content_type(Some("application/pdf")), "application/pdf");
        assert_eq!(served_content_type(None), "application/octet-stream");
    }
}
