//! "My uploads": what the signed-in person uploaded, newest first, with live conversion progress
//! for videos and recordings (updated by `static/my-uploads.js`; without script the page shows
//! where each one stood when it was loaded).

use maud::{Markup, html};

use crate::media::pagination;
use crate::{Chrome, empty_state, layout_with_script};

/// One of the person's items.
#[derive(Debug, Clone)]
pub struct MyUpload {
    pub id: i64,
    pub title: String,
    /// "Video", "Image", ...
    pub kind: String,
    /// "Ready", "Processing", "Upload not finished", "Failed".
    pub status: String,
    /// The API's status word (`processing`, ...), for the script.
    pub status_code: String,
    pub size: String,
    pub created: String,
    /// For videos and recordings being converted: how far along, when known.
    pub conversion: Option<Conversion>,
}

/// A conversion under way.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// 0–100, `None` until the server has reported any.
    pub percent: Option<u8>,
    /// "About 3 minutes left", "Waiting for the converter", ...
    pub detail: String,
}

pub struct MyUploadsView<'a> {
    pub items: &'a [MyUpload],
    pub page: u32,
    pub pages: u32,
    pub total: u64,
    /// The fingerprinted URL of `my-uploads.js`.
    pub script_url: &'a str,
}

pub fn my_uploads_page(chrome: &Chrome, v: &MyUploadsView<'_>) -> Markup {
    layout_with_script(
        chrome,
        "My uploads",
        Some(v.script_url),
        html! {
            div.page-head {
                h1 { "My uploads" }
                a.button.primary href="/upload" { "Upload files" }
            }
            @if v.items.is_empty() {
                (empty_state("You have not uploaded anything yet", html! {
                    p { "Files you upload appear here, newest first, with their progress while videos and recordings are converted." }
                    p { a.button.primary href="/upload" { "Upload files" } }
                }))
            } @else {
                p.muted { (v.total) @if v.total == 1 { " item" } @else { " items" } ", newest first." }
                div.table-wrap {
                    table.my-uploads {
                        caption.visually-hidden { "Your uploads" }
                        thead {
                            tr {
                                th scope="col" { "Title" }
                                th scope="col" { "Kind" }
                                th scope="col" { "Status" }
                                th scope="col" { "Size" }
                                th scope="col" { "Added" }
                            }
                        }
                        tbody {
                            @for m in v.items {
                                tr data-media-id=(m.id) data-status=(m.status_code)
                                    data-watch=[m.conversion.is_some().then_some("true")] {
                                    th scope="row" { a href=(format!("/media/{}", m.id)) { (m.title) } }
                                    td { (m.kind) }
                                    td.my-status {
                                        span.my-status-text { (m.status) }
                                        @if let Some(c) = &m.conversion {
                                            (conversion(m, c))
                                        }
                                    }
                                    td { (m.size) }
                                    td { time { (m.created) } }
                                }
                            }
                        }
                    }
                }
                (pagination("/my/uploads?", v.page, v.pages))
            }
        },
    )
}

fn conversion(m: &MyUpload, c: &Conversion) -> Markup {
    let label = format!("Conversion of {}", m.title);
    html! {
        div.my-progress {
            @match c.percent {
                Some(p) => progress max="100" value=(p) aria-label=(label) { (p) " %" },
                None => progress max="100" aria-label=(label) {},
            }
            span.my-progress-text aria-live="polite" {
                @if let Some(p) = c.percent { (p) " % · " }
                (c.detail)
            }
        }
    }
}
