//! Media items: the grid used by category pages and search results, an item's page, its edit
//! form and the search page.

use maud::{Markup, html};

use crate::{Chrome, breadcrumbs, csrf_field, empty_state, form_error, layout, layout_with_script};

/// "1.4 MB", "820 KB", "12 bytes": file sizes for people (decimal units, like file managers).
pub fn file_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 { format!("{value:.1} {}", UNITS[unit]) } else { format!("{value:.0} {}", UNITS[unit]) }
}

/// One item in a grid.
#[derive(Debug, Clone)]
pub struct MediaCard {
    pub id: i64,
    pub title: String,
    /// "Video", "Image", ...
    pub kind: String,
    pub size: String,
    pub created: String,
    /// The small thumbnail, when there is one.
    pub thumbnail: Option<String>,
    /// Shown for items that are not ready ("Processing", "Uploading", "Failed").
    pub status: Option<String>,
}

pub fn media_grid(items: &[MediaCard]) -> Markup {
    html! {
        ul.media-grid {
            @for m in items {
                li.media-card {
                    a href=(format!("/media/{}", m.id)) {
                        @if let Some(src) = &m.thumbnail {
                            img.media-thumb src=(src) alt="" width="320" height="180" loading="lazy";
                        } @else {
                            span.media-thumb.media-thumb-none aria-hidden="true" { (m.kind) }
                        }
                        span.media-title { (m.title) }
                    }
                    p.media-meta.muted {
                        span { (m.kind) } " · " span { (m.size) } " · " time { (m.created) }
                        @if let Some(s) = &m.status { " " span.badge { (s) } }
                    }
                }
            }
        }
    }
}

/// Previous/next links and "Page 2 of 5". `base` is the URL up to where `page=N` is appended
/// (ending in `?` or `&`).
pub fn pagination(base: &str, page: u32, pages: u32) -> Markup {
    html! {
        @if pages > 1 {
            nav.pagination aria-label="Pages" {
                @if page > 1 {
                    a rel="prev" href=(format!("{base}page={}", page - 1)) { "← Previous" }
                }
                span aria-current="page" { "Page " (page) " of " (pages) }
                @if page < pages {
                    a rel="next" href=(format!("{base}page={}", page + 1)) { "Next →" }
                }
            }
        }
    }
}

/// How the item is shown on its page.
#[derive(Debug, Clone)]
pub enum Preview {
    /// The large thumbnail, linking to the original.
    Image {
        thumbnail: String,
        original: String,
    },
    /// An image without a thumbnail (it could not be decoded): a link only.
    ImageLink {
        original: String,
    },
    Pdf {
        src: String,
    },
    Video {
        src: String,
        mime: String,
    },
    Audio {
        src: String,
        mime: String,
    },
    /// Our own player over the transcoded renditions (HLS, progressive fallback).
    Player(Box<crate::player::PlayerView>),
    /// Nothing to show in the page: download only.
    Download,
    /// No bytes yet (uploading) or none to serve (failed).
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct ItemView<'a> {
    pub id: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub tags: Vec<String>,
    pub kind: &'a str,
    pub status: &'a str,
    pub trail: Vec<(String, String)>,
    pub owner: &'a str,
    pub created: &'a str,
    pub size: &'a str,
    pub sha256: &'a str,
    pub filename: &'a str,
    pub preview: Preview,
    /// The original, as a download; `None` when there are no bytes to serve.
    pub download: Option<String>,
    pub can_edit: bool,
    /// The person may move it to the recycle bin (owner or manager).
    pub can_delete: bool,
    pub damage: Option<DamageNotice>,
    /// Caption tracks, for people who may change them (owner, editor); `None` hides the section.
    pub captions: Option<Vec<crate::player::CaptionRow>>,
    /// The iframe code for "Embed", for playable items.
    pub embed_code: Option<String>,
}

/// The integrity scrub found an item's stored original damaged.
#[derive(Debug, Clone)]
pub struct DamageNotice {
    /// When it was first found, formatted for people.
    pub since: String,
    /// What is wrong, in words ("The stored copy of the original file is missing.").
    pub detail: String,
}

/// A warning box for an item whose stored copy failed its integrity check; nothing without one.
pub fn damage_warning(notice: Option<&DamageNotice>) -> Markup {
    html! {
        @if let Some(d) = notice {
            div.callout.damage-warning role="alert" {
                p {
                    strong { "This file is damaged. " }
                    "The stored copy of this file failed its integrity check on " (d.since)
                    "; an administrator has been told; restore it from backup."
                }
                p { (d.detail) }
            }
        }
    }
}

