//! Pages everyone sees: sign-in, first-run setup, the library, a category, the account page.

use maud::{Markup, html};

use crate::{Chrome, breadcrumbs, csrf_field, empty_state, form_error, layout};

pub fn error_page(chrome: &Chrome, status: u16, reason: &str, message: &str, code: &str) -> Markup {
    layout(
        chrome,
        reason,
        html! {
            section.error-page {
                h1 { (reason) }
                p.lead { (message) }
                p.muted { "Error " (status) " · " code { (code) } }
                p { a.button href="/" { "Go to the home page" } }
            }
        },
    )
}

pub struct LoginView<'a> {
    pub csrf: &'a str,
    pub username: &'a str,
    pub next: &'a str,
    pub error: Option<&'a str>,
}

pub fn login_page(chrome: &Chrome, v: &LoginView<'_>) -> Markup {
    layout(
        chrome,
        "Sign in",
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                p.muted { "Use the account your school gave you." }
                (form_error(v.error))
                form method="post" action="/login" aria-describedby=[v.error.map(|_| "form-error")] {
                    (csrf_field(v.csrf))
                    input type="hidden" name="next" value=(v.next);
                    div.field {
                        label for="username" { "Username" }
                        input #username name="username" type="text" autocomplete="username" required
                            value=(v.username) autocapitalize="none" spellcheck="false";
                    }
                    div.field {
                        label for="password" { "Password" }
                        input #password name="password" type="password" autocomplete="current-password" required;
                    }
                    button.button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub struct SetupView<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub error: Option<&'a str>,
    pub min_length: usize,
}

pub fn setup_page(chrome: &Chrome, v: &SetupView<'_>) -> Markup {
    layout(
        chrome,
        "Welcome — create the administrator",
        html! {
            section.card.narrow {
                h1 { "Welcome to reelbox" }
                p { "Create the first administrator account. This person can then add staff and students, "
                    "create groups and categories, and decide who sees what. Nobody sees anything until an "
                    "administrator grants it." }
                (form_error(v.error))
                form method="post" action="/setup" {
                    (csrf_field(v.csrf))
                    input type="hidden" name="token" value=(v.token);
                    div.field {
                        label for="username" { "Username" }
                        input #username name="username" type="text" autocomplete="username" required
                            value=(v.username) autocapitalize="none" spellcheck="false";
                    }
                    div.field {
                        label for="display_name" { "Your name " span.muted { "(optional)" } }
                        input #display_name name="display_name" type="text" autocomplete="name" value=(v.display_name);
                    }
                    div.field {
                        label for="password" { "Password" }
                        input #password name="password" type="password" autocomplete="new-password" required
                            minlength=(v.min_length) aria-describedby="password-help";
                        p.help #password-help { "At least " (v.min_length) " characters. A few unrelated words work well." }
                    }
                    div.field {
                        label for="password_confirm" { "Password again" }
                        input #password_confirm name="password_confirm" type="password" autocomplete="new-password" required;
                    }
                    button.button.primary type="submit" { "Create administrator" }
                }
            }
        },
    )
}

pub fn setup_closed_page(chrome: &Chrome) -> Markup {
    layout(
        chrome,
        "Setup link not valid",
        html! {
            section.card.narrow {
                h1 { "This setup link is not valid" }
                p { "It has expired, was already used, or an administrator already exists." }
                p { "If nobody can sign in yet, restart reelbox: it prints a new link. Or create an administrator "
                    "on the server with " code { "reelbox user add --username NAME --admin --password-stdin" } "." }
                p { a.button href="/login" { "Go to sign-in" } }
            }
        },
    )
}

#[derive(Debug, Clone)]
pub struct CategoryRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub depth: usize,
    /// "View", "Contribute", ... or "Public".
    pub access: String,
}

pub struct HomeView<'a> {
    pub signed_in: bool,
    pub has_any_grant: bool,
    pub is_admin: bool,
    pub contact: &'a str,
    pub categories: &'a [CategoryRow],
}

