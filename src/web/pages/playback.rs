//! Playback around the item page: the player's view (what is published, captions, where the
//! person stopped, a signed URL token), `/embed/{id}` for iframes, and saving the position.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::player::{CaptionRow, CaptionTrackView, PlayerView, embed_page};
use serde::Deserialize;

use crate::App;
use crate::accounts::grants::Role;
use crate::db::ids::MediaId;
use crate::library::media::{MediaItem, MediaKind, MediaStatus};
use crate::library::{captions, positions};
use crate::transcode::{self, JobState};
use crate::web::api::media::visible_item;
use crate::web::auth::{CurrentUser, Viewer};
use crate::web::error::WebError;
use crate::web::media_files::{issue_token, media_dir};
use crate::web::middleware::CSP;
use crate::web::{Access, Endpoint, assets, get};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get(
            "/embed/{id}",
            Access::Category(Role::View),
            "The player alone, for iframes on the sites in `embed.allowed_origins`; people who are not \
             signed in (or whose cookie the browser does not send) get a sign-in prompt",
            embed,
        ),
        crate::web::Endpoint::new(
            actix_web::http::Method::PUT,
            "/api/v1/media/{id}/position",
            Access::Category(Role::View),
            "Save where the caller stopped watching: {\"seconds\": N} (resumed next time; under 5 s clears it)",
            save_position,
        ),
    ]
}

/// Which renditions are on disk (the transcoder publishes each file whole, by rename).
#[derive(Debug, Default, Clone, Copy)]
pub struct Published {
    pub master: bool,
    pub mp4: bool,
    pub m4a: bool,
    pub poster: bool,
    pub sprite: bool,
}

pub async fn published(app: &App, id: MediaId) -> Result<Published, WebError> {
    let dir = media_dir(&app.config.data_dir, id);
    tokio::task::spawn_blocking(move || Published {
        master: dir.join("hls/master.m3u8").is_file(),
        mp4: dir.join("download.mp4").is_file(),
        m4a: dir.join("download.m4a").is_file(),
        poster: dir.join("poster.jpg").is_file(),
        sprite: dir.join("sprite.vtt").is_file() && dir.join("sprite.jpg").is_file(),
    })
    .await
    .map_err(WebError::internal)
}

/// The player for a video or audio item, as `user` sees it; `None` for other kinds.
pub async fn player_view(
    app: &App,
    user: Option<&CurrentUser>,
    item: &MediaItem,
    can_retry: bool,
) -> Result<Option<PlayerView>, WebError> {
    let audio_only = match item.kind {
        Some(MediaKind::Video) => false,
        Some(MediaKind::Audio) => true,
        _ => return Ok(None),
    };
    if !matches!(item.status, MediaStatus::Processing | MediaStatus::Ready) {
        return Ok(None);
    }
    let id = item.id;
    let files = published(app, id).await?;
    let token = match user {
        Some(u) => issue_token(app, u, id)?,
        None => String::new(),
    };
    let with_token = |path: String| if token.is_empty() { path } else { format!("{path}?t={token}") };
    let who = user.map(|u| u.user.id);
    let (tracks, resume_at, job) = app
        .db
        .read(move |c| {
            let tracks = captions::list(c, id)?;
            let at = match who {
                Some(u) => positions::get(c, u, id)?,
                None => 0.0,
            };
            Ok::<_, WebError>((tracks, at, transcode::playback(c, id)?.state))
        })
        .await?;
    // Until the transcoder has published a progressive file, the original plays if the
    // browser can (most phone videos are H.264 MP4 already).
    let download = if files.mp4 && !audio_only {
        Some(with_token(format!("/media/{id}/download.mp4")))
    } else if files.m4a && audio_only {
        Some(with_token(format!("/media/{id}/download.m4a")))
    } else if user.is_some() || item.sha256.is_some() {
        Some(format!("/api/v1/media/{id}/original"))
    } else {
        None
    };
    Ok(Some(PlayerView {
        id: id.0,
        title: item.title.clone(),
        audio_only,
        master: files.master.then(|| with_token(format!("/media/{id}/hls/master.m3u8"))),
        download,
        poster: files.poster.then(|| with_token(format!("/media/{id}/poster.jpg"))),
        sprite: files.sprite.then(|| with_token(format!("/media/{id}/sprite.vtt"))),
        captions: tracks
            .iter()
            .map(|t| CaptionTrackView {
                lang: t.lang.clone(),
                label: t.label.clone(),
                src: with_token(format!("/media/{id}/captions/{}.vtt", t.lang)),
            })
            .collect(),
        token: token.clone(),
        resume_at,
        // Follow the job while it works (and show its error with Retry when it failed).
        poll: !matches!(job, JobState::Done | JobState::None)
            || (!files.master && item.status == MediaStatus::Processing),
        can_retry,
        save_position: user.is_some_and(|u| u.session.is_some()),
    }))
}

/// The caption rows for the item page's manager.
pub async fn caption_rows(app: &App, id: MediaId) -> Result<Vec<CaptionRow>, WebError> {
    let tracks = app.db.read(move |c| captions::list(c, id)).await?;
    Ok(tracks.into_iter().map(|t| CaptionRow { lang: t.lang, label: t.label }).collect())
}

/// The address people reach this server at, for code pasted into other sites.
pub fn public_base(app: &App, req: &HttpRequest) -> String {
    match &app.config.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

pub fn embed_snippet(app: &App, req: &HttpRequest, item: &MediaItem) -> String {
    let title = item.title.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    format!(
        "<iframe src=\"{}/embed/{}\" title=\"{title}\" width=\"640\" height=\"400\" allow=\"fullscreen; picture-in-picture\" allowfullscreen></iframe>",
        public_base(app, req),
        item.id
    )
}

fn embed_csp(app: &App) -> String {
    CSP.replace(
        "frame-ancestors 'self'",
        &format!("frame-ancestors {}", app.config.embed.allowed_origins.join(" ")),
    )
}

async fn embed(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let user = viewer.0.as_ref();
    let (css, js) = (assets::url("app.css"), assets::url("player.js"));
    let sign_in = format!("{}/media/{id}", public_base(&app, &req));
    let mut res = HttpResponse::build(StatusCode::OK);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, embed_csp(&app)))
        .insert_header((header::CACHE_CONTROL, "private, no-store"));
    let item = match visible_item(&app, user, id).await {
        Ok(item) => item,
        // Not signed in here: inside another site's iframe the SameSite=Lax session cookie is
        // not sent, so this is also what signed-in people see there (see the README).
        Err(e) if user.is_none() && e.status == StatusCode::UNAUTHORIZED => {
            let msg = "Sign in to reelbox to watch this video.";
            return Ok(res.body(embed_page(&css, &js, "Sign in to watch", None, &sign_in, msg).into_string()));
        }
        Err(e) => return Err(e),
    };
    let Some(view) = player_view(&app, user, &item, false).await? else { return Err(WebError::not_found()) };
    Ok(res.body(embed_page(&css, &js, &item.title, Some(&view), &sign_in, "").into_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    seconds: f64,
}

async fn save_position(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    body: web::Json<Position>,
) -> Result<HttpResponse, WebError> {
    let item = visible_item(&app, Some(&user), path.into_inner()).await?;
    let (who, id, seconds, now) = (user.user.id, item.id, body.seconds, app.clock.now());
    app.db.write_keeping_caches(move |c| positions::set(c, who, id, seconds, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
