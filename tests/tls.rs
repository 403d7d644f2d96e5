//! HTTPS against the real binary on loopback: the TLS policy probed with `openssl s_client`,
//! the HTTP→HTTPS redirect, HSTS, HTTP/2, `files` reloading, `self-signed` kept across restarts,
//! the status on the dashboard and in `reelbox doctor`, and clear refusals of bad settings.

mod common;
mod tls_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{PASSWORD, Server, add_user_in, http, location, reelbox, text};
use tls_support::*;

fn tools() {
    need("openssl", "openssl");
    need("curl", "curl");
}

/// An RSA certificate and key made by openssl (for the ECDHE-RSA and RSA-key-exchange probes).
fn openssl_rsa_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(out.status.success(), "openssl req: {}", text(&out.stderr));
    (cert, key)
}

/// An ECDSA certificate and key made with rcgen for `name`.
fn rcgen_pair(dir: &Path, file: &str, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![name.to_string(), "127.0.0.1".into()]).expect("params");
    let cert = params.self_signed(&key).expect("self-signed");
    let (c, k) = (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, key.serialize_pem()).expect("write key");
    (c, k)
}

#[test]
fn tls_policy_refuses_old_versions_cbc_and_rsa_key_exchange() {
    tools();
    let dir = tempfile::tempdir().expect("tempdir");
    // ECDSA certificate: the self-signed one reelbox makes.
    let ecdsa = start_tls(&dir.path().join("ecdsa"), dir.path(), "self-signed", false, &[]);
    let a = authority(&ecdsa.base);
    let refused = [
        // TLS 1.0 and 1.1 offered at security level 0, so the client really proposes them.
        vec!["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
        vec!["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        // CBC suites, with ECDHE.
        vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
        vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"],
        // Key exchange groups outside X25519/P-256/P-384.
        vec!["-tls1_3", "-groups", "P-521"],
        vec!["-tls1_3", "-groups", "ffdhe2048"],
    ];
    for args in &refused {
        let (agreed, out) = s_client(&a, "localhost", args);
        assert!(!agreed, "{args:?} must be refused:\n{out}");
    }
    for (args, expect) in [
        (vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "ECDHE-ECDSA-AES128-GCM-SHA256"),
        (vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], "ECDHE-ECDSA-AES256-GCM-SHA384"),
        (vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"], "ECDHE-ECDSA-CHACHA20-POLY1305"),
        (vec!["-tls1_3"], "TLSv1.3"),
        (vec!["-tls1_3", "-groups", "X25519"], "Server Temp Key: X25519"),
        (vec!["-tls1_3", "-groups", "P-256"], "Server Temp Key: ECDH, prime256v1"),
        (vec!["-tls1_3", "-groups", "P-384"], "Server Temp Key: ECDH, secp384r1"),
        // TLS 1.2 with an ECDSA P-256 certificate: the client must list P-256 for the signature.
        (vec!["-tls1_2", "-groups", "P-384:P-256"], "Server Temp Key: ECDH, secp384r1"),
    ] {
        let (agreed, out) = s_client(&a, "localhost", &args);
        assert!(agreed && out.contains(expect), "{args:?} must be accepted with {expect}:\n{out}");
    }

    // RSA certificate (a school's own CA often issues RSA): ECDHE-RSA with GCM works, RSA key
    // exchange and CBC do not.
    let (cert, key) = openssl_rsa_pair(dir.path(), "rsa");
    let rsa = start_tls(
        &dir.path().join("rsa"),
        dir.path(),
        "files",
        false,
        &["--cert-file", cert.to_str().expect("utf-8"), "--key-file", key.to_str().expect("utf-8")],
    );
    let a = authority(&rsa.base);
    for suite in [
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-RSA-AES256-SHA384",
    ] {
        let (agreed, out) = s_client(&a, "localhost", &["-tls1_2", "-cipher", suite]);
        assert!(!agreed, "{suite} must be refused:\n{out}");
    }
    let (agreed, out) = s_client(&a, "localhost", &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]);
    assert!(agreed && out.contains("ECDHE-RSA-AES128-GCM-SHA256"), "ECDHE-RSA-AES128-GCM accepted:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirects_with_308_and_https_has_hsts_h2_and_status() {
    tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start_tls(&data, dir.path(), "self-signed", true, &[]);
    assert!(server.base.starts_with("https://127.0.0.1:"), "{}", server.base);
    assert!(!server.stderr().contains("TLS is off"));
    let plain = redirect_base(&server);

    // Every path and method goes to the same path on HTTPS with 308 (method and body kept).
    let res = http().get(format!("{plain}/library?q=volcano")).send().await.expect("GET over HTTP");
    assert_eq!(res.status(), 308);
    assert_eq!(location(&res), format!("{}/library?q=volcano", server.base));
    let res = http().post(format!("{plain}/login")).body("x=1").send().await.expect("POST over HTTP");
    assert_eq!(res.status(), 308);
    assert_eq!(location(&res), format!("{}/login", server.base));
    // A Host header that is not a host name is not echoed into Location.
    let res = http().get(format!("{plain}/")).header("Host", "evil.example/x").send().await.expect("GET");
    assert_eq!(res.status(), 400);
    // /healthz answers on plain HTTP too (monitoring), without redirect.
    let res = http().get(format!("{plain}/healthz")).send().await.expect("healthz over HTTP");
    assert_eq!(res.status(), 200);

    // HTTPS: HTTP/2 by ALPN (curl and openssl as independent clients), HSTS for two years.
    let jar = dir.path().join("cookies.txt");
    let (status, headers, _) = curl(&jar, &server.url("/healthz"), &[]);
    assert_eq!(status, 200);
    assert!(headers.starts_with("HTTP/2 200"), "HTTP/2 negotiated:\n{headers}");
    let hsts = headers.lines().find_map(|l| l.strip_prefix("strict-transport-security: ")).unwrap_or("");
    assert!(hsts.starts_with("max-age=63072000"), "HSTS: {headers}");
    let (_, out) = s_client(&authority(&server.base), "localhost", &["-alpn", "h2"]);
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let (_, out) = s_client(&authority(&server.base), "localhost", &["-alpn", "http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");

    // The admin dashboard shows where the certificate comes from and when it expires.
    let added = add_user_in(&data, "head", PASSWORD, true);
    assert!(added.status.success(), "{}", text(&added.stderr));
    sign_in(&jar, &server.base, "head", PASSWORD);
    let (status, _, html) = curl(&jar, &server.url("/admin"), &[]);
    assert_eq!(status, 200, "GET /admin");
    assert!(html.contains("id=\"https-heading\""), "HTTPS card on the dashboard");
    assert!(html.contains("self-signed") && html.contains("localhost"), "mode and names shown");
    assert!(html.contains("days left"), "expiry shown");

    // And `reelbox doctor` reports it from the data directory.
    let config = dir.path().join("reelbox.toml");
    std::fs::write(&config, "[tls]\nmode = \"self-signed\"\nhttps = \"127.0.0.1:0\"\nhttp = \"off\"\n")
        .expect("config");
    let said = doctor(&config, &data);
    assert!(said.contains("[ok  ] https: self-signed: localhost"), "{said}");
}

#[test]
fn files_mode_picks_up_replaced_certificate_without_restart() {
    tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let (cert, key) = rcgen_pair(&certs, "site", "first.school.test");
    let server = start_tls(
        &dir.path().join("data"),
        dir.path(),
        "files",
        false,
        &["--cert-file", cert.to_str().expect("utf-8"), "--key-file", key.to_str().expect("utf-8")],
    );
    let a = authority(&server.base);
    let (first, _) = served_cert(&a, "localhost");

    // The school's IT replaces both files (as certbot or a deploy script would: write, rename).
    let (c2, k2) = rcgen_pair(&certs, "next", "second.school.test");
    std::fs::rename(&k2, &key).expect("swap key");
    std::fs::rename(&c2, &cert).expect("swap cert");
    let mut second = String::new();
    assert!(
        wait_for(Duration::from_secs(15), || {
            second = served_cert(&a, "localhost").0;
            second != first
        }),
        "new connections get the new certificate without a restart; log:\n{}",
        server.stderr()
    );
    assert!(server.stderr().contains("certificate files changed"), "the reload is logged");

    // A broken replacement keeps the working certificate in use and says why.
    std::fs::write(&cert, "not a certificate\n").expect("break cert");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(served_cert(&a, "localhost").0, second, "still serving the last good pair");
    assert!(
        wait_for(Duration::from_secs(5), || server.stderr().contains("cannot be used yet")),
        "the failure is logged:\n{}",
        server.stderr()
    );
}

#[test]
fn self_signed_certificate_is_made_once_and_kept() {
    tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = start_tls(&data, dir.path(), "self-signed", false, &[]);
    let (first, until) = served_cert(&authority(&server.base), "localhost");
    let key = data.join("tls/self-signed/key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("key file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is readable by its owner only");
    let status = server.terminate(Duration::from_secs(30)).expect("stops");
    assert!(status.success());
    drop(server);

    let server = start_tls(&data, dir.path(), "self-signed", false, &[]);
    let (again, until_again) = served_cert(&authority(&server.base), "localhost");
    assert_eq!(first, again, "the same certificate after a restart");
    assert_eq!(until, until_again);
}

#[test]
fn bad_tls_settings_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        reelbox().args(["serve", "--data"]).arg(&data).args(args).output().expect("run serve")
    };
    let out = run(&["--tls", "acme", "--https", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--domain"), "{}", text(&out.stderr));

    let out = run(&["--tls", "files", "--https", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--cert-file"), "{}", text(&out.stderr));

    let out = run(&["--tls", "sometimes"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("acme, files, self-signed or off"), "{}", text(&out.stderr));

    let missing = dir.path().join("missing.pem");
    let m = missing.to_str().expect("utf-8");
    let out = run(&["--tls", "files", "--https", "127.0.0.1:0", "--cert-file", m, "--key-file", m]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("HTTPS cannot start") && err.contains("missing.pem"), "{err}");

    // A key that does not belong to the certificate.
    let (cert, _) = rcgen_pair(dir.path(), "a", "a.school.test");
    let (_, other_key) = rcgen_pair(dir.path(), "b", "b.school.test");
    let out = run(&[
        "--tls",
        "files",
        "--https",
        "127.0.0.1:0",
        "--cert-file",
        cert.to_str().expect("utf-8"),
        "--key-file",
        other_key.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("do not belong together"), "{}", text(&out.stderr));

    // Plain HTTP still works, with a warning in the log.
    let server = Server::start_with(&data, dir.path(), |_| {}).expect("plain HTTP server");
    assert!(server.base.starts_with("http://"));
    assert!(server.stderr().contains("TLS is off"), "{}", server.stderr());
}
