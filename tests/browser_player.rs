//! The player in a real browser (Chromium through chromedriver) against the real server: a
//! teacher uploads a short real video through the API and adds SubRip captions; a student opens
//! the item page, starts it with the Play button, the video's `currentTime` advances, the `c`
//! key turns captions on and a cue shows (`textTracks[0].activeCues`), `l` skips ahead, and
//! the position is saved for next time. The same player plays inside `/embed/{id}`.
//!
//! The renditions are made by the real transcoder (ffmpeg) from the upload, end to end.
//!
//! Needs Debian's `chromium` and `chromium-driver` and `ffmpeg`; without them the test fails
//! and says what is missing.

#[allow(dead_code)]
mod browser_support;
mod common;
#[path = "ingest_support/mod.rs"]
mod ingest_support;
#[path = "playback_support/mod.rs"]
mod playback_support;

use std::time::{Duration, Instant};

use browser_support::webdriver::{Browser, Result};
use browser_support::{ChromeDriver, artifacts_dir, require_tool};
use common::{PASSWORD, Server};
use reqwest::Method;
use serde_json::{Value, json};

const MEDIA: &str = "return document.querySelector('.player-media')";

async fn number(b: &Browser, expr: &str) -> Result<f64> {
    let v = b
        .execute(&format!("const m = document.querySelector('.player-media'); return {expr};"), vec![])
        .await?;
    v.as_f64().ok_or_else(|| format!("{expr} is not a number: {v}"))
}

