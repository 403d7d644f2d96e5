//! Media serving benchmark: reelbox against nginx (`sendfile on`) serving the same HLS segment
//! file, in one run, with `wrk`: whole-segment GETs and Range requests (the first 256 KiB, as a
//! player seeking in the progressive MP4 does). reelbox is asked as a signed-in viewer (session
//! cookie), so every request pays for the permission check; nginx checks nothing.
//!
//! Prints requests/s, MB/s, p99 and the ratio to nginx; the target is ≥ 0.9× throughput.
//! Needs `wrk`, `nginx` and `ffmpeg` (Debian: `apt-get install wrk nginx-light ffmpeg`).
//! `BENCH_SECONDS` (default 10) sets the length of each run; `BENCH_STRICT=1` makes a missed
//! target fail the run.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 16;
const SEGMENT_BYTES: usize = 1_200_000; // about a 4 s segment at 720p
const RANGE: &str = "Range: bytes=0-262143";
const TARGET: f64 = 0.9;
const PASSWORD: &str = "orchid-vW7q-Lt3x-lantern-92";

fn main() -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Box::new(e) as Box<dyn Error>)
        .and_then(|rt| rt.block_on(run()));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if std::env::var("BENCH_STRICT").is_ok_and(|v| v == "1") => {
            eprintln!("bench serve: the target was missed (BENCH_STRICT=1)");
            ExitCode::FAILURE
        }
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench serve: error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Guard(&'static str, Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // SIGTERM so nginx's master stops its workers and reelbox shuts down cleanly.
        let _ = Command::new("kill").args(["-TERM", &self.1.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.1.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench serve: {} did not stop; killing it", self.0);
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

fn program(name: &str, extra: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(std::iter::once(PathBuf::from(extra)))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found; install it with apt-get").into())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cli(reelbox: &Path, data: &Path, args: &[&str], stdin: &str) -> Result<String> {
    let mut child = Command::new(reelbox)
        .args(&args[..2])
        .arg("--data")
        .arg(data)
        .args(&args[2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        writeln!(input, "{stdin}")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("reelbox {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

async fn wait_for(url: &str, client: &reqwest::Client) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok_and(|r| r.status().as_u16() < 500) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url} did not answer").into())
}

/// Sign in through the form; the `Cookie` header to send.
async fn sign_in(client: &reqwest::Client, base: &str, user: &str) -> Result<String> {
    let form = client.get(format!("{base}/login")).send().await?;
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ");
    let html = form.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("no csrf field on /login")?
        .to_string();
    let res = client
        .post(format!("{base}/login"))
        .header("Cookie", &cookie)
        .header("Origin", base)
        .form(&[("username", user), ("password", PASSWORD), ("csrf", &csrf), ("next", "/")])
        .send()
        .await?;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .find(|c| c.contains("reelbox_session="))
        .ok_or("sign-in set no session cookie")?;
    Ok(session)
}

struct Wrk {
    rps: f64,
    mbps: f64,
    p99: String,
    bad: u64,
}

fn wrk(wrk: &Path, url: &str, headers: &[&str], seconds: u64) -> Result<Wrk> {
    let mut c = Command::new(wrk);
    c.args([
        format!("-t{WRK_THREADS}"),
        format!("-c{WRK_CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--latency".into(),
    ]);
    for h in headers {
        c.arg("-H").arg(h);
    }
    let out = c.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut r = Wrk { rps: 0.0, mbps: 0.0, p99: "-".into(), bad: 0 };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse()?;
        } else if let Some(v) = line.strip_prefix("Transfer/sec:") {
            let v = v.trim();
            let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
            let n: f64 = v[..split].parse()?;
            r.mbps = n * match &v[split..] {
                "GB" => 1024.0,
                "MB" => 1.0,
                "KB" => 1.0 / 1024.0,
                _ => 1.0 / (1024.0 * 1024.0),
            };
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99 = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.bad = v.trim().parse()?;
        }
    }
    if r.rps == 0.0 {
        return Err(format!("could not read wrk's output for {url}:\n{text}").into());
    }
    Ok(r)
}

/// CPU time (user + system, in clock ticks) that the processes `pids` and their children have
/// used so far: nginx's master hands the work to its worker processes.
fn cpu_ticks(pid: u32) -> u64 {
    let own = fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own.unwrap_or(0) + children.split_whitespace().filter_map(|c| c.parse().ok()).map(cpu_ticks).sum::<u64>()
}

/// Microseconds of CPU per request a server used while `run` measured it.
fn measured(pid: u32, seconds: u64, run: impl FnOnce() -> Result<Wrk>) -> Result<(Wrk, f64)> {
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let before = cpu_ticks(pid);
    let r = run()?;
    let used = (cpu_ticks(pid) - before) as f64 / hz;
    let us = used * 1e6 / (r.rps * seconds as f64).max(1.0);
    Ok((r, us))
}

async fn run() -> Result<bool> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(1);
    let wrk_bin = program("wrk", "/usr/bin/wrk")?;
    let nginx = program("nginx", "/usr/sbin/nginx")?;
    let ffmpeg = program("ffmpeg", "/usr/bin/ffmpeg")?;
    let reelbox = PathBuf::from(env!("CARGO_BIN_EXE_reelbox"));
    let tmp = tempfile::Builder::new().prefix("reelbox-bench-serve-").tempdir()?;
    let data = tmp.path().join("data");
    fs::create_dir_all(&data)?;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = fs::File::create(tmp.path().join("reelbox.log"))?;
    let server = Command::new(&reelbox)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let rb_pid = server.id();
    let _server = Guard("reelbox", server);
    wait_for(&format!("{base}/healthz"), &client).await?;
    cli(&reelbox, &data, &["user", "add", "--username", "ada", "--admin", "--password-stdin"], PASSWORD)?;
    cli(&reelbox, &data, &["user", "add", "--username", "stu", "--password-stdin"], PASSWORD)?;
    let token = cli(&reelbox, &data, &["token", "create", "--username", "ada"], "")?.trim().to_string();
    let token = token.lines().last().unwrap_or_default().to_string();

    let cat: serde_json::Value = client
        .post(format!("{base}/api/v1/categories"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Bench"}))
        .send()
        .await?
        .json()
        .await?;
    let cat = cat["id"].as_i64().ok_or("no category id")?;
    client
        .put(format!("{base}/api/v1/categories/{cat}/grants"))
        .bearer_auth(&token)
        .json(&serde_json::json!([{"username": "stu", "role": "view"}]))
        .send()
        .await?;
    let clip = tmp.path().join("clip.mp4");
    let out = Command::new(&ffmpeg)
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "1"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .output()?;
    if !out.status.success() {
        return Err(format!("ffmpeg: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let bytes = fs::read(&clip)?;
    let digest = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes))
    };
    let item: serde_json::Value = client
        .post(format!("{base}/api/v1/media?category={cat}&filename=clip.mp4"))
        .bearer_auth(&token)
        .header("Content-Digest", format!("sha-256=:{digest}:"))
        .body(bytes)
        .send()
        .await?
        .json()
        .await?;
    let id = item["id"].as_i64().ok_or_else(|| format!("upload failed: {item}"))?;
    // The clip's transcode must be over before measuring: an ffmpeg still running would take
    // CPU from reelbox's run and not from nginx's.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now: serde_json::Value =
            client.get(format!("{base}/api/v1/media/{id}")).bearer_auth(&token).send().await?.json().await?;
        match now["status"].as_str() {
            Some("ready") => break,
            Some("processing") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return Err(format!("the clip did not become ready: {now}").into()),
        }
    }

    // The same segment bytes for both servers, at the same path.
    let rel = format!("media/{id}/hls/720p/seg-00001.m4s");
    let segment: Vec<u8> = (0..SEGMENT_BYTES).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let www = tmp.path().join("www");
    for root in [&data, &www] {
        let path = root.join(&rel);
        fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        fs::write(&path, &segment)?;
    }
    let cookie = sign_in(&client, &base, "stu").await?;
    let check = client.get(format!("{base}/{rel}")).header("Cookie", &cookie).send().await?;
    if check.status().as_u16() != 200 || check.bytes().await?.len() != SEGMENT_BYTES {
        return Err("reelbox did not serve the segment to the signed-in viewer".into());
    }

    let ngx = tmp.path().join("nginx");
    fs::create_dir_all(&ngx)?;
    {
        use std::os::unix::fs::PermissionsExt;
        for d in [tmp.path(), www.as_path()] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        }
        for d in walk(&www) {
            fs::set_permissions(&d, fs::Permissions::from_mode(if d.is_dir() { 0o755 } else { 0o644 }))?;
        }
    }
    let nport = free_port()?;
    let d = ngx.display();
    fs::write(
        ngx.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n client_body_temp_path {d}/cb;\n\
             proxy_temp_path {d}/p;\n fastcgi_temp_path {d}/f;\n uwsgi_temp_path {d}/u;\n scgi_temp_path {d}/s;\n\
             types {{ video/iso.segment m4s; }}\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n\
             server {{ listen 127.0.0.1:{nport}; root {}; }}\n}}\n",
            www.display()
        ),
    )?;
    let ngx_child = Command::new(&nginx)
        .arg("-p")
        .arg(&ngx)
        .arg("-c")
        .arg(ngx.join("nginx.conf"))
        .arg("-e")
        .arg(ngx.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let ngx_pid = ngx_child.id();
    let _nginx = Guard("nginx", ngx_child);
    let nbase = format!("http://127.0.0.1:{nport}");
    wait_for(&format!("{nbase}/{rel}"), &client).await?;

    let cookie_header = format!("Cookie: {cookie}");
    let runs = [
        ("segment (1.2 MB)", vec![cookie_header.as_str()], vec![]),
        ("Range, first 256 KiB", vec![cookie_header.as_str(), RANGE], vec![RANGE]),
    ];
    let mut table = String::new();
    writeln!(
        table,
        "reelbox media serving: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s, {} CPUs shared by wrk, nginx and reelbox",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    )?;
    writeln!(
        table,
        "{:<22} {:>11} {:>11} {:>9} {:>9} {:>7} {:>10} {:>10} {:>12} {:>12}  met",
        "request",
        "reelbox r/s",
        "nginx r/s",
        "rb MB/s",
        "ngx MB/s",
        "ratio",
        "rb p99",
        "ngx p99",
        "rb CPU µs/r",
        "ngx CPU µs/r"
    )?;
    let mut all_met = true;
    for (label, rb_headers, ngx_headers) in runs {
        let (r, r_cpu) =
            measured(rb_pid, seconds, || wrk(&wrk_bin, &format!("{base}/{rel}"), &rb_headers, seconds))?;
        let (n, n_cpu) =
            measured(ngx_pid, seconds, || wrk(&wrk_bin, &format!("{nbase}/{rel}"), &ngx_headers, seconds))?;
        if r.bad > 0 || n.bad > 0 {
            return Err(format!("{label}: non-2xx answers (reelbox {}, nginx {})", r.bad, n.bad).into());
        }
        let ratio = if n.mbps > 0.0 { r.mbps / n.mbps } else { 0.0 };
        let met = ratio >= TARGET;
        all_met &= met;
        writeln!(
            table,
            "{label:<22} {:>11.0} {:>11.0} {:>9.0} {:>9.0} {:>6.2}× {:>10} {:>10} {:>12.0} {:>12.0}  {}",
            r.rps,
            n.rps,
            r.mbps,
            n.mbps,
            ratio,
            r.p99,
            n.p99,
            r_cpu,
            n_cpu,
            if met { "yes" } else { "NO" }
        )?;
    }
    print!("{table}");
    println!("target: throughput ≥ {TARGET}× nginx (sendfile on)");
    Ok(all_met)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
