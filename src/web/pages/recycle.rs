//! Deleting and restoring from the browser: "Delete" on an item (to the recycle bin, after a
//! confirmation), the recycle bin `/recycle` (restore in one click, delete permanently after a
//! confirmation) and the archive `/admin/archive` for administrators. Who may do what is
//! decided by the same functions as the JSON API (`web::api::recycle`).

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::pages::{ConfirmView, confirm_page};
use reelbox_templates::recycle::{BinView, DeletedRow, archive_page, recycle_page};

use super::{html, see_other};
use crate::App;
use crate::accounts::grants::Role;
use crate::clock::format_utc;
use crate::db::ids::MediaId;
use crate::web::api::media::visible_item;
use crate::web::api::recycle::{BinEntry, bin_for, delete_item, may_recycle, restore_item};
use crate::web::auth::{AdminUser, Confirm, CsrfForm, CurrentUser, access_of, all_categories};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get(
            "/media/{id}/delete",
            Access::Category(Role::Manage),
            "Confirm moving an item to the recycle bin (managers of the category, or the item's owner)",
            recycle_confirm,
        ),
        post(
            "/media/{id}/delete",
            Access::Category(Role::Manage),
            "Move an item to the recycle bin (managers of the category, or the item's owner)",
            recycle,
        ),
        get("/recycle", Access::SignedIn, "The recycle bin of the categories the person manages", bin),
        post(
            "/recycle/{id}/restore",
            Access::Category(Role::Manage),
            "Restore an item from the recycle bin",
            restore,
        ),
        get(
            "/recycle/{id}/delete",
            Access::Category(Role::Manage),
            "Confirm deleting an item permanently (it goes to the archive)",
            archive_confirm,
        ),
        post(
            "/recycle/{id}/delete",
            Access::Category(Role::Manage),
            "Delete an item permanently: only administrators see it until it is purged",
            archive,
        ),
        get("/admin/archive", Access::Admin, "Permanently deleted items, until the purge", archive_list),
        post(
            "/admin/archive/{id}/restore",
            Access::Admin,
            "Restore a permanently deleted item",
            archive_restore,
        ),
    ]
}

fn confirm(req: &HttpRequest, user: &CurrentUser, view: &ConfirmView<'_>) -> HttpResponse {
    html(confirm_page(&chrome(req, Some(user)), view))
}

async fn recycle_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = visible_item(&app, Some(&user), path.into_inner()).await?;
    if !may_recycle(&app, &user, &item).await? {
        return Err(WebError::forbidden());
    }
    let question = format!("Delete “{}”?", item.title);
    let action = format!("/media/{}/delete", item.id);
    let cancel = format!("/media/{}", item.id);
    let view = ConfirmView {
        title: "Delete item",
        question: &question,
        consequence: "It moves to the recycle bin: hidden from everyone, and the category's managers can restore it.",
        action: &action,
        button: "Delete",
        cancel: &cancel,
        csrf: user.csrf().unwrap_or_default(),
    };
    Ok(confirm(&req, &user, &view))
}

async fn recycle(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let item = delete_item(&app, &user, path.into_inner(), false).await?;
    Ok(see_other(&format!("/categories/{}?notice=removed", item.category_id)))
}

async fn rows(app: &App, entries: Vec<BinEntry>) -> Result<Vec<DeletedRow>, WebError> {
    let cats = all_categories(app).await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let category =
                cats.iter().find(|c| c.id == e.item.category_id).map(|c| c.name.clone()).unwrap_or_default();
            let deleted = e.item.archived_at.or(e.item.recycled_at);
            DeletedRow {
                id: e.item.id.0,
                title: e.item.title,
                category,
                kind: e.item.kind.map(|k| k.to_string()).unwrap_or_default(),
                deleted_at: deleted.map(format_utc).unwrap_or_default(),
                purge_due: e.purge_due_at.map(format_utc),
            }
        })
        .collect())
}

async fn bin(req: HttpRequest, app: web::Data<App>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    let entries = bin_for(&app, &user, false).await?;
    let rows = rows(&app, entries).await?;
    let view = BinView {
        rows: &rows,
        csrf: user.csrf().unwrap_or_default(),
        is_admin: user.user.is_admin,
        archive_days: app.config.library.archive_days,
    };
    Ok(html(recycle_page(&chrome(&req, Some(&user)), &view)))
}

async fn restore(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    restore_item(&app, &user, path.into_inner()).await?;
    Ok(see_other("/recycle?notice=saved"))
}

async fn archive_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    let item = visible_item(&app, Some(&user), path.into_inner()).await?;
    if !access_of(&app, Some(&user)).await?.can(item.category_id, Role::Manage) {
        return Err(WebError::forbidden());
    }
    let question = format!("Delete “{}” permanently?", item.title);
    let consequence = format!(
        "Nobody but the site administrators will see it any more. They can restore it for {} days; \
         after that it is removed for good.",
        app.config.library.archive_days
    );
    let action = format!("/recycle/{}/delete", item.id);
    let view = ConfirmView {
        title: "Delete permanently",
        question: &question,
        consequence: &consequence,
        action: &action,
        button: "Delete permanently",
        cancel: "/recycle",
        csrf: user.csrf().unwrap_or_default(),
    };
    Ok(confirm(&req, &user, &view))
}

async fn archive(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<MediaId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    delete_item(&app, &user, path.into_inner(), true).await?;
    Ok(see_other("/recycle?notice=removed"))
}

async fn archive_list(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
) -> Result<HttpResponse, WebError> {
    let user = admin.0;
    let entries = bin_for(&app, &user, true).await?;
    let rows = rows(&app, entries).await?;
    let view = BinView {
        rows: &rows,
        csrf: user.csrf().unwrap_or_default(),
        is_admin: true,
        archive_days: app.config.library.archive_days,
    };
    Ok(html(archive_page(&chrome(&req, Some(&user)), &view)))
}

async fn archive_restore(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<MediaId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    restore_item(&app, &admin.0, path.into_inner()).await?;
    Ok(see_other("/admin/archive?notice=saved"))
}
