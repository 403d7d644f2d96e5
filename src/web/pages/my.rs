//! "My uploads" (`/my/uploads`): the signed-in person's own items, newest first. Videos and
//! recordings still being converted show a progress bar that `static/my-uploads.js` keeps up to
//! date from `GET /api/v1/media/{id}`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::my::{Conversion, MyUpload, MyUploadsView, my_uploads_page};
use serde::Deserialize;

use super::html;
use super::media::kind_label;
use crate::App;
use crate::library::catalogue::{self, Listed};
use crate::library::media::{MediaItem, MediaKind, MediaStatus};
use crate::transcode::{self, JobState, Playback};
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
    let (listing, playbacks) = app
        .db
        .read(move |c| {
            let listing = catalogue::list_owned(c, me, page)?;
            let mut playbacks = HashMap::new();
            for l in listing.items.iter().filter(|l| converting(&l.item)) {
                playbacks.insert(l.item.id, transcode::playback(c, l.item.id)?);
            }
            Ok::<_, WebError>((listing, playbacks))
        })
        .await?;
    let items: Vec<MyUpload> = listing.items.iter().map(|l| row(l, playbacks.get(&l.item.id))).collect();
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

/// Videos and recordings still being converted: the rows the page follows.
fn converting(m: &MediaItem) -> bool {
    m.status == MediaStatus::Processing && matches!(m.kind, Some(MediaKind::Video | MediaKind::Audio))
}

/// Where a conversion stands, in words (`static/my-uploads.js` says the same).
fn conversion(p: &Playback) -> Conversion {
    let detail = match p.state {
        JobState::Waiting => "Waiting for the converter".to_string(),
        JobState::Queued | JobState::None => "Waiting to start".to_string(),
        JobState::Failed => p.error.clone().unwrap_or_else(|| "Conversion failed".into()),
        JobState::Running => p.eta_seconds.map_or_else(|| "Converting".to_string(), time_left),
        JobState::Done => "Finishing".to_string(),
    };
    Conversion { percent: Some(p.progress.min(100)), detail }
}

/// "less than a minute left", "about 1 minute left", "about 12 minutes left".
fn time_left(seconds: u64) -> String {
    if seconds < 60 {
        return "less than a minute left".into();
    }
    let minutes = (seconds + 30) / 60;
    format!("about {minutes} {} left", if minutes == 1 { "minute" } else { "minutes" })
}

fn row(l: &Listed, playback: Option<&Playback>) -> MyUpload {
    let m = &l.item;
    MyUpload {
        id: m.id.0,
        title: m.title.clone(),
        kind: kind_label(m.kind).to_string(),
        status: status_text(m.status).to_string(),
        status_code: m.status.as_str().to_string(),
        size: reelbox_templates::media::file_size(m.size),
        created: crate::clock::format_utc(m.created_at),
        conversion: converting(m).then(|| {
            playback
                .map_or_else(|| Conversion { percent: None, detail: "Waiting to start".into() }, conversion)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_in_words() {
        assert_eq!(time_left(5), "less than a minute left");
        assert_eq!(time_left(60), "about 1 minute left");
        assert_eq!(time_left(89), "about 1 minute left");
        assert_eq!(time_left(90), "about 2 minutes left");
        assert_eq!(time_left(725), "about 12 minutes left");
    }
}
