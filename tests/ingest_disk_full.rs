//! A full disk during an upload (the data directory is a small tmpfs): both upload paths answer
//! 507 with a problem JSON that says the disk is full, nothing half-stored is left behind, and
//! what was stored before still downloads intact.

mod common;

use common::Mount;
mod ingest_support;

use std::path::Path;

use common::{Api, Server};
use ingest_support::*;
use reqwest::Method;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
/// The tmpfs size; the big uploads are twice this, so they cannot fit whatever SQLite uses.
const DISK_MIB: usize = 16;

fn b64(s: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn media_rows(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("reelbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database read-only");
    conn.query_row("SELECT count(*) FROM media_items", [], |r| r.get(0)).expect("count media rows")
}

fn assert_disk_full(status: u16, problem: &Value, what: &str) {
    assert_eq!(status, 507, "{what}: {problem}");
    assert_eq!(problem["code"], "disk-full", "{what}: {problem}");
    let detail = problem.to_string();
    assert!(detail.contains("disk is full"), "{what}: the message says the disk is full: {problem}");
}

async fn assert_intact(api: &Api, id: i64, sha: &str) {
    let res = api.get(&format!("/api/v1/media/{id}/original")).await;
    assert_eq!(res.status(), 200, "the earlier item still downloads");
    let body = res.bytes().await.expect("original");
    assert_eq!(sha256_hex(&body), sha, "the earlier item is intact");
    let item = api.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(item["sha256"], sha, "{item}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_uploads_clearly_and_keeps_earlier_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let _mount = Mount::tmpfs(&data, &format!("size={DISK_MIB}m"));
    let server = Server::start_with(&data, dir.path(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category id");

    let first = pdf(1, MIB);
    let first_sha = sha256_hex(&first);
    let (status, item) = status_and_json(
        post_media(
            &admin,
            &format!("category={cat}&filename=first.pdf"),
            first.clone(),
            Some(content_digest(&first)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{item}");
    let first_id = item["id"].as_i64().expect("id");
    let rows_before = media_rows(&data);

    // Single-request upload of more than the disk holds.
    let big = mp4(2, 2 * DISK_MIB * MIB);
    let res = post_media(
        &admin,
        &format!("category={cat}&filename=big.mp4"),
        big.clone(),
        Some(content_digest(&big)),
    )
    .await;
    let (status, problem) = status_and_json(res).await;
    assert_disk_full(status, &problem, "single-request upload");
    assert!(temp_files(&data).is_empty(), "no temp file left: {:?}", temp_files(&data));
    assert_eq!(blobs(&data).len(), 1, "no blob for the refused upload");
    assert_eq!(media_rows(&data), rows_before, "no row for the refused upload");
    assert_intact(&admin, first_id, &first_sha).await;

    // The same through tus: the PATCH that runs out of space is refused with 507.
    let big_sha = sha256_hex(&big);
    let meta =
        format!("filename {},category {},sha256 {}", b64("big.mp4"), b64(cat.to_string()), b64(&big_sha));
    let tus = |method: Method, path: &str| {
        admin
            .client
            .request(method, admin.url(path))
            .bearer_auth(&admin.token)
            .header("Tus-Resumable", "1.0.0")
    };
    let created = tus(Method::POST, "/api/v1/uploads")
        .header("Upload-Length", big.len().to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .expect("POST /api/v1/uploads");
    let location = common::location(&created);
    let media_id = common::header(created.headers(), "X-Media-Id");
    let (status, body) = status_and_json(created).await;
    if status == 201 {
        let res = tus(Method::PATCH, &location)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", "0")
            .body(big.clone())
            .send()
            .await
            .expect("PATCH");
        let (status, problem) = status_and_json(res).await;
        assert_disk_full(status, &problem, "tus PATCH");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("nothing was stored") || detail.contains("nothing was saved"), "{problem}");
        // The refused upload is gone at once: no item, no row, no partial bytes, no blob. The
        // client is told by HEAD and PATCH alike that there is nothing to resume.
        let head = tus(Method::HEAD, &location).send().await.expect("HEAD");
        assert_eq!(head.status(), 404, "HEAD after the 507");
        let again = tus(Method::PATCH, &location)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", "0")
            .body(big[..MIB].to_vec())
            .send()
            .await
            .expect("PATCH again");
        let (status, problem) = status_and_json(again).await;
        assert_eq!(status, 404, "PATCH after the 507: {problem}");
        assert_eq!(problem["code"], "upload-not-found", "{problem}");
        assert!(files_under(&data.join("uploads")).is_empty(), "{:?}", files_under(&data.join("uploads")));
        assert_eq!(blobs(&data).len(), 1, "no blob for the refused upload");
        assert!(files_under(&data.join("blobs/tmp")).is_empty(), "no blob temp file");
        let res = admin.get(&format!("/api/v1/media/{media_id}")).await;
        assert_eq!(res.status(), 404, "the item is gone");
    } else {
        assert_disk_full(status, &body, "tus creation");
    }
    assert!(temp_files(&data).is_empty(), "no temp file left: {:?}", temp_files(&data));
    assert_eq!(media_rows(&data), rows_before, "no row for the refused upload");
    assert_intact(&admin, first_id, &first_sha).await;

    // With space again, uploads work.
    let small = pdf(3, 64 * 1024);
    let (status, item) = status_and_json(
        post_media(
            &admin,
            &format!("category={cat}&filename=after.pdf"),
            small.clone(),
            Some(content_digest(&small)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{item}");
}