async fn wait_until(b: &Browser, what: &str, script: &str, secs: u64) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = b.execute(script, vec![]).await?;
        if !v.is_null() && v != Value::Bool(false) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            let state = b
                .execute(
                    "const m = document.querySelector('.player-media'); const p = document.getElementById('player');
                     return {engine: p && p.dataset.engine, time: m && m.currentTime, ready: m && m.readyState,
                             error: m && m.error && m.error.message, paused: m && m.paused,
                             shown: document.querySelector('.player-error-text') && document.querySelector('.player-error-text').textContent};",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            return Err(format!("timed out waiting for {what}; player state: {state}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_student_watches_with_captions_and_keys() {
    let chromedriver = require_tool("REELBOX_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver");
    let chromium = require_tool("REELBOX_CHROMIUM", "/usr/bin/chromium", "chromium");
    let dir = artifacts_dir();
    println!("screenshots and logs: {}", dir.display());
    let files = tempfile::tempdir().expect("tempdir");

    let server = Server::start_with(&files.path().join("data"), files.path(), common::with_ffmpeg)
        .unwrap_or_else(|e| panic!("{e}"));
    for (name, admin) in [("ada", true), ("tess", false), ("stu", false)] {
        server.add_user(name, admin);
    }
    let admin = server.api(&server.token("ada"));
    let teacher = server.api(&server.token("tess"));
    let category =
        admin.call(Method::POST, "/api/v1/categories", Some(&json!({"name": "Science"})), 201).await["id"]
            .as_i64()
            .expect("category id");
    let grants = json!([{"username": "tess", "role": "contribute"}, {"username": "stu", "role": "view"}]);
    admin.call(Method::PUT, &format!("/api/v1/categories/{category}/grants"), Some(&grants), 204).await;

    let clip = playback_support::clip(files.path(), 20);
    let res = ingest_support::post_media(
        &teacher,
        &format!("category={category}&filename=forces.mp4&title=Forces"),
        clip.clone(),
        Some(ingest_support::content_digest(&clip)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201, "upload");
    let id = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    // The real transcoder makes the renditions; the player needs them published.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item = teacher.get_json(&format!("/api/v1/media/{id}")).await;
        if item["playable"] == true {
            break;
        }
        assert!(item["error"].is_null(), "the transcoder failed: {item}");
        assert!(Instant::now() < deadline, "not playable after 180 s: {item}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let srt = playback_support::srt(20, "Caption second");
    let res = teacher
        .client
        .post(teacher.url(&format!("/api/v1/media/{id}/captions?lang=en")))
        .bearer_auth(&teacher.token)
        .body(srt)
        .send()
        .await
        .expect("captions");
    assert_eq!(res.status().as_u16(), 201, "captions");

    let driver =
        ChromeDriver::start(&chromedriver, &dir.join("chromedriver.log")).await.expect("chromedriver");
    let browser = Browser::start(&driver.url, &chromium, "student", &server.base).await.expect("Chromium");
    let outcome = scenario(&browser, id).await;
    if outcome.is_err() {
        let _ = browser.screenshot(&dir.join("failure.png")).await;
    }
    if let Err(e) = browser.quit().await {
        println!("the browser did not close cleanly: {e}");
    }
    drop(driver);
    if let Err(e) = outcome {
        panic!("{e}\n(screenshots and chromedriver.log are in {})", dir.display());
    }
}

async fn scenario(b: &Browser, id: i64) -> Result<()> {
    b.goto("/login").await?;
    b.fill("#username", "stu").await?;
    b.fill("#password", PASSWORD).await?;
    b.click_button("Sign in").await?;
    b.wait_for_path("/", |p| p == "/").await?;

    b.goto(&format!("/media/{id}")).await?;
    let engine = wait_until(
        b,
        "the player to choose an engine",
        "return document.getElementById('player').dataset.engine || null;",
        15,
    )
    .await?;
    if !matches!(engine.as_str(), Some("mse" | "native")) {
        return Err(format!("Chromium should play our HLS (MSE or native), not {engine}"));
    }
    wait_until(b, "the quality menu to list the rung", "return document.querySelector('.player-quality option[value=\"0\"]') ? document.querySelector('.player-quality').textContent : null;", 15).await
        .or_else(|e| if engine == "native" { Ok(Value::Null) } else { Err(e) })?;
    b.execute(&format!("{MEDIA}.muted = true;"), vec![]).await?;

    // A person presses Play; time must move.
    let play = b.find(".player-play").await?;
    b.click(&play).await?;
    wait_until(
        b,
        "currentTime to pass 1.5 s",
        "return document.querySelector('.player-media').currentTime > 1.5;",
        30,
    )
    .await?;
    let label = b.attr(&play, "aria-label").await?;
    if label.as_deref() != Some("Pause") {
        return Err(format!("the Play button should now say Pause, says {label:?}"));
    }

    // `c` turns the captions on; a cue is active and says what second it is.
    b.press_key("c").await?;
    let cue = wait_until(
        b,
        "a caption cue to show",
        "const t = document.querySelector('.player-media').textTracks[0];
         return t && t.mode === 'showing' && t.activeCues && t.activeCues.length ? t.activeCues[0].text : null;",
        15,
    )
    .await?;
    if !cue.as_str().is_some_and(|c| c.starts_with("Caption second")) {
        return Err(format!("unexpected cue {cue}"));
    }
    let chosen = b.execute("return document.querySelector('.player-captions').value;", vec![]).await?;
    if chosen != "0" {
        return Err(format!("the captions menu should show the chosen track, shows {chosen}"));
    }

    // `l` skips ten seconds ahead; `k` pauses; the position is saved for next time.
    let before = number(b, "m.currentTime").await?;
    b.press_key("l").await?;
    let after = number(b, "m.currentTime").await?;
    if after < before + 9.0 {
        return Err(format!("`l` should skip 10 s: {before} → {after}"));
    }
    b.press_key("k").await?;
    wait_until(b, "the video to pause", "return document.querySelector('.player-media').paused;", 5).await?;
    let stopped = number(b, "m.currentTime").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Reload: the server renders where this person stopped into the player.
        b.refresh().await?;
        let resume = b
            .execute("return parseFloat(document.getElementById('player').dataset.resume);", vec![])
            .await?;
        if resume.as_f64().is_some_and(|r| (r - stopped).abs() < 1.5) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("position {stopped} was not saved; the page resumes at {resume}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // …and the player starts there again.
    wait_until(
        b,
        "the player to resume",
        &format!("return document.querySelector('.player-media').currentTime > {};", stopped - 1.5),
        15,
    )
    .await?;

    // The embed page plays the same way (the same session, as on a site of the same school).
    b.goto(&format!("/embed/{id}")).await?;
    wait_until(
        b,
        "the embedded player",
        "return document.getElementById('player').dataset.engine || null;",
        15,
    )
    .await?;
    b.execute(&format!("{MEDIA}.muted = true;"), vec![]).await?;
    let play = b.find(".player-play").await?;
    b.click(&play).await?;
    wait_until(
        b,
        "the embedded video to play",
        "return document.querySelector('.player-media').currentTime > 0.5;",
        30,
    )
    .await?;
    Ok(())
}
