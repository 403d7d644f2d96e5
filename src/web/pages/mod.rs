//! HTML pages. Every form posts with a CSRF token ([`super::auth::CsrfForm`]) and answers with
//! a redirect, so reloading never re-submits.

pub mod account;
pub mod admin;
pub mod auth;
pub mod library;
pub mod media;
pub mod my;
pub mod playback;
pub mod recycle;
pub mod upload;

use actix_web::HttpResponse;
use actix_web::http::header;
use reelbox_templates::Markup;

use super::Endpoint;

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = auth::endpoints();
    all.extend(library::endpoints());
    all.extend(recycle::endpoints());
    all.extend(media::endpoints());
    all.extend(playback::endpoints());
    all.extend(account::endpoints());
    all.extend(admin::endpoints());
    all.extend(upload::endpoints());
    all.extend(my::endpoints());
    all
}

pub fn html(markup: Markup) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(markup.into_string())
}

pub fn html_status(status: actix_web::http::StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(markup.into_string())
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
}

/// Only same-site relative paths may be used as a post-sign-in destination.
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") { next } else { "/" }
}

/// The damage warning for an item's page, when the integrity scrub marked its original.
pub async fn damage_notice(
    app: &crate::App,
    id: crate::db::ids::MediaId,
) -> Result<Option<reelbox_templates::media::DamageNotice>, super::error::WebError> {
    let damaged = app.db.read(move |c| crate::library::scrub::damaged(c, id)).await?;
    Ok(damaged.map(|d| reelbox_templates::media::DamageNotice {
        since: crate::clock::format_utc(d.since),
        detail: d.detail,
    }))
}
