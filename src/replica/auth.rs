//! HMAC-SHA256 with the pair's shared secret over replication requests and responses.
//!
//! Request: `X-Reelbox-Replication-Time` (Unix seconds) and `X-Reelbox-Replication-Auth` =
//! hex HMAC of `"req-v1\n{time}\n{METHOD}\n{path?query}\n{sha256 hex of the body}"`; refused when
//! the time is more than five minutes off. Response: `X-Reelbox-Signature` = hex HMAC of
//! `"res-v1\n{path?query}\n{epoch}\n{position}\n"` followed by the body, so neither the records
//! nor the epoch or position headers can be changed in flight.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::ReplicaError;

pub const TIME_HEADER: &str = "x-reelbox-replication-time";
pub const AUTH_HEADER: &str = "x-reelbox-replication-auth";
pub const SIGNATURE_HEADER: &str = "x-reelbox-signature";
pub const EPOCH_HEADER: &str = "x-reelbox-epoch";
pub const POSITION_HEADER: &str = "x-reelbox-position";
/// The follower's own URL, so a primary knows whom to ask about epochs after a failover.
pub const NODE_HEADER: &str = "x-reelbox-node";
/// On a forwarded request: the address of the person the replica is serving, and
/// `{time}:{hex HMAC of "fwd-v1\n{time}\n{METHOD}\n{path?query}\n{address}"}`, so the primary
/// audits and throttles that person rather than the replica, and nobody else can claim an address.
pub const CLIENT_HEADER: &str = "x-reelbox-client";
pub const CLIENT_AUTH_HEADER: &str = "x-reelbox-client-auth";
const MAX_SKEW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// HMAC keyed with SHA-256 of the secret (zero-padded to the block size, as HMAC does with any
/// short key), so any secret length gives a fixed-size key and no fallible constructor is needed.
fn mac(secret: &[u8]) -> HmacSha256 {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(&Sha256::digest(secret));
    <HmacSha256 as Mac>::new(&key.into())
}

