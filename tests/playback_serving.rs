//! Serving an item's media files against the real binary: content types and caching, Range /
//! 416 / If-Range / If-None-Match on segments, path patterns, who may fetch what (sessions,
//! tokens, signed URLs), recycled items, `playback.started` once, the embed page's framing
//! headers, captions (SRT converted, bad files refused, search), and the saved position.
//! The files are made with the real ffmpeg in the layout the transcoder publishes.

mod common;
#[path = "ingest_support/mod.rs"]
mod ingest_support;
#[path = "playback_support/mod.rs"]
mod playback_support;

use common::{PASSWORD, Server, http};
use ingest_support::{Library, content_digest, post_media};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Fixture {
    lib: Library,
    _dir: tempfile::TempDir,
    id: i64,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let bytes = playback_support::clip(dir.path(), 9);
    let q = format!("category={}&filename=lesson.mp4&title=Forces", lib.category);
    let digest = content_digest(&bytes);
    let res = post_media(&lib.teacher, &q, bytes, Some(digest)).await;
    assert_eq!(res.status().as_u16(), 201, "upload");
    let id = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    playback_support::publish(&lib.data(), id, &dir.path().join("clip-9.mp4"));
    Fixture { lib, _dir: dir, id }
}

fn hdr(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[tokio::test]
async fn files_have_types_caching_and_ranges() {
    let f = fixture().await;
    let student = &f.lib.student;
    let id = f.id;

    let res = student.get(&format!("/media/{id}/hls/master.m3u8")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hdr(&res, "content-type"), "application/vnd.apple.mpegurl");
    assert_eq!(hdr(&res, "cache-control"), "private, no-cache");
    assert!(res.text().await.expect("body").contains("240p/index.m3u8"));

    let res = student.get(&format!("/media/{id}/hls/240p/index.m3u8")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let playlist = res.text().await.expect("playlist");
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"init.mp4\"") && playlist.contains("seg-00001.m4s"),
        "{playlist}"
    );

    let res = student.get(&format!("/media/{id}/hls/240p/init.mp4")).await;
    assert_eq!((res.status(), hdr(&res, "content-type").as_str()), (StatusCode::OK, "video/mp4"));
    assert_eq!(hdr(&res, "cache-control"), "private, max-age=31536000, immutable");

    let seg_path = format!("/media/{id}/hls/240p/seg-00001.m4s");
    let on_disk =
        std::fs::read(f.lib.data().join(format!("media/{id}/hls/240p/seg-00001.m4s"))).expect("segment");
    let res = student.get(&seg_path).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hdr(&res, "content-type"), "video/iso.segment");
    assert_eq!(hdr(&res, "cache-control"), "private, max-age=31536000, immutable");
    assert_eq!(hdr(&res, "accept-ranges"), "bytes");
    let etag = hdr(&res, "etag");
    assert!(etag.starts_with('"'), "{etag}");
    assert_eq!(res.bytes().await.expect("segment").as_ref(), on_disk.as_slice());

    let ranged = |range: &'static str, if_range: Option<String>| {
        let mut r =
            student.client.get(student.url(&seg_path)).bearer_auth(&student.token).header("Range", range);
        if let Some(v) = if_range {
            r = r.header("If-Range", v);
        }
        r.send()
    };
    let res = ranged("bytes=10-19", None).await.expect("range");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(hdr(&res, "content-range"), format!("bytes 10-19/{}", on_disk.len()));
    assert_eq!(res.bytes().await.expect("part").as_ref(), &on_disk[10..20]);
    let res = ranged("bytes=-5", None).await.expect("suffix");
    assert_eq!(res.bytes().await.expect("suffix").as_ref(), &on_disk[on_disk.len() - 5..]);
    let res = ranged("bytes=999999999-", None).await.expect("416");
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(hdr(&res, "content-range"), format!("bytes */{}", on_disk.len()));
    let res = ranged("bytes=10-19", Some(etag.clone())).await.expect("if-range");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "matching If-Range honours the range");
    let res = ranged("bytes=10-19", Some("\"stale\"".into())).await.expect("stale if-range");
    assert_eq!(res.status(), StatusCode::OK, "a stale If-Range gets the whole file");
    assert_eq!(res.bytes().await.expect("whole").len(), on_disk.len());
    let res = student
        .client
        .get(student.url(&seg_path))
        .bearer_auth(&student.token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    for (path, ty) in [
        ("download.mp4", "video/mp4"),
        ("poster.jpg", "image/jpeg"),
        ("sprite.jpg", "image/jpeg"),
        ("sprite.vtt", "text/vtt; charset=utf-8"),
    ] {
        let res = student.get(&format!("/media/{id}/{path}")).await;
        assert_eq!((res.status(), hdr(&res, "content-type")), (StatusCode::OK, ty.to_string()), "{path}");
    }
    // Not published for a video, and patterns that must never reach the disk.
    for bad in [
        "download.m4a".to_string(),
        "hls/720p/index.m3u8".into(),
        "hls/240p/seg-1.m4s".into(),
        "hls/240p/seg-00099.m4s".into(),
        "hls/.work/index.m3u8".into(),
        "hls/240p/..%2F..%2F..%2Freelbox.db".into(),
        "hls/..%2F..%2Freelbox.db/index.m3u8".into(),
        "hls/240p/".into(),
        "hls/".into(),
    ] {
        let res = student.get(&format!("/media/{id}/{bad}")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
    }

    // Playback is audited once per person and item, not per request.
    student.get(&format!("/media/{id}/hls/master.m3u8")).await;
    let events = ingest_support::audit(&f.lib.admin, "playback.started").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "stu");
}

