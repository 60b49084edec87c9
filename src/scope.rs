//! What a purge deletes: which experiments, runs, traces and logged models, resolved and checked
//! before anything is deleted, then read in keyset-paged batches so memory stays flat.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::dsl::{not, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable};

use crate::error::{Error, Result};
use crate::plan::{
    deleted_experiments, phases_in_order, Cutoffs, Entity, ModelVersionKey, Phase, BLOCKERS,
    DELETED, DELETED_MODEL_VERSION, FINISHED_JOB_STATUSES,
};
use crate::schema::{experiments, jobs, logged_models, model_versions, runs, trace_info, webhooks};
use crate::store::revision::StoreSchema;
use crate::store::DbConnection;

/// Entities per batch (per transaction, in a purge) unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// What the user asked to purge.
#[derive(Debug, Clone, Default)]
pub struct ScopeRequest {
    /// Only entities deleted longer ago than this; `None` for all.
    pub older_than: Option<Duration>,
    pub experiment_ids: Vec<String>,
    pub experiment_names: Vec<String>,
    pub run_ids: Vec<String>,
    /// Kinds beyond deleted experiments and runs, for a whole-store purge.
    pub retention: Retention,
}

/// The other kinds of data MLflow lets grow, each purged only when asked (whole-store purges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Soft-deleted logged models of live experiments.
    pub logged_models: bool,
    /// Model versions MLflow marked `Deleted_Internal`, with their tags.
    pub model_versions: bool,
    /// Soft-deleted webhooks, with their events.
    pub webhooks: bool,
    /// Jobs that finished (succeeded, failed, timed out or were canceled).
    pub finished_jobs: bool,
    /// Traces of live experiments older than this, with all that hangs off them.
    pub traces_older_than: Option<Duration>,
}

impl Retention {
    fn any(&self) -> bool {
        *self != Retention::default()
    }
}

fn ms_before_now(age: Duration) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(age).as_millis() as i64
}

impl ScopeRequest {
    fn names_entities(&self) -> bool {
        !(self.experiment_ids.is_empty()
            && self.experiment_names.is_empty()
            && self.run_ids.is_empty())
    }
}

/// The resolved scope: either every soft-deleted entity (the default) or exactly the named ones.
///
/// The default takes every soft-deleted experiment (with all it holds) and every soft-deleted
/// run of a live experiment, deleted before the cutoff. A NULL deletion time (runs and
/// experiments deleted by MLflow versions that recorded none) counts as older than any cutoff.
/// Experiments that a live row blocks are left out.
#[derive(Debug, Clone)]
pub struct Scope {
    schema: StoreSchema,
    all_deleted: bool,
    /// Epoch milliseconds; `i64::MAX` without `--older-than`.
    cutoff_ms: i64,
    retention: Retention,
    /// Traces of live experiments started before this; `i64::MIN` for none.
    traces_before_ms: i64,
    blocked: Vec<i32>,
    /// Named experiments, with all they hold, all checked soft-deleted.
    experiments: Vec<i32>,
    /// Named runs, all checked soft-deleted.
    runs: Vec<String>,
}

/// Experiments kept out of the default scope, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlockedExperiment {
    pub experiment_id: i32,
    pub reason: &'static str,
}

/// The experiments in scope, as a filter on `experiments`. The scope's queries keep one static
/// shape (no boxing) so that they run unchanged on every backend of `DbConnection`.
macro_rules! experiment_in_scope {
    ($scope:expr) => {
        experiments::experiment_id.eq_any(&$scope.experiments).or($scope
            .all_deleted
            .into_sql::<Bool>()
            .and(experiments::lifecycle_stage.eq(DELETED))
            .and(
                experiments::last_update_time
                    .lt($scope.cutoff_ms)
                    .or(experiments::last_update_time.is_null()),
            )
            .and(not(experiments::experiment_id.eq_any(&$scope.blocked))))
    };
}

/// The experiments in scope, as a subselect of their ids.
macro_rules! experiments_in_scope {
    ($scope:expr) => {
        experiments::table.select(experiments::experiment_id).filter(experiment_in_scope!($scope))
    };
}

