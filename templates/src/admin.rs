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
    /// Backups of the database, media and server files, and the replica pair.
    pub backup: BackupView,
}

/// The "Backups and replication" card of the dashboard.
#[derive(Default)]
pub struct BackupView {
    /// Where copies go (directory or bucket); `None`: no backup target.
    pub target: Option<String>,
    /// The database: the last transaction in the target and when it got there.
    pub db_in_target: Option<String>,
    /// Seconds the target is behind the last commit.
    pub db_lag_seconds: Option<f64>,
    pub db_last_snapshot: Option<String>,
    /// Media and files: (copied, copied bytes), (pending, pending bytes) since start.
    pub media_copied: Option<(u64, u64)>,
    pub media_pending: Option<(u64, u64)>,
    pub media_last_walk: Option<String>,
    pub files_last: Option<String>,
    /// Free space where a directory target lives.
    pub target_free: Option<u64>,
    /// How long things are kept, in words.
    pub retention: String,
    /// Problems to act on, each a sentence.
    pub alarms: Vec<String>,
    /// `primary` or `replica`.
    pub role: String,
    pub epoch: u64,
    /// The primary this replica follows.
    pub primary: Option<String>,
    /// The last transaction applied here (replica) or shipped (primary), as `generation/txid`.
    pub position: Option<String>,
    /// How far this replica is behind its primary (milliseconds).
    pub replica_lag_ms: Option<i64>,
    /// Whether this primary has a replication secret (a replica can follow it).
    pub paired: bool,
    /// The other node, as last learned.
    pub peer: Option<String>,
    /// The last promotion or demotion, in words.
    pub last_failover: Option<String>,
    /// Writes this node took after it was replaced, exported for review (directories).
    pub split_brain_exports: Vec<String>,
    /// A replica's follow tasks that are failing now: (task in words, since when, the error).
    pub follow_problems: Vec<(String, String, String)>,
    /// A replica's last scrub of its copies, in words.
    pub last_scrub: Option<String>,
}

fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= 1024.0 * MIB {
        format!("{:.1} GiB", n as f64 / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", n as f64 / MIB)
    }
}

fn backup_card(b: &BackupView) -> Markup {
    html! {
        section.card aria-labelledby="backup-heading" {
            h2 #backup-heading { "Backups and replication" }
            @for alarm in &b.alarms {
                p.form-error role="alert" { (alarm) }
            }
            @if b.target.is_none() {
                p.form-error role="alert" {
                    "No backup target is configured: the database and the media exist only on this server. "
                    "Set " code { "[backup] dir" } " (a mounted volume) or " code { "[backup] url" }
                    " (S3-compatible storage) in the configuration, or start with " code { "--backup-dir" } "."
                }
            }
            dl {
                @if let Some(t) = &b.target { dt { "Backup target" } dd { (t) } }
                @if let Some(free) = b.target_free { dt { "Free space there" } dd { (bytes(free)) } }
                @if b.target.is_some() { dt { "Kept" } dd { (b.retention) } }
                @if b.target.is_some() {
                    dt { "Database in the target" }
                    dd {
                        (b.db_in_target.as_deref().unwrap_or("nothing yet"))
                        @if let Some(lag) = b.db_lag_seconds {
                            @if lag >= 1.0 { " (" (format!("{lag:.0}")) " s behind)" } @else { " (up to date)" }
                        }
                    }
                    dt { "Last database snapshot" } dd { (b.db_last_snapshot.as_deref().unwrap_or("none yet")) }
                    @if let Some((n, size)) = b.media_copied {
                        dt { "Media copied since start" } dd { (n) " files, " (bytes(size)) }
                    }
                    @if let Some((n, size)) = b.media_pending {
                        dt { "Media waiting to be copied" } dd { (n) " files, " (bytes(size)) }
                    }
                    dt { "Last media check" } dd { (b.media_last_walk.as_deref().unwrap_or("not yet")) }
                    dt { "Last copy of server files" } dd { (b.files_last.as_deref().unwrap_or("not yet")) }
                }
                dt { "This server" }
                dd {
                    @if b.role == "replica" { "Replica" } @else { "Primary" }
                    " (epoch " (b.epoch) ")"
                }
                @if let Some(p) = &b.primary { dt { "Follows" } dd { (p) } }
                @if b.role == "replica" {
                    dt { "Behind the primary" }
                    dd {
                        @match b.replica_lag_ms {
                            Some(ms) => { (format!("{:.1}", ms as f64 / 1000.0)) " s" }
                            None => { "not following yet" }
                        }
                    }
                    dt { "Last check of the copies" } dd { (b.last_scrub.as_deref().unwrap_or("not yet")) }
                    @for (task, at, error) in &b.follow_problems {
                        dt { "Copying " (task) }
                        dd.form-error role="alert" { "failing since " (at) ": " (error) }
                    }
                } @else if !b.paired {
                    dt { "Replica" } dd { "none paired (see " code { "reelbox replica pair" } ")" }
                }
                @if let Some(p) = &b.peer { dt { "Other node" } dd { (p) } }
                @if let Some(p) = &b.position { dt { "Position" } dd { code { (p) } } }
                dt { "Last failover" } dd { (b.last_failover.as_deref().unwrap_or("none")) }
            }
            @if !b.split_brain_exports.is_empty() {
                p.form-error role="alert" {
                    "This server took writes after another server replaced it as the primary. They were not merged; "
                    "review them with " code { "reelbox compare --with FILE" } " in:"
                }
                ul { @for d in &b.split_brain_exports { li { code { (d) } } } }
            }
        }
    }
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
            (backup_card(&v.backup))
            section.card {
                h2 { "Recent activity" }
                (audit_table(&v.recent))
                p { a href="/admin/audit" { "Open the audit log" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_shows_its_failing_follow_tasks_and_its_last_scrub() {
        let view = BackupView {
            role: "replica".into(),
            epoch: 1,
            follow_problems: vec![(
                "media".into(),
                "2026-11-26 10:00 UTC".into(),
                "the primary cannot be reached: connection refused".into(),
            )],
            last_scrub: Some(
                "2026-11-26 09:00 UTC: 12 files, 3.0 MiB checked; 1 repaired (1 since start)".into(),
            ),
            ..Default::default()
        };
        let html = backup_card(&view).into_string();
        assert!(html.contains("Copying media") && html.contains("connection refused"), "{html}");
        assert!(html.contains("Last check of the copies") && html.contains("1 repaired"), "{html}");
        let primary = BackupView { role: "primary".into(), ..Default::default() };
        assert!(!backup_card(&primary).into_string().contains("Last check of the copies"));
    }
}
