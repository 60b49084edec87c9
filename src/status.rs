//! `status`: what is soft-deleted in a store, per workspace, and what a default purge would free.
//! Read-only. It counts through indexes (the runs' rows a batch of run ids at a time, see
//! [`rows_in_scope`]); byte figures are estimates from the planner's statistics and say so.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel::sql_types::{Double, Text};

use crate::artifacts::sweep::{measure, Action, ArtifactReport, ArtifactSweep};
use crate::artifacts::{ArtifactStore, Resolver};
use crate::error::Result;
use crate::mlflow::{DELETED, DELETED_MODEL_VERSION};
use crate::plan::{rows_in_scope, tables_in};
use crate::schema::{experiments, logged_models, model_versions, runs, trace_info};
use crate::scope::{Scope, ScopeRequest};
use crate::store::revision::StoreSchema;
use crate::store::space::{self, StoreSpace};
use crate::store::{Backend, DbConnection};

const DAY_MS: i64 = 86_400_000;

/// Soft-deleted entities of one kind in one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    pub count: i64,
    /// Epoch milliseconds of the oldest deletion with a recorded time.
    pub oldest_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkspaceStatus {
    pub workspace: String,
    pub experiments: Deleted,
    /// Soft-deleted runs, and the runs of soft-deleted experiments.
    pub runs: Deleted,
    pub logged_models: Deleted,
    pub model_versions: Deleted,
    /// Traces of soft-deleted experiments (a purge takes them with the experiment).
    pub traces_of_deleted_experiments: i64,
    /// Traces of live experiments older than 30 and 90 days: MLflow never deletes them.
    pub live_traces_older_than_30d: i64,
    pub live_traces_older_than_90d: i64,
    /// Names that soft-deleted experiments keep taken.
    pub names_held: Vec<String>,
}

/// Rows a default purge would delete from one table, with their approximate size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableFree {
    pub table: &'static str,
    pub rows: i64,
    /// Estimated from the table's size and row count in the planner's statistics; `None` when
    /// the table was never analyzed.
    pub approx_bytes: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub workspaces: Vec<WorkspaceStatus>,
    pub purge_would_free: Vec<TableFree>,
    pub bytes_are_estimates: bool,
    /// The disk the tables a purge deletes from take (on SQLite, the file's), and how much of
    /// it holds no live row: what `purge --reclaim` works on.
    pub space: StoreSpace,
    /// With `--artifacts`: what `purge --artifacts` would delete from the artifact stores
    /// (exact, from listing them), and which entities it would keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactReport>,
}

type Grouped = (String, i64, Option<i64>);

fn entry<'a>(
    by_workspace: &'a mut BTreeMap<String, WorkspaceStatus>,
    workspace: &str,
) -> &'a mut WorkspaceStatus {
    by_workspace.entry(workspace.to_owned()).or_insert_with(|| WorkspaceStatus {
        workspace: workspace.to_owned(),
        ..Default::default()
    })
}

