//! Every API token on the site, and revoking one.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::tokens::{AdminTokenRow, tokens_page};
use serde::Deserialize;

use super::{Ask, confirm};
use crate::App;
use crate::accounts::{AccountsError, tokens};
use crate::clock::format_utc;
use crate::db::ids::TokenId;
use crate::web::auth::{AdminUser, Confirm, CsrfForm};
use crate::web::error::WebError;
use crate::web::pages::account::revoke_token;
use crate::web::pages::{html, see_other};
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/admin/tokens", Access::Admin, "All API tokens", list),
        get(
            "/admin/tokens/{id}/revoke",
            Access::Admin,
            "Confirm revoking an API token (?from=user returns to its owner's page)",
            revoke_confirm,
        ),
        post("/admin/tokens/{id}/revoke", Access::Admin, "Revoke any API token", revoke),
    ]
}

async fn list(req: HttpRequest, app: web::Data<App>, admin: AdminUser) -> Result<HttpResponse, WebError> {
    let all = app.db.read(|c| tokens::list(c, None)).await?;
    let rows: Vec<AdminTokenRow> = all
        .iter()
        .map(|t| AdminTokenRow {
            id: t.id.0,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            owner_id: t.user_id.0,
            owner: t.username.clone(),
            created: format_utc(t.created_at),
            last_used: t.last_used_at.map(format_utc).unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.is_some(),
        })
        .collect();
    Ok(html(tokens_page(&chrome(&req, Some(&admin.0)), &rows)))
}

/// Where the revoke was started: the token list, or the owner's page (`?from=user`).
#[derive(Deserialize)]
pub struct From {
    #[serde(default)]
    from: String,
}

impl From {
    fn owner_page(&self) -> bool {
        self.from == "user"
    }
}

async fn token(app: &App, id: TokenId) -> Result<tokens::TokenInfo, WebError> {
    let found = app.db.read(move |c| tokens::get(c, id)).await?;
    found.ok_or_else(|| AccountsError::NotFound("API token").into())
}

async fn revoke_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<TokenId>,
    q: web::Query<From>,
) -> Result<HttpResponse, WebError> {
    let t = token(&app, path.into_inner()).await?;
    let question = format!("Revoke the API token “{}” ({}…) of {}?", t.name, t.prefix, t.username);
    let (action, cancel) = if q.owner_page() {
        (format!("/admin/tokens/{}/revoke?from=user", t.id), format!("/admin/users/{}#tokens", t.user_id))
    } else {
        (format!("/admin/tokens/{}/revoke", t.id), "/admin/tokens".to_string())
    };
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Revoke API token",
            question: &question,
            consequence: "Scripts using it stop working at once. This cannot be undone; the owner can create a new token.",
            action: &action,
            button: "Revoke token",
            cancel: &cancel,
        },
    ))
}

async fn revoke(
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<TokenId>,
    q: web::Query<From>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let t = token(&app, path.into_inner()).await?;
    revoke_token(&app, &admin.0, t.id).await?;
    if q.owner_page() {
        Ok(see_other(&format!("/admin/users/{}?notice=revoked", t.user_id)))
    } else {
        Ok(see_other("/admin/tokens?notice=revoked"))
    }
}