/// The runs in scope, as a filter on `runs`.
macro_rules! runs_in_scope {
    ($scope:expr) => {
        runs::experiment_id
            .assume_not_null()
            .eq_any(experiments_in_scope!($scope))
            .or(runs::run_uuid.eq_any(&$scope.runs))
            .or($scope
                .all_deleted
                .into_sql::<Bool>()
                .and(runs::lifecycle_stage.eq(DELETED))
                .and(not(runs::experiment_id.assume_not_null().eq_any(deleted_experiments())))
                .and(
                    $scope
                        .runs_deleted_time()
                        .lt($scope.cutoff_ms)
                        .or($scope.runs_deleted_time().is_null()),
                ))
    };
}

/// The traces in scope: those of experiments in scope, and with `--traces-older-than` those
/// of any experiment started before the cutoff.
macro_rules! traces_in_scope {
    ($scope:expr) => {
        trace_info::experiment_id
            .eq_any(experiments_in_scope!($scope))
            .or(trace_info::timestamp_ms.lt($scope.traces_before_ms))
    };
}

/// The logged models in scope: those of experiments in scope, and when asked the soft-deleted
/// ones of live experiments.
macro_rules! logged_models_in_scope {
    ($scope:expr) => {
        logged_models::experiment_id.eq_any(experiments_in_scope!($scope)).or(($scope.all_deleted
            && $scope.retention.logged_models)
            .into_sql::<Bool>()
            .and(logged_models::lifecycle_stage.eq(DELETED))
            .and(logged_models::last_updated_timestamp_ms.lt($scope.cutoff_ms)))
    };
}

macro_rules! model_versions_in_scope {
    ($scope:expr) => {
        model_versions::current_stage
            .eq(DELETED_MODEL_VERSION)
            .and(model_versions::last_updated_time.lt($scope.cutoff_ms))
    };
}

macro_rules! webhooks_in_scope {
    ($scope:expr) => {
        webhooks::deleted_timestamp.lt($scope.cutoff_ms)
    };
}

macro_rules! jobs_in_scope {
    ($scope:expr) => {
        jobs::status.eq_any(FINISHED_JOB_STATUSES).and(jobs::last_update_time.lt($scope.cutoff_ms))
    };
}

