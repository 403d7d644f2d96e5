//! HTTP: actix-web routes per area, extractors, CSRF and the mapping of errors to responses.
//! No SQL and no business rules here: handlers call the domain modules.
//!
//! Every route is declared once in an [`Endpoint`] table, which registers it, documents it in
//! the OpenAPI description and feeds the authorization-matrix test.

pub mod api;
pub mod assets;
pub mod auth;
pub mod cache;
pub mod error;
pub mod media_files;
pub mod middleware;
pub mod pages;
pub mod ranges;
pub mod replication;
pub mod replication_feed;
pub mod sendfile;

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, Route, web};

use crate::App;
use crate::accounts::grants::Role;

/// What a route requires, as documented and as tested by the authorization matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Anyone; shows only what the caller may see.
    Filtered,
    /// A signed-in person (any grants).
    SignedIn,
    /// The given role on the category in the path (administrators always pass).
    Category(Role),
    /// Site administrators only.
    Admin,
    /// Administrators' tokens, the metrics token, or loopback.
    Metrics,
    /// The other node of the pair, proving it holds the replication secret.
    Replication,
}

impl Access {
    pub fn describe(self) -> &'static str {
        match self {
            Access::Public => "anyone",
            Access::Filtered => "anyone; results limited to what the caller may view",
            Access::SignedIn => "signed-in people",
            Access::Category(Role::View) => "view on the category",
            Access::Category(Role::Contribute) => "contribute on the category",
            Access::Category(Role::Edit) => "edit on the category",
            Access::Category(Role::Manage) => "manage on the category",
            Access::Admin => "site administrators",
            Access::Metrics => "administrators' API tokens, the metrics token, or loopback",
            Access::Replication => "the paired server, signing with the replication secret",
        }
    }
}

pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub route: Route,
}

impl Endpoint {
    pub fn new<F, Args>(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: F,
    ) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::route().method(method.clone()).to(handler);
        Endpoint { method, path, access, summary, route }
    }
}

pub fn get<F, Args>(path: &'static str, access: Access, summary: &'static str, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::GET, path, access, summary, handler)
}

pub fn post<F, Args>(path: &'static str, access: Access, summary: &'static str, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::POST, path, access, summary, handler)
}

/// Every route of the server. actix tries routes in this order, so the media files (every
/// segment of every player) come first: fewer patterns are tried before theirs matches.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = media_files::endpoints();
    all.extend(pages::endpoints());
    all.extend(api::endpoints());
    all.extend(replication::endpoints());
    all
}

/// Register the routes and the middleware on an actix `App`.
pub fn configure(app: App) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let limit = app.config.limits.max_form_bytes;
        cfg.app_data(web::Data::new(app))
            .app_data(web::FormConfig::default().limit(limit))
            .app_data(web::JsonConfig::default().limit(limit))
            .app_data(web::PayloadConfig::default().limit(limit));
        for e in endpoints() {
            cfg.route(e.path, e.route);
        }
        cfg.route("/static/{name}", web::get().to(assets::serve));
    }
}

/// The page chrome for a request (used by handlers and error pages).
pub fn chrome(req: &actix_web::HttpRequest, user: Option<&auth::CurrentUser>) -> reelbox_templates::Chrome {
    let school = req
        .app_data::<web::Data<App>>()
        .map(|a| a.config.school_name.clone())
        .unwrap_or_else(|| "reelbox".into());
    let section = match req.path() {
        p if p.starts_with("/admin") => reelbox_templates::Section::Admin,
        p if p.starts_with("/account") => reelbox_templates::Section::Account,
        "/" => reelbox_templates::Section::Home,
        p if p.starts_with("/categories") => reelbox_templates::Section::Home,
        p if p.starts_with("/my/uploads") => reelbox_templates::Section::MyUploads,
        p if p.starts_with("/recycle") => reelbox_templates::Section::Recycle,
        _ => reelbox_templates::Section::None,
    };
    let notice = web::Query::<Notice>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.notice.as_deref().and_then(notice_text))
        .map(str::to_string);
    reelbox_templates::Chrome {
        school_name: school,
        user: user.map(|u| reelbox_templates::NavUser {
            name: u.user.shown_name().to_string(),
            username: u.user.username.clone(),
            is_admin: u.user.is_admin,
            may_recycle: u.user.is_admin || auth::manages_any(req),
        }),
        csrf: user.and_then(|u| u.csrf()).unwrap_or_default().to_string(),
        css_url: assets::url("app.css"),
        js_url: assets::url("app.js"),
        icon_url: assets::url("icon.svg"),
        section,
        notice,
    }
}

#[derive(serde::Deserialize)]
struct Notice {
    notice: Option<String>,
}

/// Confirmations shown after a redirect (`?notice=...`); a fixed table so nothing from the URL is echoed.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed-out" => "You have signed out.",
        "password-changed" => "Your password has been changed.",
        "saved" => "Saved.",
        "created" => "Created.",
        "removed" => "Removed.",
        "revoked" => "Revoked.",
        "disabled" => "The account has been disabled and its sessions ended.",
        "enabled" => "The account has been enabled.",
        "password-set" => "Temporary password set. The person must choose a new one at next sign-in.",
        "sessions-ended" => "Sessions ended.",
        "unlocked" => "Sign-in unlocked.",
        "setup-done" => "Welcome! Your administrator account is ready.",
        _ => return None,
    })
}

/// Chrome for error pages: the signed-in person is known if authentication already ran.
pub(crate) fn chrome_for_errors(req: &actix_web::HttpRequest) -> reelbox_templates::Chrome {
    let user = {
        use actix_web::HttpMessage;
        match req.extensions().get::<auth::Principal>() {
            Some(auth::Principal::Session(s)) => Some(auth::CurrentUser {
                user: s.user.clone(),
                session: Some((s.id, s.csrf.clone())),
                token: None,
                addr: String::new(),
            }),
            _ => None,
        }
    };
    chrome(req, user.as_ref())
}
