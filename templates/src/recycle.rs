//! The recycle bin (managers of a category, administrators) and the archive (administrators).

use maud::{Markup, html};

use crate::{Chrome, csrf_field, empty_state, layout};

/// One deleted item, as a row of the bin or the archive.
#[derive(Debug, Clone)]
pub struct DeletedRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub kind: String,
    /// When it was recycled (bin) or archived (archive), formatted.
    pub deleted_at: String,
    /// When the purge removes it (archive only), formatted.
    pub purge_due: Option<String>,
}

pub struct BinView<'a> {
    pub rows: &'a [DeletedRow],
    pub csrf: &'a str,
    /// Show the link to the archive.
    pub is_admin: bool,
    pub archive_days: u32,
}

/// `/recycle`: restore in one click, or delete permanently after a confirmation.
pub fn recycle_page(chrome: &Chrome, v: &BinView<'_>) -> Markup {
    layout(
        chrome,
        "Recycle bin",
        html! {
            h1 { "Recycle bin" }
            p.lead {
                "Deleted items of the categories you manage. Restore puts an item back where it was. "
                "Delete permanently hides it from everyone but administrators, who can still restore it for "
                (v.archive_days) " days."
            }
            @if v.is_admin {
                p { a href="/admin/archive" { "Permanently deleted items (archive)" } }
            }
            @if v.rows.is_empty() {
                (empty_state("The recycle bin is empty", html! { p { "Items deleted in the categories you manage appear here." } }))
            } @else {
                (table(v, false))
            }
        },
    )
}

/// `/admin/archive`: permanently deleted items until the purge; administrators restore them.
pub fn archive_page(chrome: &Chrome, v: &BinView<'_>) -> Markup {
    layout(
        chrome,
        "Archive",
        html! {
            h1 { "Permanently deleted items" }
            p.lead {
                "Only administrators see these. Each is kept " (v.archive_days)
                " days after it was deleted, then removed for good with its file "
                "(a file shared with another item stays). Restore puts an item back in its category."
            }
            @if v.rows.is_empty() {
                (empty_state("The archive is empty", html! { p { "Items deleted permanently from a recycle bin appear here." } }))
            } @else {
                (table(v, true))
            }
        },
    )
}

fn table(v: &BinView<'_>, archive: bool) -> Markup {
    html! {
        table.data {
            caption.visually-hidden { @if archive { "Archived items" } @else { "Items in the recycle bin" } }
            thead {
                tr {
                    th scope="col" { "Title" }
                    th scope="col" { "Category" }
                    th scope="col" { "Kind" }
                    th scope="col" { "Deleted" }
                    @if archive { th scope="col" { "Removed for good after" } }
                    th scope="col" { "Actions" }
                }
            }
            tbody {
                @for r in v.rows {
                    tr {
                        td { (r.title) }
                        td { (r.category) }
                        td { (r.kind) }
                        td { (r.deleted_at) }
                        @if archive { td { (r.purge_due.as_deref().unwrap_or("")) } }
                        td {
                            div.actions {
                                @let restore = if archive { format!("/admin/archive/{}/restore", r.id) } else { format!("/recycle/{}/restore", r.id) };
                                form method="post" action=(restore) {
                                    (csrf_field(v.csrf))
                                    button.button type="submit" aria-label=(format!("Restore {}", r.title)) { "Restore" }
                                }
                                @if !archive {
                                    a.button.danger href=(format!("/recycle/{}/delete", r.id))
                                        aria-label=(format!("Delete {} permanently", r.title)) { "Delete permanently" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
