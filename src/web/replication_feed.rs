//! The replication feed on the primary: transaction records after a position (long-poll), the
//! newest snapshot, stored files by hash, and items' published renditions. Every request is
//! signed with the pair's secret and every answer carries the epoch, the position and a
//! signature over them and the body.

use std::io::{Read, Seek};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Deserialize;

use crate::App;
use crate::db::ids::MediaId;
use crate::replica::auth::{self, EPOCH_HEADER, NODE_HEADER, POSITION_HEADER, SIGNATURE_HEADER};
use crate::replica::renditions;
use crate::replica::spool::{self, After};
use crate::replica::{ReplicaError, Role};
use crate::store::Sha256;
use crate::web::error::WebError;
use crate::web::{Access, Endpoint, get, ranges};

/// One answer carries at most this many bytes of records (at least one record).
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
const MAX_WAIT_MS: u64 = 25_000;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get(
            "/replication/v1/records",
            Access::Replication,
            "Transaction records after a position (long-poll: generation, after, wait_ms)",
            records,
        ),
        get("/replication/v1/snapshot", Access::Replication, "The newest database snapshot", snapshot),
        get(
            "/replication/v1/blobs/{sha256}",
            Access::Replication,
            "A stored file by its SHA-256 (the replica checks the hash)",
            blob,
        ),
        get(
            "/replication/v1/media/{id}/files",
            Access::Replication,
            "An item's published renditions: paths, sizes and SHA-256",
            media_files,
        ),
        get(
            "/replication/v1/media/{id}/file",
            Access::Replication,
            "One published rendition file of an item (path=)",
            media_file,
        ),
    ]
}

fn not_primary() -> WebError {
    WebError::new(
        StatusCode::CONFLICT,
        "not-primary",
        "This server is not the primary: follow the primary instead.",
    )
}

/// Remember who follows us: after a failover that is where the newer primary is.
fn learn_peer(req: &HttpRequest, app: &App) {
    let Some(url) = req.headers().get(NODE_HEADER).and_then(|v| v.to_str().ok()) else { return };
    if crate::replica::config::check_url("peer", url, true).is_err() {
        return;
    }
    if app.replica.state().peer.as_deref() != Some(url) {
        let url = url.to_string();
        if let Err(e) = app.replica.update(|s| s.peer = Some(url)) {
            tracing::warn!(error = %e, "cannot record the replica's address");
        }
    }
}

fn signed(
    mut res: HttpResponseBuilder,
    app: &App,
    pq: &str,
    position: &str,
    body: &[u8],
) -> HttpResponseBuilder {
    let epoch = app.replica.epoch().to_string();
    let secret = app.replica.secret().unwrap_or_default();
    let sig = auth::response_mac(secret, pq, &epoch, position, body);
    res.insert_header((EPOCH_HEADER, epoch))
        .insert_header((POSITION_HEADER, position.to_string()))
        .insert_header((SIGNATURE_HEADER, sig))
        .insert_header(("cache-control", "no-store"));
    res
}

#[derive(Deserialize)]
struct RecordsQuery {
    generation: String,
    after: u64,
    wait_ms: Option<u64>,
}

async fn records(
    req: HttpRequest,
    app: web::Data<App>,
    q: web::Query<RecordsQuery>,
) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    if app.replica.role() != Role::Primary {
        return Err(not_primary());
    }
    learn_peer(&req, &app);
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(q.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let data_dir = app.replica.data_dir().to_path_buf();
    loop {
        let (dir, generation, after) = (data_dir.clone(), q.generation.clone(), q.after);
        let found =
            tokio::task::spawn_blocking(move || match spool::records_after(&dir, &generation, after) {
                After::Records(paths) => {
                    let mut body = Vec::new();
                    for p in paths {
                        // A file the uploader removed meanwhile ends the batch here.
                        let Ok(bytes) = std::fs::read(&p) else { break };
                        body.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                        body.extend_from_slice(&bytes);
                        if body.len() >= MAX_BATCH_BYTES {
                            break;
                        }
                    }
                    if body.is_empty() {
                        (After::Gap, Vec::new())
                    } else {
                        (After::Records(Vec::new()), body)
                    }
                }
                other => (other, Vec::new()),
            })
            .await
            .map_err(WebError::internal)?;
        let position = app.replica.shipped_now().map(|p| p.header()).unwrap_or_default();
        match found {
            (After::Records(_), body) => {
                return Ok(signed(HttpResponse::Ok(), &app, &pq, &position, &body)
                    .content_type("application/octet-stream")
                    .body(body));
            }
            (After::Gap, _) => {
                return Ok(signed(HttpResponse::Gone(), &app, &pq, &position, b"").finish());
            }
            (After::Nothing, _) if tokio::time::Instant::now() >= deadline => {
                return Ok(signed(HttpResponse::NoContent(), &app, &pq, &position, b"").finish());
            }
            (After::Nothing, _) => {
                let mut rx = app.replica.shipped.subscribe();
                let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
            }
        }
    }
}

