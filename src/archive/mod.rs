//! Archives of what a purge deletes, and the restore that puts it back.
//!
//! A purge with an archive writes each batch's rows, every column the store has, before the
//! batch's transaction commits ([`ArchiveWriter`]); [`restore`] inserts them again. The format
//! is the same for every backend and needs no mlflow-janitor to read:
//!
//! - `manifest.jsonl`: one JSON object per line, appended and synced as the purge goes. The
//!   first (`"record": "archive"`) gives the format, the store (password redacted), its backend,
//!   schema revision and MLflow version, the start time, the purge's settings, and each archived
//!   table's columns with their kinds. Then a `"batch"` record per batch, written once its files
//!   are durable and before its transaction commits: its entities, and each file with its
//!   table, rows, owner rule and SHA-256. A `"committed"` record follows the commit: a batch
//!   without one may have rolled back, and a restore finds its entities still in the store.
//! - `batches/NNNNNN/SS-TABLE.jsonl.gz`: gzip'd JSON Lines, one object per row, keyed by column.
//!   Text, JSON (as its text) and dates (`YYYY-MM-DD`) are strings; integers are numbers (64-bit,
//!   exact); doubles are numbers in their shortest exact form, or the strings `"NaN"`,
//!   `"Infinity"`, `"-Infinity"`; booleans are booleans; binary is base64; NULL is null.
//!
//! Every file is created with mode 0600 and every directory 0700: archives hold deleted work.

pub mod place;
pub mod restore;
mod row_files;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;
use crate::plan::{Entity, Owner};
use crate::store::rows::{ColumnDef, Kind, Value};

pub use place::Place;
pub use writer::ArchiveWriter;

/// The archive format's version: a restore reads only the formats it knows.
pub const FORMAT: u32 = 1;
/// The manifest's file name, in the archive's directory.
pub const MANIFEST: &str = "manifest.jsonl";

/// One line of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Archive(Header),
    Batch(BatchRecord),
    Committed { batch: u64 },
}

/// What was archived from where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// `mlflow-janitor VERSION`.
    pub tool: String,
    /// The store's URI, its password redacted.
    pub store: String,
    pub backend: String,
    pub revision: String,
    pub mlflow_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The purge's scope and flags.
    pub purge: serde_json::Value,
    /// The columns archived of each table: those the store has.
    pub tables: BTreeMap<String, Vec<ColumnDef>>,
}

/// One batch of one kind of entity, and its files in the order the purge deleted them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchRecord {
    pub batch: u64,
    pub entity: Entity,
    /// The batch's entities, as their keys print.
    pub ids: Vec<String>,
    /// The entity row's column naming its experiment, if the kind lives in one.
    pub experiment_column: Option<String>,
    /// Columns besides the key that no two entities share.
    pub unique: Vec<Vec<String>>,
    pub files: Vec<FileRecord>,
}

/// One file of a batch: the rows one step of the plan deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the archive's directory.
    pub path: String,
    pub table: String,
    /// Which entity each row belongs to.
    pub owner: Owner<String>,
    /// The rows are the entities themselves.
    pub entity_rows: bool,
    pub rows: u64,
    pub sha256: String,
}

impl BatchRecord {
    /// Rows per table.
    pub fn rows_by_table(&self) -> BTreeMap<&str, u64> {
        let mut rows = BTreeMap::new();
        for file in &self.files {
            *rows.entry(file.table.as_str()).or_default() += file.rows;
        }
        rows
    }
}

/// Writes a value as a line of a row file holds it, without building a JSON value first.
pub fn write_json(out: &mut impl std::io::Write, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Null => out.write_all(b"null"),
        Value::Int(n) => write!(out, "{n}"),
        Value::Double(x) if x.is_nan() => out.write_all(br#""NaN""#),
        Value::Double(x) if x.is_infinite() => {
            out.write_all(if *x > 0.0 { br#""Infinity""# } else { br#""-Infinity""# })
        }
        // serde_json writes the shortest form that reads back to the same bits.
        Value::Double(x) => serde_json::to_writer(out, x).map_err(std::io::Error::from),
        Value::Text(s) => serde_json::to_writer(out, s).map_err(std::io::Error::from),
        Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
        Value::Bytes(b) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(b);
            serde_json::to_writer(out, &encoded).map_err(std::io::Error::from)
        }
    }
}

/// A value of a column of `kind`, from a line of a row file.
pub fn from_json(json: &serde_json::Value, kind: Kind) -> Result<Value, String> {
    use serde_json::Value as Json;
    let wrong = || format!("{json} is not a value of kind {kind:?}");
    Ok(match (kind, json) {
        (_, Json::Null) => Value::Null,
        (Kind::Text | Kind::Json | Kind::Date, Json::String(s)) => Value::Text(s.clone()),
        (Kind::Integer | Kind::BigInt, Json::Number(n)) => {
            Value::Int(n.as_i64().ok_or_else(wrong)?)
        }
        (Kind::Double, Json::Number(n)) => Value::Double(n.as_f64().ok_or_else(wrong)?),
        (Kind::Double, Json::String(s)) => Value::Double(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(wrong()),
        }),
        (Kind::Bool, Json::Bool(b)) => Value::Bool(*b),
        (Kind::Bytes, Json::String(s)) => {
            Value::Bytes(base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| wrong())?)
        }
        _ => return Err(wrong()),
    })
}

