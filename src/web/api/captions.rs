//! Captions over HTTP: upload (WebVTT or SRT, converted), list, remove, and the WebVTT file the
//! player's `<track>` elements load. Parsing and storage are `library::captions`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::App;
use crate::accounts::grants::Role;
use crate::db::ids::MediaId;
use crate::library::captions::{self, CaptionError};
use crate::web::api::media::visible_item;
use crate::web::auth::{CurrentUser, Viewer};
use crate::web::error::WebError;
use crate::web::media_files::media_item;
use crate::web::pages::media::editable_item;
use crate::web::{Access, Endpoint, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        post(
            "/api/v1/media/{id}/captions",
            Access::Category(Role::Edit),
            "Add or replace captions: ?lang=CODE[&label=NAME], the WebVTT or SRT file as the body (UTF-8, \
             at most 2 MB; SRT is converted). 201 with {lang, label, url}; 422 with the reason when the \
             file cannot be read (its owner, or edit on the category)",
            upload,
        ),
        get(
            "/api/v1/media/{id}/captions",
            Access::Category(Role::View),
            "The item's caption tracks: [{lang, label, created_at, url}]",
            list,
        ),
        crate::web::Endpoint::new(
            actix_web::http::Method::DELETE,
            "/api/v1/media/{id}/captions/{lang}",
            Access::Category(Role::Edit),
            "Remove the captions in one language (its owner, or edit on the category)",
            remove,
        ),
        get(
            "/media/{id}/captions/{lang}.vtt",
            Access::Category(Role::View),
            "Captions in one language as WebVTT (session or ?t= signed URL)",
            vtt_file,
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    lang: String,
    label: Option<String>,
}

fn url_of(id: MediaId, lang: &str) -> String {
    format!("/media/{id}/captions/{lang}.vtt")
}

/// The body, refusing more than `limit` bytes without reading them all.
async fn read_limited(mut body: web::Payload, limit: usize) -> Result<Vec<u8>, WebError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| WebError::bad_request("body-unreadable", format!("The upload broke off: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(CaptionError::TooLarge.into());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn upload(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let q = query.into_inner();
    let lang = captions::normalise_lang(&q.lang)?;
    let item = editable_item(&app, &user, path.into_inner()).await?;
    let label = match q.label.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() => l.chars().take(60).collect(),
        _ => captions::default_label(&lang),
    };
    let bytes = read_limited(body, captions::MAX_BYTES).await?;
    let cues =
        tokio::task::spawn_blocking(move || captions::parse(&bytes)).await.map_err(WebError::internal)??;
    let (id, now, actor, title) = (item.id, app.clock.now(), user.actor(), item.title.clone());
    let by = Some(user.user.id);
    let track = app
        .db
        .write(move |c| {
            let tx = c.transaction().map_err(CaptionError::from)?;
            let track = captions::put(&tx, id, &lang, &label, &cues, by, now)?;
            crate::insights::audit::record(
                &tx,
                &actor
                    .event("captions.added")
                    .target("media", id, &title)
                    .detail(format!("{lang}, {} cues", cues.len())),
                now,
            )?;
            tx.commit().map_err(CaptionError::from)?;
            Ok::<_, CaptionError>(track)
        })
        .await?;
    let url = url_of(id, &track.lang);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, url.clone()))
        .json(serde_json::json!({"lang": track.lang, "label": track.label, "url": url})))
}

async fn list(
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = visible_item(&app, viewer.0.as_ref(), path.into_inner()).await?;
    let id = item.id;
    let tracks = app.db.read(move |c| captions::list(c, id)).await?;
    let out: Vec<serde_json::Value> = tracks
        .iter()
        .map(|t| {
            serde_json::json!({
                "lang": t.lang, "label": t.label,
                "created_at": crate::clock::rfc3339(t.created_at), "url": url_of(id, &t.lang),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

async fn remove(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<(MediaId, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, lang) = path.into_inner();
    let lang = captions::normalise_lang(&lang)?;
    let item = editable_item(&app, &user, id).await?;
    let (now, actor, title) = (app.clock.now(), user.actor(), item.title.clone());
    app.db
        .write(move |c| {
            let tx = c.transaction().map_err(CaptionError::from)?;
            captions::remove(&tx, id, &lang)?;
            crate::insights::audit::record(
                &tx,
                &actor.event("captions.removed").target("media", id, &title).detail(lang),
                now,
            )?;
            tx.commit().map_err(CaptionError::from)?;
            Ok::<_, CaptionError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn vtt_file(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<(MediaId, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, lang) = path.into_inner();
    let Ok(lang) = captions::normalise_lang(&lang) else { return Err(WebError::not_found()) };
    let (item, _, _) = media_item(&app, &req, viewer, id).await?;
    let id = item.id;
    let (text, at) =
        app.db.read(move |c| captions::vtt(c, id, &lang)).await?.ok_or_else(WebError::not_found)?;
    let etag = format!("\"c{at:x}-{:x}\"", text.len());
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = HttpResponse::build(if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK });
    res.insert_header((header::ETAG, etag)).insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if fresh {
        return Ok(res.finish());
    }
    Ok(res.content_type("text/vtt; charset=utf-8").body(text))
}