pub fn home_page(chrome: &Chrome, v: &HomeView<'_>) -> Markup {
    layout(
        chrome,
        "Library",
        html! {
            h1 { "Library" }
            @if v.categories.is_empty() {
                @if v.is_admin {
                    (empty_state("Nothing here yet", html! {
                        p { "Start by creating categories (for example one per subject or year group), then groups for "
                            "your staff and classes, and grant each group access to the categories it should see." }
                        p.actions {
                            a.button.primary href="/admin/categories" { "Create a category" }
                            a.button href="/admin/groups" { "Create a group" }
                        }
                    }))
                } @else if v.signed_in && !v.has_any_grant {
                    (empty_state("You are signed in, but you have not been given access yet", html! {
                        p { "reelbox shows nothing until an administrator grants you access to a category." }
                        p { "Ask " strong { (v.contact) } " to add you to the right group." }
                    }))
                } @else if v.signed_in {
                    (empty_state("No categories to show", html! {
                        p { "The categories you were given access to are empty or have been removed. Ask " (v.contact) " if something is missing." }
                    }))
                } @else {
                    (empty_state("Please sign in", html! {
                        p { a.button.primary href="/login" { "Sign in" } }
                    }))
                }
            } @else {
                p.muted { "Categories you can open." }
                ul.category-list {
                    @for c in v.categories {
                        li class=(format!("depth-{}", c.depth.min(8))) {
                            a href=(format!("/categories/{}", c.id)) { (c.name) }
                            span.badge { (c.access) }
                            @if !c.description.is_empty() { p.muted { (c.description) } }
                        }
                    }
                }
            }
        },
    )
}

pub struct CategoryView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub trail: Vec<(String, String)>,
    pub children: &'a [CategoryRow],
    pub access: &'a str,
    pub can_manage: bool,
    /// May upload here: the empty state says how.
    pub can_contribute: bool,
    /// This page of the category's items.
    pub items: &'a [crate::media::MediaCard],
    /// Items in the category in all.
    pub total: u64,
    pub page: u32,
    pub pages: u32,
    /// "newest", "oldest", "title" or "size".
    pub sort: &'a str,
}

const SORTS: [(&str, &str); 4] = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("title", "Title (A–Z)"),
    ("size", "Largest first"),
];

pub fn category_page(chrome: &Chrome, v: &CategoryView<'_>) -> Markup {
    layout(
        chrome,
        v.name,
        html! {
            (breadcrumbs(&v.trail))
            div.page-head {
                h1 { (v.name) }
                span.badge { "Your access: " (v.access) }
                @if v.can_contribute {
                    a.button href=(format!("/upload?category={}", v.id)) { "Upload here" }
                }
                @if v.can_manage {
                    a.button href=(format!("/categories/{}/access", v.id)) { "Manage access" }
                    a.button href="/recycle" { "Recycle bin" }
                }
            }
            @if !v.description.is_empty() { p.lead { (v.description) } }
            @if !v.children.is_empty() {
                h2 { "Subcategories" }
                ul.category-list {
                    @for c in v.children {
                        li { a href=(format!("/categories/{}", c.id)) { (c.name) } }
                    }
                }
            }
            @if v.items.is_empty() && v.total == 0 {
                (empty_state("No media in this category yet", html! {
                    p { "Videos, recordings, images and documents added to this category will be listed here." }
                    @if v.can_contribute {
                        p { "You can add some: choose files on the upload page, or drag them onto it." }
                        p.actions { a.button.primary href=(format!("/upload?category={}", v.id)) { "Upload to this category" } }
                    }
                }))
            } @else {
                div.list-head {
                    h2 { "Media" }
                    p.muted { (v.total) @if v.total == 1 { " item" } @else { " items" } }
                    form.sort-form method="get" action=(format!("/categories/{}", v.id)) {
                        label for="sort" { "Sort" }
                        select #sort name="sort" {
                            @for (value, label) in SORTS {
                                option value=(value) selected[value == v.sort] { (label) }
                            }
                        }
                        button type="submit" { "Apply" }
                    }
                }
                @if v.items.is_empty() {
                    p.muted { "There is nothing on this page. " a href=(format!("/categories/{}?sort={}", v.id, v.sort)) { "Go to the first page" } }
                }
                (crate::media::media_grid(v.items))
                (crate::media::pagination(&format!("/categories/{}?sort={}&", v.id, v.sort), v.page, v.pages))
            }
        },
    )
}

pub struct SessionRow {
    pub id: i64,
    pub started: String,
    pub last_seen: String,
    pub client: String,
    pub current: bool,
}

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub owner: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

