//! The delete plan, whole: for each kind of entity, in the order `visit_phases` gives, which
//! entities a scope takes (paged, counted), the rows that belong to a batch of them (children
//! before parents), and where they keep artifacts. The purge runs the phases in that order; a
//! batch runs its steps top to bottom in one transaction, the entity rows last.
//!
//! Check it against the foreign keys (`tests/` introspects a fresh store and fails when a
//! referencing table is missing here or comes after its parent). Rows that no foreign key ties
//! are here too: `inputs`/`input_tags`, `entity_associations`, the rollup tables.
//!
//! Rows that only *name* a purged entity but belong to a live one are kept: a live logged model's
//! `source_run_id`, a model version's `run_id`, `mlflow.sourceRun` trace metadata, an issue's
//! `source_run_id` (the database sets it to NULL), an endpoint's `experiment_id` (likewise).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use diesel::dsl::not;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::mlflow::*;
use crate::schema::*;
use crate::scope::{Cutoffs, Scope};
use crate::store::revision::StoreSchema;
use crate::store::rows::{
    columns_of, delete_archived, Archived, ColumnDef, DeleteJoined, TableColumns, Value,
};
use crate::store::DbConnection;

/// Entities per batch (per transaction, in a purge) unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// The kinds of entity a purge deletes, in the order their phases run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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

/// One typed delete: the rows of `table` that belong to a batch of entity ids.
pub struct Step<Id: 'static> {
    pub table: &'static str,
    /// Every table the delete reads or writes: a store of an older MLflow that lacks one has
    /// none of these rows, and the step is skipped.
    pub tables: &'static [&'static str],
    /// Which rows, in words, for the plan listing.
    pub rows: &'static str,
    pub delete: fn(&mut DbConnection, &[Id], &Cutoffs) -> QueryResult<usize>,
    /// The rows `delete` would delete, read without writing: from the same filter.
    pub count: Count<Id>,
    /// The step's rows whose owner is gone, where the plan can tell.
    pub orphans: Option<Orphans>,
    /// The table's columns, as the schema mirror declares them.
    pub columns: fn() -> Vec<ColumnDef>,
    /// Deletes what `delete` deletes and hands each row, every column the store has, to the
    /// archive as it goes (see [`delete_archived`]).
    pub archive: ArchiveFn<Id>,
    /// Which of the batch's entities each row belongs to.
    pub owner: Owner,
}

impl<Id> Step<Id> {
    /// Whether the step's filter reads other tables than its own (`via`), through subqueries:
    /// its delete is a [`DeleteJoined`].
    pub fn reads_other_tables(&self) -> bool {
        self.tables.len() > 1
    }
}

/// Deletes a step's rows, handing each to a sink, with the columns given; returns how many rows
/// were archived and how many deleted.
pub type ArchiveFn<Id> = fn(
    &mut DbConnection,
    &[Id],
    &Cutoffs,
    &TableColumns,
    &mut dyn FnMut(Vec<Value>) -> crate::Result<()>,
) -> crate::Result<Archived>;

/// Which entity of a batch a row of a step belongs to: a restore of some of the entities
/// takes their rows by it. The archive keeps it with each file (`Owner<String>` there).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner<S = &'static str> {
    /// The row's column holds the entity's key.
    Column(S),
    /// The row's `column` holds the `key` of a row of `table` in the same batch, and belongs
    /// to that row's entity.
    Via { column: S, table: S, key: S },
    /// An association of entities of this type: its source's when of the type, else its
    /// destination's.
    Association(S),
    /// A model version's key: workspace, name and version, as `workspace/name/version`.
    ModelVersion,
}

impl Owner {
    pub const fn via(column: &'static str, table: &'static str, key: &'static str) -> Self {
        Owner::Via { column, table, key }
    }

    pub fn to_owned(&self) -> Owner<String> {
        match *self {
            Owner::Column(column) => Owner::Column(column.to_owned()),
            Owner::Via { column, table, key } => Owner::Via {
                column: column.to_owned(),
                table: table.to_owned(),
                key: key.to_owned(),
            },
            Owner::Association(kind) => Owner::Association(kind.to_owned()),
            Owner::ModelVersion => Owner::ModelVersion,
        }
    }
}

