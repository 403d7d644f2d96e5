//! `self-signed`: a certificate made once on first start and kept under `<data>/tls/self-signed/`,
//! so browsers that were told to trust it keep trusting it across restarts. For a first look on a
//! LAN; it is replaced only when it is unreadable or within 30 days of expiry.

use std::path::{Path, PathBuf};

use chrono::Datelike;

use super::{TlsError, files, status};

const RENEW_BEFORE_SECS: i64 = 30 * 86_400;

/// The certificate and key paths, generating the pair when missing or near expiry.
pub fn ensure(data: &Path, domains: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = super::tls_dir(data).join("self-signed");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let usable = files::load_pair(&cert, &key).ok().and_then(|pair| {
        let s = pair.cert.first().and_then(|c| status::summarize(c))?;
        (s.not_after - chrono::Utc::now().timestamp() > RENEW_BEFORE_SECS).then_some(())
    });
    if usable.is_none() {
        generate(&cert, &key, domains)?;
        tracing::info!(cert = %cert.display(), "generated a self-signed certificate; browsers will warn until it is trusted");
    }
    Ok((cert, key))
}

fn generate(cert_path: &Path, key_path: &Path, domains: &[String]) -> Result<(), TlsError> {
    let mut names: Vec<String> = domains.to_vec();
    if names.is_empty() {
        names.push("localhost".into());
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            let host = host.trim();
            if !host.is_empty() && host != "localhost" {
                names.push(host.to_string());
            }
        }
    }
    names.extend(["127.0.0.1".to_string(), "::1".to_string()]);
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "reelbox self-signed");
    params.distinguished_name = dn;
    let today = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let month = today.month() as u8;
    let day = today.day().min(28) as u8;
    params.not_before = rcgen::date_time_ymd(today.year(), month, day);
    params.not_after = rcgen::date_time_ymd(today.year() + 5, month, day);
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    super::write_atomic(key_path, key.serialize_pem().as_bytes(), true)?;
    super::write_atomic(cert_path, cert.pem().as_bytes(), false)
}
