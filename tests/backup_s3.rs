//! The S3-compatible backup target against a real S3 server: moto's (PyPI `moto[server]`) on
//! loopback. The real binary ships the database, copies media and the server files to a bucket;
//! `backup list` and `restore` read them back from `s3://`; a target that cannot be reached
//! fails loudly on the dashboard and in `/metrics` while writes go on, and everything catches up
//! once it is there.
#![cfg(feature = "aws")]

mod backup_support;
mod common;
mod ingest_support;

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backup_support::upload;
use common::{Api, Server, run_cli, text};
use futures_util::TryStreamExt;
use ingest_support::{pdf, sha256_hex};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use reqwest::Method;
use serde_json::json;

const BUCKET: &str = "reelbox-backups";
const KEY_ID: &str = "reelbox-test";
const SECRET: &str = "reelbox-test-secret";

/// Fails the test, saying how to install it, when moto's server is missing.
fn require_moto() {
    let present = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present,
        "this test runs a real S3-compatible server, moto's (PyPI `moto[server]`) under python3, \
         which is missing: install it with `python3 -m pip install 'moto[server]'` \
         (or run `bash tests/run.sh --install-only`)"
    );
}

/// `python3 -m moto.server` on 127.0.0.1:`port`, killed when dropped. Its state is in memory only.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start(port: u16, logs: &Path) -> Moto {
        require_moto();
        let log = std::fs::File::create(logs.join(format!("moto-{port}.log"))).expect("moto log");
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start moto's server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(logs.join(format!("moto-{port}.log"))).unwrap_or_default();
                panic!("moto's server exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "moto's server did not listen on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port }
    }

    fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    /// moto takes a plain, unsigned `PUT /bucket`.
    async fn create_bucket(&self, name: &str) {
        let res = common::http().put(format!("{}/{name}", self.endpoint())).send().await.expect("PUT bucket");
        assert!(res.status().is_success(), "create bucket: {}", res.status());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// The environment `object_store` reads for an S3-compatible target; nothing of the
/// developer's own AWS setup leaks in.
fn s3_env(c: &mut Command, endpoint: &str) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
}

