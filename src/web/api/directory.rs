//! People, groups, sessions and API tokens over JSON.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::App;
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::users::{self, NewUser};
use crate::accounts::{AccountsError, groups, login, throttle, tokens};
use crate::db::ids::{GroupId, SessionId, TokenId, UserId};
use crate::insights::audit;
use crate::web::auth::{AdminUser, CurrentUser};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, Endpoint as E, get, post};
use actix_web::http::Method;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/api/v1/users", Access::Admin, "List or search people (?q=)", user_list),
        post(
            "/api/v1/users",
            Access::Admin,
            "Create a person {username, password, display_name?, email?, admin?, must_change_password?}",
            user_create,
        ),
        get("/api/v1/users/{id}", Access::Admin, "One person with groups, grants and sessions", user_get),
        E::new(
            Method::PATCH,
            "/api/v1/users/{id}",
            Access::Admin,
            "Change a person {display_name?, email?, disabled?, admin?}",
            user_patch,
        ),
        post(
            "/api/v1/users/{id}/password",
            Access::Admin,
            "Set a temporary password {password}",
            user_password,
        ),
        post(
            "/api/v1/users/{id}/unlock",
            Access::Admin,
            "Clear sign-in throttling for a person",
            user_unlock,
        ),
        get("/api/v1/users/{id}/sessions", Access::Admin, "A person's active sessions", user_sessions),
        E::new(
            Method::DELETE,
            "/api/v1/users/{id}/sessions",
            Access::Admin,
            "End all of a person's sessions",
            user_sessions_end,
        ),
        E::new(Method::DELETE, "/api/v1/sessions/{id}", Access::Admin, "End one session", session_end),
        get("/api/v1/groups", Access::Admin, "List groups", group_list),
        post("/api/v1/groups", Access::Admin, "Create a group {name, description?}", group_create),
        get("/api/v1/groups/{id}", Access::Admin, "A group and its members", group_get),
        E::new(
            Method::DELETE,
            "/api/v1/groups/{id}",
            Access::Admin,
            "Delete a group (memberships and grants go with it)",
            group_delete,
        ),
        post("/api/v1/groups/{id}/members", Access::Admin, "Add a member {username}", member_add),
        E::new(
            Method::DELETE,
            "/api/v1/groups/{id}/members/{user_id}",
            Access::Admin,
            "Remove a member",
            member_remove,
        ),
        get(
            "/api/v1/tokens",
            Access::SignedIn,
            "My API tokens (all tokens for administrators with ?all=true)",
            token_list,
        ),
        post(
            "/api/v1/tokens",
            Access::SignedIn,
            "Create an API token for myself {name}; the token is in the answer once",
            token_create,
        ),
        E::new(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            Access::SignedIn,
            "Revoke one of my tokens (administrators: any)",
            token_revoke,
        ),
    ]
}

fn created(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Created().json(body)
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn user_list(
    app: web::Data<App>,
    _a: AdminUser,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let query = q.into_inner().q;
    let list = app.db.read(move |c| users::search(c, &query, 1000)).await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    password: String,
    #[serde(default)]
    display_name: String,
    email: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "yes")]
    must_change_password: bool,
}

fn yes() -> bool {
    true
}

/// A new account as typed by an administrator.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub display_name: String,
    pub email: Option<String>,
    pub admin: bool,
    /// The password is temporary: it must be changed at first sign-in.
    pub must_change_password: bool,
}

/// Create an account (used by the API and the admin console).
pub async fn create_user(
    app: &App,
    admin: &CurrentUser,
    new: NewAccount,
) -> Result<users::User, AccountsError> {
    let NewAccount { username, password, display_name, email, admin: is_admin, must_change_password } = new;
    let (username, display_name) = (username.trim().to_string(), display_name.trim().to_string());
    users::check_username(&username)?;
    let hash = login::prepare_password(&app.hasher, &username, &password).await?;
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let user = users::create(
                &tx,
                NewUser {
                    username: &username,
                    display_name: &display_name,
                    email: email.as_deref().filter(|e| !e.is_empty()),
                    password_hash: Some(hash),
                    is_admin,
                    must_change_password,
                },
                now,
            )?;
            let detail = if is_admin { "administrator" } else { "" };
            audit::record(
                &tx,
                &actor.event("user.create").target("user", user.id, &user.username).detail(detail),
                now,
            )?;
            tx.commit()?;
            Ok(user)
        })
        .await
}

