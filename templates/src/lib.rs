//! reelbox's HTML: pure functions from view data to markup. No I/O, no HTTP, no database —
//! the web layer gathers what a page shows and passes it in.

pub mod admin;
pub mod media;
pub mod my;
pub mod pages;
pub mod player;
pub mod recycle;
pub mod upload;

pub use maud::Markup;
use maud::{DOCTYPE, PreEscaped, html};

/// What every page needs around its content.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub school_name: String,
    pub user: Option<NavUser>,
    /// The session's CSRF token, for the sign-out button and forms.
    pub csrf: String,
    /// Fingerprinted asset URLs.
    pub css_url: String,
    pub js_url: String,
    pub icon_url: String,
    /// Which navigation entry is current.
    pub section: Section,
    /// A one-line confirmation ("Group created."), shown once.
    pub notice: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Section {
    #[default]
    Home,
    Account,
    Admin,
    Upload,
    MyUploads,
    Recycle,
    None,
}

#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    pub username: String,
    pub is_admin: bool,
    /// Administrators and people who manage a category: they get a link to the recycle bin.
    pub may_recycle: bool,
}

/// The page frame: skip link, header with navigation, main landmark, footer.
pub fn layout(chrome: &Chrome, title: &str, content: Markup) -> Markup {
    layout_with_script(chrome, title, None, content)
}

/// [`layout`] plus one page-specific script (a fingerprinted `static/` URL), loaded with `defer`.
pub fn layout_with_script(chrome: &Chrome, title: &str, script_url: Option<&str>, content: Markup) -> Markup {
    let full_title = if title.is_empty() {
        chrome.school_name.clone()
    } else {
        format!("{title} · {}", chrome.school_name)
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (full_title) }
                link rel="stylesheet" href=(chrome.css_url);
                link rel="icon" href=(chrome.icon_url) type="image/svg+xml";
                script src=(chrome.js_url) defer {}
                @if let Some(url) = script_url {
                    // The page script sends the session's token with its API calls.
                    @if !chrome.csrf.is_empty() {
                        meta name="csrf-token" content=(chrome.csrf);
                    }
                    script src=(url) defer {}
                }
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.site-header {
                    div.wrap {
                        a.brand href="/" {
                            img src=(chrome.icon_url) alt="" width="28" height="28";
                            span { (chrome.school_name) }
                        }
                        @if let Some(user) = &chrome.user {
                            nav.site-nav aria-label="Main" {
                                ul {
                                    li { a href="/" aria-current=[current(chrome.section == Section::Home)] { "Library" } }
                                    li { a href="/upload" aria-current=[current(chrome.section == Section::Upload)] { "Upload" } }
                                    li { a href="/my/uploads" aria-current=[current(chrome.section == Section::MyUploads)] { "My uploads" } }
                                    @if user.may_recycle {
                                        li { a href="/recycle" aria-current=[current(chrome.section == Section::Recycle)] { "Recycle bin" } }
                                    }
                                    @if user.is_admin {
                                        li { a href="/admin" aria-current=[current(chrome.section == Section::Admin)] { "Administration" } }
                                    }
                                    li { a href="/account" aria-current=[current(chrome.section == Section::Account)] { "My account" } }
                                }
                            }
                            form.site-search role="search" method="get" action="/search" {
                                label.visually-hidden for="site-search-q" { "Search the library" }
                                input #site-search-q type="search" name="q" placeholder="Search";
                                button type="submit" { "Search" }
                            }
                            form.sign-out method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(chrome.csrf);
                                span.who { "Signed in as " strong { (user.name) } }
                                button.link-button type="submit" { "Sign out" }
                            }
                        } @else {
                            nav.site-nav aria-label="Main" {
                                ul { li { a href="/login" { "Sign in" } } }
                            }
                        }
                    }
                }
                main #main.wrap tabindex="-1" {
                    @if let Some(notice) = &chrome.notice {
                        div.notice role="status" { (notice) }
                    }
                    (content)
                }
                footer.site-footer {
                    div.wrap { "reelbox · your school's own media library" }
                }
            }
        }
    }
}

fn current(yes: bool) -> Option<&'static str> {
    yes.then_some("page")
}

/// A hidden CSRF field for a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A message shown when a form could not be saved, tied to the form for screen readers.
pub fn form_error(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            div.form-error role="alert" #form-error { (m) }
        }
    }
}

/// An empty state: what is missing and what to do next.
pub fn empty_state(title: &str, body: Markup) -> Markup {
    html! {
        section.empty-state {
            h2 { (title) }
            (body)
        }
    }
}

/// Breadcrumbs: (label, href) pairs, the last one is the current page.
pub fn breadcrumbs(items: &[(String, String)]) -> Markup {
    html! {
        nav.breadcrumbs aria-label="Breadcrumb" {
            ol {
                @for (i, (label, href)) in items.iter().enumerate() {
                    li {
                        @if i + 1 == items.len() {
                            span aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// Raw text known to be safe markup (used only for static strings from this crate).
pub fn trusted(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}
