//! installer/install.sh against a throwaway root (`--root`): the script is clean (bash -n,
//! shellcheck), refuses what it cannot do, lays out files, user, unit and firewall rules that
//! the real tools accept (`systemd-analyze verify`, `nft -c`), writes a configuration the
//! binary accepts, and the binary it installed starts from there and answers /healthz. Re-runs
//! are harmless, upgrades keep the previous version for --rollback, --uninstall keeps the data.
//!
//! Needs root (the installer chowns to the `reelbox` user) and Debian's `shellcheck`, `nftables`
//! and `systemd` packages (tests/run.sh installs them).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("installer/install.sh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tool the test needs, or a failure that says how to get it.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` is missing: apt-get install {package} (tests/run.sh installs it)");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| text(&o.stdout).trim() == "0")
}

/// A throwaway root holding what a Debian 12 system has that the installer looks at: the OS
/// release and systemd's own units (so `systemd-analyze verify --root` can resolve targets).
fn throwaway_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    std::fs::create_dir_all(r.join("etc")).expect("etc");
    std::fs::copy("/etc/os-release", r.join("etc/os-release"))
        .or_else(|_| std::fs::copy("/usr/lib/os-release", r.join("etc/os-release")))
        .expect("copy os-release");
    std::fs::create_dir_all(r.join("usr/lib/systemd")).expect("usr/lib/systemd");
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|p| Path::new(p).join("multi-user.target").exists())
        .expect("systemd units on this machine: apt-get install systemd");
    let cp = Command::new("cp").args(["-a", units]).arg(r.join("usr/lib/systemd/system")).status();
    assert!(cp.is_ok_and(|s| s.success()), "copy systemd units");
    dir
}

fn install(root: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("bash");
    c.arg(script()).arg("--root").arg(root).args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("REELBOX_") {
            c.env_remove(k);
        }
    }
    c.output().expect("run install.sh")
}

fn installed_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

const STANDARD: &[&str] = &[
    "--hostname",
    "media.reelbox.test",
    "--admin-email",
    "it@reelbox.test",
    "--tls",
    "self-signed",
    "--non-interactive",
];

fn with_binary<'a>(args: &[&'a str], bin: &'a str) -> Vec<&'a str> {
    let mut v = vec!["--binary", bin];
    v.extend_from_slice(args);
    v
}

fn uid_of(root: &Path, user: &str) -> u32 {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd in root");
    let line = passwd.lines().find(|l| l.starts_with(&format!("{user}:"))).expect("user entry");
    line.split(':').nth(2).and_then(|u| u.parse().ok()).expect("uid")
}

#[test]
fn scripts_are_clean_and_documented() {
    let shellcheck = tool("shellcheck", "shellcheck");
    let mut scripts = vec![script()];
    for s in
        ["vm-image/build.sh", "vm-image/boot-test.sh", "vm-image/firstboot.sh", "installer/ubuntu-test.sh"]
    {
        let p = repo().join(s);
        if p.exists() {
            scripts.push(p);
        }
    }
    for s in &scripts {
        let n = Command::new("bash").arg("-n").arg(s).output().expect("bash -n");
        assert!(n.status.success(), "bash -n {}: {}", s.display(), text(&n.stderr));
        let sc = Command::new(&shellcheck).arg("--severity=style").arg(s).output().expect("shellcheck");
        assert!(sc.status.success(), "shellcheck {}:\n{}", s.display(), text(&sc.stdout));
    }
    assert!(scripts.len() >= 3, "vm-image scripts checked too: {scripts:?}");
    let ubuntu = Command::new("bash").arg(repo().join("installer/ubuntu-test.sh")).arg("--help").output();
    let ubuntu = ubuntu.expect("ubuntu-test.sh --help");
    assert!(ubuntu.status.success(), "{}", text(&ubuntu.stderr));
    assert!(text(&ubuntu.stdout).contains("jammy") && text(&ubuntu.stdout).contains("noble"));
    let help = Command::new("bash").arg(script()).arg("--help").output().expect("--help");
    assert!(help.status.success());
    let help = text(&help.stdout);
    for flag in [
        "--hostname",
        "--admin-email",
        "--tls",
        "--binary",
        "--root",
        "--uninstall",
        "--purge",
        "--no-firewall",
    ] {
        assert!(help.contains(flag), "--help documents {flag}:\n{help}");
    }
}

