//! The disk a store's tables take, by the database's own figures, and the statements that give
//! back the space of deleted rows (`purge --reclaim`). The three backends differ in what space
//! they can give back, and how: each difference is here.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Backend, DbConnection};
use crate::error::{Error, Result};

/// Space on disk, and how much of it no row uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Space {
    /// What it takes in the database's files: PostgreSQL's `pg_total_relation_size` (table,
    /// indexes, TOAST), MySQL's `DATA_LENGTH + INDEX_LENGTH + DATA_FREE`, SQLite's whole file.
    pub bytes: u64,
    /// Of which holds no live row: MySQL's `DATA_FREE` and SQLite's free pages, which the
    /// database reuses and only a rewrite (`OPTIMIZE TABLE`, `VACUUM`) gives back; PostgreSQL's
    /// dead rows, estimated from `n_dead_tup`, which `VACUUM` makes reusable.
    pub free_bytes: u64,
}

impl std::iter::Sum for Space {
    fn sum<I: Iterator<Item = Space>>(spaces: I) -> Space {
        spaces.fold(Space::default(), |sum, space| Space {
            bytes: sum.bytes + space.bytes,
            free_bytes: sum.free_bytes + space.free_bytes,
        })
    }
}

/// A store's space: each table's on a server; on SQLite the file's, which its tables share.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreSpace {
    /// By table, on PostgreSQL and MySQL.
    pub tables: BTreeMap<String, Space>,
    /// The SQLite file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Space>,
}

/// How [`StoreSpace::parts`] names SQLite's file.
pub const FILE: &str = "file";

impl StoreSpace {
    /// Each table's space, or the file's as [`FILE`].
    pub fn parts(&self) -> impl Iterator<Item = (&str, &Space)> {
        let file = self.file.iter().map(|file| (FILE, file));
        file.chain(self.tables.iter().map(|(table, space)| (table.as_str(), space)))
    }

    /// The space of all of it: the tables', or the file's.
    pub fn total(&self) -> Space {
        self.file.unwrap_or_else(|| self.tables.values().copied().sum())
    }
}

#[derive(QueryableByName)]
struct TableSpaceRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
    #[diesel(sql_type = BigInt)]
    free_bytes: i64,
}

impl TableSpaceRow {
    fn space(&self) -> Space {
        Space { bytes: self.bytes.max(0) as u64, free_bytes: self.free_bytes.max(0) as u64 }
    }
}

/// Sends PostgreSQL's statistics this session's counts of the rows it deleted, which otherwise
/// wait up to a second (PostgreSQL 15 on): read next, `n_dead_tup` counts them, and a VACUUM
/// that follows leaves it at 0 instead of having them added after it.
pub fn flush_statistics(conn: &mut DbConnection) -> Result<()> {
    if conn.backend() == Backend::Postgresql {
        // The flush happens once the statement ends and the session waits for the next.
        conn.batch_execute(
            "DO $$ BEGIN \
               IF current_setting('server_version_num')::int >= 150000 THEN \
                 PERFORM pg_stat_force_next_flush(); \
               END IF; \
             END $$",
        )?;
    }
    Ok(())
}

/// The space of `tables` (those the store has), or of the SQLite file.
pub fn measure(conn: &mut DbConnection, tables: &[&str]) -> Result<StoreSpace> {
    let query = match conn.backend() {
        // Dead rows' share of the heap: the cumulative statistics count each committed delete;
        // the rows they share the heap with are the larger of their live and dead counts and
        // the planner's count, which ANALYZE made before the deletes (the cumulative counts
        // start again from zero in a database copied from a template, or after a crash).
        Backend::Postgresql => {
            "SELECT c.relname::text AS name, pg_total_relation_size(c.oid) AS bytes, \
                    COALESCE((s.n_dead_tup::float8 * pg_relation_size(c.oid) \
                              / NULLIF(GREATEST(s.n_live_tup + s.n_dead_tup, c.reltuples), 0) \
                             )::int8, 0) AS free_bytes \
             FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
        }
        Backend::Mysql => {
            if !super::session::is_mariadb(conn)? {
                // MySQL 8 caches these figures for a day by default; MariaDB reads them live.
                conn.batch_execute("SET SESSION information_schema_stats_expiry = 0")?;
            }
            "SELECT table_name AS name, \
                    CAST(data_length + index_length + data_free AS SIGNED) AS bytes, \
                    CAST(data_free AS SIGNED) AS free_bytes \
             FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
        Backend::Sqlite => {
            let file: TableSpaceRow = diesel::sql_query(
                "SELECT 'file' AS name, page_count * page_size AS bytes, \
                        freelist_count * page_size AS free_bytes \
                 FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
            )
            .get_result(conn)?;
            return Ok(StoreSpace { tables: BTreeMap::new(), file: Some(file.space()) });
        }
    };
    let rows: Vec<TableSpaceRow> = diesel::sql_query(query).load(conn)?;
    let tables = rows
        .into_iter()
        .filter(|row| tables.contains(&row.name.as_str()))
        .map(|row| {
            let space = row.space();
            (row.name, space)
        })
        .collect();
    Ok(StoreSpace { tables, file: None })
}

/// How far a reclaim goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reclaim {
    /// What runs beside live traffic: PostgreSQL's `VACUUM (ANALYZE)`, MySQL's `ANALYZE TABLE`;
    /// SQLite's `VACUUM` (its only way).
    Standard,
    /// Also rebuild MySQL's tables (`OPTIMIZE TABLE`), which gives their free space back to the
    /// filesystem. PostgreSQL's `VACUUM FULL` is never run: it locks the table exclusively.
    Full,
}

