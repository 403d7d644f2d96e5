//! Groups: list and create, and one group's members, grants, name and deletion.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::groups::{
    GroupGrantRow, GroupRow, GroupView, GroupsView, MemberRow, group_page, groups_page,
};
use serde::Deserialize;

use super::{Ask, confirm, mistake};
use crate::App;
use crate::accounts::grants::{self, Grantee};
use crate::accounts::{AccountsError, groups, users};
use crate::clock::format_utc;
use crate::db::ids::{GroupId, UserId};
use crate::insights::audit;
use crate::library::categories;
use crate::web::api::directory::{add_member, create_group, delete_group, remove_member};
use crate::web::auth::{AdminUser, Confirm, CsrfForm, CurrentUser, HasCsrf};
use crate::web::error::WebError;
use crate::web::pages::{html_status, see_other};
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/admin/groups", Access::Admin, "Groups with member counts, and the create-group form", list),
        post("/admin/groups", Access::Admin, "Create a group", create),
        get("/admin/groups/{id}", Access::Admin, "One group: members, grants, name", detail),
        post("/admin/groups/{id}", Access::Admin, "Rename a group or change its description", rename),
        post("/admin/groups/{id}/members", Access::Admin, "Add a member by username", member_add),
        get(
            "/admin/groups/{id}/members/{user_id}/remove",
            Access::Admin,
            "Confirm removing a member",
            member_remove_confirm,
        ),
        post("/admin/groups/{id}/members/{user_id}/remove", Access::Admin, "Remove a member", member_remove),
        get("/admin/groups/{id}/delete", Access::Admin, "Confirm deleting a group", delete_confirm),
        post(
            "/admin/groups/{id}/delete",
            Access::Admin,
            "Delete a group (memberships and grants go with it)",
            delete,
        ),
    ]
}

#[derive(Deserialize)]
pub struct GroupForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