fn start(data: &Path, logs: &Path, endpoint: &str, url: &str) -> Server {
    let (endpoint, url) = (endpoint.to_owned(), url.to_owned());
    Server::start_with(data, logs, move |c| {
        s3_env(c, &endpoint);
        c.env("REELBOX_BACKUP__URL", url).env("REELBOX_BACKUP__MEDIA_VERIFY_DAYS", "0");
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A command-line tool with the same S3 environment as the server.
fn cli(endpoint: &str, args: &[&str]) -> Output {
    let mut c = common::reelbox();
    s3_env(&mut c, endpoint);
    c.args(args).output().expect("run reelbox")
}

fn checksum(db: &Path) -> String {
    let out = run_cli(&["backup", "checksum", "--db", db.to_str().expect("utf-8")], "");
    assert!(out.status.success(), "checksum: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Restore the latest state from `url` until it equals the live database's.
fn restore_until_live(endpoint: &str, url: &str, live: &Path, out: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        let _ = std::fs::remove_file(out);
        let r = cli(endpoint, &["restore", "--from", url, "--output", out.to_str().expect("utf-8")]);
        if r.status.success() {
            let (got, want) = (checksum(out), checksum(live));
            if got == want {
                return;
            }
            last = format!("restored state {got}, live {want}");
        } else {
            last = text(&r.stderr);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("a restore from {url} never matched the live database within {limit:?}: {last}");
}

/// The bucket as the test sees it, independently of reelbox's own code.
fn bucket(endpoint: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .build()
            .expect("bucket client"),
    )
}

async fn keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let prefix = ObjectPath::from(prefix);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list the bucket");
    metas.into_iter().map(|m| m.location.to_string()).collect()
}

/// Wait until the bucket holds `key` and it hashes to `hex`.
async fn wait_for_object(store: &Arc<dyn ObjectStore>, key: &str, hex: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let last = match store.get(&ObjectPath::from(key)).await {
            Ok(got) => {
                let bytes = got.bytes().await.expect("read the object");
                if sha256_hex(&bytes) == hex {
                    return;
                }
                format!("{} bytes hashing to {}", bytes.len(), sha256_hex(&bytes))
            }
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "no intact {key} in the bucket after {limit:?}: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_metric(api: &Api, line: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let body = api.get("/metrics").await.text().await.expect("metrics");
        if body.lines().any(|l| l.trim() == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never had {line:?} within {limit:?}:\n{}",
            body.lines()
                .filter(|l| l.contains("backup") || l.contains("target"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the dashboard shows no backup alarm: the target is back and the copies went through.
async fn wait_for_no_alarm(browser: &common::Browser, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let page = browser.get("/admin").await.text().await.expect("dashboard");
        if !page.contains("The backup target is failing")
            && !page.contains("Copying media or server files failed")
        {
            return;
        }
        assert!(Instant::now() < deadline, "the dashboard still has a backup alarm after {limit:?}: {page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn some_writes(api: &Api, round: &str) -> i64 {
    let mut last = 0;
    for i in 0..4 {
        let body = json!({"name": format!("{round} {i}"), "description": "x".repeat(500 * i)});
        last =
            api.call(Method::POST, "/api/v1/categories", Some(&body), 201).await["id"].as_i64().expect("id");
    }
    api.call(
        Method::PATCH,
        &format!("/api/v1/categories/{last}"),
        Some(&json!({"name": format!("{round} renamed")})),
        200,
    )
    .await;
    last
}

fn media_key(prefix: &str, hex: &str) -> String {
    format!("{prefix}/media/{}/{hex}", &hex[0..2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_media_and_files_go_to_s3_and_restore_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let moto = Moto::start(free_port(), dir.path());
    moto.create_bucket(BUCKET).await;
    let url = format!("s3://{BUCKET}/school");
    let server = start(&data, dir.path(), &moto.endpoint(), &url);
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat = some_writes(&admin, "Science").await;
    // A small file (one part) and one over the 8 MiB part size (two parts of a multipart upload).
    let (_, small) = upload(&admin, cat, "notes.pdf", pdf(3, 400_000)).await;
    let (_, large) = upload(&admin, cat, "scan.pdf", pdf(4, 9 * 1024 * 1024 + 123)).await;
    some_writes(&admin, "History").await;

    let store = bucket(&moto.endpoint());
    for hex in [&small, &large] {
        wait_for_object(&store, &media_key("school", hex), hex, Duration::from_secs(90)).await;
    }
    let live = data.join("reelbox.db");
    restore_until_live(
        &moto.endpoint(),
        &url,
        &live,
        &dir.path().join("restored.db"),
        Duration::from_secs(90),
    );

    // What is in the bucket: snapshots and records under the prefix, nothing outside it.
    let db_keys = keys(&store, "school/db").await;
    assert!(db_keys.iter().any(|k| k.ends_with(".db.zst")), "a snapshot: {db_keys:?}");
    assert!(db_keys.iter().any(|k| k.ends_with(".rec")), "records: {db_keys:?}");
    let all = keys(&store, "").await;
    assert!(all.iter().all(|k| k.starts_with("school/")), "everything under the prefix: {all:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keys(&store, "school/files").await.iter().any(|k| k.ends_with("/MANIFEST.json")) {
        assert!(Instant::now() < deadline, "no day of server files in the bucket");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let listed = cli(&moto.endpoint(), &["backup", "list", "--from", &url]);
    let out = text(&listed.stdout);
    assert!(listed.status.success() && out.contains("generation"), "{out}{}", text(&listed.stderr));
    // A prefix with nothing in it says so, rather than failing or listing the other one.
    let empty = cli(&moto.endpoint(), &["backup", "list", "--from", &format!("s3://{BUCKET}/other")]);
    assert!(
        empty.status.success() && text(&empty.stdout).contains("No database backup"),
        "{}",
        text(&empty.stdout)
    );

    // A plain-http endpoint without AWS_ALLOW_HTTP is refused up front, naming the setting.
    let mut c = common::reelbox();
    s3_env(&mut c, &moto.endpoint());
    let refused =
        c.env_remove("AWS_ALLOW_HTTP").args(["backup", "list", "--from", &url]).output().expect("run");
    let err = text(&refused.stderr);
    assert!(!refused.status.success() && err.contains("AWS_ALLOW_HTTP=true"), "{err}");

    wait_for_metric(&admin, "reelbox_replication_target_failing 0", Duration::from_secs(10)).await;
    let browser = server.browser_login("ada", common::PASSWORD).await;
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    assert!(page.contains("Database in the target") && page.contains("transaction "), "{page}");
    assert!(page.contains(&url), "the target named as configured, {url}: {page}");
    assert!(!page.contains("backup target is failing") && !page.contains("Copying media"), "{page}");
}

/// A loopback TCP relay in front of moto that can be cut (listener closed, open connections shut
/// down) and opened again on the same port: the target goes away mid-run and comes back with
/// everything it held, which moto restarted could not do (it keeps its state in memory).
struct Relay {
    port: u16,
    upstream: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn new(port: u16, upstream: u16) -> Relay {
        Relay { port, upstream, stop: Arc::default(), conns: Arc::default(), accept: None }
    }

    fn open(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("relay port");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let (conns, upstream) = (self.conns.clone(), self.upstream);
        self.accept = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                if let Ok(mut open) = conns.lock() {
                    open.extend([c2, s2]);
                }
                for (mut from, mut to) in
                    [(client.try_clone(), server.try_clone()), (server.try_clone(), client.try_clone())]
                        .into_iter()
                        .filter_map(|(a, b)| a.ok().zip(b.ok()))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        }));
    }

    fn cut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        if let Ok(mut open) = self.conns.lock() {
            for c in open.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_s3_target_fails_loudly_then_everything_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    require_moto();
    // The server's endpoint is a relay's port, and nothing listens there yet: the target is
    // away from the start.
    let port = free_port();
    let url = format!("s3://{BUCKET}/school");
    let server = start(&data, dir.path(), &endpoint(port), &url);
    server.add_user("ada", true);
    let admin = server.api(&server.token("ada"));
    let cat = some_writes(&admin, "While away").await;
    let (_, hex) = upload(&admin, cat, "away.pdf", pdf(9, 300_000)).await;

    let t0 = Instant::now();
    wait_for_metric(&admin, "reelbox_replication_target_failing 1", Duration::from_secs(30)).await;
    let noticed = t0.elapsed();
    let browser = server.browser_login("ada", common::PASSWORD).await;
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    assert!(page.contains("The backup target is failing"), "{page}");
    assert!(page.contains("Copying media or server files failed"), "{page}");
    // A restore from the unreachable target fails, and says it is the target.
    let r = cli(
        &endpoint(port),
        &["restore", "--from", &url, "--output", dir.path().join("x.db").to_str().expect("utf-8")],
    );
    assert!(!r.status.success(), "a restore from nowhere");
    assert!(text(&r.stderr).contains("backup target"), "{}", text(&r.stderr));

    // The target appears (empty, as a new bucket would be); writes went on meanwhile.
    let moto = Moto::start(free_port(), dir.path());
    moto.create_bucket(BUCKET).await;
    let mut relay = Relay::new(port, moto.port);
    relay.open();
    let t1 = Instant::now();
    some_writes(&admin, "After").await;
    let store = bucket(&moto.endpoint());
    wait_for_object(&store, &media_key("school", &hex), &hex, Duration::from_secs(120)).await;
    let live = data.join("reelbox.db");
    restore_until_live(
        &endpoint(port),
        &url,
        &live,
        &dir.path().join("restored.db"),
        Duration::from_secs(120),
    );
    let caught_up = t1.elapsed();
    wait_for_metric(&admin, "reelbox_replication_target_failing 0", Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !keys(&store, "school/files").await.iter().any(|k| k.ends_with("/MANIFEST.json")) {
        assert!(Instant::now() < deadline, "the server files never reached the bucket");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for_no_alarm(&browser, Duration::from_secs(60)).await;

    // Away again mid-run, with everything it held: writes and an upload go on, the failure shows.
    relay.cut();
    let t2 = Instant::now();
    let cat = some_writes(&admin, "Cut").await;
    let (_, hex2) = upload(&admin, cat, "cut.pdf", pdf(10, 350_000)).await;
    wait_for_metric(&admin, "reelbox_replication_target_failing 1", Duration::from_secs(30)).await;
    let noticed_again = t2.elapsed();
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    assert!(page.contains("The backup target is failing"), "{page}");
    assert!(page.contains("Copying media or server files failed"), "{page}");
    relay.open();
    let t3 = Instant::now();
    wait_for_object(&store, &media_key("school", &hex2), &hex2, Duration::from_secs(120)).await;
    restore_until_live(
        &endpoint(port),
        &url,
        &live,
        &dir.path().join("after-cut.db"),
        Duration::from_secs(120),
    );
    let caught_up_again = t3.elapsed();
    wait_for_metric(&admin, "reelbox_replication_target_failing 0", Duration::from_secs(30)).await;
    wait_for_no_alarm(&browser, Duration::from_secs(60)).await;
    eprintln!(
        "target failure visible after {noticed:?} (away from the start) and {noticed_again:?} (cut mid-run); \
         caught up {caught_up:?} after it appeared and {caught_up_again:?} after it came back"
    );
    let listed = cli(&endpoint(port), &["backup", "list", "--from", &url]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    drop(server);
}
