//! The delete plan: for each kind of entity, in order, the rows that belong to a batch of
//! entities, children before parents. The purge runs the phases top to bottom; a batch runs its
//! steps top to bottom in one transaction, the entity rows last.
//!
//! Check it against the foreign keys (`tests/` introspects a fresh store and fails when a
//! referencing table is missing here or comes after its parent). Rows that no foreign key ties
//! are here too: `inputs`/`input_tags`, `entity_associations`, the rollup tables.
//!
//! Rows that only *name* a purged entity but belong to a live one are kept: a live logged model's
//! `source_run_id`, a model version's `run_id`, `mlflow.sourceRun` trace metadata, an issue's
//! `source_run_id` (the database sets it to NULL), an endpoint's `experiment_id` (likewise).

use diesel::dsl::not;
use diesel::prelude::*;

use crate::schema::*;
use crate::store::DbConnection;

/// The kinds of entity a purge deletes, in the order their phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Run,
    Trace,
    LoggedModel,
    Experiment,
    ModelVersion,
    Webhook,
    Job,
}

impl Entity {
    pub fn name(self) -> &'static str {
        match self {
            Entity::Run => "run",
            Entity::Trace => "trace",
            Entity::LoggedModel => "logged model",
            Entity::Experiment => "experiment",
            Entity::ModelVersion => "model version",
            Entity::Webhook => "webhook",
            Entity::Job => "job",
        }
    }
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

/// A model version's key: MLflow keeps versions per registered model and workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelVersionKey {
    pub workspace: String,
    pub name: String,
    pub version: i32,
}

impl std::fmt::Display for ModelVersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.workspace, self.name, self.version)
    }
}

/// One typed delete: the rows of `table` that belong to a batch of entity ids.
pub struct Step<Id: 'static> {
    pub table: &'static str,
    /// Every table the delete reads or writes: a store of an older MLflow that lacks one has
    /// none of these rows, and the step is skipped.
    pub tables: &'static [&'static str],
    /// Which rows, in words, for the plan listing.
    pub rows: &'static str,
    pub delete: fn(&mut DbConnection, &[Id], &Cutoffs) -> QueryResult<usize>,
    /// The step's rows whose owner is gone, where the plan can tell.
    pub orphans: Option<Orphans>,
}

/// Rows whose owner is gone: left by a store that ran without its foreign keys, or rows no
/// foreign key ties (what `mlflow gc` leaves). `doctor` reports them and `--fix` deletes them.
/// Each relation is declared once, on the step that deletes such rows with their owner.
#[derive(Debug)]
pub struct Orphans {
    /// The owner's table: where the store has (and enforces) a foreign key from the step's table
    /// to it, the database rules such rows out.
    pub owner: &'static str,
    /// Which rows, in words.
    pub what: &'static str,
    pub count: fn(&mut DbConnection) -> QueryResult<i64>,
    /// Deletes the orphans of a batch of up to `limit` of their keys, re-checking that they are
    /// still orphans; returns the rows of the step's table deleted.
    pub fix_batch: fn(&mut DbConnection, i64) -> QueryResult<usize>,
}

/// The steps of one kind of entity. `entity_rows` deletes the entities themselves and only
/// while they are still soft-deleted, so that a concurrent restore makes the batch roll back.
pub struct Phase<Id: 'static> {
    pub entity: Entity,
    pub children: &'static [Step<Id>],
    pub entity_rows: Step<Id>,
    /// Where the entities keep artifacts outside the database, if they do.
    pub artifacts: Option<ArtifactsOf<Id>>,
}

/// How a purge with `--artifacts` finds and holds a batch's artifact locations.
pub struct ArtifactsOf<Id: 'static> {
    /// Locks the batch's entity rows that may still be purged and counts them: their artifacts
    /// go before their rows, and no restore may come in between.
    pub lock: fn(&mut DbConnection, &[Id], &Cutoffs) -> QueryResult<usize>,
    /// Each entity's artifact location and its experiment's, as MLflow stored them.
    pub locate: LocateFn<Id>,
}

