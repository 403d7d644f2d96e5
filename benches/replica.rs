//! Replica benchmark (issue 7) against two real reelbox processes on loopback: a primary on
//! 127.0.0.2 and a replica on 127.0.0.3 sharing a replication secret.
//!
//! 1. **Replica lag** at a paced 500 write transactions/s (`POST /api/v1/categories` on the
//!    primary): for each write, the time from the primary's answer to the replica's `/healthz`
//!    showing a position that covers it; p50 and p99 (target p99 ≤ 250 ms). The primary tells
//!    which position covers a write in `X-Reelbox-Position` (the header it gives forwarded
//!    writes; the bench sends `X-Reelbox-Forwarded` to get it), which it sends once the write is
//!    shipped, so this is shipped→applied; commit→shipped is `benches/ship.rs`'s figure.
//! 2. **Failover**: the primary is killed with SIGKILL; a client that tries the other address on
//!    a connection error reads from the replica — the time to the first successful read (target
//!    ≤ 1 s); then `reelbox replica promote` is run and the time from the kill to the first
//!    accepted write is taken (target ≤ 30 s, the operator's command included, here immediate).
//!
//! `cargo bench --bench replica`; `BENCH_LAG_SECS` (default 10) sets the paced run.

use std::error::Error;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const SECRET: &str = "0b7c3d9e1f2a4b6c8d0e2f4a6b8c0d1e3f5a7b9c1d3e5f7a9b0c2d4e6f8a1b3c";

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench replica: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench replica: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A server process killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reelbox() -> &'static str {
    env!("CARGO_BIN_EXE_reelbox")
}

fn free_port(ip: &str) -> Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

fn start(data: &Path, ip: &str, secret: &Path, extra: &[&str]) -> Result<Node> {
    let port = free_port(ip)?;
    let log = std::fs::File::create(data.with_extension("log"))?;
    let child = Command::new(reelbox())
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args(["--listen", &format!("{ip}:{port}")])
        .arg("--replication-secret-file")
        .arg(secret)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(Node { child, base: format!("http://{ip}:{port}") })
}

fn cli(data: &Path, args: &[&str], stdin: &str) -> Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(reelbox())
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

async fn health(client: &reqwest::Client, base: &str) -> Option<serde_json::Value> {
    client.get(format!("{base}/healthz")).send().await.ok()?.json().await.ok()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if health(client, base).await.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{base} did not come up").into())
}

