//! The player in real browsers — Chromium through chromedriver, Firefox through geckodriver and
//! WebKit (WebKitGTK's MiniBrowser) through WebKitWebDriver, the same steps in each — against the
//! real server: a teacher uploads a short real video through the API and adds SubRip captions; the real transcoder (ffmpeg) makes a ladder of
//! two rungs (360p and 240p). A student opens the item page: the poster shows, the player plays
//! our HLS through Media Source Extensions, Play makes `currentTime` advance, the `c` key turns
//! captions on and a cue shows (`textTracks[0].activeCues`), the quality menu switches rendition
//! both ways (auto climbs to 360p, a manual 240p takes over, auto comes back — judged by the
//! decoded `videoHeight`), the speed menu changes the rate, the seek bar previews a thumbnail,
//! `l` skips ahead, `k` pauses, and the position is saved for next time. The same player plays
//! inside `/embed/{id}`.
//!
//! Needs Debian's `chromium` and `chromium-driver`, `firefox-esr` and Mozilla's geckodriver
//! (`cargo install --locked geckodriver`), `ffmpeg` (Firefox on Linux decodes H.264/AAC
//! through the system's libavcodec), and `webkit2gtk-driver`, `xvfb`, `gstreamer1.0-libav` and
//! `gstreamer1.0-plugins-bad` (WebKitGTK plays media through GStreamer); without them the tests
//! fail and say what is missing.

#[allow(dead_code)]
mod browser_support;
mod common;
#[path = "ingest_support/mod.rs"]
mod ingest_support;
#[path = "playback_support/mod.rs"]
mod playback_support;

use std::time::{Duration, Instant};

use browser_support::webdriver::{Browser, Result};
use browser_support::{BrowserKind, Driver, artifacts_dir};
use common::{PASSWORD, Server};
use reqwest::Method;
use serde_json::{Value, json};

const MEDIA: &str = "return document.querySelector('.player-media')";
/// Long enough that, after the steps below and a 10 s skip, the saved position is still one the
/// player resumes at (it does not resume within 5 s of the end).
const CLIP_SECONDS: u32 = 40;

/// One browser test at a time: each runs its own server, transcoder and browser, and the timed
/// steps need the machine's attention.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
                             height: m && m.videoHeight, rate: m && m.playbackRate,
                             quality: p && p.querySelector('.player-quality').value,
                             error: m && m.error && m.error.message, paused: m && m.paused,
                             shown: document.querySelector('.player-error-text') && document.querySelector('.player-error-text').textContent};",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            return Err(format!("[{}] timed out waiting for {what}; player state: {state}", b.kind.name()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_student_watches_in_chromium() {
    a_student_watches_with_captions_quality_speed_and_keys(BrowserKind::Chromium).await;
}

#[tokio::test]
async fn a_student_watches_in_firefox() {
    a_student_watches_with_captions_quality_speed_and_keys(BrowserKind::Firefox).await;
}

/// WebKit, Safari's engine, as WebKitGTK's MiniBrowser: its media goes through GStreamer, not
/// Safari's AVFoundation, so this proves the page, the script and our MSE engine in WebKit, not
/// Safari's own (native) HLS.
#[tokio::test]
async fn a_student_watches_in_webkit() {
    a_student_watches_with_captions_quality_speed_and_keys(BrowserKind::WebKit).await;
}

