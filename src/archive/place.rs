//! Where archives are kept: a local directory, or a prefix in an S3 or GCS bucket, reached with
//! the object stores' settings the artifact code reads ([`CloudConfig`]). An archive in a
//! bucket is written in a local staging directory first, each file uploaded as soon as it is
//! whole (a completed upload is its durability); a restore downloads one into a local
//! directory, and reads it from there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncWriteExt;

use super::MANIFEST;
use crate::artifacts::location::root;
use crate::artifacts::{CloudConfig, Location};
use crate::error::{ArchiveError, Result};

/// Where `--archive` writes, or `restore` reads.
#[derive(Clone)]
pub enum Place {
    Local(PathBuf),
    Cloud(Arc<Bucket>),
}

impl Place {
    /// A path (relative or absolute), `file://`, `s3://` or `gs://` URI; buckets with `cloud`'s
    /// settings.
    pub fn parse(given: &str, cloud: &CloudConfig) -> Result<Place> {
        let invalid = |why: String| ArchiveError::InvalidPlace { given: given.to_owned(), why };
        let location = root(given).map_err(|e| invalid(e.to_string()))?;
        let display = location.to_string();
        match location {
            Location::Local(path) => Ok(Place::Local(path)),
            Location::Cloud { cloud: kind, bucket, prefix } => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                let client = {
                    // Some credential providers look for the runtime when they are made.
                    let _runtime = runtime.enter();
                    cloud.client(kind, &bucket).map_err(|e| invalid(e.to_string()))?
                };
                Ok(Place::Cloud(Arc::new(Bucket { runtime, client, prefix, display })))
            }
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Local(path) => write!(f, "{}", path.display()),
            Place::Cloud(bucket) => f.write_str(&bucket.display),
        }
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A prefix in a bucket, with its client and the runtime that drives it.
pub struct Bucket {
    runtime: tokio::runtime::Runtime,
    client: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`.
    display: String,
}

/// Bytes per part of an upload, and per read of a file being uploaded.
const PART: usize = 8 << 20;

impl Bucket {
    /// The key of `relative` (slash-separated) under the prefix.
    fn key(&self, relative: &str) -> ObjectPath {
        relative.split('/').fold(self.prefix.clone(), |key, part| key.join(part))
    }

    /// Where `relative` is, for messages.
    pub fn url(&self, relative: &str) -> String {
        format!("{}/{relative}", self.display.trim_end_matches('/'))
    }

    fn failed(&self, relative: &str, error: impl fmt::Display) -> ArchiveError {
        ArchiveError::Remote { url: self.url(relative), reason: error.to_string() }
    }

    pub fn exists(&self, relative: &str) -> Result<bool> {
        let key = self.key(relative);
        match self.runtime.block_on(self.client.head(&key)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed(relative, e).into()),
        }
    }

    /// Uploads the local file `from` as `relative`, streamed in parts; done when the upload
    /// is complete.
    pub fn upload(&self, from: &Path, relative: &str) -> Result<()> {
        use std::io::Read;
        let key = self.key(relative);
        let mut file = std::fs::File::open(from).map_err(|e| ArchiveError::io(from, e))?;
        self.runtime.block_on(async {
            let upload =
                self.client.put_multipart(&key).await.map_err(|e| self.failed(relative, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buffer = vec![0; PART];
            loop {
                let read = file.read(&mut buffer).map_err(|e| ArchiveError::io(from, e))?;
                if read == 0 {
                    break;
                }
                writer.wait_for_capacity(2).await.map_err(|e| self.failed(relative, e))?;
                writer.write(&buffer[..read]);
            }
            writer.finish().await.map_err(|e| self.failed(relative, e))?;
            Ok(())
        })
    }

    /// Downloads `relative` into the local file `to`, streamed.
    pub fn download(&self, relative: &str, to: &Path) -> Result<()> {
        let key = self.key(relative);
        if let Some(parent) = to.parent() {
            super::create_private_dir(parent)?;
        }
        self.runtime.block_on(async {
            let got = self.client.get(&key).await.map_err(|e| self.failed(relative, e))?;
            let mut stream = got.into_stream();
            let mut file =
                tokio::fs::File::create(to).await.map_err(|e| ArchiveError::io(to, e))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.failed(relative, e))?;
                file.write_all(&chunk).await.map_err(|e| ArchiveError::io(to, e))?;
            }
            file.flush().await.map_err(|e| ArchiveError::io(to, e))?;
            Ok(())
        })
    }

    /// The archives under the prefix: itself when it holds a manifest, else each "directory"
    /// below it that does (relative names, newest first).
    pub fn archives(&self) -> Result<Vec<String>> {
        if self.exists(MANIFEST)? {
            return Ok(vec![String::new()]);
        }
        let listed = self
            .runtime
            .block_on(self.client.list_with_delimiter(Some(&self.prefix)))
            .map_err(|e| self.failed("", e))?;
        let mut archives = Vec::new();
        for dir in listed.common_prefixes {
            let name = dir.filename().unwrap_or_default().to_owned();
            if self.exists(&format!("{name}/{MANIFEST}"))? {
                archives.push(name);
            }
        }
        super::sort_newest_first(&mut archives, String::as_str);
        Ok(archives)
    }
}