/// The replica's applied position as (generation, txid).
async fn applied(client: &reqwest::Client, base: &str) -> Option<(String, u64)> {
    let h = health(client, base).await?;
    Some((h["position"]["generation"].as_str()?.to_string(), h["position"]["txid"].as_u64()?))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn run() -> Result<()> {
    let lag_secs: usize = std::env::var("BENCH_LAG_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let scratch = tempfile::Builder::new().prefix("reelbox-bench-replica").tempdir()?;
    let secret = scratch.path().join("secret");
    std::fs::write(&secret, SECRET)?;
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    std::fs::create_dir_all(&a)?;
    cli(
        &a,
        &["user", "add", "--username", "admin", "--admin", "--password-stdin"],
        "violet tractor umbrella",
    )?;
    let token = cli(&a, &["token", "create", "--username", "admin"], "")?.trim().to_string();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let primary = start(&a, "127.0.0.2", &secret, &[])?;
    wait_healthy(&client, &primary.base).await?;
    let replica = start(&b, "127.0.0.3", &secret, &["--role", "replica", "--primary", &primary.base])?;
    wait_healthy(&client, &replica.base).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&client, &replica.base).await.is_none() {
        if Instant::now() > deadline {
            return Err("the replica never started following".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 1. Lag at 500 writes/s.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let seen: Arc<Mutex<Vec<(String, u64, Instant)>>> = Arc::default();
    let watcher = {
        let (client, base, seen, watching) =
            (client.clone(), replica.base.clone(), seen.clone(), watching.clone());
        tokio::spawn(async move {
            let mut last = None;
            while watching.load(std::sync::atomic::Ordering::Acquire) {
                if let Some(pos) = applied(&client, &base).await
                    && last.as_ref() != Some(&pos)
                {
                    last = Some(pos.clone());
                    if let Ok(mut v) = seen.lock() {
                        v.push((pos.0, pos.1, Instant::now()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let n = lag_secs * 500;
    let started = Instant::now();
    let mut writes = Vec::with_capacity(n);
    for i in 0..n {
        let due = started + Duration::from_micros(2000 * i as u64);
        tokio::time::sleep_until(due.into()).await;
        let (client, base, token) = (client.clone(), primary.base.clone(), token.clone());
        writes.push(tokio::spawn(async move {
            let res = client
                .post(format!("{base}/api/v1/categories"))
                .bearer_auth(&token)
                .header("x-reelbox-forwarded", "1")
                .json(&serde_json::json!({"name": format!("bench {i}")}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let answered = Instant::now();
            if res.status().as_u16() != 201 {
                return Err(format!("write {i}: HTTP {}", res.status()));
            }
            let pos = res
                .headers()
                .get("x-reelbox-position")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once('/'))
                .and_then(|(g, t)| Some((g.to_string(), t.parse::<u64>().ok()?)))
                .ok_or(format!("write {i}: no X-Reelbox-Position"))?;
            Ok::<_, String>((pos, answered))
        }));
    }
    let mut acked = Vec::with_capacity(n);
    for w in writes {
        acked.push(w.await??);
    }
    let offered = n as f64 / started.elapsed().as_secs_f64();
    let last_txid = acked.iter().map(|((_, t), _)| *t).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().map_err(|_| "poisoned")?.last().is_none_or(|(_, t, _)| *t < last_txid) {
        if Instant::now() > deadline {
            return Err("the replica never caught up".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watching.store(false, std::sync::atomic::Ordering::Release);
    let _ = watcher.await;
    let seen = seen.lock().map_err(|_| "poisoned")?.clone();
    let mut lags = Vec::with_capacity(n);
    for ((generation, txid), answered) in &acked {
        let at = seen
            .iter()
            .find(|(g, t, _)| g == generation && t >= txid)
            .map(|(_, _, at)| *at)
            .ok_or("a write never reached the replica")?;
        lags.push(at.saturating_duration_since(*answered).as_secs_f64() * 1000.0);
    }
    lags.sort_by(|a, b| a.total_cmp(b));
    println!(
        "replica lag at {offered:.0} writes/s for {lag_secs} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 250 ms)",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );

    // 2. Failover.
    let nodes = [primary.base.clone(), replica.base.clone()];
    let read = |client: reqwest::Client, token: String| {
        let nodes = nodes.clone();
        async move {
            for base in &nodes {
                if let Ok(res) =
                    client.get(format!("{base}/api/v1/categories")).bearer_auth(&token).send().await
                    && res.status().is_success()
                    && res.bytes().await.is_ok()
                {
                    return true;
                }
            }
            false
        }
    };
    if !read(client.clone(), token.clone()).await {
        return Err("reads fail before the failover".into());
    }
    let mut primary = primary;
    let killed = Instant::now();
    primary.child.kill()?;
    let _ = primary.child.wait();
    while !read(client.clone(), token.clone()).await {
        if killed.elapsed() > Duration::from_secs(30) {
            return Err("no read succeeded after the primary died".into());
        }
    }
    let first_read = killed.elapsed();
    cli(&b, &["replica", "promote"], "")?;
    loop {
        let res = client
            .post(format!("{}/api/v1/categories", replica.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "after failover"}))
            .send()
            .await;
        if res.is_ok_and(|r| r.status().as_u16() == 201) {
            break;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            return Err("no write succeeded after the promotion".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_write = killed.elapsed();
    println!(
        "failover: first read via the second address {:.0} ms after the kill (target <= 1 s); first accepted write {:.2} s after the kill, promote included (target <= 30 s)",
        first_read.as_secs_f64() * 1000.0,
        first_write.as_secs_f64()
    );
    Ok(())
}