impl Scope {
    /// Checks the request against the store: a named entity that is missing or live is an
    /// error, before anything is deleted.
    pub fn resolve(
        conn: &mut DbConnection,
        schema: &StoreSchema,
        request: &ScopeRequest,
    ) -> Result<(Scope, Vec<BlockedExperiment>)> {
        let blocked = blocked_experiments(conn, schema)?;
        if request.retention.model_versions && !schema.workspaces {
            return Err(Error::InvalidScope(format!(
                "--model-versions needs the schema of MLflow 3.10 or later (this store has MLflow \
                 {}'s): nothing was deleted",
                schema.mlflow_version
            )));
        }
        if !request.names_entities() {
            let scope = Scope {
                schema: schema.clone(),
                all_deleted: true,
                cutoff_ms: request.older_than.map_or(i64::MAX, ms_before_now),
                retention: request.retention.clone(),
                traces_before_ms: request
                    .retention
                    .traces_older_than
                    .map_or(i64::MIN, ms_before_now),
                blocked: blocked.iter().map(|b| b.experiment_id).collect(),
                experiments: Vec::new(),
                runs: Vec::new(),
            };
            return Ok((scope, blocked));
        }
        let mut problems = Vec::new();
        if request.retention.any() {
            problems.push(
                "the other kinds (logged models, model versions, webhooks, jobs, old traces) are \
                 purged store-wide: do not name experiments or runs with them"
                    .to_owned(),
            );
        }
        let mut experiment_ids = Vec::new();
        for id in &request.experiment_ids {
            match id.trim().parse::<i32>() {
                Ok(id) => experiment_ids.push(id),
                Err(_) => problems.push(format!("experiment id `{id}` is not a number")),
            }
        }
        let by_id: BTreeMap<i32, (String, Option<String>)> = experiments::table
            .select((experiments::experiment_id, experiments::name, experiments::lifecycle_stage))
            .filter(experiments::experiment_id.eq_any(&experiment_ids))
            .load::<(i32, String, Option<String>)>(conn)?
            .into_iter()
            .map(|(id, name, stage)| (id, (name, stage)))
            .collect();
        for id in &experiment_ids {
            match by_id.get(id) {
                None => problems.push(format!("experiment {id} does not exist")),
                Some((name, stage)) if stage.as_deref() != Some(DELETED) => problems.push(format!(
                    "experiment {id} (`{name}`) is not deleted: delete it in MLflow first"
                )),
                Some(_) => {}
            }
        }
        let named: Vec<(i32, String, Option<String>)> = experiments::table
            .select((experiments::experiment_id, experiments::name, experiments::lifecycle_stage))
            .filter(experiments::name.eq_any(&request.experiment_names))
            .load(conn)?;
        for name in &request.experiment_names {
            let deleted: Vec<i32> = named
                .iter()
                .filter(|(_, n, stage)| n == name && stage.as_deref() == Some(DELETED))
                .map(|(id, _, _)| *id)
                .collect();
            match deleted.as_slice() {
                [id] => experiment_ids.push(*id),
                [] if named.iter().any(|(_, n, _)| n == name) => problems
                    .push(format!("experiment `{name}` is not deleted: delete it in MLflow first")),
                [] => problems.push(format!("no experiment is named `{name}`")),
                several => problems.push(format!(
                    "several deleted experiments are named `{name}` (ids {several:?}): \
                     name one with --experiment-ids"
                )),
            }
        }
        for b in blocked.iter().filter(|b| experiment_ids.contains(&b.experiment_id)) {
            problems.push(format!("experiment {} cannot be purged: {}", b.experiment_id, b.reason));
        }
        let found_runs: BTreeMap<String, Option<String>> = runs::table
            .select((runs::run_uuid, runs::lifecycle_stage))
            .filter(runs::run_uuid.eq_any(&request.run_ids))
            .load::<(String, Option<String>)>(conn)?
            .into_iter()
            .collect();
        for id in &request.run_ids {
            match found_runs.get(id) {
                None => problems.push(format!("run {id} does not exist")),
                Some(stage) if stage.as_deref() != Some(DELETED) => {
                    problems.push(format!("run {id} is not deleted: delete it in MLflow first"))
                }
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidScope(format!(
                "{}; nothing was deleted",
                problems.join("; ")
            )));
        }
        experiment_ids.sort_unstable();
        experiment_ids.dedup();
        let mut runs: Vec<String> = request.run_ids.clone();
        runs.sort_unstable();
        runs.dedup();
        let scope = Scope {
            schema: schema.clone(),
            all_deleted: false,
            cutoff_ms: i64::MAX,
            retention: Retention::default(),
            traces_before_ms: i64::MIN,
            blocked: Vec::new(),
            experiments: experiment_ids,
            runs,
        };
        Ok((scope, Vec::new()))
    }

    /// The store's schema, as read when the scope was resolved.
    pub fn schema(&self) -> &StoreSchema {
        &self.schema
    }

    /// `runs.deleted_time`, or NULL on a store without that column (older than every known
    /// one): such runs count as deleted before any cutoff.
    fn runs_deleted_time(&self) -> SqlLiteral<Nullable<BigInt>> {
        sql(if self.schema.runs_deleted_time { "runs.deleted_time" } else { "NULL" })
    }

    /// The next batch of run ids after `after` ("" for the first), in key order.
    pub fn next_runs(
        &self,
        conn: &mut DbConnection,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        runs::table
            .select(runs::run_uuid)
            .filter(runs_in_scope!(self))
            .filter(runs::run_uuid.gt(after))
            .order(runs::run_uuid)
            .limit(limit)
            .load(conn)
    }

    pub fn next_traces(
        &self,
        conn: &mut DbConnection,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.schema.has_table("trace_info") {
            return Ok(Vec::new());
        }
        trace_info::table
            .select(trace_info::request_id)
            .filter(traces_in_scope!(self))
            .filter(trace_info::request_id.gt(after))
            .order(trace_info::request_id)
            .limit(limit)
            .load(conn)
    }

