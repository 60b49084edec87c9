//! The archive's row files, written on a thread of their own: encoding, compression, hashing
//! and the disk's sync overlap the database's work on the batch's next statements. A batch
//! waits for its files only when it is sealed, before it commits.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::write_json;
use crate::store::rows::{TableColumns, Value};

/// Rows handed to the thread at once.
const CHUNK_ROWS: usize = 1024;
/// Chunks waiting for the thread at most: beyond that the purge waits, so memory stays bounded
/// whatever the thread's pace.
const QUEUED_CHUNKS: usize = 8;

/// What the thread is asked to do, in order: open a file, write rows to it, then close it, or
/// abandon it (its step failed, its batch rolls back).
enum Job {
    Open { path: PathBuf, keys: RowKeys },
    Rows(Vec<Vec<Value>>),
    Close,
    Abandon,
}

/// Each column's key as a row file writes it, in the columns' order.
pub(super) type RowKeys = Arc<[Vec<u8>]>;

/// Each column's `{"name":` (the first) or `,"name":`, as a row of `columns` is written: encoded
/// once per table.
pub(super) fn row_keys(columns: &TableColumns) -> RowKeys {
    columns
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let name = serde_json::to_string(&column.name).expect("a name serializes");
            format!("{}{name}:", if index == 0 { "{" } else { "," }).into_bytes()
        })
        .collect()
}

/// A closed file: its SHA-256 in hex, or why it could not be written.
pub(super) type Closed = Result<String, (PathBuf, io::Error)>;

/// The thread, and the outcomes of the files it closed.
pub(super) struct RowFileThread {
    jobs: Option<SyncSender<Job>>,
    closed: Receiver<Closed>,
    thread: Option<JoinHandle<()>>,
}

impl RowFileThread {
    pub(super) fn start() -> io::Result<RowFileThread> {
        let (jobs, queue) = sync_channel(QUEUED_CHUNKS);
        let (report, closed) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("archive-files".to_owned())
            .spawn(move || write_files(queue, report))?;
        Ok(RowFileThread { jobs: Some(jobs), closed, thread: Some(thread) })
    }

    /// Opens a file at `path` of rows keyed by `keys` (see [`row_keys`]).
    pub(super) fn open(&self, path: PathBuf, keys: RowKeys) -> io::Result<RowSink> {
        let jobs = self.jobs.clone().ok_or_else(thread_gone)?;
        let sink = RowSink { jobs, chunk: Vec::with_capacity(CHUNK_ROWS), closed: false };
        sink.send(Job::Open { path, keys })?;
        Ok(sink)
    }

    /// The outcomes of the next `files` files closed, in the order they were opened: waits for
    /// the thread to finish them.
    pub(super) fn closed(&self, files: usize) -> Vec<Closed> {
        (0..files)
            .map(|_| self.closed.recv().unwrap_or_else(|_| Err((PathBuf::new(), thread_gone()))))
            .collect()
    }
}

impl RowFileThread {
    /// Ends the thread's loop and waits for it: then no file is being written.
    pub(super) fn stop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RowFileThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn thread_gone() -> io::Error {
    io::Error::other("the archive's file thread ended")
}

/// The rows of one open file. [`RowSink::close`] ends it; dropped unclosed, it is abandoned.
pub(super) struct RowSink {
    jobs: SyncSender<Job>,
    chunk: Vec<Vec<Value>>,
    closed: bool,
}

impl RowSink {
    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs.send(job).map_err(|_| thread_gone())
    }

    pub(super) fn push(&mut self, row: Vec<Value>) -> io::Result<()> {
        self.chunk.push(row);
        if self.chunk.len() < CHUNK_ROWS {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_ROWS));
        self.send(Job::Rows(chunk))
    }

    /// Hands over the last rows and closes the file; its outcome comes from
    /// [`RowFileThread::closed`].
    pub(super) fn close(mut self) -> io::Result<()> {
        self.closed = true;
        let chunk = std::mem::take(&mut self.chunk);
        self.send(Job::Rows(chunk))?;
        self.send(Job::Close)
    }
}

impl Drop for RowSink {
    fn drop(&mut self) {
        if !self.closed {
            // The thread may be gone already: then there is nothing to abandon.
            let _ = self.send(Job::Abandon);
        }
    }
}

/// The file the thread writes: where, its columns' keys, and the file, or why it failed.
struct OpenFile {
    path: PathBuf,
    keys: RowKeys,
    file: io::Result<RowFile>,
}

/// The thread's loop. A file that fails is reported when it is closed; its remaining rows are
/// dropped unwritten.
fn write_files(queue: Receiver<Job>, report: std::sync::mpsc::Sender<Closed>) {
    let mut open: Option<OpenFile> = None;
    for job in queue {
        match job {
            Job::Open { path, keys } => {
                let file = RowFile::create(&path);
                open = Some(OpenFile { path, keys, file });
            }
            Job::Rows(rows) => {
                let Some(OpenFile { keys, file, .. }) = &mut open else { continue };
                if let Ok(out) = file {
                    if let Err(e) = rows.iter().try_for_each(|row| out.write_row(keys, row)) {
                        *file = Err(e);
                    }
                }
            }
            Job::Close => {
                let Some(OpenFile { path, file, .. }) = open.take() else { continue };
                let closed = file.and_then(RowFile::finish).map_err(|e| (path, e));
                if report.send(closed).is_err() {
                    return;
                }
            }
            Job::Abandon => {
                if let Some(OpenFile { path, .. }) = open.take() {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// A row file being written: gzip'd JSON Lines, hashed as it goes to disk.
struct RowFile {
    /// flate2 compresses (and zeroes a 32 KB buffer) at every write it is given: rows reach it
    /// 64 KB at a time.
    encoder: BufWriter<GzEncoder<Hashed<BufWriter<File>>>>,
}

impl RowFile {
    fn create(path: &Path) -> io::Result<RowFile> {
        let file = super::private_file(path)?;
        let hashed = Hashed { inner: BufWriter::with_capacity(1 << 16, file), hash: Sha256::new() };
        // Fast compression: the archive must not slow the purge much.
        let encoder = GzEncoder::new(hashed, flate2::Compression::fast());
        Ok(RowFile { encoder: BufWriter::with_capacity(1 << 16, encoder) })
    }

    /// `{"column": value, ...}` in the columns' order, and a newline.
    fn write_row(&mut self, keys: &[Vec<u8>], row: &[Value]) -> io::Result<()> {
        let out = &mut self.encoder;
        for (key, value) in keys.iter().zip(row) {
            out.write_all(key)?;
            write_json(&mut *out, value)?;
        }
        out.write_all(b"}\n")
    }

    /// Ends the file, synced; returns its SHA-256, in hex.
    fn finish(self) -> io::Result<String> {
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
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