/// Creates a directory (and its parents) that only its owner may enter.
fn create_private_dir(path: &Path) -> Result<(), ArchiveError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| ArchiveError::io(path, source))
}

/// A new file of the archive, mode 0600, to append to.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().create_new(true).append(true).mode(0o600).open(path)
}

/// The archives at `path`: itself when it holds a manifest, else those of its subdirectories
/// (each purge with `--archive DIR` writes one there), newest first.
pub fn archives_at(path: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    if path.join(MANIFEST).is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(ArchiveError::NotAnArchive { path: path.display().to_string() });
    }
    let entries = std::fs::read_dir(path).map_err(|source| ArchiveError::io(path, source))?;
    let mut archives: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|dir| dir.join(MANIFEST).is_file())
        .collect();
    if archives.is_empty() {
        return Err(ArchiveError::NotAnArchive { path: path.display().to_string() });
    }
    sort_newest_first(&mut archives, |dir| {
        dir.file_name().and_then(|name| name.to_str()).unwrap_or_default()
    });
    Ok(archives)
}

/// Sorts archives by their names, newest first. A name is the purge's start time, to the
/// second, with `-2`, `-3`, ... after it when several purges started in one second.
fn sort_newest_first<T>(archives: &mut [T], name: impl Fn(&T) -> &str) {
    archives.sort_by_cached_key(|archive| {
        let name = name(archive);
        let (started, nth) = match name.rsplit_once('-').map(|(s, n)| (s, n.parse::<u32>())) {
            Some((started, Ok(nth))) => (started, nth),
            _ => (name, 1),
        };
        std::cmp::Reverse((started.to_owned(), nth))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_of_one_second_sort_by_their_number() {
        let mut names =
            ["20261204T160000Z-2", "20261204T155959Z", "20261204T160000Z-10", "20261204T160000Z"];
        sort_newest_first(&mut names, |name| name);
        assert_eq!(
            names,
            ["20261204T160000Z-10", "20261204T160000Z-2", "20261204T160000Z", "20261204T155959Z"]
        );
    }

    #[test]
    fn every_value_round_trips_exactly_through_its_json() {
        let cases = [
            (Value::Int(i64::MAX), Kind::BigInt),
            (Value::Int(i64::MIN), Kind::BigInt),
            (Value::Double(-0.0), Kind::Double),
            (Value::Double(f64::NAN), Kind::Double),
            (Value::Double(f64::INFINITY), Kind::Double),
            (Value::Double(f64::NEG_INFINITY), Kind::Double),
            (Value::Double(f64::MAX), Kind::Double),
            (Value::Double(0.1 + 0.2), Kind::Double),
            (Value::Double(5e-324), Kind::Double),
            (Value::Text("é ✓ 🙂 \u{0} \"quoted\"\n".into()), Kind::Text),
            (Value::Text(r#"{"a": [1, 2.50, "x"]}"#.into()), Kind::Json),
            (Value::Bool(true), Kind::Bool),
            (Value::Bytes(vec![0, 255, 10, 13]), Kind::Bytes),
            (Value::Null, Kind::Double),
        ];
        for (value, kind) in cases {
            let mut line = Vec::new();
            write_json(&mut line, &value).unwrap();
            let back = from_json(&serde_json::from_slice(&line).unwrap(), kind).unwrap();
            assert_eq!(back, value, "{}", String::from_utf8_lossy(&line));
        }
        assert!(from_json(&serde_json::json!("12"), Kind::BigInt).is_err());
    }
}
