//! Sizing and deleting locations: local trees walked one directory per level, object store
//! prefixes listed page by page, each with a hint on failure.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

use super::{ArtifactError, Cloud, CloudConfig, Location, Usage};

const LOCAL_HINT: &str = "check that mlflow-janitor runs as a user that may read and delete there";
const REMOTE_HINT: &str = "check that the store's credentials (AWS_* variables, \
    MLFLOW_S3_ENDPOINT_URL; GOOGLE_APPLICATION_CREDENTIALS) may list and delete there";
const KEY_HINT: &str = "an object there has a key mlflow-janitor cannot address (an empty, `.` \
    or `..` segment): delete that object with the store's own tools";

/// The hint for an object store's error.
fn remote_hint(error: &object_store::Error) -> &'static str {
    match error {
        object_store::Error::InvalidPath { .. } => KEY_HINT,
        _ => REMOTE_HINT,
    }
}

/// Sizes and deletes artifact locations, local or in object stores. One client per bucket,
/// made on first use and kept.
pub struct ArtifactStore {
    runtime: tokio::runtime::Runtime,
    config: CloudConfig,
    clients: Mutex<HashMap<(Cloud, String), Arc<dyn ObjectStore>>>,
}

impl ArtifactStore {
    /// One per purge, with [`CloudConfig::from_env`]. Fails only when the runtime cannot start;
    /// a store's bad settings show at its first location.
    pub fn new(config: CloudConfig) -> Result<Self, ArtifactError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ArtifactError::Runtime)?;
        Ok(ArtifactStore { runtime, config, clients: Mutex::default() })
    }

    /// What `location` holds: 0 objects when it does not exist.
    pub fn size(&self, location: &Location) -> Result<Usage, ArtifactError> {
        let failed =
            |reason, hint| ArtifactError::Size { location: location.to_string(), reason, hint };
        match location {
            Location::Local(path) => {
                walk(path, false).map_err(|(_, reason)| failed(reason, LOCAL_HINT))
            }
            Location::Cloud { cloud, bucket, prefix } => {
                let client = self.client(location, *cloud, bucket)?;
                self.runtime.block_on(async {
                    let mut usage = Usage::default();
                    let mut listing = client.list(Some(prefix));
                    while let Some(meta) = listing.next().await {
                        let meta = meta.map_err(|e| failed(one_line(&e), remote_hint(&e)))?;
                        usage.add(meta.size);
                    }
                    Ok(usage)
                })
            }
        }
    }

    /// Deletes everything at `location` and returns what went: 0 objects when it does not
    /// exist. On a failure it stops, and what it did not reach stays. The caller checks that
    /// nothing live lies inside ([`crate::artifacts::LocationIndex::inside`]).
    pub fn delete_tree(&self, location: &Location) -> Result<Usage, ArtifactError> {
        let failed = |deleted, reason, hint| ArtifactError::Delete {
            location: location.to_string(),
            deleted,
            reason,
            hint,
        };
        match location {
            Location::Local(path) => {
                walk(path, true).map_err(|(deleted, reason)| failed(deleted, reason, LOCAL_HINT))
            }
            Location::Cloud { cloud, bucket, prefix } => {
                let client = self.client(location, *cloud, bucket)?;
                self.runtime.block_on(async {
                    // The listing feeds the deletes as it goes: bytes are counted on the way.
                    let bytes = Arc::new(AtomicU64::new(0));
                    let counted = Arc::clone(&bytes);
                    let listing = client
                        .list(Some(prefix))
                        .map_ok(move |meta| {
                            counted.fetch_add(meta.size, Ordering::Relaxed);
                            meta.location
                        })
                        .boxed();
                    let mut deleted = client.delete_stream(listing);
                    let mut objects = 0;
                    while let Some(result) = deleted.next().await {
                        result.map_err(|e| failed(objects, one_line(&e), remote_hint(&e)))?;
                        objects += 1;
                    }
                    Ok(Usage { objects, bytes: bytes.load(Ordering::Relaxed) })
                })
            }
        }
    }

    /// Removes the directories between a deleted `location` and `within`, while they are empty:
    /// a run's `<experiment>/<run id>/` once its `artifacts/` went. Local only (object stores
    /// have no directories); a directory that is not empty, or cannot go, stays.
    pub fn prune_empty_parents(&self, location: &Location, within: &Location) {
        let (Location::Local(path), Location::Local(root)) = (location, within) else { return };
        let mut dir = path.parent();
        while let Some(parent) = dir.filter(|d| d.starts_with(root) && d != root) {
            if fs::remove_dir(parent).is_err() {
                break;
            }
            dir = parent.parent();
        }
    }

    fn client(
        &self,
        location: &Location,
        cloud: Cloud,
        bucket: &str,
    ) -> Result<Arc<dyn ObjectStore>, ArtifactError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&(cloud, bucket.to_owned())) {
            return Ok(Arc::clone(client));
        }
        // Some credential providers look for the runtime when they are made.
        let _runtime = self.runtime.enter();
        let client = self.config.client(cloud, bucket).map_err(|e| ArtifactError::Client {
            location: location.to_string(),
            reason: one_line(&e),
        })?;
        clients.insert((cloud, bucket.to_owned()), Arc::clone(&client));
        Ok(client)
    }
}

