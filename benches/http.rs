//! HTTP benchmark: reelbox against nginx serving a static file of the same size, in one run.
//!
//! `cargo bench --bench http` builds reelbox in release, starts it on a fresh data directory,
//! sets up an admin, a student, a group and ~20 granted categories, signs the student in
//! through the browser form, then loads the signed-in catalogue page and `/healthz` with `wrk`.
//! The baseline is Debian's nginx serving files with the same bodies, measured the same way.
//! It prints requests/s, the ratio to nginx and the idle RSS of the reelbox process.
//!
//! Needs `wrk` and `nginx` (Debian: `apt-get install wrk nginx-light`).
//! Environment: `BENCH_SECONDS` (default 10) sets the duration of each wrk run;
//! `BENCH_STRICT=1` makes a missed target fail the run (exit status 1).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 32;
const DEFAULT_SECONDS: u64 = 10;
const CATEGORY_COUNT: usize = 20;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "orchid-vW7q-Lt3x-lantern-92";
const STUDENT: &str = "student";
const STUDENT_PASSWORD: &str = "pebble-Kp4z-Rm8n-harbour-51";
const SESSION_COOKIE: &str = "reelbox_session";

/// Targets from the design: the catalogue at least 0.3× nginx static, idle RSS at most 40 MiB.
const CATALOGUE_RATIO_TARGET: f64 = 0.3;
const IDLE_RSS_TARGET_KIB: u64 = 40 * 1024;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            if std::env::var("BENCH_STRICT").is_ok_and(|v| v == "1") {
                eprintln!("bench http: a target was missed (BENCH_STRICT=1)");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("bench http: error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole benchmark; `Ok(all_targets_met)`.
fn run() -> Result<bool> {
    let seconds = match std::env::var("BENCH_SECONDS") {
        Ok(v) => v.trim().parse::<u64>().map_err(|e| format!("BENCH_SECONDS={v:?}: {e}"))?.max(1),
        Err(_) => DEFAULT_SECONDS,
    };
    let wrk = find_program("wrk", &[]).ok_or("wrk not found; install it with: apt-get install wrk")?;
    let nginx = find_program("nginx", &["/usr/sbin/nginx"])
        .ok_or("nginx not found; install it with: apt-get install nginx-light")?;
    let reelbox = PathBuf::from(env!("CARGO_BIN_EXE_reelbox"));

    // Declared first so it is dropped last, after the guards below have stopped the processes.
    let tmp = tempfile::Builder::new().prefix("reelbox-bench-").tempdir()?;
    let data = tmp.path().join("data");
    fs::create_dir_all(&data)?;
    let http = Http::new()?;

    // --- reelbox ---
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log_path = tmp.path().join("reelbox.log");
    let log = fs::File::create(&log_path)?;
    let child = Command::new(&reelbox)
        .arg("serve")
        .arg("--data")
        .arg(&data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", reelbox.display()))?;
    let mut server = ProcessGuard::new("reelbox", child);
    let ready = wait_ready(&http, &mut server, &format!("{base}/healthz"), Duration::from_secs(30));
    if let Err(err) = ready {
        return Err(format!("{err}\n--- reelbox log ---\n{}", tail(&log_path, 40)).into());
    }
    let reelbox_pid = server.pid();
    std::thread::sleep(Duration::from_secs(2));
    let rss_startup = rss_kib(reelbox_pid)?;

    // --- accounts, group, categories, grants ---
    cli(
        &reelbox,
        &["user", "add", "--username", ADMIN, "--admin", "--password-stdin"],
        &data,
        ADMIN_PASSWORD,
    )?;
    cli(&reelbox, &["user", "add", "--username", STUDENT, "--password-stdin"], &data, STUDENT_PASSWORD)?;
    let token_out = cli(&reelbox, &["token", "create", "--username", ADMIN], &data, "")?;
    let token = token_out
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or("`reelbox token create` printed no token")?
        .to_owned();
    let api = Api { http: &http, base: &base, token: &token };
    let group = api.create("/api/v1/groups", &serde_json::json!({ "name": "Bench students" }))?;
    api.expect_status(
        "POST",
        &format!("/api/v1/groups/{group}/members"),
        &serde_json::json!({ "username": STUDENT }),
        204,
    )?;
    let mut category_names = Vec::new();
    for i in 1..=CATEGORY_COUNT {
        let name = format!("Bench category {i:02}");
        let id = api.create("/api/v1/categories", &serde_json::json!({ "name": name }))?;
        api.expect_status(
            "PUT",
            &format!("/api/v1/categories/{id}/grants"),
            &serde_json::json!([{ "group_id": group, "role": "view" }]),
            204,
        )?;
        category_names.push(name);
    }

    // --- sign the student in through the form ---
    let cookie = login(&http, &base, STUDENT, STUDENT_PASSWORD)?;
    let catalogue = http.get(&format!("{base}/"), Some(&cookie))?;
    if catalogue.status != 200 {
        return Err(format!(
            "signed-in GET / answered {} (location: {:?}); the session cookie was not accepted",
            catalogue.status,
            catalogue.header("location")
        )
        .into());
    }
    let page = String::from_utf8_lossy(&catalogue.body);
    let shown = category_names.iter().filter(|n| page.contains(n.as_str())).count();
    if shown < CATEGORY_COUNT {
        eprintln!(
            "bench http: warning: the catalogue page shows {shown} of {CATEGORY_COUNT} granted categories"
        );
    }
    let healthz = http.get(&format!("{base}/healthz"), None)?;
    if healthz.status != 200 {
        return Err(format!("GET /healthz answered {}", healthz.status).into());
    }

    // --- nginx baseline: the same bodies as static files ---
    let nginx_dir = tmp.path().join("nginx");
    let www = nginx_dir.join("www");
    fs::create_dir_all(&www)?;
    fs::write(www.join("catalogue.html"), &catalogue.body)?;
    fs::write(www.join("healthz.json"), &healthz.body)?;
    // The temp dir is 0700; nginx workers run as an unprivileged user when started as root.
    for dir in [tmp.path(), nginx_dir.as_path(), www.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    for file in ["catalogue.html", "healthz.json"] {
        fs::set_permissions(www.join(file), fs::Permissions::from_mode(0o644))?;
    }
    let nginx_port = free_port()?;
    let nginx_base = format!("http://127.0.0.1:{nginx_port}");
    let conf = nginx_dir.join("nginx.conf");
    fs::write(&conf, nginx_config(&nginx_dir, &www, nginx_port))?;
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(&nginx_dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(nginx_dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", nginx.display()))?;
    let mut nginx_guard = ProcessGuard::new("nginx", child);
    let nginx_ready =
        wait_ready(&http, &mut nginx_guard, &format!("{nginx_base}/healthz.json"), Duration::from_secs(10));
    if let Err(err) = nginx_ready {
        return Err(
            format!("{err}\n--- nginx error log ---\n{}", tail(&nginx_dir.join("error.log"), 20)).into()
        );
    }
    for (file, expected) in [("catalogue.html", catalogue.body.len()), ("healthz.json", healthz.body.len())] {
        let got = http.get(&format!("{nginx_base}/{file}"), None)?;
        if got.status != 200 || got.body.len() != expected {
            return Err(format!("nginx /{file}: status {} and {} bytes", got.status, got.body.len()).into());
        }
    }

    // --- load ---
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = rss_kib(reelbox_pid)?;
    let cookie_header = format!("Cookie: {cookie}");
    eprintln!(
        "bench http: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s, 4 runs (catalogue page {} bytes, healthz {} bytes)",
        catalogue.body.len(),
        healthz.body.len()
    );
    let r_catalogue = wrk_run(&wrk, &format!("{base}/"), Some(&cookie_header), seconds)?;
    let n_catalogue = wrk_run(&wrk, &format!("{nginx_base}/catalogue.html"), None, seconds)?;
    let r_healthz = wrk_run(&wrk, &format!("{base}/healthz"), None, seconds)?;
    let n_healthz = wrk_run(&wrk, &format!("{nginx_base}/healthz.json"), None, seconds)?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(reelbox_pid)?;

    // wrk counts 3xx as success: make sure the session held, so the numbers are for the real page.
    let mut notes = Vec::new();
    let session_held = match http.get(&format!("{base}/"), Some(&cookie)) {
        Ok(r) if r.status == 200 => true,
        Ok(r) => {
            notes.push(format!(
                "after the load, signed-in GET / answered {}: results are not valid",
                r.status
            ));
            false
        }
        Err(e) => {
            notes.push(format!("after the load, signed-in GET / failed: {e}"));
            false
        }
    };
    if let Some(exited) = server.exited() {
        notes.push(exited);
    }
    for (what, result, body_len) in [
        ("reelbox GET /", &r_catalogue, catalogue.body.len()),
        ("nginx catalogue", &n_catalogue, catalogue.body.len()),
        ("reelbox GET /healthz", &r_healthz, healthz.body.len()),
        ("nginx healthz", &n_healthz, healthz.body.len()),
    ] {
        if result.errors_non_2xx3xx > 0 {
            notes.push(format!("{what}: {} responses were not 2xx/3xx", result.errors_non_2xx3xx));
        }
        if result.socket_errors > 0 {
            notes.push(format!("{what}: {} socket errors", result.socket_errors));
        }
        if result.requests > 0 && result.bytes_read / (result.requests as f64) < body_len as f64 * 0.95 {
            notes.push(format!(
                "{what}: {:.0} bytes read per response, smaller than the {body_len}-byte body",
                result.bytes_read / result.requests as f64
            ));
        }
    }

    // --- report ---
    let catalogue_ratio = ratio(r_catalogue.rps, n_catalogue.rps);
    let healthz_ratio = ratio(r_healthz.rps, n_healthz.rps);
    let catalogue_met = catalogue_ratio >= CATALOGUE_RATIO_TARGET && session_held;
    let rss_met = rss_idle <= IDLE_RSS_TARGET_KIB;

    let mut out = String::new();
    writeln!(out)?;
    writeln!(
        out,
        "reelbox HTTP benchmark: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s on {} CPUs (wrk shares them)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    )?;
    writeln!(out)?;
    rate_row(
        &mut out,
        "request",
        ["reelbox req/s", "nginx req/s", "ratio", "reelbox p99", "nginx p99", "target", "met"],
    )?;
    rate_row(
        &mut out,
        &format!("GET / (signed in, {} B)", catalogue.body.len()),
        [
            &format!("{:.0}", r_catalogue.rps),
            &format!("{:.0}", n_catalogue.rps),
            &format!("{catalogue_ratio:.2}x"),
            &r_catalogue.p99,
            &n_catalogue.p99,
            &format!(">= {CATALOGUE_RATIO_TARGET:.1}x"),
            yes_no(catalogue_met),
        ],
    )?;
    rate_row(
        &mut out,
        &format!("GET /healthz ({} B)", healthz.body.len()),
        [
            &format!("{:.0}", r_healthz.rps),
            &format!("{:.0}", n_healthz.rps),
            &format!("{healthz_ratio:.2}x"),
            &r_healthz.p99,
            &n_healthz.p99,
            "-",
            "-",
        ],
    )?;
    writeln!(out)?;
    rss_row(&mut out, "reelbox RSS", ["", "target", "met"])?;
    rss_row(&mut out, "  after startup", [&mib(rss_startup), "", ""])?;
    rss_row(
        &mut out,
        "  idle, before load",
        [&mib(rss_idle), &format!("<= {} MiB", IDLE_RSS_TARGET_KIB / 1024), yes_no(rss_met)],
    )?;
    rss_row(&mut out, "  after load", [&mib(rss_after), "", ""])?;
    for note in &notes {
        writeln!(out, "note: {note}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", if catalogue_met && rss_met { "all targets met" } else { "TARGETS MISSED" })?;
    print!("{out}");
    std::io::stdout().flush()?;

    drop(nginx_guard);
    drop(server);
    Ok(catalogue_met && rss_met)
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when the guard goes away,
/// including on error paths and panics.
struct ProcessGuard {
    name: &'static str,
    child: Child,
}

impl ProcessGuard {
    fn new(name: &'static str, child: Child) -> Self {
        Self { name, child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` if the process has already exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited early: {status}", self.name)),
            Ok(None) => None,
            Err(err) => Some(format!("{}: {err}", self.name)),
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first: nginx's master then stops its workers (SIGKILL would orphan them),
        // and reelbox gets to shut down cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench http: {} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain-HTTP client. Cookies are handled by hand: the session cookie is `Secure`,
/// which a cookie store would refuse to send over http://127.0.0.1.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

struct Response {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// `name=value` pairs from every `Set-Cookie` header.
    fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let pair = v.split(';').next()?.trim();
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_owned(), value.trim().to_owned()))
            })
            .collect()
    }
}

impl Http {
    fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .no_proxy()
            // No pooling: between calls the runtime is idle, so a connection the server closed
            // would go unnoticed and the next request on it would fail.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self { rt, client })
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Result<Response> {
        let result: reqwest::Result<Response> = self.rt.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok(Response { status, headers, body })
        });
        result.map_err(|e| error_chain(&e).into())
    }

    fn get(&self, url: &str, cookie: Option<&str>) -> Result<Response> {
        let mut request = self.client.get(url);
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        self.send(request).map_err(|e| format!("GET {url}: {e}").into())
    }
}

/// The JSON API, as the admin (bearer token).
struct Api<'a> {
    http: &'a Http,
    base: &'a str,
    token: &'a str,
}

impl Api<'_> {
    fn request(&self, method: &str, path: &str, body: &serde_json::Value) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let request = self.http.client.request(method.clone(), &url).bearer_auth(self.token).json(body);
        self.http.send(request).map_err(|e| format!("{method} {path}: {e}").into())
    }

    /// POST that must answer 201 `{"id": N}`; returns N.
    fn create(&self, path: &str, body: &serde_json::Value) -> Result<i64> {
        let response = self.request("POST", path, body)?;
        if response.status != 201 {
            return Err(format!(
                "POST {path} answered {} (expected 201): {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )
            .into());
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("POST {path}: response is not JSON: {e}"))?;
        json.get("id").and_then(serde_json::Value::as_i64).ok_or_else(|| {
            format!("POST {path}: no numeric \"id\" in {}", String::from_utf8_lossy(&response.body)).into()
        })
    }

    fn expect_status(&self, method: &str, path: &str, body: &serde_json::Value, expected: u16) -> Result<()> {
        let response = self.request(method, path, body)?;
        if response.status != expected {
            return Err(format!(
                "{method} {path} answered {} (expected {expected}): {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )
            .into());
        }
        Ok(())
    }
}

/// Signs in through the HTML form; returns the `Cookie` header value to send afterwards.
fn login(http: &Http, base: &str, username: &str, password: &str) -> Result<String> {
    let form = http.get(&format!("{base}/login"), None)?;
    if form.status != 200 {
        return Err(format!("GET /login answered {}", form.status).into());
    }
    let mut cookies: BTreeMap<String, String> = form.set_cookies().into_iter().collect();
    let html = String::from_utf8_lossy(&form.body);
    let csrf = hidden_input_value(&html, "csrf").ok_or("GET /login: no hidden input name=\"csrf\"")?;
    let body = format!(
        "username={}&password={}&csrf={}",
        urlencoding::encode(username),
        urlencoding::encode(password),
        urlencoding::encode(&csrf)
    );
    let request = http
        .client
        .post(format!("{base}/login"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ORIGIN, base)
        .header(reqwest::header::COOKIE, cookie_header(&cookies))
        .body(body);
    let response = http.send(request).map_err(|e| format!("POST /login: {e}"))?;
    if response.status != 303 {
        return Err(format!(
            "POST /login answered {} (expected 303): {}",
            response.status,
            String::from_utf8_lossy(&response.body).chars().take(500).collect::<String>()
        )
        .into());
    }
    for (name, value) in response.set_cookies() {
        if value.is_empty() {
            cookies.remove(&name);
        } else {
            cookies.insert(name, value);
        }
    }
    if !cookies.contains_key(SESSION_COOKIE) {
        return Err(format!("POST /login set no {SESSION_COOKIE} cookie").into());
    }
    Ok(cookie_header(&cookies))
}

fn cookie_header(cookies: &BTreeMap<String, String>) -> String {
    cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
}

/// The `value` of the `<input>` whose `name` is `name`, in either attribute order.
fn hidden_input_value(html: &str, name: &str) -> Option<String> {
    let needles = [format!("name=\"{name}\""), format!("name='{name}'"), format!("name={name}")];
    for tag in html.split('<').filter(|t| t.starts_with("input")) {
        let tag = tag.split('>').next().unwrap_or(tag);
        if !needles.iter().any(|n| tag.contains(n.as_str())) {
            continue;
        }
        let start = tag.find("value=")? + "value=".len();
        let rest = &tag[start..];
        let value = match rest.chars().next()? {
            q @ ('"' | '\'') => rest[1..].split(q).next()?,
            _ => rest.split(|c: char| c.is_whitespace() || c == '/').next()?,
        };
        return Some(
            value
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
    }
    None
}

/// Runs a reelbox subcommand against the data directory; returns its stdout.
fn cli(reelbox: &Path, args: &[&str], data: &Path, stdin: &str) -> Result<String> {
    let (sub, rest) = args.split_at(2.min(args.len()));
    let mut child = Command::new(reelbox)
        .args(sub)
        .arg("--data")
        .arg(data)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take()
        && !stdin.is_empty()
    {
        writeln!(input, "{stdin}")?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!(
            "reelbox {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Polls `url` until it answers 200, the process exits, or the time runs out.
fn wait_ready(http: &Http, process: &mut ProcessGuard, url: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Some(exited) = process.exited() {
            return Err(exited.into());
        }
        let addr = url.trim_start_matches("http://").split('/').next().unwrap_or_default();
        if TcpStream::connect(addr).is_ok() {
            match http.get(url, None) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("status {}", r.status),
                Err(e) => last = e.to_string(),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{} did not answer 200 on {url} within {limit:?} (last: {last})", process.name).into())
}

struct WrkResult {
    rps: f64,
    requests: u64,
    bytes_read: f64,
    p99: String,
    errors_non_2xx3xx: u64,
    socket_errors: u64,
}

fn wrk_run(wrk: &Path, url: &str, header: Option<&str>, seconds: u64) -> Result<WrkResult> {
    let mut command = Command::new(wrk);
    command.args([
        format!("-t{WRK_THREADS}"),
        format!("-c{WRK_CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--latency".to_owned(),
    ]);
    if let Some(header) = header {
        command.arg("-H").arg(header);
    }
    let output = command.arg(url).stdin(Stdio::null()).output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk {url} failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    parse_wrk(&text).ok_or_else(|| format!("could not read wrk output for {url}:\n{text}").into())
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut result = WrkResult {
        rps: 0.0,
        requests: 0,
        bytes_read: 0.0,
        p99: "-".to_owned(),
        errors_non_2xx3xx: 0,
        socket_errors: 0,
    };
    let mut saw_rps = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            result.rps = v.trim().parse().ok()?;
            saw_rps = true;
        } else if let Some(v) = line.strip_prefix("99%") {
            v.trim().clone_into(&mut result.p99);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.errors_non_2xx3xx = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            result.socket_errors =
                v.split(',').filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok()).sum();
        } else if line.contains(" requests in ") && line.ends_with(" read") {
            // "123456 requests in 10.00s, 1.23GB read"
            let mut words = line.split_whitespace();
            result.requests = words.next()?.parse().ok()?;
            let size = line.rsplit(", ").next()?.trim_end_matches(" read");
            result.bytes_read = parse_size(size)?;
        }
    }
    saw_rps.then_some(result)
}

/// wrk's sizes: "123.45KB" etc., binary units.
fn parse_size(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "" | "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * factor)
}

/// Tuned for the fastest small-file serving on loopback: with `sendfile on` (Debian's default)
/// nginx measured about half the requests/s for a 3 KiB file here, which would flatter reelbox.
fn nginx_config(dir: &Path, www: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "# generated by benches/http.rs\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes 2;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   types {{ text/html html; application/json json; }}\n\
         \x20   default_type application/octet-stream;\n\
         \x20   sendfile off;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       root {www};\n\
         \x20   }}\n\
         }}\n",
        www = www.display()
    )
}

/// An error and its sources on one line ("error sending request" alone says little).
fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status").into())
}

fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(extra.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn rate_row(
    out: &mut String,
    label: &str,
    [rr, nr, ratio, rp, np, target, met]: [&str; 7],
) -> std::fmt::Result {
    let line = format!("{label:<28} {rr:>13} {nr:>13} {ratio:>7} {rp:>12} {np:>12}  {target:<10} {met}");
    writeln!(out, "{}", line.trim_end())
}

fn rss_row(out: &mut String, label: &str, [value, target, met]: [&str; 3]) -> std::fmt::Result {
    let line = format!("{label:<28} {value:>10}  {target:<10} {met}");
    writeln!(out, "{}", line.trim_end())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "NO" }
}
