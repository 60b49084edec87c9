//! Writes a purge's archive as its batches go: each step's rows to a file of their own, the
//! batch's files synced and recorded in the manifest before the batch commits.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::place::{Bucket, Place};
use super::row_files::{row_keys, RowFileThread, RowKeys, RowSink};
use super::{
    create_private_dir, private_file, BatchRecord, FileRecord, Header, Record, FORMAT, MANIFEST,
};
use crate::error::{ArchiveError, Error, Result};
use crate::plan::{steps_in_order, Phase, Step};
use crate::scope::Cutoffs;
use crate::store::revision::StoreSchema;
use crate::store::rows::{Archived, TableColumns};
use crate::store::{catalog, DbConnection, StoreUri};

/// An archive being written, one batch at a time.
pub struct ArchiveWriter {
    /// The archive's directory; for a bucket, the local staging directory.
    dir: PathBuf,
    /// For an archive in a bucket: the bucket, and the archive's name in it.
    remote: Option<(Arc<Bucket>, String)>,
    manifest: File,
    /// The columns archived of each table of the plan the store has, and their keys as a row
    /// file writes them.
    tables: BTreeMap<&'static str, (TableColumns, RowKeys)>,
    batches: u64,
    batch: Option<BatchRecord>,
    files: RowFileThread,
    /// The batch's files handed to the file thread and closed, not yet known to be durable.
    writing: Vec<FileRecord>,
}

impl ArchiveWriter {
    /// Starts a new archive in a new directory under `root` (named by the time, UTC), with the
    /// manifest's header. Refuses a store whose tables hold columns the schema mirror does not
    /// know: they could not be archived.
    pub fn create(
        root: Place,
        conn: &mut DbConnection,
        uri: &StoreUri,
        schema: &StoreSchema,
        purge: serde_json::Value,
    ) -> Result<ArchiveWriter> {
        let mut tables = BTreeMap::new();
        for step in steps_in_order() {
            if tables.contains_key(step.table) || !schema.has_table(step.table) {
                continue;
            }
            // Not the columns the database computes: they come back by themselves.
            let present = catalog::stored_columns(conn, step.table)?;
            let mirror = (step.columns)();
            if let Some(unknown) = present.iter().find(|c| !mirror.iter().any(|m| &m.name == *c)) {
                return Err(ArchiveError::UnknownColumn {
                    table: step.table.to_owned(),
                    column: unknown.clone(),
                }
                .into());
            }
            let columns = mirror.into_iter().filter(|c| present.contains(&c.name)).collect();
            let columns = TableColumns { table: step.table.to_owned(), columns };
            let keys = row_keys(&columns);
            tables.insert(step.table, (columns, keys));
        }
        let started = std::time::SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(started).to_string();
        let name: String = stamp.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let (dir, remote) = match root {
            Place::Local(root) => (unused_dir(&root, &name)?, None),
            Place::Cloud(bucket) => {
                let name = unused_name(&bucket, &name)?;
                let staging = std::env::temp_dir()
                    .join(format!("mlflow-janitor-archive-{}-{name}", std::process::id()));
                create_private_dir(&staging)?;
                (staging, Some((bucket, name)))
            }
        };
        let manifest_path = dir.join(MANIFEST);
        let manifest =
            private_file(&manifest_path).map_err(|e| ArchiveError::io(&manifest_path, e))?;
        // Made now, so that the directory sync below covers its entry.
        create_private_dir(&dir.join("batches"))?;
        let files = RowFileThread::start().map_err(|e| ArchiveError::io(&dir, e))?;
        let mut writer = ArchiveWriter {
            dir,
            remote,
            manifest,
            tables,
            batches: 0,
            batch: None,
            files,
            writing: Vec::new(),
        };
        let header = Header {
            format: FORMAT,
            tool: concat!("mlflow-janitor ", env!("CARGO_PKG_VERSION")).to_owned(),
            store: uri.to_string(),
            backend: format!("{:?}", conn.backend()).to_lowercase(),
            revision: schema.revision.clone(),
            mlflow_version: schema.mlflow_version.to_owned(),
            started_at: stamp,
            purge,
            tables: writer
                .tables
                .iter()
                .map(|(table, (columns, _))| (table.to_string(), columns.columns.clone()))
                .collect(),
        };
        writer.append(&Record::Archive(header))?;
        sync_dir(&writer.dir)?;
        if let Some(root) = writer.dir.parent().filter(|_| writer.remote.is_none()) {
            sync_dir(root)?;
        }
        Ok(writer)
    }

    /// Where the archive is: its directory, or its URL in a bucket.
    pub fn location(&self) -> String {
        match &self.remote {
            None => self.dir.display().to_string(),
            Some((bucket, name)) => bucket.url(name),
        }
    }

    /// Uploads a whole file of the archive, for an archive in a bucket; then the local copy of
    /// a row file goes.
    fn upload(&self, relative: &str, keep: bool) -> Result<()> {
        if let Some((bucket, name)) = &self.remote {
            let path = self.dir.join(relative);
            bucket.upload(&path, &format!("{name}/{relative}"))?;
            if !keep {
                std::fs::remove_file(&path).map_err(|source| ArchiveError::io(&path, source))?;
            }
        }
        Ok(())
    }

