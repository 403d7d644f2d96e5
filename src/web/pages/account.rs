//! "My account": profile, password, where I am signed in, my API tokens.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::pages::{
    AccountView, ConfirmView, PasswordView, SessionRow, TokenRow, account_page, confirm_page, password_page,
};
use serde::Deserialize;

use super::{html, html_status, see_other};
use crate::App;
use crate::accounts::sessions::{self, SessionPolicy};
use crate::accounts::{AccountsError, groups, login, tokens};
use crate::clock::format_utc;
use crate::db::ids::TokenId;
use crate::error::AppError;
use crate::insights::audit;
use crate::web::auth::{Confirm, CsrfForm, CurrentUser, HasCsrf};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/account", Access::SignedIn, "My account", account),
        get("/account/password", Access::SignedIn, "Change-password page", password_form),
        post("/account/password", Access::SignedIn, "Change own password", password_submit),
        post("/account/tokens", Access::SignedIn, "Create an API token", token_create),
        get(
            "/account/tokens/{id}/revoke",
            Access::SignedIn,
            "Confirm revoking an own API token",
            token_revoke_confirm,
        ),
        post("/account/tokens/{id}/revoke", Access::SignedIn, "Revoke an own API token", token_revoke),
    ]
}

pub fn token_rows(list: &[tokens::TokenInfo]) -> Vec<TokenRow> {
    list.iter()
        .map(|t| TokenRow {
            id: t.id.0,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            owner: t.username.clone(),
            created: format_utc(t.created_at),
            last_used: t.last_used_at.map(format_utc).unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.is_some(),
        })
        .collect()
}

async fn render_account(
    req: &HttpRequest,
    app: &App,
    user: &CurrentUser,
    new_token: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let uid = user.user.id;
    let policy = SessionPolicy::from_config(&app.config.sessions);
    let now = app.clock.now();
    let (group_list, session_list, token_list) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((
                groups::of_user(c, uid)?,
                sessions::list_for_user(c, uid, policy, now)?,
                tokens::list(c, Some(uid))?,
            ))
        })
        .await?;
    let group_names: Vec<String> = group_list.into_iter().map(|g| g.name).collect();
    let current = user.session_id();
    let session_rows: Vec<SessionRow> = session_list
        .iter()
        .map(|s| SessionRow {
            id: s.id.0,
            started: format_utc(s.created_at),
            last_seen: format_utc(s.last_seen_at),
            client: s.client_addr.clone(),
            current: Some(s.id) == current,
        })
        .collect();
    let rows = token_rows(&token_list);
    let view = AccountView {
        csrf: user.csrf().unwrap_or_default(),
        username: &user.user.username,
        display_name: &user.user.display_name,
        groups: &group_names,
        sessions: &session_rows,
        tokens: &rows,
        new_token,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, account_page(&chrome(req, Some(user)), &view)))
}

async fn account(req: HttpRequest, app: web::Data<App>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    render_account(&req, &app, &user, None, None).await
}

async fn password_form(req: HttpRequest, app: web::Data<App>, user: CurrentUser) -> HttpResponse {
    let view = PasswordView {
        csrf: user.csrf().unwrap_or_default(),
        forced: user.user.must_change_password,
        error: None,
        min_length: app.config.passwords.min_length,
    };
    html(password_page(&chrome(&req, Some(&user)), &view))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

impl HasCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn password_submit(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    let result = if f.new != f.confirm {
        Err("The two new passwords are different. Type the same password twice.".to_string())
    } else {
        login::change_own_password(&app, &user.actor(), &user.user, &f.current, &f.new, user.session_id())
            .await
            .map_err(
                |e| if e.kind().is_client_error() { e.user_message() } else { WebError::from(e).message },
            )
    };
    match result {
        Ok(()) => Ok(see_other("/?notice=password-changed")),
        Err(message) => {
            let view = PasswordView {
                csrf: user.csrf().unwrap_or_default(),
                forced: user.user.must_change_password,
                error: Some(&message),
                min_length: app.config.passwords.min_length,
            };
            Ok(html_status(StatusCode::BAD_REQUEST, password_page(&chrome(&req, Some(&user)), &view)))
        }
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
    name: String,
}

impl HasCsrf for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn token_create(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    form: CsrfForm<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let name = form.0.name.trim().to_string();
    let now = app.clock.now();
    let (uid, actor) = (user.user.id, user.actor());
    let created = app
        .db
        .write(move |c| {
            let tx = c.transaction()?;
            let (id, token) = tokens::create(&tx, uid, &name, now)?;
            audit::record(&tx, &actor.event("token.create").target("token", id, &name), now)?;
            tx.commit()?;
            Ok::<_, AccountsError>(token)
        })
        .await;
    match created {
        Ok(token) => render_account(&req, &app, &user, Some(&token), None).await,
        Err(e) if e.kind().is_client_error() => {
            render_account(&req, &app, &user, None, Some(&e.user_message())).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The token if it belongs to `user` (administrators may act on any).
async fn own_token(app: &App, user: &CurrentUser, id: TokenId) -> Result<tokens::TokenInfo, WebError> {
    let info = app.db.read(move |c| tokens::get(c, id)).await?;
    match info {
        Some(t) if t.user_id == user.user.id || user.user.is_admin => Ok(t),
        _ => Err(WebError::not_found()),
    }
}

async fn token_revoke_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<TokenId>,
) -> Result<HttpResponse, WebError> {
    let t = own_token(&app, &user, path.into_inner()).await?;
    let question = format!("Revoke the API token “{}” ({}…)?", t.name, t.prefix);
    let action = format!("/account/tokens/{}/revoke", t.id);
    Ok(html(confirm_page(
        &chrome(&req, Some(&user)),
        &ConfirmView {
            title: "Revoke API token",
            question: &question,
            consequence: "Scripts using it will stop working at once. This cannot be undone.",
            action: &action,
            button: "Revoke token",
            cancel: "/account#tokens",
            csrf: user.csrf().unwrap_or_default(),
        },
    )))
}

async fn token_revoke(
    app: web::Data<App>,
    user: CurrentUser,
    path: web::Path<TokenId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let t = own_token(&app, &user, path.into_inner()).await?;
    revoke_token(&app, &user, t.id).await?;
    Ok(see_other("/account?notice=revoked#tokens"))
}

pub async fn revoke_token(app: &App, user: &CurrentUser, id: TokenId) -> Result<(), WebError> {
    let now = app.clock.now();
    let actor = user.actor();
    app.db
        .write(move |c| {
            let tx = c.transaction()?;
            let info = tokens::revoke(&tx, id, now)?;
            audit::record(
                &tx,
                &actor.event("token.revoke").target(
                    "token",
                    id,
                    &format!("{} ({})", info.name, info.username),
                ),
                now,
            )?;
            tx.commit()?;
            Ok::<_, AccountsError>(())
        })
        .await?;
    Ok(())
}
