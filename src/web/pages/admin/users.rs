//! People: search, create an account, and one person's page (profile, groups, what they can
//! see, sessions, API tokens, sign-in lock). The actions on a person are in `user_actions`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::users::{
    NewUserDraft, PersonGrantRow, PersonTokenRow, UserRow, UserView, UsersView, user_page, users_page,
};
use reelbox_templates::pages::SessionRow;
use serde::Deserialize;

use super::{mistake, ticked};
use crate::App;
use crate::accounts::grants::{self, Grantee};
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::{AccountsError, groups, throttle, tokens, users};
use crate::clock::format_utc;
use crate::db::ids::UserId;
use crate::library::categories;
use crate::web::api::directory::{NewAccount, UserChange, change_user, create_user};
use crate::web::auth::{AdminUser, CsrfForm, HasCsrf};
use crate::web::error::WebError;
use crate::web::pages::{html_status, see_other};
use crate::web::{Access, Endpoint, chrome, get, post};

/// How many people the list shows before asking for a narrower search.
const PAGE: usize = 200;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/admin/users", Access::Admin, "People: search (?q=) and the create-account form", list),
        post("/admin/users", Access::Admin, "Create an account", create),
        get(
            "/admin/users/{id}",
            Access::Admin,
            "One person: profile, groups, grants, sessions, tokens, sign-in lock",
            detail,
        ),
        post("/admin/users/{id}", Access::Admin, "Change a person's name and email", save_profile),
    ]
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn render_list(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    query: &str,
    draft: NewUserDraft<'_>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let q = query.trim().to_string();
    let found = app.db.read(move |c| users::search(c, &q, PAGE as u32 + 1)).await?;
    let more = found.len() > PAGE;
    let rows: Vec<UserRow> = found
        .iter()
        .take(PAGE)
        .map(|u| UserRow {
            id: u.id.0,
            username: u.username.clone(),
            name: u.display_name.clone(),
            admin: u.is_admin,
            disabled: u.disabled,
            last_login: u.last_login_at.map(format_utc).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let view = UsersView {
        csrf: admin.0.csrf().unwrap_or_default(),
        query: query.trim(),
        rows: &rows,
        more,
        draft,
        min_length: app.config.passwords.min_length,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, users_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn list(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    render_list(&req, &app, &admin, &q.q, NewUserDraft::default(), None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    admin: Option<String>,
    must_change_password: Option<String>,
}

impl HasCsrf for NewUserForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn create(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    form: CsrfForm<NewUserForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    let (is_admin, must_change) = (ticked(&f.admin), ticked(&f.must_change_password));
    let (username, display_name) = (f.username.trim(), f.display_name.trim());
    let new = NewAccount {
        username: username.to_string(),
        password: f.password.clone(),
        display_name: display_name.to_string(),
        email: None,
        admin: is_admin,
        must_change_password: must_change,
    };
    let created = create_user(&app, &admin.0, new).await;
    match created {
        Ok(user) => Ok(see_other(&format!("/admin/users/{}?notice=created", user.id))),
        Err(e) => {
            let message = mistake(e)?;
            let draft = NewUserDraft { username, display_name, admin: is_admin, must_change };
            render_list(&req, &app, &admin, "", draft, Some(&message)).await
        }
    }
}

/// What was typed into the profile form, shown again after a mistake.
pub(crate) struct ProfileDraft {
    pub display_name: String,
    pub email: String,
}

/// One person's page; `error` (with status 400) after a mistake in one of its forms.
pub(crate) async fn render_user(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    id: UserId,
    error: Option<&str>,
    draft: Option<ProfileDraft>,
) -> Result<HttpResponse, WebError> {
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let login_cfg = app.config.login.clone();
    let now = app.clock.now();
    let (user, mine, all_groups, grant_list, cats, session_list, token_list, lockouts) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((
                users::require(c, id)?,
                groups::of_user(c, id)?,
                groups::list(c)?,
                grants::for_person(c, id)?,
                categories::list(c)?,
                sessions::list_for_user(c, id, policy, now)?,
                tokens::list(c, Some(id))?,
                throttle::lockouts(c, &login_cfg, now)?,
            ))
        })
        .await?;
    let names: HashMap<_, _> = cats.iter().map(|c| (c.id, c.name.clone())).collect();
    let current = admin.0.session_id();
    let lockout = lockouts
        .iter()
        .find(|l| l.username.eq_ignore_ascii_case(&user.username))
        .map(|l| (l.failures_last_hour, format_utc(l.locked_until)));
    let draft = draft.unwrap_or_else(|| ProfileDraft {
        display_name: user.display_name.clone(),
        email: user.email.clone().unwrap_or_default(),
    });
    let view = UserView {
        csrf: admin.0.csrf().unwrap_or_default(),
        id: user.id.0,
        username: &user.username,
        display_name: &draft.display_name,
        email: &draft.email,
        is_admin: user.is_admin,
        disabled: user.disabled,
        must_change: user.must_change_password,
        created: format_utc(user.created_at),
        last_login: user.last_login_at.map(format_utc).unwrap_or_else(|| "never".into()),
        is_self: user.id == admin.0.user.id,
        groups: mine.iter().map(|g| (g.id.0, g.name.clone())).collect(),
        other_groups: all_groups
            .iter()
            .filter(|g| !mine.iter().any(|m| m.id == g.id))
            .map(|g| (g.id.0, g.name.clone()))
            .collect(),
        grants: grant_list
            .iter()
            .map(|g| PersonGrantRow {
                category_id: g.category_id.0,
                category: names
                    .get(&g.category_id)
                    .cloned()
                    .unwrap_or_else(|| format!("category {}", g.category_id)),
                role: g.role.as_str().to_string(),
                via: match g.grantee {
                    Grantee::Group(_) => format!("through the group {}", g.grantee_name),
                    Grantee::User(_) => "granted to them directly".into(),
                },
            })
            .collect(),
        sessions: session_list
            .iter()
            .map(|s| SessionRow {
                id: s.id.0,
                started: format_utc(s.created_at),
                last_seen: format_utc(s.last_seen_at),
                client: s.client_addr.clone(),
                current: Some(s.id) == current,
            })
            .collect(),
        tokens: token_list
            .iter()
            .map(|t| PersonTokenRow {
                id: t.id.0,
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                created: format_utc(t.created_at),
                last_used: t.last_used_at.map(format_utc).unwrap_or_else(|| "never".into()),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        lockout,
        min_length: app.config.passwords.min_length,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, user_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn detail(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
) -> Result<HttpResponse, WebError> {
    render_user(&req, &app, &admin, path.into_inner(), None, None).await
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
}

impl HasCsrf for ProfileForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn save_profile(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<UserId>,
    form: CsrfForm<ProfileForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let f = form.0;
    let change = UserChange {
        display_name: Some(f.display_name.trim().to_string()),
        email: Some(f.email.trim().to_string()),
        ..UserChange::default()
    };
    match change_user(&app, &admin.0, id, change).await {
        Ok(_) => Ok(see_other(&format!("/admin/users/{id}?notice=saved"))),
        Err(e) => {
            let message = mistake(e)?;
            let draft = ProfileDraft { display_name: f.display_name, email: f.email };
            render_user(&req, &app, &admin, id, Some(&message), Some(draft)).await
        }
    }
}
