//! What happened: the audit trail now; viewing statistics and reports later. Owns `audit_events`.

pub mod audit;