pub fn item_page(chrome: &Chrome, v: &ItemView<'_>, script: Option<&str>) -> Markup {
    layout_with_script(
        chrome,
        v.title,
        script,
        html! {
            (breadcrumbs(&v.trail))
            div.page-head {
                h1 { (v.title) }
                span.badge { (v.kind) }
                @if v.status != "ready" { span.badge { (v.status) } }
                @if v.can_edit {
                    a.button href=(format!("/media/{}/edit", v.id)) { "Edit details" }
                }
                @if v.can_delete {
                    a.button.danger href=(format!("/media/{}/delete", v.id)) { "Move to recycle bin" }
                }
            }
            (damage_warning(v.damage.as_ref()))
            div.media-preview {
                @match &v.preview {
                    Preview::Image { thumbnail, original } => {
                        a href=(original) {
                            img src=(thumbnail) alt=(format!("{} (open the full-size image)", v.title));
                        }
                    }
                    Preview::ImageLink { original } => {
                        p { "No preview is available for this image. " a href=(original) { "Open the image" } }
                    }
                    Preview::Pdf { src } => {
                        iframe.media-pdf src=(src) title=(format!("{} (PDF)", v.title)) {}
                    }
                    Preview::Video { src, mime } => {
                        video controls preload="metadata" {
                            source src=(src) type=(mime);
                            "Your browser cannot play this video here. Use the download link below."
                        }
                    }
                    Preview::Audio { src, mime } => {
                        audio controls preload="metadata" {
                            source src=(src) type=(mime);
                            "Your browser cannot play this recording here. Use the download link below."
                        }
                    }
                    Preview::Player(p) => { (crate::player::player(p)) }
                    Preview::Download => {
                        p { "This document cannot be shown in the browser. Download it to open it." }
                    }
                    Preview::Unavailable(why) => { p.muted { (why) } }
                }
            }
            @if let Some(href) = &v.download {
                p.actions { a.button.primary href=(href) download { "Download " (v.filename) } }
            }
            @if let Some(code) = &v.embed_code { (crate::player::embed_code(code)) }
            @if !v.description.is_empty() { p.lead.media-description { (v.description) } }
            @if !v.tags.is_empty() {
                ul.tag-list aria-label="Tags" {
                    @for t in &v.tags { li { a href=(format!("/search?q={}", urlencode(t))) { (t) } } }
                }
            }
            dl.media-facts {
                dt { "Uploaded by" } dd { (v.owner) }
                dt { "Added" } dd { (v.created) }
                dt { "Size" } dd { (v.size) }
                dt { "File name" } dd { (v.filename) }
                dt { "SHA-256" } dd { code.hash { (v.sha256) } }
            }
            @if let Some(tracks) = &v.captions { (crate::player::caption_manager(v.id, tracks)) }
        },
    )
}

/// Percent-encode a query value (letters, digits and `-._~` are kept).
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A category the item may be moved to.
#[derive(Debug, Clone)]
pub struct CategoryChoice {
    pub id: i64,
    pub name: String,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub struct EditView<'a> {
    pub id: i64,
    pub csrf: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub tags: &'a str,
    pub category_id: i64,
    pub categories: &'a [CategoryChoice],
    pub error: Option<&'a str>,
}

pub fn edit_page(chrome: &Chrome, v: &EditView<'_>) -> Markup {
    let described = v.error.map(|_| "form-error");
    layout(
        chrome,
        "Edit details",
        html! {
            h1 { "Edit details" }
            (form_error(v.error))
            form.stack method="post" action=(format!("/media/{}/edit", v.id)) aria-describedby=[described] {
                (csrf_field(v.csrf))
                label for="title" { "Title" }
                input #title name="title" type="text" value=(v.title) required maxlength="200";
                label for="description" { "Description" }
                textarea #description name="description" rows="5" maxlength="10000" { (v.description) }
                label for="tags" { "Tags" }
                input #tags name="tags" type="text" value=(v.tags) aria-describedby="tags-hint" maxlength="1000";
                p #tags-hint.muted { "Separate tags with commas, for example: forces, year 9, revision." }
                label for="category" { "Category" }
                select #category name="category_id" aria-describedby="category-hint" {
                    @for c in v.categories {
                        option value=(c.id) selected[c.id == v.category_id] {
                            (format!("{}{}", "\u{2003}".repeat(c.depth.min(8)), c.name))
                        }
                    }
                }
                p #category-hint.muted { "You can move the item to categories you may upload into." }
                p.actions {
                    button.primary type="submit" { "Save" }
                    a.button href=(format!("/media/{}", v.id)) { "Cancel" }
                }
            }
        },
    )
}

#[derive(Debug, Clone)]
pub struct SearchView<'a> {
    pub query: &'a str,
    pub total: u64,
    pub items: &'a [MediaCard],
    pub page: u32,
    pub pages: u32,
}

pub fn search_page(chrome: &Chrome, v: &SearchView<'_>) -> Markup {
    let title = if v.query.is_empty() { "Search".to_string() } else { format!("Search: {}", v.query) };
    layout(
        chrome,
        &title,
        html! {
            h1 { "Search" }
            form.search-form role="search" method="get" action="/search" {
                label for="search-page-q" { "Search titles, descriptions and tags" }
                input #search-page-q type="search" name="q" value=(v.query);
                button type="submit" { "Search" }
            }
            @if v.query.trim().is_empty() {
                p.muted { "Type a few words to find videos, recordings, images and documents you can see." }
            } @else if v.items.is_empty() {
                (empty_state("Nothing found", html! {
                    p { "No items you can see match “" (v.query) "”. Try fewer or different words." }
                }))
            } @else {
                p.muted role="status" {
                    (v.total) @if v.total == 1 { " item matches" } @else { " items match" }
                }
                (media_grid(v.items))
                (pagination(&format!("/search?q={}&", urlencode(v.query)), v.page, v.pages))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(file_size(12), "12 bytes");
        assert_eq!(file_size(1_400), "1.4 KB");
        assert_eq!(file_size(820_000), "820 KB");
        assert_eq!(file_size(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(urlencode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn pagination_links_only_where_there_are_pages() {
        assert_eq!(pagination("/x?", 1, 1).into_string(), "");
        let html = pagination("/x?sort=title&", 2, 3).into_string();
        assert!(html.contains("href=\"/x?sort=title&amp;page=1\""), "{html}");
        assert!(html.contains("href=\"/x?sort=title&amp;page=3\""), "{html}");
    }
}
