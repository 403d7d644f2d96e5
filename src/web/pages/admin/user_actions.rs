//! What an administrator does to one person: disable or enable the account, give or take
//! administrator rights, set a temporary password, unlock sign-in, end sessions and change
//! group memberships. Each answers with a redirect back to the person's page.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::users::render_user;
use super::{Ask, confirm, mistake};
use crate::App;
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::{AccountsError, groups, login, users};
use crate::db::ids::{GroupId, SessionId, UserId};
use crate::web::api::directory::{
    UserChange, add_member, change_user, end_session, end_sessions, remove_member, unlock_user,
};
use crate::web::auth::{AdminUser, Confirm, CsrfForm, HasCsrf};
use crate::web::error::WebError;
use crate::web::pages::see_other;
use crate::web::{Access, Endpoint, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/admin/users/{id}/disable", Access::Admin, "Confirm disabling an account", disable_confirm),
        post("/admin/users/{id}/disable", Access::Admin, "Disable an account (ends its sessions)", disable),
        post("/admin/users/{id}/enable", Access::Admin, "Enable a disabled account", enable),
        post("/admin/users/{id}/admin", Access::Admin, "Make a person a site administrator", make_admin),
        get(
            "/admin/users/{id}/unadmin",
            Access::Admin,
            "Confirm removing administrator rights",
            unadmin_confirm,
        ),
        post("/admin/users/{id}/unadmin", Access::Admin, "Remove administrator rights", unadmin),
        post("/admin/users/{id}/password", Access::Admin, "Set a temporary password", set_password),
        post("/admin/users/{id}/unlock", Access::Admin, "Clear a person's sign-in lock", unlock),
        get(
            "/admin/users/{id}/sessions/end",
            Access::Admin,
            "Confirm ending all of a person's sessions",
            sessions_end_confirm,
        ),
        post("/admin/users/{id}/sessions/end", Access::Admin, "End all of a person's sessions", sessions_end),
        get(
            "/admin/users/{id}/sessions/{sid}/end",
            Access::Admin,
            "Confirm ending one session",
            session_end_confirm,
        ),
        post("/admin/users/{id}/sessions/{sid}/end", Access::Admin, "End one session", session_end),
        post("/admin/users/{id}/groups", Access::Admin, "Add a person to a group", group_add),
        get(
            "/admin/users/{id}/groups/{gid}/remove",
            Access::Admin,
            "Confirm removing a person from a group",
            group_remove_confirm,
        ),
        post(
            "/admin/users/{id}/groups/{gid}/remove",
            Access::Admin,
            "Remove a person from a group",
            group_remove,
        ),
    ]
}

fn back(id: UserId, notice: &str) -> HttpResponse {
    see_other(&format!("/admin/users/{id}?notice={notice}"))
}

async fn person(app: &App, id: UserId) -> Result<users::User, WebError> {
    Ok(app.db.read(move |c| users::require(c, id)).await?)
}

/// Apply `change`; a refusal (your own account, the last administrator) is shown on the page.
async fn apply(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    id: UserId,
    change: UserChange,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    match change_user(app, &admin.0, id, change).await {
        Ok(_) => Ok(back(id, notice)),
        Err(e) => render_user(req, app, admin, id, Some(&mistake(e)?), None).await,
    }
}

async fn disable_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    let u = person(&app, path.into_inner()).await?;
    let question = format!("Disable the account “{}”?", u.username);
    let (action, cancel) = (format!("/admin/users/{}/disable", u.id), format!("/admin/users/{}", u.id));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Disable account",
            question: &question,
            consequence: "They are signed out everywhere at once, cannot sign in and their API tokens stop working. \
                          Their groups, grants and uploads are kept; you can enable the account again later.",
            action: &action,
            button: "Disable account",
            cancel: &cancel,
        },
    ))
}

async fn disable(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let change = UserChange { disabled: Some(true), ..UserChange::default() };
    apply(&req, &app, &admin, path.into_inner(), change, "disabled").await
}

async fn enable(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let change = UserChange { disabled: Some(false), ..UserChange::default() };
    apply(&req, &app, &admin, path.into_inner(), change, "enabled").await
}

async fn make_admin(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let change = UserChange { admin: Some(true), ..UserChange::default() };
    apply(&req, &app, &admin, path.into_inner(), change, "saved").await
}

async fn unadmin_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    let u = person(&app, path.into_inner()).await?;
    let question = format!("Remove administrator rights from “{}”?", u.username);
    let consequence = if u.id == admin.0.user.id {
        "This is your own account: you will lose access to this administration console at once."
    } else {
        "They keep their account, groups and grants, but can no longer administer the site."
    };
    let (action, cancel) = (format!("/admin/users/{}/unadmin", u.id), format!("/admin/users/{}", u.id));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Remove administrator",
            question: &question,
            consequence,
            action: &action,
            button: "Remove administrator",
            cancel: &cancel,
        },
    ))
}