/// With `artifacts` (resolver and store), also lists and sizes the artifact locations a default
/// `purge --artifacts` would delete.
pub fn status(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    artifacts: Option<(Resolver, ArtifactStore)>,
) -> Result<Status> {
    let mut by_workspace: BTreeMap<String, WorkspaceStatus> = BTreeMap::new();
    let deleted =
        |(workspace, count, oldest_ms): Grouped| (workspace, Deleted { count, oldest_ms });

    let rows: Vec<Grouped> = experiments::table
        .filter(experiments::lifecycle_stage.eq(DELETED))
        .group_by(experiments::workspace)
        .select((experiments::workspace, count_star(), min(experiments::last_update_time)))
        .load(conn)?;
    for (workspace, counts) in rows.into_iter().map(deleted) {
        entry(&mut by_workspace, &workspace).experiments = counts;
    }
    let rows: Vec<Grouped> = runs::table
        .inner_join(experiments::table)
        .filter(runs::lifecycle_stage.eq(DELETED).or(experiments::lifecycle_stage.eq(DELETED)))
        .group_by(experiments::workspace)
        .select((experiments::workspace, count_star(), min(runs::deleted_time)))
        .load(conn)?;
    for (workspace, counts) in rows.into_iter().map(deleted) {
        entry(&mut by_workspace, &workspace).runs = counts;
    }
    let rows: Vec<Grouped> = logged_models::table
        .inner_join(experiments::table)
        .filter(
            logged_models::lifecycle_stage.eq(DELETED).or(experiments::lifecycle_stage.eq(DELETED)),
        )
        .group_by(experiments::workspace)
        .select((
            experiments::workspace,
            count_star(),
            min(logged_models::last_updated_timestamp_ms).nullable(),
        ))
        .load(conn)?;
    for (workspace, counts) in rows.into_iter().map(deleted) {
        entry(&mut by_workspace, &workspace).logged_models = counts;
    }
    let rows: Vec<Grouped> = model_versions::table
        .filter(model_versions::current_stage.eq(DELETED_MODEL_VERSION))
        .group_by(model_versions::workspace)
        .select((model_versions::workspace, count_star(), min(model_versions::last_updated_time)))
        .load(conn)?;
    for (workspace, counts) in rows.into_iter().map(deleted) {
        entry(&mut by_workspace, &workspace).model_versions = counts;
    }
    let rows: Vec<(String, i64)> = trace_info::table
        .inner_join(experiments::table)
        .filter(experiments::lifecycle_stage.eq(DELETED))
        .group_by(experiments::workspace)
        .select((experiments::workspace, count_star()))
        .load(conn)?;
    for (workspace, count) in rows {
        entry(&mut by_workspace, &workspace).traces_of_deleted_experiments = count;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    for days in [30, 90] {
        let rows: Vec<(String, i64)> = trace_info::table
            .inner_join(experiments::table)
            .filter(experiments::lifecycle_stage.ne(DELETED))
            .filter(trace_info::timestamp_ms.lt(now - days * DAY_MS))
            .group_by(experiments::workspace)
            .select((experiments::workspace, count_star()))
            .load(conn)?;
        for (workspace, count) in rows {
            let status = entry(&mut by_workspace, &workspace);
            if days == 30 {
                status.live_traces_older_than_30d = count;
            } else {
                status.live_traces_older_than_90d = count;
            }
        }
    }
    let names: Vec<(String, String)> = experiments::table
        .filter(experiments::lifecycle_stage.eq(DELETED))
        .select((experiments::workspace, experiments::name))
        .order((experiments::workspace, experiments::name))
        .load(conn)?;
    for (workspace, name) in names {
        entry(&mut by_workspace, &workspace).names_held.push(name);
    }

    let (scope, _) = Scope::resolve(conn, schema, &ScopeRequest::default())?;
    let row_bytes = average_row_bytes(conn)?;
    let purge_would_free = rows_in_scope(&scope, conn)?
        .into_iter()
        .map(|(table, rows)| TableFree {
            table,
            rows,
            approx_bytes: row_bytes.get(table).map(|bytes| (bytes * rows as f64) as u64),
        })
        .collect();
    let space = space::measure(conn, &tables_in(schema))?;
    let artifacts = match artifacts {
        Some((resolver, store)) => {
            let mut report = ArtifactReport::default();
            let mut sweep =
                ArtifactSweep::new(conn, schema, resolver, store, Action::Measure, &mut report)?;
            measure(conn, &scope, &mut sweep, &mut report)?;
            Some(report)
        }
        None => None,
    };
    Ok(Status {
        workspaces: by_workspace.into_values().collect(),
        purge_would_free,
        bytes_are_estimates: true,
        space,
        artifacts,
    })
}

#[derive(QueryableByName)]
struct RowBytes {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Double)]
    bytes: f64,
}

/// Bytes per row of each analyzed table, indexes included, from the statistics (none on SQLite,
/// which keeps none).
fn average_row_bytes(conn: &mut DbConnection) -> Result<BTreeMap<String, f64>> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT relname::text AS table_name, \
                    pg_total_relation_size(oid)::float8 / reltuples::float8 AS bytes \
             FROM pg_class \
             WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace \
               AND reltuples > 0"
        }
        Backend::Mysql => {
            "SELECT table_name AS table_name, \
                    CAST((data_length + index_length) / table_rows AS DOUBLE) AS bytes \
             FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_rows > 0"
        }
        Backend::Sqlite => return Ok(BTreeMap::new()),
    };
    let rows: Vec<RowBytes> = diesel::sql_query(query).load(conn)?;
    Ok(rows.into_iter().map(|r| (r.table_name, r.bytes)).collect())
}