pub type LocateFn<Id> = fn(&mut DbConnection, &[Id]) -> QueryResult<Vec<Located<Id>>>;

/// An entity's artifact location, as MLflow stored it.
#[derive(Debug, Clone)]
pub struct Located<Id> {
    pub id: Id,
    /// `None` when the entity has no artifact location.
    pub uri: Option<String>,
    /// The entity's experiment and its artifact location; `None` for an experiment.
    pub experiment: Option<(i32, Option<String>)>,
}

/// `(id, location, experiment id, experiment's location)` rows as [`Located`].
fn in_experiments<Id>(rows: Vec<(Id, Option<String>, i32, Option<String>)>) -> Vec<Located<Id>> {
    rows.into_iter()
        .map(|(id, uri, experiment, at)| Located { id, uri, experiment: Some((experiment, at)) })
        .collect()
}

/// Where MLflow records a trace's artifact location.
pub const TRACE_ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";

impl<Id> Phase<Id> {
    pub fn steps(&self) -> impl Iterator<Item = &Step<Id>> {
        self.children.iter().chain(std::iter::once(&self.entity_rows))
    }
}

/// `step!(table.column -> parent.key: Type)`: the rows whose `column` names one of a batch's
/// entities (`parent` rows, whose `key` is a `Type`); add `where filter` for the rows of only one
/// kind, and a description when the column name alone would not say which rows. Their orphans
/// are the rows whose `column` names no `parent` row.
///
/// `step!(table via [other, ...], "rows", |ids| filter)`: `via` names the other tables the
/// filter reads (experiments, always there, aside). `|ids, cutoffs|` for a filter that
/// re-checks an age. `, orphans: ...` declares their orphans, as [`orphans!`] takes them.
macro_rules! step {
    (@rows $column:ident) => {
        stringify!($column)
    };
    (@rows $column:ident $rows:literal) => {
        $rows
    };
    (@orphans) => {
        None
    };
    (@orphans $($spec:tt)+) => {
        Some(orphans!($($spec)+))
    };
    (
        $table:ident . $column:ident -> $parent:ident . $key:ident : $type:ty
        $(where $only:expr)? $(, $rows:literal)?
    ) => {
        Step {
            table: stringify!($table),
            tables: &[stringify!($table)],
            rows: step!(@rows $column $($rows)?),
            delete: |conn, ids, _cutoffs| {
                diesel::delete($table::table.filter($($only.and)?($table::$column.eq_any(ids))))
                    .execute(conn)
            },
            orphans: Some(orphans!($table.$column -> $parent.$key: $type $(where $only)?)),
        }
    };
    (
        $table:ident $(via [$($other:ident),+])?, $rows:literal, |$ids:ident| $filter:expr
        $(, orphans: $($spec:tt)+)?
    ) => {
        step!(
            $table $(via [$($other),+])?, $rows, |$ids, _cutoffs| $filter
            $(, orphans: $($spec)+)?
        )
    };
    (
        $table:ident $(via [$($other:ident),+])?, $rows:literal,
        |$ids:ident, $cutoffs:ident| $filter:expr $(, orphans: $($spec:tt)+)?
    ) => {
        Step {
            table: stringify!($table),
            tables: &[stringify!($table) $($(, stringify!($other))+)?],
            rows: $rows,
            delete: |conn, $ids, $cutoffs| {
                diesel::delete($table::table.filter($filter)).execute(conn)
            },
            orphans: step!(@orphans $($($spec)+)?),
        }
    };
}