/// How a dry run counts a step's rows.
pub enum Count<Id: 'static> {
    /// The rows of a table that one step alone deletes, each in one batch: counted.
    Rows(fn(&mut DbConnection, &[Id], &Cutoffs) -> QueryResult<i64>),
    /// The rows of a table where one row can tie two entities (an association, a link, an
    /// input): two steps, or one step in two batches, can match it, and the purge deletes it
    /// at the first. Their keys, hashed, so that the dry run counts each row once, there.
    Keys(fn(&mut DbConnection, &[Id], &Cutoffs) -> QueryResult<Vec<RowKey>>),
}

/// A row's primary key, hashed to 128 bits: a dry run holds one per shared row it counted.
pub type RowKey = u128;

fn row_key(key: &impl std::hash::Hash) -> RowKey {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    // Two fixed-key SipHashes of the key, each with its own prefix.
    let half = |prefix: u8| BuildHasherDefault::<DefaultHasher>::default().hash_one((prefix, key));
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// `count!(table, |conn, ids, cutoffs| filter)`: how a dry run counts the rows `filter`
/// matches. The tables whose rows can tie two entities are named here, with the Rust type of
/// their primary key; a test checks that every table two steps delete from is among them.
macro_rules! count {
    (@keys $table:ident: $key:ty, |$conn:ident, $ids:ident, $cutoffs:ident| $filter:expr) => {
        Count::Keys(|$conn, $ids, $cutoffs| {
            let keys: Vec<$key> =
                $table::table.filter($filter).select($table::table.primary_key()).load($conn)?;
            Ok(keys.iter().map(row_key).collect())
        })
    };
    (inputs, $($closure:tt)+) => {
        count!(@keys inputs: (String, String, String, String), $($closure)+)
    };
    (input_tags, $($closure:tt)+) => {
        count!(@keys input_tags: (String, String), $($closure)+)
    };
    (entity_associations, $($closure:tt)+) => {
        count!(@keys entity_associations: (String, String, String, String), $($closure)+)
    };
    (logged_model_metrics, $($closure:tt)+) => {
        count!(@keys logged_model_metrics: (String, String, i64, i64, String), $($closure)+)
    };
    (review_queue_items, $($closure:tt)+) => {
        count!(@keys review_queue_items: (String, String), $($closure)+)
    };
    ($table:ident, |$conn:ident, $ids:ident, $cutoffs:ident| $filter:expr) => {
        Count::Rows(|$conn, $ids, $cutoffs| $table::table.filter($filter).count().get_result($conn))
    };
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
    /// Which of them a scope takes, page by page.
    pub entities: InScope<Id>,
    pub children: &'static [Step<Id>],
    pub entity_rows: Step<Id>,
    /// Where the entities keep artifacts outside the database, if they do.
    pub artifacts: Option<ArtifactsOf<Id>>,
    /// The entity row's column that names its experiment, for kinds that live in one: a
    /// restore puts the experiment back first.
    pub experiment_column: Option<&'static str>,
    /// Columns of the entity row, besides its key, that no two entities share (an experiment's
    /// name in its workspace); those the store lacks do not count.
    pub unique: &'static [&'static [&'static str]],
}

/// The entities of one kind that a scope takes, read in keyset-paged batches so memory stays
/// flat. [`Phase::next_batch`] and [`Phase::count_in`] page and count them.
pub struct InScope<Id: 'static> {
    /// The key before the first: the first page starts after it.
    pub start: Id,
    /// Whether the scope asks for this kind at all (the store must also have its table).
    pub taken: fn(&Scope) -> bool,
    /// The next `limit` ids after `after`, in key order.
    pub page: fn(&Scope, &mut DbConnection, &Id, i64) -> QueryResult<Vec<Id>>,
    /// How many there are.
    pub total: fn(&Scope, &mut DbConnection) -> QueryResult<i64>,
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
    /// The entity's experiment: for an experiment, itself.
    pub experiment: ExperimentId,
    pub container: Container,
}

/// What must hold an entity's artifact location.
#[derive(Debug, Clone)]
pub enum Container {
    /// Nothing: an experiment's location is the root of its tree.
    Root,
    /// Its experiment's artifact location, as MLflow stored it.
    Experiment(Option<String>),
}

/// `(id, location, experiment id, experiment's location)` rows as [`Located`].
fn in_experiments<Id>(
    rows: Vec<(Id, Option<String>, ExperimentId, Option<String>)>,
) -> Vec<Located<Id>> {
    rows.into_iter()
        .map(|(id, uri, experiment, at)| Located {
            id,
            uri,
            experiment,
            container: Container::Experiment(at),
        })
        .collect()
}

impl<Id> Phase<Id> {
    pub fn steps(&self) -> impl Iterator<Item = &Step<Id>> {
        self.children.iter().chain(std::iter::once(&self.entity_rows))
    }

    /// Whether `step`, one of [`Phase::steps`], deletes the entities themselves.
    pub fn is_entity_rows(&self, step: &Step<Id>) -> bool {
        std::ptr::eq(step, &self.entity_rows)
    }

    /// Whether `scope` takes any of these entities: asked for, and the store's MLflow version
    /// has their table.
    fn taken(&self, scope: &Scope) -> bool {
        scope.schema.has_table(self.entity_rows.table) && (self.entities.taken)(scope)
    }

    /// The next `limit` entities in `scope` after `after`, in key order.
    pub fn next_batch(
        &self,
        scope: &Scope,
        conn: &mut DbConnection,
        after: &Id,
        limit: i64,
    ) -> QueryResult<Vec<Id>> {
        if !self.taken(scope) {
            return Ok(Vec::new());
        }
        (self.entities.page)(scope, conn, after, limit)
    }

    /// Hands `visit` every entity `scope` takes, a page of at most `limit` at a time, in key
    /// order: for passes that only read (a purge's batches interleave with its transactions).
    pub fn for_each_page<E: From<diesel::result::Error>>(
        &self,
        scope: &Scope,
        conn: &mut DbConnection,
        limit: i64,
        mut visit: impl FnMut(&mut DbConnection, &[Id]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        Id: Clone,
    {
        let mut after = self.entities.start.clone();
        loop {
            let page = self.next_batch(scope, conn, &after, limit)?;
            if !page.is_empty() {
                visit(conn, &page)?;
            }
            match page.last() {
                Some(last) if page.len() as i64 == limit => after = last.clone(),
                _ => return Ok(()),
            }
        }
    }

    /// How many of these entities `scope` takes.
    pub fn count_in(&self, scope: &Scope, conn: &mut DbConnection) -> QueryResult<i64> {
        if !self.taken(scope) {
            return Ok(0);
        }
        (self.entities.total)(scope, conn)
    }
}

/// `step!(table.column -> parent.key: Type)`: the rows whose `column` names one of a batch's
/// entities (`parent` rows, whose `key` is a `Type`); add `where filter` for the rows of only one
/// kind, and a description when the column name alone would not say which rows. Their orphans
/// are the rows whose `column` names no `parent` row.
///
/// `step!(table via [other, ...], "rows", by owner, |ids| filter)`: `via` names the other
/// tables the filter reads (experiments, always there, aside); `owner` says which entity each
/// row belongs to ([`Owner`]). `|ids, cutoffs|` for a filter that re-checks an age.
/// `, orphans: ...` declares their orphans, as [`orphans!`] takes them.
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
    (@delete $conn:ident, $table:ident, $filter:expr) => {
        diesel::delete($table::table.filter($filter))
    };
    (@delete $conn:ident, $table:ident via [$($other:ident),+], $filter:expr) => {
        DeleteJoined { table: stringify!($table), filter: $filter, backend: $conn.backend() }
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
            count: count!($table, |conn, ids, _cutoffs| $($only.and)?($table::$column.eq_any(ids))),
            orphans: Some(orphans!($table.$column -> $parent.$key: $type $(where $only)?)),
            columns: columns_of::<$table::table>,
            archive: |conn, ids, _cutoffs, columns, sink| {
                let rows = || $table::table.filter($($only.and)?($table::$column.eq_any(ids)));
                delete_archived(rows().select(columns.clone()), diesel::delete(rows()), conn, columns, sink)
            },
            owner: Owner::Column(stringify!($column)),
        }
    };
    (
        $table:ident $(via [$($other:ident),+])?, $rows:literal, by $owner:expr,
        |$ids:ident| $filter:expr $(, orphans: $($spec:tt)+)?
    ) => {
        step!(
            $table $(via [$($other),+])?, $rows, by $owner, |$ids, _cutoffs| $filter
            $(, orphans: $($spec)+)?
        )
    };
    (
        $table:ident $(via [$($other:ident),+])?, $rows:literal, by $owner:expr,
        |$ids:ident, $cutoffs:ident| $filter:expr $(, orphans: $($spec:tt)+)?
    ) => {
        Step {
            table: stringify!($table),
            tables: &[stringify!($table) $($(, stringify!($other))+)?],
            rows: $rows,
            delete: |conn, $ids, $cutoffs| {
                step!(@delete conn, $table $(via [$($other),+])?, $filter).execute(conn)
            },
            count: count!($table, |conn, $ids, $cutoffs| $filter),
            orphans: step!(@orphans $($($spec)+)?),
            columns: columns_of::<$table::table>,
            archive: |conn, $ids, $cutoffs, columns, sink| {
                let select = $table::table.filter($filter).select(columns.clone());
                let delete = step!(@delete conn, $table $(via [$($other),+])?, $filter);
                delete_archived(select, delete, conn, columns, sink)
            },
            owner: $owner,
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

fn as_text(ids: &[ExperimentId]) -> Vec<String> {
    ids.iter().map(ExperimentId::to_string).collect()
}

// Which entities a scope takes, kind by kind. Each keeps one static shape (no boxing) so that
// it runs unchanged on every backend of `DbConnection`.

/// The experiments in scope, as a filter on `experiments`.
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

/// `in_scope!(table.key from START, |scope| filter)`: the entities of `table` that `filter`
/// takes, paged by `key` from after `START`; `if |scope| condition` when the scope takes the
/// kind only when asked.
macro_rules! in_scope {
    ($table:ident . $key:ident from $start:expr, |$scope:ident| $filter:expr) => {
        in_scope!($table.$key from $start, |$scope| $filter, if |_scope| true)
    };
    (
        $table:ident . $key:ident from $start:expr, |$scope:ident| $filter:expr,
        if |$taken_scope:ident| $taken:expr
    ) => {
        InScope {
            start: $start,
            taken: |$taken_scope| $taken,
            page: |$scope, conn, after, limit| {
                $table::table
                    .select($table::$key)
                    .filter($filter)
                    .filter($table::$key.gt(after))
                    .order($table::$key)
                    .limit(limit)
                    .load(conn)
            },
            total: |$scope, conn| $table::table.filter($filter).count().get_result(conn),
        }
    };
}

/// `associations!("kind", ids)`: the associations (no foreign key) whose source or destination
/// is one of `ids`, of that kind; `associations!("kind", none of table.key)`: those whose
/// source or destination of that kind names no `table` row.
macro_rules! associations {
    ($kind:literal, none of $table:ident . $key:ident) => {{
        let keys = || $table::table.select($table::$key);
        (entity_associations::source_type
            .eq($kind)
            .and(not(entity_associations::source_id.eq_any(keys()))))
        .or(entity_associations::destination_type
            .eq($kind)
            .and(not(entity_associations::destination_id.eq_any(keys()))))
    }};
    ($kind:literal, $ids:expr) => {
        (entity_associations::source_type
            .eq($kind)
            .and(entity_associations::source_id.eq_any($ids)))
        .or(entity_associations::destination_type
            .eq($kind)
            .and(entity_associations::destination_id.eq_any($ids)))
    };
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

pub static RUNS: Phase<RunId> = Phase {
    entity: Entity::Run,
    entities: in_scope!(runs.run_uuid from RunId(String::new()), |scope| runs_in_scope!(scope)),
    children: &[
        step!(input_tags via [inputs], "tags of the run's dataset inputs (no foreign key)",
            by Owner::via("input_uuid", "inputs", "input_uuid"), |ids| {
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
        step!(entity_associations, "associations of the run (no foreign key)",
            by Owner::Association("run"), |ids| {
            associations!("run", ids)
        }, orphans: "associations of runs that are gone":
            entity_associations.association_id: String, of runs where {
            associations!("run", none of runs.run_uuid)
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
    entity_rows: step!(runs, "the runs, while soft-deleted or in a deleted experiment",
        by Owner::Column("run_uuid"), |ids| {
        purgeable_runs!(ids)
    }, orphans: RUNS: runs.run_uuid: RunId, experiment_id -> experiments.experiment_id),
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
    experiment_column: Some("experiment_id"),
    unique: &[],
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

pub static TRACES: Phase<TraceId> = Phase {
    entity: Entity::Trace,
    entities: in_scope!(
        trace_info.request_id from TraceId(String::new()),
        |scope| traces_in_scope!(scope)
    ),
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
        step!(entity_associations, "associations of the trace (no foreign key)",
            by Owner::Association("trace"), |ids| {
            associations!("trace", ids)
        }, orphans: "associations of traces that are gone":
            entity_associations.association_id: String, of trace_info where {
            associations!("trace", none of trace_info.request_id)
        }),
    ],
    entity_rows: step!(
        trace_info,
        "the traces of deleted experiments, or older than --traces-older-than",
        by Owner::Column("request_id"),
        |ids, cutoffs| purgeable_traces!(ids, cutoffs),
        orphans: TRACES: trace_info.request_id: TraceId, experiment_id -> experiments.experiment_id
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
    experiment_column: Some("experiment_id"),
    unique: &[],
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

pub static LOGGED_MODELS: Phase<LoggedModelId> = Phase {
    entity: Entity::LoggedModel,
    entities: in_scope!(
        logged_models.model_id from LoggedModelId(String::new()),
        |scope| logged_models_in_scope!(scope)
    ),
    children: &[
        step!(logged_model_metrics.model_id -> logged_models.model_id: String),
        step!(logged_model_params.model_id -> logged_models.model_id: String),
        step!(logged_model_tags.model_id -> logged_models.model_id: String),
        step!(
            inputs.destination_id -> logged_models.model_id: String
                where inputs::destination_type.eq_any(["MODEL_INPUT", "MODEL_OUTPUT"]),
            "runs' links to the model (no foreign key)"
        ),
        step!(entity_associations, "associations of the model (no foreign key)",
            by Owner::Association("model"), |ids| {
            associations!("model", ids)
        }, orphans: "associations of logged models that are gone":
            entity_associations.association_id: String, of logged_models where {
            associations!("model", none of logged_models.model_id)
        }),
    ],
    entity_rows: step!(
        logged_models,
        "the models, while soft-deleted or in a deleted experiment",
        by Owner::Column("model_id"),
        |ids| purgeable_logged_models!(ids),
        orphans: LOGGED_MODELS: logged_models.model_id: LoggedModelId,
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
    experiment_column: Some("experiment_id"),
    unique: &[],
};

macro_rules! purgeable_experiments {
    ($ids:expr) => {
        experiments::experiment_id.eq_any($ids).and(experiments::lifecycle_stage.eq(DELETED))
    };
}

pub static EXPERIMENTS: Phase<ExperimentId> = Phase {
    entity: Entity::Experiment,
    entities: in_scope!(
        experiments.experiment_id from ExperimentId(i32::MIN),
        |scope| experiment_in_scope!(scope)
    ),
    children: &[
        step!(input_tags via [inputs, datasets], "tags of inputs from the experiment's datasets",
            by Owner::via("input_uuid", "inputs", "input_uuid"), |ids| {
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
        step!(inputs via [datasets], "inputs from the experiment's datasets (no foreign key)",
            by Owner::via("source_id", "datasets", "dataset_uuid"), |ids| {
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
        step!(entity_associations, "associations of the experiment (no foreign key)",
            by Owner::Association("experiment"), |ids| {
            associations!("experiment", as_text(ids))
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
        step!(scorer_versions via [scorers], "versions of the experiment's scorers",
            by Owner::via("scorer_id", "scorers", "scorer_id"), |ids| {
            scorer_versions::scorer_id.eq_any(
                scorers::table
                    .select(scorers::scorer_id)
                    .filter(scorers::experiment_id.eq_any(ids)),
            )
        }, orphans: scorer_versions.scorer_id -> scorers.scorer_id: String),
        step!(scorers.experiment_id -> experiments.experiment_id: i32),
        step!(review_queue_items via [review_queues], "items of the experiment's review queues",
            by Owner::via("queue_id", "review_queues", "queue_id"), |ids| {
            review_queue_items::queue_id.eq_any(
                review_queues::table
                    .select(review_queues::queue_id)
                    .filter(review_queues::experiment_id.eq_any(ids)),
            )
        }, orphans: review_queue_items.queue_id -> review_queues.queue_id: String),
        step!(review_queue_users via [review_queues], "users of the experiment's review queues",
            by Owner::via("queue_id", "review_queues", "queue_id"), |ids| {
            review_queue_users::queue_id.eq_any(
                review_queues::table
                    .select(review_queues::queue_id)
                    .filter(review_queues::experiment_id.eq_any(ids)),
            )
        }, orphans: review_queue_users.queue_id -> review_queues.queue_id: String),
        step!(
            review_queue_label_schemas via [review_queues],
            "label schemas of the experiment's review queues",
            by Owner::via("queue_id", "review_queues", "queue_id"),
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
        step!(issue_categories via [issues], "categories of the experiment's issues",
            by Owner::via("issue_id", "issues", "issue_id"), |ids| {
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
    entity_rows: step!(experiments, "the experiments, while soft-deleted",
        by Owner::Column("experiment_id"), |ids| {
        purgeable_experiments!(ids)
    }),
    artifacts: Some(ArtifactsOf {
        lock: |conn, ids, _cutoffs| lock!(conn, experiments, purgeable_experiments!(ids)),
        locate: |conn, ids| {
            let rows: Vec<(ExperimentId, Option<String>)> = experiments::table
                .filter(experiments::experiment_id.eq_any(ids))
                .select((experiments::experiment_id, experiments::artifact_location))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(id, uri)| Located {
                    experiment: id.clone(),
                    id,
                    uri,
                    container: Container::Root,
                })
                .collect())
        },
    }),
    experiment_column: None,
    unique: &[&["workspace", "name"]],
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

pub static MODEL_VERSIONS: Phase<ModelVersionKey> = Phase {
    entity: Entity::ModelVersion,
    entities: InScope {
        start: ModelVersionKey { workspace: String::new(), name: String::new(), version: i32::MIN },
        taken: |scope| scope.wants(scope.retention.model_versions),
        page: |scope, conn, after, limit| {
            // Keyset paging over (workspace, name, version), spelled out: no row-value
            // comparison works on every backend.
            let keys: Vec<(String, String, i32)> = model_versions::table
                .select((model_versions::workspace, model_versions::name, model_versions::version))
                .filter(model_versions_in_scope!(scope))
                .filter(
                    model_versions::workspace.gt(after.workspace.clone()).or(
                        model_versions::workspace.eq(after.workspace.clone()).and(
                            model_versions::name.gt(after.name.clone()).or(model_versions::name
                                .eq(after.name.clone())
                                .and(model_versions::version.gt(after.version))),
                        ),
                    ),
                )
                .order((model_versions::workspace, model_versions::name, model_versions::version))
                .limit(limit)
                .load(conn)?;
            Ok(keys
                .into_iter()
                .map(|(workspace, name, version)| ModelVersionKey { workspace, name, version })
                .collect())
        },
        total: |scope, conn| {
            model_versions::table.filter(model_versions_in_scope!(scope)).count().get_result(conn)
        },
    },
    children: &[step!(
        model_version_tags via [model_versions],
        "tags of the versions",
        by Owner::ModelVersion,
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
        by Owner::ModelVersion,
        |ids, cutoffs| {
            model_version_key_in!(model_versions, ids)
                .and(model_versions::current_stage.eq(DELETED_MODEL_VERSION))
                .and(model_versions::last_updated_time.lt(cutoffs.deleted_before_ms))
        }
    ),
    artifacts: None,
    experiment_column: None,
    unique: &[],
};

pub static WEBHOOKS: Phase<WebhookId> = Phase {
    entity: Entity::Webhook,
    entities: in_scope!(
        webhooks.webhook_id from WebhookId(String::new()),
        |scope| webhooks_in_scope!(scope),
        if |scope| scope.wants(scope.retention.webhooks)
    ),
    children: &[step!(webhook_events.webhook_id -> webhooks.webhook_id: String)],
    entity_rows: step!(webhooks, "the webhooks, while soft-deleted",
        by Owner::Column("webhook_id"), |ids, cutoffs| {
        webhooks::webhook_id
            .eq_any(ids)
            .and(webhooks::deleted_timestamp.lt(cutoffs.deleted_before_ms))
    }),
    artifacts: None,
    experiment_column: None,
    unique: &[],
};

pub static JOBS: Phase<JobId> = Phase {
    entity: Entity::Job,
    entities: in_scope!(
        jobs.id from JobId(String::new()),
        |scope| jobs_in_scope!(scope),
        if |scope| scope.wants(scope.retention.finished_jobs)
    ),
    children: &[step!(job_locks.job_id -> jobs.id: String)],
    entity_rows: step!(jobs, "the jobs, while finished", by Owner::Column("id"), |ids, cutoffs| {
        jobs::id
            .eq_any(ids)
            .and(jobs::status.eq_any(FINISHED_JOB_STATUSES))
            .and(jobs::last_update_time.lt(cutoffs.deleted_before_ms))
    }),
    artifacts: None,
    experiment_column: None,
    unique: &[],
};

/// Something done to each phase of the plan, in order.
/// What an entity's key is to the purge: printed in reports and archives, ordered for paging,
/// and handed between the threads of a purge with `--jobs`.
pub(crate) trait EntityId: Clone + Display + Ord + Send + Sync + 'static {}

impl<T: Clone + Display + Ord + Send + Sync + 'static> EntityId for T {}

pub(crate) trait PhaseVisitor {
    type Error;
    fn phase<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> Result<(), Self::Error>;
}

/// Visits the plan's phases in the order they run: the one place the order is written. The
/// coverage check and the report ([`steps_in_order`]), the purge, the counts and the artifact
/// measure all walk it.
pub(crate) fn visit_phases<V: PhaseVisitor>(visitor: &mut V) -> Result<(), V::Error> {
    visitor.phase(&RUNS)?;
    visitor.phase(&TRACES)?;
    visitor.phase(&LOGGED_MODELS)?;
    visitor.phase(&EXPERIMENTS)?;
    visitor.phase(&MODEL_VERSIONS)?;
    visitor.phase(&WEBHOOKS)?;
    visitor.phase(&JOBS)
}

/// One step of the plan, as a reader, a report or `doctor` sees it.
#[derive(Debug, Clone, Copy)]
pub struct PlannedStep {
    pub entity: Entity,
    pub table: &'static str,
    pub tables: &'static [&'static str],
    pub rows: &'static str,
    /// The step deletes the entities themselves (the phase's last).
    pub entity_rows: bool,
    pub orphans: Option<&'static Orphans>,
    /// The table's columns, as the schema mirror declares them.
    pub columns: fn() -> Vec<ColumnDef>,
    /// Which of the batch's entities each row belongs to.
    pub owner: &'static Owner,
}

/// Every step of the plan, in execution order.
pub fn steps_in_order() -> Vec<PlannedStep> {
    struct Steps(Vec<PlannedStep>);
    impl PhaseVisitor for Steps {
        type Error = std::convert::Infallible;
        fn phase<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> Result<(), Self::Error> {
            self.0.extend(phase.steps().map(|step| PlannedStep {
                entity: phase.entity,
                table: step.table,
                tables: step.tables,
                rows: step.rows,
                entity_rows: phase.is_entity_rows(step),
                orphans: step.orphans.as_ref(),
                columns: step.columns,
                owner: &step.owner,
            }));
            Ok(())
        }
    }
    let mut steps = Steps(Vec::new());
    let Ok(()) = visit_phases(&mut steps);
    steps.0
}

/// The tables the plan deletes from that the store has, each once, in name order.
pub fn tables_in(schema: &StoreSchema) -> Vec<&'static str> {
    let mut tables: Vec<&str> = steps_in_order().iter().map(|step| step.table).collect();
    tables.retain(|table| schema.has_table(table));
    tables.sort_unstable();
    tables.dedup();
    tables
}

/// How many entities of each kind `scope` takes.
pub fn count_in_scope(
    scope: &Scope,
    conn: &mut DbConnection,
) -> QueryResult<BTreeMap<Entity, i64>> {
    struct Counts<'a> {
        scope: &'a Scope,
        conn: &'a mut DbConnection,
        counts: BTreeMap<Entity, i64>,
    }
    impl PhaseVisitor for Counts<'_> {
        type Error = diesel::result::Error;
        fn phase<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> QueryResult<()> {
            let count = phase.count_in(self.scope, self.conn)?;
            self.counts.insert(phase.entity, count);
            Ok(())
        }
    }
    let mut counts = Counts { scope, conn, counts: BTreeMap::new() };
    visit_phases(&mut counts)?;
    Ok(counts.counts)
}

/// The experiments among `ids` that `scope` purges.
pub fn experiments_in_scope_among(
    scope: &Scope,
    conn: &mut DbConnection,
    ids: &[ExperimentId],
) -> QueryResult<BTreeSet<ExperimentId>> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let found: Vec<ExperimentId> =
        experiments_in_scope!(scope).filter(experiments::experiment_id.eq_any(ids)).load(conn)?;
    Ok(found.into_iter().collect())
}

/// Rows of the largest tables that a purge of `scope` would delete, counted through their
/// indexes (for `status`). The runs' rows are counted a batch of run ids at a time, as the purge
/// takes them: given a few hundred ids, the planner probes each table's run index. Given the
/// scope's filter, which it cannot estimate, or thousands of ids, it read whole indexes and
/// tables of a large store.
pub fn rows_in_scope(
    scope: &Scope,
    conn: &mut DbConnection,
) -> QueryResult<Vec<(&'static str, i64)>> {
    let [mut metrics, mut latest_metrics, mut params, mut tags] = [0_i64; 4];
    RUNS.for_each_page(scope, conn, DEFAULT_BATCH_SIZE as i64, |conn, page| {
        macro_rules! count {
            ($table:ident) => {
                $table::table
                    .filter($table::run_uuid.eq_any(page))
                    .count()
                    .get_result::<i64>(conn)?
            };
        }
        metrics += count!(metrics);
        latest_metrics += count!(latest_metrics);
        params += count!(params);
        tags += count!(tags);
        Ok::<_, diesel::result::Error>(())
    })?;
    let counts = count_in_scope(scope, conn)?;
    Ok(vec![
        ("experiments", counts[&Entity::Experiment]),
        ("runs", counts[&Entity::Run]),
        ("metrics", metrics),
        ("latest_metrics", latest_metrics),
        ("params", params),
        ("tags", tags),
        ("trace_info", counts[&Entity::Trace]),
        (
            "spans",
            if scope.schema.has_table("spans") {
                spans::table
                    .filter(spans::experiment_id.eq_any(experiments_in_scope!(scope)))
                    .count()
                    .get_result(conn)?
            } else {
                0
            },
        ),
        ("logged_models", counts[&Entity::LoggedModel]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dry run counts each row of a table that two steps delete from by its key, or it would
    /// count the rows both steps match twice.
    #[test]
    fn every_table_two_steps_delete_from_is_counted_by_key() {
        struct Tables(BTreeMap<&'static str, Vec<bool>>);
        impl PhaseVisitor for Tables {
            type Error = std::convert::Infallible;
            fn phase<Id: EntityId>(
                &mut self,
                phase: &'static Phase<Id>,
            ) -> Result<(), Self::Error> {
                for step in phase.steps() {
                    let keyed = matches!(step.count, Count::Keys(_));
                    self.0.entry(step.table).or_default().push(keyed);
                }
                Ok(())
            }
        }
        let mut tables = Tables(BTreeMap::new());
        let Ok(()) = visit_phases(&mut tables);
        let shared: Vec<&str> =
            tables.0.iter().filter(|(_, steps)| steps.len() > 1).map(|(table, _)| *table).collect();
        assert!(shared.contains(&"entity_associations"), "{shared:?}");
        for table in shared {
            assert!(tables.0[table].iter().all(|keyed| *keyed), "{table} is not counted by key");
        }
    }
}
