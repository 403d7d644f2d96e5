//! The audit trail: filters, events newest first, paging and CSV export.

use maud::{Markup, html};

use super::admin_layout;
use crate::{Chrome, empty_state, form_error};

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub addr: String,
}

/// The filters as typed, shown back in the form.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
}

pub struct AuditView<'a> {
    pub filters: &'a AuditFilters,
    pub rows: &'a [AuditRow],
    /// Link to the next (older) page, when there is one.
    pub older: Option<String>,
    /// Link back to the newest page of the same filters, when this is an older page.
    pub newest: Option<String>,
    /// The CSV export of the same filters.
    pub csv: String,
    pub error: Option<&'a str>,
}

const OUTCOMES: &[(&str, &str)] =
    &[("", "Any"), ("success", "Success"), ("failure", "Failure"), ("denied", "Denied")];

pub fn audit_page(chrome: &Chrome, v: &AuditView<'_>) -> Markup {
    let f = v.filters;
    admin_layout(
        chrome,
        "/admin/audit",
        "Audit log",
        &[("Audit log".into(), String::new())],
        html! {
            h1 { "Audit log" }
            p.lead {
                "Every change to accounts, groups, access and settings, and every sign-in, is recorded here. "
                "Events cannot be edited or deleted — not even by administrators."
            }
            (form_error(v.error))
            form.card.filters method="get" action="/admin/audit" aria-label="Filter events" {
                div.filter-grid {
                    div.field {
                        label for="audit-actor" { "Who" }
                        input #audit-actor name="actor" type="text" value=(f.actor) autocapitalize="none" spellcheck="false";
                    }
                    div.field {
                        label for="audit-action" { "Action starts with" }
                        input #audit-action name="action" type="text" value=(f.action) placeholder="e.g. user." autocapitalize="none" spellcheck="false";
                    }
                    div.field {
                        label for="audit-target" { "Target" }
                        input #audit-target name="target" type="text" value=(f.target);
                    }
                    div.field {
                        label for="audit-outcome" { "Outcome" }
                        select #audit-outcome name="outcome" {
                            @for (value, label) in OUTCOMES { option value=(value) selected[f.outcome == *value] { (label) } }
                        }
                    }
                    div.field {
                        label for="audit-from" { "From (UTC)" }
                        input #audit-from name="from" type="date" value=(f.from);
                    }
                    div.field {
                        label for="audit-to" { "To (UTC, inclusive)" }
                        input #audit-to name="to" type="date" value=(f.to);
                    }
                }
                div.actions {
                    button.button.primary type="submit" { "Filter" }
                    a.button href="/admin/audit" { "Clear" }
                    a.button href=(v.csv) { "Export CSV" }
                }
            }
            @if v.rows.is_empty() {
                (empty_state("No events match", html! { p { "Try fewer filters or a wider date range." } }))
            } @else {
                div.table-wrap {
                    table.audit {
                        caption.visually-hidden { "Audit events, newest first" }
                        thead {
                            tr {
                                th scope="col" { "Time (UTC)" } th scope="col" { "Who" } th scope="col" { "What" }
                                th scope="col" { "Target" } th scope="col" { "Outcome" } th scope="col" { "Detail" } th scope="col" { "Address" }
                            }
                        }
                        tbody {
                            @for r in v.rows {
                                tr {
                                    td.nowrap { (r.at) } td { (r.actor) } td { code { (r.action) } } td { (r.target) }
                                    td { span class=(format!("badge outcome-{}", r.outcome)) { (r.outcome) } }
                                    td { (r.detail) } td { (r.addr) }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if let Some(href) = &v.newest { a.button href=(href) { "Newest" } }
                @if let Some(href) = &v.older { a.button href=(href) { "Older" } }
            }
        },
    )
}
