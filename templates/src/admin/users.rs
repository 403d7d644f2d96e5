//! People: the searchable list with the "create account" form, and one person's page.

use maud::{Markup, html};

use super::{admin_layout, flag};
use crate::pages::SessionRow;
use crate::{Chrome, csrf_field, empty_state, form_error};

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub last_login: String,
}

/// What was typed into the "create account" form (never the password).
#[derive(Debug, Clone, Copy)]
pub struct NewUserDraft<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub admin: bool,
    pub must_change: bool,
}

impl Default for NewUserDraft<'_> {
    fn default() -> Self {
        NewUserDraft { username: "", display_name: "", admin: false, must_change: true }
    }
}

pub struct UsersView<'a> {
    pub csrf: &'a str,
    pub query: &'a str,
    pub rows: &'a [UserRow],
    /// More people matched than are shown.
    pub more: bool,
    pub draft: NewUserDraft<'a>,
    pub min_length: usize,
    pub error: Option<&'a str>,
}

pub fn users_page(chrome: &Chrome, v: &UsersView<'_>) -> Markup {
    admin_layout(
        chrome,
        "/admin/users",
        "People",
        &[("People".into(), String::new())],
        html! {
            h1 { "People" }
            div.split {
                div {
                    form.search-form role="search" method="get" action="/admin/users" {
                        label for="user-search" { "Search by username or name" }
                        div.inline-form {
                            input #user-search type="search" name="q" value=(v.query) autocapitalize="none" spellcheck="false";
                            button.button type="submit" { "Search" }
                            @if !v.query.is_empty() { a.button href="/admin/users" { "Show everyone" } }
                        }
                    }
                    @if v.rows.is_empty() {
                        @if v.query.is_empty() {
                            (empty_state("No accounts yet", html! { p { "Create the first one with the form on this page." } }))
                        } @else {
                            (empty_state("Nobody matches", html! { p { "No username or name contains “" (v.query) "”." } }))
                        }
                    } @else {
                        div.table-wrap {
                            table {
                                caption.visually-hidden { "People" }
                                thead { tr { th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Last sign-in" } } }
                                tbody {
                                    @for r in v.rows {
                                        tr {
                                            th scope="row" { a href=(format!("/admin/users/{}", r.id)) { (r.username) } }
                                            td { (r.name) }
                                            td {
                                                (flag(r.admin, "Administrator", "admin"))
                                                (flag(r.disabled, "Disabled", "off"))
                                            }
                                            td { (r.last_login) }
                                        }
                                    }
                                }
                            }
                        }
                        @if v.more { p.muted { "Only the first " (v.rows.len()) " are shown. Search to narrow the list." } }
                    }
                }
                section.card #create aria-labelledby="create-title" {
                    h2 #create-title { "Create account" }
                    (form_error(v.error))
                    form method="post" action="/admin/users" aria-describedby=[v.error.map(|_| "form-error")] {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="new-username" { "Username" }
                            input #new-username name="username" type="text" required maxlength="64" autocomplete="off"
                                autocapitalize="none" spellcheck="false" value=(v.draft.username) aria-describedby="new-username-help";
                            p.help #new-username-help { "What the person types to sign in, e.g. " code { "j.smith" } "." }
                        }
                        div.field {
                            label for="new-display-name" { "Full name " span.muted { "(optional)" } }
                            input #new-display-name name="display_name" type="text" maxlength="128" autocomplete="off"
                                value=(v.draft.display_name);
                        }
                        div.field {
                            label for="new-password" { "Password" }
                            input #new-password name="password" type="password" required autocomplete="new-password"
                                minlength=(v.min_length) aria-describedby="new-password-help";
                            p.help #new-password-help {
                                "At least " (v.min_length) " characters; very common passwords and ones containing the username are refused. "
                                "Give it to the person privately."
                            }
                        }
                        div.check {
                            input #new-must-change type="checkbox" name="must_change_password" value="on" checked[v.draft.must_change];
                            label for="new-must-change" { "Must choose a new password at first sign-in" }
                        }
                        div.check {
                            input #new-admin type="checkbox" name="admin" value="on" checked[v.draft.admin] aria-describedby="new-admin-help";
                            label for="new-admin" { "Site administrator" }
                        }
                        p.help #new-admin-help { "Administrators can see and change everything, including who has access." }
                        button.button.primary type="submit" { "Create account" }
                    }
                }
            }
        },
    )
}

