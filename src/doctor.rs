//! `doctor`: what is wrong in a store. Rows that point at nothing (what `mlflow gc` leaves, or a
//! store that ran without foreign keys), foreign-key rules the delete plan does not expect, and
//! missing indexes that make purges slow. `fix_orphans` deletes orphan rows in batches, each
//! delete re-checking that the row is still an orphan; nothing else is ever changed.

use crate::coverage;
use crate::error::Result;
use crate::plan::{steps_in_order, Orphans};
use crate::store::catalog::{self, ForeignKey};
use crate::store::{write_transaction, Backend, DbConnection};

/// Lookups the purge makes, by table and columns: each wants an index that starts with them.
pub static PURGE_LOOKUPS: &[(&str, &[&str])] = &[
    ("runs", &["experiment_id"]),
    ("metrics", &["run_uuid"]),
    ("latest_metrics", &["run_uuid"]),
    ("params", &["run_uuid"]),
    ("tags", &["run_uuid"]),
    ("inputs", &["destination_type", "destination_id"]),
    ("inputs", &["source_type", "source_id"]),
    ("logged_model_metrics", &["run_id"]),
    ("logged_model_metrics", &["model_id"]),
    ("logged_models", &["experiment_id"]),
    ("trace_info", &["experiment_id"]),
    ("spans", &["trace_id"]),
    ("assessments", &["trace_id"]),
    ("trace_tags", &["request_id"]),
    ("trace_request_metadata", &["request_id"]),
    ("datasets", &["experiment_id"]),
    ("experiment_tags", &["experiment_id"]),
];

/// One thing doctor found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// Rows that point at nothing; `--fix` deletes them.
    Orphans { table: &'static str, what: &'static str, rows: i64 },
    /// A foreign key the delete plan does not expect: a purge would fail or stop.
    ForeignKey { problem: String },
    /// Advice: a purge's lookup without an index scans the whole table.
    MissingIndex { table: &'static str, columns: Vec<&'static str>, statement: String },
}

impl Finding {
    /// Problems make doctor exit non-zero; advice does not.
    pub fn is_problem(&self) -> bool {
        !matches!(self, Finding::MissingIndex { .. })
    }
}

/// Examines the store; changes nothing.
pub fn examine(conn: &mut DbConnection) -> Result<Vec<Finding>> {
    let keys = catalog::foreign_keys(conn)?;
    let mut findings = Vec::new();
    for check in active_checks(conn, &keys)? {
        let rows = (check.orphans.count)(conn)?;
        if rows > 0 {
            findings.push(Finding::Orphans { table: check.table, what: check.orphans.what, rows });
        }
    }
    let unknown = coverage::unknown_references(&keys);
    let problems = coverage::plan_problems(&keys)
        .into_iter()
        .chain(unknown.into_iter().map(|fk| coverage::unknown_reference_error(fk).to_string()));
    findings.extend(problems.map(|problem| Finding::ForeignKey { problem }));
    let indexes = catalog::index_columns(conn)?;
    for (table, columns) in PURGE_LOOKUPS {
        let served = indexes.iter().any(|(t, index)| {
            t == table
                && index.len() >= columns.len()
                && columns.iter().all(|c| index[..columns.len()].iter().any(|i| i == c))
        });
        if !served {
            findings.push(Finding::MissingIndex {
                table,
                columns: columns.to_vec(),
                statement: format!(
                    "CREATE INDEX {}ix_{table}_{} ON {table} ({});",
                    // PostgreSQL builds it without blocking the tracking server's writes.
                    if conn.backend() == Backend::Postgresql {
                        "CONCURRENTLY IF NOT EXISTS "
                    } else {
                        ""
                    },
                    columns.join("_"),
                    columns.join(", ")
                ),
            });
        }
    }
    Ok(findings)
}

/// One kind of orphan row: rows of `table`, as a step of the delete plan declares them.
struct OrphanCheck {
    table: &'static str,
    orphans: &'static Orphans,
}

/// The plan's orphan checks that apply to the store (its MLflow version has the step's tables)
/// with these foreign keys, parents before
/// children (the plan's steps in reverse): removing orphans can orphan the rows that hang off
/// them (an input's tags), whose checks come later, so one pass of fixes leaves none behind.
/// SQLite enforces a declared foreign key only on the connections that turn it on, so there a
/// declaration rules nothing out.
fn active_checks(conn: &mut DbConnection, keys: &[ForeignKey]) -> Result<Vec<OrphanCheck>> {
    let (tables, backend) = (catalog::tables(conn)?, conn.backend());
    let checks = steps_in_order()
        .into_iter()
        .rev()
        .filter(|step| step.tables.iter().all(|table| tables.contains(*table)))
        .filter_map(|step| Some(OrphanCheck { table: step.table, orphans: step.orphans? }))
        .filter(|check| {
            backend == Backend::Sqlite
                || !keys
                    .iter()
                    .any(|fk| fk.table == check.table && fk.parent == check.orphans.owner)
        })
        .collect();
    Ok(checks)
}

/// Deletes every orphan row the checks find, `batch_size` rows per transaction, calling
/// `progress` with the rows of each batch. Returns the rows deleted per check.
pub fn fix_orphans(
    conn: &mut DbConnection,
    batch_size: i64,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<(&'static str, &'static str, u64)>> {
    let keys = catalog::foreign_keys(conn)?;
    let mut fixed = Vec::new();
    for check in active_checks(conn, &keys)? {
        let mut rows = 0;
        loop {
            // A write transaction, as the purge's: on SQLite a batch that began by reading
            // could not wait for a tracking server's write, and would fail at its delete.
            let deleted =
                write_transaction(conn, |conn| (check.orphans.fix_batch)(conn, batch_size))? as u64;
            if deleted == 0 {
                break;
            }
            rows += deleted;
            progress(deleted);
            tracing::info!(table = check.table, rows = deleted, "orphans deleted");
        }
        if rows > 0 {
            fixed.push((check.table, check.orphans.what, rows));
        }
    }
    Ok(fixed)
}