#[test]
fn bad_or_missing_settings_are_refused_and_nothing_is_written() {
    assert!(is_root(), "the installer tests run as root (they chown to the reelbox user)");
    let bin = common::bin();
    let root = throwaway_root();
    let r = root.path();
    let cases: &[(&[&str], &str)] = &[
        (&["--non-interactive"], "--hostname is required"),
        (&["--hostname", "media.reelbox.test", "--non-interactive"], "--admin-email is required"),
        (&["--hostname", "media.reelbox.test", "--tls", "maybe", "--non-interactive"], "--tls must be"),
        (&["--hostname", "bad_name!", "--tls", "self-signed", "--non-interactive"], "is not a host name"),
        (&["--hostname", "media.reelbox.test", "--tls", "files", "--non-interactive"], "--cert"),
        (
            &[
                "--hostname",
                "media.reelbox.test",
                "--tls",
                "files",
                "--cert",
                "/nonexistent.pem",
                "--key",
                "/nonexistent.key",
            ],
            "cannot be read",
        ),
        (
            &["--hostname", "h.test", "--tls", "acme", "--admin-email", "not-an-address"],
            "not an e-mail address",
        ),
        (&["--purge"], "--purge only goes with --uninstall"),
        (&["--ssh-port", "99999", "--hostname", "h.test", "--tls", "self-signed"], "--ssh-port"),
        (&["--frobnicate"], "unknown option"),
    ];
    for (args, expected) in cases {
        let out = install(r, &with_binary(args, bin));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in:\n{err}");
    }
    assert!(!r.join("etc/reelbox/reelbox.toml").exists(), "no configuration after refusals");
    assert!(!r.join("opt/reelbox").exists(), "no binary after refusals");

    // Another OS is refused before anything happens.
    std::fs::write(r.join("etc/os-release"), "ID=fedora\nVERSION_ID=40\n").expect("os-release");
    let out = install(r, &with_binary(STANDARD, bin));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unsupported system 'fedora 40'"), "{}", text(&out.stderr));
}