/// A step's [`Orphans`]:
/// - `table.column -> parent.key: Type` (`where filter`): the rows (of one kind) whose `column`
///   names no `parent` row;
/// - `PHASE: table.id: Type, column -> parent.key`: the phase's entities whose `column` names no
///   `parent` row, deleted as a purge deletes entities: the rows they hold first;
/// - `"what": table.key: Type, of owner where condition`: the rows `condition` finds, in batches
///   of their `key`.
macro_rules! orphans {
    (@missing $table:ident . $column:ident -> $parent:ident . $key:ident) => {
        diesel::dsl::not(
            $table::$column.nullable().eq_any($parent::table.select($parent::$key.nullable())),
        )
    };
    (@rows $table:ident, $owner:ident, $key:expr => $type:ty, $what:expr, $condition:expr) => {
        Orphans {
            owner: stringify!($owner),
            what: $what,
            count: |conn| $table::table.filter($condition).count().get_result(conn),
            fix_batch: |conn, limit| {
                let keys: Vec<$type> =
                    $table::table.select($key).filter($condition).limit(limit).load(conn)?;
                diesel::delete($table::table.filter($key.eq_any(&keys)).filter($condition))
                    .execute(conn)
            },
        }
    };
    (
        $table:ident . $column:ident -> $parent:ident . $key:ident : $type:ty
        $(where $only:expr)?
    ) => {
        orphans!(
            @rows $table,
            $parent,
            $table::$column.nullable() => Option<$type>,
            concat!(
                stringify!($table), " of ", stringify!($parent), " that are gone (",
                stringify!($column), ")"
            ),
            $($only.and)?(orphans!(@missing $table.$column -> $parent.$key))
        )
    };
    (
        $phase:ident : $table:ident . $id:ident : $type:ty,
        $column:ident -> $parent:ident . $key:ident
    ) => {
        Orphans {
            owner: stringify!($parent),
            what: concat!(
                stringify!($table), " of ", stringify!($parent), " that are gone (",
                stringify!($column), "), with what they hold"
            ),
            count: |conn| {
                $table::table
                    .filter(orphans!(@missing $table.$column -> $parent.$key))
                    .count()
                    .get_result(conn)
            },
            fix_batch: |conn, limit| {
                let ids: Vec<$type> = $table::table
                    .select($table::$id)
                    .filter(orphans!(@missing $table.$column -> $parent.$key))
                    .limit(limit)
                    .load(conn)?;
                for step in $phase.children {
                    (step.delete)(conn, &ids, &Cutoffs::NONE)?;
                }
                diesel::delete(
                    $table::table
                        .filter($table::$id.eq_any(&ids))
                        .filter(orphans!(@missing $table.$column -> $parent.$key)),
                )
                .execute(conn)
            },
        }
    };
    (
        $what:literal : $table:ident . $key:ident : $type:ty, of $owner:ident
        where $condition:expr
    ) => {
        orphans!(@rows $table, $owner, $table::$key => $type, $what, $condition)
    };
}

/// `lock!(conn, table, filter)`: selects the rows `filter` matches FOR UPDATE and counts them.
/// On SQLite the batch's transaction already holds the database's write lock.
macro_rules! lock {
    ($conn:expr, $table:ident, $filter:expr) => {{
        let one = || 1.into_sql::<diesel::sql_types::Integer>();
        let rows: Vec<i32> = match $conn {
            DbConnection::Postgresql(conn) => {
                $table::table.filter($filter).select(one()).for_update().load(conn)?
            }
            DbConnection::Mysql(conn) => {
                $table::table.filter($filter).select(one()).for_update().load(conn)?
            }
            DbConnection::Sqlite(conn) => $table::table.filter($filter).select(one()).load(conn)?,
        };
        Ok(rows.len())
    }};
}

pub(crate) const DELETED: &str = "deleted";

/// Experiments still soft-deleted: every entity delete re-checks it inside its transaction.
#[diesel::dsl::auto_type]
pub(crate) fn deleted_experiments() -> _ {
    let deleted: &'static str = DELETED;
    experiments::table
        .select(experiments::experiment_id)
        .filter(experiments::lifecycle_stage.eq(deleted))
}

fn as_text(ids: &[i32]) -> Vec<String> {
    ids.iter().map(i32::to_string).collect()
}

macro_rules! purgeable_runs {
    ($ids:expr) => {
        runs::run_uuid.eq_any($ids).and(
            runs::lifecycle_stage
                .eq(DELETED)
                .or(runs::experiment_id.assume_not_null().eq_any(deleted_experiments())),
        )
    };
}

