//! Upload benchmark: a large file over loopback into reelbox with hash verification, against the
//! machine's own limit measured in the same run on the same file.
//!
//! `cargo bench --bench upload` builds reelbox in release, starts it on a fresh data directory,
//! and for each upload path (the single-request `POST /api/v1/media`, streaming the file body,
//! and tus with 8 MiB PATCHes) writes a new file of `BENCH_UPLOAD_MIB` MiB (default 1024), then:
//!
//! - baseline: `openssl dgst -sha256` of the file (its digest is also what the client declares)
//!   and `dd ... conv=fdatasync` of the file into the data directory's filesystem; the machine's
//!   limit is the slower of the two;
//! - reelbox: the upload, timed from the first byte sent to the answer (the server hashes while
//!   it streams, fsyncs, renames, then re-reads the blob and verifies its hash before answering).
//!
//! It prints MB/s for each and the ratio to the limit (target ≥ 0.8×).
//! Needs `openssl` and `dd`. `BENCH_STRICT=1` makes a missed target fail the run.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const MIB: u64 = 1024 * 1024;
const DEFAULT_MIB: u64 = 1024;
const TUS_CHUNK: u64 = 8 * MIB;
const RATIO_TARGET: f64 = 0.8;
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "orchid-vW7q-Lt3x-lantern-92";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if std::env::var("BENCH_STRICT").is_ok_and(|v| v == "1") => {
            eprintln!("bench upload: a target was missed (BENCH_STRICT=1)");
            ExitCode::FAILURE
        }
        Ok(false) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench upload: error: {err}");
            ExitCode::FAILURE
        }
    }
}

struct Round {
    label: &'static str,
    sha_mbs: f64,
    dd_mbs: f64,
    upload_mbs: f64,
}

impl Round {
    fn limit(&self) -> f64 {
        self.sha_mbs.min(self.dd_mbs)
    }
    fn ratio(&self) -> f64 {
        if self.limit() > 0.0 { self.upload_mbs / self.limit() } else { 0.0 }
    }
}

