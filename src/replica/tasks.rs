//! The pair's background work in a running server, started by `serve`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Role, now_ms};
use crate::App;

/// Start the promotion watcher, the peer watch (primary), the follower, the media and
/// rendition follow and the scrub (replica), the audit relay and the automatic promotion (when
/// configured).
pub fn spawn(app: &App) -> Vec<JoinHandle<()>> {
    // What the rendition follow copied: it holds this while copying, the scrub while repairing.
    let copied = Arc::new(tokio::sync::Mutex::new(super::renditions::Copied::load(&app.config.data_dir)));
    let mut tasks = vec![
        tokio::spawn(super::promote::watch_requests(app.clone())),
        tokio::spawn(super::fence::watch_peer(app.replica.clone())),
        tokio::spawn(super::media::run(app.clone(), copied.clone())),
        tokio::spawn(super::scrub::run(app.clone(), copied)),
        tokio::spawn(super::follower::run(app.clone())),
        tokio::spawn(super::audit::run(app.clone())),
    ];
    if app.replica.config.auto_promote_after_seconds > 0 {
        tasks.push(tokio::spawn(auto_promote(app.clone())));
    }
    tasks
}

/// Run `start` now if this node is the primary, or as soon as it is promoted.
pub async fn when_primary<T: Send + 'static>(
    app: &App,
    start: fn(&App) -> T,
) -> Arc<tokio::sync::Mutex<Option<T>>> {
    let slot = Arc::new(tokio::sync::Mutex::new(None));
    if app.replica.role() == Role::Primary {
        *slot.lock().await = Some(start(app));
        return slot;
    }
    let (app, later) = (app.clone(), slot.clone());
    tokio::spawn(async move {
        let mut rx = app.replica.role_watch.subscribe();
        while *rx.borrow_and_update() != Role::Primary {
            if rx.changed().await.is_err() {
                return;
            }
        }
        *later.lock().await = Some(start(&app));
    });
    slot
}

/// Promote this replica when the primary has not answered for the configured time (and it has
/// answered at least once, so a replica that never reached its primary does not take over).
async fn auto_promote(app: App) {
    let limit = i64::from(app.replica.config.auto_promote_after_seconds) * 1000;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if app.replica.role() != Role::Replica {
            continue;
        }
        let Some(last) = app.replica.last_contact_ms() else { continue };
        if now_ms() - last > limit {
            match super::promote::promote_running(&app, "automatic").await {
                Ok(epoch) => {
                    tracing::error!(epoch, "the primary was silent too long: promoted automatically")
                }
                Err(e) => tracing::error!(error = %e, "automatic promotion failed"),
            }
        }
    }
}