pub static RUNS: Phase<String> = Phase {
    entity: Entity::Run,
    children: &[
        step!(input_tags via [inputs], "tags of the run's dataset inputs (no foreign key)", |ids| {
            input_tags::input_uuid.eq_any(
                inputs::table
                    .select(inputs::input_uuid)
                    .filter(inputs::destination_type.eq("RUN"))
                    .filter(inputs::destination_id.eq_any(ids)),
            )
        }, orphans: input_tags.input_uuid -> inputs.input_uuid: String),
        step!(
            inputs.destination_id -> runs.run_uuid: String where inputs::destination_type.eq("RUN"),
            "dataset inputs of the run (no foreign key)"
        ),
        step!(
            inputs.source_id -> runs.run_uuid: String
                where inputs::source_type.eq_any(["RUN_INPUT", "RUN_OUTPUT"]),
            "the run's links to logged models it used or produced"
        ),
        step!(entity_associations, "associations of the run (no foreign key)", |ids| {
            (entity_associations::source_type
                .eq("run")
                .and(entity_associations::source_id.eq_any(ids)))
            .or(entity_associations::destination_type
                .eq("run")
                .and(entity_associations::destination_id.eq_any(ids)))
        }, orphans: "associations of runs that are gone":
            entity_associations.association_id: String, of runs where {
            let run_ids = || runs::table.select(runs::run_uuid);
            (entity_associations::source_type
                .eq("run")
                .and(not(entity_associations::source_id.eq_any(run_ids()))))
            .or(entity_associations::destination_type
                .eq("run")
                .and(not(entity_associations::destination_id.eq_any(run_ids()))))
        }),
        step!(
            logged_model_metrics.run_id -> runs.run_uuid: String,
            "model metrics logged by the run"
        ),
        step!(latest_metrics.run_uuid -> runs.run_uuid: String),
        step!(metrics.run_uuid -> runs.run_uuid: String),
        step!(params.run_uuid -> runs.run_uuid: String),
        step!(tags.run_uuid -> runs.run_uuid: String),
    ],
    entity_rows: step!(runs, "the runs, while soft-deleted or in a deleted experiment", |ids| {
        purgeable_runs!(ids)
    }, orphans: RUNS: runs.run_uuid: String, experiment_id -> experiments.experiment_id),
    artifacts: Some(ArtifactsOf {
        lock: |conn, ids, _cutoffs| lock!(conn, runs, purgeable_runs!(ids)),
        locate: |conn, ids| {
            let rows = runs::table
                .inner_join(experiments::table)
                .filter(runs::run_uuid.eq_any(ids))
                .select((
                    runs::run_uuid,
                    runs::artifact_uri,
                    experiments::experiment_id,
                    experiments::artifact_location,
                ))
                .load(conn)?;
            Ok(in_experiments(rows))
        },
    }),
};

macro_rules! purgeable_traces {
    ($ids:expr, $cutoffs:expr) => {
        trace_info::request_id.eq_any($ids).and(
            trace_info::experiment_id
                .eq_any(deleted_experiments())
                .or(trace_info::timestamp_ms.lt($cutoffs.traces_before_ms)),
        )
    };
}