    pub fn next_logged_models(
        &self,
        conn: &mut DbConnection,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.schema.has_table("logged_models") {
            return Ok(Vec::new());
        }
        logged_models::table
            .select(logged_models::model_id)
            .filter(logged_models_in_scope!(self))
            .filter(logged_models::model_id.gt(after))
            .order(logged_models::model_id)
            .limit(limit)
            .load(conn)
    }

    /// The cutoffs the entity deletes re-check.
    pub fn cutoffs(&self) -> Cutoffs {
        Cutoffs { deleted_before_ms: self.cutoff_ms, traces_before_ms: self.traces_before_ms }
    }

    /// True when the kind is asked for and the store's MLflow version has its table.
    fn wants(&self, asked: bool, table: &str) -> bool {
        self.all_deleted && asked && self.schema.has_table(table)
    }

    /// The next batch of model versions after `after` (all empty for the first), in key order.
    pub fn next_model_versions(
        &self,
        conn: &mut DbConnection,
        after: &ModelVersionKey,
        limit: i64,
    ) -> QueryResult<Vec<ModelVersionKey>> {
        if !self.wants(self.retention.model_versions, "model_versions") {
            return Ok(Vec::new());
        }
        // Keyset paging over (workspace, name, version), spelled out: no row-value comparison
        // works on every backend.
        let keys: Vec<(String, String, i32)> = model_versions::table
            .select((model_versions::workspace, model_versions::name, model_versions::version))
            .filter(model_versions_in_scope!(self))
            .filter(
                model_versions::workspace.gt(after.workspace.clone()).or(model_versions::workspace
                    .eq(after.workspace.clone())
                    .and(
                        model_versions::name.gt(after.name.clone()).or(model_versions::name
                            .eq(after.name.clone())
                            .and(model_versions::version.gt(after.version))),
                    )),
            )
            .order((model_versions::workspace, model_versions::name, model_versions::version))
            .limit(limit)
            .load(conn)?;
        Ok(keys
            .into_iter()
            .map(|(workspace, name, version)| ModelVersionKey { workspace, name, version })
            .collect())
    }

    pub fn next_webhooks(
        &self,
        conn: &mut DbConnection,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.wants(self.retention.webhooks, "webhooks") {
            return Ok(Vec::new());
        }
        webhooks::table
            .select(webhooks::webhook_id)
            .filter(webhooks_in_scope!(self))
            .filter(webhooks::webhook_id.gt(after))
            .order(webhooks::webhook_id)
            .limit(limit)
            .load(conn)
    }

    pub fn next_jobs(
        &self,
        conn: &mut DbConnection,
        after: &str,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        if !self.wants(self.retention.finished_jobs, "jobs") {
            return Ok(Vec::new());
        }
        jobs::table
            .select(jobs::id)
            .filter(jobs_in_scope!(self))
            .filter(jobs::id.gt(after))
            .order(jobs::id)
            .limit(limit)
            .load(conn)
    }

    /// The next batch of experiment ids after `after` (`i32::MIN` for the first).
    pub fn next_experiments(
        &self,
        conn: &mut DbConnection,
        after: &i32,
        limit: i64,
    ) -> QueryResult<Vec<i32>> {
        experiments_in_scope!(self)
            .filter(experiments::experiment_id.gt(*after))
            .order(experiments::experiment_id)
            .limit(limit)
            .load(conn)
    }

