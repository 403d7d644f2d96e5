//! Media items as pages: an item's page, its edit form, its thumbnails, and search results.
//! Who may see what is decided by [`visible_item`] (the same rules as the JSON API).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::media::{
    CategoryChoice, EditView, ItemView, MediaCard, Preview, SearchView, edit_page, file_size, item_page,
    search_page,
};
use serde::Deserialize;

use super::{html, html_status, see_other};
use crate::App;
use crate::accounts::grants::{Access as Grants, Role};
use crate::accounts::users;
use crate::db::ids::{CategoryId, MediaId};
use crate::ingest::detect::{Disposition, disposition_for};
use crate::insights::audit;
use crate::library::catalogue::{self, Listed, MediaEdit};
use crate::library::media::{MediaItem, MediaKind, MediaStatus};
use crate::library::{LibraryError, categories, renditions};
use crate::store::Sha256;
use crate::web::api::media::visible_item;
use crate::web::auth::{CsrfForm, CurrentUser, HasCsrf, Viewer, access_of, all_categories};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/media/{id}", Access::Category(Role::View), "A media item's page", item),
        get(
            "/media/{id}/edit",
            Access::Category(Role::Edit),
            "Edit an item's details (its owner, or edit on the category)",
            edit_form,
        ),
        post(
            "/media/{id}/edit",
            Access::Category(Role::Edit),
            "Save an item's details (its owner, or edit on the category)",
            edit_save,
        ),
        get(
            "/media/{id}/thumbnail/{size}",
            Access::Category(Role::View),
            "An image's JPEG thumbnail, 320 or 960 pixels on its longest edge",
            thumbnail,
        ),
        get("/search", Access::Filtered, "Search the items the person may view", search),
    ]
}

pub(crate) fn kind_label(kind: Option<MediaKind>) -> &'static str {
    match kind {
        Some(MediaKind::Video) => "Video",
        Some(MediaKind::Audio) => "Audio",
        Some(MediaKind::Image) => "Image",
        Some(MediaKind::Document) => "Document",
        None => "File",
    }
}

fn status_label(status: MediaStatus) -> Option<&'static str> {
    match status {
        MediaStatus::Ready => None,
        MediaStatus::Processing => Some("Processing"),
        MediaStatus::Uploading => Some("Upload not finished"),
        MediaStatus::Failed => Some("Failed"),
        MediaStatus::Recycled => Some("In the recycle bin"),
        MediaStatus::Archived => Some("Archived"),
    }
}

/// A grid entry for a listed item.
pub(crate) fn card(l: &Listed) -> MediaCard {
    let m = &l.item;
    MediaCard {
        id: m.id.0,
        title: m.title.clone(),
        kind: kind_label(m.kind).to_string(),
        size: file_size(m.size),
        created: crate::clock::format_utc(m.created_at),
        thumbnail: l.has_thumbnail.then(|| format!("/media/{}/thumbnail/320", m.id)),
        status: status_label(m.status).map(str::to_string),
    }
}

/// Owners edit their own items; `edit` on the category edits anyone's.
pub(crate) fn may_edit(access: &Grants, user: Option<&CurrentUser>, item: &MediaItem) -> bool {
    let Some(user) = user else { return false };
    (item.owner_id == Some(user.user.id) && access.can(item.category_id, Role::View))
        || access.can(item.category_id, Role::Edit)
}