pub struct AccountView<'a> {
    pub csrf: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub groups: &'a [String],
    pub sessions: &'a [SessionRow],
    pub tokens: &'a [TokenRow],
    pub new_token: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub fn account_page(chrome: &Chrome, v: &AccountView<'_>) -> Markup {
    layout(
        chrome,
        "My account",
        html! {
            h1 { "My account" }
            (form_error(v.error))
            section.card {
                h2 { "Profile" }
                dl.facts {
                    dt { "Username" } dd { (v.username) }
                    dt { "Name" } dd { @if v.display_name.is_empty() { span.muted { "not set" } } @else { (v.display_name) } }
                    dt { "Groups" } dd {
                        @if v.groups.is_empty() { span.muted { "none yet" } } @else { (v.groups.join(", ")) }
                    }
                }
                p { a.button href="/account/password" { "Change password" } }
            }
            section.card {
                h2 { "Where you are signed in" }
                table {
                    thead { tr { th { "Started" } th { "Last active" } th { "Address" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for s in v.sessions {
                            tr {
                                td { (s.started) } td { (s.last_seen) } td { (s.client) }
                                td { @if s.current { span.badge { "this browser" } } }
                            }
                        }
                    }
                }
            }
            section.card #tokens {
                h2 { "API tokens" }
                p.muted { "Tokens let scripts use reelbox as you. Treat them like passwords." }
                @if let Some(token) = v.new_token {
                    div.notice role="status" {
                        p { strong { "Copy your new token now — it will not be shown again:" } }
                        p { code.token { (token) } }
                    }
                }
                (token_table(v.tokens, "/account/tokens"))
                form.inline-form method="post" action="/account/tokens" {
                    (csrf_field(v.csrf))
                    div.field {
                        label for="token-name" { "New token name" }
                        input #token-name name="name" type="text" required maxlength="100" placeholder="e.g. upload script";
                    }
                    button.button type="submit" { "Create token" }
                }
            }
        },
    )
}

/// A list of API tokens with revoke buttons (`{base}/{id}/revoke`).
pub fn token_table(tokens: &[TokenRow], base: &str) -> Markup {
    html! {
        @if tokens.is_empty() {
            p.muted { "No API tokens." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Owner" } th { "Starts with" } th { "Created" } th { "Last used" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for t in tokens {
                        tr {
                            td { (t.name) } td { (t.owner) } td { code { (t.prefix) "…" } } td { (t.created) } td { (t.last_used) }
                            td {
                                @if t.revoked { span.badge.muted { "revoked" } }
                                @else {
                                    a.button.danger href=(format!("{base}/{}/revoke", t.id)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub struct PasswordView<'a> {
    pub csrf: &'a str,
    pub forced: bool,
    pub error: Option<&'a str>,
    pub min_length: usize,
}

pub fn password_page(chrome: &Chrome, v: &PasswordView<'_>) -> Markup {
    layout(
        chrome,
        "Change password",
        html! {
            section.card.narrow {
                h1 { "Change password" }
                @if v.forced {
                    p.lead { "An administrator set a temporary password for you. Choose your own to continue." }
                }
                (form_error(v.error))
                form method="post" action="/account/password" {
                    (csrf_field(v.csrf))
                    div.field {
                        label for="current" { "Current password" }
                        input #current name="current" type="password" autocomplete="current-password" required;
                    }
                    div.field {
                        label for="new" { "New password" }
                        input #new name="new" type="password" autocomplete="new-password" required minlength=(v.min_length)
                            aria-describedby="new-help";
                        p.help #new-help { "At least " (v.min_length) " characters; very common passwords are refused. Your other sign-ins will end." }
                    }
                    div.field {
                        label for="confirm" { "New password again" }
                        input #confirm name="confirm" type="password" autocomplete="new-password" required;
                    }
                    button.button.primary type="submit" { "Change password" }
                }
            }
        },
    )
}

pub struct ConfirmView<'a> {
    pub title: &'a str,
    pub question: &'a str,
    pub consequence: &'a str,
    pub action: &'a str,
    pub button: &'a str,
    pub cancel: &'a str,
    pub csrf: &'a str,
}

/// "Are you sure?" before anything destructive; works without JavaScript.
pub fn confirm_page(chrome: &Chrome, v: &ConfirmView<'_>) -> Markup {
    layout(
        chrome,
        v.title,
        html! {
            section.card.narrow {
                h1 { (v.title) }
                p.lead { (v.question) }
                @if !v.consequence.is_empty() { p { (v.consequence) } }
                form method="post" action=(v.action) {
                    (csrf_field(v.csrf))
                    div.actions {
                        button.button.danger type="submit" { (v.button) }
                        a.button href=(v.cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}
