//! Groups: the list with the "create group" form, and one group's members and grants.

use maud::{Markup, html};

use super::{admin_layout, flag};
use crate::{Chrome, csrf_field, empty_state, form_error};

pub struct GroupRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub members: i64,
}

pub struct GroupsView<'a> {
    pub csrf: &'a str,
    pub rows: &'a [GroupRow],
    /// What was typed into the create form.
    pub name: &'a str,
    pub description: &'a str,
    pub error: Option<&'a str>,
}

pub fn groups_page(chrome: &Chrome, v: &GroupsView<'_>) -> Markup {
    admin_layout(
        chrome,
        "/admin/groups",
        "Groups",
        &[("Groups".into(), String::new())],
        html! {
            h1 { "Groups" }
            p.lead { "Groups collect people — a class, a department, all staff — so you can grant them access to categories together." }
            div.split {
                div {
                    @if v.rows.is_empty() {
                        (empty_state("No groups yet", html! { p { "Create one for your staff and one for each class." } }))
                    } @else {
                        div.table-wrap {
                            table {
                                caption.visually-hidden { "Groups" }
                                thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" class="num-col" { "Members" } } }
                                tbody {
                                    @for g in v.rows {
                                        tr {
                                            th scope="row" { a href=(format!("/admin/groups/{}", g.id)) { (g.name) } }
                                            td { (g.description) }
                                            td.num-col { (g.members) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                section.card #create aria-labelledby="create-title" {
                    h2 #create-title { "Create group" }
                    (form_error(v.error))
                    form method="post" action="/admin/groups" aria-describedby=[v.error.map(|_| "form-error")] {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="group-name" { "Name" }
                            input #group-name name="name" type="text" required maxlength="100" value=(v.name)
                                aria-describedby="group-name-help";
                            p.help #group-name-help { "For example “Year 7 — 7B” or “Science staff”." }
                        }
                        div.field {
                            label for="group-description" { "Description " span.muted { "(optional)" } }
                            input #group-description name="description" type="text" maxlength="500" value=(v.description);
                        }
                        button.button.primary type="submit" { "Create group" }
                    }
                }
            }
        },
    )
}

pub struct MemberRow {
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub disabled: bool,
    pub added: String,
}

pub struct GroupGrantRow {
    pub category_id: i64,
    pub category: String,
    pub role: String,
}

pub struct GroupView<'a> {
    pub csrf: &'a str,
    pub id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub members: &'a [MemberRow],
    pub grants: &'a [GroupGrantRow],
    /// Usernames offered as suggestions when adding a member.
    pub usernames: &'a [String],
    /// What was typed into the forms, kept after a mistake.
    pub draft_username: &'a str,
    pub draft_name: &'a str,
    pub draft_description: &'a str,
    pub error: Option<&'a str>,
}

pub fn group_page(chrome: &Chrome, v: &GroupView<'_>) -> Markup {
    let base = format!("/admin/groups/{}", v.id);
    admin_layout(
        chrome,
        "/admin/groups",
        v.name,
        &[("Groups".into(), "/admin/groups".into()), (v.name.to_string(), String::new())],
        html! {
            div.page-head {
                h1 { (v.name) }
                span.badge { (v.members.len()) " member" @if v.members.len() != 1 { "s" } }
            }
            @if !v.description.is_empty() { p.lead { (v.description) } }
            (form_error(v.error))
            section.card #members aria-labelledby="members-title" {
                h2 #members-title { "Members" }
                @if v.members.is_empty() {
                    p.muted { "Nobody is in this group yet." }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for m in v.members {
                                    tr {
                                        th scope="row" {
                                            a href=(format!("/admin/users/{}", m.user_id)) { (m.username) }
                                            " " (flag(m.disabled, "Disabled", "off"))
                                        }
                                        td { (m.name) }
                                        td { (m.added) }
                                        td {
                                            a.button.small.danger href=(format!("{base}/members/{}/remove", m.user_id)) {
                                                "Remove" span.visually-hidden { " " (m.username) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.inline-form method="post" action=(format!("{base}/members")) {
                    (csrf_field(v.csrf))
                    div.field {
                        label for="member-username" { "Username" }
                        input #member-username name="username" type="text" required list="known-usernames" autocomplete="off"
                            autocapitalize="none" spellcheck="false" value=(v.draft_username);
                        datalist #known-usernames { @for u in v.usernames { option value=(u) {} } }
                    }
                    button.button.primary type="submit" { "Add member" }
                }
            }
            section.card #grants aria-labelledby="grants-title" {
                h2 #grants-title { "What this group can see" }
                @if v.grants.is_empty() {
                    p.muted { "This group has no grants yet. Open a category and choose " strong { "Manage access" } " to give it a role." }
                } @else {
                    p.help { "Each grant also applies to the categories below it." }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Category" } th scope="col" { "Role" } th scope="col" { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for g in v.grants {
                                    tr {
                                        td { a href=(format!("/admin/categories/{}", g.category_id)) { (g.category) } }
                                        td { span.badge { (g.role) } }
                                        td { a href=(format!("/categories/{}/access", g.category_id)) { "Manage access" span.visually-hidden { " to " (g.category) } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.grid-2 {
                section.card aria-labelledby="rename-title" {
                    h2 #rename-title { "Name and description" }
                    form method="post" action=(base) {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="rename-name" { "Name" }
                            input #rename-name name="name" type="text" required maxlength="100" value=(v.draft_name);
                        }
                        div.field {
                            label for="rename-description" { "Description" }
                            input #rename-description name="description" type="text" maxlength="500" value=(v.draft_description);
                        }
                        button.button type="submit" { "Save" }
                    }
                }
                section.card.danger-zone aria-labelledby="delete-title" {
                    h2 #delete-title { "Delete group" }
                    p { "Its memberships and grants go with it. The people themselves are not affected, but they lose the access this group gave them." }
                    p { a.button.danger href=(format!("{base}/delete")) { "Delete group" } }
                }
            }
        },
    )
}
