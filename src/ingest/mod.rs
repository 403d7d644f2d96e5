//! Getting bytes in: single-request uploads (`simple`) and resumable tus uploads (`tus`). Both
//! hash while they stream, refuse what is too large before writing, detect the kind from the
//! first bytes, compare with the hash the client declared and only then commit the row that
//! points to the blob (see `crate::store`).

pub mod detect;
pub mod simple;
pub mod tus;
mod tus_headers;
pub mod tus_recovery;

use crate::db::DbError;
use crate::error::{AppError, ErrorKind};
use crate::library::LibraryError;
use crate::library::media::MediaKind;
use std::path::Path;

use crate::store::{BlobWriter, Sha256, StoreError};
use detect::DetectError;

/// Request bodies reach the writer thread in batches of about this many bytes (the chunks as
/// they came off the socket, not copied), written with one vectored write each.
pub(crate) const BATCH_BYTES: usize = 1024 * 1024;
/// Batches in flight between a request and its writer thread (bounded: back-pressure).
pub(crate) const CHANNEL_BATCHES: usize = 4;

/// Legacy Office files (OLE2 compound files) are only told apart with the whole file at hand
/// (`detect::detect_file`), so their check waits until every byte has arrived.
pub(crate) const OLE2_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no sha-256 Content-Digest")]
    MissingDigest,
    #[error("invalid digest: {0}")]
    BadDigest(String),
    #[error("upload of {size} bytes is over the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("content hash mismatch: declared {expected}, received {actual}")]
    DigestMismatch { expected: Sha256, actual: Sha256 },
    #[error("upload incomplete: {received} of {expected} bytes")]
    Incomplete { expected: u64, received: u64 },
    #[error("the client stopped sending: {0}")]
    Interrupted(String),
    #[error("bad upload request: {0}")]
    BadRequest(String),
    #[error("upload not found")]
    UploadNotFound,
    #[error("offset mismatch: upload is at {expected}, request said {got}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("{algorithm} checksum of the chunk does not match")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("unsupported checksum algorithm {0:?}")]
    ChecksumAlgorithm(String),
    #[error("tus version not supported")]
    TusVersion,
    #[error("upload task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Library(#[from] LibraryError),
}

impl From<DbError> for IngestError {
    fn from(e: DbError) -> Self {
        IngestError::Library(LibraryError::Db(e))
    }
}

impl From<rusqlite::Error> for IngestError {
    fn from(e: rusqlite::Error) -> Self {
        IngestError::Library(e.into())
    }
}

/// 1536 → "1.5 KiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{v:.1} {}", UNITS[unit]) }
}

impl AppError for IngestError {
    fn code(&self) -> &'static str {
        match self {
            IngestError::MissingDigest => "digest-required",
            IngestError::BadDigest(_) => "invalid-digest",
            IngestError::TooLarge { .. } => "too-large",
            IngestError::Detect(e) => e.code(),
            IngestError::DigestMismatch { .. } => "digest-mismatch",
            IngestError::Incomplete { .. } => "incomplete-upload",
            IngestError::Interrupted(_) => "upload-interrupted",
            IngestError::BadRequest(_) => "bad-upload-request",
            IngestError::UploadNotFound => "upload-not-found",
            IngestError::OffsetMismatch { .. } => "offset-mismatch",
            IngestError::ChecksumMismatch { .. } => "checksum-mismatch",
            IngestError::ChecksumAlgorithm(_) => "checksum-algorithm",
            IngestError::TusVersion => "tus-version",
            IngestError::Task(_) => "internal",
            IngestError::Store(StoreError::HashMismatch { .. }) => "digest-mismatch",
            IngestError::Store(e) => e.code(),
            IngestError::Library(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            IngestError::MissingDigest
            | IngestError::BadDigest(_)
            | IngestError::Incomplete { .. }
            | IngestError::Interrupted(_)
            | IngestError::BadRequest(_)
            | IngestError::ChecksumAlgorithm(_) => ErrorKind::BadRequest,
            IngestError::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            IngestError::Detect(e) => e.kind(),
            IngestError::DigestMismatch { .. }
            | IngestError::ChecksumMismatch { .. }
            | IngestError::Store(StoreError::HashMismatch { .. }) => ErrorKind::Unprocessable,
            IngestError::UploadNotFound => ErrorKind::NotFound,
            IngestError::OffsetMismatch { .. } | IngestError::TusVersion => ErrorKind::Conflict,
            IngestError::Task(_) => ErrorKind::Internal,
            IngestError::Store(e) => e.kind(),
            IngestError::Library(e) => e.kind(),
        }
    }

