//! Categories and their grants over JSON.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::App;
use crate::accounts::grants::{self, Grantee, Role};
use crate::accounts::{AccountsError, groups, users};
use crate::db::ids::{CategoryId, GroupId};
use crate::insights::audit;
use crate::library::LibraryError;
use crate::library::categories::{self, CategoryUpdate, NewCategory};
use crate::web::auth::{CurrentUser, Viewer, access_of, require_role};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, Endpoint as E, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/api/v1/categories", Access::Filtered, "Categories the caller may view, in tree order", list),
        post(
            "/api/v1/categories",
            Access::Admin,
            "Create a category {name, parent_id?, description?, public?} (managers of the parent may create below it)",
            create,
        ),
        get(
            "/api/v1/categories/{id}",
            Access::Category(Role::View),
            "One category and the caller's role on it",
            one,
        ),
        E::new(
            Method::PATCH,
            "/api/v1/categories/{id}",
            Access::Category(Role::Manage),
            "Change a category {name?, description?, public?, parent_id?}",
            patch,
        ),
        E::new(Method::DELETE, "/api/v1/categories/{id}", Access::Admin, "Remove an empty category", delete),
        get(
            "/api/v1/categories/{id}/grants",
            Access::Category(Role::Manage),
            "Grants on this category",
            grant_list,
        ),
        E::new(
            Method::PUT,
            "/api/v1/categories/{id}/grants",
            Access::Category(Role::Manage),
            "Replace this category's grants [{group_id|username, role}]",
            grant_replace,
        ),
        get(
            "/api/v1/categories/{id}/access",
            Access::Category(Role::Manage),
            "Who can see this category and why (own and inherited grants)",
            explain,
        ),
    ]
}

async fn list(app: web::Data<App>, viewer: Viewer) -> Result<HttpResponse, WebError> {
    let access = access_of(&app, viewer.0.as_ref()).await?;
    let all = crate::web::auth::all_categories(&app).await?;
    let visible: Vec<serde_json::Value> = all
        .iter()
        .filter(|c| access.can(c.id, Role::View))
        .map(|c| {
            serde_json::json!({
                "id": c.id, "parent_id": c.parent_id, "name": c.name, "description": c.description,
                "public": c.public, "role": access.role(c.id),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(visible))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCategoryBody {
    name: String,
    parent_id: Option<CategoryId>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    public: bool,
}

/// Create a category: administrators anywhere, managers below a category they manage.
pub async fn create_category(
    app: &App,
    user: &CurrentUser,
    name: &str,
    parent: Option<CategoryId>,
    description: &str,
    public: bool,
) -> Result<categories::Category, WebError> {
    match parent {
        Some(p) => drop(require_role(app, Some(user), p, Role::Manage).await?),
        None if !user.user.is_admin => return Err(WebError::forbidden()),
        None => {}
    }
    if public && !user.user.is_admin {
        return Err(WebError::forbidden());
    }
    let now = app.clock.now();
    let (name, description, actor) = (name.trim().to_string(), description.trim().to_string(), user.actor());
    let c = app
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let c = categories::create(
                &tx,
                NewCategory { name: &name, parent_id: parent, description: &description, public },
                now,
            )?;
            audit::record(&tx, &actor.event("category.create").target("category", c.id, &c.name), now)?;
            tx.commit()?;
            Ok::<_, LibraryError>(c)
        })
        .await?;
    Ok(c)
}

async fn create(
    app: web::Data<App>,
    user: CurrentUser,
    body: web::Json<NewCategoryBody>,
) -> Result<HttpResponse, WebError> {
    let b = body.into_inner();
    let c = create_category(&app, &user, &b.name, b.parent_id, &b.description, b.public).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({"id": c.id, "name": c.name, "parent_id": c.parent_id})))
}

