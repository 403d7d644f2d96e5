//! Deleting and restoring media over JSON: the recycle bin (managers of the category, and
//! administrators) and the archive (administrators only). The rules live in
//! `library::lifecycle`; here is only who may ask.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::accounts::grants::Role;
use crate::db::ids::MediaId;
use crate::library::lifecycle;
use crate::library::media::{MediaItem, MediaStatus};
use crate::web::api::media::visible_item;
use crate::web::auth::{CurrentUser, access_of};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, post};

/// Most items one listing returns.
const LIST_LIMIT: u32 = 1000;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            actix_web::http::Method::DELETE,
            "/api/v1/media/{id}",
            Access::Category(Role::Manage),
            "Delete an item: it goes to the recycle bin (manage on the category, or the item's owner). \
             With ?permanent=true, an item already in the recycle bin is archived (manage on the category): \
             only administrators see it, and it is purged after library.archive_days",
            delete,
        ),
        post(
            "/api/v1/media/{id}/restore",
            Access::Category(Role::Manage),
            "Restore a recycled item (manage on the category) or an archived one (administrators)",
            restore,
        ),
        crate::web::get(
            "/api/v1/recycle",
            Access::SignedIn,
            "The recycle bin: recycled items in the categories the caller manages (all for administrators). \
             ?archived=true lists the archive instead (administrators only)",
            list,
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    permanent: bool,
}

/// Whether `user` may recycle `item`: its category's managers, and its owner.
pub async fn may_recycle(app: &App, user: &CurrentUser, item: &MediaItem) -> Result<bool, WebError> {
    let access = access_of(app, Some(user)).await?;
    Ok(access.can(item.category_id, Role::Manage) || item.owner_id == Some(user.user.id))
}

/// Recycle (or, with `permanent`, archive) `id` as `user`, checking who may.
pub async fn delete_item(
    app: &App,
    user: &CurrentUser,
    id: MediaId,
    permanent: bool,
) -> Result<MediaItem, WebError> {
    let item = visible_item(app, Some(user), id).await?;
    let access = access_of(app, Some(user)).await?;
    let allowed = if permanent {
        access.can(item.category_id, Role::Manage)
    } else {
        may_recycle(app, user, &item).await?
    };
    if !allowed {
        return Err(WebError::forbidden());
    }
    let (actor, now) = (user.actor(), app.clock.now());
    let changed = if permanent {
        app.db.write(move |c| lifecycle::archive(c, id, &actor, now)).await?
    } else {
        app.db.write(move |c| lifecycle::recycle(c, id, &actor, now)).await?
    };
    Ok(changed)
}

/// Restore `id` as `user`: managers restore from the recycle bin, administrators from the archive.
pub async fn restore_item(app: &App, user: &CurrentUser, id: MediaId) -> Result<MediaItem, WebError> {
    // Recycled items are visible to managers only and archived ones to administrators only, so
    // whoever gets past this may restore it; a listed item needs manage to be told it is not deleted.
    let item = visible_item(app, Some(user), id).await?;
    if !access_of(app, Some(user)).await?.can(item.category_id, Role::Manage) {
        return Err(WebError::forbidden());
    }
    let (actor, now) = (user.actor(), app.clock.now());
    Ok(app.db.write(move |c| lifecycle::restore(c, id, &actor, now)).await?)
}

async fn delete(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, WebError> {
    let item = delete_item(&app, &user, path.into_inner(), query.permanent).await?;
    Ok(HttpResponse::Ok().json(item))
}

async fn restore(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = restore_item(&app, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(item))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    archived: bool,
}

/// One item in the recycle bin or the archive.
#[derive(Debug, Clone, Serialize)]
pub struct BinEntry {
    #[serde(flatten)]
    pub item: MediaItem,
    /// When the purge removes it (archived items only).
    pub purge_due_at: Option<i64>,
}

/// What `user` sees in the recycle bin (or, for administrators, the archive).
pub async fn bin_for(app: &App, user: &CurrentUser, archived: bool) -> Result<Vec<BinEntry>, WebError> {
    if archived && !user.user.is_admin {
        return Err(WebError::forbidden());
    }
    let status = if archived { MediaStatus::Archived } else { MediaStatus::Recycled };
    let access = access_of(app, Some(user)).await?;
    let items = app.db.read(move |c| lifecycle::list(c, status, LIST_LIMIT)).await?;
    let days = app.config.library.archive_days;
    Ok(items
        .into_iter()
        .filter(|i| access.can(i.category_id, Role::Manage))
        .map(|item| BinEntry { purge_due_at: lifecycle::purge_due_at(&item, days), item })
        .collect())
}

async fn list(
    app: web::Data<App>,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let items = bin_for(&app, &user, query.archived).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