    fn user_message(&self) -> String {
        match self {
            IngestError::MissingDigest => "Send the file's SHA-256 in a Content-Digest header \
                 (`Content-Digest: sha-256=:BASE64:`, RFC 9530) so the server can check that it arrived intact."
                .into(),
            IngestError::BadDigest(why) => format!("The checksum header cannot be used: {why}."),
            IngestError::TooLarge { size, max } => format!(
                "The file is too large: {} ({size} bytes); this server accepts files up to {} ({max} bytes). \
                 Nothing was stored.",
                human_size(*size),
                human_size(*max)
            ),
            IngestError::Detect(e) => e.user_message(),
            IngestError::DigestMismatch { expected, actual }
            | IngestError::Store(StoreError::HashMismatch { expected, actual }) => format!(
                "The file did not arrive intact: expected SHA-256 {expected}, but the bytes received have \
                 SHA-256 {actual}. Nothing was stored; please upload the file again."
            ),
            IngestError::Incomplete { expected, received } => format!(
                "The upload is incomplete: {received} of {expected} bytes arrived. Nothing was stored; \
                 please upload the file again."
            ),
            IngestError::Interrupted(_) => {
                "The upload was interrupted before the whole file arrived. Nothing was stored.".into()
            }
            IngestError::BadRequest(why) => format!("The upload request cannot be used: {why}."),
            IngestError::UploadNotFound => {
                "That upload does not exist: it may have finished, been cancelled or expired. Start it again."
                    .into()
            }
            IngestError::OffsetMismatch { expected, got } => format!(
                "The upload continues at byte {expected}, but this request starts at byte {got}. \
                 Ask the server for the current offset (HEAD) and continue from there."
            ),
            IngestError::ChecksumMismatch { algorithm } => format!(
                "This chunk did not arrive intact (its {algorithm} checksum does not match) and was discarded. \
                 Send it again."
            ),
            IngestError::ChecksumAlgorithm(a) => {
                format!("The checksum algorithm {a:?} is not supported; use sha1 or sha256.")
            }
            IngestError::TusVersion => "This server speaks tus version 1.0.0 only.".into(),
            IngestError::Task(_) => "Something went wrong on the server while storing the file, so it was not \
                 saved. Please try again, and tell your IT administrator if it keeps happening."
                .into(),
            IngestError::Store(e) => e.user_message(),
            IngestError::Library(e) => e.user_message(),
        }
    }
}

/// The sha-256 from an RFC 9530 `Content-Digest` (or `Repr-Digest`) header value, which may list
/// several algorithms: `sha-512=:...:, sha-256=:...:`.
pub fn parse_sha256_digest(header: &str) -> Result<Sha256, IngestError> {
    for member in header.split(',') {
        let Some((alg, value)) = member.trim().split_once('=') else { continue };
        if !alg.trim().eq_ignore_ascii_case("sha-256") {
            continue;
        }
        let value = value.trim();
        let inner = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')).ok_or_else(|| {
            IngestError::BadDigest("the value must be base64 between colons: sha-256=:...:".into())
        })?;
        return Sha256::from_base64(inner).map_err(|e| IngestError::BadDigest(e.user_message()));
    }
    Err(IngestError::MissingDigest)
}

/// What the first bytes say the file is, if the configuration allows that kind.
pub fn check_kind(head: &[u8], allowed: &[MediaKind]) -> Result<detect::Detected, IngestError> {
    Ok(detect::detect_among(head, allowed)?)
}