pub struct PersonGrantRow {
    pub category_id: i64,
    pub category: String,
    pub role: String,
    /// "directly" or "through group X".
    pub via: String,
}

pub struct PersonTokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

pub struct UserView<'a> {
    pub csrf: &'a str,
    pub id: i64,
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    pub is_admin: bool,
    pub disabled: bool,
    pub must_change: bool,
    pub created: String,
    pub last_login: String,
    /// The page shows the administrator looking at it.
    pub is_self: bool,
    pub groups: Vec<(i64, String)>,
    /// Groups the person is not in, for the "add to group" select.
    pub other_groups: Vec<(i64, String)>,
    pub grants: Vec<PersonGrantRow>,
    pub sessions: Vec<SessionRow>,
    pub tokens: Vec<PersonTokenRow>,
    /// (failures in the last hour, locked until)
    pub lockout: Option<(u32, String)>,
    pub min_length: usize,
    pub error: Option<&'a str>,
}

pub fn user_page(chrome: &Chrome, v: &UserView<'_>) -> Markup {
    let base = format!("/admin/users/{}", v.id);
    let shown = if v.display_name.is_empty() { v.username } else { v.display_name };
    admin_layout(
        chrome,
        "/admin/users",
        shown,
        &[("People".into(), "/admin/users".into()), (shown.to_string(), String::new())],
        html! {
            div.page-head {
                h1 { (shown) }
                (flag(v.is_admin, "Administrator", "admin"))
                (flag(v.disabled, "Disabled", "off"))
                (flag(v.must_change, "Temporary password", "warn"))
            }
            (form_error(v.error))
            div.grid-2 {
                section.card aria-labelledby="profile-title" {
                    h2 #profile-title { "Profile" }
                    dl.facts {
                        dt { "Username" } dd { code { (v.username) } }
                        dt { "Account created" } dd { (v.created) }
                        dt { "Last sign-in" } dd { (v.last_login) }
                    }
                    form method="post" action=(base) {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="display-name" { "Full name" }
                            input #display-name name="display_name" type="text" maxlength="128" value=(v.display_name);
                        }
                        div.field {
                            label for="email" { "Email " span.muted { "(optional)" } }
                            input #email name="email" type="email" maxlength="254" value=(v.email) autocomplete="off";
                        }
                        button.button type="submit" { "Save profile" }
                    }
                }
                section.card aria-labelledby="signin-title" {
                    h2 #signin-title { "Signing in" }
                    @if v.disabled {
                        p { "This account is " strong { "disabled" } ": the person cannot sign in and their API tokens do not work." }
                        form method="post" action=(format!("{base}/enable")) {
                            (csrf_field(v.csrf))
                            button.button type="submit" { "Enable account" }
                        }
                    } @else {
                        p { "The account is active." }
                        @if v.is_self {
                            p.muted { "You cannot disable your own account." }
                        } @else {
                            p { a.button.danger href=(format!("{base}/disable")) { "Disable account" } }
                        }
                    }
                    @if let Some((failures, until)) = &v.lockout {
                        div.callout role="status" {
                            p { strong { "Sign-in is locked" } " after " (failures) " failed attempts in the last hour, until " (until) "." }
                            form method="post" action=(format!("{base}/unlock")) {
                                (csrf_field(v.csrf))
                                button.button type="submit" { "Unlock sign-in" }
                            }
                        }
                    } @else {
                        p.muted { "Sign-in is not locked." }
                    }
                    h3 { "Set a temporary password" }
                    form method="post" action=(format!("{base}/password")) {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="temp-password" { "Temporary password" }
                            input #temp-password name="password" type="password" required autocomplete="new-password"
                                minlength=(v.min_length) aria-describedby="temp-password-help";
                            p.help #temp-password-help {
                                "At least " (v.min_length) " characters. The person must choose their own at next sign-in; "
                                "their sessions end and any sign-in lock is cleared."
                            }
                        }
                        button.button type="submit" { "Set temporary password" }
                    }
                    h3 { "Administrator rights" }
                    @if v.is_admin {
                        p { "This person is a site administrator." }
                        p { a.button.danger href=(format!("{base}/unadmin")) { "Remove administrator" } }
                    } @else {
                        form method="post" action=(format!("{base}/admin")) {
                            (csrf_field(v.csrf))
                            p.help { "Administrators can see and change everything, including who has access." }
                            button.button type="submit" { "Make administrator" }
                        }
                    }
                }
            }
            section.card #groups aria-labelledby="groups-title" {
                h2 #groups-title { "Groups" }
                @if v.groups.is_empty() {
                    p.muted { "Not in any group." }
                } @else {
                    ul.plain-list {
                        @for (gid, name) in &v.groups {
                            li {
                                a href=(format!("/admin/groups/{gid}")) { (name) }
                                " "
                                a.button.small.danger href=(format!("{base}/groups/{gid}/remove")) {
                                    "Remove" span.visually-hidden { " from " (name) }
                                }
                            }
                        }
                    }
                }
                @if v.other_groups.is_empty() {
                    p.muted { "There are no other groups to add them to. " a href="/admin/groups" { "Create a group" } "." }
                } @else {
                    form.inline-form method="post" action=(format!("{base}/groups")) {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="add-group" { "Add to group" }
                            select #add-group name="group_id" required {
                                option value="" { "— choose a group —" }
                                @for (gid, name) in &v.other_groups { option value=(gid) { (name) } }
                            }
                        }
                        button.button type="submit" { "Add" }
                    }
                }
            }
            section.card #access aria-labelledby="access-title" {
                h2 #access-title { "What they can see" }
                @if v.is_admin {
                    p { "As an administrator they can see and manage every category." }
                }
                @if v.grants.is_empty() {
                    p.muted { "No grants: apart from public categories, they see nothing yet. Add them to a group that has access." }
                } @else {
                    p.help { "Each grant also applies to the categories below it." }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Category" } th scope="col" { "Role" } th scope="col" { "Why" } } }
                            tbody {
                                @for g in &v.grants {
                                    tr {
                                        td { a href=(format!("/admin/categories/{}", g.category_id)) { (g.category) } }
                                        td { span.badge { (g.role) } }
                                        td { (g.via) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card #sessions aria-labelledby="sessions-title" {
                h2 #sessions-title { "Active sessions" }
                @if v.sessions.is_empty() {
                    p.muted { "Not signed in anywhere." }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Started" } th scope="col" { "Last active" } th scope="col" { "Address" } th scope="col" { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for s in &v.sessions {
                                    tr {
                                        td { (s.started) } td { (s.last_seen) } td { (s.client) }
                                        td {
                                            @if s.current { span.badge { "your session" } " " }
                                            a.button.small.danger href=(format!("{base}/sessions/{}/end", s.id)) {
                                                "End" span.visually-hidden { " session started " (s.started) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p { a.button.danger href=(format!("{base}/sessions/end")) { "End all sessions" } }
                }
            }
            section.card #tokens aria-labelledby="tokens-title" {
                h2 #tokens-title { "API tokens" }
                @if v.tokens.is_empty() {
                    p.muted { "No API tokens." }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Name" } th scope="col" { "Starts with" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for t in &v.tokens {
                                    tr {
                                        td { (t.name) } td { code { (t.prefix) "…" } } td { (t.created) } td { (t.last_used) }
                                        td {
                                            @if t.revoked { span.badge.off { "revoked" } }
                                            @else {
                                                a.button.small.danger href=(format!("/admin/tokens/{}/revoke?from=user", t.id)) {
                                                    "Revoke" span.visually-hidden { " token " (t.name) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
