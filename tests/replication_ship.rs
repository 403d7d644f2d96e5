//! WAL shipping against the real binary and real files: a write workload through the API with
//! shipping on, restores at many instants, kill -9 at random points, a damaged record.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, run_cli, text};
use rand::Rng;
use reqwest::Method;
use serde_json::json;

fn start(data: &Path, logs: &Path, backup: &Path) -> Server {
    let backup = backup.to_path_buf();
    Server::start_with(data, logs, move |c| {
        c.arg("--backup-dir").arg(&backup);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn checksum(db: &Path) -> String {
    let out = run_cli(&["backup", "checksum", "--db", db.to_str().expect("utf-8")], "");
    assert!(out.status.success(), "checksum: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn restore(backup: &Path, at: Option<&str>, out: &Path) -> std::process::Output {
    let mut args =
        vec!["restore", "--from", backup.to_str().expect("utf-8"), "--output", out.to_str().expect("utf-8")];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    run_cli(&args, "")
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Restore the latest state until it equals `want` (the uploader may be a moment behind).
fn restore_latest_until(backup: &Path, out: &Path, want: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        let _ = std::fs::remove_file(out);
        let r = restore(backup, None, out);
        if r.status.success() {
            let got = checksum(out);
            if got == want {
                return;
            }
            last = got;
        } else {
            last = text(&r.stderr);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("restore of the latest state never matched the live database: {last}");
}

/// Reload the administrator's dashboard until it `shows` (or no longer shows) `text`, for up
/// to 30 s; `failure` and the last page are the panic otherwise.
async fn dashboard_until(browser: &common::Browser, text: &str, shows: bool, failure: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = browser.get("/admin").await.text().await.expect("dashboard");
        if page.contains(text) == shows {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{failure}: {page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn category_names(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).expect("open");
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(ok, "ok", "{}", db.display());
    let mut s = c.prepare("SELECT name FROM categories").expect("prepare");
    s.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_at_every_instant_equals_the_state_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (dir.path().join("data"), dir.path().join("backup"));
    let server = start(&data, dir.path(), &backup);
    server.add_user("admin", true);
    server.add_user("stu", false);
    let api = server.api(&server.token("admin"));
    let db = data.join("reelbox.db");
    let mut rng = rand::rng();
    let mut cats: Vec<i64> = Vec::new();
    let mut instants: Vec<(i64, String)> = Vec::new();
    for round in 0..14 {
        for op in 0..rng.random_range(1..6) {
            let pick = rng.random_range(0..10);
            if cats.is_empty() || pick < 4 {
                let body = json!({"name": format!("Cat {round}-{op}"), "description": "x".repeat(rng.random_range(0..3000))});
                let c = api.call(Method::POST, "/api/v1/categories", Some(&body), 201).await;
                cats.push(c["id"].as_i64().expect("id"));
            } else if pick < 7 {
                let id = cats[rng.random_range(0..cats.len())];
                let body = json!({"name": format!("Renamed {round}-{op}")});
                api.call(Method::PATCH, &format!("/api/v1/categories/{id}"), Some(&body), 200).await;
            } else if pick < 9 {
                let id = cats[rng.random_range(0..cats.len())];
                let grants = json!([{"username": "stu", "role": if pick == 7 { "view" } else { "edit" }}]);
                api.call(Method::PUT, &format!("/api/v1/categories/{id}/grants"), Some(&grants), 204).await;
            } else {
                let id = cats.swap_remove(rng.random_range(0..cats.len()));
                api.call(Method::DELETE, &format!("/api/v1/categories/{id}"), None, 204).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let at = chrono::Utc::now().timestamp_millis();
        instants.push((at, checksum(&db)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = checksum(&db);
    restore_latest_until(&backup, &dir.path().join("latest.db"), &live);
    // Small records merged into larger ones (what the hourly pass does): every instant restores
    // the same from fewer files.
    let target = reelbox::replication::target::open_dir(&backup).expect("target");
    let before = walk(&backup).iter().filter(|p| p.extension().is_some_and(|e| e == "rec")).count();
    let merged = reelbox::replication::compact::compact(&target, 1 << 20).await.expect("compact");
    let after = walk(&backup).iter().filter(|p| p.extension().is_some_and(|e| e == "rec")).count();
    assert!(merged.written >= 1 && after < before, "{merged:?}: {before} -> {after} record files");
    for (i, (at, want)) in instants.iter().enumerate() {
        let out = dir.path().join(format!("at-{i}.db"));
        let r = restore(&backup, Some(&rfc3339(*at)), &out);
        assert!(r.status.success(), "restore at {}: {}", rfc3339(*at), text(&r.stderr));
        assert_eq!(&checksum(&out), want, "restore at instant {i} ({})", rfc3339(*at));
    }
    let listed = run_cli(&["backup", "list", "--from", backup.to_str().expect("utf-8")], "");
    assert!(
        listed.status.success() && text(&listed.stdout).contains("generation"),
        "{}",
        text(&listed.stdout)
    );

    // A damaged record stops the restore, naming the file and the last good point.
    let records: Vec<PathBuf> =
        walk(&backup).into_iter().filter(|p| p.extension().is_some_and(|e| e == "rec")).collect();
    let victim = records.iter().max().expect("records in the target").clone();
    let mut bytes = std::fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, bytes).expect("damage");
    let out = dir.path().join("damaged.db");
    let r = restore(&backup, None, &out);
    let err = text(&r.stderr);
    assert!(!r.status.success(), "{err}");
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(err.contains(name) && err.contains("last good point"), "{err}");
    assert!(!out.exists(), "nothing half-restored is left");

    // So does a damaged snapshot (streamed from the target into the decoder).
    let snapshots: Vec<PathBuf> =
        walk(&backup).into_iter().filter(|p| p.to_string_lossy().ends_with(".db.zst")).collect();
    for victim in &snapshots {
        let mut bytes = std::fs::read(victim).expect("read");
        let mid = bytes.len() / 2 + 7;
        bytes[mid] ^= 0x55;
        std::fs::write(victim, bytes).expect("damage");
    }
    let r = restore(&backup, None, &out);
    let err = text(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(err.contains(".db.zst"), "names the snapshot: {err}");
    assert!(!out.exists(), "nothing half-restored is left");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("damaged.db"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_no_acknowledged_transaction() {
    let iterations: usize =
        std::env::var("REELBOX_KILL_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (dir.path().join("data"), dir.path().join("backup"));
    let mut acknowledged: Vec<String> = Vec::new();
    let mut token = None;
    let mut rng = rand::rng();
    for i in 0..iterations {
        let server = start(&data, dir.path(), &backup);
        if token.is_none() {
            server.add_user("admin", true);
            token = Some(server.token("admin"));
        }
        let client = reqwest::Client::new();
        let url = server.url("/api/v1/categories");
        let bearer = token.clone().expect("token");
        let kill_after = Duration::from_millis(rng.random_range(0..400));
        let pid = server.pid();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        for j in 0..1000 {
            let name = format!("K{i}-{j}");
            let body = json!({"name": name, "description": "y".repeat(500)});
            match client.post(&url).bearer_auth(&bearer).json(&body).send().await {
                Ok(res) if res.status().as_u16() == 201 => acknowledged.push(name),
                _ => break,
            }
        }
        killer.join().expect("killer");
        drop(server);
    }
    // After a last start the shipper catches up; everything acknowledged is local and restorable.
    let mut server = start(&data, dir.path(), &backup);
    let live = data.join("reelbox.db");
    let local = category_names(&live);
    let missing: Vec<&String> = acknowledged.iter().filter(|n| !local.contains(n)).collect();
    assert!(missing.is_empty(), "lost locally: {missing:?}");
    let want = checksum(&live);
    restore_latest_until(&backup, &dir.path().join("restored.db"), &want);
    let restored = category_names(&dir.path().join("restored.db"));
    assert!(acknowledged.iter().all(|n| restored.contains(n)), "every acknowledged write is in the restore");
    assert!(acknowledged.len() > iterations, "the workload wrote something ({})", acknowledged.len());
    assert!(server.stop_gracefully().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_writes_and_checkpoint_start_a_new_generation_and_restores_stay_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (dir.path().join("data"), dir.path().join("backup"));
    let db = data.join("reelbox.db");
    let mut server = start(&data, dir.path(), &backup);
    server.add_user("admin", true);
    let token = server.token("admin");
    let api = server.api(&token);
    api.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Before"})), 201).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_at = chrono::Utc::now().timestamp_millis();
    let before = checksum(&db);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(server.stop_gracefully().success());

    // Someone writes and checkpoints (resetting the WAL) while reelbox is stopped.
    {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch(
            "INSERT INTO categories (name, description, public, created_at) VALUES ('Outside', '', 0, 0);
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .expect("outside write");
    }
    let server = start(&data, dir.path(), &backup);
    let api = server.api(&token);
    api.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "After"})), 201).await;
    let live = checksum(&db);
    restore_latest_until(&backup, &dir.path().join("latest.db"), &live);
    let names = category_names(&dir.path().join("latest.db"));
    assert!(["Before", "Outside", "After"].iter().all(|n| names.iter().any(|x| x == n)), "{names:?}");
    let listed = text(&run_cli(&["backup", "list", "--from", backup.to_str().expect("utf-8")], "").stdout);
    assert!(listed.matches("generation ").count() >= 2, "a new generation: {listed}");
    let out = dir.path().join("before.db");
    let r = restore(&backup, Some(&rfc3339(before_at)), &out);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(checksum(&out), before, "restore across the generation boundary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_target_raises_the_alarm_and_catches_up_when_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (dir.path().join("data"), dir.path().join("backup"));
    let server = start(&data, dir.path(), &backup);
    server.add_user("admin", true);
    let api = server.api(&server.token("admin"));
    api.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Before"})), 201).await;
    let browser = server.browser_login("admin", common::PASSWORD).await;

    // The target goes away (the volume is unmounted): a file where the directory was, so every
    // write to it fails. Work goes on; the dashboard raises the alarm.
    let away = dir.path().join("backup-away");
    std::fs::rename(&backup, &away).expect("take the target away");
    std::fs::write(&backup, b"not a directory").expect("block the target");
    for i in 0..5 {
        let body = json!({"name": format!("While offline {i}")});
        api.call(Method::POST, "/api/v1/categories", Some(&body), 201).await;
    }
    dashboard_until(&browser, "The backup target is failing", true, "no alarm on the dashboard").await;

    // Back: the spool kept everything; the target catches up and restores to the live state.
    std::fs::remove_file(&backup).expect("unblock");
    std::fs::rename(&away, &backup).expect("the target is back");
    let live = checksum(&data.join("reelbox.db"));
    let out = dir.path().join("restored.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = std::fs::remove_file(&out);
        let r = restore(&backup, None, &out);
        if r.status.success() && checksum(&out) == live {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the target never caught up: {}", text(&r.stderr));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let names = category_names(&out);
    for i in 0..5 {
        assert!(names.contains(&format!("While offline {i}")), "{names:?}");
    }
    dashboard_until(
        &browser,
        "The backup target is failing",
        false,
        "the alarm stays after the target came back",
    )
    .await;
}

/// The backup target is emptied behind the server's back (a bucket lifecycle rule, a blank
/// volume). The server notices that its newest snapshot is gone, starts again from a full
/// snapshot, says so on the dashboard, and the target restores the live state again — including
/// everything written before the loss.
#[tokio::test]
async fn a_target_that_lost_its_history_gets_a_new_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (dir.path().join("data"), dir.path().join("backup"));
    let server = Server::start_with(&data, dir.path(), |c| {
        c.arg("--backup-dir").arg(&backup).env("REELBOX_REPLICATION__TARGET_CHECK_SECONDS", "1");
    })
    .unwrap_or_else(|e| panic!("{e}"));
    server.add_user("admin", true);
    let api = server.api(&server.token("admin"));
    api.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Before the loss"})), 201).await;
    let out = dir.path().join("restored.db");
    restore_latest_until(&backup, &out, &checksum(&data.join("reelbox.db")));

    // Everything the target held goes; the directory stays, empty, as a wiped bucket would.
    for entry in std::fs::read_dir(&backup).expect("backup dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("wipe");
        } else {
            std::fs::remove_file(&path).expect("wipe");
        }
    }
    let _ = std::fs::remove_file(&out);
    assert!(!restore(&backup, None, &out).status.success(), "an empty target cannot restore");
    api.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "After the loss"})), 201).await;

    let browser = server.browser_login("admin", common::PASSWORD).await;
    dashboard_until(&browser, "lost the database history", true, "no word of the loss on the dashboard")
        .await;
    let live = checksum(&data.join("reelbox.db"));
    restore_latest_until(&backup, &out, &live);
    let names = category_names(&out);
    for name in ["Before the loss", "After the loss"] {
        assert!(names.contains(&name.to_string()), "{name} missing from the restore: {names:?}");
    }
}

/// Shutdown right after a burst of writes, with the shipper still shipping and checkpointing: it
/// takes its core and then the writer to checkpoint, so closing must not join it while holding
/// the writer (this hung).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_while_writes_and_checkpoints_run_does_not_hang() {
    use reelbox::db::{Db, DbError};
    use reelbox::replication::{Shipper, target};
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), 2).expect("open");
        db.write_blocking(|c| {
            c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").map_err(DbError::from)
        })
        .expect("table");
        let target = target::open_dir(&dir.path().join("target")).expect("target");
        let cfg = reelbox::config::ReplicationConfig::default();
        let shipper = Shipper::start(db.clone(), dir.path(), Some(target), &cfg).await.expect("shipper");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let _ = db.write_blocking(|c| {
                        c.execute("INSERT INTO t (v) VALUES (?1)", ["x".repeat(200)]).map_err(DbError::from)
                    });
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(300 + 200 * round)).await;
        // As at a server's shutdown: the last write, then at once the close, while the shipper
        // is still working through the backlog.
        stop.store(true, std::sync::atomic::Ordering::Release);
        let _ = writer.join();
        let (tx, rx) = std::sync::mpsc::channel();
        let closer = {
            let db = db.clone();
            std::thread::spawn(move || {
                shipper.close(&db);
                let _ = tx.send(());
            })
        };
        let closed = rx.recv_timeout(Duration::from_secs(30));
        assert!(closed.is_ok(), "round {round}: closing the shipper hung");
        let _ = closer.join();
    }
}
