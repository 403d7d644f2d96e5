//! Media files sent with `sendfile` over kept-alive connections (src/web/sendfile.rs), and the
//! caches that make each request cheap (src/web/cache.rs): every answer is byte-exact whatever
//! came before it on the connection, large files that fill the socket buffer arrive whole, and
//! a cached permission or item row ends at once when a grant is taken away or the item is
//! recycled — for a session and for a signed URL alike.

mod common;
#[path = "ingest_support/mod.rs"]
mod ingest_support;
#[path = "playback_support/mod.rs"]
mod playback_support;

use common::{Browser, PASSWORD};
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
    let bytes = playback_support::clip(dir.path(), 5);
    let q = format!("category={}&filename=lesson.mp4&title=Waves", lib.category);
    let digest = content_digest(&bytes);
    let res = post_media(&lib.teacher, &q, bytes, Some(digest)).await;
    assert_eq!(res.status().as_u16(), 201, "upload");
    let id = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    playback_support::publish(&lib.data(), id, &dir.path().join("clip-5.mp4"));
    Fixture { lib, _dir: dir, id }
}

/// A segment far larger than a socket buffer, so sending it must wait for the reader.
fn big_segment(f: &Fixture) -> Vec<u8> {
    let bytes: Vec<u8> = (0..24_000_017u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let path = f.lib.data().join(format!("media/{}/hls/240p/seg-00077.m4s", f.id));
    std::fs::write(&path, &bytes).expect("write the big segment");
    bytes
}

#[tokio::test]
async fn answers_on_one_connection_are_byte_exact() {
    let f = fixture().await;
    // A fresh client, not one left idle through the fixture (see the keep-alive note below).
    let student = &f.lib.server.api(&f.lib.student.token);
    let id = f.id;
    let seg = format!("/media/{id}/hls/240p/seg-00001.m4s");
    let on_disk =
        std::fs::read(f.lib.data().join(format!("media/{id}/hls/240p/seg-00001.m4s"))).expect("seg");
    let big = big_segment(&f);
    let big_path = format!("/media/{id}/hls/240p/seg-00077.m4s");

    // One client (one kept-alive connection at a time): whole files, ranges, 304s, 416s and
    // playlists interleaved, each answer checked against the file.
    let get = |path: &str, range: Option<&str>, inm: Option<&str>| {
        let mut r = student.client.get(student.url(path)).bearer_auth(&student.token);
        if let Some(v) = range {
            r = r.header("Range", v);
        }
        if let Some(v) = inm {
            r = r.header("If-None-Match", v);
        }
        r.send()
    };
    let mut etag = String::new();
    for round in 0..3 {
        let res = get(&seg, None, None).await.expect("segment");
        assert_eq!(res.status(), StatusCode::OK, "round {round}");
        assert_eq!(res.headers()["content-length"].to_str().expect("len"), on_disk.len().to_string());
        etag = res.headers()["etag"].to_str().expect("etag").to_string();
        assert_eq!(res.bytes().await.expect("body").as_ref(), on_disk.as_slice(), "round {round}");

        let res = get(&big_path, None, None).await.expect("big");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.bytes().await.expect("big body").as_ref() == big.as_slice(),
            "big segment, round {round}"
        );

        let res = get(&big_path, Some("bytes=5000000-5999999"), None).await.expect("big range");
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            res.headers()["content-range"].to_str().expect("range"),
            format!("bytes 5000000-5999999/{}", big.len())
        );
        assert!(res.bytes().await.expect("part").as_ref() == &big[5_000_000..6_000_000], "round {round}");

        let res = get(&seg, Some("bytes=-7"), None).await.expect("suffix");
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(res.bytes().await.expect("suffix").as_ref(), &on_disk[on_disk.len() - 7..]);

        let res = get(&seg, None, Some(&etag)).await.expect("304");
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert!(res.bytes().await.expect("no body").is_empty());

        let res = get(&seg, Some("bytes=999999999-"), None).await.expect("416");
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        let res = get(&format!("/media/{id}/hls/240p/index.m3u8"), None, None).await.expect("playlist");
        assert!(res.text().await.expect("playlist").contains("seg-00001.m4s"));
    }
    assert!(etag.starts_with('"'));

    // Many at once, each on its own connection, each whole.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (client, url, token) = (reqwest::Client::new(), student.url(&big_path), student.token.clone());
        let want = big.len();
        tasks.push(tokio::spawn(async move {
            let res = client.get(url).bearer_auth(token).send().await.expect("parallel");
            assert_eq!(res.status(), StatusCode::OK, "parallel {i}");
            res.bytes().await.expect("parallel body").len() == want
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task"), "a parallel answer was cut short");
    }

    // A client that stops reading half way leaves the server serving others.
    {
        let res = get(&big_path, None, None).await.expect("abandoned");
        assert_eq!(res.status(), StatusCode::OK);
        drop(res);
    }
    let res = get(&seg, None, None).await.expect("after abandon");
    assert_eq!(res.bytes().await.expect("body").as_ref(), on_disk.as_slice());
}

#[tokio::test]
async fn cached_permission_and_item_end_at_once() {
    let f = fixture().await;
    let id = f.id;
    let cat = f.lib.category;
    let seg = format!("/media/{id}/hls/240p/seg-00001.m4s");
    f.lib.server.add_user("viv", false);
    // A fresh client: the fixture's ffmpeg runs can leave the library's admin connection idle
    // for as long as the server's 5 s keep-alive, and a request racing that close fails.
    let admin = f.lib.server.api(&f.lib.admin.token);
    let student = f.lib.server.api(&f.lib.student.token);
    let grant = |viv: bool| {
        let mut g = vec![
            json!({"username": "tess", "role": "contribute"}),
            json!({"username": "stu", "role": "view"}),
        ];
        if viv {
            g.push(json!({"username": "viv", "role": "view"}));
        }
        Value::Array(g)
    };
    admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grant(true)), 204).await;
    let viv = Browser::new(&f.lib.server.url(""), f.lib.server.sign_in("viv", PASSWORD).await);

    // Warm every cache: the session, the access, the item row.
    for _ in 0..5 {
        assert_eq!(viv.get(&seg).await.status(), StatusCode::OK);
        assert_eq!(student.get(&seg).await.status(), StatusCode::OK);
    }
    // Saving a position is a write that leaves the caches alone; serving goes on.
    let res =
        viv.json(Method::PUT, &format!("/api/v1/media/{id}/position"), Some(&json!({"seconds": 3.0}))).await;
    assert!(res.status().is_success(), "position: {}", res.status());
    assert_eq!(viv.get(&seg).await.status(), StatusCode::OK);

    // The grant is taken away: the very next request is refused (as if the item did not exist).
    admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grant(false)), 204).await;
    assert_eq!(viv.get(&seg).await.status(), StatusCode::NOT_FOUND, "revoked grant still served");
    assert_eq!(student.get(&seg).await.status(), StatusCode::OK, "others keep theirs");
    // Given back: served again at once.
    admin.call(Method::PUT, &format!("/api/v1/categories/{cat}/grants"), Some(&grant(true)), 204).await;
    assert_eq!(viv.get(&seg).await.status(), StatusCode::OK);

    // Recycled: nobody, not even the administrator, gets a byte, on the next request.
    assert_eq!(admin.get(&seg).await.status(), StatusCode::OK);
    admin.call(Method::DELETE, &format!("/api/v1/media/{id}"), None, 200).await;
    for (who, status) in [
        ("viv", viv.get(&seg).await.status()),
        ("stu", student.get(&seg).await.status()),
        ("ada", admin.get(&seg).await.status()),
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{who}: a recycled item served");
    }
    // Restored: served again.
    admin.call(Method::POST, &format!("/api/v1/media/{id}/restore"), None, 200).await;
    assert_eq!(student.get(&seg).await.status(), StatusCode::OK);
}