async fn item(
    req: HttpRequest,
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let user = viewer.0.as_ref();
    let item = visible_item(&app, user, path.into_inner()).await?;
    let access = access_of(&app, user).await?;
    let (cat, owner, id) = (item.category_id, item.owner_id, item.id);
    let (trail, owner, has_large) = app
        .db
        .read(move |c| {
            let owner = match owner {
                Some(o) => users::get(c, o)?.map(|u| u.shown_name().to_string()),
                None => None,
            };
            let large = renditions::get(c, id, &renditions::thumbnail_name(960))?.is_some();
            Ok::<_, WebError>((categories::ancestry(c, cat)?, owner, large))
        })
        .await?;
    let crumbs: Vec<(String, String)> = std::iter::once(("Library".to_string(), "/".to_string()))
        .chain(trail.iter().map(|c| (c.name.clone(), format!("/categories/{}", c.id))))
        .chain(std::iter::once((item.title.clone(), format!("/media/{id}"))))
        .collect();
    let has_bytes = item.status.has_original() && item.sha256.is_some();
    let original = format!("/api/v1/media/{id}/original");
    let mime = item.mime.clone().unwrap_or_default();
    let preview = match (has_bytes, item.kind) {
        (false, _) if item.status == MediaStatus::Uploading => {
            Preview::Unavailable("The upload of this file has not finished yet.".into())
        }
        (false, _) => {
            Preview::Unavailable("This file could not be stored, so there is nothing to show.".into())
        }
        (true, Some(MediaKind::Image)) if has_large => Preview::Image {
            thumbnail: format!("/media/{id}/thumbnail/960"),
            original: format!("{original}?inline=true"),
        },
        (true, Some(MediaKind::Image)) => Preview::ImageLink { original: format!("{original}?inline=true") },
        (true, Some(MediaKind::Video | MediaKind::Audio)) => {
            match super::playback::player_view(&app, user, &item, may_edit(&access, user, &item)).await? {
                Some(view) => Preview::Player(Box::new(view)),
                None if item.kind == Some(MediaKind::Audio) => Preview::Audio { src: original.clone(), mime },
                None => Preview::Video { src: original.clone(), mime },
            }
        }
        (true, Some(kind)) if disposition_for(kind, &mime) == Disposition::Inline => {
            Preview::Pdf { src: format!("{original}?inline=true") }
        }
        (true, _) => Preview::Download,
    };
    let tags: Vec<String> =
        item.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let has_player = matches!(preview, Preview::Player(_));
    let can_edit = may_edit(&access, user, &item);
    let captions =
        if has_player && can_edit { Some(super::playback::caption_rows(&app, id).await?) } else { None };
    let embed_code = has_player.then(|| super::playback::embed_snippet(&app, &req, &item));
    let view = ItemView {
        id: id.0,
        title: &item.title,
        description: &item.description,
        tags,
        kind: kind_label(item.kind),
        status: item.status.as_str(),
        trail: crumbs,
        owner: owner.as_deref().unwrap_or("(a removed account)"),
        created: &crate::clock::format_utc(item.created_at),
        size: &file_size(item.size),
        sha256: item.sha256.as_deref().unwrap_or("(not stored)"),
        filename: &item.original_filename,
        preview,
        download: has_bytes.then_some(original),
        can_edit,
        // Owners may recycle their own items, managers anything in the category (as the API).
        can_delete: item.status.is_listed()
            && (user.is_some_and(|u| item.owner_id == Some(u.user.id))
                || access.can(item.category_id, Role::Manage)),
        damage: super::damage_notice(&app, id).await?,
        captions,
        embed_code,
    };
    let script = has_player.then(|| crate::web::assets::url("player.js"));
    Ok(html(item_page(&chrome(&req, user), &view, script.as_deref())))
}

/// The item, if `user` may see and edit it: 404 when it may not be seen, 403 when only seen.
pub(crate) async fn editable_item(
    app: &App,
    user: &CurrentUser,
    id: MediaId,
) -> Result<std::sync::Arc<MediaItem>, WebError> {
    let item = visible_item(app, Some(user), id).await?;
    let access = access_of(app, Some(user)).await?;
    if may_edit(&access, Some(user), &item) { Ok(item) } else { Err(WebError::forbidden()) }
}

/// The categories `user` may move an item into (contribute), plus where it is now.
async fn move_choices(
    app: &App,
    user: &CurrentUser,
    current: CategoryId,
) -> Result<Vec<CategoryChoice>, WebError> {
    let access = access_of(app, Some(user)).await?;
    let all = all_categories(app).await?;
    let depths = categories::depths(&all);
    Ok(all
        .iter()
        .zip(depths)
        .filter(|(c, _)| c.id == current || access.can(c.id, Role::Contribute))
        .map(|(c, depth)| CategoryChoice { id: c.id.0, name: c.name.clone(), depth })
        .collect())
}

/// Apply an edit for `user`, checking the move target, and audit it in the same transaction.
pub(crate) async fn apply_edit(
    app: &App,
    user: &CurrentUser,
    item: &MediaItem,
    edit: MediaEdit,
) -> Result<MediaItem, WebError> {
    if let Some(target) = edit.category_id.filter(|c| *c != item.category_id) {
        let access = access_of(app, Some(user)).await?;
        if !access.can(target, Role::Contribute) {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "move-not-allowed",
                "You can only move items into categories you may upload into.",
            ));
        }
    }
    let (id, now, actor) = (item.id, app.clock.now(), user.actor());
    let after = app
        .db
        .write(move |c| {
            let tx = c.transaction()?;
            let (before, after) = catalogue::edit(&tx, id, &edit, now)?;
            audit::record(
                &tx,
                &actor
                    .event("media.edited")
                    .target("media", id, &after.title)
                    .detail(catalogue::changed_fields(&before, &after)),
                now,
            )?;
            tx.commit()?;
            Ok::<_, LibraryError>(after)
        })
        .await?;
    Ok(after)
}

