//! The library as people see it: the home page and category pages, plus the access page where
//! managers and administrators decide who sees a category.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::{AccessView, GrantRow, ReasonRow, access_page};
use reelbox_templates::pages::{CategoryRow, CategoryView, HomeView, category_page, home_page};
use serde::Deserialize;

use super::{html, see_other};
use crate::App;
use crate::accounts::grants::{self, Grantee, Role};
use crate::accounts::{groups, users};
use crate::db::ids::{CategoryId, GrantId};
use crate::insights::audit;
use crate::library::categories;
use crate::web::auth::{Confirm, CsrfForm, CurrentUser, HasCsrf, Viewer, access_of, require_role};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/", Access::Filtered, "Home: the categories the person may see", home),
        get("/categories/{id}", Access::Category(Role::View), "A category's page", category),
        get(
            "/categories/{id}/access",
            Access::Category(Role::Manage),
            "Who can see this category and why",
            access,
        ),
        post(
            "/categories/{id}/access",
            Access::Category(Role::Manage),
            "Grant a role on the category",
            grant_add,
        ),
        get(
            "/categories/{id}/access/{grant}/remove",
            Access::Category(Role::Manage),
            "Confirm removing a grant",
            grant_remove_confirm,
        ),
        post(
            "/categories/{id}/access/{grant}/remove",
            Access::Category(Role::Manage),
            "Remove a grant",
            grant_remove,
        ),
    ]
}

fn role_label(role: Option<Role>, public: bool) -> String {
    match role {
        Some(Role::Manage) => "Manage".into(),
        Some(Role::Edit) => "Edit".into(),
        Some(Role::Contribute) => "Contribute".into(),
        Some(Role::View) if public => "Public".into(),
        Some(Role::View) => "View".into(),
        None => String::new(),
    }
}

async fn home(req: HttpRequest, app: web::Data<App>, viewer: Viewer) -> Result<HttpResponse, WebError> {
    let user = viewer.0.as_ref();
    let access = access_of(&app, user).await?;
    let all = crate::web::auth::all_categories(&app).await?;
    let depths = categories::depths(&all);
    let rows: Vec<CategoryRow> = all
        .iter()
        .zip(depths)
        .filter(|(c, _)| access.can(c.id, Role::View))
        .map(|(c, depth)| CategoryRow {
            id: c.id.0,
            name: c.name.clone(),
            description: c.description.clone(),
            depth,
            access: role_label(access.role(c.id), c.public && !access.has_any_grant()),
        })
        .collect();
    if user.is_none() && rows.is_empty() {
        return Ok(see_other("/login"));
    }
    let view = HomeView {
        signed_in: user.is_some(),
        has_any_grant: access.has_any_grant(),
        is_admin: access.is_admin,
        contact: &app.config.access_contact,
        categories: &rows,
    };
    Ok(html(home_page(&chrome(&req, user), &view)))
}

#[derive(Deserialize)]
pub struct CategoryQuery {
    page: Option<u32>,
    #[serde(default)]
    sort: String,
}

async fn category(
    req: HttpRequest,
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<CategoryId>,
    query: web::Query<CategoryQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let user = viewer.0.as_ref();
    let access = require_role(&app, user, id, Role::View).await?;
    let sort = crate::library::catalogue::Sort::parse(&query.sort);
    let page = query.page.unwrap_or(1).clamp(1, crate::library::catalogue::MAX_PAGE);
    let me = user.map(|u| u.user.id);
    let (trail, children, listing) = app
        .db
        .read(move |c| {
            Ok::<_, crate::library::LibraryError>((
                categories::ancestry(c, id)?,
                categories::children(c, id)?,
                crate::library::catalogue::list_category(c, id, me, sort, page)?,
            ))
        })
        .await?;
    let Some(this) = trail.last().cloned() else { return Err(WebError::not_found()) };
    let crumbs: Vec<(String, String)> = std::iter::once(("Library".to_string(), "/".to_string()))
        .chain(trail.iter().map(|c| (c.name.clone(), format!("/categories/{}", c.id))))
        .collect();
    let children: Vec<CategoryRow> = children
        .into_iter()
        .filter(|c| access.can(c.id, Role::View))
        .map(|c| CategoryRow {
            id: c.id.0,
            name: c.name,
            description: c.description,
            depth: 0,
            access: String::new(),
        })
        .collect();
    let cards: Vec<_> = listing.items.iter().map(super::media::card).collect();
    let view = CategoryView {
        id: id.0,
        name: &this.name,
        description: &this.description,
        trail: crumbs,
        children: &children,
        access: &role_label(access.role(id), this.public),
        can_manage: access.can(id, Role::Manage),
        can_contribute: user.is_some() && access.can(id, Role::Contribute),
        items: &cards,
        total: listing.total,
        page,
        pages: listing.pages(),
        sort: sort.as_str(),
    };
    Ok(html(category_page(&chrome(&req, user), &view)))
}

async fn access(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    render_access(&req, &app, &user, id, None).await
}

/// "group" or "person", as the access pages say it.
pub(crate) fn grantee_kind(grantee: Grantee) -> &'static str {
    match grantee {
        Grantee::Group(_) => "group",
        Grantee::User(_) => "person",
    }
}

