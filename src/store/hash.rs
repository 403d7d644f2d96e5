//! The name of a blob: its SHA-256, shown and stored as 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use sha2::Digest;

use super::StoreError;

/// RFC 9530 digests are RFC 8941 byte sequences: standard base64, and parsers should accept
/// them with or without `=` padding.
const DIGEST_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; 32]) -> Sha256 {
        Sha256(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash of `data` in one go (small derived files, tests). Streams use `BlobWriter`.
    pub fn digest(data: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(data).into())
    }

    pub(crate) fn from_hasher(hasher: sha2::Sha256) -> Sha256 {
        Sha256(hasher.finalize().into())
    }

    /// 64 hex digits, either case. Anything else (length, `0x`, spaces) is refused.
    pub fn from_hex(s: &str) -> Result<Sha256, StoreError> {
        if s.len() != 64 {
            return Err(StoreError::InvalidHash { reason: "a SHA-256 is exactly 64 hex digits" });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| StoreError::InvalidHash {
            reason: "a SHA-256 contains only the digits 0-9 and a-f",
        })?;
        Ok(Sha256(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The value inside an RFC 9530 `Content-Digest: sha-256=:BASE64:` (without the colons).
    pub fn from_base64(s: &str) -> Result<Sha256, StoreError> {
        let decoded = DIGEST_BASE64
            .decode(s.trim())
            .map_err(|_| StoreError::InvalidHash { reason: "the sha-256 digest is not valid base64" })?;
        let bytes: [u8; 32] = decoded
            .try_into()
            .map_err(|_| StoreError::InvalidHash { reason: "a sha-256 digest is exactly 32 bytes" })?;
        Ok(Sha256(bytes))
    }

    /// For `Content-Digest` / `Repr-Digest` response headers (padded, as RFC 8941 serialises).
    pub fn to_base64(&self) -> String {
        general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl FromStr for Sha256 {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Sha256, StoreError> {
        Sha256::from_hex(s)
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Sha256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sha256::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_round_trip_and_case() {
        let h = Sha256::from_hex(EMPTY).expect("valid hex");
        assert_eq!(h, Sha256::digest(b""));
        assert_eq!(h.to_hex(), EMPTY);
        assert_eq!(h.to_string(), EMPTY);
        let upper = Sha256::from_hex(&EMPTY.to_uppercase()).expect("upper-case hex");
        assert_eq!(upper, h);
        assert_eq!(upper.to_hex(), EMPTY, "always shown in lower case");
    }

    #[test]
    fn from_hex_rejects_bad_input() {
        let bad = [
            "".to_string(),
            EMPTY[..63].to_string(),
            format!("{EMPTY}0"),
            format!("0x{}", &EMPTY[2..]),
            format!("{}g", &EMPTY[..63]),
            format!(" {}", &EMPTY[1..]),
            format!("{}é", &EMPTY[..62]), // 64 bytes, not 64 digits
        ];
        for input in &bad {
            let err = Sha256::from_hex(input).expect_err(input);
            assert_eq!(crate::error::AppError::code(&err), "invalid-hash", "{input:?}");
        }
    }

    #[test]
    fn base64_from_content_digest() {
        // RFC 9530 example value for the empty body is the SHA-256 of "".
        let b64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let h = Sha256::from_base64(b64).expect("valid digest");
        assert_eq!(h.to_hex(), EMPTY);
        assert_eq!(h.to_base64(), b64);
        assert_eq!(Sha256::from_base64(b64.trim_end_matches('=')).expect("unpadded"), h);
        assert!(Sha256::from_base64("AAAA").is_err(), "3 bytes is not a sha-256");
        assert!(Sha256::from_base64("not base64!").is_err());
    }

    #[test]
    fn serde_as_hex() {
        let h = Sha256::digest(b"reelbox");
        let json = serde_json::to_string(&h).expect("serialise");
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        let back: Sha256 = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, h);
        assert!(serde_json::from_str::<Sha256>("\"abc\"").is_err());
    }
}