async fn one(
    app: web::Data<App>,
    viewer: Viewer,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let access = require_role(&app, viewer.0.as_ref(), id, Role::View).await?;
    let c = app.db.read(move |conn| categories::require(conn, id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": c.id, "parent_id": c.parent_id, "name": c.name, "description": c.description,
        "public": c.public, "role": access.role(id),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    name: Option<String>,
    description: Option<String>,
    public: Option<bool>,
    /// `null` moves the category to the top level; absent leaves it where it is.
    #[serde(default, with = "double_option")]
    parent_id: Option<Option<CategoryId>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub async fn update_category(
    app: &App,
    user: &CurrentUser,
    id: CategoryId,
    name: Option<String>,
    description: Option<String>,
    public: Option<bool>,
    parent: Option<Option<CategoryId>>,
) -> Result<categories::Category, WebError> {
    require_role(app, Some(user), id, Role::Manage).await?;
    // Making a category public, or moving it, changes who sees it beyond the manager's own
    // subtree: administrators only.
    if (public.is_some() || parent.is_some()) && !user.user.is_admin {
        let current = app.db.read(move |c| categories::require(c, id)).await?;
        if public.is_some_and(|p| p != current.public) || parent.is_some_and(|p| p != current.parent_id) {
            return Err(WebError::forbidden());
        }
    }
    let now = app.clock.now();
    let actor = user.actor();
    let c = app
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let before = categories::require(&tx, id)?;
            let up = CategoryUpdate {
                name: name.as_deref().map(str::trim).unwrap_or(&before.name),
                description: description.as_deref().map(str::trim).unwrap_or(&before.description),
                public: public.unwrap_or(before.public),
                parent_id: parent.unwrap_or(before.parent_id),
            };
            let after = categories::update(&tx, id, up)?;
            let mut changes = Vec::new();
            if after.name != before.name {
                changes.push(format!("name: {} → {}", before.name, after.name));
            }
            if after.public != before.public {
                changes.push(format!("public: {}", after.public));
            }
            if after.parent_id != before.parent_id {
                changes.push(format!(
                    "parent: {:?} → {:?}",
                    before.parent_id.map(|p| p.0),
                    after.parent_id.map(|p| p.0)
                ));
            }
            if after.description != before.description {
                changes.push("description".into());
            }
            audit::record(
                &tx,
                &actor
                    .event("category.update")
                    .target("category", id, &after.name)
                    .detail(changes.join("; ")),
                now,
            )?;
            tx.commit()?;
            Ok::<_, LibraryError>(after)
        })
        .await?;
    Ok(c)
}

async fn patch(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
    body: web::Json<CategoryPatch>,
) -> Result<HttpResponse, WebError> {
    let b = body.into_inner();
    let c =
        update_category(&app, &user, path.into_inner(), b.name, b.description, b.public, b.parent_id).await?;
    Ok(HttpResponse::Ok().json(c))
}

pub async fn delete_category(app: &App, user: &CurrentUser, id: CategoryId) -> Result<(), WebError> {
    if !user.user.is_admin {
        return Err(WebError::forbidden());
    }
    let now = app.clock.now();
    let actor = user.actor();
    app.db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let c = categories::delete(&tx, id)?;
            audit::record(&tx, &actor.event("category.delete").target("category", id, &c.name), now)?;
            tx.commit()?;
            Ok::<_, LibraryError>(())
        })
        .await?;
    Ok(())
}

async fn delete(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    delete_category(&app, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn grant_list(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    Ok(HttpResponse::Ok().json(app.db.read(move |c| grants::for_category(c, id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    group_id: Option<GroupId>,
    username: Option<String>,
    role: Role,
}

async fn grant_replace(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
    body: web::Json<Vec<GrantBody>>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    let wanted = body.into_inner();
    let now = app.clock.now();
    let actor = user.actor();
    app.db
        .write(move |conn| {
            let mut resolved = Vec::with_capacity(wanted.len());
            let mut described = Vec::new();
            for g in &wanted {
                let grantee = match (&g.group_id, &g.username) {
                    (Some(gid), None) => {
                        let group = groups::require(conn, *gid)?;
                        described.push(format!("group {}: {}", group.name, g.role.as_str()));
                        Grantee::Group(group.id)
                    }
                    (None, Some(name)) => {
                        let u = users::by_username(conn, name)?.ok_or(AccountsError::NotFound("user"))?;
                        described.push(format!("user {}: {}", u.username, g.role.as_str()));
                        Grantee::User(u.id)
                    }
                    _ => return Err(AccountsError::Refused("each grant names either group_id or username")),
                };
                resolved.push((grantee, g.role));
            }
            grants::replace(conn, id, &resolved, now)?;
            let name = categories::require(conn, id)?.name;
            audit::record(
                conn,
                &actor.event("grants.replace").target("category", id, &name).detail(described.join("; ")),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn explain(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    require_role(&app, Some(&user), id, Role::Manage).await?;
    let (c, reasons) = app
        .db
        .read(move |conn| {
            Ok::<_, AccountsError>((categories::require(conn, id)?, grants::explain(conn, id)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "category": c, "administrators": true, "public": c.public, "grants": reasons,
    })))
}
