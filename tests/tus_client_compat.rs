//! Protocol compatibility with an independent tus client: `tuspy` (PyPI) under python3 uploads
//! a multi-MiB file in chunks with per-chunk checksums, is interrupted, and a new client
//! instance (a new process) resumes from the URL it stored, then completes. The stored item
//! must carry the file's hash and serve back the same bytes.

mod common;
mod ingest_support;

use std::path::Path;
use std::process::Command;

use common::{Server, text};
use ingest_support::*;
use reqwest::Method;
use serde_json::{Value, json};

const CHUNK: usize = 1024 * 1024;
const STOP_AFTER_CHUNKS: usize = 3;

const SCRIPT: &str = r#"
import json, sys
import requests
from tusclient import client
from tusclient.storage import filestorage

phase, base, token, path, storage, category, sha256, chunk, stop_at = sys.argv[1:10]
headers = {"Authorization": "Bearer " + token}
tus = client.TusClient(base + "/api/v1/uploads", headers=headers)
uploader = tus.uploader(
    path,
    chunk_size=int(chunk),
    metadata={"filename": "tus lesson.mp4", "category": category, "sha256": sha256, "title": "Tus compat"},
    store_url=True,
    url_storage=filestorage.FileStorage(storage),
    upload_checksum=True,
    retries=0,
)
before = uploader.offset
if phase == "start":
    uploader.upload(stop_at=int(stop_at))
    head = requests.head(uploader.url, headers=dict(headers, **{"Tus-Resumable": "1.0.0"}))
    print(json.dumps({"url": uploader.url, "before": before, "after": uploader.offset,
                      "server_offset": int(head.headers["Upload-Offset"]),
                      "media_id": int(head.headers["X-Media-Id"])}))
else:
    uploader.upload()
    print(json.dumps({"url": uploader.url, "before": before, "after": uploader.offset}))
"#;

fn require_tuspy() {
    let ok =
        Command::new("python3").args(["-c", "import tusclient"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test drives the independent tus client `tuspy` under python3, which is missing: \
         install it with `python3 -m pip install tuspy` (or run `bash tests/run.sh --install-only`)"
    );
}

fn run_client(script: &Path, args: &[&str]) -> Value {
    let out = Command::new("python3").arg(script).args(args).output().expect("run python3");
    assert!(out.status.success(), "tuspy {} failed: {}\n{}", args[0], text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_uploads_is_interrupted_resumes_and_completes() {
    require_tuspy();
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::start_with(&dir.path().join("data"), dir.path(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    server.add_user("ada", true);
    let token = server.token("ada");
    let admin = server.api(&token);
    let category =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Physics"})), 201).await["id"]
            .as_i64()
            .expect("category id");

    let body = mp4(7, 5 * CHUNK + 12_345);
    let sha = sha256_hex(&body);
    let file = dir.path().join("lesson.mp4");
    std::fs::write(&file, &body).expect("write the file");
    let script = dir.path().join("tus_compat.py");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let storage = dir.path().join("tus-urls.json");
    let (chunk, stop_at) = (CHUNK.to_string(), (STOP_AFTER_CHUNKS * CHUNK).to_string());
    let cat = category.to_string();
    let args = |phase: &'static str| {
        [
            phase,
            &server.base,
            &token,
            file.to_str().expect("utf-8"),
            storage.to_str().expect("utf-8"),
            &cat,
            &sha,
            &chunk,
            &stop_at,
        ]
        .map(str::to_string)
    };

    // Upload three chunks, then the process ends: an interrupted upload.
    let a = args("start");
    let first = run_client(&script, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(first["before"], 0, "{first}");
    assert_eq!(first["after"], STOP_AFTER_CHUNKS * CHUNK, "{first}");
    assert_eq!(first["server_offset"], STOP_AFTER_CHUNKS * CHUNK, "the server kept what it got: {first}");
    let id = first["media_id"].as_i64().expect("X-Media-Id");
    let pending = admin.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(pending["status"], "uploading", "{pending}");

    // A new client instance finds the stored URL by the file's fingerprint and resumes there.
    let b = args("resume");
    let second = run_client(&script, &b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(second["url"], first["url"], "resumed the same upload: {second}");
    assert_eq!(second["before"], STOP_AFTER_CHUNKS * CHUNK, "resumed from the stored offset: {second}");
    assert_eq!(second["after"], body.len(), "{second}");

    let item = admin.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(item["sha256"], sha, "{item}");
    assert_eq!(item["size"], body.len(), "{item}");
    assert_eq!(item["kind"], "video", "{item}");
    assert_eq!(item["category_id"], category, "{item}");
    assert!(matches!(item["status"].as_str(), Some("processing" | "ready")), "{item}");
    let original = admin.get(&format!("/api/v1/media/{id}/original")).await;
    assert_eq!(original.status(), 200);
    let got = original.bytes().await.expect("original");
    assert_eq!(sha256_hex(&got), sha, "the stored bytes are the file's");
    assert!(temp_files(server.data_dir()).is_empty(), "no partial files left");
}
