//! Administration pages: the dashboard, people, groups, categories and who can see them,
//! API tokens and the audit trail.

pub mod audit;
pub mod categories;
pub mod groups;
pub mod tokens;
pub mod users;

use maud::{Markup, html};

use crate::{Chrome, breadcrumbs, csrf_field, form_error, layout};

pub struct GrantRow {
    pub id: i64,
    pub who: String,
    /// "group" or "person".
    pub kind: &'static str,
    pub role: String,
}

pub struct ReasonRow {
    pub who: String,
    pub kind: &'static str,
    pub role: String,
    pub via: String,
    pub members: Option<i64>,
}

pub struct AccessView<'a> {
    pub csrf: &'a str,
    pub category_id: i64,
    pub category_name: &'a str,
    pub public: bool,
    pub trail: Vec<String>,
    pub grants: Vec<GrantRow>,
    pub reasons: Vec<ReasonRow>,
    pub groups: Vec<(i64, String)>,
    pub error: Option<&'a str>,
}

const ROLE_HELP: &[(&str, &str)] = &[
    ("view", "see the category and watch its media"),
    ("contribute", "also upload into it"),
    ("edit", "also change other people's items"),
    ("manage", "also recycle and restore items, and decide who has access"),
];

/// Who can see a category and why, and the form to grant access.
pub fn access_page(chrome: &Chrome, v: &AccessView<'_>) -> Markup {
    let crumbs: Vec<(String, String)> = vec![
        ("Library".into(), "/".into()),
        (v.category_name.to_string(), format!("/categories/{}", v.category_id)),
        ("Access".into(), String::new()),
    ];
    layout(
        chrome,
        &format!("Access to {}", v.category_name),
        html! {
            (breadcrumbs(&crumbs))
            h1 { "Who can see “" (v.category_name) "”" }
            @if v.trail.len() > 1 { p.muted { "Path: " (v.trail.join(" › ")) } }
            (form_error(v.error))
            section.card {
                h2 { "Why people can see it" }
                ul.reasons {
                    li { strong { "Site administrators" } " — can see and manage everything." }
                    @if v.public { li { strong { "Everyone, signed in or not" } " — the category (or one above it) is public." } }
                    @for r in &v.reasons {
                        li {
                            strong { (r.who) } " (" (r.kind)
                            @if let Some(n) = r.members { ", " (n) " member" @if n != 1 { "s" } }
                            ") — " (r.role) ", " (r.via) "."
                        }
                    }
                }
                @if v.reasons.is_empty() && !v.public {
                    p { "Nobody else has access yet. Grant a group access below." }
                }
            }
            section.card {
                h2 { "Grants on this category" }
                @if v.grants.is_empty() {
                    p.muted { "No grants here. Grants on categories above still apply." }
                } @else {
                    table {
                        thead { tr { th { "Who" } th { "Kind" } th { "Role" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for g in &v.grants {
                                tr {
                                    td { (g.who) } td { (g.kind) } td { (g.role) }
                                    td { a.button.danger href=(format!("/categories/{}/access/{}/remove", v.category_id, g.id)) { "Remove" } }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Grant access" }
                form method="post" action=(format!("/categories/{}/access", v.category_id)) {
                    (csrf_field(v.csrf))
                    div.field {
                        label for="group_id" { "Group" }
                        select #group_id name="group_id" {
                            option value="" { "— choose a group —" }
                            @for (id, name) in &v.groups { option value=(id) { (name) } }
                        }
                    }
                    div.field {
                        label for="grant-username" { "…or one person (username)" }
                        input #grant-username name="username" type="text" autocapitalize="none" spellcheck="false";
                    }
                    fieldset.field {
                        legend { "Role" }
                        @for (role, help) in ROLE_HELP {
                            div.radio {
                                input type="radio" name="role" id=(format!("role-{role}")) value=(role) checked[*role == "view"];
                                label for=(format!("role-{role}")) { strong { (role) } " — " (help) }
                            }
                        }
                    }
                    button.button.primary type="submit" { "Grant" }
                }
            }
        },
    )
}

pub struct DashboardView {
    pub users: i64,
    pub admins: i64,
    pub disabled: i64,
    pub groups: i64,
    pub categories: i64,
    pub live_sessions: i64,
    /// (username, failures in the last hour, locked until)
    pub lockouts: Vec<(String, u32, String)>,
    /// (time, actor, action, target, outcome)
    pub recent: Vec<(String, String, String, String, String)>,
    pub version: &'static str,
    /// The last integrity scrub: (when, blobs, problems); `when` says if it has not finished.
    pub last_scrub: Option<(String, i64, i64)>,
    /// HTTPS: mode, certificate, renewals and errors.
    pub tls: TlsView,
}

/// The HTTPS card of the dashboard.
#[derive(Default)]
pub struct TlsView {
    /// `off`, `acme`, `files` or `self-signed`.
    pub mode: String,
    /// The names the certificate covers.
    pub names: Option<String>,
    pub issuer: Option<String>,
    /// (expiry, days left)
    pub expires: Option<(String, i64)>,
    pub last_renewal: Option<String>,
    /// (when, what)
    pub last_error: Option<(String, String)>,
}

fn tls_card(t: &TlsView) -> Markup {
    html! {
        section.card aria-labelledby="https-heading" {
            h2 #https-heading { "HTTPS" }
            @if t.mode == "off" {
                p.form-error role="alert" {
                    "TLS is off: this server speaks plain HTTP, so passwords and sessions cross the network unencrypted. "
                    "Start it with " code { "--tls acme" } ", " code { "--tls files" } " or " code { "--tls self-signed" } "."
                }
            } @else {
                dl {
                    dt { "Certificate source" } dd { (t.mode) }
                    dt { "Names" } dd { (t.names.as_deref().unwrap_or("no certificate yet")) }
                    @if let Some(issuer) = &t.issuer { dt { "Issued by" } dd { (issuer) } }
                    @if let Some((at, days)) = &t.expires {
                        dt { "Expires" }
                        dd { (at) " (" @if *days < 0 { "expired" } @else { (days) " days left" } ")" }
                    }
                    dt { "Last renewal" } dd { (t.last_renewal.as_deref().unwrap_or("none since start")) }
                }
                @if let Some((at, what)) = &t.last_error {
                    p.form-error role="alert" { "Last certificate error (" (at) "): " (what) }
                }
            }
        }
    }
}

/// The administration sub-navigation (no entry marked current).
pub fn admin_nav() -> Markup {
    admin_nav_at("")
}

const ADMIN_SECTIONS: &[(&str, &str)] = &[
    ("/admin", "Overview"),
    ("/admin/users", "People"),
    ("/admin/groups", "Groups"),
    ("/admin/categories", "Categories"),
    ("/admin/tokens", "API tokens"),
    ("/admin/audit", "Audit log"),
    ("/admin/archive", "Archive"),
    ("/recycle", "Recycle bin"),
];

/// The administration sub-navigation with `current` (one of its hrefs) marked as the current page.
pub fn admin_nav_at(current: &str) -> Markup {
    html! {
        nav.subnav aria-label="Administration" {
            ul {
                @for (href, label) in ADMIN_SECTIONS {
                    li { a href=(href) aria-current=[(*href == current).then_some("page")] { (label) } }
                }
            }
        }
    }
}

/// The frame of every administration page: sub-navigation, breadcrumbs (after "Administration"),
/// the heading and the content.
pub(crate) fn admin_layout(
    chrome: &Chrome,
    section: &str,
    title: &str,
    crumbs: &[(String, String)],
    content: Markup,
) -> Markup {
    let mut trail: Vec<(String, String)> = vec![("Administration".into(), "/admin".into())];
    trail.extend(crumbs.iter().cloned());
    layout(
        chrome,
        title,
        html! {
            (admin_nav_at(section))
            @if trail.len() > 1 { (breadcrumbs(&trail)) }
            (content)
        },
    )
}

/// A yes/no badge for tables ("Administrator", "Disabled"), empty when false.
pub(crate) fn flag(on: bool, label: &str, class: &str) -> Markup {
    html! { @if on { span class=(format!("badge {class}")) { (label) } } }
}

pub fn audit_table(rows: &[(String, String, String, String, String)]) -> Markup {
    html! {
        table.audit {
            thead { tr { th { "Time (UTC)" } th { "Who" } th { "What" } th { "Target" } th { "Outcome" } } }
            tbody {
                @for (at, actor, action, target, outcome) in rows {
                    tr {
                        td { (at) } td { (actor) } td { code { (action) } } td { (target) }
                        td { span class=(format!("badge outcome-{outcome}")) { (outcome) } }
                    }
                }
            }
        }
    }
}

pub fn dashboard_page(chrome: &Chrome, v: &DashboardView) -> Markup {
    layout(
        chrome,
        "Administration",
        html! {
            (admin_nav_at("/admin"))
            h1 { "Administration" }
            section.stats aria-label="Summary" {
                a.stat href="/admin/users" { span.num { (v.users) } span { "people" } }
                a.stat href="/admin/groups" { span.num { (v.groups) } span { "groups" } }
                a.stat href="/admin/categories" { span.num { (v.categories) } span { "categories" } }
                div.stat { span.num { (v.live_sessions) } span { "signed in now" } }
            }
            p.muted { (v.admins) " administrator" @if v.admins != 1 { "s" } ", " (v.disabled) " disabled account" @if v.disabled != 1 { "s" } ". reelbox " (v.version) "." }
            @match &v.last_scrub {
                Some((at, blobs, problems)) if *problems > 0 => p.form-error role="alert" {
                    "Last integrity check: " (at) ", " (blobs) " blobs, " (problems) " problems. "
                    "Run " code { "reelbox verify" } " on the server for the list, and restore those files from a backup."
                },
                Some((at, blobs, problems)) => p.muted { "Last integrity check: " (at) ", " (blobs) " blobs, " (problems) " problems." },
                None => p.muted { "Last integrity check: not run yet (it runs weekly; " code { "reelbox verify" } " runs it now)." },
            }
            @if v.categories == 0 || v.groups == 0 {
                section.card.next-steps {
                    h2 { "Getting started" }
                    ol {
                        li { a href="/admin/categories" { "Create categories" } " — for example one per subject or year group." }
                        li { a href="/admin/groups" { "Create groups" } " for staff and classes, and add people to them." }
                        li { "Open a category and choose " strong { "Manage access" } " to grant groups a role." }
                    }
                    p.muted { "Until you grant access, signed-in people see nothing." }
                }
            }
            @if !v.lockouts.is_empty() {
                section.card {
                    h2 { "Sign-in lockouts" }
                    table {
                        thead { tr { th { "Username" } th { "Failures (last hour)" } th { "Locked until (UTC)" } } }
                        tbody { @for (u, n, until) in &v.lockouts { tr { td { (u) } td { (n) } td { (until) } } } }
                    }
                }
            }
            (tls_card(&v.tls))
            section.card {
                h2 { "Recent activity" }
                (audit_table(&v.recent))
                p { a href="/admin/audit" { "Open the audit log" } }
            }
        },
    )
}
