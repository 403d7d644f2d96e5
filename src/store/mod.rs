//! Content-addressed blob store (SHA-256). Being written for the ingest issue.
