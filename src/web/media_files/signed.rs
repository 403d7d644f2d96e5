//! Short-lived signed media URLs (`?t=USER.EXPIRES.MAC`) for players that cannot send the
//! session cookie: a cross-site iframe (the cookie is `SameSite=Lax`), a cast receiver, a
//! native HLS stack fetching segments on its own. A token names one person and one item and
//! carries its expiry; the person's permission is still checked on every request, so revoking
//! a grant or disabling the account stops a token at once. The key is 32 random bytes in
//! `<data>/secrets/media-url.key` (created on first use, mode 0600), so restarts keep tokens
//! valid and each installation has its own.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::db::ids::{MediaId, UserId};

/// How long a token issued by a page stays valid. Long enough for a lesson's video watched
/// in one go; the page issues a new one on every load.
pub const TOKEN_LIFETIME_SECS: i64 = 4 * 3600;

const KEY_FILE: &str = "secrets/media-url.key";

/// The signing key, loaded (or created) once per process.
#[derive(Default)]
pub struct UrlKey(OnceLock<[u8; 32]>);

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(<redacted>)")
    }
}

impl UrlKey {
    /// The key, reading `<data>/secrets/media-url.key` or creating it.
    pub fn get(&self, data_dir: &Path) -> std::io::Result<[u8; 32]> {
        if let Some(k) = self.0.get() {
            return Ok(*k);
        }
        let key = load_or_create(data_dir)?;
        Ok(*self.0.get_or_init(|| key))
    }
}

fn load_or_create(data_dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = data_dir.join(KEY_FILE);
    let parse = |text: &str| -> std::io::Result<[u8; 32]> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        bytes.try_into().map_err(|_| std::io::Error::other(format!("{}: not 32 bytes", path.display())))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key: [u8; 32] = rand::random();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(hex::encode(key).as_bytes())?;
            f.sync_all()?;
            Ok(key)
        }
        // Another request created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => parse(&std::fs::read_to_string(&path)?),
        Err(e) => Err(e),
    }
}

fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new().chain_update(ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
}

fn message(item: MediaId, user: UserId, expires: Timestamp) -> String {
    format!("reelbox-media-url-v1:{item}:{user}:{expires}")
}

/// A token for `user` to fetch `item`'s media files until `expires`.
pub fn sign(key: &[u8; 32], item: MediaId, user: UserId, expires: Timestamp) -> String {
    let mac = hmac_sha256(key, message(item, user, expires).as_bytes());
    format!("{user}.{expires}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid(UserId),
    Expired,
    Invalid,
}

/// Check `token` for `item` at `now` (constant-time MAC comparison).
pub fn verify(key: &[u8; 32], token: &str, item: MediaId, now: Timestamp) -> TokenCheck {
    let mut parts = token.splitn(3, '.');
    let (Some(user), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return TokenCheck::Invalid;
    };
    let (Ok(user), Ok(expires)) = (user.parse::<i64>(), expires.parse::<i64>()) else {
        return TokenCheck::Invalid;
    };
    let Ok(mac) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac) else {
        return TokenCheck::Invalid;
    };
    let want = hmac_sha256(key, message(item, UserId(user), expires).as_bytes());
    let same =
        mac.len() == want.len() && mac.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        TokenCheck::Invalid
    } else if now >= expires {
        TokenCheck::Expired
    } else {
        TokenCheck::Valid(UserId(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_an_independent_implementation() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(bytes([11]*32), b"Hi There", hashlib.sha256).hexdigest())
        let key = [0x0bu8; 32];
        let mac = hmac_sha256(&key, b"Hi There");
        assert_eq!(hex::encode(mac), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
    }

    #[test]
    fn tokens_bind_person_item_and_time() {
        let key = [7u8; 32];
        let t = sign(&key, MediaId(5), UserId(9), 1000);
        assert_eq!(verify(&key, &t, MediaId(5), 999), TokenCheck::Valid(UserId(9)));
        assert_eq!(verify(&key, &t, MediaId(5), 1000), TokenCheck::Expired, "expired at the instant");
        assert_eq!(verify(&key, &t, MediaId(6), 999), TokenCheck::Invalid, "another item");
        assert_eq!(verify(&[8u8; 32], &t, MediaId(5), 999), TokenCheck::Invalid, "another key");
        let forged = t.replacen("9.", "1.", 1);
        assert_eq!(verify(&key, &forged, MediaId(5), 999), TokenCheck::Invalid, "another person");
        let later = t.replacen(".1000.", ".9000.", 1);
        assert_eq!(verify(&key, &later, MediaId(5), 999), TokenCheck::Invalid, "extended expiry");
        for junk in ["", "a.b.c", "1.2", "1.2.!!!", "9.1000."] {
            assert_eq!(verify(&key, junk, MediaId(5), 1), TokenCheck::Invalid, "{junk:?}");
        }
    }

    #[test]
    fn key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = UrlKey::default().get(dir.path()).expect("create");
        let b = UrlKey::default().get(dir.path()).expect("read back");
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("key file").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
    }
}