pub static TRACES: Phase<String> = Phase {
    entity: Entity::Trace,
    children: &[
        step!(span_metrics.trace_id -> trace_info.request_id: String),
        step!(spans.trace_id -> trace_info.request_id: String),
        step!(assessments.trace_id -> trace_info.request_id: String),
        step!(trace_metrics.request_id -> trace_info.request_id: String),
        step!(trace_tags.request_id -> trace_info.request_id: String),
        step!(trace_request_metadata.request_id -> trace_info.request_id: String),
        step!(
            review_queue_items.item_id -> trace_info.request_id: String
                where review_queue_items::item_type.eq("trace"),
            "review items of the trace (no foreign key)"
        ),
        step!(entity_associations, "associations of the trace (no foreign key)", |ids| {
            (entity_associations::source_type
                .eq("trace")
                .and(entity_associations::source_id.eq_any(ids)))
            .or(entity_associations::destination_type
                .eq("trace")
                .and(entity_associations::destination_id.eq_any(ids)))
        }, orphans: "associations of traces that are gone":
            entity_associations.association_id: String, of trace_info where {
            let trace_ids = || trace_info::table.select(trace_info::request_id);
            (entity_associations::source_type
                .eq("trace")
                .and(not(entity_associations::source_id.eq_any(trace_ids()))))
            .or(entity_associations::destination_type
                .eq("trace")
                .and(not(entity_associations::destination_id.eq_any(trace_ids()))))
        }),
    ],
    entity_rows: step!(
        trace_info,
        "the traces of deleted experiments, or older than --traces-older-than",
        |ids, cutoffs| purgeable_traces!(ids, cutoffs),
        orphans: TRACES: trace_info.request_id: String, experiment_id -> experiments.experiment_id
    ),
    artifacts: Some(ArtifactsOf {
        lock: |conn, ids, cutoffs| lock!(conn, trace_info, purgeable_traces!(ids, cutoffs)),
        locate: |conn, ids| {
            let rows = trace_info::table
                .inner_join(experiments::table)
                .left_join(
                    trace_tags::table.on(trace_tags::request_id
                        .eq(trace_info::request_id)
                        .and(trace_tags::key.eq(TRACE_ARTIFACT_LOCATION_TAG))),
                )
                .filter(trace_info::request_id.eq_any(ids))
                .select((
                    trace_info::request_id,
                    trace_tags::value.nullable(),
                    experiments::experiment_id,
                    experiments::artifact_location,
                ))
                .load(conn)?;
            Ok(in_experiments(rows))
        },
    }),
};

macro_rules! purgeable_logged_models {
    ($ids:expr) => {
        logged_models::model_id.eq_any($ids).and(
            logged_models::lifecycle_stage
                .eq(DELETED)
                .or(logged_models::experiment_id.eq_any(deleted_experiments())),
        )
    };
}

pub static LOGGED_MODELS: Phase<String> = Phase {
    entity: Entity::LoggedModel,
    children: &[
        step!(logged_model_metrics.model_id -> logged_models.model_id: String),
        step!(logged_model_params.model_id -> logged_models.model_id: String),
        step!(logged_model_tags.model_id -> logged_models.model_id: String),
        step!(
            inputs.destination_id -> logged_models.model_id: String
                where inputs::destination_type.eq_any(["MODEL_INPUT", "MODEL_OUTPUT"]),
            "runs' links to the model (no foreign key)"
        ),
        step!(entity_associations, "associations of the model (no foreign key)", |ids| {
            (entity_associations::source_type
                .eq("model")
                .and(entity_associations::source_id.eq_any(ids)))
            .or(entity_associations::destination_type
                .eq("model")
                .and(entity_associations::destination_id.eq_any(ids)))
        }, orphans: "associations of logged models that are gone":
            entity_associations.association_id: String, of logged_models where {
            let model_ids = || logged_models::table.select(logged_models::model_id);
            (entity_associations::source_type
                .eq("model")
                .and(not(entity_associations::source_id.eq_any(model_ids()))))
            .or(entity_associations::destination_type
                .eq("model")
                .and(not(entity_associations::destination_id.eq_any(model_ids()))))
        }),
    ],
    entity_rows: step!(
        logged_models,
        "the models, while soft-deleted or in a deleted experiment",
        |ids| purgeable_logged_models!(ids),
        orphans: LOGGED_MODELS: logged_models.model_id: String,
            experiment_id -> experiments.experiment_id
    ),
    artifacts: Some(ArtifactsOf {
        lock: |conn, ids, _cutoffs| lock!(conn, logged_models, purgeable_logged_models!(ids)),
        locate: |conn, ids| {
            let rows = logged_models::table
                .inner_join(experiments::table)
                .filter(logged_models::model_id.eq_any(ids))
                .select((
                    logged_models::model_id,
                    logged_models::artifact_location.nullable(),
                    experiments::experiment_id,
                    experiments::artifact_location,
                ))
                .load(conn)?;
            Ok(in_experiments(rows))
        },
    }),
};

