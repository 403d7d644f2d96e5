//! The geo-redundant pair against the real binary: a primary on 127.0.0.2 and a replica on
//! 127.0.0.3 sharing a replication secret. The replica follows, serves reads, forwards writes;
//! when the primary dies it keeps serving reads and refuses writes clearly until it is promoted;
//! the old primary, restarted, steps down, exports what it held and follows the new one.

mod common;
mod ingest_support;
mod playback_support;
mod replica_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, Server};
use ingest_support::{content_digest, png, post_media, sha256_hex};
use replica_support::{
    Pair, SECRET, category_names, caught_up, health, on, pair, pair_with, secret_file, start_primary,
    start_primary_at, start_replica,
};
use reqwest::Method;
use serde_json::{Value, json};

/// POST categories `w0`, `w1`, … through the round-robin name until told to stop; the names the
/// cluster acknowledged (201) and the epoch of the node that answered (`/healthz` right after;
/// 0 when it no longer answers). A 503 (`replica-read-only`, no primary) is an honest refusal.
async fn concurrent_writer(
    nodes: Arc<Mutex<Vec<String>>>,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<(String, u64)> {
    let mut acknowledged = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        let name = format!("w{i}");
        i += 1;
        let bases = nodes.lock().expect("nodes").clone();
        for base in &bases {
            let sent = common::http()
                .post(format!("{base}/api/v1/categories"))
                .bearer_auth(&token)
                .json(&json!({"name": name}))
                .send()
                .await;
            let Ok(res) = sent else { continue };
            match res.status().as_u16() {
                201 => {
                    let epoch = match common::http().get(format!("{base}/healthz")).send().await {
                        Ok(h) => h.json::<Value>().await.ok().and_then(|v| v["epoch"].as_u64()).unwrap_or(0),
                        Err(_) => 0,
                    };
                    acknowledged.push((name.clone(), epoch));
                }
                // 503: no primary; 409: an earlier attempt whose answer was lost got through.
                503 | 409 => {}
                other => panic!("{name} via {base}: HTTP {other}: {}", res.text().await.unwrap_or_default()),
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged
}

/// A client for a name with two addresses, as browsers treat one: the first node, else — on a
/// connection error (refused, or reset with the request or answer in flight; a GET is safe to
/// repeat) — the other.
async fn round_robin_get(nodes: &[String], path: &str, token: &str) -> Result<u16, String> {
    let mut errors = Vec::new();
    for base in nodes {
        let answer = async {
            let res = common::http().get(format!("{base}{path}")).bearer_auth(token).send().await?;
            let status = res.status().as_u16();
            res.bytes().await?;
            Ok::<u16, reqwest::Error>(status)
        };
        match answer.await {
            Ok(status) => return Ok(status),
            Err(e) => errors.push(format!("{base}{path}: {e}")),
        }
    }
    Err(errors.join("; "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_forwarded_refused_when_alone_and_the_fence_holds() {
    let Pair { dir, secret, primary, replica, token } = pair(|_| {});
    let h = health(&replica).await;
    assert_eq!((h["role"].as_str(), h["epoch"].as_u64()), (Some("replica"), Some(1)), "{h}");
    assert_eq!(h["primary"], primary.base.as_str(), "{h}");
    assert_eq!(health(&primary).await["role"], "primary");

    // A write sent to the replica reaches the primary (the token is checked there).
    let on_replica = replica.api(&token);
    let made =
        on_replica.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Via replica"})), 201).await;
    let id = made["id"].as_i64().expect("id");
    primary.api(&token).get_json(&format!("/api/v1/categories/{id}")).await;
    // A page form too: the sign-in page's POST is forwarded (and answered by the primary).
    let res =
        common::http().post(replica.url("/login")).form(&[("username", "ada")]).send().await.expect("post");
    assert_ne!(res.status().as_u16(), 503);

    // Replication refuses callers without the secret, or with another one.
    let refused = common::http().get(primary.url("/replication/v1/snapshot")).send().await.expect("get");
    assert_eq!(refused.status().as_u16(), 401);
    let forged = common::http()
        .get(primary.url("/replication/v1/snapshot"))
        .header(
            "x-reelbox-replication-time",
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs())
                .to_string(),
        )
        .header("x-reelbox-replication-auth", "0".repeat(64))
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status().as_u16(), 401);
    // The replica told the primary where it is (for the fence after a failover).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(dir.path().join("a/replica/state.json"))
        .unwrap_or_default()
        .contains(&replica.base)
    {
        assert!(Instant::now() < deadline, "the primary never learned its peer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The primary dies: writes on the replica are refused clearly, never applied locally.
    let _ = std::process::Command::new("kill").args(["-KILL", &primary.pid().to_string()]).status();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = on_replica.send(Method::POST, "/api/v1/categories", Some(&json!({"name": "Lost?"}))).await;
    assert_eq!(res.status().as_u16(), 503);
    let problem: Value = res.json().await.expect("problem json");
    assert_eq!(problem["code"], "replica-read-only", "{problem}");
    let page =
        common::http().post(replica.url("/login")).form(&[("username", "ada")]).send().await.expect("post");
    assert_eq!(page.status().as_u16(), 503);
    assert!(page.text().await.unwrap_or_default().contains("temporarily read-only"));

    // Promotion with the server running: a new epoch, writes accepted here.
    let start = Instant::now();
    let out =
        common::run_cli(&["replica", "promote", "--data", replica.data_dir().to_str().expect("utf-8")], "");
    assert!(out.status.success(), "promote: {}", common::text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(10));
    let h = health(&replica).await;
    assert_eq!((h["role"].as_str(), h["epoch"].as_u64()), (Some("primary"), Some(2)), "{h}");
    replica.add_user("bea", true);
    let local = replica.api(&replica.token("bea"));
    local.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "After promotion"})), 201).await;

    // The old primary comes back: it learns the newer epoch from its peer before taking any
    // write, steps down, exports what it held for the administrator, and follows.
    drop(primary);
    let old = start_primary(&dir.path().join("a"), dir.path(), &secret);
    let h = health(&old).await;
    assert_eq!((h["role"].as_str(), h["epoch"].as_u64()), (Some("replica"), Some(2)), "{h}");
    assert_eq!(h["primary"], replica.base.as_str(), "{h}");
    let exports: Vec<PathBuf> = std::fs::read_dir(dir.path().join("a/split-brain"))
        .expect("split-brain export")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(exports[0].join("database-at-demotion.db").is_file());
    let summary = std::fs::read_to_string(exports[0].join("summary.json")).expect("summary");
    assert!(summary.contains("\"new_epoch\": 2"), "{summary}");
    // Its writes go to the new primary now.
    let via_old = old
        .api(&local.token)
        .send(Method::POST, "/api/v1/categories", Some(&json!({"name": "Through the old one"})))
        .await;
    assert_eq!(via_old.status().as_u16(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_follows_forwards_and_fails_over() {
    let Pair { dir, secret, primary, replica, token } = pair(|_| {});
    let admin = on(&primary, &token);

    // A write workload on the primary: categories, grants, an upload with its thumbnail.
    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("id");
    for i in 0..20 {
        admin
            .call(
                Method::POST,
                "/api/v1/categories",
                Some(&json!({"name": format!("Topic {i}"), "parent_id": cat})),
                201,
            )
            .await;
    }
    let image = png(7, 60_000);
    let res = post_media(
        &admin,
        &format!("category={cat}&filename=diagram.png&title=Forces"),
        image.clone(),
        Some(content_digest(&image)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let item: Value = res.json().await.expect("item");
    let media = item["id"].as_i64().expect("media id");
    caught_up(&primary, &replica).await;

    // The replica reports its role; the token made on the primary works on the replica.
    let h = health(&replica).await;
    assert_eq!(h["role"], "replica", "{h}");
    assert_eq!(h["epoch"], 1, "{h}");
    assert_eq!(h["primary"], primary.base.as_str(), "{h}");
    assert!(h["lag_ms"].as_i64().is_some_and(|l| l < 5_000), "{h}");
    let on_replica = on(&replica, &token);
    let cats = on_replica.get_json("/api/v1/categories").await;
    assert!(cats.to_string().contains("Topic 19"), "{cats}");

    // Media: present on the replica, byte for byte (fetched by hash), and served there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = on_replica.get(&format!("/api/v1/media/{media}/original")).await;
        if res.status().as_u16() == 200 {
            let body = res.bytes().await.expect("body");
            assert_eq!(sha256_hex(&body), sha256_hex(&image));
            break;
        }
        assert!(Instant::now() < deadline, "the original never reached the replica: {}", res.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health(&replica).await["media_bytes_behind"], 0);

    // A session made on the primary works on the replica.
    let session = primary.sign_in("ada", common::PASSWORD).await;
    caught_up(&primary, &replica).await;
    let me = common::http()
        .get(replica.url("/api/v1/me"))
        .header("Cookie", format!("reelbox_session={}", session.cookie))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status().as_u16(), 200);

    // A write sent to the replica is forwarded and can be read there right after.
    let made =
        on_replica.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Via replica"})), 201).await;
    let id = made["id"].as_i64().expect("id");
    let seen = on_replica.get(&format!("/api/v1/categories/{id}")).await;
    assert_eq!(seen.status().as_u16(), 200, "read-your-writes on the replica");
    caught_up(&primary, &replica).await;

    // Replication refuses callers without the secret, or with another one.
    let refused = common::http().get(primary.url("/replication/v1/snapshot")).send().await.expect("get");
    assert_eq!(refused.status().as_u16(), 401);
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "0".repeat(64)).expect("wrong secret");
    let stranger = Server::start_at(&dir.path().join("c"), dir.path(), "127.0.0.3:0", |c| {
        c.args(["--role", "replica", "--primary", &primary.base])
            .arg("--replication-secret-file")
            .arg(&wrong);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(health(&stranger).await["position"].is_null(), "a replica with the wrong secret got nothing");
    assert!(stranger.stderr().contains("secret"), "says why: {}", stranger.stderr());
    drop(stranger);

    // A concurrent writer through the same round-robin name, from here to the end: every write
    // it sees acknowledged must end up in the surviving history, or — written on the old primary
    // and not yet shipped when it died — in the old primary's export for review; never lost,
    // never on two primaries.
    let nodes = Arc::new(Mutex::new(vec![primary.base.clone(), replica.base.clone()]));
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(concurrent_writer(nodes.clone(), token.clone(), stop_writing.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The primary dies during a stream of reads and media fetches from a round-robin client
    // (the name resolves to both nodes; on a connection error it tries the other): none fails.
    let reader = {
        let nodes = [primary.base.clone(), replica.base.clone()];
        let token = token.clone();
        tokio::spawn(async move {
            let paths = [format!("/api/v1/media/{media}"), format!("/api/v1/media/{media}/original")];
            let (mut ok, started) = (0u32, Instant::now());
            while started.elapsed() < Duration::from_secs(3) {
                for path in &paths {
                    let status = round_robin_get(&nodes, path, &token).await;
                    assert_eq!(status, Ok(200), "GET {path} after {:?}", started.elapsed());
                    ok += 1;
                }
            }
            ok
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = std::process::Command::new("kill").args(["-KILL", &primary.pid().to_string()]).status();
    let reads = reader.await.expect("the reader saw no failure");
    assert!(reads > 20, "only {reads} reads");
    on_replica.get_json(&format!("/api/v1/media/{media}")).await;
    let res = on_replica.send(Method::POST, "/api/v1/categories", Some(&json!({"name": "Lost?"}))).await;
    assert_eq!(res.status().as_u16(), 503);
    let problem: Value = res.json().await.expect("problem json");
    assert_eq!(problem["code"], "replica-read-only", "{problem}");

    // Promotion: a new epoch, writes accepted.
    let out =
        common::run_cli(&["replica", "promote", "--data", replica.data_dir().to_str().expect("utf-8")], "");
    assert!(out.status.success(), "promote: {}", common::text(&out.stderr));
    let h = health(&replica).await;
    assert_eq!((h["role"].as_str(), h["epoch"].as_u64()), (Some("primary"), Some(2)), "{h}");
    on_replica.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "After promotion"})), 201).await;

    // The old primary comes back: it learns the newer epoch from its peer, refuses to take
    // writes itself (forwards them), exports what it held, re-seeds and follows.
    drop(primary);
    let old = start_primary(&dir.path().join("a"), dir.path(), &secret);
    *nodes.lock().expect("nodes") = vec![old.base.clone(), replica.base.clone()];
    let h = health(&old).await;
    assert_eq!((h["role"].as_str(), h["epoch"].as_u64()), (Some("replica"), Some(2)), "{h}");
    let exports: Vec<_> =
        std::fs::read_dir(dir.path().join("a").join("split-brain")).expect("split-brain dir").collect();
    assert_eq!(exports.len(), 1);
    caught_up(&replica, &old).await;
    let on_old = on(&old, &token);
    let made = on_old
        .call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Through the old one"})), 201)
        .await;
    let id = made["id"].as_i64().expect("id");
    on(&replica, &token).get_json(&format!("/api/v1/categories/{id}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_writing.store(true, Ordering::Release);
    let acknowledged = writer.await.expect("writer");
    caught_up(&replica, &old).await;
    let survived = category_names(&replica.data_dir().join("reelbox.db"));
    let export_dir = std::fs::read_dir(dir.path().join("a").join("split-brain"))
        .expect("split-brain dir")
        .flatten()
        .next()
        .expect("an export")
        .path();
    let exported = category_names(&export_dir.join("database-at-demotion.db"));
    let after_promotion = acknowledged.iter().filter(|(_, epoch)| *epoch == 2).count();
    assert!(after_promotion > 0 && acknowledged.len() > 10, "writes acknowledged: {acknowledged:?}");
    for (name, epoch) in &acknowledged {
        let in_history = survived.contains(name);
        assert!(
            in_history || (*epoch != 2 && exported.contains(name)),
            "{name} (acknowledged in epoch {epoch}) is neither in the surviving history nor in the export"
        );
    }

    // Both dashboards show the pair: the promotion on the new primary, the step-down and the
    // export for review on the old one.
    let page =
        replica.browser_login("ada", common::PASSWORD).await.get("/admin").await.text().await.expect("page");
    assert!(page.contains("Primary (epoch 2)") && page.contains("promoted by an administrator"), "{page}");
    let page =
        old.browser_login("ada", common::PASSWORD).await.get("/admin").await.text().await.expect("page");
    for shown in
        ["Replica (epoch 2)", "stepped down", "split-brain", "Behind the primary", "Last check of the copies"]
    {
        assert!(page.contains(shown), "{shown:?} on the old primary's dashboard: {page}");
    }
    // Writes on a promoted node (whose writer applied replicated pages) leave sound files.
    caught_up(&replica, &old).await;
    for node in [&replica, &old] {
        let c = rusqlite::Connection::open_with_flags(
            node.data_dir().join("reelbox.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open");
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(check, "ok", "{}", node.data_dir().display());
    }
}

/// Audit events with this action as the node's API lists them, newest first.
async fn audit_of(api: &Api, action: &str) -> Vec<Value> {
    ingest_support::audit(api, action).await.into_iter().filter(|e| e["action"] == action).collect()
}

/// Wait until `api`'s node lists `n` events with `action`; return them.
async fn audited(api: &Api, action: &str, n: usize, log: &Server) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = audit_of(api, action).await;
        if events.len() >= n {
            assert_eq!(events.len(), n, "{action} recorded more than once: {events:?}");
            return events;
        }
        assert!(Instant::now() < deadline, "{n} × {action} never recorded: {events:?}\n{}", log.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every file under an item's published directory (outside dot-directories), by relative path.
fn published_files(data: &Path, media: i64) -> BTreeMap<String, Vec<u8>> {
    let root = data.join("media").join(media.to_string());
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            } else if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let rel = path.strip_prefix(&root).expect("under root").to_string_lossy().replace('\\', "/");
                out.insert(rel, bytes);
            }
        }
    }
    out
}

/// Flip one byte in the middle of the file at `path`, in place: same size, other bytes.
fn flip_a_byte(path: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open to damage");
    let middle = f.metadata().expect("size").len() / 2;
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(middle)).expect("seek");
    f.read_exact(&mut byte).expect("read");
    f.seek(SeekFrom::Start(middle)).expect("seek");
    f.write_all(&[byte[0] ^ 0x5a]).expect("flip");
    f.sync_all().expect("sync");
}

/// A 480p video transcoded on the primary — three rungs, poster, sprite, download, a caption —
/// plays from the replica, every published file byte for byte the primary's. A segment and the
/// original damaged later on the replica's disk are found by its scrub and copied again. What a
/// viewer does there — playback, downloads, audit exports — is audited on the
/// primary with the viewer's own address, exactly once, also when the primary was down at the
/// time or the replica is promoted before it could tell it. Forwarded sign-ins are audited
/// with the person's address, not the replica's. Command-line writes to the replica refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_plays_renditions_and_its_accesses_are_audited_once_on_the_primary() {
    // The replica re-checks its copies every 2 seconds instead of daily.
    let Pair { dir, secret, primary, replica, token } = pair_with(common::with_ffmpeg, |c| {
        c.env("REELBOX_REPLICA__SCRUB_INTERVAL_SECONDS", "2");
    });
    let admin = on(&primary, &token);

    let cat =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Films"})), 201).await["id"]
            .as_i64()
            .expect("id");
    let clip = playback_support::clip_sized(dir.path(), 6, "854x480");
    let res = post_media(
        &admin,
        &format!("category={cat}&filename=lesson.mp4&title=Lesson"),
        clip.clone(),
        Some(content_digest(&clip)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let media = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    let deadline = Instant::now() + Duration::from_secs(240);
    while admin.get_json(&format!("/api/v1/media/{media}")).await["status"] != "ready" {
        assert!(Instant::now() < deadline, "never transcoded:\n{}", primary.stderr());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let res = admin
        .client
        .post(admin.url(&format!("/api/v1/media/{media}/captions?lang=en")))
        .bearer_auth(&admin.token)
        .body("1\n00:00:00,000 --> 00:00:02,000\nA test pattern and a tone.\n")
        .send()
        .await
        .expect("captions");
    assert_eq!(res.status().as_u16(), 201);
    caught_up(&primary, &replica).await;

    // The viewer comes from an address of its own, so the audit can tell it from the replica's.
    let viewer = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .expect("client");
    let at = |s: &Server| Api { client: viewer.clone(), base: s.base.clone(), token: token.clone() };
    let (via_replica, via_primary) = (at(&replica), at(&primary));

    // The renditions followed: every published file, byte for byte.
    let master_path = format!("/media/{media}/hls/master.m3u8");
    let on_primary = published_files(primary.data_dir(), media);
    let rungs: Vec<&str> =
        on_primary.keys().filter_map(|p| p.strip_prefix("hls/")?.strip_suffix("/index.m3u8")).collect();
    assert_eq!(rungs, ["240p", "360p", "480p"], "the ladder of a 480p source: {:?}", on_primary.keys());
    for file in ["hls/master.m3u8", "poster.jpg", "sprite.jpg", "sprite.vtt", "download.mp4"] {
        assert!(on_primary.contains_key(file), "{file} published: {:?}", on_primary.keys());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = health(&replica).await;
        let copied = published_files(replica.data_dir(), media);
        if h["rendition_bytes_behind"] == 0 && h["media_bytes_behind"] == 0 && copied == on_primary {
            break;
        }
        let differ: Vec<&String> =
            on_primary.keys().filter(|k| copied.get(*k) != on_primary.get(*k)).collect();
        assert!(Instant::now() < deadline, "the replica's copy differs in {differ:?}: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let master = via_replica.get(&master_path).await.text().await.expect("master");
    assert_eq!(master, via_primary.get(&master_path).await.text().await.expect("master"));

    // The master plays through the replica's HTTP: every rung's playlist, init and a segment.
    let base = format!("/media/{media}/hls/");
    let rungs: Vec<&str> = master.lines().filter(|l| l.ends_with(".m3u8") || l.contains(".m3u8?")).collect();
    assert_eq!(rungs.len(), 3, "{master}");
    for rung in rungs {
        let rung = rung.split('?').next().unwrap_or(rung);
        let playlist = via_replica.get(&format!("{base}{rung}")).await.text().await.expect("playlist");
        let dir = rung.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
        let mut files: Vec<String> = playlist
            .lines()
            .filter_map(|l| {
                l.split_once("URI=\"").map(|(_, r)| r.split('"').next().unwrap_or("").to_string())
            })
            .collect();
        files.extend(
            playlist.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).take(1).map(String::from),
        );
        assert_eq!(files.len(), 2, "init and a segment in {playlist}");
        for f in files {
            let path = format!("{base}{dir}{}", f.split('?').next().unwrap_or(&f));
            let (r, p) = (via_replica.get(&path).await, via_primary.get(&path).await);
            assert_eq!((r.status().as_u16(), p.status().as_u16()), (200, 200), "{path}");
            let (r, p) = (r.bytes().await.expect("body"), p.bytes().await.expect("body"));
            assert!(!r.is_empty() && r == p, "{path} differs on the replica");
        }
    }
    // The caption came with the database.
    let captions = format!("/media/{media}/captions/en.vtt");
    let (r, p) = (via_replica.get(&captions).await, via_primary.get(&captions).await);
    assert_eq!((r.status().as_u16(), p.status().as_u16()), (200, 200), "{captions}");
    let (r, p) = (r.text().await.expect("vtt"), p.text().await.expect("vtt"));
    assert!(r.starts_with("WEBVTT") && r.contains("A test pattern") && r == p, "{r}");

    // A segment and the original, damaged on the replica's disk (same size, other bytes), are
    // found by the scrub and copied again from the primary; each repair is audited there.
    let segment = on_primary
        .keys()
        .find(|p| p.starts_with("hls/360p/") && p.ends_with(".m4s"))
        .expect("a 360p segment")
        .clone();
    let hex = sha256_hex(&clip);
    let blob = replica.data_dir().join("blobs/sha256").join(&hex[0..2]).join(&hex[2..4]).join(&hex);
    let segment_path = replica.data_dir().join("media").join(media.to_string()).join(&segment);
    flip_a_byte(&segment_path);
    flip_a_byte(&blob);
    assert_ne!(std::fs::read(&segment_path).expect("segment"), on_primary[&segment]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let segment_ok = std::fs::read(&segment_path).ok().as_ref() == on_primary.get(&segment);
        let blob_ok = std::fs::read(&blob).is_ok_and(|b| b == clip);
        if segment_ok && blob_ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scrub did not repair (segment {segment_ok}, original {blob_ok}): {}\n{}",
            health(&replica).await,
            replica.stderr()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let path = format!("/media/{media}/{segment}");
    let served = via_replica.get(&path).await.bytes().await.expect("segment");
    assert_eq!(served.as_ref(), on_primary[&segment].as_slice(), "{path} served repaired");
    let repairs = audited(&admin, "replica.repaired", 2, &replica).await;
    let targets: Vec<&str> = repairs.iter().filter_map(|e| e["target_type"].as_str()).collect();
    assert!(targets.contains(&"blob") && targets.contains(&"media"), "{repairs:?}");
    let h = health(&replica).await;
    assert!(h["scrub"]["repaired_since_start"].as_u64() >= Some(2), "{h}");
    for task in ["records", "media", "renditions", "scrub"] {
        assert_eq!(h["follow"][task]["failing"], false, "{task}: {h}");
    }

    // Accesses on the replica are recorded on the primary with the viewer's address.
    let original = format!("/api/v1/media/{media}/original");
    assert_eq!(via_replica.get(&original).await.status().as_u16(), 200);
    let export = via_replica.get("/admin/audit.csv").await;
    assert_eq!(export.status().as_u16(), 200, "an audit export on the replica");
    for (action, n) in [("playback.started", 1), ("media.downloaded", 1), ("audit.export", 1)] {
        let events = audited(&admin, action, n, &replica).await;
        assert_eq!(events[0]["client_addr"], "127.0.0.9", "{events:?}");
    }
    // Playing again within the hour is the same viewing.
    via_replica.get(&master_path).await;
    // A sign-in forwarded by the replica is audited with the person's address, not the replica's.
    let form = viewer.get(replica.url("/login")).send().await.expect("GET /login");
    let cookie = common::set_cookie(&form, "reelbox_form").expect("form cookie");
    let csrf = common::csrf_in(&form.text().await.expect("page")).expect("csrf");
    let wrong = viewer
        .post(replica.url("/login"))
        .header("Cookie", format!("reelbox_form={cookie}"))
        .header("Origin", &replica.base)
        .form(&[("username", "ada"), ("password", "not the password"), ("csrf", &csrf), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status().as_u16(), 401, "a wrong password, answered by the primary");
    let failed: Vec<Value> =
        audit_of(&admin, "sign-in").await.into_iter().filter(|e| e["outcome"] == "failure").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["client_addr"], "127.0.0.9", "{failed:?}");
    // A claim of an address without the pair's secret is ignored.
    let forged = viewer
        .post(primary.url("/login"))
        .header("x-reelbox-client", "203.0.113.7")
        .header("x-reelbox-client-auth", format!("{}:{}", 0, "0".repeat(64)))
        .header("Cookie", format!("reelbox_form={cookie}"))
        .header("Origin", &primary.base)
        .form(&[("username", "ada"), ("password", "still not it"), ("csrf", &csrf), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(forged.status().as_u16(), 401);
    let addrs: Vec<Value> =
        audit_of(&admin, "sign-in").await.into_iter().map(|e| e["client_addr"].clone()).collect();
    assert_eq!(addrs, vec![json!("127.0.0.9"), json!("127.0.0.9")], "a forged address is ignored");

    // A command-line write on the replica's data directory is refused and changes nothing.
    let replica_data = replica.data_dir().to_str().expect("utf-8").to_string();
    let out = common::run_cli(&["token", "create", "--data", &replica_data, "--username", "ada"], "");
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out.stderr));
    assert!(common::text(&out.stderr).contains("replica"), "{}", common::text(&out.stderr));
    caught_up(&primary, &replica).await;

    // The primary is down: the download is served and its audit waits in the replica's queue,
    // then reaches the primary when it is back — once.
    let listen = primary.base.trim_start_matches("http://").to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", &primary.pid().to_string()]).status();
    drop(primary);
    assert_eq!(via_replica.get(&original).await.status().as_u16(), 200);
    let primary = start_primary_at(&listen, &dir.path().join("a"), dir.path(), &secret, common::with_ffmpeg);
    let admin = on(&primary, &token);
    audited(&admin, "media.downloaded", 2, &replica).await;

    // Down again, and this time the replica is promoted before the primary returns: it records
    // its queue itself, without the events its old primary already had.
    caught_up(&primary, &replica).await;
    let _ = std::process::Command::new("kill").args(["-KILL", &primary.pid().to_string()]).status();
    assert_eq!(via_replica.get(&original).await.status().as_u16(), 200);
    let out = common::run_cli(&["replica", "promote", "--data", &replica_data], "");
    assert!(out.status.success(), "promote: {}", common::text(&out.stderr));
    let events = audited(&on(&replica, &token), "media.downloaded", 3, &replica).await;
    assert!(events.iter().all(|e| e["client_addr"] == "127.0.0.9"), "{events:?}");
    audited(&on(&replica, &token), "playback.started", 1, &replica).await;
}

/// A TCP proxy on 127.0.0.4 in front of `upstream` that, while `tamper` is set, flips one byte
/// in the middle of every large piece of the primary's answers (the replication bodies).
async fn tamper_proxy(upstream: std::net::SocketAddr, tamper: Arc<AtomicBool>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.4:0").await.expect("proxy listen");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
            let tamper = tamper.clone();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if n > 300 && tamper.load(Ordering::Acquire) {
                        buf[n / 2] ^= 0x01;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_tampered_in_flight_are_rejected_and_nothing_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = secret_file(dir.path(), "secret", SECRET);
    let primary = start_primary(&dir.path().join("a"), dir.path(), &secret);
    primary.add_user("ada", true);
    let admin = on(&primary, &primary.token("ada"));
    for i in 0..5 {
        let body = json!({"name": format!("Before {i}")});
        admin.call(Method::POST, "/api/v1/categories", Some(&body), 201).await;
    }
    let upstream: std::net::SocketAddr =
        primary.base.trim_start_matches("http://").parse().expect("primary address");
    let tamper = Arc::new(AtomicBool::new(true));
    let via = tamper_proxy(upstream, tamper.clone()).await;
    let replica = start_replica(&dir.path().join("b"), dir.path(), &via, &secret);

    // Every snapshot and record arrives altered: the replica refuses each one and applies nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let h = health(&replica).await;
    assert!(h["position"].is_null(), "nothing tampered was applied: {h}");
    assert!(replica.stderr().contains("replication interrupted"), "{}", replica.stderr());
    assert!(!category_names(&replica.data_dir().join("reelbox.db")).contains("Before 0"));
    // The records task reports its own failure; the media follow (nothing to fetch) its own success.
    let records = &h["follow"]["records"];
    assert!(records["failing"] == true && records["last_error"].is_string(), "{h}");
    let media = &h["follow"]["media"];
    assert!(media["failing"] == false && media["last_ok_at_ms"].is_i64(), "{h}");

    // The same path, untouched: it seeds, follows, and ends equal to the primary.
    tamper.store(false, Ordering::Release);
    admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "After"})), 201).await;
    caught_up(&primary, &replica).await;
    let names = category_names(&replica.data_dir().join("reelbox.db"));
    assert!(names.contains("Before 4") && names.contains("After"), "{names:?}");
    let h = health(&replica).await;
    assert!(
        h["follow"]["records"]["failing"] == false && h["follow"]["records"]["last_error"].is_string(),
        "{h}"
    );
}
