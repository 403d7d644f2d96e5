//! Every byte of an item's renditions — HLS playlists and fMP4 segments, the progressive
//! download, the poster and the thumbnail sprite — served only to people who may view the item,
//! from the files the transcoder publishes under `<data>/media/<id>/` (see `transcode`).
//!
//! Rules: the caller is the session (or a bearer token), or for players that cannot send the
//! cookie, a short-lived signed URL ([`signed`]) naming that person and this item. The item must
//! be viewable by them and listed (processing or ready): recycled and archived items serve
//! nothing, even to the managers who can see them. Paths are matched against a fixed pattern
//! (a known rung name, `index.m3u8`, `init.mp4`, `seg-NNNNN.m4s`), so `..`, `.work` or any
//! other name can never reach the file system; directories are never listed.

pub mod fast;
pub mod signed;

use std::path::PathBuf;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::App;
use crate::accounts::grants::Role;
use crate::accounts::users;
use crate::db::ids::MediaId;
use crate::insights::audit;
use crate::library::media::{MediaItem, MediaStatus};
use crate::web::api::media::visible_item;
use crate::web::auth::{CurrentUser, Viewer};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, get};
use crate::web::{ranges, sendfile};
use signed::TokenCheck;

/// Segments and init segments never change once published (a rung directory is renamed into
/// place whole), so private caches may keep them.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// Playlists, posters, downloads: revalidated with their ETag, since a re-run may replace them.
const REVALIDATE: &str = "private, no-cache";
/// One `playback.started` per person and item within this many seconds.
const PLAYBACK_AUDIT_WINDOW: i64 = 3600;

pub const RUNGS: [&str; 6] = ["1080p", "720p", "480p", "360p", "240p", "audio"];

pub fn endpoints() -> Vec<Endpoint> {
    let view = Access::Category(Role::View);
    vec![
        get(
            "/media/{id}/hls/master.m3u8",
            view,
            "HLS master playlist of a playable item (session or ?t= signed URL; private, no-cache)",
            master,
        ),
        get(
            "/media/{id}/hls/{rung}/{file}",
            view,
            "One rung's media playlist (index.m3u8), init segment (init.mp4) or fMP4 segment \
             (seg-NNNNN.m4s); Range, If-Range; segments are immutable",
            rung_file,
        ),
        get("/media/{id}/download.mp4", view, "Progressive MP4 of a video (Range, If-Range)", fixed_file),
        get("/media/{id}/download.m4a", view, "AAC audio of an audio item (Range, If-Range)", fixed_file),
        get("/media/{id}/poster.jpg", view, "Poster frame of a video", fixed_file),
        get("/media/{id}/sprite.jpg", view, "Thumbnail sprite for seek-bar previews", fixed_file),
        get(
            "/media/{id}/sprite.vtt",
            view,
            "WebVTT map of the thumbnail sprite (sprite.jpg#xywh=...)",
            fixed_file,
        ),
    ]
}

pub use crate::transcode::media_dir;

/// What kind of file a (validated) name is, which decides its type and caching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Playlist,
    Init,
    Segment,
    Mp4,
    M4a,
    Jpeg,
    Vtt,
}

impl FileKind {
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Playlist => "application/vnd.apple.mpegurl",
            FileKind::Init | FileKind::Mp4 => "video/mp4",
            FileKind::Segment => "video/iso.segment",
            FileKind::M4a => "audio/mp4",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Vtt => "text/vtt; charset=utf-8",
        }
    }
    fn cache(self) -> &'static str {
        match self {
            FileKind::Init | FileKind::Segment => IMMUTABLE,
            _ => REVALIDATE,
        }
    }
}

/// A rung file name as the contract names them, or `None` for anything else.
pub fn rung_file_kind(rung: &str, file: &str) -> Option<FileKind> {
    if !RUNGS.contains(&rung) {
        return None;
    }
    match file {
        "index.m3u8" => Some(FileKind::Playlist),
        "init.mp4" => Some(FileKind::Init),
        f => {
            let digits = f.strip_prefix("seg-")?.strip_suffix(".m4s")?;
            (digits.len() >= 5 && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then_some(FileKind::Segment)
        }
    }
}

fn fixed_kind(name: &str) -> Option<FileKind> {
    Some(match name {
        "download.mp4" => FileKind::Mp4,
        "download.m4a" => FileKind::M4a,
        "poster.jpg" | "sprite.jpg" => FileKind::Jpeg,
        "sprite.vtt" => FileKind::Vtt,
        _ => return None,
    })
}

/// The `t` parameter of the query string, if any.
fn token_param(req: &HttpRequest) -> Option<String> {
    req.query_string().split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "t").then(|| urlencoding::decode(v).map(|c| c.into_owned()).unwrap_or_default())
    })
}

