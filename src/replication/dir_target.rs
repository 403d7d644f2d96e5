//! A directory backup target that survives a power cut: what the shipper and the media backup
//! count as "in the target" must still be there, whole, after the machine loses power.
//!
//! `object_store`'s `LocalFileSystem` writes a temporary file and renames it; without fsync the
//! rename can reach the disk before the data (an empty file after the crash) or not at all.
//! With `with_fsync(true)` it syncs the file, then the parent directory after the rename, and
//! every directory the write created up to the first one that existed, for `put`, multipart
//! completion, copy and rename. Deletes are left unsynced there, so this wrapper syncs the
//! parent directory after each delete: compaction and retention delete only after the file that
//! replaces or outlives them is durable, and that order should hold on disk too. Every other
//! call goes straight to the inner store.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use super::ReplicationError;

#[derive(Debug)]
pub struct DirTarget {
    inner: LocalFileSystem,
    root: PathBuf,
}

impl DirTarget {
    /// The directory `root` (created if missing) as a durable target.
    pub fn open(root: &Path) -> Result<DirTarget, ReplicationError> {
        std::fs::create_dir_all(root).map_err(|source| ReplicationError::Io { path: root.into(), source })?;
        let inner = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| ReplicationError::Target(format!("cannot open {}: {e}", root.display())))?
            .with_fsync(true);
        Ok(DirTarget { inner, root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl fmt::Display for DirTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn sync_error(path: &Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("syncing {} after a delete: {source}", path.display()).into(),
    }
}

#[async_trait]
impl ObjectStore for DirTarget {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let fs = self.inner.clone();
        self.inner
            .delete_stream(locations)
            .and_then(move |location| {
                let file = fs.path_to_filesystem(&location);
                async move {
                    let file = file?;
                    let Some(parent) = file.parent().map(Path::to_path_buf) else { return Ok(location) };
                    tokio::task::spawn_blocking(move || {
                        sync_dir(&parent).map_err(|e| sync_error(&parent, e))
                    })
                    .await
                    .map_err(|e| object_store::Error::JoinError { source: e })??;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::replication::target::{self, Target};

    fn open(dir: &Path) -> (Arc<DirTarget>, Target) {
        let d = Arc::new(DirTarget::open(dir).expect("open"));
        let t: Target = d.clone();
        (d, t)
    }

    #[test]
    fn the_directory_target_syncs_its_writes() {
        // What makes a put durable is the inner store's fsync switch; if it is ever lost (a
        // refactor, a new constructor), puts silently stop surviving a power cut.
        let dir = tempfile::tempdir().expect("tempdir");
        let (d, _) = open(&dir.path().join("t"));
        assert!(format!("{:?}", d.inner).contains("fsync: true"), "{:?}", d.inner);
        assert_eq!(d.root(), dir.path().join("t"));
    }

    #[tokio::test]
    async fn put_is_complete_on_disk_and_delete_keeps_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, t) = open(dir.path());
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let key = ObjectPath::from("db/gen/records/0000000000000001-0000000000000002.rec");
        target::put(&t, &key, bytes.clone()).await.expect("put");
        let file = dir.path().join("db/gen/records/0000000000000001-0000000000000002.rec");
        assert_eq!(std::fs::read(&file).expect("on disk"), bytes);
        // No temporary file is left beside it.
        let names: Vec<_> =
            std::fs::read_dir(file.parent().expect("parent")).expect("dir").flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        target::delete(&t, &key).await.expect("delete");
        assert!(!file.exists());
        assert!(dir.path().join("db/gen/records").is_dir(), "the parent stays (and was synced)");
        // Deleting what is already gone is fine (retention and compaction may race).
        target::delete(&t, &key).await.expect("delete again");
    }

    #[tokio::test]
    async fn a_put_that_cannot_land_is_an_error_not_a_success() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, t) = open(dir.path());
        // A file where the generation's directory should be: nothing can be written below it.
        std::fs::create_dir_all(dir.path().join("db")).expect("db/");
        std::fs::write(dir.path().join("db/gen"), b"in the way").expect("blocker");
        let key = ObjectPath::from("db/gen/records/0000000000000001-0000000000000001.rec");
        let err = target::put(&t, &key, vec![1, 2, 3]).await.expect_err("cannot be written");
        assert!(err.to_string().contains("writing db/gen/records"), "{err}");
        assert!(!target::exists(&t, &key).await.unwrap_or(false), "nothing claims to be there");

        // The target's directory gone and a file in its place: writes fail too.
        let other = tempfile::tempdir().expect("tempdir");
        let root = other.path().join("t");
        let (_, t) = open(&root);
        std::fs::remove_dir(&root).expect("remove the target");
        std::fs::write(&root, b"not a directory").expect("file instead");
        let err =
            target::put(&t, &ObjectPath::from("media/ab/abcd"), vec![9; 10]).await.expect_err("no directory");
        assert!(err.to_string().contains("media/ab/abcd"), "{err}");

        // The media backup's multipart path fails the same way.
        let multipart = async {
            let mut upload =
                t.put_multipart_opts(&ObjectPath::from("media/cd/cdef"), Default::default()).await?;
            upload.put_part(PutPayload::from(vec![1u8; 10])).await?;
            upload.complete().await
        }
        .await;
        assert!(multipart.is_err(), "a multipart upload with nowhere to go: {multipart:?}");
    }
}
