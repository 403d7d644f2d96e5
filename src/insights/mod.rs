//! What happened: the audit trail now; viewing statistics and reports later. Owns `audit_events`
//! and `audit_relay` (what replicas relayed).

pub mod audit;
pub mod relay;
