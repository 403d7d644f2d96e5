//! "My uploads" (`/my/uploads`): the signed-in person's own items, newest first. Videos and
//! recordings still being converted show a progress bar that `static/my-uploads.js` keeps up to
//! date from `GET /api/v1/media/{id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::my::{Conversion, MyUpload, MyUploadsView, my_uploads_page};
use serde::Deserialize;

use super::html;
use super::media::kind_label;
use crate::App;
use crate::library::catalogue::{self, Listed};
use crate::library::media::{MediaKind, MediaStatus};
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, assets, chrome, get};

pub fn endpoints() -> Vec<Endpoint> {
    vec![get(
        "/my/uploads",
        Access::SignedIn,
        "My uploads: the person's own items, newest first, with conversion progress",
        my_uploads,
    )]
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u32>,
}

async fn my_uploads(
    req: HttpRequest,
    app: web::Data<App>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let page = query.page.unwrap_or(1).clamp(1, catalogue::MAX_PAGE);
    let me = user.user.id;
    let listing = app.db.read(move |c| catalogue::list_owned(c, me, page)).await?;
    let items: Vec<MyUpload> = listing.items.iter().map(row).collect();
    let script_url = assets::url("my-uploads.js");
    let view = MyUploadsView {
        items: &items,
        page,
        pages: listing.pages(),
        total: listing.total,
        script_url: &script_url,
    };
    Ok(html(my_uploads_page(&chrome(&req, Some(&user)), &view)))
}

fn status_text(status: MediaStatus) -> &'static str {
    match status {
        MediaStatus::Ready => "Ready",
        MediaStatus::Processing => "Converting for playback",
        MediaStatus::Uploading => "Upload not finished",
        MediaStatus::Failed => "Failed",
        MediaStatus::Recycled => "In the recycle bin",
        MediaStatus::Archived => "Archived",
    }
}

fn row(l: &Listed) -> MyUpload {
    let m = &l.item;
    let converting =
        m.status == MediaStatus::Processing && matches!(m.kind, Some(MediaKind::Video | MediaKind::Audio));
    MyUpload {
        id: m.id.0,
        title: m.title.clone(),
        kind: kind_label(m.kind).to_string(),
        status: status_text(m.status).to_string(),
        status_code: m.status.as_str().to_string(),
        size: reelbox_templates::media::file_size(m.size),
        created: crate::clock::format_utc(m.created_at),
        conversion: converting.then(|| Conversion { percent: None, detail: "Starting…".into() }),
    }
}
