//! Single-request uploads (`POST /api/v1/media`) and downloads of the original, against the
//! real binary: what arrives intact is stored once and served back with its digest; whatever
//! is wrong is refused clearly and leaves nothing behind.

mod common;
mod ingest_support;

use ingest_support::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_view_and_download() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let data = lib.data();

    // An image: ready at once, named by content, path stripped from the name.
    let image = png(1, 100_000);
    let res = post_media(
        &lib.teacher,
        &format!("category={cat}&filename=..%2F..%2Fetc%2Fdiagram%20%C3%BC.png&title=Forces"),
        image.clone(),
        Some(content_digest(&image)),
    )
    .await;
    let location = common::location(&res);
    let (status, item) = status_and_json(res).await;
    assert_eq!(status, 201, "{item}");
    let id = item["id"].as_i64().expect("id");
    assert_eq!(location, format!("/api/v1/media/{id}"));
    assert_eq!(item["kind"], "image");
    assert_eq!(item["status"], "ready");
    assert_eq!(item["title"], "Forces");
    assert_eq!(item["original_filename"], "diagram ü.png");
    assert_eq!(item["sha256"], sha256_hex(&image));
    assert_eq!(item["size"], image.len() as u64);
    assert_eq!(item["category_id"], cat);
    // The original and its thumbnail (both sizes of a 16-pixel image are the same file).
    assert_eq!(blobs(&data).len(), 2);
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));

    // The viewer sees it; someone without access does not learn it exists.
    let seen = lib.student.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(seen["sha256"], sha256_hex(&image));
    assert_eq!(lib.outsider.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);
    assert_eq!(lib.outsider.get(&format!("/api/v1/media/{id}/original")).await.status().as_u16(), 404);
    assert_eq!(
        common::http()
            .get(lib.server.url(&format!("/api/v1/media/{id}")))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(lib.student.get("/api/v1/media/999999").await.status().as_u16(), 404);

    // The original, whole.
    let res = lib.student.get(&format!("/api/v1/media/{id}/original")).await;
    assert_eq!(res.status().as_u16(), 200);
    let h = res.headers().clone();
    assert_eq!(common::header(&h, "content-type"), "image/png");
    assert_eq!(common::header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(common::header(&h, "etag"), format!("\"{}\"", sha256_hex(&image)));
    assert_eq!(common::header(&h, "repr-digest"), content_digest(&image));
    assert_eq!(common::header(&h, "accept-ranges"), "bytes");
    let cd = common::header(&h, "content-disposition");
    assert!(cd.starts_with("attachment; filename=\"diagram _.png\""), "{cd}");
    assert!(cd.contains("filename*=UTF-8''diagram%20%C3%BC.png"), "{cd}");
    assert_eq!(res.bytes().await.expect("body").as_ref(), image.as_slice());
    let downloads = audit(&lib.admin, "media.downloaded").await;
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert_eq!(downloads[0]["actor"], "stu");

    // Ranges.
    let url = lib.student.url(&format!("/api/v1/media/{id}/original"));
    let ranged = |range: &'static str, if_range: Option<String>| {
        let mut req = lib.student.client.get(&url).bearer_auth(&lib.student.token).header("Range", range);
        if let Some(v) = if_range {
            req = req.header("If-Range", v);
        }
        req.send()
    };
    let res = ranged("bytes=10-19", None).await.expect("range");
    assert_eq!(res.status().as_u16(), 206);
    assert_eq!(common::header(res.headers(), "content-range"), format!("bytes 10-19/{}", image.len()));
    assert_eq!(res.bytes().await.expect("body").as_ref(), &image[10..20]);
    let res = ranged("bytes=-5", Some(format!("\"{}\"", sha256_hex(&image)))).await.expect("range");
    assert_eq!(res.status().as_u16(), 206);
    assert_eq!(res.bytes().await.expect("body").as_ref(), &image[image.len() - 5..]);
    let res = ranged("bytes=10-19", Some("\"something-else\"".into())).await.expect("range");
    assert_eq!(res.status().as_u16(), 200, "a stale If-Range gets the whole file");
    assert_eq!(res.bytes().await.expect("body").len(), image.len());
    let res = ranged("bytes=999999-", None).await.expect("range");
    assert_eq!(res.status().as_u16(), 416);
    assert_eq!(common::header(res.headers(), "content-range"), format!("bytes */{}", image.len()));
    assert_eq!(audit(&lib.admin, "media.downloaded").await.len(), 2, "seeks are not downloads");

    // Video waits for the transcoder; a PDF is a document.
    let video = mp4(2, 5_000);
    let (status, v) = status_and_json(
        post_media(
            &lib.teacher,
            &format!("category={cat}&filename=lesson.mp4"),
            video.clone(),
            Some(content_digest(&video)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!((v["kind"].as_str(), v["status"].as_str()), (Some("video"), Some("processing")));
    assert_eq!(v["title"], "lesson");
    let res = lib.student.get(&format!("/api/v1/media/{}/original", v["id"])).await;
    assert_eq!(common::header(res.headers(), "content-type"), "video/mp4");
    let doc = pdf(3, 2_000);
    let (status, d) = status_and_json(
        post_media(
            &lib.teacher,
            &format!("category={cat}&filename=sheet.pdf"),
            doc.clone(),
            Some(content_digest(&doc)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!((d["kind"].as_str(), d["status"].as_str()), (Some("document"), Some("ready")));

    // Identical content: its own item, one blob.
    let before = blobs(&data).len();
    let (status, again) = status_and_json(
        post_media(
            &lib.admin,
            &format!("category={cat}&filename=copy.png"),
            image.clone(),
            Some(content_digest(&image)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], id);
    assert_eq!(again["sha256"], sha256_hex(&image));
    assert_eq!(blobs(&data).len(), before, "stored once");
    assert_eq!(audit(&lib.admin, "upload.completed").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let data = lib.data();
    let q = format!("category={cat}&filename=file.png");
    let image = png(9, 50_000);
    let nothing_stored = |what: &str| {
        assert!(blobs(&data).is_empty(), "{what}: {:?}", blobs(&data));
        assert!(temp_files(&data).is_empty(), "{what}: {:?}", temp_files(&data));
    };

    // Wrong hash: 422 naming both hashes.
    let wrong = content_digest(b"something else");
    let (status, p) = status_and_json(post_media(&lib.teacher, &q, image.clone(), Some(wrong)).await).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["code"], "digest-mismatch");
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&sha256_hex(b"something else")) && detail.contains(&sha256_hex(&image)),
        "{detail}"
    );
    nothing_stored("wrong hash");

    // Truncated: half the file with the whole file's digest.
    let (status, p) = status_and_json(
        post_media(&lib.teacher, &q, image[..25_000].to_vec(), Some(content_digest(&image))).await,
    )
    .await;
    assert_eq!(status, 422, "{p}");
    nothing_stored("truncated");

    // Over the configured maximum: refused from Content-Length.
    let big = png(4, max_size() as usize + 1);
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, big.clone(), Some(content_digest(&big))).await).await;
    assert_eq!(status, 413, "{p}");
    assert_eq!(p["code"], "too-large");
    nothing_stored("oversized");

    // Zero bytes.
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, Vec::new(), Some(content_digest(b""))).await).await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(p["code"], "empty-file");

    // Not a kind we take (HTML, whatever the name says): 415 naming what is allowed.
    let html = b"<!doctype html><html><script>alert(1)</script></html>".to_vec();
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, html.clone(), Some(content_digest(&html))).await).await;
    assert_eq!(status, 415, "{p}");
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("video (") && detail.contains("documents ("), "{p}");
    nothing_stored("unknown type");

    // No digest, or a malformed one.
    let (status, p) = status_and_json(post_media(&lib.teacher, &q, image.clone(), None).await).await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(p["code"], "digest-required");
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, image.clone(), Some("sha-256=:nope:".into())).await)
            .await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid-digest")), "{p}");

    // An image with a web page in its head (a polyglot).
    let mut poly = png(5, 0);
    poly.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    poly.extend(png(6, 4_000));
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, poly.clone(), Some(content_digest(&poly))).await).await;
    assert_eq!(status, 415, "{p}");
    nothing_stored("polyglot");

    // Permissions: view is not enough; a hidden category does not exist.
    let res = post_media(&lib.student, &q, image.clone(), Some(content_digest(&image))).await;
    assert_eq!(res.status().as_u16(), 403);
    let res = post_media(
        &lib.teacher,
        &format!("category={}&filename=a.png", lib.hidden),
        image.clone(),
        Some(content_digest(&image)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);
    nothing_stored("no permission");

    let rejected = audit(&lib.admin, "upload.rejected").await;
    assert!(rejected.len() >= 5, "{rejected:?}");
    assert!(audit(&lib.admin, "upload.completed").await.is_empty());
    // Nothing half-done in the database either: the admin sees no items at all.
    for id in 1..=3 {
        assert_eq!(lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);
    }
    let _ = Method::GET;
}
