//! Helpers for the HTTPS tests: the real `openssl` and `curl` programs as TLS peers, a reqwest
//! client over rustls, and servers started with TLS flags.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Server;

/// What `reelbox doctor --config CONFIG --data DATA` prints.
pub fn doctor(config: &Path, data: &Path) -> String {
    let out = crate::common::reelbox()
        .args(["doctor", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .output()
        .expect("doctor");
    crate::common::text(&out.stdout)
}

/// Fail with how to install a missing peer program.
pub fn need(program: &str, package: &str) {
    let found = Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    let found = found.is_ok()
        || Command::new(program).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(
        found,
        "`{program}` is needed for this test: apt-get install {package} (or bash tests/run.sh --install-only)"
    );
}

/// A server on `data` with `--tls mode` on loopback HTTPS (and the redirect listener when `http`).
pub fn start_tls(data: &Path, logs: &Path, mode: &str, http: bool, extra: &[&str]) -> Server {
    Server::start_with(data, logs, |c| {
        c.args(["--tls", mode, "--https", "127.0.0.1:0"]);
        if http {
            c.args(["--http", "127.0.0.1:0"]);
        }
        c.args(extra);
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `host:port` of an `https://host:port` base URL.
pub fn authority(base: &str) -> String {
    base.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// The redirect listener's base URL, from the line the server printed.
pub fn redirect_base(server: &Server) -> String {
    server
        .stdout_lines()
        .iter()
        .find_map(|l| {
            l.strip_prefix("redirecting ").and_then(|r| r.split_whitespace().next()).map(String::from)
        })
        .expect("the server printed `redirecting http://… to HTTPS`")
}

/// One `openssl s_client` handshake with extra `args`; (whether a cipher was agreed, all output).
pub fn s_client(authority: &str, servername: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", authority, "-servername", servername])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let agreed = text.lines().any(|l| l.contains("Cipher is ") && !l.contains("(NONE)"));
    (agreed, text)
}

/// The SHA-256 fingerprint and `notAfter` of the certificate the server sends for `servername`.
pub fn served_cert(authority: &str, servername: &str) -> (String, String) {
    let (ok, text) = s_client(authority, servername, &[]);
    assert!(ok, "handshake with {authority} failed:\n{text}");
    let start = text.find("-----BEGIN CERTIFICATE-----").expect("certificate in s_client output");
    let end = text.find("-----END CERTIFICATE-----").expect("end of certificate")
        + "-----END CERTIFICATE-----".len();
    let pem = &text[start..end];
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-enddate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl x509");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(pem.as_bytes()).expect("write pem");
    let out = child.wait_with_output().expect("openssl x509");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let fp = text
        .lines()
        .find_map(|l| l.split_once("Fingerprint=").map(|(_, v)| v.to_string()))
        .expect("fingerprint");
    let end = text.lines().find_map(|l| l.strip_prefix("notAfter=").map(String::from)).expect("notAfter");
    (fp, end)
}

/// Poll `f` until it is true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

/// `curl` over HTTPS (certificate checks off: the test servers' certificates are their own),
/// keeping cookies in `jar`; (status, headers, body).
pub fn curl(jar: &Path, url: &str, args: &[&str]) -> (u16, String, String) {
    let headers = jar.with_extension("headers");
    let out = Command::new("curl")
        .args(["-sk", "--http2", "-c"])
        .arg(jar)
        .arg("-b")
        .arg(jar)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
    let headers = std::fs::read_to_string(&headers).unwrap_or_default();
    (code.trim().parse().unwrap_or(0), headers, body.to_string())
}

/// Sign in over HTTPS with curl; the cookie jar then holds the `__Host-` session cookie.
pub fn sign_in(jar: &Path, base: &str, name: &str, password: &str) {
    let (status, _, html) = curl(jar, &format!("{base}/login"), &[]);
    assert_eq!(status, 200, "GET /login over HTTPS");
    let csrf = crate::common::csrf_in(&html).expect("csrf on login page");
    let (status, headers, body) = curl(
        jar,
        &format!("{base}/login"),
        &[
            "-H",
            &format!("Origin: {base}"),
            "--data-urlencode",
            &format!("username={name}"),
            "--data-urlencode",
            &format!("password={password}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "next=/",
        ],
    );
    assert_eq!(status, 303, "sign-in over HTTPS: {body}");
    let cookie =
        headers.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: __host-reelbox_session="));
    assert!(
        cookie.is_some_and(|c| c.contains("Secure")),
        "HTTPS session cookie is __Host- and Secure:\n{headers}"
    );
}
