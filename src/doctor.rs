//! `doctor`: what is wrong in a store. Rows that point at nothing (what `mlflow gc` leaves, or a
//! store that ran without foreign keys), foreign-key rules the delete plan does not expect, and
//! missing indexes that make purges slow. `fix_orphans` deletes orphan rows in batches, each
//! delete re-checking that the row is still an orphan; nothing else is ever changed.

use diesel::dsl::{not, sql};
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::coverage;
use crate::error::Result;
use crate::introspect::{self, ForeignKey};
use crate::schema::*;
use crate::store::{Backend, DbConnection};

/// Rows of `table` whose owner is gone.
pub struct OrphanCheck {
    pub table: &'static str,
    pub what: &'static str,
    /// Only where the store lacks this foreign key (`table` → parent): elsewhere the database
    /// already rules such rows out.
    pub unless_foreign_key_to: Option<&'static str>,
    pub count: fn(&mut DbConnection) -> QueryResult<i64>,
    /// Deletes up to `limit` orphans (picked by key), re-checking the condition; returns rows.
    pub fix_batch: fn(&mut DbConnection, i64) -> QueryResult<usize>,
}

macro_rules! orphans {
    ($table:ident . $key:ident: $key_type:ty, $what:literal, $unless:expr, $condition:expr) => {
        OrphanCheck {
            table: stringify!($table),
            what: $what,
            unless_foreign_key_to: $unless,
            count: |conn| $table::table.filter($condition).count().get_result(conn),
            fix_batch: |conn, limit| {
                let keys: Vec<$key_type> = $table::table
                    .select($table::$key)
                    .filter($condition)
                    .limit(limit)
                    .load(conn)?;
                diesel::delete($table::table.filter($table::$key.eq_any(&keys)).filter($condition))
                    .execute(conn)
            },
        }
    };
}

