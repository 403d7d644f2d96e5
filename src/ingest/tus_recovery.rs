//! The two ends of a server's life for resumable uploads (see the durability rule in `tus`):
//! at start, cut every partial file back to its recorded durable offset, so HEAD and the file
//! agree after a crash; at a graceful stop, fsync every open upload and record its full offset.

use std::path::PathBuf;

use rusqlite::params;

use super::IngestError;
use crate::App;
use crate::library::LibraryError;
use crate::store::StoreError;

/// At start, before serving: a partial file longer than its recorded offset holds bytes that
/// were acknowledged but perhaps never reached the disk (the process or the machine stopped
/// before they were synced); they are cut off, and the client sends them again. A file shorter
/// than its record (lost by the filesystem) lowers the record. Returns how many were changed.
pub async fn recover(app: &App) -> Result<usize, IngestError> {
    let rows = app
        .db
        .read(|c| {
            let mut stmt = c.prepare("SELECT id, received, partial_name FROM uploads")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get(2)?))
                })?
                .collect::<Result<Vec<(String, u64, String)>, _>>()?;
            Ok::<_, LibraryError>(rows)
        })
        .await?;
    let dir = app.uploads.dir().to_path_buf();
    let shorter = tokio::task::spawn_blocking(move || cut_back(&dir, rows))
        .await
        .map_err(|e| IngestError::Task(e.to_string()))??;
    let changed = shorter.len();
    app.db
        .write(move |c| {
            for (id, len) in &shorter {
                c.execute("UPDATE uploads SET received = ?2 WHERE id = ?1", params![id, *len as i64])?;
            }
            Ok::<_, LibraryError>(())
        })
        .await?;
    Ok(changed)
}

/// Truncate each partial file to its record; the uploads whose file is shorter than that.
fn cut_back(
    dir: &std::path::Path,
    rows: Vec<(String, u64, String)>,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut shorter = Vec::new();
    for (id, received, name) in rows {
        let path: PathBuf = dir.join(&name);
        let file = match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            // Made by the creation right after the row; a crash in between leaves no file, and
            // the first PATCH finds out.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io_at("opening partial upload", &path, e)),
        };
        let len = file.metadata().map_err(|e| StoreError::io_at("reading", &path, e))?.len();
        if len > received {
            tracing::info!(upload = %id, from = len, to = received, "cutting a partial upload back to its durable offset");
            file.set_len(received).map_err(|e| StoreError::io_at("truncating", &path, e))?;
            file.sync_all().map_err(|e| StoreError::io_at("syncing", &path, e))?;
        } else if len < received {
            tracing::warn!(upload = %id, recorded = received, found = len, "a partial upload is shorter than recorded");
            shorter.push((id, len));
        }
    }
    Ok(shorter)
}

/// At a graceful stop, after the last request: fsync every open upload and record its offset,
/// so HEAD after the restart answers what the last PATCH acknowledged. Returns how many.
pub async fn sync_open(app: &App) -> usize {
    let mut synced = 0;
    for (id, slot) in app.uploads.slots() {
        let mut guard = slot.lock().await;
        let Some(mut writer) = guard.take() else { continue };
        let done = tokio::task::spawn_blocking(move || writer.sync()).await;
        let size = match done {
            Ok(Ok(size)) => size,
            Ok(Err(e)) => {
                tracing::warn!(upload = %id, error = %e, "could not sync an open upload at shutdown");
                continue;
            }
            Err(e) => {
                tracing::warn!(upload = %id, error = %e, "could not sync an open upload at shutdown");
                continue;
            }
        };
        let recorded = app
            .db
            .write(move |c| {
                c.execute(
                    "UPDATE uploads SET received = max(received, ?2) WHERE id = ?1",
                    params![id, size as i64],
                )
                .map_err(LibraryError::from)
            })
            .await;
        match recorded {
            Ok(_) => synced += 1,
            Err(e) => tracing::warn!(error = %e, "could not record an upload's offset at shutdown"),
        }
    }
    synced
}