async fn user_create(
    app: web::Data<App>,
    a: AdminUser,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, WebError> {
    let b = body.into_inner();
    let new = NewAccount {
        username: b.username,
        password: b.password,
        display_name: b.display_name,
        email: b.email,
        admin: b.admin,
        must_change_password: b.must_change_password,
    };
    let user = create_user(&app, &a.0, new).await?;
    Ok(created(serde_json::to_value(&user).map_err(WebError::internal)?))
}

async fn user_get(
    app: web::Data<App>,
    _a: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let now = app.clock.now();
    let (user, group_list, grant_list, session_list) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((
                users::require(c, id)?,
                groups::of_user(c, id)?,
                crate::accounts::grants::for_person(c, id)?,
                sessions::list_for_user(c, id, policy, now)?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user": user, "groups": group_list, "grants": grant_list, "sessions": session_list,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    display_name: Option<String>,
    email: Option<String>,
    disabled: Option<bool>,
    admin: Option<bool>,
}

/// Apply a change to a person with its audit events (API and admin console).
pub async fn change_user(
    app: &App,
    admin: &CurrentUser,
    id: UserId,
    patch: UserChange,
) -> Result<users::User, AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |conn| {
            let c = conn.transaction()?;
            let before = users::require(&c, id)?;
            if patch.display_name.is_some() || patch.email.is_some() {
                let name = patch.display_name.clone().unwrap_or(before.display_name.clone());
                let email = patch.email.clone().or(before.email.clone());
                users::update_profile(&c, id, name.trim(), email.as_deref().filter(|e| !e.is_empty()))?;
                audit::record(&c, &actor.event("user.update").target("user", id, &before.username), now)?;
            }
            if let Some(disabled) = patch.disabled
                && disabled != before.disabled
            {
                if disabled && id == actor.id.unwrap_or(UserId(0)) {
                    return Err(AccountsError::Refused("you cannot disable your own account"));
                }
                users::set_disabled(&c, id, disabled, now)?;
                let action = if disabled { "user.disable" } else { "user.enable" };
                audit::record(&c, &actor.event(action).target("user", id, &before.username), now)?;
            }
            if let Some(admin_flag) = patch.admin
                && admin_flag != before.is_admin
            {
                users::set_admin(&c, id, admin_flag)?;
                let action = if admin_flag { "user.admin-grant" } else { "user.admin-revoke" };
                audit::record(&c, &actor.event(action).target("user", id, &before.username), now)?;
            }
            let after = users::require(&c, id)?;
            c.commit()?;
            Ok(after)
        })
        .await
}

#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

async fn user_patch(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<UserId>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, WebError> {
    let b = body.into_inner();
    let change =
        UserChange { display_name: b.display_name, email: b.email, disabled: b.disabled, admin: b.admin };
    let user = change_user(&app, &a.0, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
}

async fn user_password(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<UserId>,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, WebError> {
    login::set_temporary_password(&app, &a.0.actor(), path.into_inner(), &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn unlock_user(app: &App, admin: &CurrentUser, id: UserId) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let user = users::require(c, id)?;
            throttle::clear(c, &user.username)?;
            audit::record(c, &actor.event("user.unlock").target("user", id, &user.username), now)?;
            Ok(())
        })
        .await
}

async fn user_unlock(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    unlock_user(&app, &a.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn user_sessions(
    app: web::Data<App>,
    _a: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let now = app.clock.now();
    let list = app
        .db
        .read(move |c| {
            users::require(c, id)?;
            sessions::list_for_user(c, id, policy, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// End every session of a person (API and admin console).
pub async fn end_sessions(app: &App, admin: &CurrentUser, id: UserId) -> Result<usize, AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let user = users::require(c, id)?;
            let n = sessions::revoke_all(c, id)?;
            audit::record(
                c,
                &actor
                    .event("session.revoke")
                    .target("user", id, &user.username)
                    .detail(format!("{n} sessions")),
                now,
            )?;
            Ok(n)
        })
        .await
}

async fn user_sessions_end(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    end_sessions(&app, &a.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn end_session(app: &App, admin: &CurrentUser, id: SessionId) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let owner = sessions::revoke(c, id)?.ok_or(AccountsError::NotFound("session"))?;
            let name = users::get(c, owner)?.map(|u| u.username).unwrap_or_default();
            audit::record(
                c,
                &actor.event("session.revoke").target("user", owner, &name).detail(format!("session {id}")),
                now,
            )?;
            Ok(())
        })
        .await
}

async fn session_end(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<SessionId>,
) -> Result<HttpResponse, WebError> {
    end_session(&app, &a.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn group_list(app: web::Data<App>, _a: AdminUser) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(app.db.read(groups::list).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create_group(
    app: &App,
    admin: &CurrentUser,
    name: &str,
    description: &str,
) -> Result<groups::Group, AccountsError> {
    let now = app.clock.now();
    let (name, description, actor) = (name.trim().to_string(), description.trim().to_string(), admin.actor());
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let g = groups::create(&tx, &name, &description, now)?;
            audit::record(&tx, &actor.event("group.create").target("group", g.id, &g.name), now)?;
            tx.commit()?;
            Ok(g)
        })
        .await
}

async fn group_create(
    app: web::Data<App>,
    a: AdminUser,
    body: web::Json<NewGroupBody>,
) -> Result<HttpResponse, WebError> {
    let g = create_group(&app, &a.0, &body.name, &body.description).await?;
    Ok(created(serde_json::json!({"id": g.id, "name": g.name})))
}

async fn group_get(
    app: web::Data<App>,
    _a: AdminUser,
    path: web::Path<GroupId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let (g, members) = app
        .db
        .read(move |c| Ok::<_, AccountsError>((groups::require(c, id)?, groups::members(c, id)?)))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"group": g, "members": members})))
}

pub async fn delete_group(app: &App, admin: &CurrentUser, id: GroupId) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let g = groups::delete(&tx, id)?;
            audit::record(
                &tx,
                &actor
                    .event("group.delete")
                    .target("group", id, &g.name)
                    .detail(format!("{} members", g.members)),
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
}

async fn group_delete(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<GroupId>,
) -> Result<HttpResponse, WebError> {
    delete_group(&app, &a.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    username: String,
}

pub async fn add_member(
    app: &App,
    admin: &CurrentUser,
    group: GroupId,
    username: &str,
) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let (username, actor) = (username.trim().to_string(), admin.actor());
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let g = groups::require(&tx, group)?;
            let user = users::by_username(&tx, &username)?.ok_or(AccountsError::NotFound("user"))?;
            if groups::add_member(&tx, group, user.id, now)? {
                audit::record(
                    &tx,
                    &actor
                        .event("group.member-add")
                        .target("group", group, &g.name)
                        .detail(user.username.clone()),
                    now,
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

async fn member_add(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<GroupId>,
    body: web::Json<MemberBody>,
) -> Result<HttpResponse, WebError> {
    add_member(&app, &a.0, path.into_inner(), &body.username).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_member(
    app: &App,
    admin: &CurrentUser,
    group: GroupId,
    user: UserId,
) -> Result<(), AccountsError> {
    let now = app.clock.now();
    let actor = admin.actor();
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let g = groups::require(&tx, group)?;
            let u = users::require(&tx, user)?;
            if !groups::remove_member(&tx, group, user)? {
                return Err(AccountsError::NotFound("group member"));
            }
            audit::record(
                &tx,
                &actor.event("group.member-remove").target("group", group, &g.name).detail(u.username),
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
}

async fn member_remove(
    app: web::Data<App>,
    a: AdminUser,
    path: web::Path<(GroupId, UserId)>,
) -> Result<HttpResponse, WebError> {
    let (g, u) = path.into_inner();
    remove_member(&app, &a.0, g, u).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct AllQuery {
    #[serde(default)]
    all: bool,
}

async fn token_list(
    app: web::Data<App>,
    user: CurrentUser,
    q: web::Query<AllQuery>,
) -> Result<HttpResponse, WebError> {
    if q.all && !user.user.is_admin {
        return Err(WebError::forbidden());
    }
    let who = if q.all { None } else { Some(user.user.id) };
    Ok(HttpResponse::Ok().json(app.db.read(move |c| tokens::list(c, who)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    name: String,
}

async fn token_create(
    app: web::Data<App>,
    user: CurrentUser,
    body: web::Json<TokenBody>,
) -> Result<HttpResponse, WebError> {
    let now = app.clock.now();
    let (uid, actor, name) = (user.user.id, user.actor(), body.name.trim().to_string());
    let (id, token) = app
        .db
        .write(move |c| {
            let tx = c.transaction()?;
            let (id, token) = tokens::create(&tx, uid, &name, now)?;
            audit::record(&tx, &actor.event("token.create").target("token", id, &name), now)?;
            tx.commit()?;
            Ok::<_, AccountsError>((id, token))
        })
        .await?;
    Ok(created(serde_json::json!({"id": id, "token": token})))
}

async fn token_revoke(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<TokenId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let info = app.db.read(move |c| tokens::get(c, id)).await?;
    match info {
        Some(t) if t.user_id == user.user.id || user.user.is_admin => {
            crate::web::pages::account::revoke_token(&app, &user, id).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Err(WebError::new(StatusCode::NOT_FOUND, "not-found", "That API token does not exist.")),
    }
}