async fn a_student_watches_with_captions_quality_speed_and_keys(kind: BrowserKind) {
    let driver_program = kind.require_driver();
    let browser_program = kind.require_browser();
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let dir = artifacts_dir();
    println!("{}: screenshots and logs: {}", kind.name(), dir.display());
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

    // 640×360 makes a ladder of two rungs: 360p (the source, packaged as it is) and 240p.
    let clip = playback_support::clip_sized(files.path(), CLIP_SECONDS, "640x360");
    let res = ingest_support::post_media(
        &teacher,
        &format!("category={category}&filename=forces.mp4&title=Forces"),
        clip.clone(),
        Some(ingest_support::content_digest(&clip)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201, "upload");
    let id = res.json::<Value>().await.expect("item")["id"].as_i64().expect("id");
    // The real transcoder makes the renditions; wait for the whole ladder (and the sprite), not
    // only the first playable rung.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let item = teacher.get_json(&format!("/api/v1/media/{id}")).await;
        if item["playable"] == true && item["transcode_state"] == "done" {
            break;
        }
        assert!(item["error"].is_null(), "the transcoder failed: {item}");
        assert!(Instant::now() < deadline, "not transcoded after 180 s: {item}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let srt = playback_support::srt(CLIP_SECONDS, "Caption second");
    let res = teacher
        .client
        .post(teacher.url(&format!("/api/v1/media/{id}/captions?lang=en")))
        .bearer_auth(&teacher.token)
        .body(srt)
        .send()
        .await
        .expect("captions");
    assert_eq!(res.status().as_u16(), 201, "captions");

    let log = dir.join(format!("{}.log", kind.driver_name()));
    let driver = Driver::start(kind, &driver_program, &log).await.unwrap_or_else(|e| panic!("{e}"));
    let browser = Browser::start(kind, &driver.url, &browser_program, "student", &server.base)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let in_browser = Instant::now();
    let outcome = scenario(&browser, id).await;
    // How often the player had to restart a stalled decoder (`unstall` in static/player.js).
    let nudges = browser
        .execute("return document.querySelector('.player-media').dataset.nudges || '0';", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if outcome.is_err() {
        let _ = browser.screenshot(&dir.join("failure.png")).await;
        // What the server answered (each request's route, status and time) beside the browser's.
        let _ = std::fs::write(dir.join("reelbox.log"), server.stderr());
    }
    if let Err(e) = browser.quit().await {
        println!("the browser did not close cleanly: {e}");
    }
    drop(driver);
    if let Err(e) = outcome {
        panic!("{e}\n(screenshots, reelbox.log and {} are in {})", log.display(), dir.display());
    }
    println!(
        "{}: {:.1} s in the browser, {:.1} s in all, {nudges} stall nudges",
        kind.name(),
        in_browser.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// The quality menu's entry labelled `label`.
fn quality_option(label: &str) -> String {
    format!("//select[contains(@class, 'player-quality')]/option[normalize-space()='{label}']")
}

async fn scenario(b: &Browser, id: i64) -> Result<()> {
    let name = b.kind.name();
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
    // Firefox has no native HLS; it must take our MSE engine, which needs H.264/AAC in MP4 (on
    // Linux through the system's libavcodec). WebKitGTK answers `canPlayType` for HLS with ""
    // (it is Safari's AVFoundation that plays HLS natively, not WebKit), so it takes our engine
    // too, through its ManagedMediaSource. Chromium may one day play HLS natively.
    let codecs = b
        .execute(
            "const MS = window.ManagedMediaSource || window.MediaSource;
             return MS ? MS.isTypeSupported('video/mp4; codecs=\"avc1.64001e,mp4a.40.2\"') : 'no MediaSource';",
            vec![],
        )
        .await?;
    if engine != "mse" && !(b.kind == BrowserKind::Chromium && engine == "native") {
        let hint = match b.kind {
            BrowserKind::WebKit => "WebKitGTK decodes through GStreamer: apt-get install gstreamer1.0-libav",
            _ => "Firefox on Linux needs the system's libavcodec: apt-get install ffmpeg",
        };
        return Err(format!(
            "{name} should play our HLS through MSE, not `{engine}` (H.264/AAC in MSE supported: {codecs}; {hint})"
        ));
    }
    let mse = engine == "mse";
    // The poster shows before playing.
    let poster = b.execute(&format!("{MEDIA}.poster;"), vec![]).await?;
    if !poster.as_str().is_some_and(|p| p.contains("poster")) {
        return Err(format!("{name}: the video should show the poster, has poster={poster}"));
    }
    if mse {
        let menu = wait_until(
            b,
            "the quality menu to list both rungs",
            "const q = document.querySelector('.player-quality');
             return q.options.length === 3 ? Array.from(q.options, o => o.textContent).join(' ') : null;",
            15,
        )
        .await?;
        if menu != "Auto 360p 240p" {
            return Err(format!("{name}: the quality menu should offer Auto, 360p, 240p: {menu}"));
        }
    }
    b.execute(&format!("{MEDIA}.muted = true;"), vec![]).await?;

    // A person presses Play; time must move.
    let play = b.find(".player-play").await?;
    b.click(&play).await?;
    wait_until(b, "currentTime to pass 1.5 s", &format!("{MEDIA}.currentTime > 1.5;"), 30).await.map_err(|e| {
        if b.kind == BrowserKind::WebKit {
            // WebKitGTK claims H.264 in MSE with libav alone, then never plays it.
            format!("{e}\n(WebKitGTK's MSE needs GStreamer's h264parse: apt-get install gstreamer1.0-plugins-bad)")
        } else {
            e
        }
    })?;
    let label = b.attr(&play, "aria-label").await?;
    if label.as_deref() != Some("Pause") {
        return Err(format!("{name}: the Play button should now say Pause, says {label:?}"));
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
        return Err(format!("{name}: unexpected cue {cue}"));
    }
    let chosen = b.execute("return document.querySelector('.player-captions').value;", vec![]).await?;
    if chosen != "0" {
        return Err(format!("{name}: the captions menu should show the chosen track, shows {chosen}"));
    }

    // Quality: auto climbs to the best rung the (loopback) throughput sustains; a manual choice
    // takes over at once; auto again comes back. Judged by the size of the decoded frames.
    if mse {
        let height = |h: u32| format!("{MEDIA}.videoHeight === {h};");
        wait_until(b, "auto quality to reach 360p", &height(360), 20).await?;
        b.click(&b.find_xpath(&quality_option("240p")).await?).await?;
        wait_until(b, "the manual 240p to play", &height(240), 20).await?;
        b.click(&b.find_xpath(&quality_option("Auto")).await?).await?;
        wait_until(b, "auto quality to come back to 360p", &height(360), 20).await?;
    }

    // Speed: the menu sets the rate, and media time then runs faster than the clock.
    b.click(&b.find(".player-speed option[value='1.5']").await?).await?;
    let rate = number(b, "m.playbackRate").await?;
    if rate != 1.5 {
        return Err(format!("{name}: the speed menu chose 1.5×, the video plays at {rate}×"));
    }
    let (t0, clock) = (number(b, "m.currentTime").await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ran = (number(b, "m.currentTime").await? - t0) / clock.elapsed().as_secs_f64();
    if ran < 1.2 {
        return Err(format!("{name}: at 1.5× media time ran only {ran:.2}× the clock"));
    }
    b.click(&b.find(".player-speed option[value='1']").await?).await?;

    // Thumbnails on the seek bar: hovering shows the sprite tile for that moment.
    let seek = b.find(".player-seek").await?;
    let (_, _, width, _) = b.rect(&seek).await?;
    b.hover(&seek, (width / 4.0) as i64).await?;
    let tile = wait_until(
        b,
        "a thumbnail over the seek bar, its image loaded",
        r#"const p = document.querySelector('.player-preview'), i = document.querySelector('.player-preview-image');
         const url = (/url\("?([^")]+)/.exec(i.style.backgroundImage) || [])[1];
         if (p.hidden || !url) return null;
         const abs = new URL(url, location.href).href;
         const got = performance.getEntriesByType('resource').find(e => e.name === abs);
         if (!got) return null;
         return {url: abs, status: got.responseStatus, at: document.querySelector('.player-preview-time').textContent};"#,
        10,
    )
    .await?;
    // A quarter of the bar right of its middle: three quarters of the clip.
    let at = tile["at"].as_str().and_then(|t| t.strip_prefix("0:")).and_then(|s| s.parse::<f64>().ok());
    let expected = f64::from(CLIP_SECONDS) * 0.75;
    if !at.is_some_and(|at| (at - expected).abs() <= 2.0)
        || !matches!(tile["status"].as_u64(), None | Some(200))
    {
        return Err(format!("{name}: the thumbnail should be of {expected} s and load: {tile}"));
    }

    // A menu keeps the keys for itself; a click elsewhere on the page gives them back.
    b.click(&b.find(".player-keys").await?).await?;
    // `l` skips ten seconds ahead; `k` pauses; the position is saved for next time.
    let before = number(b, "m.currentTime").await?;
    b.press_key("l").await?;
    let after = number(b, "m.currentTime").await?;
    if after < before + 9.0 {
        return Err(format!("{name}: `l` should skip 10 s: {before} → {after}"));
    }
    b.press_key("k").await?;
    wait_until(b, "the video to pause", &format!("{MEDIA}.paused;"), 5).await?;
    let stopped = number(b, "m.currentTime").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Reload: the server renders where this person stopped into the player.
        b.refresh().await?;
        let resume =
            b.execute("return parseFloat(document.getElementById('player').dataset.resume);", vec![]).await?;
        if resume.as_f64().is_some_and(|r| (r - stopped).abs() < 1.5) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{name}: position {stopped} was not saved; the page resumes at {resume}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // …and the player starts there again.
    wait_until(b, "the player to resume", &format!("{MEDIA}.currentTime > {};", stopped - 1.5), 15).await?;

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
    wait_until(b, "the embedded video to play", &format!("{MEDIA}.currentTime > 0.5;"), 30).await?;
    Ok(())
}