async fn edit_form(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = editable_item(&app, &user, path.into_inner()).await?;
    render_edit(&req, &app, &user, &item, None, StatusCode::OK).await
}

async fn render_edit(
    req: &HttpRequest,
    app: &App,
    user: &CurrentUser,
    item: &MediaItem,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let choices = move_choices(app, user, item.category_id).await?;
    let view = EditView {
        id: item.id.0,
        csrf: user.csrf().unwrap_or_default(),
        title: &item.title,
        description: &item.description,
        tags: &item.tags,
        category_id: item.category_id.0,
        categories: &choices,
        error,
    };
    Ok(html_status(status, edit_page(&chrome(req, Some(user)), &view)))
}

#[derive(Deserialize)]
pub struct EditForm {
    csrf: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    category_id: String,
}

impl HasCsrf for EditForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn edit_save(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    form: CsrfForm<EditForm>,
) -> Result<HttpResponse, WebError> {
    let item = editable_item(&app, &user, path.into_inner()).await?;
    let f = form.0;
    let category_id = match f.category_id.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) => Some(CategoryId(n)),
            Err(_) => {
                let msg = "Choose a category from the list.";
                return render_edit(&req, &app, &user, &item, Some(msg), StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let edit =
        MediaEdit { title: Some(f.title), description: Some(f.description), tags: Some(f.tags), category_id };
    // Show the person what they typed again if it cannot be saved.
    let mut typed = MediaItem::clone(&item);
    typed.title = edit.title.clone().unwrap_or_default();
    typed.description = edit.description.clone().unwrap_or_default();
    typed.tags = edit.tags.clone().unwrap_or_default();
    match apply_edit(&app, &user, &item, edit).await {
        Ok(after) => Ok(see_other(&format!("/media/{}?notice=saved", after.id))),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            render_edit(&req, &app, &user, &typed, Some(&e.message), status).await
        }
        Err(e) => Err(e),
    }
}

/// Serve a thumbnail: same permission as the item; immutable, since an item's original (and
/// so its thumbnails) never changes.
pub(crate) async fn thumbnail(
    req: HttpRequest,
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<(MediaId, u32)>,
) -> Result<HttpResponse, WebError> {
    let (id, size) = path.into_inner();
    let item = visible_item(&app, viewer.0.as_ref(), id).await?;
    let Some(size) = renditions::thumbnail_size(size) else { return Err(WebError::not_found()) };
    let r = app
        .db
        .read(move |c| renditions::get(c, item.id, &renditions::thumbnail_name(size)))
        .await?
        .ok_or_else(WebError::not_found)?;
    let etag = format!("\"{}\"", r.sha256);
    let cache = "private, max-age=31536000, immutable";
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let hash = Sha256::from_hex(&r.sha256).map_err(WebError::internal)?;
    let store = app.store.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        store
            .open_blob(&hash)?
            .read_to_end(&mut buf)
            .map_err(|e| crate::store::StoreError::io("reading a thumbnail", e))?;
        Ok::<_, crate::store::StoreError>(buf)
    })
    .await
    .map_err(WebError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(bytes))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    pub category: Option<CategoryId>,
    pub page: Option<u32>,
}

/// Search for `viewer` over the categories they may view.
pub(crate) async fn run_search(
    app: &App,
    viewer: Option<&CurrentUser>,
    q: &SearchQuery,
) -> Result<catalogue::Page, WebError> {
    let access = access_of(app, viewer).await?;
    let all = all_categories(app).await?;
    let viewable: Vec<CategoryId> = access.visible(&all).into_iter().map(|c| c.id).collect();
    let (text, within, page) = (q.q.clone(), q.category, q.page.unwrap_or(1));
    Ok(app.db.read(move |c| catalogue::search(c, &text, &viewable, within, page)).await?)
}

async fn search(
    req: HttpRequest,
    app: web::Data<App>,
    viewer: Viewer,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let user = viewer.0.as_ref();
    let q = query.into_inner();
    let result = run_search(&app, user, &q).await?;
    let cards: Vec<MediaCard> = result.items.iter().map(card).collect();
    let view = SearchView {
        query: q.q.trim(),
        total: result.total,
        items: &cards,
        page: q.page.unwrap_or(1).clamp(1, catalogue::MAX_PAGE),
        pages: result.pages(),
    };
    Ok(html(search_page(&chrome(&req, user), &view)))
}
