//! The request headers of tus 1.0.0 that carry data: `Upload-Metadata` (what a creation asks
//! for) and `Upload-Checksum` (per-chunk checksums, sha1 and sha256).

use std::collections::HashMap;

use sha2::Digest;

use super::IngestError;
use crate::db::ids::CategoryId;
use crate::store::Sha256;

/// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
pub fn parse_metadata(header: &str) -> Result<HashMap<String, String>, IngestError> {
    use base64::Engine;
    let mut out = HashMap::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| {
            IngestError::BadRequest(format!("Upload-Metadata value of {key:?} is not base64"))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| IngestError::BadRequest(format!("Upload-Metadata value of {key:?} is not UTF-8")))?;
        if out.insert(key.to_string(), text).is_some() {
            return Err(IngestError::BadRequest(format!("Upload-Metadata names {key:?} twice")));
        }
    }
    Ok(out)
}

/// What a creation request asks for, from its headers.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub category: CategoryId,
    pub filename: String,
    pub title: String,
    pub length: u64,
    /// `Upload-Defer-Length: 1`: `length` is ignored; a later PATCH sends it.
    pub deferred: bool,
    pub expected: Sha256,
    pub raw_metadata: String,
}

impl NewUpload {
    pub fn from_headers(length: u64, raw_metadata: &str) -> Result<NewUpload, IngestError> {
        let meta = parse_metadata(raw_metadata)?;
        let need = |k: &str| {
            meta.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                IngestError::BadRequest(format!(
                    "Upload-Metadata must carry {k:?} (filename, category and sha256 are required)"
                ))
            })
        };
        let category = need("category")?
            .trim()
            .parse()
            .map_err(|_| IngestError::BadRequest("the category in Upload-Metadata is not a number".into()))?;
        let expected = Sha256::from_hex(need("sha256")?.trim())
            .map_err(|e| IngestError::BadDigest(crate::error::AppError::user_message(&e)))?;
        Ok(NewUpload {
            category,
            filename: need("filename")?,
            title: meta.get("title").cloned().unwrap_or_default(),
            length,
            deferred: false,
            expected,
            raw_metadata: raw_metadata.to_string(),
        })
    }
}

/// A per-chunk checksum from `Upload-Checksum: <algorithm> <base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

impl Checksum {
    pub fn parse(header: &str) -> Result<Checksum, IngestError> {
        use base64::Engine;
        let (alg, value) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| IngestError::BadRequest("Upload-Checksum is `<algorithm> <base64>`".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| IngestError::BadRequest("the Upload-Checksum value is not base64".into()))?;
        match alg.to_ascii_lowercase().as_str() {
            "sha1" => Ok(Checksum::Sha1(bytes)),
            "sha256" => Ok(Checksum::Sha256(bytes)),
            other => Err(IngestError::ChecksumAlgorithm(other.to_string())),
        }
    }

    pub(super) fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha1(_) => "sha1",
            Checksum::Sha256(_) => "sha256",
        }
    }
}

pub(super) enum ChunkHasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChunkHasher {
    pub(super) fn for_checksum(c: &Checksum) -> ChunkHasher {
        match c {
            Checksum::Sha1(_) => ChunkHasher::Sha1(sha1::Sha1::new()),
            Checksum::Sha256(_) => ChunkHasher::Sha256(sha2::Sha256::new()),
        }
    }
    pub(super) fn update(&mut self, b: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => h.update(b),
            ChunkHasher::Sha256(h) => h.update(b),
        }
    }
    pub(super) fn matches(self, c: &Checksum) -> bool {
        match (self, c) {
            (ChunkHasher::Sha1(h), Checksum::Sha1(want)) => h.finalize().as_slice() == want.as_slice(),
            (ChunkHasher::Sha256(h), Checksum::Sha256(want)) => h.finalize().as_slice() == want.as_slice(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_checksums_parse() {
        let m = parse_metadata("filename bGVzc29uLm1wNA==,category MQ==, empty").expect("parsed");
        assert_eq!(m["filename"], "lesson.mp4");
        assert_eq!(m["category"], "1");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("filename !!!").is_err());
        assert!(parse_metadata("a MQ==,a MQ==").is_err());
        let hex = "ab".repeat(32);
        let raw = format!("filename YS5wbmc=,category Nw==,sha256 {}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&hex)
        });
        let n = NewUpload::from_headers(10, &raw).expect("new upload");
        assert_eq!((n.category, n.filename.as_str(), n.expected.to_hex()), (CategoryId(7), "a.png", hex));
        let err = NewUpload::from_headers(10, "filename YS5wbmc=,category Nw==").expect_err("no sha256");
        assert!(err.to_string().contains("sha256"), "{err}");

        assert_eq!(Checksum::parse("sha1 AAAA").expect("sha1"), Checksum::Sha1(vec![0, 0, 0]));
        assert!(matches!(Checksum::parse("md5 AAAA"), Err(IngestError::ChecksumAlgorithm(_))));
        let mut h = ChunkHasher::for_checksum(&Checksum::Sha256(vec![]));
        h.update(b"abc");
        assert!(h.matches(&Checksum::Sha256(Sha256::digest(b"abc").as_bytes().to_vec())));
    }
}
