//! Writes a purge's archive as its batches go: each step's rows to a file of their own, the
//! batch's files synced and recorded in the manifest before the batch commits.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::place::{Bucket, Place};
use super::{
    create_private_dir, write_json, BatchRecord, FileRecord, Header, Record, FORMAT, MANIFEST,
};
use crate::error::{ArchiveError, Error, Result};
use crate::plan::{steps_in_order, Phase, Step};
use crate::scope::Cutoffs;
use crate::store::revision::StoreSchema;
use crate::store::rows::{Archived, TableColumns, Value};
use crate::store::{catalog, DbConnection, StoreUri};

/// An archive being written, one batch at a time.
pub struct ArchiveWriter {
    /// The archive's directory; for a bucket, the local staging directory.
    dir: PathBuf,
    /// For an archive in a bucket: the bucket, and the archive's name in it.
    remote: Option<(Arc<Bucket>, String)>,
    manifest: File,
    /// The columns archived of each table of the plan the store has.
    tables: BTreeMap<&'static str, TableColumns>,
    batches: u64,
    batch: Option<BatchRecord>,
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
            tables.insert(step.table, TableColumns { table: step.table.to_owned(), columns });
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
        let manifest = private_file(&dir.join(MANIFEST))?;
        // Made now, so that the directory sync below covers its entry.
        create_private_dir(&dir.join("batches"))?;
        let mut writer = ArchiveWriter { dir, remote, manifest, tables, batches: 0, batch: None };
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
                .map(|(table, columns)| (table.to_string(), columns.columns.clone()))
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

    /// Starts the next batch, of `ids` of `phase`'s kind.
    pub(crate) fn begin_batch<Id: std::fmt::Display>(&mut self, phase: &Phase<Id>, ids: &[Id]) {
        self.batches += 1;
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
    }

    /// Runs `step`'s delete of the batch's `ids`, writing the rows it deletes to a file of their
    /// own, synced; returns the rows archived and deleted.
    pub(crate) fn delete_step<Id>(
        &mut self,
        conn: &mut DbConnection,
        step: &Step<Id>,
        entity_rows: bool,
        ids: &[Id],
        cutoffs: &Cutoffs,
    ) -> Result<Archived> {
        let batch = self.batch.as_ref().expect("a batch was begun");
        let columns = &self.tables[step.table];
        let relative =
            format!("batches/{:06}/{:02}-{}.jsonl.gz", batch.batch, batch.files.len(), step.table);
        let path = self.dir.join(&relative);
        let mut file: Option<RowFile> = None;
        let keys: Vec<Vec<u8>> = columns
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| {
                let name = serde_json::to_string(&column.name).expect("a name serializes");
                format!("{}{name}:", if index == 0 { "{" } else { "," }).into_bytes()
            })
            .collect();
        let archived = (step.archive)(conn, ids, cutoffs, columns, &mut |row: Vec<Value>| {
            let out = match &mut file {
                Some(out) => out,
                None => file.insert(RowFile::create(&path)?),
            };
            out.write_row(&keys, &row).map_err(|source| ArchiveError::io(&path, source).into())
        })?;
        // A step with no rows leaves no file.
        if let Some(out) = file {
            let sha256 = out.finish().map_err(|source| ArchiveError::io(&path, source))?;
            self.upload(&relative, false)?;
            let batch = self.batch.as_mut().expect("a batch was begun");
            batch.files.push(FileRecord {
                path: relative,
                table: step.table.to_owned(),
                owner: step.owner.to_owned(),
                entity_rows,
                rows: archived.rows,
                sha256,
            });
        }
        Ok(archived)
    }

    /// Makes the batch durable: its files' directory synced, then its manifest record written
    /// and synced. Before the batch's transaction commits.
    pub(crate) fn seal_batch(&mut self) -> Result<()> {
        let batch = self.batch.clone().expect("a batch was begun");
        if !batch.files.is_empty() {
            sync_dir(&self.dir.join(format!("batches/{:06}", batch.batch)))?;
            sync_dir(&self.dir.join("batches"))?;
        }
        self.append(&Record::Batch(batch))
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

fn private_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| ArchiveError::io(path, source).into())
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| Error::from(ArchiveError::io(path, source)))
}

/// A row file being written: gzip'd JSON Lines, hashed as it goes to disk.
struct RowFile {
    /// flate2 compresses (and zeroes a 32 KB buffer) at every write it is given: rows reach it
    /// 64 KB at a time.
    encoder: BufWriter<GzEncoder<Hashed<BufWriter<File>>>>,
}

impl RowFile {
    fn create(path: &Path) -> Result<RowFile> {
        let file = private_file(path)?;
        let hashed = Hashed { inner: BufWriter::with_capacity(1 << 16, file), hash: Sha256::new() };
        // Fast compression: the archive must not slow the purge much.
        let encoder = GzEncoder::new(hashed, flate2::Compression::fast());
        Ok(RowFile { encoder: BufWriter::with_capacity(1 << 16, encoder) })
    }

    /// `{"column": value, ...}` in the columns' order, and a newline; `keys` holds each
    /// column's `{"name":` or `,"name":`, encoded once.
    fn write_row(&mut self, keys: &[Vec<u8>], row: &[Value]) -> std::io::Result<()> {
        let out = &mut self.encoder;
        for (key, value) in keys.iter().zip(row) {
            out.write_all(key)?;
            write_json(&mut *out, value)?;
        }
        out.write_all(b"}\n")
    }

    /// Ends the file, synced; returns its SHA-256, in hex.
    fn finish(self) -> std::io::Result<String> {
        let encoder = self.encoder.into_inner().map_err(|e| e.into_error())?;
        let Hashed { inner, hash } = encoder.finish()?;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(hex(&hash.finalize()))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it.
struct Hashed<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
