//! `kill -9` of the server in the middle of a transcode: what was published before is whole
//! (nothing partial at a published path), and after the restart the job resumes — the rungs
//! already published are kept — and the item ends `ready`. SIGTERM in the middle of a
//! transcode: the server stops promptly, ffmpeg with it, and the job waits in the queue.

mod common;
mod transcode_support;

use std::time::{Duration, Instant};

use transcode_support::*;

/// Every rung the master lists is complete and decodes; no rung directory is unlisted.
fn published_is_whole(site: &Site, id: i64) -> Vec<String> {
    let hls = site.media(id).join("hls");
    let master = std::fs::read_to_string(hls.join("master.m3u8")).expect("master after the first rung");
    let listed: Vec<String> = master_rungs(&master).into_iter().map(|r| r.0).collect();
    for name in &listed {
        check_rung(&hls.join(name));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&hls)
        .expect("hls dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted, "every rung directory is complete and listed");
    listed
}

/// A 10 s 720p MPEG-4 Part 2 clip: no remux, every rung encoded, several seconds of work.
fn long_clip(dir: &std::path::Path) -> std::path::PathBuf {
    clip(
        dir,
        "assembly.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=10",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=10",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

/// Processes (pid, cmdline) whose parent is `parent` or whose command line mentions `needle`.
fn processes_of(parent: u32, needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()) {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid …": the comm may hold spaces, so split after the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()) == Some("Z");
        if !zombie && (ppid == Some(&parent.to_string()) || cmdline.contains(needle)) {
            found.push((pid, cmdline));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_transcode_stops_ffmpeg_and_requeues_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut site = Site::start(dir.path()).await;
    let src = long_clip(dir.path());
    let id = site.upload(&src).await;
    let data = site.data();
    let needle = data.to_str().expect("utf-8 path").to_string();
    let server_pid = site.server.pid();
    // Wait until ffmpeg is converting (progress reported, an ffmpeg child running).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item = site.item(id).await;
        assert_ne!(item["status"], "ready", "finished before it could be interrupted: {item}");
        let ffmpeg = processes_of(server_pid, &needle).iter().any(|(_, c)| c.contains("ffmpeg"));
        if ffmpeg && item["transcode_state"] == "running" && item["progress"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw ffmpeg at work: {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let asked = Instant::now();
    let status = site.server.terminate(Duration::from_secs(5));
    let took = asked.elapsed();
    let status =
        status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", site.server.stderr()));
    assert!(status.success(), "exit {status}: {}", site.server.stderr());
    eprintln!("stopped {took:?} after SIGTERM");
    let left = processes_of(server_pid, &needle);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert_eq!(
        site.query_i64(
            "SELECT state = 'queued' AND worker IS NULL FROM transcode_jobs WHERE media_id = ?1",
            id
        ),
        1,
        "the job is back in the queue"
    );
    assert!(site.server.stderr().contains("stopped for shutdown"), "{}", site.server.stderr());

    let site = site.restart(dir.path());
    let (item, _) = site.finished(id, Duration::from_secs(240)).await;
    assert_eq!(item["status"], "ready", "{item}");
    check_video(&site, id, &item, 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_transcode_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(dir.path()).await;
    // MPEG-4 Part 2: no remux, every rung encoded; long enough to be caught in the middle.
    let src = long_clip(dir.path());
    let id = site.upload(&src).await;
    // Wait for the first rung to be published and the second pass to be under way.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item = site.item(id).await;
        assert_ne!(item["status"], "ready", "finished before it could be interrupted: {item}");
        if item["playable"] == true
            && item["transcode_state"] == "running"
            && item["progress"].as_u64() > Some(15)
        {
            assert_eq!(item["status"], "processing");
            break;
        }
        assert!(Instant::now() < deadline, "never reached the second pass: {item}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_published =
        site.query_i64("SELECT published_at FROM media_rungs WHERE media_id = ?1 AND name = '240p'", id);

    let site = site.restart(dir.path());
    let listed = published_is_whole(&site, id);
    assert_eq!(listed, ["240p"], "only the first rung was published before the crash");
    let item = site.item(id).await;
    assert_eq!(item["playable"], true, "still playable after the restart: {item}");

    let (item, _) = site.finished(id, Duration::from_secs(240)).await;
    assert_eq!(item["status"], "ready", "{item}");
    let rungs = check_video(&site, id, &item, 10.0);
    assert_eq!(rungs.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["720p", "480p", "360p", "240p"]);
    published_is_whole(&site, id);
    assert_eq!(
        site.query_i64("SELECT published_at FROM media_rungs WHERE media_id = ?1 AND name = '240p'", id),
        first_published,
        "the rung published before the crash was kept, not made again"
    );
    assert_eq!(site.query_i64("SELECT attempts FROM transcode_jobs WHERE media_id = ?1", id), 2);
}