impl HasCsrf for GroupForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn render_list(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    draft: Option<&GroupForm>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let all = app.db.read(groups::list).await?;
    let rows: Vec<GroupRow> = all
        .into_iter()
        .map(|g| GroupRow { id: g.id.0, name: g.name, description: g.description, members: g.members })
        .collect();
    let view = GroupsView {
        csrf: admin.0.csrf().unwrap_or_default(),
        rows: &rows,
        name: draft.map(|d| d.name.as_str()).unwrap_or_default(),
        description: draft.map(|d| d.description.as_str()).unwrap_or_default(),
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, groups_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn list(req: HttpRequest, app: web::Data<App>, admin: AdminUser) -> Result<HttpResponse, WebError> {
    render_list(&req, &app, &admin, None, None).await
}

async fn create(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    form: CsrfForm<GroupForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    match create_group(&app, &admin.0, &f.name, &f.description).await {
        Ok(g) => Ok(see_other(&format!("/admin/groups/{}?notice=created", g.id))),
        Err(e) => render_list(&req, &app, &admin, Some(&f), Some(&mistake(e)?)).await,
    }
}

/// What was typed into the group page's forms, shown again after a mistake.
#[derive(Default)]
struct Drafts {
    username: String,
    rename: Option<(String, String)>,
}

async fn render_group(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    id: GroupId,
    drafts: Drafts,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (group, members, held, people) = app
        .db
        .read(move |c| {
            let group = groups::require(c, id)?;
            let members = groups::members(c, id)?;
            // Grants are stored per category; a school has at most a few hundred categories.
            let mut held = Vec::new();
            for cat in categories::list(c)? {
                for g in grants::for_category(c, cat.id)? {
                    if g.grantee == Grantee::Group(id) {
                        held.push(GroupGrantRow {
                            category_id: cat.id.0,
                            category: cat.name.clone(),
                            role: g.role.as_str().into(),
                        });
                    }
                }
            }
            let people: Vec<String> = users::search(c, "", 2000)?.into_iter().map(|u| u.username).collect();
            Ok::<_, AccountsError>((group, members, held, people))
        })
        .await?;
    let rows: Vec<MemberRow> = members
        .iter()
        .map(|m| MemberRow {
            user_id: m.user_id.0,
            username: m.username.clone(),
            name: m.display_name.clone(),
            disabled: m.disabled,
            added: format_utc(m.added_at),
        })
        .collect();
    let suggestions: Vec<String> =
        people.into_iter().filter(|p| !members.iter().any(|m| &m.username == p)).collect();
    let (draft_name, draft_description) =
        drafts.rename.unwrap_or_else(|| (group.name.clone(), group.description.clone()));
    let view = GroupView {
        csrf: admin.0.csrf().unwrap_or_default(),
        id: group.id.0,
        name: &group.name,
        description: &group.description,
        members: &rows,
        grants: &held,
        usernames: &suggestions,
        draft_username: &drafts.username,
        draft_name: &draft_name,
        draft_description: &draft_description,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, group_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn detail(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<GroupId>,
) -> Result<HttpResponse, WebError> {
    render_group(&req, &app, &admin, path.into_inner(), Drafts::default(), None).await
}

/// Rename with its audit event (the JSON API has no rename).
async fn rename_group(
    app: &App,
    admin: &CurrentUser,
    id: GroupId,
    name: &str,
    description: &str,
) -> Result<groups::Group, AccountsError> {
    let now = app.clock.now();
    let (name, description, actor) = (name.trim().to_string(), description.trim().to_string(), admin.actor());
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let before = groups::require(&tx, id)?;
            let after = groups::rename(&tx, id, &name, &description)?;
            let detail = if before.name == after.name {
                String::new()
            } else {
                format!("name: {} → {}", before.name, after.name)
            };
            audit::record(
                &tx,
                &actor.event("group.update").target("group", id, &after.name).detail(detail),
                now,
            )?;
            tx.commit()?;
            Ok(after)
        })
        .await
}

async fn rename(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<GroupId>,
    form: CsrfForm<GroupForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let f = form.0;
    match rename_group(&app, &admin.0, id, &f.name, &f.description).await {
        Ok(_) => Ok(see_other(&format!("/admin/groups/{id}?notice=saved"))),
        Err(e) => {
            let message = mistake(e)?;
            let drafts = Drafts { rename: Some((f.name, f.description)), ..Drafts::default() };
            render_group(&req, &app, &admin, id, drafts, Some(&message)).await
        }
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf: String,
    #[serde(default)]
    username: String,
}

impl HasCsrf for MemberForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn member_add(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<GroupId>,
    form: CsrfForm<MemberForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let username = form.0.username.trim().to_string();
    let result = if username.is_empty() {
        Err("Type the username of the person to add.".to_string())
    } else {
        match add_member(&app, &admin.0, id, &username).await {
            Ok(()) => Ok(()),
            Err(AccountsError::NotFound("user")) => Err(format!(
                "There is no account with the username “{username}”. Check the spelling, or create the account first."
            )),
            Err(e) => Err(mistake(e)?),
        }
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/admin/groups/{id}?notice=saved"))),
        Err(message) => {
            render_group(&req, &app, &admin, id, Drafts { username, rename: None }, Some(&message)).await
        }
    }
}

async fn member_remove_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(GroupId, UserId)>,
) -> Result<HttpResponse, WebError> {
    let (id, uid) = path.into_inner();
    let (g, u) = app
        .db
        .read(move |c| Ok::<_, AccountsError>((groups::require(c, id)?, users::require(c, uid)?)))
        .await?;
    let question = format!("Remove “{}” from the group “{}”?", u.username, g.name);
    let (action, cancel) =
        (format!("/admin/groups/{id}/members/{uid}/remove"), format!("/admin/groups/{id}"));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Remove member",
            question: &question,
            consequence: "They lose the access this group gives, unless another group or grant gives it too.",
            action: &action,
            button: "Remove member",
            cancel: &cancel,
        },
    ))
}

async fn member_remove(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<(GroupId, UserId)>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let (id, uid) = path.into_inner();
    remove_member(&app, &admin.0, id, uid).await?;
    Ok(see_other(&format!("/admin/groups/{id}?notice=removed")))
}

async fn delete_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<GroupId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let g = app.db.read(move |c| groups::require(c, id)).await?;
    let question = format!("Delete the group “{}”?", g.name);
    let consequence = format!(
        "Its {} membership{} and all its grants go with it: its members lose the access it gave them, \
         unless another group or grant gives it too. The accounts themselves are not deleted. This cannot be undone.",
        g.members,
        if g.members == 1 { "" } else { "s" }
    );
    let (action, cancel) = (format!("/admin/groups/{id}/delete"), format!("/admin/groups/{id}"));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Delete group",
            question: &question,
            consequence: &consequence,
            action: &action,
            button: "Delete group",
            cancel: &cancel,
        },
    ))
}

async fn delete(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<GroupId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    delete_group(&app, &admin.0, path.into_inner()).await?;
    Ok(see_other("/admin/groups?notice=removed"))
}