/// Start the installed binary with the installed configuration on a loopback port; the base URL.
struct Running {
    child: std::process::Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_installed(r: &Path) -> Running {
    // A free loopback port: the server announces its public URL, not the address it binds.
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    // Under the kernel's MDWE switch, like MemoryDenyWriteExecute=yes in the unit.
    let mut c = Command::new("python3");
    c.args(["-c", MDWE_EXEC])
        .arg(r.join("opt/reelbox/current/reelbox"))
        .arg("serve")
        .arg("--config")
        .arg(r.join("etc/reelbox/reelbox.toml"))
        .arg("--data")
        .arg(r.join("var/lib/reelbox"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars() {
        if k.starts_with("REELBOX_") {
            c.env_remove(k);
        }
    }
    // Plain HTTP on loopback for this check; the TLS modes have their own tests.
    c.env("REELBOX_TLS__MODE", "off").env("REELBOX_TLS__HTTP", "off");
    c.env("REELBOX_TRANSCODE__FFMPEG", common::NO_FFMPEG);
    let mut child = c.spawn().expect("start the installed reelbox");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep reading after the caller stops listening: a closed pipe would make the server's
        // next line on stdout fail with EPIPE and take the server down (seen under load).
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some((_, url)) = line.split_once(" serving ") {
                    assert_eq!(url.trim(), "https://media.reelbox.test", "the public URL from the config");
                    return Running { child, base: format!("http://127.0.0.1:{port}") };
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the installed reelbox did not start: {:?}", child.wait());
            }
        }
    }
}

/// Python: turn on PR_SET_MDWE (refuse memory that is both writable and executable, the
/// mechanism behind systemd's MemoryDenyWriteExecute=) and exec the rest of argv.
const MDWE_EXEC: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE) failed: errno %d (kernel 6.3 or newer needed)" % ctypes.get_errno())
assert libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) & PR_MDWE_REFUSE_EXEC_GAIN
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[test]
fn ffmpeg_works_without_writable_executable_memory() {
    // The unit's MemoryDenyWriteExecute=yes may stay only while this holds: a real H.264/AAC
    // encode (the ladder's codecs) under the kernel's MDWE switch.
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("out.mp4");
    let ffmpeg = tool("ffmpeg", "ffmpeg");
    let out = Command::new("python3")
        .args(["-c", MDWE_EXEC])
        .arg(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-shortest", "-y"])
        .arg(&out_file)
        .output()
        .expect("run ffmpeg under MDWE");
    assert!(out.status.success(), "ffmpeg under MDWE: {}", text(&out.stderr));
    assert!(std::fs::metadata(&out_file).is_ok_and(|m| m.len() > 1000), "an encoded file");

    // The switch is real: a program that asks for W+X memory is refused under it.
    let refused = Command::new("python3")
        .args(["-c", MDWE_EXEC])
        .arg(tool("python3", "python3"))
        .args([
            "-c",
            "import mmap,sys\ntry:\n    mmap.mmap(-1, 4096, prot=mmap.PROT_READ|mmap.PROT_WRITE|mmap.PROT_EXEC)\nexcept OSError:\n    sys.exit(3)\n",
        ])
        .status()
        .expect("python under MDWE");
    assert_eq!(refused.code(), Some(3), "W+X mapping refused under MDWE");
}

#[test]
fn installs_into_a_throwaway_root_runs_repeats_upgrades_and_uninstalls() {
    assert!(is_root(), "the installer tests run as root (they chown to the reelbox user)");
    let nft = tool("nft", "nftables");
    let analyze = tool("systemd-analyze", "systemd");
    let bin = common::bin();
    let root = throwaway_root();
    let r = root.path();

    let out = install(r, &with_binary(STANDARD, bin));
    installed_ok(&out, "first install");
    let said = text(&out.stdout);

    // The binary, the version link and the command link.
    let version = reelbox::VERSION;
    let installed = r.join(format!("opt/reelbox/versions/{version}/reelbox"));
    assert!(installed.is_file(), "{said}");
    assert_eq!(std::fs::read(&installed).expect("installed"), std::fs::read(bin).expect("built"));
    assert_eq!(
        std::fs::read_link(r.join("opt/reelbox/current")).expect("current link"),
        PathBuf::from(format!("versions/{version}"))
    );
    assert_eq!(
        std::fs::read_link(r.join("usr/local/bin/reelbox")).expect("command link"),
        PathBuf::from("/opt/reelbox/current/reelbox")
    );

    // The user and the data directory it owns; the configuration readable by it, not by others.
    let uid = uid_of(r, "reelbox");
    assert!(uid > 0 && uid < 1000, "a system user: {uid}");
    let data = std::fs::metadata(r.join("var/lib/reelbox")).expect("data dir");
    assert_eq!(data.uid(), uid);
    assert_eq!(data.mode() & 0o777, 0o750);
    let conf_path = r.join("etc/reelbox/reelbox.toml");
    let conf_meta = std::fs::metadata(&conf_path).expect("config");
    assert_eq!((conf_meta.uid(), conf_meta.mode() & 0o777), (0, 0o640));
    let conf = std::fs::read_to_string(&conf_path).expect("config text");
    for line in [
        "data_dir = \"/var/lib/reelbox\"",
        "public_url = \"https://media.reelbox.test\"",
        "[tls]",
        "mode = \"self-signed\"",
        "domains = [\"media.reelbox.test\"]",
        "acme_contact = [\"it@reelbox.test\"]",
        "https = \"[::]:443\"",
        "http = \"[::]:80\"",
    ] {
        assert!(conf.lines().any(|l| l == line), "config has `{line}`:\n{conf}");
    }
    let check = Command::new(&installed).arg("config").arg("check").arg("--config").arg(&conf_path).output();
    let check = check.expect("config check");
    assert!(check.status.success(), "the binary accepts the written config: {}", text(&check.stderr));

    // The unit: enabled, and systemd's own verifier has nothing to say about it.
    let unit = r.join("etc/systemd/system/reelbox.service");
    let unit_text = std::fs::read_to_string(&unit).expect("unit");
    for line in [
        "Type=notify",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/reelbox",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "Restart=on-failure",
    ] {
        assert!(unit_text.lines().any(|l| l == line), "unit has {line}");
    }
    assert!(unit_text.lines().any(|l| l.starts_with("WatchdogSec=")), "unit has a watchdog");
    assert!(r.join("etc/systemd/system/multi-user.target.wants/reelbox.service").is_symlink(), "enabled");
    let verify = Command::new(&analyze)
        .arg(format!("--root={}", r.display()))
        .args(["verify", "/etc/systemd/system/reelbox.service"])
        .output()
        .expect("systemd-analyze verify");
    let verdict = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(verify.status.success() && verdict.trim().is_empty(), "systemd-analyze verify:\n{verdict}");

    // The firewall: loads (checked by nft itself), drops by default, opens only the four ports.
    let rules_path = r.join("etc/reelbox/reelbox.nft");
    let rules = std::fs::read_to_string(&rules_path).expect("rules");
    let checked = Command::new(&nft).args(["-c", "-f"]).arg(&rules_path).output().expect("nft -c");
    assert!(checked.status.success(), "nft -c -f: {}", text(&checked.stderr));
    assert!(rules.contains("policy drop;"), "{rules}");
    let mut opened: Vec<String> = rules
        .lines()
        .filter(|l| l.contains("dport") && l.contains("accept"))
        .map(|l| l.trim().to_string())
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        vec![
            "tcp dport 1935 accept comment \"RTMP live ingest\"",
            "tcp dport 22 accept comment \"SSH\"",
            "tcp dport { 80, 443 } accept comment \"HTTP and HTTPS\"",
        ],
        "{rules}"
    );
    let main_conf = std::fs::read_to_string(r.join("etc/nftables.conf")).expect("nftables.conf");
    assert_eq!(main_conf.matches("include \"/etc/reelbox/reelbox.nft\"").count(), 1, "{main_conf}");

    // The installed binary runs from the root with the written configuration.
    {
        let running = start_installed(r);
        let healthz = Command::new("curl")
            .args(["--silent", "--fail", "--max-time", "20"])
            .arg(format!("{}/healthz", running.base))
            .output()
            .expect("curl /healthz");
        assert!(healthz.status.success(), "/healthz answers: {}", text(&healthz.stderr));
        assert!(text(&healthz.stdout).contains("\"ok\""), "{}", text(&healthz.stdout));
    }
    assert!(r.join("var/lib/reelbox/reelbox.db").exists(), "the database lives in the data directory");
    std::fs::write(r.join("var/lib/reelbox/keep-me"), b"school data").expect("marker");

    // Again with the same flags: nothing changes, nothing breaks.
    let out = install(r, &with_binary(STANDARD, bin));
    installed_ok(&out, "second install");
    assert!(text(&out.stdout).contains("already installed"), "{}", text(&out.stdout));
    assert_eq!(std::fs::read_to_string(&conf_path).expect("config"), conf, "same config");
    assert_eq!(uid_of(r, "reelbox"), uid, "same user");
    let main_conf2 = std::fs::read_to_string(r.join("etc/nftables.conf")).expect("nftables.conf");
    assert_eq!(main_conf2, main_conf, "include added once");
    assert!(!r.join("opt/reelbox/previous").exists(), "same version: nothing to roll back to");

    // Without settings: the existing configuration is kept (repair run).
    let out = install(r, &["--binary", bin, "--non-interactive"]);
    installed_ok(&out, "repair run");
    assert!(text(&out.stdout).contains("keeping the existing"), "{}", text(&out.stdout));
    assert_eq!(std::fs::read_to_string(&conf_path).expect("config"), conf);

    // An upgrade to another version swaps the link and keeps the old one for --rollback.
    let wrapper_dir = tempfile::tempdir().expect("tempdir");
    let newer = wrapper_dir.path().join("reelbox");
    std::fs::write(
        &newer,
        format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'reelbox 99.0.0'; exit 0; fi\nexec '{bin}' \"$@\"\n"),
    )
    .expect("wrapper");
    let chmod = Command::new("chmod").arg("755").arg(&newer).status();
    assert!(chmod.is_ok_and(|s| s.success()));
    let out = install(r, &["--binary", newer.to_str().expect("utf-8"), "--non-interactive"]);
    installed_ok(&out, "upgrade");
    assert_eq!(
        std::fs::read_link(r.join("opt/reelbox/current")).expect("current"),
        PathBuf::from("versions/99.0.0")
    );
    assert_eq!(
        std::fs::read_link(r.join("opt/reelbox/previous")).expect("previous"),
        PathBuf::from(format!("versions/{version}"))
    );
    let out = install(r, &["--rollback"]);
    installed_ok(&out, "rollback");
    assert_eq!(
        std::fs::read_link(r.join("opt/reelbox/current")).expect("current"),
        PathBuf::from(format!("versions/{version}"))
    );
    assert_eq!(
        std::fs::read_link(r.join("opt/reelbox/previous")).expect("previous"),
        PathBuf::from("versions/99.0.0")
    );

    // --uninstall removes the program and keeps the school's data and the user.
    let out = install(r, &["--uninstall"]);
    installed_ok(&out, "uninstall");
    assert!(!r.join("opt/reelbox").exists());
    assert!(!r.join("usr/local/bin/reelbox").is_symlink());
    assert!(!unit.exists());
    assert!(!r.join("etc/systemd/system/multi-user.target.wants/reelbox.service").is_symlink());
    assert!(!r.join("etc/reelbox").exists());
    assert!(
        !std::fs::read_to_string(r.join("etc/nftables.conf")).expect("nftables.conf").contains("reelbox")
    );
    assert_eq!(std::fs::read(r.join("var/lib/reelbox/keep-me")).expect("data kept"), b"school data");
    assert!(r.join("var/lib/reelbox/reelbox.db").exists(), "database kept");
    assert_eq!(uid_of(r, "reelbox"), uid, "user kept");

    // Installing again finds the data where it was; --purge then removes everything.
    installed_ok(&install(r, &with_binary(STANDARD, bin)), "reinstall");
    assert!(r.join("var/lib/reelbox/keep-me").exists());
    installed_ok(&install(r, &["--uninstall", "--purge"]), "purge");
    assert!(!r.join("var/lib/reelbox").exists(), "purge deletes the data");
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).expect("passwd");
    assert!(!passwd.lines().any(|l| l.starts_with("reelbox:")), "purge removes the user");
}

