//! The upload page in a real browser (Chromium through chromedriver) against the real server:
//! a contributor adds real video files, watches them hash and upload, pauses and resumes one,
//! reloads the page in the middle of another and continues it from the server's offset, and
//! each item arrives with the hash Rust computes for the file.
//!
//! Also: the page's hand-written SHA-256 (`static/upload.js`) under node, against known vectors
//! and a multi-MiB random file compared with the `sha2` crate.
//!
//! Needs Debian's `chromium` and `chromium-driver`, `ffmpeg` and `node`; without them the tests
//! fail and say what is missing.

#[allow(dead_code)]
mod browser_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use browser_support::webdriver::{Browser, Element, Result};
use browser_support::{BrowserKind, Driver, artifacts_dir, require_tool};
use common::{Api, PASSWORD, Server};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

const UPLOAD_JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static/upload.js");
/// Small chunks so a few tens of MB take long enough on loopback to pause and reload mid-way.
const CHUNK_KIB: u32 = 64;

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

// ---- SHA-256 under node --------------------------------------------------------------------

/// Hash each file with upload.js's `Sha256`, feeding it in uneven pieces, as hex lines.
fn node_hashes(files: &[PathBuf]) -> Vec<String> {
    let node = require_tool("REELBOX_NODE", "/usr/bin/node", "node");
    let script = r#"
        const fs = require("fs");
        const { Sha256 } = require(process.argv[1]);
        const pieces = [1, 63, 64, 65, 1000, 4096, 1 << 20];
        for (const path of process.argv.slice(2)) {
            const data = new Uint8Array(fs.readFileSync(path));
            const h = new Sha256();
            let at = 0, i = 0;
            while (at < data.length) {
                const n = pieces[i++ % pieces.length];
                h.update(data.subarray(at, at + n));
                at += n;
            }
            console.log(h.hex());
        }
    "#;
    let out = Command::new(node)
        .arg("-e")
        .arg(script)
        .arg(UPLOAD_JS)
        .args(files)
        .output()
        .expect("run node on static/upload.js");
    assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn upload_js_sha256_matches_known_vectors_and_rust() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (b"".to_vec(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
        (b"abc".to_vec(), Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
            Some("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ),
        (vec![b'a'; 1_000_000], Some("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")),
    ];
    // Every length around the padding boundaries, then 5 MiB of random bytes.
    for n in [55usize, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129] {
        cases.push(((0..n).map(|i| (i * 7 + 3) as u8).collect(), None));
    }
    cases.push(((0..5 * 1024 * 1024 + 17).map(|_| rand::random::<u8>()).collect(), None));
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, (data, _))| {
            let p = dir.path().join(format!("case-{i}"));
            std::fs::write(&p, data).expect("write a test vector");
            p
        })
        .collect();
    let got = node_hashes(&files);
    assert_eq!(got.len(), cases.len(), "one hash per file: {got:?}");
    for ((data, known), hash) in cases.iter().zip(&got) {
        let rust = sha256_hex(data);
        assert_eq!(hash, &rust, "upload.js vs sha2 for {} bytes", data.len());
        if let Some(known) = known {
            assert_eq!(hash, known, "upload.js vs the published vector for {} bytes", data.len());
        }
    }
}

// ---- the page in Chromium --------------------------------------------------------------------

/// A noisy lossless video (about 25 MB): real enough for the type check, big enough to watch.
fn noise_video(dir: &Path, name: &str, seed: u32) -> PathBuf {
    let ffmpeg = require_tool("REELBOX_FFMPEG", "/usr/bin/ffmpeg", "ffmpeg");
    let out = dir.join(name);
    let filter = format!("nullsrc=s=640x360:r=25,geq=lum='random({seed})*255':cb=128:cr=128");
    let status = Command::new(ffmpeg)
        .args(["-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", &filter])
        .args(["-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
    out
}

/// A short, smaller noisy video (a few MB): enough chunks to watch the progress move.
fn small_noise_video(dir: &Path, name: &str) -> PathBuf {
    let ffmpeg = require_tool("REELBOX_FFMPEG", "/usr/bin/ffmpeg", "ffmpeg");
    let out = dir.join(name);
    let filter = "nullsrc=s=480x270:r=25,geq=lum='random(7)*255':cb=128:cr=128";
    let status = Command::new(ffmpeg)
        .args(["-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", filter])
        .args(["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
    out
}

struct Ctx<'a> {
    browser: &'a Browser,
    teacher: Api,
    admin: Api,
    category: i64,
    shots: PathBuf,
}

impl Ctx<'_> {
    async fn shot(&self, step: &str) {
        let path = self.shots.join(format!("upload-{step}.png"));
        match self.browser.screenshot(&path).await {
            Ok(()) => println!("screenshot: {}", path.display()),
            Err(e) => println!("no screenshot for {step}: {e}"),
        }
    }

    /// The row of the file named `name`.
    async fn row(&self, name: &str) -> Result<Element> {
        self.browser
            .find_xpath(&format!("//ul[@id='upload-list']/li[.//span[@class='upload-name' and .='{name}']]"))
            .await
    }

    async fn row_attr(&self, name: &str, attr: &str) -> Result<String> {
        let row = self.row(name).await?;
        Ok(self.browser.attr(&row, attr).await?.unwrap_or_default())
    }

    async fn progress(&self, name: &str) -> Result<u32> {
        let bar = self
            .browser
            .find_xpath(&format!("//ul[@id='upload-list']/li[.//span[.='{name}']]//progress"))
            .await?;
        // `value` is a reflected attribute of <progress>: the script's updates show up here.
        let v = self.browser.attr(&bar, "value").await?;
        Ok(v.and_then(|s| s.parse::<f64>().ok()).map_or(0, |f| f as u32))
    }

    async fn status_text(&self, name: &str) -> Result<String> {
        let p = self
            .browser
            .find_xpath(&format!(
                "//ul[@id='upload-list']/li[.//span[.='{name}']]//p[@class='upload-status']"
            ))
            .await?;
        self.browser.text(&p).await
    }

    /// Wait until the row's state satisfies `want`, collecting the status texts seen on the way.
    async fn wait_state(&self, name: &str, what: &str, want: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let state = self.row_attr(name, "data-state").await?;
            let status = self.status_text(name).await?;
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if want(&state) {
                return Ok(seen);
            }
            if state == "error" {
                let row = self.row(name).await?;
                return Err(format!("{name} failed: {}", self.browser.text(&row).await?));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} never reached {what}; state {state}, statuses {seen:?}"));
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Wait until the upload is under way and past `percent`.
    async fn wait_uploading_past(&self, name: &str, percent: u32) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = self.row_attr(name, "data-state").await?;
            if state == "uploading" && self.progress(name).await? >= percent {
                return Ok(());
            }
            if state == "done" || state == "error" || Instant::now() > deadline {
                return Err(format!("{name}: wanted it uploading past {percent} %, but it is {state}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's offset of an upload, asked as the uploader.
    async fn offset(&self, upload_url: &str) -> u64 {
        let res = self
            .teacher
            .client
            .head(self.teacher.url(upload_url))
            .bearer_auth(&self.teacher.token)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .expect("HEAD the upload");
        assert_eq!(res.status().as_u16(), 200, "HEAD {upload_url}");
        common::header(res.headers(), "upload-offset").parse().expect("Upload-Offset is a number")
    }

    /// The item as the API shows it to the administrator, once it has left `uploading`.
    async fn arrived(&self, media_id: &str, file: &Path) -> Value {
        let item = self.admin.get_json(&format!("/api/v1/media/{media_id}")).await;
        let bytes = std::fs::read(file).expect("read the uploaded file");
        assert_eq!(item["sha256"].as_str(), Some(sha256_hex(&bytes).as_str()), "hash of {media_id}: {item}");
        assert_eq!(item["size"].as_u64(), Some(bytes.len() as u64), "size of {media_id}: {item}");
        assert_eq!(item["category_id"].as_i64(), Some(self.category), "category of {media_id}: {item}");
        assert_eq!(item["kind"].as_str(), Some("video"), "kind of {media_id}: {item}");
        let status = item["status"].as_str().unwrap_or_default();
        assert!(matches!(status, "ready" | "processing"), "status of {media_id}: {item}");
        item
    }
}

/// One browser test at a time: each runs its own server, chromedriver and Chromium, and the
/// pause and reload steps need the machine's attention to be timed.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server with a contributor ("tess", on "Science") and an administrator, and Chromium through
/// chromedriver; runs `scenario` and panics with its error and where the screenshots are.
async fn in_the_browser(transcode: bool, scenario: impl AsyncFnOnce(&Ctx<'_>) -> Result<()>) {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromedriver = BrowserKind::Chromium.require_driver();
    let chromium = BrowserKind::Chromium.require_browser();
    let dir = artifacts_dir();
    println!("screenshots and logs: {}", dir.display());

    let data = tempfile::tempdir().expect("tempdir for the server");
    let server = Server::start_with(&data.path().join("data"), data.path(), |c| {
        if transcode {
            common::with_ffmpeg(c);
            // A slower preset than the default, so there is a conversion under way to watch.
            c.env("REELBOX_TRANSCODE__PRESET", "medium");
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    server.add_user("ada", true);
    server.add_user("tess", false);
    let admin = server.api(&server.token("ada"));
    let teacher = server.api(&server.token("tess"));
    let category =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category id");
    admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Staff room"})), 201).await;
    let grants = json!([{"username": "tess", "role": "contribute"}]);
    admin.call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&grants), 204).await;

    let driver = Driver::start(BrowserKind::Chromium, &chromedriver, &dir.join("chromedriver.log"))
        .await
        .expect("chromedriver");
    let browser = Browser::start(BrowserKind::Chromium, &driver.url, &chromium, "teacher", &server.base)
        .await
        .expect("Chromium");
    let ctx = Ctx { browser: &browser, teacher, admin, category, shots: dir.clone() };
    let outcome = scenario(&ctx).await;
    if outcome.is_err() {
        ctx.shot("failure").await;
    }
    drop(ctx);
    if let Err(e) = browser.quit().await {
        println!("the browser did not close cleanly: {e}");
    }
    drop(driver);
    if let Err(e) = outcome {
        panic!("{e}\n(screenshots and chromedriver.log are in {})", dir.display());
    }
}

/// Sign in as the contributor and open the upload page for the category with small chunks.
async fn open_upload_page(ctx: &Ctx<'_>) -> Result<()> {
    let b = ctx.browser;
    b.goto("/login").await?;
    b.fill("#username", "tess").await?;
    b.fill("#password", PASSWORD).await?;
    b.click_button("Sign in").await?;
    b.wait_for_path("/", |p| p == "/").await?;
    b.goto(&format!("/upload?category={}&chunk_kib={CHUNK_KIB}", ctx.category)).await?;
    Ok(())
}

#[tokio::test]
async fn a_contributor_uploads_pauses_resumes_and_survives_a_reload() {
    let files = tempfile::tempdir().expect("tempdir for the files");
    let videos = [
        noise_video(files.path(), "lesson-one.mp4", 1),
        noise_video(files.path(), "lesson-two.mp4", 2),
        noise_video(files.path(), "lesson-three.mp4", 3),
    ];
    in_the_browser(false, async |ctx| scenario(ctx, &videos).await).await;
}

#[tokio::test]
async fn a_file_dropped_on_the_page_uploads_into_the_category() {
    let files = tempfile::tempdir().expect("tempdir for the files");
    let video = small_noise_video(files.path(), "dropped-lesson.mp4");
    in_the_browser(false, async |ctx| drop_scenario(ctx, &video).await).await;
}

#[tokio::test]
async fn my_uploads_follows_a_conversion_live() {
    let files = tempfile::tempdir().expect("tempdir for the files");
    let video = test_pattern_video(files.path(), "long-lesson.mp4");
    in_the_browser(true, async |ctx| live_progress_scenario(ctx, &video).await).await;
}

/// A one-minute test pattern: long enough that converting it takes a while to watch.
fn test_pattern_video(dir: &Path, name: &str) -> PathBuf {
    let ffmpeg = require_tool("REELBOX_FFMPEG", "/usr/bin/ffmpeg", "ffmpeg");
    let out = dir.join(name);
    let status = Command::new(ffmpeg)
        .args(["-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25"])
        .args(["-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
    out
}

/// The contributor uploads a video and opens "My uploads" while it is converted: the row's
/// progress and words follow the job without a reload, and the row turns "Ready" at the end.
async fn live_progress_scenario(ctx: &Ctx<'_>, video: &Path) -> Result<()> {
    let b = ctx.browser;
    b.goto("/login").await?;
    b.fill("#username", "tess").await?;
    b.fill("#password", PASSWORD).await?;
    b.click_button("Sign in").await?;
    b.wait_for_path("/", |p| p == "/").await?;
    b.click_link("//nav[@aria-label='Main']", "My uploads").await?;
    b.wait_for_path("/my/uploads", |p| p == "/my/uploads").await?;

    let bytes = std::fs::read(video).map_err(|e| e.to_string())?;
    let digest = {
        use base64::Engine as _;
        format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes))
        )
    };
    let res = ctx
        .teacher
        .client
        .post(ctx.teacher.url(&format!("/api/v1/media?category={}&filename=long-lesson.mp4", ctx.category)))
        .bearer_auth(&ctx.teacher.token)
        .header("Content-Digest", digest)
        .body(bytes)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let item: Value = res.json().await.map_err(|e| e.to_string())?;
    let id = item["id"].as_i64().ok_or_else(|| format!("the upload was refused: {item}"))?;
    b.refresh().await?;
    // A mark in the page: if it is still there at the end, nothing reloaded the page.
    b.execute("window.reelboxTestMark = 'kept'; return true;", vec![]).await?;

    let row = format!("//tr[@data-media-id='{id}']");
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen: Vec<(String, Option<u32>, String)> = Vec::new();
    loop {
        // Status, bar and words read in one script, at one instant: separate reads could
        // straddle an update of the row.
        let state = b
            .execute(
                "const tr = document.querySelector(`tr[data-media-id='${arguments[0]}']`);
                 if (!tr) return null;
                 const bar = tr.querySelector('progress');
                 const words = tr.querySelector('span.my-progress-text');
                 return [tr.getAttribute('data-status') || '',
                         bar ? bar.getAttribute('value') : null,
                         words ? words.innerText.trim() : ''];",
                vec![json!(id)],
            )
            .await?;
        let status = state[0].as_str().ok_or_else(|| format!("no row for item {id}: {state}"))?.to_string();
        let percent = state[1].as_str().and_then(|v| v.parse::<f64>().ok()).map(|v| v as u32);
        let text = state[2].as_str().unwrap_or_default().to_string();
        let now = (status.clone(), percent, text);
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if status == "ready" {
            break;
        }
        if status != "processing" || Instant::now() > deadline {
            return Err(format!("the conversion did not finish as expected: {seen:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("My uploads showed: {seen:?}");
    // The row followed the job through its states without a reload: waiting, converting, ready.
    // Bar and words agree wherever both show.
    let words: Vec<&str> = seen.iter().map(|(_, _, t)| t.as_str()).collect();
    let running = words.iter().position(|t| t.contains("Converting") || t.ends_with(" left"));
    if running.is_none() {
        return Err(format!("the conversion was never shown under way: {seen:?}"));
    }
    for (status, percent, text) in &seen {
        if let (Some(p), false) = (percent, text.is_empty())
            && !text.starts_with(&format!("{p} % · "))
        {
            return Err(format!("bar and text disagree while {status}: {seen:?}"));
        }
    }
    let status = b.find_xpath(&format!("{row}//span[@class='my-status-text']")).await?;
    if b.text(&status).await? != "Ready" || b.try_find_xpath(&format!("{row}//progress")).await?.is_some() {
        return Err("a finished conversion should read Ready, without a progress bar".into());
    }
    if b.execute("return window.reelboxTestMark || null;", vec![]).await? != json!("kept") {
        return Err("the page was reloaded; the progress should update in place".into());
    }
    ctx.shot("my-uploads-ready").await;
    Ok(())
}

/// What a person does when they drag a file from their desktop onto the drop zone: the page
/// gets `dragenter`, `dragover` and `drop` events carrying a `DataTransfer` with the file.
/// WebDriver cannot drag from outside the browser, so the test builds the same events in the
/// page (a real `File` in a real `DataTransfer`) and lets the page's own handlers take them.
const DROP_FILE: &str = r#"
    const [b64, name, type] = arguments;
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type }));
    const zone = document.getElementById("upload-drop");
    const fire = (kind) => {
        const ev = new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer });
        zone.dispatchEvent(ev);
        return ev.defaultPrevented;
    };
    const enter = fire("dragenter");
    const over = fire("dragover");
    const highlighted = zone.classList.contains("is-dragging");
    const dropped = fire("drop");
    return { enter, over, highlighted, dropped, after: zone.classList.contains("is-dragging") };
"#;

async fn drop_scenario(ctx: &Ctx<'_>, video: &Path) -> Result<()> {
    use base64::Engine as _;
    let b = ctx.browser;
    open_upload_page(ctx).await?;
    b.find("#upload-drop").await?;
    let name = "dropped-lesson.mp4";
    let bytes = std::fs::read(video).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let events = b.execute(DROP_FILE, vec![json!(b64), json!(name), json!("video/mp4")]).await?;
    // dragover must be cancelled or a browser refuses the drop; drop must be cancelled or the
    // browser opens the file instead of uploading it.
    if events != json!({"enter": true, "over": true, "highlighted": true, "dropped": true, "after": false}) {
        return Err(format!("the drop zone did not handle the drag like a drop target: {events}"));
    }

    let mut percents = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut statuses: Vec<String> = Vec::new();
    loop {
        let state = ctx.row_attr(name, "data-state").await?;
        let status = ctx.status_text(name).await?;
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
        percents.push(ctx.progress(name).await?);
        match state.as_str() {
            "done" => break,
            "error" => return Err(format!("the dropped file failed: {statuses:?}")),
            _ if Instant::now() > deadline => {
                return Err(format!("the dropped file never finished: {statuses:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    ctx.shot("dropped-done").await;
    println!("statuses of the dropped file: {statuses:?}; progress seen: {percents:?}");
    if !statuses.iter().any(|s| s.starts_with("Uploading… ") && s.contains(" %")) {
        return Err(format!("the upload progress of the dropped file was never shown: {statuses:?}"));
    }
    if !percents.iter().any(|p| (1..100).contains(p)) || percents.last() != Some(&100) {
        return Err(format!("the progress bar should move through to 100: {percents:?}"));
    }
    let media = ctx.row_attr(name, "data-media-id").await?;
    ctx.arrived(&media, video).await;

    let to_category = format!("/categories/{}", ctx.category);
    b.goto(&to_category).await?;
    b.find_xpath(&format!("//main//a[@href='/media/{media}']")).await?;
    let listing = b.page_text().await?;
    if !listing.contains("dropped lesson") {
        return Err(format!("the category should list the dropped file; it says:\n{listing}"));
    }
    Ok(())
}

async fn scenario(ctx: &Ctx<'_>, videos: &[PathBuf; 3]) -> Result<()> {
    let b = ctx.browser;
    b.goto("/login").await?;
    b.fill("#username", "tess").await?;
    b.fill("#password", PASSWORD).await?;
    b.click_button("Sign in").await?;
    b.wait_for_path("/", |p| p == "/").await?;

    // The nav leads to the page; the category comes preselected and only contribute categories are offered.
    b.click_link("//nav[@aria-label='Main']", "Upload").await?;
    b.wait_for_path("/upload", |p| p == "/upload").await?;
    b.goto(&format!("/upload?category={}&chunk_kib={CHUNK_KIB}", ctx.category)).await?;
    let select = b.find("#upload-category").await?;
    let options = b.text(&select).await?;
    if options.contains("Staff room") || !options.contains("Science") {
        return Err(format!("only categories with contribute may be offered; the list says {options:?}"));
    }
    let chosen =
        b.find_xpath(&format!("//select[@id='upload-category']/option[@value='{}']", ctx.category)).await?;
    if !b.is_selected(&chosen).await? {
        return Err("?category= should preselect the category".into());
    }
    // The picker is a file input inside its label, so the keyboard reaches it too.
    b.find_xpath("//label[contains(., 'Choose files')]/input[@type='file' and @multiple]").await?;

    // 1. One file, start to finish: hashing, then uploading with a rate, then links to the item.
    let one = file_arg(&videos[0]);
    b.fill("#upload-files", &one).await?;
    let seen = ctx.wait_state("lesson-one.mp4", "done", |s| s == "done").await?;
    ctx.shot("one-done").await;
    println!("statuses seen for lesson-one.mp4: {seen:?}");
    if !seen.iter().any(|s| s.starts_with("Hashing… ")) {
        return Err(format!("the hashing progress was never shown: {seen:?}"));
    }
    let uploading: Vec<&String> = seen.iter().filter(|s| s.starts_with("Uploading… ")).collect();
    if !uploading.iter().any(|s| s.contains(" %, ") && s.ends_with("MB/s")) {
        return Err(format!("the upload progress with a rate was never shown: {seen:?}"));
    }
    let media_one = ctx.row_attr("lesson-one.mp4", "data-media-id").await?;
    ctx.arrived(&media_one, &videos[0]).await;
    let link = b.find_xpath("//ul[@id='upload-list']/li[1]//a[starts-with(@href, '/media/')]").await?;
    if b.attr(&link, "href").await?.as_deref() != Some(&format!("/media/{media_one}")) {
        return Err("the finished file should link to its item".into());
    }
    b.find_xpath(&format!("//ul[@id='upload-list']/li[1]//a[@href='/categories/{}']", ctx.category)).await?;

    // 1b. A file the server refuses: the server's own explanation is shown on that file's row.
    let notes = videos[0].with_file_name("notes.txt");
    std::fs::write(&notes, "Plain text is not a kind of media reelbox keeps.\n".repeat(40))
        .map_err(|e| e.to_string())?;
    b.fill("#upload-files", &file_arg(&notes)).await?;
    ctx.wait_state("notes.txt", "error", |s| s == "error").await?;
    let error = b.find_xpath("//ul[@id='upload-list']/li[.//span[.='notes.txt']]//p[@role='alert']").await?;
    let error_text = b.text(&error).await?;
    if !error_text.contains("reelbox accepts") {
        return Err(format!("the refusal should say what is allowed; the row says {error_text:?}"));
    }
    ctx.shot("refused").await;

    // 2. Pause stops the bytes; Resume continues from the server's offset.
    b.fill("#upload-files", &file_arg(&videos[1])).await?;
    ctx.wait_uploading_past("lesson-two.mp4", 15).await?;
    let pause = b.find_xpath("//button[@aria-label='Pause lesson-two.mp4']").await?;
    b.click(&pause).await?;
    ctx.wait_state("lesson-two.mp4", "paused", |s| s == "paused").await?;
    let url_two = ctx.row_attr("lesson-two.mp4", "data-upload-url").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused_at = ctx.offset(&url_two).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = ctx.offset(&url_two).await;
    let size_two = std::fs::metadata(&videos[1]).map_err(|e| e.to_string())?.len();
    if paused_at * 100 < size_two * 15 || paused_at >= size_two || still != paused_at {
        return Err(format!("paused: the offset went {paused_at} → {still} of {size_two}"));
    }
    ctx.shot("two-paused").await;
    let resume = b.find_xpath("//button[@aria-label='Resume lesson-two.mp4']").await?;
    b.click(&resume).await?;
    ctx.wait_state("lesson-two.mp4", "done", |s| s == "done").await?;
    let media_two = ctx.row_attr("lesson-two.mp4", "data-media-id").await?;
    ctx.arrived(&media_two, &videos[1]).await;

    // 3. A reload in the middle: the page remembers the upload; adding the file again continues
    //    the same upload (same item, offset kept) instead of starting over.
    b.fill("#upload-files", &file_arg(&videos[2])).await?;
    ctx.wait_uploading_past("lesson-three.mp4", 25).await?;
    let url_three = ctx.row_attr("lesson-three.mp4", "data-upload-url").await?;
    let media_three = ctx.row_attr("lesson-three.mp4", "data-media-id").await?;
    b.refresh().await?;
    let earlier = b.find_xpath("//section[@id='upload-earlier' and not(@hidden)]").await?;
    let earlier_text = b.text(&earlier).await?;
    if !earlier_text.contains("lesson-three.mp4") {
        return Err(format!(
            "after a reload the unfinished upload should be listed; it says {earlier_text:?}"
        ));
    }
    ctx.shot("three-after-reload").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ctx.offset(&url_three).await;
    let size_three = std::fs::metadata(&videos[2]).map_err(|e| e.to_string())?.len();
    // The page showed 25 % only after the server had acknowledged it.
    if before * 4 < size_three || before >= size_three {
        return Err(format!("the server should hold part of lesson-three.mp4 ({before} of {size_three})"));
    }
    b.fill("#upload-files", &file_arg(&videos[2])).await?;
    let seen = ctx.wait_state("lesson-three.mp4", "done", |s| s == "done").await?;
    println!("statuses after the reload: {seen:?}");
    if seen.iter().any(|s| s.starts_with("Hashing… ")) {
        return Err(format!("the remembered hash should be reused, not recomputed: {seen:?}"));
    }
    let resumed_media = ctx.row_attr("lesson-three.mp4", "data-media-id").await?;
    if resumed_media != media_three {
        return Err(format!(
            "the reload started a new upload (item {resumed_media}) instead of continuing {media_three}"
        ));
    }
    if ctx.row_attr("lesson-three.mp4", "data-upload-url").await? != url_three {
        return Err("after the reload the page should continue the remembered upload URL".into());
    }
    ctx.arrived(&media_three, &videos[2]).await;
    if b.try_find_xpath("//section[@id='upload-earlier' and not(@hidden)]").await?.is_some() {
        return Err("once finished, the upload should leave the unfinished list".into());
    }
    ctx.shot("three-done").await;

    // 4. "Go to Science" on a finished file: the category lists the three items (and not the refused file).
    let to_category = format!("/categories/{}", ctx.category);
    let go = b.find_xpath(&format!("//ul[@id='upload-list']/li[1]//a[@href='{to_category}']")).await?;
    b.click(&go).await?;
    b.wait_for_path(&to_category, |p| p == to_category).await?;
    for id in [&media_one, &media_two, &media_three] {
        b.find_xpath(&format!("//main//a[@href='/media/{id}']")).await?;
    }
    let listing = b.page_text().await?;
    let titles = ["lesson one", "lesson two", "lesson three"];
    if !titles.iter().all(|t| listing.contains(t)) || listing.contains("notes") {
        return Err(format!("the category should list the uploaded lessons only; it says:\n{listing}"));
    }
    ctx.shot("category").await;

    Ok(())
}

fn file_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_string()
}