#[tokio::test]
async fn only_viewers_fetch_and_signed_urls_stand_in_for_the_cookie() {
    let f = fixture().await;
    let id = f.id;
    let master = format!("/media/{id}/hls/master.m3u8");
    let seg = format!("/media/{id}/hls/240p/seg-00001.m4s");

    let res = f.lib.outsider.get(&seg).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no grant: as if it did not exist");
    let res = http().get(f.lib.server.url(&seg)).send().await.expect("anonymous");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "anonymous: sign in first");

    // The item page issues a token for the signed-in viewer.
    f.lib.server.add_user("viv", false);
    let grants = json!([{"username": "tess", "role": "contribute"}, {"username": "stu", "role": "view"}, {"username": "viv", "role": "view"}]);
    f.lib
        .admin
        .call(Method::PUT, &format!("/api/v1/categories/{}/grants", f.lib.category), Some(&grants), 204)
        .await;
    let session = f.lib.server.sign_in("viv", PASSWORD).await;
    let page = http()
        .get(f.lib.server.url(&format!("/media/{id}")))
        .header("Cookie", session.cookie_header())
        .send()
        .await
        .expect("item page")
        .text()
        .await
        .expect("html");
    let token = page
        .split("data-token=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("a token on the player: {page}"))
        .to_string();
    assert!(page.contains(&format!("{master}?t={token}")), "the player's master URL carries it");

    // Without any cookie, the token opens this item's files and rewrites playlist URIs.
    let with = |path: &str, t: &str| http().get(f.lib.server.url(&format!("{path}?t={t}"))).send();
    let res = with(&master, &token).await.expect("master");
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.expect("master");
    assert!(body.contains(&format!("240p/index.m3u8?t={token}")), "{body}");
    let media = with(&format!("/media/{id}/hls/240p/index.m3u8"), &token)
        .await
        .expect("media")
        .text()
        .await
        .expect("text");
    assert!(
        media.contains(&format!("init.mp4?t={token}")) && media.contains(&format!("seg-00001.m4s?t={token}")),
        "{media}"
    );
    assert_eq!(with(&seg, &token).await.expect("segment").status(), StatusCode::OK);

    // Tampered, or for another item: refused with 401 (not a sign-in redirect).
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(with(&seg, &forged).await.expect("forged").status(), StatusCode::UNAUTHORIZED);
    let other = format!("/media/{}/hls/master.m3u8", id + 1000);
    let res = with(&other, &token).await.expect("other");
    assert_ne!(res.status(), StatusCode::OK);
    // Taking the person's grant away stops their token at once.
    let grants = json!([{"username": "tess", "role": "contribute"}, {"username": "stu", "role": "view"}]);
    f.lib
        .admin
        .call(Method::PUT, &format!("/api/v1/categories/{}/grants", f.lib.category), Some(&grants), 204)
        .await;
    assert_eq!(with(&seg, &token).await.expect("revoked").status(), StatusCode::NOT_FOUND);

    // Recycled items serve nothing, even to the administrator.
    f.lib.admin.call(Method::DELETE, &format!("/api/v1/media/{id}"), None, 200).await;
    for path in [&master, &seg, &format!("/media/{id}/download.mp4"), &format!("/media/{id}/poster.jpg")] {
        assert_eq!(f.lib.admin.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn embed_is_framable_only_by_the_configured_sites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("reelbox.toml");
    std::fs::write(&config, "[embed]\nallowed_origins = [\"'self'\", \"https://moodle.school.example\"]\n")
        .expect("config file");
    let server = Server::start_with(&dir.path().join("data"), dir.path(), |c| {
        c.arg("--config").arg(&config);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category");
    let clip = playback_support::clip(dir.path(), 4);
    let res = post_media(
        &admin,
        &format!("category={cat}&filename=a.mp4"),
        clip.clone(),
        Some(content_digest(&clip)),
    )
    .await;
    let id = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    playback_support::publish(server.data_dir(), id, &dir.path().join("clip-4.mp4"));

    let session = server.sign_in("ada", PASSWORD).await;
    let res = http()
        .get(server.url(&format!("/embed/{id}")))
        .header("Cookie", session.cookie_header())
        .send()
        .await
        .expect("embed");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = hdr(&res, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'self' https://moodle.school.example"), "{csp}");
    assert!(csp.contains("script-src 'self'") && csp.contains("media-src 'self' blob:"), "{csp}");
    assert!(res.headers().get("x-frame-options").is_none(), "X-Frame-Options would forbid the LMS");
    let html = res.text().await.expect("html");
    assert!(html.contains("data-master=\"/media/") && html.contains("?t="), "player with a signed URL");
    assert!(!html.contains("site-header"), "the player alone");

    // Without the cookie (as in a cross-site iframe): a sign-in prompt that opens a new tab.
    let res = http().get(server.url(&format!("/embed/{id}"))).send().await.expect("anonymous embed");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(hdr(&res, "content-security-policy").contains("https://moodle.school.example"));
    let html = res.text().await.expect("html");
    assert!(html.contains("target=\"_blank\"") && html.contains("Sign in"), "{html}");
    assert!(!html.contains("data-master"));

    // Every other page still refuses to be framed by other sites.
    let res = http()
        .get(server.url(&format!("/media/{id}")))
        .header("Cookie", session.cookie_header())
        .send()
        .await
        .expect("page");
    assert_eq!(hdr(&res, "x-frame-options"), "SAMEORIGIN");
    assert!(
        hdr(&res, "content-security-policy").contains("frame-ancestors 'self';")
            || hdr(&res, "content-security-policy").ends_with("frame-ancestors 'self'")
    );
    let html = res.text().await.expect("html");
    assert!(
        html.contains("&lt;iframe src=") && html.contains(&format!("/embed/{id}")),
        "Embed code on the item page"
    );
}

#[tokio::test]
async fn captions_are_converted_checked_listed_and_searchable() {
    let f = fixture().await;
    let id = f.id;
    let post = |api: &common::Api, q: &str, body: Vec<u8>| {
        api.client
            .post(api.url(&format!("/api/v1/media/{id}/captions?{q}")))
            .bearer_auth(&api.token)
            .body(body)
            .send()
    };
    let srt = playback_support::srt(8, "Gravitation second");
    let res = post(&f.lib.teacher, "lang=en_gb", srt.clone().into_bytes()).await.expect("upload");
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.expect("json");
    assert_eq!(made["lang"], "en-GB");
    assert_eq!(made["url"], format!("/media/{id}/captions/en-GB.vtt"));

    let res = f.lib.student.get(&format!("/media/{id}/captions/en-GB.vtt")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hdr(&res, "content-type"), "text/vtt; charset=utf-8");
    let vtt = res.text().await.expect("vtt");
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nGravitation second 0\n"), "{vtt}");
    let list = f.lib.student.get_json(&format!("/api/v1/media/{id}/captions")).await;
    assert_eq!(list[0]["lang"], "en-GB");

    // Bad files and codes are refused with a reason; nothing is stored.
    for (q, body, status, code) in [
        ("lang=de", b"\xff\xfe\x00garbage".to_vec(), 422, "captions-not-text"),
        ("lang=de", b"hello, not captions".to_vec(), 422, "captions-malformed"),
        ("lang=de", b"WEBVTT\n\n".to_vec(), 422, "captions-empty"),
        ("lang=english", srt.clone().into_bytes(), 400, "captions-bad-language"),
        ("lang=de", vec![b'x'; 3 * 1024 * 1024], 413, "captions-too-large"),
    ] {
        let res = post(&f.lib.teacher, q, body).await.expect("refused");
        assert_eq!(res.status().as_u16(), status, "{code}");
        let body: Value = res.json().await.expect("problem");
        assert_eq!(body["code"], code);
    }
    assert_eq!(
        f.lib.student.get_json(&format!("/api/v1/media/{id}/captions")).await.as_array().map(Vec::len),
        Some(1)
    );
    // Viewers may not add captions; outsiders do not see the item.
    assert_eq!(
        post(&f.lib.student, "lang=fr", srt.clone().into_bytes()).await.expect("viewer").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&f.lib.outsider, "lang=fr", srt.clone().into_bytes()).await.expect("outsider").status(),
        StatusCode::NOT_FOUND
    );

    // Caption words find the item, for people who may see it.
    let found = f.lib.student.get_json("/api/v1/search?q=gravitation").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(f.lib.outsider.get_json("/api/v1/search?q=gravitation").await["total"], 0);

    // The item page lists the track in the player, and removal takes it away.
    f.lib.teacher.call(Method::DELETE, &format!("/api/v1/media/{id}/captions/en-GB"), None, 204).await;
    assert_eq!(
        f.lib.student.get(&format!("/media/{id}/captions/en-GB.vtt")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(f.lib.student.get_json("/api/v1/search?q=gravitation").await["total"], 0);
}

#[tokio::test]
async fn position_is_saved_per_person() {
    let f = fixture().await;
    let id = f.id;
    let session = f.lib.server.sign_in("stu", PASSWORD).await;
    let put = |secs: f64| {
        http()
            .put(f.lib.server.url(&format!("/api/v1/media/{id}/position")))
            .header("Cookie", session.cookie_header())
            .header("X-CSRF-Token", &session.csrf)
            .header("Origin", &f.lib.server.base)
            .json(&json!({"seconds": secs}))
            .send()
    };
    assert_eq!(put(42.5).await.expect("save").status(), StatusCode::NO_CONTENT);
    let page = |s: &common::Session| {
        http().get(f.lib.server.url(&format!("/media/{id}"))).header("Cookie", s.cookie_header()).send()
    };
    let html = page(&session).await.expect("page").text().await.expect("html");
    assert!(html.contains("data-resume=\"42.5\""), "resumes for the same person");
    let teacher = f.lib.server.sign_in("tess", PASSWORD).await;
    let html = page(&teacher).await.expect("page").text().await.expect("html");
    assert!(html.contains("data-resume=\"0.0\""), "not for someone else");
    assert_eq!(put(1.0).await.expect("clear").status(), StatusCode::NO_CONTENT);
    let html = page(&session).await.expect("page").text().await.expect("html");
    assert!(html.contains("data-resume=\"0.0\""), "near the start clears it");
}
