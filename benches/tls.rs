//! TLS handshake benchmark: full handshakes per second against reelbox and, in the same run,
//! against `openssl s_server` with the same certificate and key (reelbox's self-signed ECDSA
//! P-256 pair), for TLS 1.3 and TLS 1.2.
//!
//! `cargo bench --bench tls` builds reelbox in release, starts it with `--tls self-signed` on a
//! fresh data directory, starts `openssl s_server` on the pair reelbox generated, then runs a
//! rustls client that makes `BENCH_HANDSHAKES` (default 2000) sequential full handshakes
//! (resumption off, X25519) against each, after a warm-up. It prints handshakes/s and the ratio.
//!
//! Needs `openssl` (Debian: `apt-get install openssl`).

use std::error::Error;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const WARM_UP: usize = 50;
const DEFAULT_HANDSHAKES: usize = 2000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench tls: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A process killed when dropped.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on 127.0.0.1:{port}").into())
}

/// Accepts any certificate (both servers use the same self-signed one) but still checks the
/// handshake signatures, so the server does all of its usual work.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client(version: &'static rustls::SupportedProtocolVersion) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// One full handshake, then close_notify.
fn handshake(config: &Arc<rustls::ClientConfig>, port: u16) -> Result<()> {
    let mut sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_nodelay(true)?;
    let mut conn =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("localhost")?.to_owned())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    Ok(())
}

/// Handshakes per second over `n` sequential handshakes.
fn measure(config: &Arc<rustls::ClientConfig>, port: u16, n: usize) -> Result<f64> {
    for _ in 0..WARM_UP {
        handshake(config, port)?;
    }
    let start = Instant::now();
    for _ in 0..n {
        handshake(config, port)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn run() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let n = match std::env::var("BENCH_HANDSHAKES") {
        Ok(v) => v.trim().parse::<usize>().map_err(|e| format!("BENCH_HANDSHAKES={v:?}: {e}"))?.max(1),
        Err(_) => DEFAULT_HANDSHAKES,
    };
    if Command::new("openssl").arg("version").stdout(Stdio::null()).status().is_err() {
        return Err("openssl not found; install it with: apt-get install openssl".into());
    }
    let tmp = tempfile::Builder::new().prefix("reelbox-bench-tls-").tempdir()?;
    let data = tmp.path().join("data");

    let port = free_port()?;
    let log = std::fs::File::create(tmp.path().join("reelbox.log"))?;
    let _reelbox = Guard(
        Command::new(env!("CARGO_BIN_EXE_reelbox"))
            .args(["serve", "--data"])
            .arg(&data)
            .args(["--tls", "self-signed", "--https", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .env("REELBOX_TRANSCODE__FFMPEG", "/nonexistent/ffmpeg")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    wait_port(port)?;

    let cert = data.join("tls/self-signed/cert.pem");
    let key = data.join("tls/self-signed/key.pem");
    let openssl_port = free_port()?;
    let _openssl = Guard(openssl_server(&cert, &key, openssl_port)?);
    wait_port(openssl_port)?;

    println!(
        "TLS full handshakes per second, {n} sequential handshakes each, same certificate (ECDSA P-256), X25519"
    );
    println!("{:<10} {:>14} {:>16} {:>8}", "protocol", "reelbox", "openssl s_server", "ratio");
    for (name, version) in [("TLS 1.3", &rustls::version::TLS13), ("TLS 1.2", &rustls::version::TLS12)] {
        let config = client(version)?;
        let ours = measure(&config, port, n)?;
        let theirs = measure(&config, openssl_port, n)?;
        println!("{name:<10} {ours:>14.0} {theirs:>16.0} {:>7.2}x", ours / theirs);
        std::io::stdout().flush()?;
    }
    Ok(())
}

fn openssl_server(cert: &Path, key: &Path, port: u16) -> Result<Child> {
    Ok(Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}
