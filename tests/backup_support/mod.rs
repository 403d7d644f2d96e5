//! Shared by the backup tests: a server that backs up to a directory, uploads, and looks at the
//! target's files directly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Api, Server};
use crate::ingest_support::{content_digest, post_media, sha256_hex, status_and_json};

/// `<target>/media/ab/abcd…`
pub fn target_blob(target: &Path, hex: &str) -> PathBuf {
    target.join("media").join(&hex[0..2]).join(hex)
}

/// A server on `data` that backs up to `target` and re-hashes every copy at each walk.
pub fn start(data: &Path, logs: &Path, target: &Path, extra: &[(&str, &str)]) -> Server {
    let target = target.to_path_buf();
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Server::start_with(data, logs, move |c| {
        c.arg("--backup-dir").arg(&target).env("REELBOX_BACKUP__MEDIA_VERIFY_DAYS", "0");
        for (k, v) in extra {
            c.env(k, v);
        }
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Upload `bytes` as `name` into `category`; the item's id and the content's hex SHA-256.
pub async fn upload(api: &Api, category: i64, name: &str, bytes: Vec<u8>) -> (i64, String) {
    let hex = sha256_hex(&bytes);
    let digest = content_digest(&bytes);
    let res = post_media(api, &format!("category={category}&filename={name}"), bytes, Some(digest)).await;
    let (status, body) = status_and_json(res).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_i64().expect("id"), hex)
}

/// Wait until the target holds an intact copy of `hex`.
pub fn wait_for_copy(server: &Server, target: &Path, hex: &str, limit: Duration) {
    let path = target_blob(target, hex);
    let deadline = Instant::now() + limit;
    loop {
        if std::fs::read(&path).is_ok_and(|b| sha256_hex(&b) == hex) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no intact copy of {hex} at {} after {limit:?}\n{}",
            path.display(),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until the server's log has `needle`.
pub fn wait_for_log(server: &Server, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let log = server.stderr();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "the log never said {needle:?}:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