/// Request headers to send.
type Headers = Vec<(&'static str, String)>;

/// A signed-in viewer's segment requests are answered from the caches, before the router and
/// the middleware, once the caches are warm (src/web/media_files/fast.rs). Every such answer
/// must be the one the full pipeline gives — a query string sends a request the long way —
/// header for header and byte for byte; and signing out ends them on the next request.
#[tokio::test]
async fn answers_from_the_caches_are_the_full_pipelines() {
    let f = fixture().await;
    let id = f.id;
    let viewer = Browser::new(&f.lib.server.url(""), f.lib.server.sign_in("stu", PASSWORD).await);
    big_segment(&f);
    let seg = format!("/media/{id}/hls/240p/seg-00001.m4s");
    let warm = viewer.get(&seg).await;
    assert_eq!(warm.status(), StatusCode::OK);
    let etag = warm.headers()["etag"].to_str().expect("etag").to_string();

    let fetch = |path: String, headers: Headers| {
        let mut r = viewer.client.get(viewer.url(&path));
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move {
            let res = r.send().await.expect("GET");
            let status = res.status();
            let mut headers: Vec<(String, String)> = res
                .headers()
                .iter()
                .filter(|(k, _)| k.as_str() != "date")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
                .collect();
            headers.sort();
            (status, headers, res.bytes().await.expect("body"))
        }
    };
    let cases: Vec<(&str, String, Headers)> = vec![
        ("whole segment", seg.clone(), vec![]),
        ("range", seg.clone(), vec![("range", "bytes=10-99".into())]),
        ("suffix range", seg.clone(), vec![("range", "bytes=-7".into())]),
        ("not modified", seg.clone(), vec![("if-none-match", etag.clone())]),
        ("stale if-range", seg.clone(), vec![("range", "bytes=0-9".into()), ("if-range", "\"old\"".into())]),
        ("unsatisfiable", seg.clone(), vec![("range", "bytes=999999999-".into())]),
        (
            "large",
            format!("/media/{id}/hls/240p/seg-00077.m4s"),
            vec![("range", "bytes=5000000-5999999".into())],
        ),
        ("init", format!("/media/{id}/hls/240p/init.mp4"), vec![]),
        ("playlist", format!("/media/{id}/hls/240p/index.m3u8"), vec![]),
        ("missing segment", format!("/media/{id}/hls/240p/seg-09999.m4s"), vec![]),
        ("missing rung", format!("/media/{id}/hls/1080p/seg-00001.m4s"), vec![]),
    ];
    for (what, path, headers) in cases {
        // Twice each way: the first may fill a cache, the second is answered from it.
        for _ in 0..2 {
            let fast = fetch(path.clone(), headers.clone()).await;
            let full = fetch(format!("{path}?via=router"), headers.clone()).await;
            assert_eq!(fast.0, full.0, "{what}: status");
            assert_eq!(fast.1, full.1, "{what}: headers");
            assert!(fast.2 == full.2, "{what}: {} bytes against {}", fast.2.len(), full.2.len());
        }
    }

    // Signing out ends the cached session's answers on the next request.
    assert_eq!(viewer.get(&seg).await.status(), StatusCode::OK);
    let out = viewer.post_form("/logout", &[]).await;
    assert!(out.status().is_redirection(), "sign out: {}", out.status());
    let after = viewer.get(&seg).await.status();
    assert!(
        matches!(after, StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER | StatusCode::NOT_FOUND),
        "a signed-out session was still served: {after}"
    );
}
