//! Categories: the tree with the "create category" form, and one category's settings and who
//! can see it (granting itself happens on the category's access page).

use maud::{Markup, html};

use super::{ReasonRow, admin_layout};
use crate::{Chrome, csrf_field, empty_state, form_error};

pub struct TreeRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub depth: usize,
    pub public: bool,
}

/// One choice of the parent select: (id, name, depth).
pub type ParentOption = (i64, String, usize);

/// What was typed into a category form.
#[derive(Debug, Clone, Copy, Default)]
pub struct CategoryDraft<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub parent_id: Option<i64>,
    pub public: bool,
}

pub struct CategoriesView<'a> {
    pub csrf: &'a str,
    pub tree: &'a [TreeRow],
    pub parents: &'a [ParentOption],
    pub draft: CategoryDraft<'a>,
    pub error: Option<&'a str>,
}

fn depth_class(depth: usize) -> String {
    format!("depth-{}", depth.min(8))
}

fn parent_select(id: &str, parents: &[ParentOption], selected: Option<i64>) -> Markup {
    html! {
        select id=(id) name="parent_id" aria-describedby=(format!("{id}-help")) {
            option value="" selected[selected.is_none()] { "(top level)" }
            @for (pid, name, depth) in parents {
                option value=(pid) selected[selected == Some(*pid)] {
                    @for _ in 0..*depth { "\u{a0}\u{a0}\u{a0}" }
                    (name)
                }
            }
        }
    }
}

fn public_checkbox(id: &str, checked: bool) -> Markup {
    html! {
        div.check {
            input id=(id) type="checkbox" name="public" value="on" checked[checked] aria-describedby=(format!("{id}-help"));
            label for=(id) { "Public" }
        }
        p.help id=(format!("{id}-help")) {
            "Visible to everyone, even without signing in — and so are the categories below it. Leave unticked for "
            "anything with pupils in it."
        }
    }
}

pub fn categories_page(chrome: &Chrome, v: &CategoriesView<'_>) -> Markup {
    admin_layout(
        chrome,
        "/admin/categories",
        "Categories",
        &[("Categories".into(), String::new())],
        html! {
            h1 { "Categories" }
            p.lead { "Categories organise the library — for example one per subject or year group. Access granted on a category also applies to the ones below it." }
            div.split {
                div {
                    @if v.tree.is_empty() {
                        (empty_state("No categories yet", html! { p { "Create the first one with the form on this page." } }))
                    } @else {
                        ul.category-list.admin-tree aria-label="All categories" {
                            @for c in v.tree {
                                li class=(depth_class(c.depth)) {
                                    a href=(format!("/admin/categories/{}", c.id)) { (c.name) }
                                    @if c.public { " " span.badge.public { "Public" } }
                                    @if !c.description.is_empty() { p.muted { (c.description) } }
                                }
                            }
                        }
                    }
                }
                section.card #create aria-labelledby="create-title" {
                    h2 #create-title { "Create category" }
                    (form_error(v.error))
                    form method="post" action="/admin/categories" aria-describedby=[v.error.map(|_| "form-error")] {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="category-name" { "Name" }
                            input #category-name name="name" type="text" required maxlength="100" value=(v.draft.name);
                        }
                        div.field {
                            label for="category-parent" { "Inside" }
                            (parent_select("category-parent", v.parents, v.draft.parent_id))
                            p.help #category-parent-help { "Choose a category to put this one inside it, or leave it at the top level." }
                        }
                        div.field {
                            label for="category-description" { "Description " span.muted { "(optional)" } }
                            textarea #category-description name="description" rows="3" maxlength="2000" { (v.draft.description) }
                        }
                        (public_checkbox("category-public", v.draft.public))
                        button.button.primary type="submit" { "Create category" }
                    }
                }
            }
        },
    )
}

pub struct CategoryAdminView<'a> {
    pub csrf: &'a str,
    pub id: i64,
    pub name: &'a str,
    /// Names from the top down to this category's parent.
    pub path: Vec<String>,
    pub public: bool,
    pub children: Vec<(i64, String)>,
    /// Where it may move to (itself and the categories below it left out).
    pub parents: &'a [ParentOption],
    pub draft: CategoryDraft<'a>,
    pub reasons: &'a [ReasonRow],
    pub error: Option<&'a str>,
}

pub fn category_admin_page(chrome: &Chrome, v: &CategoryAdminView<'_>) -> Markup {
    let base = format!("/admin/categories/{}", v.id);
    admin_layout(
        chrome,
        "/admin/categories",
        v.name,
        &[("Categories".into(), "/admin/categories".into()), (v.name.to_string(), String::new())],
        html! {
            div.page-head {
                h1 { (v.name) }
                @if v.public { span.badge.public { "Public" } }
            }
            @if !v.path.is_empty() { p.muted { "Inside: " (v.path.join(" › ")) } }
            p.actions {
                a.button.primary href=(format!("/categories/{}/access", v.id)) { "Manage access" }
                a.button href=(format!("/categories/{}", v.id)) { "Open in the library" }
            }
            (form_error(v.error))
            div.grid-2 {
                section.card aria-labelledby="edit-title" {
                    h2 #edit-title { "Settings" }
                    form method="post" action=(base) {
                        (csrf_field(v.csrf))
                        div.field {
                            label for="category-name" { "Name" }
                            input #category-name name="name" type="text" required maxlength="100" value=(v.draft.name);
                        }
                        div.field {
                            label for="category-description" { "Description" }
                            textarea #category-description name="description" rows="3" maxlength="2000" { (v.draft.description) }
                        }
                        div.field {
                            label for="category-parent" { "Inside" }
                            (parent_select("category-parent", v.parents, v.draft.parent_id))
                            p.help #category-parent-help { "Moving it changes who can see it: grants on its new parents apply instead of the old ones." }
                        }
                        (public_checkbox("category-public", v.draft.public))
                        button.button.primary type="submit" { "Save changes" }
                    }
                }
                section.card aria-labelledby="who-title" {
                    h2 #who-title { "Who can see it" }
                    ul.reasons {
                        li { strong { "Site administrators" } " — can see and manage everything." }
                        @if v.public { li { strong { "Everyone, signed in or not" } " — the category (or one above it) is public." } }
                        @for r in v.reasons {
                            li {
                                strong { (r.who) } " (" (r.kind)
                                @if let Some(n) = r.members { ", " (n) " member" @if n != 1 { "s" } }
                                ") — " (r.role) ", " (r.via) "."
                            }
                        }
                    }
                    @if v.reasons.is_empty() && !v.public {
                        p { "Nobody else can see it yet." }
                    }
                    p { a href=(format!("/categories/{}/access", v.id)) { "Grant or remove access" } }
                }
            }
            @if !v.children.is_empty() {
                section.card aria-labelledby="children-title" {
                    h2 #children-title { "Subcategories" }
                    ul.plain-list {
                        @for (cid, name) in &v.children { li { a href=(format!("/admin/categories/{cid}")) { (name) } } }
                    }
                }
            }
            section.card.danger-zone aria-labelledby="delete-title" {
                h2 #delete-title { "Delete category" }
                @if v.children.is_empty() {
                    p { "Its grants go with it." }
                } @else {
                    p { "It has subcategories, so it cannot be deleted until they are moved elsewhere or deleted first." }
                }
                p { a.button.danger href=(format!("{base}/delete")) { "Delete category" } }
            }
        },
    )
}