fn run() -> Result<bool> {
    let mib = match std::env::var("BENCH_UPLOAD_MIB") {
        Ok(v) => v.trim().parse::<u64>().map_err(|e| format!("BENCH_UPLOAD_MIB={v:?}: {e}"))?.max(1),
        Err(_) => DEFAULT_MIB,
    };
    let size = mib * MIB;
    let reelbox = PathBuf::from(env!("CARGO_BIN_EXE_reelbox"));
    for (tool, arg, package) in [("openssl", "version", "openssl"), ("dd", "--version", "coreutils")] {
        if Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            return Err(format!("{tool} not found; install it (Debian: apt-get install {package})").into());
        }
    }

    // Declared first so it is dropped last, after the guard has stopped the server.
    let tmp = tempfile::Builder::new().prefix("reelbox-bench-upload-").tempdir()?;
    let data = tmp.path().join("data");
    fs::create_dir_all(&data)?;
    let file = tmp.path().join("upload.mp4");

    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let log_path = tmp.path().join("reelbox.log");
    let log = fs::File::create(&log_path)?;
    let child = Command::new(&reelbox)
        .args(["serve", "--data"])
        .arg(&data)
        .args(["--listen", &addr])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env("RUST_LOG", "warn")
        .spawn()
        .map_err(|e| format!("starting {}: {e}", reelbox.display()))?;
    let mut server = ProcessGuard { child };
    wait_ready(&mut server, &addr, Duration::from_secs(30))
        .map_err(|e| format!("{e}\n--- reelbox log ---\n{}", tail(&log_path, 40)))?;

    cli(
        &reelbox,
        &["user", "add", "--username", ADMIN, "--admin", "--password-stdin"],
        &data,
        ADMIN_PASSWORD,
    )?;
    let token_out = cli(&reelbox, &["token", "create", "--username", ADMIN], &data, "")?;
    let token =
        token_out.lines().map(str::trim).rfind(|l| !l.is_empty()).ok_or("no token printed")?.to_owned();
    let auth = format!("Bearer {token}");
    let category = {
        let body = br#"{"name":"Bench uploads"}"#;
        let headers = [("Authorization", auth.clone()), ("Content-Type", "application/json".into())];
        let r = request(&addr, "POST", "/api/v1/categories", &headers, Body::Bytes(body))?;
        r.expect(201, "create a category")?;
        r.json()?["id"].as_i64().ok_or("category id")?
    };

    eprintln!("bench upload: {mib} MiB per upload; data directory on {}", fs_type(&data));
    let mut rounds = Vec::new();
    for (seed, label) in [(1u64, "single request (POST)"), (2, "tus, 8 MiB PATCHes")] {
        write_file(&file, size, seed)?;
        let (hash, sha_secs) = openssl_sha256(&file)?;
        let dd_secs = dd_fdatasync(&file, &data.join("dd-baseline.out"))?;
        let started = Instant::now();
        let id = if seed == 1 {
            upload_single(&addr, &auth, category, &file, size, &hash)?
        } else {
            upload_tus(&addr, &auth, category, &file, size, &hash)?
        };
        let upload_secs = started.elapsed().as_secs_f64();
        let item = request(
            &addr,
            "GET",
            &format!("/api/v1/media/{id}"),
            &[("Authorization", auth.clone())],
            Body::None,
        )?;
        item.expect(200, "read the item back")?;
        let item = item.json()?;
        if item["sha256"].as_str() != Some(hash.as_str()) || item["size"].as_u64() != Some(size) {
            return Err(format!("the stored item does not match the file: {item}").into());
        }
        let mbs = |secs: f64| if secs > 0.0 { size as f64 / secs / 1e6 } else { 0.0 };
        rounds.push(Round {
            label,
            sha_mbs: mbs(sha_secs),
            dd_mbs: mbs(dd_secs),
            upload_mbs: mbs(upload_secs),
        });
    }
    drop(server);

    let mut out = String::new();
    writeln!(out, "\nupload of {mib} MiB over loopback with hash verification (MB/s = 10^6 bytes/s)\n")?;
    writeln!(
        out,
        "{:<24} {:>12} {:>12} {:>12} {:>10} {:>7}  {:<8} met",
        "path", "reelbox", "sha256", "dd+fsync", "limit", "ratio", "target"
    )?;
    let mut all_met = true;
    for r in &rounds {
        let met = r.ratio() >= RATIO_TARGET;
        all_met &= met;
        writeln!(
            out,
            "{:<24} {:>12.1} {:>12.1} {:>12.1} {:>10.1} {:>6.2}x  >= {RATIO_TARGET:.1}x  {}",
            r.label,
            r.upload_mbs,
            r.sha_mbs,
            r.dd_mbs,
            r.limit(),
            r.ratio(),
            if met { "yes" } else { "NO" }
        )?;
    }
    writeln!(out, "\n{}", if all_met { "all targets met" } else { "TARGETS MISSED" })?;
    print!("{out}");
    std::io::stdout().flush()?;
    Ok(all_met)
}

