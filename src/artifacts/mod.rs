//! The artifacts of runs, traces, logged models and experiments: where they are, how big, gone.
//!
//! MLflow keeps artifacts outside its SQL store, at the location each entity names: a run's
//! `artifact_uri`, a logged model's `artifact_location`, an experiment's `artifact_location` (the
//! whole tree: its runs, models and traces folders). This module finds those locations and
//! sizes or deletes them: local paths and `file://`, `s3://` (with MLflow's S3 settings), `gs://`,
//! and `mlflow-artifacts:` URIs through the root of `mlflow server --artifacts-destination`.
//!
//! [`sweep`] decides, batch by batch, which locations a purge deletes; this
//! module resolves, sizes and deletes them. A missing location counts as deleted (0 objects,
//! not an error), so rerunning over an entity whose artifacts already went simply succeeds.
//!
//! Both operations stream: a listing is read page by page and never held whole, with a bounded
//! number of requests in flight (one list request, and object_store's delete concurrency: on S3
//! at most 20 bulk deletes of up to 1,000 keys, on GCS 10 single deletes), and local trees are
//! walked with one open directory per level. The API
//! is synchronous: [`ArtifactStore`] owns a single-threaded tokio runtime and blocks on it.
//!
//! Limits, each on the safe side: symbolic links inside a location are deleted, never followed,
//! and a location that is itself a link is an error; a bucket that does
//! not exist is an error, not an empty location (the settings may point at the wrong server); an
//! object whose key has an empty, `.` or `..` segment fails its whole location (object_store
//! cannot address it). A 0-byte "folder" marker whose key ends in `/` (written by some tools,
//! never by MLflow) is counted and stays: object_store cannot address that key either.

//!
//! The parts: [`location`] resolves what the store names into a location (pure), [`cloud`]
//! holds the object stores' settings, [`storage`] sizes and deletes, [`sweep`] decides.

pub mod cloud;
pub mod location;
pub mod storage;
pub mod sweep;

pub use crate::error::ArtifactError;
pub use cloud::CloudConfig;
pub use location::{Cloud, Location, LocationIndex, Resolver};
pub use storage::ArtifactStore;

/// What a location holds: its objects (files) and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub objects: u64,
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }

    pub fn add_up(&mut self, other: Usage) {
        self.objects += other.objects;
        self.bytes += other.bytes;
    }

    /// What is left of this once `part` of it is taken out.
    pub fn less(self, part: Usage) -> Usage {
        Usage {
            objects: self.objects.saturating_sub(part.objects),
            bytes: self.bytes.saturating_sub(part.bytes),
        }
    }
}