/// Who is asking and the item, if they may fetch its media files. A signed URL stands in for
/// the session only when there is none; it never widens what its person may see.
pub async fn media_item(
    app: &App,
    req: &HttpRequest,
    viewer: Viewer,
    id: MediaId,
) -> Result<(std::sync::Arc<MediaItem>, Option<CurrentUser>, Option<String>), WebError> {
    let mut user = viewer.0;
    let mut token = None;
    if user.is_none()
        && let Some(t) = token_param(req)
    {
        let key = app.media_url_key.get(&app.config.data_dir).map_err(WebError::internal)?;
        let user_id = match signed::verify(&key, &t, id, app.clock.now()) {
            TokenCheck::Valid(u) => u,
            TokenCheck::Expired => return Err(link_refused("This media link has expired. Reload the page.")),
            TokenCheck::Invalid => return Err(link_refused("This media link is not valid.")),
        };
        let found = app.db.read(move |c| users::get(c, user_id)).await?;
        let Some(found) = found.filter(|u| !u.disabled) else {
            return Err(link_refused("This media link is no longer valid."));
        };
        user = Some(CurrentUser {
            user: found,
            session: None,
            token: None,
            addr: crate::web::auth::client_addr(req),
        });
        token = Some(t);
    }
    let item = visible_item(app, user.as_ref(), id).await?;
    if !matches!(item.status, MediaStatus::Processing | MediaStatus::Ready) {
        return Err(WebError::not_found());
    }
    Ok((item, user, token))
}

fn link_refused(message: &'static str) -> WebError {
    // Its own code, so pages do not turn it into a sign-in redirect: a player asked for bytes.
    WebError::new(StatusCode::UNAUTHORIZED, "media-link-invalid", message)
}

/// Issue a signed URL token for `user` and `item` (pages put it on the player).
pub fn issue_token(app: &App, user: &CurrentUser, item: MediaId) -> Result<String, WebError> {
    let key = app.media_url_key.get(&app.config.data_dir).map_err(WebError::internal)?;
    Ok(signed::sign(&key, item, user.user.id, app.clock.now() + signed::TOKEN_LIFETIME_SECS))
}

/// The start of a 200 answer with a file of `kind`: its type and caching.
fn answer_for(kind: FileKind) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::build(StatusCode::OK);
    res.content_type(kind.content_type()).insert_header((header::CACHE_CONTROL, kind.cache()));
    res
}

