//! ACME end to end against Debian's `pebble` (a real ACME server) on loopback: a certificate is
//! issued by TLS-ALPN-01 on reelbox's HTTPS port and served, renewed while the server runs
//! (pebble issues 45-second certificates here), and after a restart the cached account is used
//! again — no new account is registered.
//!
//! pebble resolves names through `pebble-challtestsrv` (same package), whose DNS answers
//! 127.0.0.1 for every name. pebble's own HTTPS uses a CA made by the test, which reelbox is
//! told to trust with `--acme-ca-file`.

mod common;
mod tls_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, text};
use tls_support::*;

const DOMAIN: &str = "media.school.test";
const VALIDITY_SECS: u64 = 45;

/// A peer process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn need_pebble() {
    for program in ["pebble", "pebble-challtestsrv"] {
        let found =
            Command::new(program).arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(
            found,
            "`{program}` is needed for the ACME test: apt-get install pebble (or bash tests/run.sh --install-only)"
        );
    }
}

/// A CA and a certificate for pebble's own HTTPS listener (127.0.0.1 and localhost), signed by it.
fn pebble_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "reelbox test ACME CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()]).expect("params");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).expect("signed");
    let paths = (dir.join("ca.pem"), dir.join("pebble.crt"), dir.join("pebble.key"));
    std::fs::write(&paths.0, ca_cert.pem()).expect("write ca");
    std::fs::write(&paths.1, cert.pem()).expect("write cert");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write key");
    paths
}

struct Pebble {
    _dns: Peer,
    _pebble: Peer,
    directory: String,
    management: u16,
    log: PathBuf,
}

fn start_pebble(dir: &Path, tls_port: u16, cert: &Path, key: &Path) -> Pebble {
    let (dns_port, mgmt_dns, listen, mgmt, http) =
        (free_port(), free_port(), free_port(), free_port(), free_port());
    let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
    let dns = Command::new("pebble-challtestsrv")
        .args(["-dns01", &format!("127.0.0.1:{dns_port}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args([
            "-management",
            &format!("127.0.0.1:{mgmt_dns}"),
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ])
        .stdout(log("challtestsrv.log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start pebble-challtestsrv");
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": cert, "privateKey": key,
        "httpPort": http,
        // TLS-ALPN-01 validation connects here: reelbox's HTTPS port.
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": VALIDITY_SECS,
    }});
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string()).expect("pebble config");
    let pebble = Command::new("pebble")
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        // No random nonce rejections: each order should succeed first time, so counts are exact.
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log("pebble.log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start pebble");
    let up =
        wait_for(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok());
    assert!(
        up,
        "pebble did not start: {}",
        std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
    );
    Pebble {
        _dns: Peer(dns),
        _pebble: Peer(pebble),
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management: mgmt,
        log: dir.join("pebble.log"),
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn acme_certificate_issued_served_renewed_and_account_reused() {
    need("openssl", "openssl");
    need("curl", "curl");
    need_pebble();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, pebble_cert, pebble_key) = pebble_tls(dir.path());
    let https_port = free_port();
    let pebble = start_pebble(dir.path(), https_port, &pebble_cert, &pebble_key);
    let data = dir.path().join("data");
    let args = [
        "--domain".to_string(),
        DOMAIN.to_string(),
        "--acme-directory".into(),
        pebble.directory.clone(),
        "--acme-ca-file".into(),
        ca.display().to_string(),
    ];
    let start = || {
        Server::start_with(&data, dir.path(), |c| {
            c.args(["--tls", "acme", "--https", &format!("127.0.0.1:{https_port}")]).args(&args);
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut server = start();
    let a = authority(&server.base);
    let issued = |s: &Server| count(&s.stderr(), "certificate issued and cached");

    // Issued and served: the certificate verifies against pebble's root for the domain.
    assert!(
        wait_for(Duration::from_secs(60), || server.stderr().contains("certificate issued and cached")),
        "no certificate issued; reelbox log:\n{}\npebble log:\n{}",
        server.stderr(),
        std::fs::read_to_string(&pebble.log).unwrap_or_default()
    );
    let root = dir.path().join("pebble-root.pem");
    let out = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&ca)
        .arg("-o")
        .arg(&root)
        .arg(format!("https://127.0.0.1:{}/roots/0", pebble.management))
        .output()
        .expect("curl pebble root");
    assert!(out.status.success(), "pebble root: {}", text(&out.stderr));
    let root_arg = root.display().to_string();
    let (ok, out) =
        s_client(&a, DOMAIN, &["-CAfile", &root_arg, "-verify_hostname", DOMAIN, "-verify_return_error"]);
    assert!(ok && out.contains("Verify return code: 0 (ok)"), "served certificate verifies:\n{out}");
    let (first, _) = served_cert(&a, DOMAIN);

    // Renewed while running: at two thirds of the validity a new certificate is ordered and used.
    let pid = server.pid();
    let mut renewed = String::new();
    assert!(
        wait_for(Duration::from_secs(VALIDITY_SECS * 2 + 30), || {
            renewed = served_cert(&a, DOMAIN).0;
            renewed != first && issued(&server) >= 2
        }),
        "no renewal; reelbox log:\n{}",
        server.stderr()
    );
    assert_eq!(server.pid(), pid, "same process");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("tls/status.json")).expect("status file"))
            .expect("json");
    assert!(status["last_renewal"].is_i64(), "renewal recorded: {status}");
    assert_eq!(status["cert"]["names"][0], DOMAIN, "{status}");
    assert!(status["cert"]["issuer"].as_str().unwrap_or("").contains("Pebble"), "{status}");

    // `reelbox doctor` shows the ACME certificate.
    let config = dir.path().join("reelbox.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"acme\"\nhttps = \"127.0.0.1:0\"\nhttp = \"off\"\ndomains = [\"{DOMAIN}\"]\nacme_directory = \"{}\"\n",
            pebble.directory
        ),
    )
    .expect("config");
    let said = doctor(&config, &data);
    assert!(said.contains(&format!("https: acme: {DOMAIN}")) && said.contains("Pebble"), "{said}");

    // Restart: the cached account is used again (no new key, no new account at pebble).
    let accounts_dir = data.join("tls/acme");
    let account_file = std::fs::read_dir(&accounts_dir)
        .expect("acme cache")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("account-")))
        .expect("cached account key");
    let account_before = std::fs::read(&account_file).expect("account key");
    let pebble_accounts =
        || count(&std::fs::read_to_string(&pebble.log).unwrap_or_default(), "accounts in memory");
    assert_eq!(pebble_accounts(), 1, "one account registered");
    assert!(server.terminate(Duration::from_secs(30)).is_some_and(|s| s.success()));
    drop(server);

    let server = start();
    // The next order (the cached certificate is renewed soon) goes through the same account.
    assert!(
        wait_for(Duration::from_secs(VALIDITY_SECS * 2 + 30), || issued(&server) >= 1),
        "no order after the restart; reelbox log:\n{}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(!log.contains("new account key created"), "the cached account key is reused:\n{log}");
    assert_eq!(std::fs::read(&account_file).expect("account key"), account_before, "account file unchanged");
    assert_eq!(pebble_accounts(), 1, "pebble saw no new account");
    let (ok, out) = s_client(
        &authority(&server.base),
        DOMAIN,
        &["-CAfile", &root_arg, "-verify_hostname", DOMAIN, "-verify_return_error"],
    );
    assert!(ok, "still serving a valid certificate after the restart:\n{out}");
}