/// A self-signed P-256 certificate for `name` (and `extra` openssl arguments) in `dir`: the
/// certificate's and the key's paths.
fn self_signed(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", &format!("/CN={name}")])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(made.status.success(), "{}", text(&made.stderr));
    (cert, key)
}

#[test]
fn files_mode_copies_the_certificate_where_the_service_can_read_it() {
    assert!(is_root(), "the installer tests run as root");
    let bin = common::bin();
    let root = throwaway_root();
    let r = root.path();
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(certs.path(), "media.school.lan", &[]);
    let (c, k) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    let args = ["--hostname", "media.school.lan", "--tls", "files", "--cert", c, "--key", k, "--no-firewall"];
    let out = install(r, &with_binary(&args, bin));
    installed_ok(&out, "files install");
    let conf = std::fs::read_to_string(r.join("etc/reelbox/reelbox.toml")).expect("config");
    assert!(conf.contains("mode = \"files\""), "{conf}");
    assert!(conf.contains("cert_file = \"/etc/reelbox/tls/files/cert.pem\""), "{conf}");
    assert!(conf.contains("key_file = \"/etc/reelbox/tls/files/key.pem\""), "{conf}");
    assert!(!conf.contains("acme_contact"), "no ACME contact without --admin-email: {conf}");
    let key_meta = std::fs::metadata(r.join("etc/reelbox/tls/files/key.pem")).expect("key copied");
    assert_eq!(key_meta.mode() & 0o777, 0o640, "key readable by the reelbox group only");
    assert_eq!(key_meta.gid(), uid_of(r, "reelbox"), "group reelbox (sysusers gives it the same id)");
    assert_eq!(
        std::fs::read(r.join("etc/reelbox/tls/files/cert.pem")).expect("cert"),
        std::fs::read(&cert).expect("src")
    );
    assert!(!r.join("etc/reelbox/reelbox.nft").exists(), "--no-firewall writes no rules");
}

