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
    /// Stop the server gracefully (SIGTERM, as at a planned restart) and start it again.
    pub fn restart_gracefully(mut self, logs: &Path) -> Library {
        let status = self.server.stop_gracefully();
        assert!(status.success(), "a graceful stop exits cleanly: {status:?}");
        self.restart(logs)
    }

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

/// A real PNG (16×16 pixels that depend on `seed`, encoded by the `image` crate) of exactly
/// `len` bytes when `len` leaves room: the rest is a private ancillary chunk before `IEND`, which
/// decoders skip. Shorter `len` gives the bare image.
pub fn png(seed: u8, len: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(16) ^ seed, (y as u8).wrapping_mul(16), seed.wrapping_mul(37)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode a PNG");
    let mut v = out.into_inner();
    const IEND_LEN: usize = 12;
    const CHUNK_OVERHEAD: usize = 12;
    if len >= v.len() + CHUNK_OVERHEAD {
        let iend = v.split_off(v.len() - IEND_LEN);
        let padding = filler(seed, len - v.len() - IEND_LEN - CHUNK_OVERHEAD);
        png_chunk(&mut v, b"rbPd", &padding);
        v.extend(iend);
    }
    v
}

/// A PNG whose pixel data is cut off after `keep` bytes of the file: the header parses, the
/// decode fails.
pub fn broken_png(seed: u8, keep: usize) -> Vec<u8> {
    // Noise, so the pixel data is ~24 KB whatever the compression.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    let noise: Vec<u8> = (0..100 * 80 * 3)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    let img = image::RgbImage::from_fn(100, 80, |x, y| {
        let i = ((y * 100 + x) * 3) as usize;
        image::Rgb([noise[i], noise[i + 1], noise[i + 2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode a PNG");
    let mut v = out.into_inner();
    assert!(keep > 64 && keep < v.len(), "cut inside the pixel data (the file has {} bytes)", v.len());
    v.truncate(keep);
    v
}

pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).expect("chunk size").to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
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

/// A whole tus upload: creation, then every byte in one PATCH. Returns the PATCH's status and
/// body (a problem JSON when refused) and the item announced at creation (`X-Media-Id`).
pub async fn tus_upload(api: &Api, category: i64, filename: &str, body: &[u8]) -> (u16, Value, i64) {
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let metadata = format!(
        "filename {},category {},sha256 {}",
        b64(filename.as_bytes()),
        b64(category.to_string().as_bytes()),
        b64(sha256_hex(body).as_bytes())
    );
    let res = api
        .client
        .post(api.url("/api/v1/uploads"))
        .bearer_auth(&api.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", body.len().to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .expect("tus creation");
    assert_eq!(res.status().as_u16(), 201, "tus creation of {filename}");
    let location = crate::common::header(res.headers(), "location");
    let media: i64 = crate::common::header(res.headers(), "x-media-id").parse().expect("X-Media-Id");
    let res = api
        .client
        .patch(api.url(&location))
        .bearer_auth(&api.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .body(body.to_vec())
        .send()
        .await
        .expect("tus PATCH");
    let (status, json) = status_and_json(res).await;
    (status, json, media)
}
