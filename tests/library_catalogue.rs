//! The catalogue against the real binary: thumbnails made on upload and served with the item's
//! permissions, the item page, category listing with pagination and sort, search limited to
//! what each person may view, and editing by owners and editors.

mod common;
mod ingest_support;

use ingest_support::*;
use reqwest::Method;
use serde_json::{Value, json};

fn real_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 120]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode png");
    out.into_inner()
}

async fn upload(api: &common::Api, cat: i64, name: &str, title: &str, body: Vec<u8>) -> Value {
    let digest = content_digest(&body);
    let q = format!("category={cat}&filename={name}&title={}", urlencoding::encode(title));
    let (status, item) = status_and_json(post_media(api, &q, body, Some(digest)).await).await;
    assert_eq!(status, 201, "upload of {name}: {item}");
    item
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

async fn page(b: &common::Browser, path: &str) -> (u16, String) {
    let res = b.get(path).await;
    let status = res.status().as_u16();
    (status, res.text().await.expect("page body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_item_pages_and_inline_pdfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let image = upload(&lib.teacher, cat, "diagram.png", "Forces diagram", real_png(1200, 800)).await;
    let img = id(&image);

    // Thumbnails exist once the upload has answered, for whoever may view the item.
    let res = lib.student.get(&format!("/api/v1/media/{img}/thumbnail/320")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(common::header(res.headers(), "content-type"), "image/jpeg");
    assert_eq!(common::header(res.headers(), "cache-control"), "private, max-age=31536000, immutable");
    let etag = common::header(res.headers(), "etag");
    assert_eq!(etag.len(), 66, "{etag}");
    let thumb = image::load_from_memory(&res.bytes().await.expect("bytes")).expect("a JPEG");
    assert_eq!((thumb.width(), thumb.height()), (320, 213));
    let again = lib
        .student
        .client
        .get(lib.student.url(&format!("/api/v1/media/{img}/thumbnail/320")))
        .bearer_auth(&lib.student.token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(again.status().as_u16(), 304);
    let large = lib.student.get(&format!("/api/v1/media/{img}/thumbnail/960")).await;
    let large = image::load_from_memory(&large.bytes().await.expect("bytes")).expect("a JPEG");
    assert_eq!(large.width(), 960);
    assert_eq!(lib.student.get(&format!("/api/v1/media/{img}/thumbnail/100")).await.status().as_u16(), 404);
    assert_eq!(lib.outsider.get(&format!("/api/v1/media/{img}/thumbnail/320")).await.status().as_u16(), 404);
    // Thumbnails are blobs: original + two thumbnails.
    assert_eq!(blobs(&lib.data()).len(), 3);

    // The item page: large thumbnail linking to the original, facts, edit only for the owner.
    let student = lib.server.browser_login("stu", common::PASSWORD).await;
    let (status, html) = page(&student, &format!("/media/{img}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("src=\"/media/{img}/thumbnail/960\"")), "{html}");
    assert!(html.contains(&format!("href=\"/api/v1/media/{img}/original?inline=true\"")), "{html}");
    assert!(html.contains(image["sha256"].as_str().expect("sha256")), "the hash is shown");
    assert!(html.contains("Forces diagram"));
    assert!(!html.contains("Edit details"), "a viewer cannot edit");
    let (status, _) = page(&student, &format!("/media/{img}/thumbnail/320")).await;
    assert_eq!(status, 200, "the page route serves thumbnails to the session too");
    let teacher = lib.server.browser_login("tess", common::PASSWORD).await;
    let (_, html) = page(&teacher, &format!("/media/{img}")).await;
    assert!(html.contains(&format!("href=\"/media/{img}/edit\"")), "the owner may edit");
    let outsider = lib.server.browser_login("olly", common::PASSWORD).await;
    assert_eq!(page(&outsider, &format!("/media/{img}")).await.0, 404);

    // An "image" that does not decode is refused at upload (see tests/ingest_content.rs), so no
    // item is left without its thumbnails.
    let broken = broken_png(2, 2_000);
    let q = format!("category={cat}&filename=broken.png");
    let (status, p) =
        status_and_json(post_media(&lib.teacher, &q, broken.clone(), Some(content_digest(&broken))).await)
            .await;
    assert_eq!((status, p["code"].as_str()), (422, Some("image-undecodable")), "{p}");
    assert!(audit(&lib.admin, "media.preview_failed").await.is_empty());

    // A PDF is framed inline from the original; the download stays an attachment.
    let pdf = upload(&lib.teacher, cat, "notes.pdf", "Notes", pdf(1, 3_000)).await;
    let (_, html) = page(&student, &format!("/media/{}", id(&pdf))).await;
    assert!(
        html.contains(&format!(
            "<iframe class=\"media-pdf\" src=\"/api/v1/media/{}/original?inline=true\"",
            id(&pdf)
        )),
        "{html}"
    );
    let inline = lib.student.get(&format!("/api/v1/media/{}/original?inline=true", id(&pdf))).await;
    assert!(common::header(inline.headers(), "content-disposition").starts_with("inline"));
    assert_eq!(common::header(inline.headers(), "content-type"), "application/pdf");
    let plain = lib.student.get(&format!("/api/v1/media/{}/original", id(&pdf))).await;
    assert!(common::header(plain.headers(), "content-disposition").starts_with("attachment"));
    // The page's CSP allows the same-origin frame (default-src 'self') and no plugins.
    let res = student.get(&format!("/media/{}", id(&pdf))).await;
    let csp = common::header(res.headers(), "content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("object-src 'none'"), "{csp}");

    // A video gets the player, which works as a plain `<video controls>` without script.
    let video = upload(&lib.teacher, cat, "clip.mp4", "Clip", mp4(1, 3_000)).await;
    let (_, html) = page(&student, &format!("/media/{}", id(&video))).await;
    assert!(html.contains("<video class=\"player-media\" controls"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_pages_paginate_sort_and_guide_contributors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let cat = lib.category;
    let student = lib.server.browser_login("stu", common::PASSWORD).await;
    let teacher = lib.server.browser_login("tess", common::PASSWORD).await;

    let (status, html) = page(&student, &format!("/categories/{cat}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("No media in this category yet"));
    assert!(!html.contains("/upload?category="), "a viewer is not told to upload");
    let (_, html) = page(&teacher, &format!("/categories/{cat}")).await;
    assert!(html.contains(&format!("href=\"/upload?category={cat}\"")), "a contributor is: {html}");

    for i in 0..26u8 {
        upload(
            &lib.teacher,
            cat,
            &format!("doc{i}.pdf"),
            &format!("Sheet {:02}", 25 - i),
            pdf(i, 1_000 + i as usize),
        )
        .await;
    }
    // An unfinished tus upload: listed for its owner only.
    let hash = sha256_hex(b"never sent");
    let meta =
        format!("filename {},category {},sha256 {}", b64("pending.pdf"), b64(&cat.to_string()), b64(&hash));
    let res = lib
        .teacher
        .client
        .post(lib.teacher.url("/api/v1/uploads"))
        .bearer_auth(&lib.teacher.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .header("Upload-Metadata", meta)
        .send()
        .await
        .expect("tus create");
    assert_eq!(res.status().as_u16(), 201);

    let (_, html) = page(&student, &format!("/categories/{cat}")).await;
    assert_eq!(html.matches("class=\"media-card\"").count(), 24, "24 per page");
    assert!(html.contains("26 items"), "{html}");
    assert!(html.contains(&format!("href=\"/categories/{cat}?sort=newest&amp;page=2\"")), "{html}");
    assert!(!html.contains("pending"), "someone else's unfinished upload is not listed");
    let (_, html) = page(&student, &format!("/categories/{cat}?page=2")).await;
    assert_eq!(html.matches("class=\"media-card\"").count(), 2);
    assert!(html.contains("Sheet 25") && html.contains("Sheet 24"), "the oldest come last");
    let (_, html) = page(&student, &format!("/categories/{cat}?sort=title")).await;
    let first = html.find("Sheet 00").expect("Sheet 00 on page 1");
    let second = html.find("Sheet 01").expect("Sheet 01 on page 1");
    assert!(first < second, "title order");
    assert!(!html.contains("Sheet 25"), "the last title is on page 2");
    let (_, html) = page(&teacher, &format!("/categories/{cat}")).await;
    assert!(html.contains("27 items") && html.contains("pending"), "the owner sees their upload");
    let (status, _) = page(&student, &format!("/categories/{cat}?page=abc")).await;
    assert_eq!(status, 400, "a page that is not a number is a bad request");
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_counts_only_what_each_person_may_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let (cat, hidden) = (lib.category, lib.hidden);
    let open = upload(&lib.teacher, cat, "m.pdf", "Magnetism lesson", pdf(1, 2_000)).await;
    upload(&lib.admin, hidden, "s.pdf", "Magnetism staff notes", pdf(2, 2_000)).await;

    let total = |v: &Value| v["total"].as_u64().expect("total");
    let r = lib.student.get_json("/api/v1/search?q=magnet").await;
    assert_eq!(total(&r), 1, "{r}");
    assert_eq!(r["items"][0]["id"], open["id"]);
    assert_eq!(r["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(total(&lib.admin.get_json("/api/v1/search?q=magnet").await), 2);
    assert_eq!(total(&lib.admin.get_json(&format!("/api/v1/search?q=magnet&category={hidden}")).await), 1);
    assert_eq!(total(&lib.student.get_json(&format!("/api/v1/search?q=magnet&category={hidden}")).await), 0);
    assert_eq!(total(&lib.outsider.get_json("/api/v1/search?q=magnet").await), 0);
    for odd in ["%22", "*%20OR%20(", "NEAR(", "-", "title:x", "%00"] {
        let res = lib.student.get(&format!("/api/v1/search?q={odd}")).await;
        assert_eq!(res.status().as_u16(), 200, "q={odd}");
    }

    let student = lib.server.browser_login("stu", common::PASSWORD).await;
    let (status, html) = page(&student, "/search?q=magnet").await;
    assert_eq!(status, 200);
    assert!(html.contains("Magnetism lesson") && !html.contains("staff notes"), "{html}");
    assert!(html.contains("1 item matches"));
    assert!(html.contains("id=\"site-search-q\""), "the header has a search field");
    let (_, html) = page(&student, "/search?q=%22%29%28").await;
    assert!(html.contains("Nothing found") || html.contains("Type a few words"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_honours_owners_editors_and_contribute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let (cat, hidden) = (lib.category, lib.hidden);
    lib.server.add_user("eddie", false);
    let grants = json!([
        {"username": "tess", "role": "contribute"},
        {"username": "stu", "role": "view"},
        {"username": "eddie", "role": "edit"}
    ]);
    lib.admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grants), 204).await;
    let editor = lib.server.api(&lib.server.token("eddie"));
    let item = id(&upload(&lib.teacher, cat, "w.pdf", "Waves", pdf(1, 2_000)).await);
    let path = format!("/api/v1/media/{item}");

    // The owner, in the form.
    let teacher = lib.server.browser_login("tess", common::PASSWORD).await;
    let (status, html) = page(&teacher, &format!("/media/{item}/edit")).await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"Waves\""));
    assert!(!html.contains(&format!("value=\"{hidden}\"")), "only categories the owner may contribute to");
    let res = teacher
        .post_form(
            &format!("/media/{item}/edit"),
            &[
                ("title", "Sound waves"),
                ("description", "Longitudinal waves"),
                ("tags", "physics, y10, physics"),
                ("category_id", &cat.to_string()),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(common::location(&res), format!("/media/{item}?notice=saved"));
    let now = lib.student.get_json(&path).await;
    assert_eq!((now["title"].as_str(), now["tags"].as_str()), (Some("Sound waves"), Some("physics, y10")));
    let edited = audit(&lib.admin, "media.edited").await;
    assert_eq!(edited.len(), 1);
    assert_eq!(edited[0]["detail"], "title, description, tags");
    assert_eq!(lib.student.get_json("/api/v1/search?q=longitudinal").await["total"], 1, "the index follows");
    let res = teacher.post_form(&format!("/media/{item}/edit"), &[("title", "  ")]).await;
    assert_eq!(res.status().as_u16(), 400, "an empty title is refused with the form shown again");

    // Viewers may not edit; outsiders are not told the item exists.
    let body = json!({"title": "Hacked"});
    lib.student.call(Method::PATCH, &path, Some(&body), 403).await;
    lib.outsider.call(Method::PATCH, &path, Some(&body), 404).await;
    let student = lib.server.browser_login("stu", common::PASSWORD).await;
    assert_eq!(page(&student, &format!("/media/{item}/edit")).await.0, 403);
    let res = student.post_form(&format!("/media/{item}/edit"), &[("title", "Hacked")]).await;
    assert_eq!(res.status().as_u16(), 403);

    // An editor changes someone else's item; moving needs contribute on the target.
    let v = editor.call(Method::PATCH, &path, Some(&json!({"description": "By the editor"})), 200).await;
    assert_eq!(
        (v["title"].as_str(), v["description"].as_str()),
        (Some("Sound waves"), Some("By the editor"))
    );
    editor.call(Method::PATCH, &path, Some(&json!({"category_id": hidden})), 403).await;
    lib.teacher.call(Method::PATCH, &path, Some(&json!({"category_id": hidden})), 403).await;
    lib.teacher.call(Method::PATCH, &path, Some(&json!({"nonsense": 1})), 400).await;
    let moved = lib.admin.call(Method::PATCH, &path, Some(&json!({"category_id": hidden})), 200).await;
    assert_eq!(moved["category_id"], hidden);
    lib.student.call(Method::GET, &path, None, 404).await;
}
