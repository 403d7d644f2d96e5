//! What happens when the input is wrong: broken configuration, oversized or malformed requests,
//! a database from a newer version, a data directory that cannot be written, a full disk, and
//! command-line mistakes. Each must end with a clear message, never with damage.

mod common;

use common::Mount;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{PASSWORD, Server, add_user_in, header, http, reelbox, run_cli, text};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write file");
    path
}

fn config_show(config: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = reelbox();
    cmd.args(["config", "show", "--config"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run config show")
}

#[test]
fn broken_configuration_is_refused_with_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let malformed = write(dir.path(), "malformed.toml", "listen = \n[[[");
    let out = config_show(&malformed, &[]);
    assert!(!out.status.success(), "malformed TOML refused");
    let err = text(&out.stderr);
    assert!(err.contains(&malformed.display().to_string()), "names the file: {err}");

    let typo = write(dir.path(), "typo.toml", "[sessions]\nidle_timout_minutes = 30\n");
    let out = config_show(&typo, &[]);
    assert!(!out.status.success(), "unknown key refused");
    let err = text(&out.stderr);
    assert!(err.contains(&typo.display().to_string()), "names the file: {err}");
    assert!(err.contains("idle_timout_minutes"), "names the key: {err}");
    assert!(err.contains("idle_timeout_minutes"), "lists what is allowed: {err}");

    let good = write(dir.path(), "good.toml", "school_name = \"Hillside\"\n");
    let out = config_show(&good, &[("REELBOX_NOPE", "1")]);
    assert!(!out.status.success(), "unknown environment variable refused");
    let err = text(&out.stderr);
    assert!(err.to_lowercase().contains("nope"), "names the variable: {err}");

    let out = config_show(&good, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Hillside"));
}

#[test]
fn config_show_redacts_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = write(dir.path(), "metrics-token", "s3cr3t-scrape-token-value\n");
    let cfg =
        write(dir.path(), "reelbox.toml", &format!("[metrics]\ntoken_file = \"{}\"\n", secret.display()));
    let out = config_show(&cfg, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains("s3cr3t"), "the secret is not printed: {shown}");
    assert!(shown.contains("<redacted>"), "its presence is: {shown}");
    assert!(!text(&out.stderr).contains("s3cr3t"));

    let missing = write(dir.path(), "missing.toml", "[metrics]\ntoken_file = \"/nonexistent/token\"\n");
    let out = config_show(&missing, &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/token"), "{}", text(&out.stderr));
}

async fn admin_server() -> (Server, common::Api) {
    let server = Server::start();
    server.add_user("root", true);
    let admin = server.api(&server.token("root"));
    (server, admin)
}

async fn problem(res: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(header(res.headers(), "content-type"), "application/problem+json");
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_clear_answers() {
    let (server, admin) = admin_server().await;
    let post = |body: Vec<u8>| {
        admin
            .client
            .post(admin.url("/api/v1/groups"))
            .bearer_auth(&admin.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(300 * 1024)).into_bytes();
    let body = problem(post(big).await.expect("POST"), StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["code"], "body-too-large", "{body}");

    let body = problem(post(b"{\"name\": ".to_vec()).await.expect("POST"), StatusCode::BAD_REQUEST).await;
    assert_eq!(body["code"], "bad-request", "{body}");

    let mut invalid = b"{\"name\": \"caf".to_vec();
    invalid.extend([0xff, 0xfe]);
    invalid.extend(b"\"}");
    let body = problem(post(invalid).await.expect("POST"), StatusCode::BAD_REQUEST).await;
    assert_eq!(body["code"], "bad-request", "{body}");

    let body = problem(
        post(b"{\"name\": \"x\", \"colour\": 1}".to_vec()).await.expect("POST"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("colour")), "names the unknown field: {body}");

    // A form with bytes that are not UTF-8: refused or decoded, but never a server error.
    let amy = server.browser_login("root", PASSWORD).await;
    let mut form = b"name=caf".to_vec();
    form.extend([0xff, 0xfe]);
    form.extend(format!("&csrf={}", amy.csrf).as_bytes());
    let res = amy
        .client
        .post(amy.url("/account/tokens"))
        .header("Origin", &amy.base)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("POST form");
    let status = res.status();
    let page = res.text().await.expect("page");
    assert!(status.is_success() || status == StatusCode::BAD_REQUEST, "{status}: {page}");
    assert!(page.contains("<html"), "an HTML answer: {page}");

    // Still serving, and nothing was created by the refused calls.
    let groups = admin.get_json("/api/v1/groups").await;
    assert_eq!(groups, json!([]), "{groups}");
    assert_eq!(http().get(server.url("/healthz")).send().await.expect("GET").status(), StatusCode::OK);
}

/// actix-http accepts a request head of up to 128 KiB (its fixed `MAX_BUFFER_SIZE`); beyond
/// that it answers 431 itself, before any of our code runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_cleanly() {
    let (server, admin) = admin_server().await;
    let res = http().get(server.url("/healthz")).header("X-Filler", "a".repeat(64 * 1024)).send().await;
    assert_eq!(res.expect("a 64 KiB header is within actix's limit").status(), StatusCode::OK);
    let res = http().get(server.url("/healthz")).header("X-Filler", "a".repeat(200 * 1024)).send().await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        // The server may close the connection while the client is still sending the head.
        Err(e) => assert!(e.is_request(), "the connection was closed: {e}"),
    }
    assert_eq!(admin.get("/api/v1/me").await.status(), StatusCode::OK, "still serving");
}

#[test]
fn a_newer_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    assert!(add_user_in(&data, "root", PASSWORD, true).status.success());
    let db = data.join("reelbox.db");
    {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.pragma_update(None, "user_version", 999).expect("set user_version");
    }
    let before = std::fs::read(&db).expect("read db");
    let out = reelbox()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .expect("run serve");
    assert!(!out.status.success(), "serve refuses a newer database");
    let err = text(&out.stderr);
    assert!(err.contains("newer"), "says why: {err}");
    assert!(err.contains("reelbox.db"), "names the file: {err}");
    assert_eq!(std::fs::read(&db).expect("read db"), before, "the file is byte for byte unchanged");
    assert!(
        !data.join("reelbox.db-wal").exists()
            || std::fs::metadata(data.join("reelbox.db-wal")).map(|m| m.len()).unwrap_or(0) == 0
    );
}

#[test]
fn an_unwritable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A path below a regular file can never be created, whoever runs the test.
    let file = write(dir.path(), "file.txt", "not a directory");
    let below_file = file.join("data");
    for args in
        [vec!["serve", "--listen", "127.0.0.1:0"], vec!["user", "add", "--username", "x", "--password-stdin"]]
    {
        let mut full: Vec<&str> = args.clone();
        full.extend(["--data", below_file.to_str().expect("utf-8")]);
        let out = run_cli(&full, &format!("{PASSWORD}\n"));
        assert!(!out.status.success(), "{args:?} fails");
        let err = text(&out.stderr);
        assert!(err.contains("cannot create data directory") && err.contains("file.txt"), "{args:?}: {err}");
    }

    // A read-only filesystem (root ignores permission bits, so mount one).
    let ro = dir.path().join("ro");
    let _mount = Mount::tmpfs(&ro, "size=1m,ro");
    let out = run_cli(&["serve", "--listen", "127.0.0.1:0", "--data", ro.to_str().expect("utf-8")], "");
    assert!(!out.status.success(), "serve fails on a read-only data directory");
    let err = text(&out.stderr);
    assert!(err.contains("not writable") && err.contains(ro.to_str().expect("utf-8")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_keeps_earlier_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let _mount = Mount::tmpfs(&data, "size=4m");
    assert!(add_user_in(&data, "root", PASSWORD, true).status.success());
    let server = Server::start_with(&data, dir.path(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let admin = server.api(&server.token("root"));
    admin.call(Method::POST, "/api/v1/groups", Some(&json!({"name": "before the disk filled"})), 201).await;

    // Fill the filesystem to the last byte.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
        let _ = f.sync_all();
    }
    let mut answers = Vec::new();
    for i in 0..5 {
        let body = json!({"name": format!("while full {i}"), "description": "x".repeat(8 * 1024)});
        let res = admin.send(Method::POST, "/api/v1/groups", Some(&body)).await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        answers.push((status, text));
        if status != StatusCode::CREATED {
            break;
        }
    }
    let (status, body) = answers.last().cloned().expect("an answer");
    assert_eq!(
        status,
        StatusCode::INSUFFICIENT_STORAGE,
        "a write on a full disk is refused with 507: {answers:?}"
    );
    assert!(body.contains("\"code\":\"disk-full\""), "{body}");
    assert!(body.contains("disk is full"), "the message says the disk is full: {body}");

    std::fs::remove_file(&filler).expect("free space");
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.call(Method::POST, "/api/v1/groups", Some(&json!({"name": "after freeing space"})), 201).await;
    let names: Vec<String> = admin
        .get_json("/api/v1/groups")
        .await
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|g| g["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.contains(&"before the disk filled".to_string()), "{names:?}");
    assert!(names.contains(&"after freeing space".to_string()), "{names:?}");
    let check = rusqlite::Connection::open(data.join("reelbox.db")).expect("open");
    let ok: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity check");
    assert_eq!(ok, "ok");
}

#[test]
fn command_line_mistakes_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    assert!(add_user_in(&data, "amy", PASSWORD, false).status.success());
    let out = add_user_in(&data, "amy", PASSWORD, false);
    assert!(!out.status.success(), "duplicate user refused");
    assert!(text(&out.stderr).contains("already taken"), "{}", text(&out.stderr));

    let out = add_user_in(&data, "ben", "short", false);
    assert!(!out.status.success(), "weak password refused");
    assert!(text(&out.stderr).contains("at least 12"), "{}", text(&out.stderr));

    let d = data.to_str().expect("utf-8");
    let out = run_cli(&["token", "create", "--data", d, "--username", "nobody"], "");
    assert!(!out.status.success(), "token for an unknown person refused");
    assert!(text(&out.stderr).contains("no account called"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim().is_empty(), "nothing that looks like a token is printed");
}

#[test]
fn doctor_fails_with_a_fix_when_ffmpeg_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_path = dir.path().join("bin");
    std::fs::create_dir_all(&empty_path).expect("empty PATH dir");
    let out = reelbox()
        .args(["doctor", "--data"])
        .arg(dir.path().join("data"))
        .env("PATH", &empty_path)
        .output()
        .expect("run doctor");
    assert!(!out.status.success(), "doctor exits non-zero when a check fails");
    let report = text(&out.stdout);
    let ffmpeg = report.lines().find(|l| l.contains("ffmpeg")).unwrap_or_else(|| panic!("{report}"));
    assert!(ffmpeg.contains("FAIL"), "{report}");
    assert!(report.contains("fix: install it: apt install ffmpeg"), "{report}");
}