#[test]
fn asks_for_missing_settings_in_a_terminal() {
    assert!(is_root(), "the installer tests run as root");
    let script_tool = tool("script", "util-linux");
    let bin = common::bin();
    let root = throwaway_root();
    let r = root.path();
    // `script` gives the installer a terminal; the answers arrive as typed lines.
    let command =
        format!("bash '{}' --root '{}' --binary '{}' --no-firewall", script().display(), r.display(), bin);
    let mut child = Command::new(script_tool)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"media.school.example\nacme\nit@school.example\n").expect("answers");
    }
    let out = child.wait_with_output().expect("installer finishes");
    let said = text(&out.stdout);
    installed_ok(&out, "interactive install");
    assert!(said.contains("Host name people will use"), "asked for the host name:\n{said}");
    assert!(said.contains("Administrator e-mail"), "asked for the e-mail:\n{said}");
    let conf = std::fs::read_to_string(r.join("etc/reelbox/reelbox.toml")).expect("config");
    assert!(conf.contains("public_url = \"https://media.school.example\""), "{conf}");
    assert!(
        conf.contains("mode = \"acme\"") && conf.contains("acme_contact = [\"it@school.example\"]"),
        "{conf}"
    );
}

/// A loopback HTTPS server (Python's, with a certificate made here) serving `dir`.
struct Https {
    child: std::process::Child,
    port: u16,
    ca: PathBuf,
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_server(dir: &Path, certs: &Path) -> Https {
    let (cert, key) = self_signed(certs, "127.0.0.1", &["-addext", "subjectAltName=IP:127.0.0.1"]);
    let serve = "import functools, http.server, ssl, sys\n\
                 handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
                 server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n\
                 ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                 ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
                 server.socket = ctx.wrap_socket(server.socket, server_side=True)\n\
                 print(server.server_address[1], flush=True)\n\
                 server.serve_forever()\n";
    let mut child = Command::new(tool("python3", "python3"))
        .arg("-c")
        .arg(serve)
        .arg(dir)
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
    let port = line.trim().parse().unwrap_or_else(|_| panic!("python's https server said {line:?}"));
    Https { child, port, ca: cert }
}

fn install_from_release(root: &Path, server: &Https, args: &[&str]) -> Output {
    let mut c = Command::new("bash");
    c.arg(script()).arg("--root").arg(root).args(args).args(STANDARD).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("REELBOX_") {
            c.env_remove(k);
        }
    }
    // curl trusts the test's own certificate for this run only.
    c.env("CURL_CA_BUNDLE", &server.ca).output().expect("run install.sh")
}