    /// The experiments among `ids` that this scope purges.
    pub fn experiments_in_scope_among(
        &self,
        conn: &mut DbConnection,
        ids: &[i32],
    ) -> QueryResult<std::collections::BTreeSet<i32>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let found: Vec<i32> = experiments_in_scope!(self)
            .filter(experiments::experiment_id.eq_any(ids))
            .load(conn)?;
        Ok(found.into_iter().collect())
    }

    /// Rows of the largest tables that a purge of this scope would delete, counted through
    /// their indexes.
    pub fn rows_in_scope(&self, conn: &mut DbConnection) -> QueryResult<Vec<(&'static str, i64)>> {
        use crate::schema::{latest_metrics, metrics, params, spans, tags};
        macro_rules! of_runs {
            ($table:ident) => {
                $table::table
                    .filter(
                        $table::run_uuid.eq_any(
                            runs::table.select(runs::run_uuid).filter(runs_in_scope!(self)),
                        ),
                    )
                    .count()
                    .get_result(conn)?
            };
        }
        let counts = self.count(conn)?;
        Ok(vec![
            ("experiments", counts[&Entity::Experiment]),
            ("runs", counts[&Entity::Run]),
            ("metrics", of_runs!(metrics)),
            ("latest_metrics", of_runs!(latest_metrics)),
            ("params", of_runs!(params)),
            ("tags", of_runs!(tags)),
            ("trace_info", counts[&Entity::Trace]),
            (
                "spans",
                if self.schema.has_table("spans") {
                    spans::table
                        .filter(spans::experiment_id.eq_any(experiments_in_scope!(self)))
                        .count()
                        .get_result(conn)?
                } else {
                    0
                },
            ),
            ("logged_models", counts[&Entity::LoggedModel]),
        ])
    }

    /// How many entities of each kind are in scope.
    pub fn count(&self, conn: &mut DbConnection) -> QueryResult<BTreeMap<Entity, i64>> {
        Ok(BTreeMap::from([
            (Entity::Run, runs::table.filter(runs_in_scope!(self)).count().get_result(conn)?),
            (
                Entity::Trace,
                if self.schema.has_table("trace_info") {
                    trace_info::table.filter(traces_in_scope!(self)).count().get_result(conn)?
                } else {
                    0
                },
            ),
            (
                Entity::LoggedModel,
                if self.schema.has_table("logged_models") {
                    logged_models::table
                        .filter(logged_models_in_scope!(self))
                        .count()
                        .get_result(conn)?
                } else {
                    0
                },
            ),
            (
                Entity::Experiment,
                experiments::table.filter(experiment_in_scope!(self)).count().get_result(conn)?,
            ),
            (
                Entity::ModelVersion,
                if self.wants(self.retention.model_versions, "model_versions") {
                    model_versions::table
                        .filter(model_versions_in_scope!(self))
                        .count()
                        .get_result(conn)?
                } else {
                    0
                },
            ),
            (
                Entity::Webhook,
                if self.wants(self.retention.webhooks, "webhooks") {
                    webhooks::table.filter(webhooks_in_scope!(self)).count().get_result(conn)?
                } else {
                    0
                },
            ),
            (
                Entity::Job,
                if self.wants(self.retention.finished_jobs, "jobs") {
                    jobs::table.filter(jobs_in_scope!(self)).count().get_result(conn)?
                } else {
                    0
                },
            ),
        ]))
    }
}

/// Deleted experiments that a live row keeps from being purged.
fn blocked_experiments(
    conn: &mut DbConnection,
    schema: &StoreSchema,
) -> Result<Vec<BlockedExperiment>> {
    let mut blocked = Vec::new();
    for blocker in BLOCKERS.iter().filter(|b| schema.has_tables(b.tables)) {
        for experiment_id in (blocker.deleted_experiments)(conn)? {
            blocked.push(BlockedExperiment { experiment_id, reason: blocker.why });
        }
    }
    Ok(blocked)
}

/// Something done to each phase of the plan, over its batches in a scope.
pub(crate) trait PhaseVisitor {
    /// One phase, whose batches `next_batch` pages through in key order from `first`.
    fn phase<Id: Clone + Display + Ord>(
        &mut self,
        phase: &Phase<Id>,
        first: Id,
        next_batch: impl Fn(&mut DbConnection, &Id, i64) -> QueryResult<Vec<Id>>,
    ) -> Result<()>;
}

/// Visits the plan's phases in order, each with the pager of its entities in `scope`.
pub(crate) fn visit_phases(scope: &Scope, visitor: &mut impl PhaseVisitor) -> Result<()> {
    macro_rules! visit {
        ($phase:path, $first:expr, $pager:ident) => {
            visitor.phase(&$phase, $first, |c, after, n| scope.$pager(c, after, n))?;
        };
    }
    phases_in_order!(visit);
    Ok(())
}
