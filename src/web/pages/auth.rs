//! Sign-in, sign-out and the first-run setup page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::pages::{LoginView, SetupView, login_page, setup_closed_page, setup_page};
use serde::Deserialize;

use super::{html, html_status, safe_next, see_other};
use crate::App;
use crate::accounts::{AccountsError, login};
use crate::error::AppError;
use crate::web::auth::{
    CsrfForm, CurrentUser, FORM_COOKIE, HasCsrf, Viewer, client_addr, session_cookie_name,
};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/login", Access::Public, "Sign-in page", login_form),
        post("/login", Access::Public, "Sign in (form: username, password, csrf)", login_submit),
        post("/logout", Access::SignedIn, "Sign out", logout),
        get("/setup", Access::Public, "First-run setup page (needs the printed link)", setup_form),
        post("/setup", Access::Public, "Create the first administrator", setup_submit),
    ]
}

/// The pre-session CSRF value: reuse the browser's, or make one.
fn form_token(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(FORM_COOKIE) {
        Some(c) if c.value().len() >= 32 => (c.value().to_string(), None),
        _ => {
            let token = crate::accounts::random_token();
            let https = req.app_data::<web::Data<App>>().is_some_and(|a| a.is_https());
            let cookie = Cookie::build(FORM_COOKIE, token.clone())
                .path("/")
                .http_only(true)
                .secure(https)
                .same_site(SameSite::Strict)
                .finish();
            (token, Some(cookie))
        }
    }
}

fn with_cookie(mut res: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = res.add_cookie(&c);
    }
    res
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn login_form(req: HttpRequest, viewer: Viewer, q: web::Query<NextQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref().unwrap_or("/")).to_string();
    if viewer.0.is_some() {
        return see_other(&next);
    }
    let (token, cookie) = form_token(&req);
    let page =
        login_page(&chrome(&req, None), &LoginView { csrf: &token, username: "", next: &next, error: None });
    with_cookie(html(page), cookie)
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

impl HasCsrf for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn login_submit(
    req: HttpRequest,
    app: web::Data<App>,
    form: CsrfForm<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    let ua = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    match login::sign_in(&app, &f.username, &f.password, &client_addr(&req), &ua).await {
        Ok(signed_in) => {
            let cookie = Cookie::build(session_cookie_name(app.is_https()), signed_in.session.token)
                .path("/")
                .http_only(true)
                .secure(app.is_https())
                .same_site(SameSite::Lax)
                .finish();
            let to =
                if signed_in.user.must_change_password { "/account/password" } else { safe_next(&f.next) };
            let mut res = see_other(to);
            res.add_cookie(&cookie).map_err(WebError::internal)?;
            Ok(res)
        }
        Err(
            e @ (AccountsError::InvalidCredentials
            | AccountsError::Throttled { .. }
            | AccountsError::Disabled),
        ) => {
            let web_error = WebError::from(AccountsError::InvalidCredentials);
            let (status, message) = match &e {
                AccountsError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, e.user_message()),
                AccountsError::Disabled => (StatusCode::FORBIDDEN, e.user_message()),
                _ => (web_error.status, web_error.message),
            };
            let (token, _) = form_token(&req);
            let page = login_page(
                &chrome(&req, None),
                &LoginView {
                    csrf: &token,
                    username: &f.username,
                    next: safe_next(&f.next),
                    error: Some(&message),
                },
            );
            let mut res = html_status(status, page);
            if let AccountsError::Throttled { retry_after_secs } = e {
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(retry_after_secs),
                );
            }
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout(
    app: web::Data<App>,
    user: CurrentUser,
    _form: CsrfForm<crate::web::auth::Confirm>,
) -> Result<HttpResponse, WebError> {
    if let Some(session) = user.session_id() {
        login::sign_out(&app, &user.actor(), session).await?;
    }
    let mut res = see_other("/login?notice=signed-out");
    let mut gone = Cookie::build(session_cookie_name(app.is_https()), "").path("/").finish();
    gone.make_removal();
    res.add_cookie(&gone).map_err(WebError::internal)?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

async fn setup_form(req: HttpRequest, app: web::Data<App>, q: web::Query<SetupQuery>) -> HttpResponse {
    let token = q.token.clone().unwrap_or_default();
    // An administrator created on the command line meanwhile closes the link.
    if app.db.read(crate::accounts::users::admin_exists).await.unwrap_or(true) {
        app.setup.close();
    }
    if !app.setup.is_valid(&token, app.clock.now()) {
        return html_status(StatusCode::NOT_FOUND, setup_closed_page(&chrome(&req, None)));
    }
    let (csrf, cookie) = form_token(&req);
    let view = SetupView {
        csrf: &csrf,
        token: &token,
        username: "",
        display_name: "",
        error: None,
        min_length: app.config.passwords.min_length,
    };
    with_cookie(html(setup_page(&chrome(&req, None), &view)), cookie)
}

#[derive(Deserialize)]
pub struct SetupForm {
    csrf: String,
    token: String,
    username: String,
    #[serde(default)]
    display_name: String,
    password: String,
    password_confirm: String,
}

impl HasCsrf for SetupForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn setup_submit(
    req: HttpRequest,
    app: web::Data<App>,
    form: CsrfForm<SetupForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    if !app.setup.is_valid(&f.token, app.clock.now()) {
        return Ok(html_status(StatusCode::NOT_FOUND, setup_closed_page(&chrome(&req, None))));
    }
    let result = if f.password != f.password_confirm {
        Err("The two passwords are different. Type the same password twice.".to_string())
    } else {
        login::complete_setup(
            &app,
            &f.token,
            f.username.trim(),
            f.display_name.trim(),
            &f.password,
            &client_addr(&req),
        )
        .await
        .map_err(|e| if e.kind().is_client_error() { e.user_message() } else { WebError::from(e).message })
    };
    match result {
        Ok(_) => {
            // Sign the new administrator straight in.
            let ua = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let signed_in =
                login::sign_in(&app, f.username.trim(), &f.password, &client_addr(&req), &ua).await?;
            let cookie = Cookie::build(session_cookie_name(app.is_https()), signed_in.session.token)
                .path("/")
                .http_only(true)
                .secure(app.is_https())
                .same_site(SameSite::Lax)
                .finish();
            let mut res = see_other("/admin?notice=setup-done");
            res.add_cookie(&cookie).map_err(WebError::internal)?;
            Ok(res)
        }
        Err(message) => {
            let view = SetupView {
                csrf: &f.csrf,
                token: &f.token,
                username: &f.username,
                display_name: &f.display_name,
                error: Some(&message),
                min_length: app.config.passwords.min_length,
            };
            Ok(html_status(StatusCode::BAD_REQUEST, setup_page(&chrome(&req, None), &view)))
        }
    }
}