#[test]
fn a_release_is_downloaded_over_https_and_installed_only_when_its_sha256_matches() {
    assert!(is_root(), "the installer tests run as root");
    let bin = common::bin();
    let www = tempfile::tempdir().expect("tempdir");
    let certs = tempfile::tempdir().expect("tempdir");
    std::fs::copy(bin, www.path().join("reelbox-linux-x86_64")).expect("publish the binary");
    let damaged = {
        let mut b = std::fs::read(bin).expect("binary");
        let last = b.len() - 1;
        b[last] ^= 0x5a;
        b
    };
    std::fs::write(www.path().join("damaged"), &damaged).expect("publish a damaged copy");
    let server = https_server(www.path(), certs.path());
    let url = |name: &str| format!("https://127.0.0.1:{}/{name}", server.port);
    let good_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(bin).expect("binary")))
    };

    // A download whose checksum differs installs nothing at all, not even the user.
    let root = throwaway_root();
    let r = root.path();
    let (damaged_url, good_upper) = (url("damaged"), good_sha.to_uppercase());
    let out =
        install_from_release(r, &server, &["--release-url", &damaged_url, "--release-sha256", &good_upper]);
    assert!(!out.status.success(), "a damaged download was installed: {}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(said.contains(&format!("not the expected {good_sha}")), "{said}");
    assert!(said.contains("nothing was installed"), "{said}");
    assert!(!r.join("opt/reelbox").exists(), "no binary");
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap_or_default();
    assert!(!passwd.lines().any(|l| l.starts_with("reelbox:")), "no user: {passwd}");
    assert!(!r.join("etc/reelbox").exists(), "no configuration");

    // Without a checksum, or over plain HTTP, it does not even try.
    let good_url = url("reelbox-linux-x86_64");
    for (args, expected) in [
        (vec!["--release-url", good_url.as_str()], "needs --release-sha256"),
        (vec!["--release-url", good_url.as_str(), "--release-sha256", "abc"], "needs --release-sha256"),
        (
            vec!["--release-url", "http://127.0.0.1:9/reelbox", "--release-sha256", good_sha.as_str()],
            "must be an https:// address",
        ),
        (vec!["--release-sha256", good_sha.as_str()], "goes with --release-url"),
    ] {
        let out = install_from_release(r, &server, &args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(text(&out.stderr).contains(expected), "{args:?}: {}", text(&out.stderr));
        assert!(!r.join("opt/reelbox").exists(), "{args:?} installed something");
    }

    // The right checksum: installed, byte for byte, and it runs from the root.
    let out = install_from_release(r, &server, &["--release-url", &good_url, "--release-sha256", &good_sha]);
    installed_ok(&out, "release install");
    assert!(text(&out.stderr).contains(&format!("SHA-256 {good_sha}")), "{}", text(&out.stderr));
    let installed = r.join(format!("opt/reelbox/versions/{}/reelbox", reelbox::VERSION));
    assert_eq!(std::fs::read(&installed).expect("installed"), std::fs::read(bin).expect("built"));
    let version = Command::new(&installed).arg("--version").output().expect("run installed");
    assert!(text(&version.stdout).contains(reelbox::VERSION), "{}", text(&version.stdout));
}

/// The quick, in-CI part of Ubuntu support: the installer takes Ubuntu 22.04's and 24.04's
/// os-release as they write it, and the binary asks for no glibc symbol newer than 22.04's
/// glibc 2.35. The real thing (debootstrapped Ubuntu roots booted with systemd in
/// systemd-nspawn, packages from Ubuntu's archive, the service started, a clip transcoded,
/// re-install and uninstall) is `installer/ubuntu-test.sh`, run outside CI (README,
/// "Production install").
#[test]
fn ubuntu_lts_releases_are_accepted_and_the_binary_fits_their_glibc() {
    assert!(is_root(), "the installer tests run as root");
    let bin = common::bin();
    for version in ["22.04", "24.04"] {
        let root = throwaway_root();
        let r = root.path();
        let release = format!(
            "PRETTY_NAME=\"Ubuntu {version} LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"{version}\"\nID=ubuntu\nID_LIKE=debian\n"
        );
        std::fs::write(r.join("etc/os-release"), release).expect("os-release");
        let out = install(r, &with_binary(&[STANDARD, &["--no-firewall"]].concat(), bin));
        installed_ok(&out, &format!("install on Ubuntu {version}"));
        assert!(text(&out.stdout).contains(&format!("system: ubuntu {version}")), "{}", text(&out.stdout));
        assert!(r.join(format!("opt/reelbox/versions/{}/reelbox", reelbox::VERSION)).is_file());
    }

    let objdump = tool("objdump", "binutils");
    let symbols = Command::new(objdump).arg("-T").arg(bin).output().expect("objdump");
    assert!(symbols.status.success(), "{}", text(&symbols.stderr));
    let newest = text(&symbols.stdout)
        .split_whitespace()
        .filter_map(|w| w.trim_start_matches('(').trim_end_matches(')').strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .expect("the binary links glibc");
    assert!(
        newest <= (2, 35),
        "the binary needs glibc {}.{}, newer than Ubuntu 22.04's 2.35",
        newest.0,
        newest.1
    );
}
