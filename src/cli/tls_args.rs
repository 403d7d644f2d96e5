//! The HTTPS flags of `reelbox serve`. They win over `[tls]` in the configuration file.

use std::path::PathBuf;

use clap::Args;

use crate::config::{TlsMode, TlsOverrides};

#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Where the certificate comes from: acme, files, self-signed, or off (plain HTTP on --listen).
    #[arg(long, value_parser = parse_mode)]
    pub tls: Option<TlsMode>,
    /// HTTPS listener, HOST:PORT (default from the configuration, [::]:443).
    #[arg(long, value_name = "HOST:PORT")]
    pub https: Option<String>,
    /// Plain-HTTP listener that redirects to HTTPS (308), HOST:PORT or `off`. When --https is
    /// given on the command line without --http, there is no redirect listener.
    #[arg(long, value_name = "HOST:PORT")]
    pub http: Option<String>,
    /// `files` mode: certificate chain (PEM); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// `files` mode: private key (PEM); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Host name to get a certificate for (repeat for several).
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// `acme` mode: the ACME directory URL (default: Let's Encrypt).
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// `acme` mode: an extra CA certificate (PEM) to trust when talking to the ACME server.
    #[arg(long, value_name = "FILE")]
    pub acme_ca_file: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<TlsMode, String> {
    match s {
        "off" => Ok(TlsMode::Off),
        "acme" => Ok(TlsMode::Acme),
        "files" => Ok(TlsMode::Files),
        "self-signed" => Ok(TlsMode::SelfSigned),
        other => Err(format!("`{other}` is not a TLS mode; use acme, files, self-signed or off")),
    }
}

impl TlsArgs {
    /// The overrides, or None when no TLS flag was given.
    pub fn overrides(&self) -> Option<TlsOverrides> {
        let http = match (&self.https, &self.http) {
            (_, Some(h)) => Some(h.clone()),
            (Some(_), None) => Some("off".to_string()),
            (None, None) => None,
        };
        let o = TlsOverrides {
            mode: self.tls,
            https: self.https.clone(),
            http,
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            domains: (!self.domains.is_empty()).then(|| self.domains.clone()),
            acme_directory: self.acme_directory.clone(),
            acme_ca_file: self.acme_ca_file.clone(),
        };
        let any = o.mode.is_some()
            || o.https.is_some()
            || o.http.is_some()
            || o.cert_file.is_some()
            || o.key_file.is_some()
            || o.domains.is_some()
            || o.acme_directory.is_some()
            || o.acme_ca_file.is_some();
        any.then_some(o)
    }
}