async fn serve(
    req: &HttpRequest,
    path: PathBuf,
    kind: FileKind,
    token: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let res = answer_for(kind);
    if kind == FileKind::Playlist
        && let Some(token) = token
    {
        return playlist_with_token(req, res, path, token).await;
    }
    let cond = ranges::Conditions::of(req);
    // Plain HTTP/1.1 connections send the file with sendfile; nothing is read here then.
    let slot = if req.method() == actix_web::http::Method::GET { sendfile::slot_of(req) } else { None };
    let prepared = if slot.is_some() {
        // With sendfile only the file's open and size are needed here — two system calls on a
        // page-cached directory entry, done in place as nginx does, rather than a round trip
        // through the blocking pool for every segment. Reading the bytes is the kernel's job.
        ranges::prepare_for(&path, &cond, true)
            .map_err(|e| WebError::internal(format!("{}: {e}", path.display())))
    } else {
        tokio::task::spawn_blocking(move || {
            ranges::prepare_for(&path, &cond, false).map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)
    }?
    .ok_or_else(WebError::not_found)?;
    Ok(ranges::respond_prepared_via(res, prepared, slot))
}

/// A playlist fetched with a signed URL: relative URIs do not inherit the query string, so
/// every URI in it gets the same token, or the segments would be refused.
async fn playlist_with_token(
    req: &HttpRequest,
    mut res: actix_web::HttpResponseBuilder,
    path: PathBuf,
    token: &str,
) -> Result<HttpResponse, WebError> {
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await
    .map_err(WebError::internal)?
    .map_err(|e| WebError::internal(format!("{shown}: {e}")))?;
    let Some(text) = read else { return Err(WebError::not_found()) };
    let body = add_token(&text, token);
    let etag = format!("\"t{:x}\"", {
        use sha2::Digest;
        let d = sha2::Sha256::digest(body.as_bytes());
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    });
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    res.insert_header((header::ETAG, etag));
    if matches {
        return Ok(res.status(StatusCode::NOT_MODIFIED).finish());
    }
    Ok(res.body(body))
}

/// Append `?t=TOKEN` to every URI of a playlist: URI lines and `URI="..."` attributes.
pub fn add_token(playlist: &str, token: &str) -> String {
    let t = urlencoding::encode(token);
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.push_str(line);
        } else if !trimmed.starts_with('#') {
            let sep = if trimmed.contains('?') { '&' } else { '?' };
            out.push_str(&format!("{trimmed}{sep}t={t}"));
        } else if let Some(at) = line.find("URI=\"") {
            let start = at + 5;
            match line[start..].find('"') {
                Some(len) => {
                    let uri = &line[start..start + len];
                    let sep = if uri.contains('?') { '&' } else { '?' };
                    out.push_str(&format!("{}{uri}{sep}t={t}{}", &line[..start], &line[start + len..]));
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `playback.started`, once per person (or address) and item per hour, not per request; on a
/// replica it is queued for the primary.
async fn audit_playback(
    app: &App,
    req: &HttpRequest,
    user: Option<&CurrentUser>,
    item: &MediaItem,
) -> Result<(), WebError> {
    let event = match user {
        Some(u) => u.actor().event("playback.started"),
        None => audit::Event::new("playback.started").addr(&crate::web::auth::client_addr(req)),
    }
    .target("media", item.id, &item.title);
    crate::replica::audit::record_access(app, event, Some(PLAYBACK_AUDIT_WINDOW)).await?;
    Ok(())
}

async fn master(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let (item, user, token) = media_item(&app, &req, viewer, path.into_inner()).await?;
    let file = media_dir(&app.config.data_dir, item.id).join("hls").join("master.m3u8");
    let res = serve(&req, file, FileKind::Playlist, token.as_deref()).await?;
    if res.status() == StatusCode::OK {
        audit_playback(&app, &req, user.as_ref(), &item).await?;
    }
    Ok(res)
}

async fn rung_file(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<(MediaId, String, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, rung, name) = path.into_inner();
    let Some(kind) = rung_file_kind(&rung, &name) else { return Err(WebError::not_found()) };
    let (item, _, token) = media_item(&app, &req, viewer, id).await?;
    let file = media_dir(&app.config.data_dir, item.id).join("hls").join(&rung).join(&name);
    serve(&req, file, kind, token.as_deref()).await
}

async fn fixed_file(
    app: web::Data<App>,
    viewer: Viewer,
    req: HttpRequest,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let name = req.path().rsplit('/').next().unwrap_or_default().to_string();
    let Some(kind) = fixed_kind(&name) else { return Err(WebError::not_found()) };
    let (item, user, token) = media_item(&app, &req, viewer, path.into_inner()).await?;
    let file = media_dir(&app.config.data_dir, item.id).join(&name);
    let starts_playback = matches!(kind, FileKind::Mp4 | FileKind::M4a)
        && req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|r| r.trim() == "bytes=0-");
    let res = serve(&req, file, kind, token.as_deref()).await?;
    if starts_playback && res.status().is_success() {
        audit_playback(&app, &req, user.as_ref(), &item).await?;
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_contract_names_are_served() {
        assert_eq!(rung_file_kind("720p", "index.m3u8"), Some(FileKind::Playlist));
        assert_eq!(rung_file_kind("audio", "init.mp4"), Some(FileKind::Init));
        assert_eq!(rung_file_kind("240p", "seg-00001.m4s"), Some(FileKind::Segment));
        assert_eq!(rung_file_kind("240p", "seg-123456789.m4s"), Some(FileKind::Segment));
        for (rung, file) in [
            ("..", "master.m3u8"),
            (".work", "index.m3u8"),
            ("720p", "../../reelbox.db"),
            ("720p", "seg-1.m4s"),
            ("720p", "seg-0000a.m4s"),
            ("720p", "seg-00001.m4s.tmp"),
            ("720p", ".seg-00001.m4s"),
            ("721p", "index.m3u8"),
            ("720p", ""),
            ("720p", "seg-1234567890.m4s"),
        ] {
            assert_eq!(rung_file_kind(rung, file), None, "{rung}/{file}");
        }
        assert_eq!(fixed_kind("download.mp4"), Some(FileKind::Mp4));
        assert_eq!(fixed_kind("reelbox.db"), None);
    }

    #[test]
    fn tokens_are_added_to_every_uri() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n";
        assert_eq!(
            add_token(master, "1.2.a-b_c"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8?t=1.2.a-b_c\n"
        );
        let media = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg-00001.m4s\n#EXT-X-ENDLIST\n";
        let out = add_token(media, "x");
        assert!(out.contains("#EXT-X-MAP:URI=\"init.mp4?t=x\"\n"), "{out}");
        assert!(out.contains("\nseg-00001.m4s?t=x\n"), "{out}");
        assert!(out.ends_with("#EXT-X-ENDLIST\n"));
    }
}