async fn snapshot(req: HttpRequest, app: web::Data<App>) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    if app.replica.role() != Role::Primary {
        return Err(not_primary());
    }
    learn_peer(&req, &app);
    let data_dir = app.replica.data_dir().to_path_buf();
    let epoch = app.replica.epoch().to_string();
    let secret = app.replica.secret().unwrap_or_default().to_vec();
    let prepared = tokio::task::spawn_blocking(move || -> Result<_, ReplicaError> {
        let path = spool::latest_snapshot(&data_dir)
            .ok_or(ReplicaError::Replication("no snapshot shipped yet".into()))?;
        let info = crate::replication::snapshot::read_snapshot_info(&path)
            .map_err(|e| ReplicaError::Replication(e.to_string()))?;
        let position = format!("{}/{}", info.generation, info.txid);
        // Open once: the uploader may remove the spool file, the open file stays readable.
        let mut file = std::fs::File::open(&path).map_err(|e| ReplicaError::io(path.clone(), e))?;
        let mut verifier =
            auth::ResponseVerifier::new(&secret, "/replication/v1/snapshot", &epoch, &position);
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| ReplicaError::io(path.clone(), e))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            verifier.update(&buf[..n]);
        }
        file.rewind().map_err(|e| ReplicaError::io(path.clone(), e))?;
        Ok((file, size, position, verifier.signature()))
    })
    .await
    .map_err(WebError::internal)??;
    let (file, size, position, sig) = prepared;
    let mut res = HttpResponse::Ok();
    res.insert_header((EPOCH_HEADER, app.replica.epoch().to_string()))
        .insert_header((POSITION_HEADER, position))
        .insert_header((SIGNATURE_HEADER, sig))
        .content_type("application/octet-stream");
    Ok(ranges::respond(
        res,
        ranges::Plan::Send { start: 0, len: size, partial: false },
        file,
        size,
        "\"snapshot\"",
    ))
}

async fn blob(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    let hash = Sha256::from_hex(&path).map_err(|_| WebError::not_found())?;
    send_file(&req, app.store.path(&hash)).await
}

/// A file to the replica as bytes (Range honoured), or 404 when it is not there.
async fn send_file(req: &HttpRequest, file: std::path::PathBuf) -> Result<HttpResponse, WebError> {
    let cond = ranges::Conditions::of(req);
    let prepared = tokio::task::spawn_blocking(move || ranges::prepare(&file, &cond))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?
        .ok_or_else(WebError::not_found)?;
    let mut res = HttpResponse::Ok();
    res.content_type("application/octet-stream");
    Ok(ranges::respond_prepared(res, prepared))
}

async fn media_files(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<MediaId>,
) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    let (id, data, node) = (path.into_inner(), app.config.data_dir.clone(), app.replica.clone());
    let listing =
        tokio::task::spawn_blocking(move || renditions::list_published(&data, id, &node.rendition_hashes))
            .await
            .map_err(WebError::internal)??;
    let body = serde_json::to_vec(&listing).map_err(WebError::internal)?;
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok(signed(HttpResponse::Ok(), &app, pq, "", &body).content_type("application/json").body(body))
}

#[derive(Deserialize)]
struct FileQuery {
    path: String,
}

async fn media_file(
    req: HttpRequest,
    app: web::Data<App>,
    path: web::Path<MediaId>,
    q: web::Query<FileQuery>,
) -> Result<HttpResponse, WebError> {
    super::replication::authenticate(&req, &app, b"")?;
    let rel = renditions::safe_rel(&q.path).ok_or_else(WebError::not_found)?;
    send_file(&req, crate::transcode::media_dir(&app.config.data_dir, path.into_inner()).join(rel)).await
}