macro_rules! purgeable_experiments {
    ($ids:expr) => {
        experiments::experiment_id.eq_any($ids).and(experiments::lifecycle_stage.eq(DELETED))
    };
}

pub static EXPERIMENTS: Phase<i32> = Phase {
    entity: Entity::Experiment,
    children: &[
        step!(input_tags via [inputs, datasets], "tags of inputs from the experiment's datasets", |ids| {
            input_tags::input_uuid.eq_any(
                inputs::table
                    .select(inputs::input_uuid)
                    .filter(inputs::source_type.eq("DATASET"))
                    .filter(
                        inputs::source_id.eq_any(
                            datasets::table
                                .select(datasets::dataset_uuid)
                                .filter(datasets::experiment_id.eq_any(ids)),
                        ),
                    ),
            )
        }),
        step!(inputs via [datasets], "inputs from the experiment's datasets (no foreign key)", |ids| {
            inputs::source_type.eq("DATASET").and(
                inputs::source_id.eq_any(
                    datasets::table
                        .select(datasets::dataset_uuid)
                        .filter(datasets::experiment_id.eq_any(ids)),
                ),
            )
        }, orphans: inputs.source_id -> datasets.dataset_uuid: String
            where inputs::source_type.eq("DATASET")),
        step!(datasets.experiment_id -> experiments.experiment_id: i32),
        step!(entity_associations, "associations of the experiment (no foreign key)", |ids| {
            (entity_associations::source_type
                .eq("experiment")
                .and(entity_associations::source_id.eq_any(as_text(ids))))
            .or(entity_associations::destination_type
                .eq("experiment")
                .and(entity_associations::destination_id.eq_any(as_text(ids))))
        }, orphans: "associations of experiments that are gone":
            entity_associations.association_id: String, of experiments where {
            // Experiment ids are integers; the association keeps them as text (CONCAT makes
            // text on every backend; CAST's type names differ).
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "(entity_associations.source_type = 'experiment' AND entity_associations.source_id \
                   NOT IN (SELECT CONCAT(experiment_id, '') FROM experiments)) \
                 OR (entity_associations.destination_type = 'experiment' AND \
                   entity_associations.destination_id \
                   NOT IN (SELECT CONCAT(experiment_id, '') FROM experiments))",
            )
        }),
        step!(experiment_tags.experiment_id -> experiments.experiment_id: i32),
        step!(online_scoring_configs.experiment_id -> experiments.experiment_id: i32),
        step!(scorer_versions via [scorers], "versions of the experiment's scorers", |ids| {
            scorer_versions::scorer_id.eq_any(
                scorers::table
                    .select(scorers::scorer_id)
                    .filter(scorers::experiment_id.eq_any(ids)),
            )
        }, orphans: scorer_versions.scorer_id -> scorers.scorer_id: String),
        step!(scorers.experiment_id -> experiments.experiment_id: i32),
        step!(review_queue_items via [review_queues], "items of the experiment's review queues", |ids| {
            review_queue_items::queue_id.eq_any(
                review_queues::table
                    .select(review_queues::queue_id)
                    .filter(review_queues::experiment_id.eq_any(ids)),
            )
        }, orphans: review_queue_items.queue_id -> review_queues.queue_id: String),
        step!(review_queue_users via [review_queues], "users of the experiment's review queues", |ids| {
            review_queue_users::queue_id.eq_any(
                review_queues::table
                    .select(review_queues::queue_id)
                    .filter(review_queues::experiment_id.eq_any(ids)),
            )
        }, orphans: review_queue_users.queue_id -> review_queues.queue_id: String),
        step!(
            review_queue_label_schemas via [review_queues],
            "label schemas of the experiment's review queues",
            |ids| {
                review_queue_label_schemas::queue_id.eq_any(
                    review_queues::table
                        .select(review_queues::queue_id)
                        .filter(review_queues::experiment_id.eq_any(ids)),
                )
            },
            orphans: review_queue_label_schemas.queue_id -> review_queues.queue_id: String
        ),
        step!(review_queues.experiment_id -> experiments.experiment_id: i32),
        step!(label_schemas.experiment_id -> experiments.experiment_id: i32),
        step!(issue_categories via [issues], "categories of the experiment's issues", |ids| {
            issue_categories::issue_id.eq_any(
                issues::table.select(issues::issue_id).filter(issues::experiment_id.eq_any(ids)),
            )
        }, orphans: issue_categories.issue_id -> issues.issue_id: String),
        step!(issues.experiment_id -> experiments.experiment_id: i32),
        step!(
            sql_trace_metric_daily_rollups.experiment_id -> experiments.experiment_id: i32,
            "experiment_id (no foreign key)"
        ),
        step!(
            sql_span_cost_daily_rollups.experiment_id -> experiments.experiment_id: i32,
            "experiment_id (no foreign key)"
        ),
        step!(
            sql_assessment_daily_rollups.experiment_id -> experiments.experiment_id: i32,
            "experiment_id (no foreign key)"
        ),
        step!(
            sql_trace_rollup_rebuild_queue.experiment_id -> experiments.experiment_id: i32,
            "experiment_id (no foreign key)"
        ),
    ],
    entity_rows: step!(experiments, "the experiments, while soft-deleted", |ids| {
        purgeable_experiments!(ids)
    }),
    artifacts: Some(ArtifactsOf {
        lock: |conn, ids, _cutoffs| lock!(conn, experiments, purgeable_experiments!(ids)),
        locate: |conn, ids| {
            let rows: Vec<(i32, Option<String>)> = experiments::table
                .filter(experiments::experiment_id.eq_any(ids))
                .select((experiments::experiment_id, experiments::artifact_location))
                .load(conn)?;
            Ok(rows.into_iter().map(|(id, uri)| Located { id, uri, experiment: None }).collect())
        },
    }),
};

