//! Sign-in bookkeeping that happens on reads: a session's idle timer and a token's last use.
//! A primary writes them; a replica must not write its copy, so it sends them to the primary
//! (signed, in the background) and the renewal comes back through replication.

use serde::{Deserialize, Serialize};

use crate::App;
use crate::accounts::{AccountsError, sessions, tokens};
use crate::clock::Timestamp;
use crate::db::ids::{SessionId, TokenId};

#[derive(Debug, Clone, Copy)]
pub enum Touch {
    Session(SessionId),
    Token(TokenId),
}

/// What a replica sends to `POST /replication/v1/touch`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouchBatch {
    pub sessions: Vec<SessionId>,
    pub tokens: Vec<TokenId>,
    pub at: Timestamp,
}

pub const TOUCH_PATH: &str = "/replication/v1/touch";

/// Renew locally on a primary; on a replica, ask the primary (never blocks the request).
pub async fn touch(app: &App, what: Touch, now: Timestamp) -> Result<(), AccountsError> {
    if app.replica.accepts_writes() {
        return app
            .db
            .write(move |c| match what {
                Touch::Session(id) => sessions::touch(c, id, now),
                Touch::Token(id) => tokens::touch(c, id, now),
            })
            .await;
    }
    let node = app.replica.clone();
    let (Some(primary), Some(secret)) = (node.primary_url(), node.secret().map(<[u8]>::to_vec)) else {
        return Ok(());
    };
    let mut batch = TouchBatch { at: now, ..Default::default() };
    match what {
        Touch::Session(id) => batch.sessions.push(id),
        Touch::Token(id) => batch.tokens.push(id),
    }
    tokio::spawn(async move {
        let body = serde_json::to_vec(&batch).unwrap_or_default();
        let req = super::auth::signed(&node.http, &secret, reqwest::Method::POST, &primary, TOUCH_PATH, body)
            .header("content-type", "application/json");
        match req.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = r.status().as_u16(), "the primary refused a session renewal"),
            Err(e) => tracing::debug!(error = %e, "session renewal not sent: primary unreachable"),
        }
    });
    Ok(())
}

/// Apply a replica's renewals on the primary; times from the future are clamped to `now`.
pub async fn apply(app: &App, batch: TouchBatch, now: Timestamp) -> Result<(), AccountsError> {
    let at = batch.at.min(now);
    app.db
        .write(move |c| {
            let tx = c.transaction().map_err(AccountsError::from)?;
            for id in &batch.sessions {
                sessions::touch(&tx, *id, at)?;
            }
            for id in &batch.tokens {
                tokens::touch(&tx, *id, at)?;
            }
            tx.commit().map_err(AccountsError::from)
        })
        .await
}