    /// Starts the next batch, of `ids` of `phase`'s kind, in a directory of its own.
    pub(crate) fn begin_batch<Id: std::fmt::Display>(
        &mut self,
        phase: &Phase<Id>,
        ids: &[Id],
    ) -> Result<()> {
        // A batch begun but not sealed rolled back: its files are not the archive's.
        self.files.closed(self.writing.len());
        self.writing.clear();
        self.batches += 1;
        create_private_dir(&self.batch_dir())?;
        self.batch = Some(BatchRecord {
            batch: self.batches,
            entity: phase.entity,
            ids: ids.iter().map(ToString::to_string).collect(),
            experiment_column: phase.experiment_column.map(str::to_owned),
            unique: phase
                .unique
                .iter()
                .map(|set| set.iter().map(|c| c.to_string()).collect())
                .collect(),
            files: Vec::new(),
        });
        Ok(())
    }

    fn batch_dir(&self) -> PathBuf {
        self.dir.join(format!("batches/{:06}", self.batches))
    }

    /// Runs `step`'s delete of the batch's `ids`, handing the rows it deletes to the file
    /// thread, for a file of their own; returns the rows archived and deleted.
    pub(crate) fn delete_step<Id>(
        &mut self,
        conn: &mut DbConnection,
        step: &Step<Id>,
        entity_rows: bool,
        ids: &[Id],
        cutoffs: &Cutoffs,
    ) -> Result<Archived> {
        let (columns, keys) = &self.tables[step.table];
        let relative = format!(
            "batches/{:06}/{:02}-{}.jsonl.gz",
            self.batches,
            self.writing.len(),
            step.table
        );
        let path = self.dir.join(&relative);
        let files = &self.files;
        let mut sink: Option<RowSink> = None;
        let archived = (step.archive)(conn, ids, cutoffs, columns, &mut |row| {
            let out = match &mut sink {
                Some(out) => out,
                None => sink.insert(
                    files
                        .open(path.clone(), keys.clone())
                        .map_err(|source| ArchiveError::io(&path, source))?,
                ),
            };
            out.push(row).map_err(|source| ArchiveError::io(&path, source).into())
        })?;
        // A step with no rows leaves no file.
        if let Some(sink) = sink {
            sink.close().map_err(|source| ArchiveError::io(&path, source))?;
            self.writing.push(FileRecord {
                path: relative,
                table: step.table.to_owned(),
                owner: step.owner.to_owned(),
                entity_rows,
                rows: archived.rows,
                // Known once the file thread has closed the file.
                sha256: String::new(),
            });
        }
        Ok(archived)
    }

    /// Makes the batch durable: waits for its files, written and synced by the file thread
    /// (uploaded, for a bucket), syncs their directory, then writes and syncs the batch's
    /// manifest record. Before the batch's transaction commits.
    pub(crate) fn seal_batch(&mut self) -> Result<()> {
        let mut files = std::mem::take(&mut self.writing);
        let closed = self.files.closed(files.len());
        for (file, closed) in files.iter_mut().zip(closed) {
            file.sha256 = closed.map_err(|(path, source)| ArchiveError::io(&path, source))?;
            self.upload(&file.path, false)?;
        }
        sync_dir(&self.batch_dir())?;
        sync_dir(&self.dir.join("batches"))?;
        let batch = self.batch.as_mut().expect("a batch was begun");
        batch.files = files;
        let record = Record::Batch(batch.clone());
        self.append(&record)
    }

    /// Records that the batch committed.
    pub(crate) fn committed(&mut self) -> Result<()> {
        let batch = self.batch.take().expect("a batch was begun").batch;
        self.append(&Record::Committed { batch })
    }

    /// Appends a record to the manifest, synced (in a bucket: the whole manifest uploaded).
    fn append(&mut self, record: &Record) -> Result<()> {
        let path = self.dir.join(MANIFEST);
        let mut line = serde_json::to_vec(record).expect("a manifest record serializes");
        line.push(b'\n');
        self.manifest
            .write_all(&line)
            .and_then(|()| self.manifest.sync_data())
            .map_err(|source| ArchiveError::io(&path, source))?;
        self.upload(MANIFEST, true)
    }
}

impl Drop for ArchiveWriter {
    /// An archive in a bucket leaves no staging directory behind.
    fn drop(&mut self) {
        // The file thread ends first: it may still write into the staging directory.
        self.files.stop();
        if self.remote.is_some() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `name`, or `name-2` and on, whichever holds no archive in `bucket` yet.
fn unused_name(bucket: &Bucket, name: &str) -> Result<String> {
    for attempt in 1.. {
        let candidate = match attempt {
            1 => name.to_owned(),
            n => format!("{name}-{n}"),
        };
        if !bucket.exists(&format!("{candidate}/{MANIFEST}"))? {
            return Ok(candidate);
        }
    }
    unreachable!("some name is free")
}

/// `root/name`, or `root/name-2` and on if taken.
fn unused_dir(root: &Path, name: &str) -> Result<PathBuf> {
    create_private_dir(root)?;
    for attempt in 1.. {
        let dir = match attempt {
            1 => root.join(name),
            n => root.join(format!("{name}-{n}")),
        };
        match std::fs::DirBuilder::new().create(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|source| ArchiveError::io(&dir, source))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(ArchiveError::io(&dir, source).into()),
        }
    }
    unreachable!("some name is free")
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| Error::from(ArchiveError::io(path, source)))
}