/// A batch of model versions is a key range (first to last id, as the keyset page gave them):
/// no backend-neutral `IN` takes a three-column key. Within it, only versions still
/// `Deleted_Internal` from before the cutoff, so exactly the batch.
macro_rules! model_version_key_in {
    ($table:ident, $ids:expr) => {{
        let (first, last) = (&$ids[0], &$ids[$ids.len() - 1]);
        let after_first =
            $table::workspace.gt(first.workspace.clone()).or($table::workspace
                .eq(first.workspace.clone())
                .and($table::name.gt(first.name.clone()).or(
                    $table::name.eq(first.name.clone()).and($table::version.ge(first.version)),
                )));
        let before_last = $table::workspace.lt(last.workspace.clone()).or($table::workspace
            .eq(last.workspace.clone())
            .and(
                $table::name
                    .lt(last.name.clone())
                    .or($table::name.eq(last.name.clone()).and($table::version.le(last.version))),
            ));
        after_first.and(before_last)
    }};
}

/// What MLflow calls a deleted model version: its row is kept, redacted, with this stage.
pub(crate) const DELETED_MODEL_VERSION: &str = "Deleted_Internal";

pub static MODEL_VERSIONS: Phase<ModelVersionKey> = Phase {
    entity: Entity::ModelVersion,
    children: &[step!(
        model_version_tags via [model_versions],
        "tags of the versions",
        |ids, cutoffs| {
            model_version_key_in!(model_version_tags, ids).and(
                // The tag's own version must be a deleted one (three-column correlation).
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "EXISTS (SELECT 1 FROM model_versions v \
                     WHERE v.workspace = model_version_tags.workspace \
                       AND v.name = model_version_tags.name \
                       AND v.version = model_version_tags.version \
                       AND v.current_stage = ",
                )
                .bind::<diesel::sql_types::Text, _>(DELETED_MODEL_VERSION)
                .sql(" AND v.last_updated_time < ")
                .bind::<diesel::sql_types::BigInt, _>(cutoffs.deleted_before_ms)
                .sql(")"),
            )
        }
    )],
    entity_rows: step!(
        model_versions,
        "the versions MLflow marked Deleted_Internal",
        |ids, cutoffs| {
            model_version_key_in!(model_versions, ids)
                .and(model_versions::current_stage.eq(DELETED_MODEL_VERSION))
                .and(model_versions::last_updated_time.lt(cutoffs.deleted_before_ms))
        }
    ),
    artifacts: None,
};

