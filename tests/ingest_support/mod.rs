//! Shared by the ingest tests: a server with an admin, a contributor and a viewer on one
//! category, sample files of each kind, and a look at what reached the blob store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::{Api, Server};

pub struct Library {
    pub server: Server,
    pub admin: Api,
    pub teacher: Api,
    pub student: Api,
    pub outsider: Api,
    pub teacher_token: String,
    pub category: i64,
    pub hidden: i64,
}

pub fn max_size() -> u64 {
    300_000
}

impl Library {
    pub async fn start(data: &Path, logs: &Path) -> Library {
        Library::with(start_server(data, logs)).await
    }

    async fn with(server: Server) -> Library {
        for (name, admin) in [("ada", true), ("tess", false), ("stu", false), ("olly", false)] {
            server.add_user(name, admin);
        }
        let admin = server.api(&server.token("ada"));
        let teacher_token = server.token("tess");
        let teacher = server.api(&teacher_token);
        let student = server.api(&server.token("stu"));
        let outsider = server.api(&server.token("olly"));
        let category = admin
            .call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201)
            .await["id"]
            .as_i64()
            .expect("category id");
        let hidden =
            admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Staff"})), 201).await["id"]
                .as_i64()
                .expect("category id");
        let grants = json!([{"username": "tess", "role": "contribute"}, {"username": "stu", "role": "view"}]);
        admin.call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&grants), 204).await;
        Library { server, admin, teacher, student, outsider, teacher_token, category, hidden }
    }

    pub fn data(&self) -> PathBuf {
        self.server.data_dir().to_path_buf()
    }

    /// Kill the server (SIGKILL, like a crash) and start it again on the same data directory;
    /// the API clients follow it to its new port.
    pub fn restart(self, logs: &Path) -> Library {
        let data = self.data();
        let Library { server, admin, teacher, student, outsider, teacher_token, category, hidden } = self;
        drop(server);
        let server = start_server(&data, logs);
        let follow = |api: Api| Api { client: api.client, base: server.base.clone(), token: api.token };
        let (admin, teacher, student, outsider) =
            (follow(admin), follow(teacher), follow(student), follow(outsider));
        Library { server, admin, teacher, student, outsider, teacher_token, category, hidden }
    }
}

fn start_server(data: &Path, logs: &Path) -> Server {
    Server::start_with(data, logs, |c| {
        c.env("REELBOX_UPLOADS__MAX_SIZE_BYTES", max_size().to_string());
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

pub fn content_digest(data: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data)))
}

fn filler(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[0] ^ seed).collect()
}

/// Recognised by its magic bytes; the rest is filler.
pub fn png(seed: u8, len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
    v.extend(filler(seed, len.saturating_sub(v.len())));
    v
}

pub fn mp4(seed: u8, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    v.extend(filler(seed, len.saturating_sub(v.len())));
    v
}

pub fn pdf(seed: u8, len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    v.extend(filler(seed, len.saturating_sub(v.len())));
    v
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn blobs(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("blobs/sha256"))
}

/// Leftovers of writes in progress: blob temp files and partial uploads.
pub fn temp_files(data: &Path) -> Vec<PathBuf> {
    let mut v = files_under(&data.join("blobs/tmp"));
    v.extend(files_under(&data.join("uploads")));
    v
}

/// `POST /api/v1/media` with `body` and the given digest header (None: none sent).
pub async fn post_media(api: &Api, query: &str, body: Vec<u8>, digest: Option<String>) -> reqwest::Response {
    let mut req =
        api.client.post(api.url(&format!("/api/v1/media?{query}"))).bearer_auth(&api.token).body(body);
    if let Some(d) = digest {
        req = req.header("Content-Digest", d);
    }
    req.send().await.expect("POST /api/v1/media")
}

pub async fn status_and_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The audit events with this action, newest first.
pub async fn audit(admin: &Api, action: &str) -> Vec<Value> {
    admin.get_json(&format!("/api/v1/audit?action={action}")).await.as_array().cloned().unwrap_or_default()
}