async fn unadmin(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let change = UserChange { admin: Some(false), ..UserChange::default() };
    match change_user(&app, &admin.0, id, change).await {
        // Their own rights are gone: the administration pages are no longer theirs to see.
        Ok(_) if id == admin.0.user.id => Ok(see_other("/?notice=saved")),
        Ok(_) => Ok(back(id, "saved")),
        Err(e) => render_user(&req, &app, &admin, id, Some(&mistake(e)?), None).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    #[serde(default)]
    password: String,
}

impl HasCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn set_password(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    match login::set_temporary_password(&app, &admin.0.actor(), id, &form.0.password).await {
        Ok(()) => Ok(back(id, "password-set")),
        Err(e) => render_user(&req, &app, &admin, id, Some(&mistake(e)?), None).await,
    }
}

async fn unlock(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    unlock_user(&app, &admin.0, id).await?;
    Ok(back(id, "unlocked"))
}

async fn sessions_end_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    let u = person(&app, path.into_inner()).await?;
    let question = format!("End all sessions of “{}”?", u.username);
    let consequence = if u.id == admin.0.user.id {
        "This includes the session you are using now: you will be signed out."
    } else {
        "They are signed out on every device and must sign in again. API tokens are not affected."
    };
    let (action, cancel) = (format!("/admin/users/{}/sessions/end", u.id), format!("/admin/users/{}", u.id));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "End all sessions",
            question: &question,
            consequence,
            action: &action,
            button: "End all sessions",
            cancel: &cancel,
        },
    ))
}

async fn sessions_end(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    end_sessions(&app, &admin.0, id).await?;
    Ok(back(id, "sessions-ended"))
}

/// The live session `sid` if it belongs to person `id`.
async fn session_of(
    app: &App,
    id: UserId,
    sid: SessionId,
) -> Result<(users::User, sessions::SessionInfo), WebError> {
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let now = app.clock.now();
    let (user, list) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((users::require(c, id)?, sessions::list_for_user(c, id, policy, now)?))
        })
        .await?;
    let found = list.into_iter().find(|s| s.id == sid);
    found.map(|s| (user, s)).ok_or_else(|| WebError::from(AccountsError::NotFound("session")))
}

async fn session_end_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(UserId, SessionId)>,
) -> Result<HttpResponse, WebError> {
    let (id, sid) = path.into_inner();
    let (user, s) = session_of(&app, id, sid).await?;
    let question = format!(
        "End the session of “{}” started {} from {}?",
        user.username,
        crate::clock::format_utc(s.created_at),
        if s.client_addr.is_empty() { "an unknown address" } else { &s.client_addr }
    );
    let consequence = if admin.0.session_id() == Some(sid) {
        "This is the session you are using now: you will be signed out."
    } else {
        "That browser is signed out and must sign in again."
    };
    let (action, cancel) = (format!("/admin/users/{id}/sessions/{sid}/end"), format!("/admin/users/{id}"));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "End session",
            question: &question,
            consequence,
            action: &action,
            button: "End session",
            cancel: &cancel,
        },
    ))
}

async fn session_end(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(UserId, SessionId)>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let (id, sid) = path.into_inner();
    session_of(&app, id, sid).await?;
    end_session(&app, &admin.0, sid).await?;
    Ok(back(id, "sessions-ended"))
}

#[derive(Deserialize)]
pub struct GroupChoice {
    csrf: String,
    #[serde(default)]
    group_id: String,
}

impl HasCsrf for GroupChoice {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn group_add(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    form: CsrfForm<GroupChoice>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let u = person(&app, id).await?;
    let Ok(group) = form.0.group_id.trim().parse::<i64>() else {
        return render_user(&req, &app, &admin, id, Some("Choose a group from the list."), None).await;
    };
    match add_member(&app, &admin.0, GroupId(group), &u.username).await {
        Ok(()) => Ok(back(id, "saved")),
        Err(e) => render_user(&req, &app, &admin, id, Some(&mistake(e)?), None).await,
    }
}

async fn group_remove_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(UserId, GroupId)>,
) -> Result<HttpResponse, WebError> {
    let (id, gid) = path.into_inner();
    let (u, g) = app
        .db
        .read(move |c| Ok::<_, AccountsError>((users::require(c, id)?, groups::require(c, gid)?)))
        .await?;
    let question = format!("Remove “{}” from the group “{}”?", u.username, g.name);
    let (action, cancel) = (format!("/admin/users/{id}/groups/{gid}/remove"), format!("/admin/users/{id}"));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Remove from group",
            question: &question,
            consequence: "They lose the access this group gives, unless another group or grant gives it too.",
            action: &action,
            button: "Remove from group",
            cancel: &cancel,
        },
    ))
}

async fn group_remove(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(UserId, GroupId)>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let (id, gid) = path.into_inner();
    remove_member(&app, &admin.0, gid, id).await?;
    Ok(back(id, "removed"))
}