pub static WEBHOOKS: Phase<String> = Phase {
    entity: Entity::Webhook,
    children: &[step!(webhook_events.webhook_id -> webhooks.webhook_id: String)],
    entity_rows: step!(webhooks, "the webhooks, while soft-deleted", |ids, cutoffs| {
        webhooks::webhook_id
            .eq_any(ids)
            .and(webhooks::deleted_timestamp.lt(cutoffs.deleted_before_ms))
    }),
    artifacts: None,
};

/// MLflow's job statuses that are final: succeeded, failed, timed out, canceled.
pub(crate) const FINISHED_JOB_STATUSES: [i32; 4] = [2, 3, 4, 5];

pub static JOBS: Phase<String> = Phase {
    entity: Entity::Job,
    children: &[step!(job_locks.job_id -> jobs.id: String)],
    entity_rows: step!(jobs, "the jobs, while finished", |ids, cutoffs| {
        jobs::id
            .eq_any(ids)
            .and(jobs::status.eq_any(FINISHED_JOB_STATUSES))
            .and(jobs::last_update_time.lt(cutoffs.deleted_before_ms))
    }),
    artifacts: None,
};

/// A live row that references an entity's rows without letting the database clear it: the
/// entity cannot be purged while it exists (deleting it would delete a live entity).
pub struct Blocker {
    pub table: &'static str,
    /// The tables it reads: without them a store has no such blocker.
    pub tables: &'static [&'static str],
    pub why: &'static str,
    /// The soft-deleted experiments it blocks.
    pub deleted_experiments: fn(&mut DbConnection) -> QueryResult<Vec<i32>>,
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

/// One step of the plan, as a reader, a report or `doctor` sees it.
#[derive(Debug, Clone, Copy)]
pub struct PlannedStep {
    pub entity: Entity,
    pub table: &'static str,
    pub tables: &'static [&'static str],
    pub rows: &'static str,
    pub orphans: Option<&'static Orphans>,
}

/// The plan's phases in the order they run, each with the first key of its pager and the
/// [`Scope`](crate::scope::Scope) method that pages through its entities, in key order, from
/// there. The one place the order is written: [`steps_in_order`] (the coverage check, the
/// report) and the scope's visitor (the purge, the artifact measure) both expand it.
macro_rules! phases_in_order {
    ($each:ident) => {
        $each!($crate::plan::RUNS, String::new(), next_runs);
        $each!($crate::plan::TRACES, String::new(), next_traces);
        $each!($crate::plan::LOGGED_MODELS, String::new(), next_logged_models);
        $each!($crate::plan::EXPERIMENTS, i32::MIN, next_experiments);
        $each!(
            $crate::plan::MODEL_VERSIONS,
            $crate::plan::ModelVersionKey {
                workspace: String::new(),
                name: String::new(),
                version: i32::MIN,
            },
            next_model_versions
        );
        $each!($crate::plan::WEBHOOKS, String::new(), next_webhooks);
        $each!($crate::plan::JOBS, String::new(), next_jobs);
    };
}
pub(crate) use phases_in_order;

/// Every step of the plan, in execution order.
pub fn steps_in_order() -> Vec<PlannedStep> {
    fn of<Id>(phase: &'static Phase<Id>) -> impl Iterator<Item = PlannedStep> {
        phase.steps().map(|step| PlannedStep {
            entity: phase.entity,
            table: step.table,
            tables: step.tables,
            rows: step.rows,
            orphans: step.orphans.as_ref(),
        })
    }
    let mut steps = Vec::new();
    macro_rules! steps_of {
        ($phase:path, $first:expr, $pager:ident) => {
            steps.extend(of(&$phase));
        };
    }
    phases_in_order!(steps_of);
    steps
}