pub fn request_mac(secret: &[u8], time: i64, method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    let body_hash = hex::encode(Sha256::digest(body));
    m.update(format!("req-v1\n{time}\n{method}\n{path_and_query}\n{body_hash}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Check a request's time and MAC.
pub fn verify_request(
    secret: Option<&[u8]>,
    time: Option<&str>,
    sent: Option<&str>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), ReplicaError> {
    let secret =
        secret.ok_or(ReplicaError::Unauthorized("this server has no replication secret configured"))?;
    let sent = sent.ok_or(ReplicaError::Unauthorized("no replication signature"))?;
    let time: i64 =
        time.and_then(|t| t.parse().ok()).ok_or(ReplicaError::Unauthorized("no or bad replication time"))?;
    if (now_secs - time).abs() > MAX_SKEW_SECS {
        return Err(ReplicaError::Unauthorized("request time too far from the server's clock"));
    }
    let expected = request_mac(secret, time, method, path_and_query, body);
    if constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        Ok(())
    } else {
        Err(ReplicaError::Unauthorized("wrong replication signature"))
    }
}

fn client_mac(secret: &[u8], time: i64, method: &str, path_and_query: &str, client: &str) -> String {
    let mut m = mac(secret);
    m.update(format!("fwd-v1\n{time}\n{method}\n{path_and_query}\n{client}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The value of [`CLIENT_AUTH_HEADER`] for a forwarded request.
pub fn client_auth(secret: &[u8], time: i64, method: &str, path_and_query: &str, client: &str) -> String {
    format!("{time}:{}", client_mac(secret, time, method, path_and_query, client))
}

/// Whether `auth` vouches for `client` on this request (same secret, time within five minutes).
pub fn verify_client(
    secret: &[u8],
    auth: &str,
    method: &str,
    path_and_query: &str,
    client: &str,
    now_secs: i64,
) -> bool {
    let Some((time, sent)) = auth.split_once(':') else { return false };
    let Ok(time) = time.parse::<i64>() else { return false };
    (now_secs - time).abs() <= MAX_SKEW_SECS
        && constant_time_eq(
            client_mac(secret, time, method, path_and_query, client).as_bytes(),
            sent.as_bytes(),
        )
}

pub fn response_mac(secret: &[u8], path_and_query: &str, epoch: &str, position: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(format!("res-v1\n{path_and_query}\n{epoch}\n{position}\n").as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

pub fn verify_response(
    secret: &[u8],
    path_and_query: &str,
    epoch: &str,
    position: &str,
    body: &[u8],
    sent: Option<&str>,
) -> Result<(), ReplicaError> {
    let expected = response_mac(secret, path_and_query, epoch, position, body);
    match sent {
        Some(s) if constant_time_eq(expected.as_bytes(), s.as_bytes()) => Ok(()),
        _ => Err(ReplicaError::Protocol(format!(
            "the answer to {path_and_query} failed its signature check (changed in flight, or a different secret)"
        ))),
    }
}

/// [`verify_response`] for a body that arrives in pieces (a snapshot).
pub struct ResponseVerifier(HmacSha256);

impl ResponseVerifier {
    pub fn new(secret: &[u8], path_and_query: &str, epoch: &str, position: &str) -> Self {
        let mut m = mac(secret);
        m.update(format!("res-v1\n{path_and_query}\n{epoch}\n{position}\n").as_bytes());
        ResponseVerifier(m)
    }
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }
    pub fn signature(self) -> String {
        hex::encode(self.0.finalize().into_bytes())
    }
    pub fn verify(self, sent: Option<&str>) -> Result<(), ReplicaError> {
        let expected = self.signature();
        match sent {
            Some(s) if constant_time_eq(expected.as_bytes(), s.as_bytes()) => Ok(()),
            _ => Err(ReplicaError::Protocol(
                "the snapshot failed its signature check (changed in flight, or a different secret)".into(),
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed replication request to the primary.
pub fn signed(
    client: &reqwest::Client,
    secret: &[u8],
    method: reqwest::Method,
    base: &str,
    path_and_query: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let time = super::now_ms() / 1000;
    let auth = request_mac(secret, time, method.as_str(), path_and_query, &body);
    client
        .request(method, format!("{base}{path_and_query}"))
        .header(TIME_HEADER, time.to_string())
        .header(AUTH_HEADER, auth)
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_verify_only_with_the_same_secret_time_and_path() {
        let s = b"0123456789abcdef0123456789abcdef";
        let mac = request_mac(s, 1000, "GET", "/replication/v1/records?after=1", b"");
        let ok = |secret: &[u8], path: &str, now: i64| {
            verify_request(Some(secret), Some("1000"), Some(&mac), "GET", path, b"", now)
        };
        ok(s, "/replication/v1/records?after=1", 1010).expect("valid");
        assert!(ok(b"another secret of enough length!", "/replication/v1/records?after=1", 1010).is_err());
        assert!(ok(s, "/replication/v1/records?after=2", 1010).is_err());
        assert!(ok(s, "/replication/v1/records?after=1", 2000).is_err(), "stale");
        assert!(verify_request(None, Some("1000"), Some(&mac), "GET", "/x", b"", 1000).is_err());
        assert!(verify_request(Some(s), Some("1000"), None, "GET", "/x", b"", 1000).is_err());
    }

    #[test]
    fn a_forwarded_client_address_is_believed_only_with_the_secret() {
        let s = b"0123456789abcdef0123456789abcdef";
        let auth = client_auth(s, 1000, "POST", "/login", "203.0.113.7");
        assert!(verify_client(s, &auth, "POST", "/login", "203.0.113.7", 1010));
        assert!(!verify_client(s, &auth, "POST", "/login", "203.0.113.8", 1010), "another address");
        assert!(!verify_client(s, &auth, "POST", "/api/v1/media", "203.0.113.7", 1010), "another request");
        assert!(!verify_client(
            b"another secret of enough length!",
            &auth,
            "POST",
            "/login",
            "203.0.113.7",
            1010
        ));
        assert!(!verify_client(s, &auth, "POST", "/login", "203.0.113.7", 2000), "stale");
        assert!(!verify_client(s, "garbage", "POST", "/login", "203.0.113.7", 1000));
    }

    #[test]
    fn a_changed_body_or_header_fails_the_response_check() {
        let s = b"0123456789abcdef0123456789abcdef";
        let sig = response_mac(s, "/r", "3", "g/9", b"records");
        verify_response(s, "/r", "3", "g/9", b"records", Some(&sig)).expect("valid");
        assert!(verify_response(s, "/r", "3", "g/9", b"recordz", Some(&sig)).is_err());
        assert!(verify_response(s, "/r", "4", "g/9", b"records", Some(&sig)).is_err());
        assert!(verify_response(s, "/r", "3", "g/9", b"records", None).is_err());
    }
}
