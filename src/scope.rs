//! What a purge deletes: the user's request (named experiments and runs, or every soft-deleted
//! entity, with age limits and the other kinds), resolved and checked against the store before
//! anything is deleted. The plan's phases then page through what the scope takes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::error::{Error, Result};
use crate::mlflow::{deleted_experiments, ExperimentId, RunId, DELETED};
use crate::schema::{experiments, guardrails, runs, scorers};
use crate::store::revision::StoreSchema;
use crate::store::DbConnection;

/// Entities per batch (per transaction, in a purge) unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// What the user asked to purge.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScopeRequest {
    /// Only entities deleted longer ago than this; `None` for all.
    #[serde(serialize_with = "as_seconds")]
    pub older_than: Option<Duration>,
    pub experiment_ids: Vec<String>,
    pub experiment_names: Vec<String>,
    pub run_ids: Vec<String>,
    /// Kinds beyond deleted experiments and runs, for a whole-store purge.
    pub retention: Retention,
}

/// The other kinds of data MLflow lets grow, each purged only when asked (whole-store purges).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
    #[serde(serialize_with = "as_seconds")]
    pub traces_older_than: Option<Duration>,
}

/// An age as whole seconds, for the archive's record of a purge.
fn as_seconds<S: serde::Serializer>(age: &Option<Duration>, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_some(&age.map(|age| age.as_secs()))
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
///
/// The plan's phases read it (their filters live with them in [`crate::plan`]), hence the
/// crate-visible fields.
#[derive(Debug, Clone)]
pub struct Scope {
    pub(crate) schema: StoreSchema,
    pub(crate) all_deleted: bool,
    /// Epoch milliseconds; `i64::MAX` without `--older-than`.
    pub(crate) cutoff_ms: i64,
    pub(crate) retention: Retention,
    /// Traces of live experiments started before this; `i64::MIN` for none.
    pub(crate) traces_before_ms: i64,
    pub(crate) blocked: Vec<ExperimentId>,
    /// Named experiments, with all they hold, all checked soft-deleted.
    pub(crate) experiments: Vec<ExperimentId>,
    /// Named runs, all checked soft-deleted.
    pub(crate) runs: Vec<RunId>,
}

/// What the entity deletes re-check beyond the batch's ids, so that what they delete still
/// qualifies when they run. Epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Deleted (or finished) before this: `i64::MAX` without `--older-than`.
    pub deleted_before_ms: i64,
    /// Traces of live experiments that started before this; `i64::MIN` (none) unless asked.
    pub traces_before_ms: i64,
}

impl Cutoffs {
    /// No age limit: the rows of any age.
    pub const NONE: Cutoffs = Cutoffs { deleted_before_ms: i64::MAX, traces_before_ms: i64::MIN };
}

/// Experiments kept out of the default scope, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlockedExperiment {
    pub experiment_id: i32,
    pub reason: &'static str,
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
                blocked: blocked.iter().map(|b| ExperimentId(b.experiment_id)).collect(),
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
        let mut runs: Vec<RunId> = request.run_ids.iter().cloned().map(RunId).collect();
        runs.sort_unstable();
        runs.dedup();
        let scope = Scope {
            schema: schema.clone(),
            all_deleted: false,
            cutoff_ms: i64::MAX,
            retention: Retention::default(),
            traces_before_ms: i64::MIN,
            blocked: Vec::new(),
            experiments: experiment_ids.into_iter().map(ExperimentId).collect(),
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
    pub(crate) fn runs_deleted_time(&self) -> SqlLiteral<Nullable<BigInt>> {
        sql(if self.schema.runs_deleted_time { "runs.deleted_time" } else { "NULL" })
    }

    /// The cutoffs the entity deletes re-check.
    pub fn cutoffs(&self) -> Cutoffs {
        Cutoffs { deleted_before_ms: self.cutoff_ms, traces_before_ms: self.traces_before_ms }
    }

    /// True when a kind purged only when asked is asked for: store-wide purges only.
    pub(crate) fn wants(&self, asked: bool) -> bool {
        self.all_deleted && asked
    }
}

/// Deleted experiments that a live row keeps from being purged.
fn blocked_experiments(
    conn: &mut DbConnection,
    schema: &StoreSchema,
) -> Result<Vec<BlockedExperiment>> {
    let mut blocked = Vec::new();
    for blocker in BLOCKERS.iter().filter(|b| schema.has_tables(b.tables)) {
        for ExperimentId(experiment_id) in (blocker.deleted_experiments)(conn)? {
            blocked.push(BlockedExperiment { experiment_id, reason: blocker.why });
        }
    }
    Ok(blocked)
}

/// A live row that references an entity's rows without letting the database clear it: the
/// entity cannot be purged while it exists (deleting it would delete a live entity).
pub struct Blocker {
    pub table: &'static str,
    /// The tables it reads: without them a store has no such blocker.
    pub tables: &'static [&'static str],
    pub why: &'static str,
    /// The soft-deleted experiments it blocks.
    pub deleted_experiments: fn(&mut DbConnection) -> QueryResult<Vec<ExperimentId>>,
}

pub static BLOCKERS: &[Blocker] = &[Blocker {
    table: "guardrails",
    tables: &["guardrails", "scorers"],
    why: "a gateway guardrail uses one of its scorers; delete the guardrail first",
    deleted_experiments: |conn| {
        scorers::table
            .select(scorers::experiment_id)
            .distinct()
            .filter(scorers::scorer_id.eq_any(guardrails::table.select(guardrails::scorer_id)))
            .filter(scorers::experiment_id.eq_any(deleted_experiments()))
            .load(conn)
    },
}];