/// An MP4-looking file (so reelbox accepts it as video) of incompressible-looking bytes.
fn write_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, fs::File::create(path)?);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; MIB as usize];
    for word in block.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    block[..24].copy_from_slice(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2");
    let mut written = 0u64;
    let mut n = 0u64;
    while written < size {
        if n > 0 {
            // Every MiB differs, so nothing downstream can shortcut repeated blocks.
            block[..8].copy_from_slice(&(n ^ (seed << 32)).to_le_bytes());
        }
        let len = (size - written).min(MIB) as usize;
        f.write_all(&block[..len])?;
        written += len as u64;
        n += 1;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// The file's SHA-256 (hex) and the seconds `openssl dgst -sha256` took.
fn openssl_sha256(path: &Path) -> Result<(String, f64)> {
    let started = Instant::now();
    let out = Command::new("openssl").args(["dgst", "-sha256", "-r"]).arg(path).output()?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("openssl dgst failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8(out.stdout)?;
    let hash = text.split_whitespace().next().ok_or("no digest from openssl")?.to_ascii_lowercase();
    if hash.len() != 64 {
        return Err(format!("unexpected openssl output: {text}").into());
    }
    Ok((hash, secs))
}

/// Seconds `dd` took to copy the file to `dest` and fdatasync it; `dest` is removed afterwards.
fn dd_fdatasync(src: &Path, dest: &Path) -> Result<f64> {
    let started = Instant::now();
    let status = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", dest.display()))
        .args(["bs=8M", "conv=fdatasync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let secs = started.elapsed().as_secs_f64();
    let _ = fs::remove_file(dest);
    if !status.success() {
        return Err(format!("dd failed: {status}").into());
    }
    Ok(secs)
}

fn upload_single(addr: &str, auth: &str, category: i64, file: &Path, size: u64, hash: &str) -> Result<i64> {
    let digest = format!("sha-256=:{}:", base64_of_hex(hash)?);
    let headers = [("Authorization", auth.to_owned()), ("Content-Digest", digest)];
    let path = format!("/api/v1/media?category={category}&filename=bench-single.mp4");
    let r = request(addr, "POST", &path, &headers, Body::File(file, 0, size))?;
    r.expect(201, "single-request upload")?;
    r.json()?["id"].as_i64().ok_or_else(|| "no id in the upload's answer".into())
}

fn upload_tus(addr: &str, auth: &str, category: i64, file: &Path, size: u64, hash: &str) -> Result<i64> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let metadata = format!(
        "filename {},category {},sha256 {}",
        b64("bench-tus.mp4"),
        b64(&category.to_string()),
        b64(hash)
    );
    let tus = |extra: Vec<(&'static str, String)>| {
        let mut h = vec![("Authorization", auth.to_owned()), ("Tus-Resumable", "1.0.0".to_owned())];
        h.extend(extra);
        h
    };
    let created = request(
        addr,
        "POST",
        "/api/v1/uploads",
        &tus(vec![("Upload-Length", size.to_string()), ("Upload-Metadata", metadata)]),
        Body::None,
    )?;
    created.expect(201, "tus creation")?;
    let location = created.header("location").ok_or("no Location")?;
    let id: i64 = created.header("x-media-id").ok_or("no X-Media-Id")?.parse()?;
    let path = location.strip_prefix(&format!("http://{addr}")).unwrap_or(&location).to_owned();
    let mut offset = 0;
    while offset < size {
        let len = TUS_CHUNK.min(size - offset);
        let headers = tus(vec![
            ("Upload-Offset", offset.to_string()),
            ("Content-Type", "application/offset+octet-stream".into()),
        ]);
        let r = request(addr, "PATCH", &path, &headers, Body::File(file, offset, len))?;
        r.expect(204, "tus PATCH")?;
        offset = r.header("upload-offset").ok_or("no Upload-Offset")?.parse()?;
    }
    Ok(id)
}

fn base64_of_hex(hex: &str) -> Result<String> {
    use base64::Engine;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// (file, offset, length): streamed from disk, never held in memory.
    File(&'a Path, u64, u64),
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
    fn expect(&self, status: u16, what: &str) -> Result<()> {
        if self.status == status {
            return Ok(());
        }
        Err(format!(
            "{what}: expected {status}, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        )
        .into())
    }
    fn json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// One HTTP/1.1 request on its own connection. A file body goes from the page cache to the
/// socket with `io::copy` (sendfile/splice on Linux), as a streaming client would send it.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Body<'_>,
) -> Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let len = match body {
        Body::None => 0,
        Body::Bytes(b) => b.len() as u64,
        Body::File(_, _, len) => len,
    };
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let sent = match body {
        Body::None => Ok(()),
        Body::Bytes(b) => stream.write_all(b),
        Body::File(path, offset, len) => (|| {
            let mut f = fs::File::open(path)?;
            f.seek(SeekFrom::Start(offset))?;
            let copied = std::io::copy(&mut f.take(len), &mut stream)?;
            if copied == len { Ok(()) } else { Err(std::io::Error::other("file shorter than expected")) }
        })(),
    };
    // An early answer (an error) closes the connection under us: read it rather than fail here.
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let (Some(split), Ok(_)) = (split, &read) else {
        sent?;
        read?;
        return Err("no HTTP answer".into());
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let mut body = raw[split + 4..].to_vec();
    let response = Response { status, head, body: Vec::new() };
    if response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    }
    Ok(Response { body, ..response })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or("bad chunked body")?;
        let size_text = std::str::from_utf8(&raw[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(raw.get(..size).ok_or("short chunk")?);
        raw = raw.get(size + 2..).ok_or("short chunk")?;
    }
}

/// The server, stopped (SIGTERM, then SIGKILL) when the guard goes away, also on errors.
struct ProcessGuard {
    child: Child,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
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
        eprintln!("bench upload: reelbox did not stop on SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(server: &mut ProcessGuard, addr: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("reelbox exited early: {status}").into());
        }
        if let Ok(r) = request(addr, "GET", "/healthz", &[], Body::None)
            && r.status == 200
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("reelbox did not answer 200 on /healthz within {limit:?}").into())
}

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

fn fs_type(path: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an unknown filesystem".into())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