impl Reclaim {
    /// Each level, by the name settings give it.
    pub const LEVELS: [(&'static str, Reclaim); 2] =
        [("standard", Reclaim::Standard), ("full", Reclaim::Full)];
}

impl std::str::FromStr for Reclaim {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, Self::Err> {
        let level = Reclaim::LEVELS.iter().find(|(level, _)| *level == name);
        level.map(|(_, level)| *level).ok_or_else(|| {
            let names: Vec<&str> = Reclaim::LEVELS.iter().map(|(name, _)| *name).collect();
            format!("`{name}` is not one of {}", names.join(", "))
        })
    }
}

#[derive(QueryableByName)]
struct AdminMessage {
    #[diesel(sql_type = Text, column_name = "Msg_type")]
    kind: String,
    #[diesel(sql_type = Text, column_name = "Msg_text")]
    text: String,
}

/// What one reclaim statement acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Table(&'a str),
    /// SQLite's file: one `VACUUM` rewrites all its tables.
    File,
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Table(table) => write!(f, "table {table}"),
            Target::File => f.write_str("the SQLite file"),
        }
    }
}

/// What reclaiming `tables` acts on, in turn.
pub fn targets<'a>(backend: Backend, tables: &[&'a str]) -> Vec<Target<'a>> {
    match backend {
        Backend::Sqlite => vec![Target::File],
        _ => tables.iter().map(|table| Target::Table(table)).collect(),
    }
}

/// Gives back what it can of `target`'s free space, outside any transaction. On SQLite `VACUUM`
/// holds the write lock throughout: the tracking server's writes wait.
pub fn reclaim(conn: &mut DbConnection, target: Target<'_>, reclaim: Reclaim) -> Result<()> {
    match (conn.backend(), target) {
        // Not VACUUM FULL: plain VACUUM takes no lock that blocks reads or writes, and still
        // returns the table's trailing empty pages to the filesystem.
        (Backend::Postgresql, Target::Table(table)) => {
            conn.batch_execute(&format!("VACUUM (ANALYZE) \"{table}\""))?
        }
        (Backend::Mysql, Target::Table(table)) => {
            let statement = match reclaim {
                Reclaim::Standard => "ANALYZE",
                Reclaim::Full => "OPTIMIZE",
            };
            // These report failure in their result rows, not as an error.
            let messages: Vec<AdminMessage> =
                diesel::sql_query(format!("{statement} TABLE `{table}`")).load(conn)?;
            if let Some(failed) = messages.iter().find(|m| m.kind.eq_ignore_ascii_case("error")) {
                return Err(Error::ReclaimStopped {
                    reason: format!("{statement} TABLE `{table}`: {}", failed.text),
                });
            }
        }
        (Backend::Sqlite, _) => conn.batch_execute("VACUUM")?,
        // A server's store has no file to reclaim (see `targets`).
        (_, Target::File) => {}
    }
    Ok(())
}

/// Refuses a `VACUUM` of the SQLite file at `path` that the disk has no room for: it writes a
/// copy of the live pages to SQLite's temporary folder, then rewrites the file through a
/// journal of up to the file's size beside it.
pub fn check_room_to_vacuum(path: &Path, file: Space) -> Result<()> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temporary = sqlite_temporary_folder();
    let statvfs = |at: &Path| {
        rustix::fs::statvfs(at).map_err(|e| {
            Error::InvalidSettings(format!("cannot read the free space of {}: {e}", at.display()))
        })
    };
    let device = |at: &Path| std::fs::metadata(at).map(|m| m.dev()).ok();
    let live = file.bytes - file.free_bytes;
    let mut needs = vec![(folder.to_path_buf(), file.bytes)];
    let beside = device(folder);
    if beside.is_some() && beside == device(&temporary) {
        needs[0].1 += live;
    } else {
        needs.push((temporary, live));
    }
    for (at, needed) in needs {
        let fs = statvfs(&at)?;
        let available = fs.f_bavail * fs.f_frsize;
        if available < needed {
            return Err(Error::NoRoomToVacuum {
                path: at.display().to_string(),
                needed,
                available,
            });
        }
    }
    Ok(())
}

/// Where SQLite writes its temporary files on Unix: the first of these that is a folder.
fn sqlite_temporary_folder() -> std::path::PathBuf {
    let from_environment = ["SQLITE_TMPDIR", "TMPDIR"].into_iter().filter_map(std::env::var_os);
    from_environment
        .map(std::path::PathBuf::from)
        .chain(["/var/tmp", "/usr/tmp", "/tmp"].map(std::path::PathBuf::from))
        .find(|folder| folder.is_dir())
        .unwrap_or_else(|| ".".into())
}
