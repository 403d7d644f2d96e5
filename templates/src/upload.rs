//! The upload page. The file list, progress and hashing are `static/upload.js`; this markup is
//! the frame it fills, plus what to do without JavaScript.

use maud::{Markup, html};

use crate::{Chrome, empty_state, layout_with_script};

/// A category the person may upload into.
#[derive(Debug, Clone)]
pub struct UploadCategory {
    pub id: i64,
    pub name: String,
    /// Depth in the tree, shown as indentation in the list.
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub struct UploadView<'a> {
    pub categories: &'a [UploadCategory],
    /// Preselected from `?category=ID` when the person may upload there.
    pub selected: Option<i64>,
    /// Bytes per PATCH.
    pub chunk_bytes: u64,
    /// The server's size limit per file.
    pub max_bytes: u64,
    pub script_url: &'a str,
    /// What people may upload, for the hint under the drop zone.
    pub allowed: &'a str,
}

/// "50 GiB", "300 KB": sizes for people.
pub fn human_size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1000 {
        format!("{} KB", bytes / 1000)
    } else {
        format!("{bytes} bytes")
    }
}

pub fn upload_page(chrome: &Chrome, view: &UploadView<'_>) -> Markup {
    let content = html! {
        h1 { "Upload" }
        @if view.categories.is_empty() {
            (empty_state("You cannot upload anywhere yet", html! {
                p {
                    "Uploading needs the “contribute” role on a category. Ask the person who manages the "
                    "category you want to add to, or your school's administrator."
                }
                p { a href="/" { "Back to the library" } }
            }))
        } @else {
            noscript {
                section.notice.upload-noscript {
                    h2 { "Uploading from the browser needs JavaScript" }
                    p {
                        "The page hashes each file in your browser and sends it in resumable pieces, "
                        "which needs JavaScript. Turn it on for this site, or upload with a script:"
                    }
                    pre { code {
                        "curl -H \"Authorization: Bearer $TOKEN\" \\\n"
                        "  -H \"Content-Digest: sha-256=:$(openssl dgst -sha256 -binary FILE | base64):\" \\\n"
                        "  --data-binary @FILE \\\n"
                        "  \"" (chrome_base_hint()) "/api/v1/media?category=ID&filename=NAME\""
                    } }
                    p {
                        "That is one request: " code { "POST /api/v1/media?category=ID&filename=NAME" }
                        " with the file as the body and its SHA-256 in " code { "Content-Digest" } ". "
                        "Create an API token under " a href="/account" { "My account" } "."
                    }
                }
            }
            section #upload.upload
                data-chunk-bytes=(view.chunk_bytes)
                data-max-bytes=(view.max_bytes)
                hidden
            {
                div.field {
                    label for="upload-category" { "Category" }
                    select #upload-category name="category" aria-describedby="upload-category-hint" {
                        @for c in view.categories {
                            option value=(c.id) selected[view.selected == Some(c.id)] {
                                (indent(c.depth)) (c.name)
                            }
                        }
                    }
                    p.hint #upload-category-hint { "Files you add go into this category." }
                }
                div.upload-drop #upload-drop {
                    p.upload-drop-text { "Drag files here, or" }
                    label.button.upload-pick {
                        "Choose files…"
                        input #upload-files.upload-input type="file" multiple aria-describedby="upload-limits";
                    }
                    p.hint #upload-limits {
                        "Up to " (human_size(view.max_bytes)) " per file. " (view.allowed)
                    }
                }
                section.upload-earlier #upload-earlier aria-labelledby="upload-earlier-heading" hidden {
                    h2 #upload-earlier-heading { "Unfinished uploads" }
                    p { "These stopped before they were complete. Add the same file again to continue where it stopped." }
                    ul.upload-list #upload-earlier-list {}
                }
                section aria-labelledby="upload-list-heading" {
                    h2 #upload-list-heading { "Files" }
                    p.hint #upload-empty { "No files added yet." }
                    ul.upload-list #upload-list {}
                }
            }
        }
    };
    layout_with_script(chrome, "Upload", Some(view.script_url), content)
}

/// The server's address is not known to the template; scripts use their own.
fn chrome_base_hint() -> &'static str {
    "https://YOUR-REELBOX"
}

fn indent(depth: usize) -> String {
    "\u{2003}".repeat(depth.min(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(categories: &[UploadCategory]) -> String {
        upload_page(
            &Chrome::default(),
            &UploadView {
                categories,
                selected: Some(2),
                chunk_bytes: 8 << 20,
                max_bytes: 50 << 30,
                script_url: "/static/upload.js",
                allowed: "Videos, audio, images and documents.",
            },
        )
        .into_string()
    }

    #[test]
    fn lists_categories_preselects_and_loads_the_script() {
        let cats = [
            UploadCategory { id: 1, name: "Science".into(), depth: 0 },
            UploadCategory { id: 2, name: "Cells".into(), depth: 1 },
        ];
        let html = view(&cats);
        assert!(html.contains(r#"<option value="2" selected>"#), "{html}");
        assert!(html.contains(r#"<option value="1">"#), "{html}");
        assert!(html.contains(r#"<script src="/static/upload.js" defer>"#), "{html}");
        assert!(html.contains("needs JavaScript"), "{html}");
        assert!(html.contains("Up to 50 GiB per file"), "{html}");
        assert!(html.contains(r#"data-chunk-bytes="8388608""#), "{html}");
    }

    #[test]
    fn without_contribute_anywhere_it_explains() {
        let html = view(&[]);
        assert!(html.contains("You cannot upload anywhere yet"), "{html}");
        assert!(!html.contains("upload-files"), "{html}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(50 << 30), "50 GiB");
        assert_eq!(human_size(300_000), "300 KB");
        assert_eq!(human_size(8 << 20), "8 MiB");
    }
}
