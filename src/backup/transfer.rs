//! Moving bytes between the server's disk and the target, hashing on the way: every upload is
//! read back from the target and hashed before it counts, every download is hashed by the blob
//! store before it is kept.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::Digest;

use super::{BackupError, Target};
use crate::store::Sha256;

/// Parts of a multipart upload (S3 wants at least 5 MiB per part but the last).
const PART: usize = 8 * 1024 * 1024;

/// What the target holds at `key`: `None` when absent.
pub async fn size_of(target: &Target, key: &ObjectPath) -> Result<Option<u64>, BackupError> {
    match target.head(key).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BackupError::target(format!("looking up {key}"), e)),
    }
}

/// Read the object back and hash it. `None` when absent.
pub async fn hash_of(target: &Target, key: &ObjectPath) -> Result<Option<(Sha256, u64)>, BackupError> {
    let got = match target.get(key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(BackupError::target(format!("reading {key}"), e)),
    };
    let mut stream = got.into_stream();
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BackupError::target(format!("reading {key}"), e))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok(Some((Sha256::from_bytes(hasher.finalize().into()), size)))
}

/// Copy the local file at `src` to `key`, then read it back and check it hashes to `expected`.
/// A source whose bytes do not hash to `expected` is refused before anything is written, so a
/// rotten local copy never overwrites a good one in the target.
pub async fn upload_file(
    target: &Target,
    src: &Path,
    key: &ObjectPath,
    expected: &Sha256,
) -> Result<u64, BackupError> {
    let path = src.to_path_buf();
    let mut file = tokio::task::spawn_blocking(move || File::open(&path))
        .await
        .map_err(|e| BackupError::domain(format!("copy task failed: {e}")))?
        .map_err(|e| BackupError::io(format!("opening {}", src.display()), e))?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut upload = target
        .put_multipart(key)
        .await
        .map_err(|e| BackupError::target(format!("starting the copy of {key}"), e))?;
    let result = async {
        loop {
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(PART);
                let read = (&mut file).take(PART as u64).read_to_end(&mut buf);
                (file, read.map(|_| buf))
            })
            .await
            .map_err(|e| BackupError::domain(format!("copy task failed: {e}")))?;
            file = back;
            let chunk = chunk.map_err(|e| BackupError::io(format!("reading {}", src.display()), e))?;
            if chunk.is_empty() {
                break;
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
            upload
                .put_part(PutPayload::from(chunk))
                .await
                .map_err(|e| BackupError::target(format!("copying {key}"), e))?;
        }
        let actual = Sha256::from_bytes(hasher.finalize().into());
        if actual != *expected {
            return Err(BackupError::Corrupt {
                what: format!("the server's file {}", src.display()),
                expected: *expected,
                actual,
            });
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = upload.abort().await;
        return Err(e);
    }
    upload.complete().await.map_err(|e| BackupError::target(format!("finishing the copy of {key}"), e))?;
    verify_copy(target, key, expected, size).await?;
    Ok(size)
}

/// Store small bytes (manifests, markers, config files) and read them back.
pub async fn put_bytes(target: &Target, key: &ObjectPath, bytes: Vec<u8>) -> Result<(), BackupError> {
    let expected = Sha256::digest(&bytes);
    let size = bytes.len() as u64;
    target
        .put(key, PutPayload::from(bytes))
        .await
        .map_err(|e| BackupError::target(format!("writing {key}"), e))?;
    verify_copy(target, key, &expected, size).await
}

/// The whole object as bytes (manifests, markers). `None` when absent.
pub async fn get_bytes(target: &Target, key: &ObjectPath) -> Result<Option<Vec<u8>>, BackupError> {
    match target.get(key).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(|e| BackupError::target(format!("reading {key}"), e))?;
            Ok(Some(bytes.to_vec()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BackupError::target(format!("reading {key}"), e)),
    }
}

pub async fn delete(target: &Target, key: &ObjectPath) -> Result<(), BackupError> {
    match target.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(BackupError::target(format!("deleting {key}"), e)),
    }
}

async fn verify_copy(
    target: &Target,
    key: &ObjectPath,
    expected: &Sha256,
    size: u64,
) -> Result<(), BackupError> {
    match hash_of(target, key).await? {
        Some((actual, n)) if actual == *expected && n == size => Ok(()),
        Some((actual, _)) => {
            tracing::error!(%key, %expected, %actual, "the copy read back from the backup target differs; removed it");
            delete(target, key).await?;
            Err(BackupError::Corrupt { what: key.to_string(), expected: *expected, actual })
        }
        None => Err(BackupError::NotInBackup(key.to_string())),
    }
}

/// Stream `key` into the blob store, which hashes it and keeps it only if it is `hash`.
pub async fn download_blob(
    target: &Target,
    key: &ObjectPath,
    hash: &Sha256,
    store: &crate::store::BlobStore,
) -> Result<u64, BackupError> {
    let got = match target.get(key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Err(BackupError::NotInBackup(key.to_string())),
        Err(e) => return Err(BackupError::target(format!("reading {key}"), e)),
    };
    let mut writer = store.writer()?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BackupError::target(format!("reading {key}"), e))?;
        writer = tokio::task::spawn_blocking(move || writer.write(&chunk).map(|()| writer))
            .await
            .map_err(|e| BackupError::domain(format!("copy task failed: {e}")))??;
    }
    let expected = *hash;
    let stored = tokio::task::spawn_blocking(move || writer.finish(Some(&expected)))
        .await
        .map_err(|e| BackupError::domain(format!("copy task failed: {e}")))?
        .map_err(|e| match e {
            crate::store::StoreError::HashMismatch { actual, .. } => {
                BackupError::Corrupt { what: key.to_string(), expected, actual }
            }
            other => other.into(),
        })?;
    Ok(stored.size)
}

/// Download `key` to a new local file at `dest`, checking it hashes to `hash` (command-line
/// use: the writes block).
pub async fn download_file(
    target: &Target,
    key: &ObjectPath,
    hash: &Sha256,
    dest: &Path,
) -> Result<(), BackupError> {
    use std::io::Write;
    let got = match target.get(key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Err(BackupError::NotInBackup(key.to_string())),
        Err(e) => return Err(BackupError::target(format!("reading {key}"), e)),
    };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
    }
    let io = |e| BackupError::io(format!("writing {}", dest.display()), e);
    let mut file = File::create(dest).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BackupError::target(format!("reading {key}"), e))?;
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    let actual = Sha256::from_bytes(hasher.finalize().into());
    if actual != *hash {
        return Err(BackupError::Corrupt { what: key.to_string(), expected: *hash, actual });
    }
    Ok(())
}
