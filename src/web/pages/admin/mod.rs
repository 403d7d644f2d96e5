//! The admin console: people, groups, categories, API tokens, the audit trail.
//!
//! Pages follow one pattern: GET renders, POST is CSRF-checked, calls the same operation the
//! JSON API uses (which writes the audit event) and redirects with `?notice=`. A mistake the
//! administrator can fix (a taken name, a refused password) re-renders the form with status 400
//! and what was typed; anything destructive is confirmed on its own GET page first.

pub mod audit;
pub mod categories;
pub mod dashboard;
pub mod groups;
pub mod tokens;
pub mod user_actions;
pub mod users;

use actix_web::{HttpRequest, HttpResponse};
use reelbox_templates::pages::{ConfirmView, confirm_page};

use super::html;
use crate::web::auth::AdminUser;
use crate::web::error::WebError;
use crate::web::{Endpoint, chrome};

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = dashboard::endpoints();
    all.extend(users::endpoints());
    all.extend(user_actions::endpoints());
    all.extend(groups::endpoints());
    all.extend(categories::endpoints());
    all.extend(tokens::endpoints());
    all.extend(audit::endpoints());
    all
}

/// The message to show when `e` is something the administrator can correct (a client error);
/// server-side failures stay errors and become the error page.
pub(crate) fn mistake(e: impl Into<WebError>) -> Result<String, WebError> {
    let e = e.into();
    if e.status.is_client_error() { Ok(e.message) } else { Err(e) }
}

/// A ticked HTML checkbox sends its value; an unticked one sends nothing.
pub(crate) fn ticked(field: &Option<String>) -> bool {
    field.as_deref().is_some_and(|v| !v.is_empty())
}

/// What a confirmation page says and where its form goes.
pub(crate) struct Ask<'a> {
    pub title: &'a str,
    pub question: &'a str,
    pub consequence: &'a str,
    /// The URL the confirming form posts to (the confirmation page's own URL).
    pub action: &'a str,
    pub button: &'a str,
    pub cancel: &'a str,
}

/// "Are you sure?" before a destructive action; its form posts back to `ask.action`.
pub(crate) fn confirm(req: &HttpRequest, admin: &AdminUser, ask: &Ask<'_>) -> HttpResponse {
    html(confirm_page(
        &chrome(req, Some(&admin.0)),
        &ConfirmView {
            title: ask.title,
            question: ask.question,
            consequence: ask.consequence,
            action: ask.action,
            button: ask.button,
            cancel: ask.cancel,
            csrf: admin.0.csrf().unwrap_or_default(),
        },
    ))
}
