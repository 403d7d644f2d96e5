//! "My uploads" against the real binary: a person's own items, newest first, with kind, status,
//! size and date, conversion progress for videos being converted, nobody else's items, and a
//! link in the main navigation.

mod common;
mod ingest_support;

use ingest_support::*;
use reqwest::Method;

async fn upload(api: &common::Api, cat: i64, name: &str, body: Vec<u8>) -> i64 {
    let q = format!("category={cat}&filename={name}");
    let digest = content_digest(&body);
    let (status, item) = status_and_json(post_media(api, &q, body, Some(digest)).await).await;
    assert_eq!(status, 201, "{name}: {item}");
    item["id"].as_i64().expect("id")
}

/// The `<tr>` of item `id` in the page.
fn row_of(html: &str, id: i64) -> String {
    let start = html
        .find(&format!("<tr data-media-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}: {html}"));
    let end = html[start..].find("</tr>").map_or(html.len(), |e| start + e);
    html[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_uploads_lists_my_own_items_newest_first_with_progress_for_conversions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;

    let image = upload(&lib.teacher, cat, "diagram.png", png(1, 3_000)).await;
    let notes = upload(&lib.teacher, cat, "notes.pdf", pdf(2, 12_345)).await;
    let video = upload(&lib.teacher, cat, "lesson.mp4", mp4(3, 5_000)).await;
    let gone = upload(&lib.teacher, cat, "mistake.pdf", pdf(4, 2_000)).await;
    lib.teacher.call(Method::DELETE, &format!("/api/v1/media/{gone}"), None, 200).await;
    let others = upload(&lib.admin, cat, "admins.pdf", pdf(5, 2_000)).await;
    // A resumable upload that has not finished: created, no bytes yet.
    let unfinished = {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let body = pdf(6, 4_000);
        let metadata = format!(
            "filename {},category {},sha256 {}",
            b64("draft.pdf"),
            b64(&cat.to_string()),
            b64(&sha256_hex(&body))
        );
        let res = lib
            .teacher
            .client
            .post(lib.teacher.url("/api/v1/uploads"))
            .bearer_auth(&lib.teacher.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", body.len().to_string())
            .header("Upload-Metadata", metadata)
            .send()
            .await
            .expect("tus creation");
        assert_eq!(res.status().as_u16(), 201);
        common::header(res.headers(), "x-media-id").parse::<i64>().expect("X-Media-Id")
    };

    // The test server has no ffmpeg: once the worker has looked, the conversion waits for it.
    // (What the page's script reads: the item as the API tells its owner.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let item = lib.teacher.get_json(&format!("/api/v1/media/{video}")).await;
        assert_eq!(
            (item["status"].as_str(), item["progress"].as_u64()),
            (Some("processing"), Some(0)),
            "{item}"
        );
        if item["transcode_state"] == "waiting" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the conversion never waited for ffmpeg: {item}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let tess = lib.server.browser_login("tess", common::PASSWORD).await;
    let res = tess.get("/my/uploads").await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.expect("page");

    // Newest first; mine only; nothing from the recycle bin.
    let order: Vec<i64> = [unfinished, video, notes, image]
        .into_iter()
        .map(|id| html.find(&format!("<tr data-media-id=\"{id}\"")).map(|_| id).unwrap_or(-1))
        .collect();
    assert_eq!(order, [unfinished, video, notes, image], "{html}");
    let at = |id: i64| html.find(&format!("<tr data-media-id=\"{id}\"")).unwrap_or(usize::MAX);
    assert!(
        at(unfinished) < at(video) && at(video) < at(notes) && at(notes) < at(image),
        "newest first: {html}"
    );
    for id in [gone, others] {
        assert!(!html.contains(&format!("data-media-id=\"{id}\"")), "item {id} is not mine or is recycled");
    }
    assert!(html.contains("4 items, newest first."), "{html}");

    // Each row: the title links to the item, kind, status, size, when.
    let pdf_row = row_of(&html, notes);
    assert!(pdf_row.contains(&format!("<a href=\"/media/{notes}\">notes</a>")), "{pdf_row}");
    assert!(
        pdf_row.contains("<td>Document</td>") && pdf_row.contains("Ready") && pdf_row.contains("12 KB"),
        "{pdf_row}"
    );
    assert!(pdf_row.contains(" UTC</time>"), "{pdf_row}");
    assert!(
        !pdf_row.contains("data-watch") && !pdf_row.contains("<progress"),
        "nothing to convert: {pdf_row}"
    );
    assert!(row_of(&html, image).contains("<td>Image</td>"));
    assert!(row_of(&html, unfinished).contains("Upload not finished"));

    // The video being converted: followed by the page's script, with a labelled progress bar.
    let video_row = row_of(&html, video);
    assert!(
        video_row.contains("data-status=\"processing\"") && video_row.contains("data-watch=\"true\""),
        "{video_row}"
    );
    assert!(
        video_row.contains("<td>Video</td>") && video_row.contains("Converting for playback"),
        "{video_row}"
    );
    assert!(
        video_row.contains("<progress max=\"100\" value=\"0\" aria-label=\"Conversion of lesson\"")
            && video_row.contains("0 % · Waiting for the converter"),
        "{video_row}"
    );
    let script = html
        .split("<script src=\"")
        .filter_map(|s| s.split('"').next())
        .find(|s| s.contains("my-uploads"))
        .unwrap_or_else(|| panic!("the page loads my-uploads.js: {html}"))
        .to_string();
    let js = tess.get(&script).await;
    assert_eq!(js.status().as_u16(), 200);
    assert!(js.text().await.expect("script").contains("/api/v1/media/"), "the script polls the item API");

    // In the main navigation, marked current here.
    assert!(html.contains("<a href=\"/my/uploads\" aria-current=\"page\">My uploads</a>"), "{html}");
    let home = tess.get("/").await.text().await.expect("home");
    assert!(home.contains("<a href=\"/my/uploads\">My uploads</a>"), "{home}");

    // Someone who uploaded nothing is told how to start.
    let stu = lib.server.browser_login("stu", common::PASSWORD).await;
    let html = stu.get("/my/uploads").await.text().await.expect("page");
    assert!(
        html.contains("You have not uploaded anything yet") && html.contains("href=\"/upload\""),
        "{html}"
    );
    assert!(!html.contains("<tr data-media-id"), "{html}");
    // A page past the end is empty, not an error.
    let res = tess.get("/my/uploads?page=9").await;
    assert_eq!(res.status().as_u16(), 200);
}
