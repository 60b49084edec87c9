//! Runs the delete plan over a scope: phase by phase, batch by batch, one short transaction per
//! batch, so an interruption at any moment leaves whole entities and a rerun finishes the job.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Instant;

use diesel::connection::Connection;
use diesel::QueryResult;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::plan::{Entity, Phase, EXPERIMENTS, LOGGED_MODELS, RUNS, TRACES};
use crate::scope::{BlockedExperiment, Scope};
use crate::store::DbConnection;

/// Largest batch: keeps every `IN (...)` list within the bind-parameter limits of all backends.
pub const MAX_BATCH_SIZE: usize = 10_000;
pub const DEFAULT_BATCH_SIZE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count what would go, change nothing.
    DryRun,
    Delete,
}

/// Rows of one step of the plan, summed over its batches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRows {
    pub entity: Entity,
    pub table: &'static str,
    pub rows_of: &'static str,
    pub rows: u64,
}

/// What a purge did, or with `--dry-run` would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub store: String,
    pub mlflow_version: &'static str,
    pub dry_run: bool,
    /// Entities purged, by kind.
    pub entities: BTreeMap<Entity, u64>,
    /// Rows purged, by table.
    pub rows_by_table: BTreeMap<&'static str, u64>,
    /// Rows purged, by step of the plan, in plan order.
    pub steps: Vec<StepRows>,
    pub batches: u64,
    /// Soft-deleted experiments left in place, and why.
    pub blocked: Vec<BlockedExperiment>,
    pub duration_ms: u64,
}

impl Report {
    pub fn new(store: String, mlflow_version: &'static str, mode: Mode) -> Self {
        let steps = all_steps()
            .map(|(entity, table, rows_of)| StepRows { entity, table, rows_of, rows: 0 })
            .collect();
        Report {
            store,
            mlflow_version,
            dry_run: mode == Mode::DryRun,
            entities: BTreeMap::new(),
            rows_by_table: BTreeMap::new(),
            steps,
            batches: 0,
            blocked: Vec::new(),
            duration_ms: 0,
        }
    }

    pub fn total_rows(&self) -> u64 {
        self.rows_by_table.values().sum()
    }

    fn add(&mut self, step_index: usize, rows: u64) {
        let step = &mut self.steps[step_index];
        step.rows += rows;
        *self.rows_by_table.entry(step.table).or_default() += rows;
    }
}

fn all_steps() -> impl Iterator<Item = (Entity, &'static str, &'static str)> {
    fn of<Id>(
        phase: &'static Phase<Id>,
    ) -> impl Iterator<Item = (Entity, &'static str, &'static str)> {
        phase.steps().map(|step| (phase.entity, step.table, step.rows))
    }
    of(&RUNS).chain(of(&TRACES)).chain(of(&LOGGED_MODELS)).chain(of(&EXPERIMENTS))
}

/// Purges everything in `scope`, adding to `report` as batches commit. An error after the
/// purge started comes back as [`Error::PartlyDone`]: the batches before it stay committed.
///
/// A dry run is the same purge in one transaction that is rolled back: its counts are exact,
/// even where steps of different phases match the same rows.
///
/// `progress` hears the number of entities of each batch done.
pub fn run(
    conn: &mut DbConnection,
    scope: &Scope,
    mode: Mode,
    batch_size: usize,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let started = Instant::now();
    let limit = batch_size.clamp(1, MAX_BATCH_SIZE) as i64;
    let result = match mode {
        Mode::Delete => {
            run_phases(conn, scope, limit, report, progress).map_err(|source| Error::PartlyDone {
                batches: report.batches,
                entities: report.entities.values().sum(),
                source: Box::new(source),
            })
        }
        Mode::DryRun => conn
            .transaction(|conn| {
                run_phases(conn, scope, limit, report, progress)?;
                Err(Error::Database(diesel::result::Error::RollbackTransaction))
            })
            .or_else(|err| match err {
                Error::Database(diesel::result::Error::RollbackTransaction) => Ok(()),
                err => Err(err),
            }),
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn run_phases(
    conn: &mut DbConnection,
    scope: &Scope,
    limit: i64,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut runner = PhaseRunner { conn, limit, report, progress, first_step: 0 };
    runner.run(&RUNS, String::new(), |c, after, n| scope.next_runs(c, after, n))?;
    runner.run(&TRACES, String::new(), |c, after, n| scope.next_traces(c, after, n))?;
    runner
        .run(&LOGGED_MODELS, String::new(), |c, after, n| scope.next_logged_models(c, after, n))?;
    runner.run(&EXPERIMENTS, i32::MIN, |c, after, n| scope.next_experiments(c, *after, n))
}

struct PhaseRunner<'a> {
    conn: &'a mut DbConnection,
    limit: i64,
    report: &'a mut Report,
    progress: &'a mut dyn FnMut(u64),
    /// Index in the report's steps of the current phase's first step.
    first_step: usize,
}

impl PhaseRunner<'_> {
    /// Runs one phase over the batches `next_batch` gives, starting after the key `after`.
    fn run<Id: Clone + Display>(
        &mut self,
        phase: &Phase<Id>,
        mut after: Id,
        next_batch: impl Fn(&mut DbConnection, &Id, i64) -> QueryResult<Vec<Id>>,
    ) -> Result<()> {
        loop {
            let started = Instant::now();
            let (ids, rows) = self.conn.transaction(|conn| {
                let ids = next_batch(conn, &after, self.limit)?;
                let rows = delete_batch(conn, phase, &ids)?;
                Ok::<_, Error>((ids, rows))
            })?;
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for (offset, n) in rows.iter().enumerate() {
                self.report.add(self.first_step + offset, *n);
            }
            *self.report.entities.entry(phase.entity).or_default() += ids.len() as u64;
            self.report.batches += 1;
            (self.progress)(ids.len() as u64);
            for id in &ids {
                debug!(entity = phase.entity.name(), entity.id = %id, dry_run = self.report.dry_run, "purged");
            }
            info!(
                entity = phase.entity.name(),
                batch = self.report.batches,
                entities = ids.len(),
                rows = rows.iter().sum::<u64>(),
                duration_ms = started.elapsed().as_millis() as u64,
                dry_run = self.report.dry_run,
                "batch done"
            );
            if (ids.len() as i64) < self.limit {
                break;
            }
        }
        self.first_step += phase.steps().count();
        Ok(())
    }
}

/// Deletes one batch: children first, then the entities, which must all still be soft-deleted.
fn delete_batch<Id>(conn: &mut DbConnection, phase: &Phase<Id>, ids: &[Id]) -> Result<Vec<u64>> {
    let mut rows = Vec::with_capacity(phase.children.len() + 1);
    for step in phase.children {
        rows.push((step.delete)(conn, ids)? as u64);
    }
    let deleted = (phase.entity_rows.delete)(conn, ids)?;
    if deleted != ids.len() {
        return Err(Error::ConcurrentChange {
            entity: phase.entity.name(),
            batch: ids.len(),
            changed: ids.len() - deleted,
        });
    }
    rows.push(deleted as u64);
    Ok(rows)
}