/// An error's message on one line (object_store's carry the server's XML answer).
fn one_line(error: &dyn std::error::Error) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Walks the tree at `root` without following symbolic links, with one open directory per
/// level, counting regular files' bytes (a link or other special file inside counts as an object
/// of 0 bytes); when `delete`, removes each file as it is counted and each directory once
/// emptied. A `root` that is itself a link is an error.
/// A missing root is an empty tree; what disappears during the walk is skipped. On an error,
/// returns the objects deleted so far and the reason, naming the path.
fn walk(root: &Path, delete: bool) -> Result<Usage, (u64, String)> {
    let mut usage = Usage::default();
    let failed = |usage: &Usage, path: &Path, e: io::Error| {
        let deleted = if delete { usage.objects } else { 0 };
        (deleted, format!("{}: {e}", path.display()))
    };
    let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    let meta = match fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(e) if gone(&e) => return Ok(usage),
        Err(e) => return Err(failed(&usage, root, e)),
    };
    if meta.is_symlink() {
        // Deleting the link would leave the tree it points at with no row naming it; following
        // it would delete what may not be this entity's.
        let why = "the location itself is a symbolic link: delete what it points at by hand";
        return Err((0, format!("{}: {why}", root.display())));
    }
    if !meta.is_dir() {
        if delete {
            match fs::remove_file(root) {
                Err(e) if !gone(&e) => return Err(failed(&usage, root, e)),
                _ => {}
            }
        }
        usage.add(if meta.is_file() { meta.len() } else { 0 });
        return Ok(usage);
    }
    let mut stack = match fs::read_dir(root) {
        Ok(entries) => vec![(root.to_path_buf(), entries)],
        Err(e) if gone(&e) => return Ok(usage),
        Err(e) => return Err(failed(&usage, root, e)),
    };
    while let Some((dir, entries)) = stack.last_mut() {
        let Some(entry) = entries.next() else {
            if delete {
                match fs::remove_dir(&*dir) {
                    Err(e) if !gone(&e) => return Err(failed(&usage, dir, e)),
                    _ => {}
                }
            }
            stack.pop();
            continue;
        };
        let entry = entry.map_err(|e| failed(&usage, dir, e))?;
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(failed(&usage, &path, e)),
        };
        if kind.is_dir() {
            match fs::read_dir(&path) {
                Ok(entries) => stack.push((path, entries)),
                Err(e) if gone(&e) => {}
                Err(e) => return Err(failed(&usage, &path, e)),
            }
            continue;
        }
        let bytes = match entry.metadata() {
            Ok(meta) if kind.is_file() => meta.len(),
            Ok(_) => 0,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(failed(&usage, &path, e)),
        };
        if delete {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(failed(&usage, &path, e)),
            }
        }
        usage.add(bytes);
    }
    Ok(usage)
}