/// Every kind of orphan row doctor knows. Removing orphans can orphan the rows that hang off
/// them (an input's tags): those checks come later, so one pass of fixes leaves none behind.
pub static ORPHAN_CHECKS: &[OrphanCheck] = &[
    orphans!(inputs.input_uuid: String, "dataset inputs of runs that are gone", None, {
        inputs::destination_type
            .eq("RUN")
            .and(not(inputs::destination_id.eq_any(runs::table.select(runs::run_uuid))))
    }),
    orphans!(inputs.input_uuid: String, "inputs from datasets that are gone", None, {
        inputs::source_type
            .eq("DATASET")
            .and(not(inputs::source_id.eq_any(datasets::table.select(datasets::dataset_uuid))))
    }),
    orphans!(inputs.input_uuid: String, "model links of runs that are gone", None, {
        inputs::source_type
            .eq_any(["RUN_INPUT", "RUN_OUTPUT"])
            .and(not(inputs::source_id.eq_any(runs::table.select(runs::run_uuid))))
    }),
    orphans!(inputs.input_uuid: String, "run links to logged models that are gone", None, {
        inputs::destination_type
            .eq_any(["MODEL_INPUT", "MODEL_OUTPUT"])
            .and(not(inputs::destination_id.eq_any(logged_models::table.select(logged_models::model_id))))
    }),
    orphans!(input_tags.input_uuid: String, "tags of inputs that are gone", None, {
        not(input_tags::input_uuid.eq_any(inputs::table.select(inputs::input_uuid)))
    }),
    orphans!(entity_associations.association_id: String, "associations of runs that are gone", None, {
        (entity_associations::source_type
            .eq("run")
            .and(not(entity_associations::source_id.eq_any(runs::table.select(runs::run_uuid)))))
        .or(entity_associations::destination_type
            .eq("run")
            .and(not(entity_associations::destination_id.eq_any(runs::table.select(runs::run_uuid)))))
    }),
    orphans!(entity_associations.association_id: String, "associations of traces that are gone", None, {
        (entity_associations::source_type.eq("trace").and(not(
            entity_associations::source_id.eq_any(trace_info::table.select(trace_info::request_id)),
        )))
        .or(entity_associations::destination_type.eq("trace").and(not(
            entity_associations::destination_id
                .eq_any(trace_info::table.select(trace_info::request_id)),
        )))
    }),
    orphans!(entity_associations.association_id: String, "associations of experiments that are gone", None, {
        // Experiment ids are integers; the association keeps them as text (CONCAT makes text on
        // every backend; CAST's type names differ).
        sql::<Bool>(
            "(entity_associations.source_type = 'experiment' AND entity_associations.source_id \
               NOT IN (SELECT CONCAT(experiment_id, '') FROM experiments)) \
             OR (entity_associations.destination_type = 'experiment' AND \
               entity_associations.destination_id \
               NOT IN (SELECT CONCAT(experiment_id, '') FROM experiments))",
        )
    }),
    orphans!(sql_trace_metric_daily_rollups.experiment_id: i32, "rollups of experiments that are gone", None, {
        not(sql_trace_metric_daily_rollups::experiment_id
            .eq_any(experiments::table.select(experiments::experiment_id)))
    }),
    orphans!(sql_span_cost_daily_rollups.experiment_id: i32, "rollups of experiments that are gone", None, {
        not(sql_span_cost_daily_rollups::experiment_id
            .eq_any(experiments::table.select(experiments::experiment_id)))
    }),
    orphans!(sql_assessment_daily_rollups.experiment_id: i32, "rollups of experiments that are gone", None, {
        not(sql_assessment_daily_rollups::experiment_id
            .eq_any(experiments::table.select(experiments::experiment_id)))
    }),
    orphans!(sql_trace_rollup_rebuild_queue.experiment_id: i32, "rollup rebuilds of experiments that are gone", None, {
        not(sql_trace_rollup_rebuild_queue::experiment_id
            .eq_any(experiments::table.select(experiments::experiment_id)))
    }),
    orphans!(metrics.run_uuid: String, "metrics of runs that are gone", Some("runs"), {
        not(metrics::run_uuid.eq_any(runs::table.select(runs::run_uuid)))
    }),
    orphans!(latest_metrics.run_uuid: String, "latest metrics of runs that are gone", Some("runs"), {
        not(latest_metrics::run_uuid.eq_any(runs::table.select(runs::run_uuid)))
    }),
    orphans!(params.run_uuid: String, "params of runs that are gone", Some("runs"), {
        not(params::run_uuid.eq_any(runs::table.select(runs::run_uuid)))
    }),
    orphans!(tags.run_uuid: String, "tags of runs that are gone", Some("runs"), {
        not(tags::run_uuid.eq_any(runs::table.select(runs::run_uuid)))
    }),
    orphans!(experiment_tags.experiment_id: i32, "tags of experiments that are gone", Some("experiments"), {
        not(experiment_tags::experiment_id.eq_any(experiments::table.select(experiments::experiment_id)))
    }),
];

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
    let keys = introspect::foreign_keys(conn)?;
    let mut findings = Vec::new();
    for check in active_checks(&keys, conn.backend()) {
        let rows = (check.count)(conn)?;
        if rows > 0 {
            findings.push(Finding::Orphans { table: check.table, what: check.what, rows });
        }
    }
    let unknown = coverage::unknown_references(&keys);
    let problems = coverage::plan_problems(&keys)
        .into_iter()
        .chain(unknown.into_iter().map(|fk| coverage::unknown_reference_error(fk).to_string()));
    findings.extend(problems.map(|problem| Finding::ForeignKey { problem }));
    let indexes = introspect::index_columns(conn)?;
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

/// The orphan checks that apply to a store with these foreign keys. SQLite enforces a declared
/// foreign key only on the connections that turn it on, so there a declaration rules nothing out.
fn active_checks(
    keys: &[ForeignKey],
    backend: Backend,
) -> impl Iterator<Item = &'static OrphanCheck> + '_ {
    ORPHAN_CHECKS.iter().filter(move |check| match check.unless_foreign_key_to {
        Some(parent) => {
            backend == Backend::Sqlite
                || !keys.iter().any(|fk| fk.table == check.table && fk.parent == parent)
        }
        None => true,
    })
}

/// Deletes every orphan row the checks find, `batch_size` rows per transaction, calling
/// `progress` with the rows of each batch. Returns the rows deleted per check.
pub fn fix_orphans(
    conn: &mut DbConnection,
    batch_size: i64,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<(&'static str, &'static str, u64)>> {
    let keys = introspect::foreign_keys(conn)?;
    let mut fixed = Vec::new();
    for check in active_checks(&keys, conn.backend()) {
        let mut rows = 0;
        loop {
            let deleted = conn.transaction(|conn| (check.fix_batch)(conn, batch_size))? as u64;
            if deleted == 0 {
                break;
            }
            rows += deleted;
            progress(deleted);
            tracing::info!(table = check.table, rows = deleted, "orphans deleted");
        }
        if rows > 0 {
            fixed.push((check.table, check.what, rows));
        }
    }
    Ok(fixed)
}
