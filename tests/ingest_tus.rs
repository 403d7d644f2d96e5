//! tus 1.0.0 uploads at `/api/v1/uploads` against the real binary: create, append in chunks
//! with per-chunk checksums, resume after a crash (SIGKILL) and restart, whole-file hash
//! check, termination, and refusals that leave nothing behind.

mod common;
mod ingest_support;

use base64::Engine;
use common::Api;
use ingest_support::*;
use reqwest::{Method, Response};
use sha2::Digest;

fn b64(s: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn metadata(filename: &str, category: i64, sha256: &str) -> String {
    format!(
        "filename {},category {},sha256 {},title {}",
        b64(filename),
        b64(category.to_string()),
        b64(sha256),
        b64("Tus upload")
    )
}

fn tus(api: &Api, method: Method, path: &str) -> reqwest::RequestBuilder {
    api.client.request(method, api.url(path)).bearer_auth(&api.token).header("Tus-Resumable", "1.0.0")
}

async fn create(api: &Api, len: usize, meta: &str) -> Response {
    tus(api, Method::POST, "/api/v1/uploads")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .expect("POST /api/v1/uploads")
}

async fn patch(api: &Api, location: &str, offset: usize, chunk: &[u8], checksum: Option<String>) -> Response {
    let mut req = tus(api, Method::PATCH, location)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(chunk.to_vec());
    if let Some(c) = checksum {
        req = req.header("Upload-Checksum", c);
    }
    req.send().await.expect("PATCH")
}

async fn offset_of(api: &Api, location: &str) -> (u16, Option<u64>) {
    let res = tus(api, Method::HEAD, location).send().await.expect("HEAD");
    (res.status().as_u16(), common::header(res.headers(), "upload-offset").parse().ok())
}

fn h(res: &Response, name: &str) -> String {
    common::header(res.headers(), name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_survives_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let file = mp4(7, 200_000);
    let hash = sha256_hex(&file);

    let res = lib
        .teacher
        .client
        .request(Method::OPTIONS, lib.teacher.url("/api/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(h(&res, "tus-version"), "1.0.0");
    assert!(h(&res, "tus-extension").contains("creation-with-upload"));
    assert!(h(&res, "tus-extension").contains("checksum"));
    assert_eq!(h(&res, "tus-checksum-algorithm"), "sha1,sha256");
    assert_eq!(h(&res, "tus-max-size"), max_size().to_string());

    let res = create(&lib.teacher, file.len(), &metadata("lesson.mp4", cat, &hash)).await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap_or_default());
    let location = h(&res, "location");
    let media_id: i64 = h(&res, "x-media-id").parse().expect("X-Media-Id");
    assert!(location.starts_with("/api/v1/uploads/"), "{location}");
    assert!(!h(&res, "upload-expires").is_empty());
    assert_eq!(h(&res, "tus-resumable"), "1.0.0");
    let item = lib.teacher.get_json(&format!("/api/v1/media/{media_id}")).await;
    assert_eq!(item["status"], "uploading");
    assert_eq!(
        lib.student.get(&format!("/api/v1/media/{media_id}")).await.status().as_u16(),
        404,
        "not listed yet"
    );

    // First chunk with a correct sha1 checksum.
    let sha1 = b64(sha1::Sha1::digest(&file[..70_000]));
    let res = patch(&lib.teacher, &location, 0, &file[..70_000], Some(format!("sha1 {sha1}"))).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(h(&res, "upload-offset"), "70000");
    // A wrong offset is refused; a chunk with a wrong sha256 checksum is discarded (460).
    assert_eq!(patch(&lib.teacher, &location, 1, &file[1..10], None).await.status().as_u16(), 409);
    let wrong = b64(sha2::Sha256::digest(b"not this"));
    let res =
        patch(&lib.teacher, &location, 70_000, &file[70_000..120_000], Some(format!("sha256 {wrong}"))).await;
    assert_eq!(res.status().as_u16(), 460);
    assert_eq!(h(&res, "tus-resumable"), "1.0.0", "refusals carry the protocol version too");
    assert_eq!(offset_of(&lib.teacher, &location).await, (200, Some(70_000)));
    let res =
        patch(&lib.teacher, &location, 70_000, &file[70_000..120_000], Some(format!("md5 {wrong}"))).await;
    assert_eq!(res.status().as_u16(), 400);
    // Only the uploader (or an administrator) may see or touch it.
    assert_eq!(offset_of(&lib.student, &location).await.0, 404);
    assert_eq!(
        patch(&lib.outsider, &location, 70_000, &file[70_000..80_000], None).await.status().as_u16(),
        404
    );
    assert_eq!(offset_of(&lib.admin, &location).await, (200, Some(70_000)));
    // Without the protocol header.
    let res = lib
        .teacher
        .client
        .head(lib.teacher.url(&location))
        .bearer_auth(&lib.teacher.token)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(res.status().as_u16(), 412);

    // A second chunk; the running server answers what it acknowledged.
    let sha256 = b64(sha2::Sha256::digest(&file[70_000..120_000]));
    let res =
        patch(&lib.teacher, &location, 70_000, &file[70_000..120_000], Some(format!("sha256 {sha256}")))
            .await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(h(&res, "upload-offset"), "120000");
    assert_eq!(offset_of(&lib.teacher, &location).await, (200, Some(120_000)));
    let partial =
        lib.data().join("uploads").join(format!("{}.part", location.rsplit('/').next().unwrap_or("")));

    // A graceful stop syncs and records every acknowledged byte.
    lib = lib.restart_gracefully(dir.path());
    assert_eq!(
        offset_of(&lib.teacher, &location).await,
        (200, Some(120_000)),
        "SIGTERM keeps what was acknowledged"
    );
    assert_eq!(std::fs::metadata(&partial).expect("partial file").len(), 120_000);

    // A third chunk, then the server is killed (a crash): HEAD answers the durable offset, at
    // most what was acknowledged, and the partial file holds exactly that much.
    let res = patch(&lib.teacher, &location, 120_000, &file[120_000..160_000], None).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(h(&res, "upload-offset"), "160000");
    lib = lib.restart(dir.path());
    let (status, durable) = offset_of(&lib.teacher, &location).await;
    assert_eq!(status, 200);
    let durable = durable.expect("Upload-Offset") as usize;
    assert!(
        (120_000..=160_000).contains(&durable),
        "after kill -9: {durable} is between the synced and the acknowledged offset"
    );
    assert_eq!(std::fs::metadata(&partial).expect("partial file").len(), durable as u64, "cut back to HEAD");
    // Resuming from HEAD, as a tus client does, completes with the right hash.
    let res = patch(&lib.teacher, &location, durable, &file[durable..], None).await;
    assert_eq!(res.status().as_u16(), 204, "{}", res.text().await.unwrap_or_default());

    let item = lib.teacher.get_json(&format!("/api/v1/media/{media_id}")).await;
    assert_eq!(item["status"], "processing");
    assert_eq!(item["kind"], "video");
    assert_eq!(item["sha256"], hash);
    assert_eq!(item["title"], "Tus upload");
    let res = lib.student.get(&format!("/api/v1/media/{media_id}/original")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(sha256_hex(&res.bytes().await.expect("body")), hash);
    let data = lib.data();
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));
    assert_eq!(blobs(&data).len(), 1);
    assert_eq!(offset_of(&lib.teacher, &location).await.0, 404, "a finished upload is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_termination_leave_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let (cat, data) = (lib.category, lib.data());
    let image = png(3, 30_000);
    let hash = sha256_hex(&image);

    // creation-with-upload: the whole file in the POST.
    let res = tus(&lib.teacher, Method::POST, "/api/v1/uploads")
        .header("Upload-Length", image.len().to_string())
        .header("Upload-Metadata", metadata("a.png", cat, &hash))
        .header("Content-Type", "application/offset+octet-stream")
        .body(image.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(h(&res, "upload-offset"), image.len().to_string());
    let id = h(&res, "x-media-id");
    assert_eq!(lib.student.get_json(&format!("/api/v1/media/{id}")).await["status"], "ready");
    let stored = blobs(&data).len();

    // Whole-file hash mismatch: 460 naming both hashes; the item disappears, nothing stored.
    let other = png(4, 30_000);
    let res = create(&lib.teacher, other.len(), &metadata("b.png", cat, &hash)).await;
    let (location, id) = (h(&res, "location"), h(&res, "x-media-id"));
    let res = patch(&lib.teacher, &location, 0, &other[..10_000], None).await;
    assert_eq!(res.status().as_u16(), 204);
    let res = patch(&lib.teacher, &location, 10_000, &other[10_000..], None).await;
    assert_eq!(res.status().as_u16(), 460);
    let (_, p) = status_and_json(res).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&hash) && detail.contains(&sha256_hex(&other)), "{p}");
    assert_eq!(lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);
    assert_eq!(blobs(&data).len(), stored);
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));

    // Not a kind we take: refused when complete (415), item removed.
    let html = b"<!doctype html><p>hello</p>".to_vec();
    let res = create(&lib.teacher, html.len(), &metadata("x.pdf", cat, &sha256_hex(&html))).await;
    let (location, id) = (h(&res, "location"), h(&res, "x-media-id"));
    assert_eq!(patch(&lib.teacher, &location, 0, &html, None).await.status().as_u16(), 415);
    assert_eq!(lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);

    // An unwanted type is refused as soon as its first bytes are in, not after the whole file.
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend(png(8, 20_000));
    let res = create(&lib.teacher, zip.len(), &metadata("y.docx", cat, &sha256_hex(&zip))).await;
    let (location, id) = (h(&res, "location"), h(&res, "x-media-id"));
    let res = patch(&lib.teacher, &location, 0, &zip[..10_000], None).await;
    assert_eq!(res.status().as_u16(), 415);
    assert_eq!(offset_of(&lib.teacher, &location).await.0, 404);
    assert_eq!(lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));

    // More than Upload-Length in a PATCH.
    let res = create(&lib.teacher, 100, &metadata("c.png", cat, &hash)).await;
    let location = h(&res, "location");
    assert_eq!(patch(&lib.teacher, &location, 0, &image[..200], None).await.status().as_u16(), 400);
    assert_eq!(offset_of(&lib.teacher, &location).await, (200, Some(0)));

    // Termination.
    let res = tus(&lib.teacher, Method::DELETE, &location).send().await.expect("DELETE");
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(offset_of(&lib.teacher, &location).await.0, 404);
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));

    // Refused before anything is written: too large, zero bytes, no hash, no permission.
    let res = create(&lib.teacher, max_size() as usize + 1, &metadata("big.mp4", cat, &hash)).await;
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(create(&lib.teacher, 0, &metadata("empty.png", cat, &hash)).await.status().as_u16(), 400);
    let no_hash = format!("filename {},category {}", b64("a.png"), b64(cat.to_string()));
    let res = create(&lib.teacher, 10, &no_hash).await;
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(create(&lib.student, 10, &metadata("a.png", cat, &hash)).await.status().as_u16(), 403);
    assert_eq!(create(&lib.teacher, 10, &metadata("a.png", lib.hidden, &hash)).await.status().as_u16(), 404);
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));
    let terminated = audit(&lib.admin, "upload.terminated").await;
    assert_eq!(terminated.len(), 1);
    assert!(!audit(&lib.admin, "upload.rejected").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_length_is_declared_on_a_later_patch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let (cat, data) = (lib.category, lib.data());
    let file = mp4(11, 150_000);
    let hash = sha256_hex(&file);
    let deferred = |meta: String| {
        tus(&lib.teacher, Method::POST, "/api/v1/uploads")
            .header("Upload-Defer-Length", "1")
            .header("Upload-Metadata", meta)
    };
    let res = lib
        .teacher
        .client
        .request(Method::OPTIONS, lib.teacher.url("/api/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert!(h(&res, "tus-extension").split(',').any(|e| e == "creation-defer-length"), "advertised");

    let res = deferred(metadata("later.mp4", cat, &hash)).send().await.expect("POST");
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap_or_default());
    let (location, media_id) = (h(&res, "location"), h(&res, "x-media-id"));
    let head = tus(&lib.teacher, Method::HEAD, &location).send().await.expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(h(&head, "upload-defer-length"), "1");
    assert!(head.headers().get("upload-length").is_none(), "no length yet");
    assert_eq!(h(&head, "upload-offset"), "0");

    // Bytes before the length is known: kept, the upload stays open.
    let res = patch(&lib.teacher, &location, 0, &file[..60_000], None).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(h(&res, "upload-offset"), "60000");
    assert_eq!(lib.teacher.get_json(&format!("/api/v1/media/{media_id}")).await["status"], "uploading");

    // A length below what has arrived, or over the limit, is refused and writes nothing.
    let with_length = |offset: usize, chunk: &[u8], length: u64| {
        tus(&lib.teacher, Method::PATCH, &location)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .header("Upload-Length", length.to_string())
            .body(chunk.to_vec())
    };
    let res = with_length(60_000, &file[60_000..70_000], 50_000).send().await.expect("PATCH");
    assert_eq!(res.status().as_u16(), 400);
    let res = with_length(60_000, &file[60_000..70_000], max_size() + 1).send().await.expect("PATCH");
    let (status, problem) = status_and_json(res).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("too-large")), "{problem}");
    let head = tus(&lib.teacher, Method::HEAD, &location).send().await.expect("HEAD");
    assert_eq!((h(&head, "upload-offset"), h(&head, "upload-defer-length")), ("60000".into(), "1".into()));

    // The last PATCH declares the length and completes the upload.
    let res = with_length(60_000, &file[60_000..], file.len() as u64).send().await.expect("PATCH");
    assert_eq!(res.status().as_u16(), 204, "{}", res.text().await.unwrap_or_default());
    let item = lib.teacher.get_json(&format!("/api/v1/media/{media_id}")).await;
    assert_eq!(
        (item["sha256"].as_str(), item["size"].as_u64()),
        (Some(hash.as_str()), Some(file.len() as u64))
    );
    assert_eq!(item["kind"], "video");
    assert_eq!(offset_of(&lib.teacher, &location).await.0, 404, "a finished upload is gone");

    // Without a length, the maximum size still holds before bytes are written.
    let big = mp4(12, max_size() as usize + 10);
    let res = deferred(metadata("big.mp4", cat, &sha256_hex(&big))).send().await.expect("POST");
    let location = h(&res, "location");
    let res = patch(&lib.teacher, &location, 0, &big, None).await;
    assert_eq!(res.status().as_u16(), 400, "more than the maximum size");
    assert_eq!(offset_of(&lib.teacher, &location).await, (200, Some(0)));
    let partials = files_under(&data.join("uploads"));
    assert_eq!(partials.len(), 1, "{partials:?}");
    assert_eq!(partials[0].metadata().expect("partial").len(), 0, "nothing past the limit was kept");

    // A length that is set cannot change; the two creation headers exclude each other.
    let res = create(&lib.teacher, 1000, &metadata("fixed.mp4", cat, &hash)).await;
    let location = h(&res, "location");
    let res = tus(&lib.teacher, Method::PATCH, &location)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .header("Upload-Length", "2000")
        .body(file[..100].to_vec())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(offset_of(&lib.teacher, &location).await, (200, Some(0)));
    let both =
        deferred(metadata("both.mp4", cat, &hash)).header("Upload-Length", "10").send().await.expect("POST");
    assert_eq!(both.status().as_u16(), 400);
    let res = tus(&lib.teacher, Method::POST, "/api/v1/uploads")
        .header("Upload-Defer-Length", "2")
        .header("Upload-Metadata", metadata("two.mp4", cat, &hash))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 400);
}