/// The lines of "why people can see it" for category `id`: own grants and inherited ones.
pub(crate) fn reason_rows(reasons: &[grants::AccessReason], id: CategoryId) -> Vec<ReasonRow> {
    reasons
        .iter()
        .map(|r| ReasonRow {
            who: r.grantee_name.clone(),
            kind: grantee_kind(r.grantee),
            role: r.role.as_str().to_string(),
            via: if r.via_category_id == id {
                "this category".into()
            } else {
                format!("inherited from {}", r.via_category_name)
            },
            members: r.members,
        })
        .collect()
}

pub(crate) async fn render_access(
    req: &HttpRequest,
    app: &App,
    user: &CurrentUser,
    id: CategoryId,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let (trail, grants_here, reasons, all_groups) = app
        .db
        .read(move |c| {
            Ok::<_, crate::accounts::AccountsError>((
                categories::ancestry(c, id)?,
                grants::for_category(c, id)?,
                grants::explain(c, id)?,
                groups::list(c)?,
            ))
        })
        .await?;
    let Some(this) = trail.last().cloned() else { return Err(WebError::not_found()) };
    let view = AccessView {
        csrf: user.csrf().unwrap_or_default(),
        category_id: id.0,
        category_name: &this.name,
        public: this.public,
        trail: trail.iter().map(|c| c.name.clone()).collect(),
        grants: grants_here
            .iter()
            .map(|g| GrantRow {
                id: g.id.0,
                who: g.grantee_name.clone(),
                kind: grantee_kind(g.grantee),
                role: g.role.as_str().to_string(),
            })
            .collect(),
        reasons: reason_rows(&reasons, id),
        groups: all_groups.iter().map(|g| (g.id.0, g.name.clone())).collect(),
        error: error.as_deref(),
    };
    let status = if error.is_some() {
        actix_web::http::StatusCode::BAD_REQUEST
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(super::html_status(status, access_page(&chrome(req, Some(user)), &view)))
}

#[derive(Deserialize)]
pub struct GrantForm {
    csrf: String,
    /// "group:ID" or a username.
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    username: String,
    role: String,
}

impl HasCsrf for GrantForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn grant_add(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
    form: CsrfForm<GrantForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    let f = form.0;
    let Some(role) = Role::parse(&f.role) else {
        return render_access(
            &req,
            &app,
            &user,
            id,
            Some("Choose a role: view, contribute, edit or manage.".into()),
        )
        .await;
    };
    let username = f.username.trim().to_string();
    let group_id = f.group_id.trim().parse::<i64>().ok();
    let now = app.clock.now();
    let actor = user.actor();
    let result = app
        .db
        .write(move |c| {
            let grantee = match (group_id, username.is_empty()) {
                (Some(g), true) => Grantee::Group(groups::require(c, crate::db::ids::GroupId(g))?.id),
                (None, false) => Grantee::User(
                    users::by_username(c, &username)?
                        .ok_or(crate::accounts::AccountsError::NotFound("user"))?
                        .id,
                ),
                _ => {
                    return Err(crate::accounts::AccountsError::Refused("choose either a group or a person"));
                }
            };
            let cat = categories::require(c, id)?;
            grants::set(c, id, grantee, role, now)?;
            let label = match grantee {
                Grantee::Group(g) => format!("group {g}"),
                Grantee::User(u) => format!("user {u}"),
            };
            audit::record(
                c,
                &actor
                    .event("grant.set")
                    .target("category", id, &cat.name)
                    .detail(format!("{label}: {}", role.as_str())),
                now,
            )?;
            Ok(())
        })
        .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/categories/{id}/access?notice=saved"))),
        Err(e) if crate::error::AppError::kind(&e).is_client_error() => {
            render_access(&req, &app, &user, id, Some(crate::error::AppError::user_message(&e))).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn grant_remove_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<(CategoryId, GrantId)>,
) -> Result<HttpResponse, WebError> {
    let (id, grant) = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    let grants_here = app.db.read(move |c| grants::for_category(c, id)).await?;
    let Some(g) = grants_here.into_iter().find(|g| g.id == grant) else { return Err(WebError::not_found()) };
    let question = format!("Remove {}'s “{}” access to this category?", g.grantee_name, g.role.as_str());
    let action = format!("/categories/{id}/access/{grant}/remove");
    let cancel = format!("/categories/{id}/access");
    Ok(html(reelbox_templates::pages::confirm_page(
        &chrome(&req, Some(&user)),
        &reelbox_templates::pages::ConfirmView {
            title: "Remove access",
            question: &question,
            consequence: "They will no longer see this category or the ones below it, unless another grant gives them access.",
            action: &action,
            button: "Remove access",
            cancel: &cancel,
            csrf: user.csrf().unwrap_or_default(),
        },
    )))
}

async fn grant_remove(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<(CategoryId, GrantId)>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let (id, grant) = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    let now = app.clock.now();
    let actor = user.actor();
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let removed = grants::remove(&tx, grant)?;
            if removed.category_id != id {
                return Err(crate::accounts::AccountsError::NotFound("grant"));
            }
            audit::record(
                &tx,
                &actor.event("grant.remove").target("category", id, "").detail(format!(
                    "{}: {}",
                    removed.grantee_name,
                    removed.role.as_str()
                )),
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(see_other(&format!("/categories/{id}/access?notice=removed")))
}
