//! The admin console: people, groups, categories, API tokens, the audit trail.

pub mod dashboard;

use crate::web::Endpoint;

pub fn endpoints() -> Vec<Endpoint> {
    let mut all = dashboard::endpoints();
    all.extend(Vec::new());
    all
}