/// The last check before an upload's bytes are stored: an image must decode
/// ([`detect::check_image`]); other kinds pass. Blocking (a full decode): call it on the
/// blocking pool, with the writer that holds the upload's bytes. An image that does not decode
/// because it is not what the client sent (damaged on the way) is reported as the hash
/// mismatch it is, which tells the person more than "this image could not be read".
pub(crate) fn check_image(
    writer: &mut BlobWriter,
    detected: &detect::Detected,
    expected: &Sha256,
) -> Result<(), IngestError> {
    if detected.kind != MediaKind::Image {
        return Ok(());
    }
    // The decoder reads the file, so what is still buffered in the writer must reach it first.
    writer.sync()?;
    let Err(refused) = detect::check_image(writer.path(), detected) else {
        return Ok(());
    };
    if matches!(refused, DetectError::UnreadableImage(_)) {
        let actual = hash_file(writer.path())?;
        if actual != *expected {
            return Err(IngestError::DigestMismatch { expected: *expected, actual });
        }
    }
    Err(refused.into())
}

fn hash_file(path: &Path) -> Result<Sha256, IngestError> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io_at("reading", path, e))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| StoreError::io_at("reading", path, e))?;
    Ok(Sha256::from_hasher(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_header_parsing() {
        let h = Sha256::digest(b"hello");
        let v = format!("sha-512=:AAAA:, sha-256=:{}:", h.to_base64());
        assert_eq!(parse_sha256_digest(&v).expect("parsed"), h);
        assert!(matches!(parse_sha256_digest("sha-512=:AAAA:"), Err(IngestError::MissingDigest)));
        assert!(matches!(parse_sha256_digest("sha-256=abc"), Err(IngestError::BadDigest(_))));
        assert!(matches!(parse_sha256_digest("sha-256=:abc:"), Err(IngestError::BadDigest(_))));
    }

    #[test]
    fn kinds_are_checked() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
        assert_eq!(check_kind(png, &[MediaKind::Image]).map(|d| d.kind).ok(), Some(MediaKind::Image));
        let err = check_kind(png, &[MediaKind::Video]).expect_err("refused");
        assert_eq!(err.code(), "unsupported-type");
        assert!(err.user_message().contains("video ("), "{}", err.user_message());
        assert_eq!(check_kind(b"", &[MediaKind::Image]).expect_err("empty").code(), "empty-file");
        assert_eq!(human_size(1536), "1.5 KiB");
    }

    fn written(store: &crate::store::BlobStore, bytes: &[u8]) -> BlobWriter {
        let mut w = store.writer().expect("writer");
        // In two pieces, as a stream arrives; nothing synced yet.
        let (a, b) = bytes.split_at(bytes.len() / 3);
        w.write(a).expect("write");
        w.write(b).expect("write");
        w
    }

    #[test]
    fn images_must_decode_before_they_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::BlobStore::open(dir.path()).expect("store");
        let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 40]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).expect("encode");
        let png = png.into_inner();
        let detected = check_kind(&png, MediaKind::ALL).expect("a png");

        let mut w = written(&store, &png);
        check_image(&mut w, &detected, &Sha256::digest(&png)).expect("a real PNG passes");
        w.finish(Some(&Sha256::digest(&png))).expect("and is stored afterwards");

        // Cut short, but what the client declared: the image itself is broken.
        let cut = &png[..png.len() - 40];
        let mut w = written(&store, cut);
        let err = check_image(&mut w, &detected, &Sha256::digest(cut)).expect_err("refused");
        assert_eq!((err.code(), err.kind()), ("image-undecodable", ErrorKind::Unprocessable), "{err}");
        assert!(err.user_message().starts_with("This image could not be read"), "{}", err.user_message());
        assert!(err.user_message().ends_with("Nothing was stored."));

        // Cut short on the way: the hash says what really happened.
        let mut w = written(&store, cut);
        let err = check_image(&mut w, &detected, &Sha256::digest(&png)).expect_err("refused");
        assert_eq!(err.code(), "digest-mismatch", "{err}");

        // Not an image: not decoded at all.
        let pdf = b"%PDF-1.7\n garbage".to_vec();
        let mut w = written(&store, &pdf);
        let detected = check_kind(&pdf, MediaKind::ALL).expect("a pdf");
        check_image(&mut w, &detected, &Sha256::digest(b"anything")).expect("documents pass");
    }
}
