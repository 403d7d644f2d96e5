//! The browser upload page: pick a category, add files, watch them hash and upload. The work
//! happens in `static/upload.js` against the tus endpoint; this handler only lists the
//! categories the person may contribute to.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::upload::{UploadCategory, UploadView, upload_page};
use serde::Deserialize;

use super::html;
use crate::App;
use crate::accounts::grants::Role;
use crate::library::categories;
use crate::web::auth::{CurrentUser, access_of, all_categories};
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, assets, chrome, get};

/// Bytes per PATCH: small enough for proxies that cap request bodies, large enough to be fast.
const CHUNK_BYTES: u64 = 8 << 20;
/// `?chunk_kib=` may lower the chunk size (for slow or capped links), within these bounds.
const MIN_CHUNK_KIB: u64 = 64;
const MAX_CHUNK_KIB: u64 = 64 << 10;

pub fn endpoints() -> Vec<Endpoint> {
    vec![get(
        "/upload",
        Access::SignedIn,
        "Upload page: drag and drop files into a category the person may contribute to",
        upload,
    )]
}

#[derive(Deserialize)]
struct UploadQuery {
    category: Option<String>,
    chunk_kib: Option<String>,
}

async fn upload(req: HttpRequest, app: web::Data<App>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    let query = web::Query::<UploadQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(UploadQuery { category: None, chunk_kib: None });
    let access = access_of(&app, Some(&user)).await?;
    let all = all_categories(&app).await?;
    let depths = categories::depths(&all);
    let allowed: Vec<UploadCategory> = all
        .iter()
        .zip(depths)
        .filter(|(c, _)| access.can(c.id, Role::Contribute))
        .map(|(c, depth)| UploadCategory { id: c.id.0, name: c.name.clone(), depth })
        .collect();
    let wanted = query.category.as_deref().and_then(|c| c.trim().parse::<i64>().ok());
    let selected = wanted.filter(|w| allowed.iter().any(|c| c.id == *w));
    let chunk_bytes = query
        .chunk_kib
        .as_deref()
        .and_then(|k| k.trim().parse::<u64>().ok())
        .map_or(CHUNK_BYTES, |k| k.clamp(MIN_CHUNK_KIB, MAX_CHUNK_KIB) * 1024);
    let allowed_text = crate::ingest::detect::accepted_sentence(&app.config.uploads.kinds());
    let script_url = assets::url("upload.js");
    let mut page_chrome = chrome(&req, Some(&user));
    page_chrome.section = reelbox_templates::Section::Upload;
    let view = UploadView {
        categories: &allowed,
        selected,
        chunk_bytes,
        max_bytes: app.config.uploads.max_size_bytes,
        script_url: &script_url,
        allowed: &allowed_text,
    };
    Ok(html(upload_page(&page_chrome, &view)))
}
