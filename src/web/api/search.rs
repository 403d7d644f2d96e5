//! Search over JSON: `GET /api/v1/search?q=TEXT[&category=ID][&page=N]` →
//! `{"total": N, "page": P, "per_page": 24, "items": [...]}`, only over what the caller may view.

use actix_web::{HttpResponse, web};

use crate::App;
use crate::library::catalogue;
use crate::web::auth::Viewer;
use crate::web::error::WebError;
use crate::web::pages::media::{SearchQuery, run_search};
use crate::web::{Access, Endpoint, get};

pub fn endpoints() -> Vec<Endpoint> {
    vec![get(
        "/api/v1/search",
        Access::Filtered,
        "Full-text search over titles, descriptions and tags: ?q=TEXT[&category=ID][&page=N] → \
         {total, page, per_page, items}; only items the caller may view are searched and counted",
        search,
    )]
}

async fn search(
    app: web::Data<App>,
    viewer: Viewer,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let q = query.into_inner();
    let result = run_search(&app, viewer.0.as_ref(), &q).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "total": result.total,
        "page": q.page.unwrap_or(1).clamp(1, catalogue::MAX_PAGE),
        "per_page": catalogue::PER_PAGE,
        "items": result.items,
    })))
}
