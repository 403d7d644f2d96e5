//! `reelbox verify` against a real data directory while the real server runs on it: exit
//! codes, what it prints, the items it marks, the audit event, the weekly run of the server
//! and the dashboard line.

mod common;
mod ingest_support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{PASSWORD, run_cli, text};
use ingest_support::*;

fn verify(data: &Path) -> (i32, String, String) {
    let out = run_cli(&["verify", "--data", data.to_str().expect("utf-8 path")], "");
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open blob");
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&[b[0] ^ 0x20]).expect("write");
    f.sync_all().expect("sync");
}

fn blob_path(data: &Path, hash: &str) -> std::path::PathBuf {
    data.join("blobs/sha256").join(&hash[0..2]).join(&hash[2..4]).join(hash)
}

/// Scrub audit events, waiting up to `wait` for there to be at least `at_least`.
async fn scrub_events(lib: &Library, at_least: usize, wait: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + wait;
    loop {
        let events = audit(&lib.admin, "scrub.completed").await;
        if events.len() >= at_least || Instant::now() >= deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_damage_marks_items_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let data = lib.data();

    // The server scrubs once at start (no scrub yet: the weekly one is due) and remembers it.
    let events = scrub_events(&lib, 1, Duration::from_secs(20)).await;
    assert_eq!(events.len(), 1, "the weekly scrub ran at start: {events:?}");
    assert_eq!(events[0]["actor"], "system", "{events:?}");

    let mut items = Vec::new();
    for (i, body) in [png(1, 40_000), pdf(2, 50_000), png(3, 60_000)].into_iter().enumerate() {
        let query = format!("category={}&filename=f{i}.bin", lib.category);
        let (status, item) = status_and_json(
            post_media(&lib.teacher, &query, body.clone(), Some(content_digest(&body))).await,
        )
        .await;
        assert_eq!(status, 201, "{item}");
        items.push((item["id"].as_i64().expect("id"), sha256_hex(&body)));
    }

    // Three originals and a thumbnail per image (both sizes of a 16-pixel image are one file):
    // derived files are checked too.
    let total = blobs(&data).len();
    assert_eq!(total, 5, "{:?}", blobs(&data));

    // All intact: exit 0, progress with counts and a rate, a summary.
    let (code, out, err) = verify(&data);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&format!("[1/{total}]"))
            && err.contains(&format!("[{total}/{total}]"))
            && err.contains("MB/s"),
        "progress: {err}"
    );
    assert!(
        out.contains(&format!("Checked {total} blobs"))
            && out.contains("0 problems")
            && out.contains("All blobs are intact"),
        "{out}"
    );

    // One blob rots, one disappears.
    let (rotten_id, rotten) = items[0].clone();
    let (lost_id, lost) = items[1].clone();
    flip_byte(&blob_path(&data, &rotten), 1000);
    std::fs::remove_file(blob_path(&data, &lost)).expect("delete a blob");

    let (code, out, err) = verify(&data);
    assert_eq!(code, 1, "problems give exit 1; stdout: {out}\nstderr: {err}");
    let line_for = |hash: &str| out.lines().find(|l| l.contains(hash)).unwrap_or_default().to_string();
    let corrupt = line_for(&rotten);
    assert!(
        corrupt.starts_with("CORRUPT ") && corrupt.contains(&format!("item {rotten_id} marked damaged")),
        "{out}"
    );
    let missing = line_for(&lost);
    assert!(
        missing.starts_with("MISSING ") && missing.contains(&format!("item {lost_id} marked damaged")),
        "{out}"
    );
    assert!(line_for(&items[2].1).is_empty(), "the intact blob is not listed: {out}");
    assert!(out.contains("2 problems, 2 items marked damaged") && out.contains("backup"), "{out}");

    let events = scrub_events(&lib, 3, Duration::ZERO).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let newest = &events[0];
    assert_eq!(newest["outcome"], "failure", "{newest}");
    assert_eq!(newest["actor"], "command line", "{newest}");
    let detail = newest["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("{total} blobs")) && detail.contains("1 missing, 1 corrupt"),
        "{detail}"
    );

    // The item says so, in the API and on its page; an intact item does not.
    let item = lib.student.get_json(&format!("/api/v1/media/{rotten_id}")).await;
    let damaged = &item["damaged"];
    assert_eq!(damaged["problem"], "corrupt", "{item}");
    assert!(damaged["since"].as_i64().is_some_and(|t| t > 1_700_000_000), "{item}");
    assert!(damaged["detail"].as_str().is_some_and(|d| d.contains("SHA-256")), "{item}");
    assert_eq!(
        lib.student.get_json(&format!("/api/v1/media/{lost_id}")).await["damaged"]["problem"],
        "missing"
    );
    assert!(lib.student.get_json(&format!("/api/v1/media/{}", items[2].0)).await["damaged"].is_null());
    let student = lib.server.browser_login("stu", PASSWORD).await;
    let page = student.get(&format!("/media/{rotten_id}")).await.text().await.expect("item page");
    let since = reelbox_date(damaged["since"].as_i64().unwrap_or_default());
    assert!(
        page.contains("role=\"alert\"")
            && page.contains(&format!("The stored copy of this file failed its integrity check on {since}"))
            && page.contains("an administrator has been told; restore it from backup"),
        "{page}"
    );
    let intact = student.get(&format!("/media/{}", items[2].0)).await.text().await.expect("item page");
    assert!(!intact.contains("failed its integrity check"), "{intact}");

    // The dashboard shows the last check and its result.
    let browser = lib.server.browser_login("ada", PASSWORD).await;
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    assert!(page.contains("No backup target is configured"), "a server without backups says so: {page}");
    assert!(
        page.contains("Last integrity check: ") && page.contains(&format!(", {total} blobs, 2 problems")),
        "{page}"
    );

    // Restore both from "a backup": clean again, exit 0, and the dashboard follows.
    std::fs::remove_file(blob_path(&data, &rotten)).expect("remove the rotten copy");
    let restore = |hash: &str, body: Vec<u8>| {
        let path = blob_path(&data, hash);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, body).expect("restore blob");
    };
    restore(&rotten, png(1, 40_000));
    restore(&lost, pdf(2, 50_000));
    let (code, out, err) = verify(&data);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let page = browser.get("/admin").await.text().await.expect("dashboard");
    assert!(page.contains(&format!(", {total} blobs, 0 problems")), "{page}");
    assert!(lib.student.get_json(&format!("/api/v1/media/{rotten_id}")).await["damaged"].is_null());
    let page = student.get(&format!("/media/{rotten_id}")).await.text().await.expect("item page");
    assert!(!page.contains("failed its integrity check"), "the warning goes with the mark");

    // A restart does not bring the weekly scrub forward.
    let lib = lib.restart(dir.path());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = scrub_events(&lib, 0, Duration::ZERO).await;
    assert_eq!(events.len(), 4, "no scheduled scrub after a restart within the week: {events:?}");
}

#[test]
fn verify_without_a_data_directory_cannot_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = verify(&dir.path().join("nothing-here"));
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("holds no reelbox database") && err.contains("--data"), "{err}");
    assert!(!dir.path().join("nothing-here").exists(), "verify creates nothing");
}

/// How pages show a time: `2026-11-25 15:41:32 UTC`.
fn reelbox_date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
