//! Every API token on the site, with its owner.

use maud::{Markup, html};

use super::admin_layout;
use crate::{Chrome, empty_state};

pub struct AdminTokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub owner_id: i64,
    pub owner: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

pub fn tokens_page(chrome: &Chrome, rows: &[AdminTokenRow]) -> Markup {
    let active = rows.iter().filter(|t| !t.revoked).count();
    admin_layout(
        chrome,
        "/admin/tokens",
        "API tokens",
        &[("API tokens".into(), String::new())],
        html! {
            h1 { "API tokens" }
            p.lead {
                "Tokens let scripts use reelbox as the person who created them. People create their own on "
                em { "My account" } "; revoke any that are no longer needed."
            }
            @if rows.is_empty() {
                (empty_state("No API tokens", html! { p { "Nobody has created an API token yet." } }))
            } @else {
                p.muted { (active) " active, " (rows.len() - active) " revoked." }
                div.table-wrap {
                    table {
                        caption.visually-hidden { "API tokens" }
                        thead {
                            tr {
                                th scope="col" { "Name" } th scope="col" { "Owner" } th scope="col" { "Starts with" }
                                th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {
                            @for t in rows {
                                tr {
                                    th scope="row" { (t.name) }
                                    td { a href=(format!("/admin/users/{}", t.owner_id)) { (t.owner) } }
                                    td { code { (t.prefix) "…" } }
                                    td { (t.created) } td { (t.last_used) }
                                    td {
                                        @if t.revoked { span.badge.off { "revoked" } }
                                        @else {
                                            a.button.small.danger href=(format!("/admin/tokens/{}/revoke", t.id)) {
                                                "Revoke" span.visually-hidden { " " (t.name) " of " (t.owner) }
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
