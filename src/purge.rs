//! Runs the delete plan over a scope: phase by phase, batch by batch, one short transaction per
//! batch, so an interruption at any moment leaves whole entities and a rerun finishes the job.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::archive::ArchiveWriter;
use crate::artifacts::sweep::{Action, ArtifactReport, ArtifactSweep};
use crate::error::{Error, Result};
use crate::plan::{
    steps_in_order, visit_phases, Count, Entity, EntityId, Phase, PhaseVisitor, RowKey,
};
use crate::scope::{BlockedExperiment, Cutoffs, Scope};
use crate::store::revision::StoreSchema;
use crate::store::{delete_joined, write_transaction, DbConnection, DbPool};

mod prepare;
mod reclaim;

pub use crate::store::space::Reclaim;
pub use prepare::{ArtifactSettings, Confirmed, Prepared, Settings};
pub use reclaim::{ReclaimReport, SpaceChange};

/// Largest batch: keeps every `IN (...)` list within the bind-parameter limits of all backends.
pub const MAX_BATCH_SIZE: usize = 10_000;
pub use crate::plan::DEFAULT_BATCH_SIZE;
/// Most batches at once (`--jobs`): beyond the cores of any database server a purge is for.
pub const MAX_JOBS: usize = 32;
/// How long a statement waits for a lock the tracking server holds, unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count what would go, reading only: batch by batch like a purge, in a read-only session.
    DryRun,
    Delete,
}

impl From<Mode> for Action {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Delete => Action::Delete,
            Mode::DryRun => Action::Size,
        }
    }
}

/// Rows of one step of the plan, summed over its batches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRows {
    pub entity: Entity,
    pub table: &'static str,
    pub rows_of: &'static str,
    pub rows: u64,
    /// The store's MLflow version lacks a table the step needs: it has no such rows.
    pub skipped: bool,
    #[serde(skip)]
    tables: &'static [&'static str],
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
    /// With `--artifacts`: what went from the artifact stores, and which entities stayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactReport>,
    /// With `--archive`: the archive written, where every purged row is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// With `--reclaim`: the space given back after the last batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<ReclaimReport>,
    pub duration_ms: u64,
}

impl Report {
    pub fn new(store: String, mlflow_version: &'static str, mode: Mode) -> Self {
        let steps = steps_in_order()
            .into_iter()
            .map(|step| StepRows {
                entity: step.entity,
                table: step.table,
                rows_of: step.rows,
                rows: 0,
                skipped: false,
                tables: step.tables,
            })
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
            artifacts: None,
            archive: None,
            reclaim: None,
            duration_ms: 0,
        }
    }

    pub fn total_rows(&self) -> u64 {
        self.rows_by_table.values().sum()
    }

    /// The tables rows were purged from.
    fn touched_tables(&self) -> Vec<&'static str> {
        self.rows_by_table.iter().filter(|(_, rows)| **rows > 0).map(|(table, _)| *table).collect()
    }

    fn add(&mut self, step_index: usize, rows: u64) {
        let step = &mut self.steps[step_index];
        if step.skipped {
            return;
        }
        step.rows += rows;
        *self.rows_by_table.entry(step.table).or_default() += rows;
    }

    /// Marks the steps over tables the store's MLflow version lacks.
    fn skip_absent(&mut self, schema: &StoreSchema) {
        for step in &mut self.steps {
            step.skipped = !schema.has_tables(step.tables);
        }
    }
}

/// How a purge runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub mode: Mode,
    /// Entities per transaction, at most [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// Stop between batches once this instant has passed; the next run continues.
    pub deadline: Option<Instant>,
    /// A pause after each batch, to leave the database to the tracking server.
    pub throttle: Duration,
    /// Set by a signal handler to the signal's number (0: none): the purge stops before its
    /// next batch.
    pub stop_signal: Option<Arc<AtomicUsize>>,
    /// With `--jobs` above one: the connections that run batches at once, as many as the pool
    /// holds. None: one batch after another, on the purge's own connection.
    pub workers: Option<DbPool>,
}

impl Options {
    /// The throttle's pause, cut short by a stop signal.
    fn pause(&self) {
        let until = Instant::now() + self.throttle;
        while self.stopped_by().is_none() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }

    /// The stop signal's name, once one came.
    fn stopped_by(&self) -> Option<&'static str> {
        let signal = self.stop_signal.as_ref().map_or(0, |s| s.load(Ordering::Relaxed));
        (signal != 0)
            .then(|| signal_hook::low_level::signal_name(signal as i32).unwrap_or("a signal"))
    }

    /// Why the purge must stop before its next batch, if it must: what was done stays whole.
    fn stop_before_next_batch(&self, batches: u64) -> Result<()> {
        if let Some(signal) = self.stopped_by() {
            return Err(Error::Interrupted { signal, batches });
        }
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(Error::NotFinished { batches });
        }
        Ok(())
    }
}

/// Purges everything in `scope`, adding to `report` as batches commit; its errors are those
/// [`Confirmed::run`] names.
///
/// A dry run pages through the same batches in a read-only session and counts what each step
/// would delete, each row once, at the step that would delete it (see
/// [`crate::plan::Count`]): its counts are those a purge then reports.
///
/// With `archive`, each batch's rows are written there, durably, before the batch commits; a
/// batch whose rows could not be archived rolls back.
///
/// With `artifacts`, each batch's artifacts go first (see [`crate::artifacts::sweep`]); an entity
/// whose artifacts stay keeps its rows, and the purge ends with [`Error::EntitiesKept`].
///
/// `progress` hears the number of entities of each batch done.
pub(crate) fn run(
    conn: &mut DbConnection,
    scope: &Scope,
    options: &Options,
    mut artifacts: Option<&mut ArtifactSweep>,
    mut archive: Option<&mut ArchiveWriter>,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let started = Instant::now();
    report.skip_absent(scope.schema());
    if artifacts.is_some() {
        report.artifacts.get_or_insert_default();
    }
    let mut run_phases = |conn: &mut DbConnection, report: &mut Report| {
        let archive = archive.as_deref_mut();
        run_phases(conn, scope, options, artifacts.as_deref_mut(), archive, report, progress)
    };
    let result = match options.mode {
        Mode::Delete => run_phases(conn, report).map_err(|source| match source {
            Error::NotFinished { .. } | Error::Interrupted { .. } => source,
            source => Error::PartlyDone {
                batches: report.batches,
                entities: report.entities.values().sum(),
                source: Box::new(source),
            },
        }),
        Mode::DryRun => run_phases(conn, report),
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    let kept = report.artifacts.as_ref().map_or(&[][..], |artifacts| &artifacts.kept[..]);
    match (result, kept.first()) {
        (Ok(()), Some(first)) => Err(Error::EntitiesKept {
            kept: kept.len(),
            first: format!("{} {}: {}", first.entity.name(), first.id, first.error),
            dry_run: report.dry_run,
        }),
        (result, _) => result,
    }
}

fn run_phases(
    conn: &mut DbConnection,
    scope: &Scope,
    options: &Options,
    artifacts: Option<&mut ArtifactSweep>,
    archive: Option<&mut ArchiveWriter>,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let limit = options.batch_size.clamp(1, MAX_BATCH_SIZE) as i64;
    let mut runner = PhaseRunner {
        conn,
        scope,
        cutoffs: scope.cutoffs(),
        limit,
        options,
        artifacts,
        archive,
        report,
        progress,
        first_step: 0,
        counted: HashMap::new(),
    };
    visit_phases(&mut runner)
}

struct PhaseRunner<'a> {
    conn: &'a mut DbConnection,
    scope: &'a Scope,
    cutoffs: Cutoffs,
    limit: i64,
    options: &'a Options,
    artifacts: Option<&'a mut ArtifactSweep>,
    archive: Option<&'a mut ArchiveWriter>,
    report: &'a mut Report,
    progress: &'a mut dyn FnMut(u64),
    /// Index in the report's steps of the current phase's first step.
    first_step: usize,
    /// In a dry run: the keys of the rows counted so far, of each table whose rows can tie two
    /// entities.
    counted: HashMap<&'static str, HashSet<RowKey>>,
}

impl PhaseVisitor for PhaseRunner<'_> {
    type Error = Error;

    /// Runs one phase over its batches in the scope: deletes them, batch by batch, or with
    /// workers, several batches at once. The next phase starts once every batch of this one is
    /// done.
    fn phase<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> Result<()> {
        match self.options.workers.clone() {
            Some(workers) if self.options.mode == Mode::Delete => {
                self.phase_in_parallel(phase, &workers)?
            }
            _ => self.phase_in_turn(phase)?,
        }
        self.first_step += phase.steps().count();
        Ok(())
    }
}

impl PhaseRunner<'_> {
    /// One batch after another on the purge's connection: its artifacts, then its rows (to the
    /// archive, too), in one transaction; a dry run counts instead.
    fn phase_in_turn<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> Result<()> {
        let schema = self.scope.schema();
        let mut after = phase.entities.start.clone();
        loop {
            self.options.stop_before_next_batch(self.report.batches)?;
            let started = Instant::now();
            let mode = self.options.mode;
            let mut batch = |conn: &mut DbConnection| {
                let ids = phase.next_batch(self.scope, conn, &after, self.limit)?;
                if ids.is_empty() {
                    return Ok((ids, Vec::new(), Vec::new()));
                }
                let kept = match (self.artifacts.as_deref_mut(), &phase.artifacts) {
                    (Some(sweep), Some(of)) => {
                        if mode == Mode::Delete {
                            let locked = (of.lock)(conn, &ids, &self.cutoffs)?;
                            require_whole(phase.entity, ids.len(), locked)?;
                        }
                        let located = (of.locate)(conn, &ids)?;
                        let report = self.report.artifacts.get_or_insert_default();
                        sweep.sweep(conn, self.scope, phase.entity, &ids, &located, report)?
                    }
                    _ => BTreeSet::new(),
                };
                let purged: Vec<Id> = ids.iter().filter(|id| !kept.contains(id)).cloned().collect();
                let rows = if purged.is_empty() {
                    vec![0; phase.steps().count()]
                } else if mode == Mode::Delete {
                    let mut archive = self.archive.as_deref_mut();
                    if let Some(archive) = archive.as_deref_mut() {
                        archive.begin_batch(phase, &purged)?;
                    }
                    let rows = delete_batch(
                        conn,
                        schema,
                        &self.cutoffs,
                        phase,
                        &purged,
                        archive.as_deref_mut(),
                    )?;
                    if let Some(archive) = archive {
                        archive.seal_batch()?;
                    }
                    rows
                } else {
                    count_batch(conn, schema, &self.cutoffs, phase, &purged, &mut self.counted)?
                };
                Ok::<_, Error>((ids, purged, rows))
            };
            // A dry run's session is read-only: each statement is a read transaction of its own,
            // so no lock is held while artifact stores answer.
            let (ids, purged, rows) = match mode {
                Mode::Delete => write_transaction(self.conn, batch)?,
                Mode::DryRun => batch(self.conn)?,
            };
            let Some(last) = ids.last() else { break };
            after = last.clone();
            if let (Some(archive), false) = (self.archive.as_deref_mut(), purged.is_empty()) {
                archive.committed()?;
            }
            if let Some(sweep) = self.artifacts.as_deref_mut() {
                sweep.batch_done();
            }
            self.record(phase, ids.len(), &purged, &rows, started);
            if (ids.len() as i64) < self.limit {
                break;
            }
            self.options.pause();
        }
        Ok(())
    }

    /// Several batches at once, each on a worker's connection from `workers`, in a transaction
    /// of its own; this connection pages through the phase's entities and hands out the
    /// batches. A stop (error, deadline, signal) hands out no more and waits for the batches
    /// under way, so that each is whole, committed or rolled back.
    fn phase_in_parallel<Id: EntityId>(
        &mut self,
        phase: &'static Phase<Id>,
        workers: &DbPool,
    ) -> Result<()> {
        let (schema, cutoffs, options) = (self.scope.schema(), &self.cutoffs.clone(), self.options);
        // Every connection first: one that cannot be had stops the phase before any batch.
        let connections = (0..workers.max_size())
            .map(|_| workers.get())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Connect {
                uri: self.report.store.clone(),
                reason: e.to_string(),
            })?;
        let jobs = connections.len();
        std::thread::scope(|threads| {
            let (hand_out, batches) = std::sync::mpsc::sync_channel::<Vec<Id>>(0);
            // The workers alone hold the receiving end: once they are all gone, handing out fails
            // instead of waiting.
            let batches = Arc::new(std::sync::Mutex::new(batches));
            let (report_done, done) = std::sync::mpsc::channel();
            for mut conn in connections {
                let (batches, report_done) = (batches.clone(), report_done.clone());
                threads.spawn(move || loop {
                    let next = batches.lock().map_err(drop).and_then(|b| b.recv().map_err(drop));
                    let Ok(ids) = next else { break };
                    let started = Instant::now();
                    // A panic (a bug) is handed to the dispatcher with the batch, so that it does
                    // not wait for this worker for ever.
                    let rows = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        delete_batch_retrying(&mut conn, schema, cutoffs, phase, &ids)
                    }));
                    let panicked = rows.is_err();
                    if !panicked {
                        options.pause();
                    }
                    if report_done.send((ids, started, rows)).is_err() || panicked {
                        break;
                    }
                });
            }
            drop(batches);
            drop(report_done);
            let mut after = phase.entities.start.clone();
            let mut paging = true;
            let mut under_way = 0;
            let mut stopped = None;
            let mut panicked = None;
            loop {
                while paging && stopped.is_none() && panicked.is_none() && under_way < jobs {
                    let page =
                        self.options.stop_before_next_batch(self.report.batches).and_then(|()| {
                            Ok(phase.next_batch(self.scope, self.conn, &after, self.limit)?)
                        });
                    match page {
                        Ok(ids) if ids.is_empty() => paging = false,
                        Ok(ids) => {
                            paging = (ids.len() as i64) == self.limit;
                            after = ids.last().expect("a page is not empty").clone();
                            if hand_out.send(ids).is_err() {
                                break;
                            }
                            under_way += 1;
                        }
                        Err(e) => stopped = Some(e),
                    }
                }
                if under_way == 0 {
                    break;
                }
                let Ok((ids, started, rows)) = done.recv() else { break };
                under_way -= 1;
                match rows {
                    Ok(Ok(rows)) => self.record(phase, ids.len(), &ids, &rows, started),
                    Ok(Err(e)) => {
                        stopped.get_or_insert(e);
                    }
                    Err(panic) => {
                        panicked.get_or_insert(panic);
                    }
                }
            }
            // The workers end once no batch can come.
            drop(hand_out);
            if let Some(panic) = panicked {
                std::panic::resume_unwind(panic);
            }
            stopped.map_or(Ok(()), Err)
        })
    }

    /// Adds a batch done to the report, and says so.
    fn record<Id: EntityId>(
        &mut self,
        phase: &Phase<Id>,
        paged: usize,
        purged: &[Id],
        rows: &[u64],
        started: Instant,
    ) {
        for (offset, n) in rows.iter().enumerate() {
            self.report.add(self.first_step + offset, *n);
        }
        *self.report.entities.entry(phase.entity).or_default() += purged.len() as u64;
        self.report.batches += 1;
        (self.progress)(paged as u64);
        for id in purged {
            debug!(entity = phase.entity.name(), entity.id = %id, dry_run = self.report.dry_run, "purged");
        }
        info!(
            entity = phase.entity.name(),
            batch = self.report.batches,
            entities = purged.len(),
            rows = rows.iter().sum::<u64>(),
            duration_ms = started.elapsed().as_millis() as u64,
            dry_run = self.report.dry_run,
            "batch done"
        );
    }
}

/// How often a batch runs when the database keeps choosing it to break a deadlock.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// Deletes one batch in a transaction of its own, and runs it again when the database rolled
/// it back to break a deadlock (batches running at once can lock rows they share in opposite
/// orders: associations between two purged entities).
fn delete_batch_retrying<Id: EntityId>(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    cutoffs: &Cutoffs,
    phase: &Phase<Id>,
    ids: &[Id],
) -> Result<Vec<u64>> {
    let mut attempt = 1;
    loop {
        let deleted =
            write_transaction(conn, |conn| delete_batch(conn, schema, cutoffs, phase, ids, None));
        match deleted {
            Err(e) if e.is_deadlock() && attempt < DEADLOCK_ATTEMPTS => {
                warn!(
                    entity = phase.entity.name(),
                    attempt, "deadlock: the batch rolled back, and runs again"
                );
                attempt += 1;
            }
            deleted => return deleted,
        }
    }
}

/// Deletes one batch: children first, then the entities, which must all still be soft-deleted.
/// Steps over tables the store's MLflow version lacks delete nothing. With an archive, each
/// step's rows go there as they are deleted (see [`crate::store::rows::delete_archived`]).
fn delete_batch<Id>(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    cutoffs: &Cutoffs,
    phase: &Phase<Id>,
    ids: &[Id],
    mut archive: Option<&mut ArchiveWriter>,
) -> Result<Vec<u64>> {
    let mut rows = Vec::with_capacity(phase.children.len() + 1);
    for step in phase.steps() {
        let entity_rows = phase.is_entity_rows(step);
        if !schema.has_tables(step.tables) {
            rows.push(0);
            continue;
        }
        let mut delete = |conn: &mut DbConnection| match archive.as_deref_mut() {
            Some(archive) => {
                let archived = archive.delete_step(conn, step, entity_rows, ids, cutoffs)?;
                if archived.rows != archived.deleted {
                    return Err(Error::ArchivedNotDeleted {
                        table: step.table,
                        rows: archived.rows,
                        deleted: archived.deleted,
                    });
                }
                Ok(archived.deleted)
            }
            None => Ok((step.delete)(conn, ids, cutoffs)? as u64),
        };
        let deleted =
            if step.reads_other_tables() { delete_joined(conn, delete)? } else { delete(conn)? };
        if entity_rows {
            require_whole(phase.entity, ids.len(), deleted as usize)?;
        }
        rows.push(deleted);
    }
    Ok(rows)
}

/// Counts what [`delete_batch`] would delete, reading only. A row that an earlier step or batch
/// counted is not counted again: the purge would have deleted it there.
fn count_batch<Id>(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    cutoffs: &Cutoffs,
    phase: &Phase<Id>,
    ids: &[Id],
    counted: &mut HashMap<&'static str, HashSet<RowKey>>,
) -> Result<Vec<u64>> {
    let mut rows = Vec::with_capacity(phase.children.len() + 1);
    for step in phase.steps() {
        let n = match step.count {
            _ if !schema.has_tables(step.tables) => 0,
            Count::Rows(count) => count(conn, ids, cutoffs)? as u64,
            Count::Keys(keys) => {
                let seen = counted.entry(step.table).or_default();
                keys(conn, ids, cutoffs)?.into_iter().filter(|key| seen.insert(*key)).count() as u64
            }
        };
        rows.push(n);
    }
    Ok(rows)
}

/// A batch is whole when a statement over its entities touched exactly `batch` rows. Fewer (one
/// restored meanwhile) and more (a row added under a batch's key) are both a concurrent change.
fn require_whole(entity: Entity, batch: usize, touched: usize) -> Result<()> {
    if touched == batch {
        return Ok(());
    }
    Err(Error::ConcurrentChange { entity: entity.name(), batch, changed: batch.abs_diff(touched) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_that_touched_more_than_its_batch_is_a_concurrent_change() {
        let more = require_whole(Entity::Run, 3, 5).unwrap_err();
        assert!(matches!(more, Error::ConcurrentChange { batch: 3, changed: 2, .. }), "{more}");
        let fewer = require_whole(Entity::Run, 3, 1).unwrap_err();
        assert!(matches!(fewer, Error::ConcurrentChange { batch: 3, changed: 2, .. }), "{fewer}");
        assert!(require_whole(Entity::Run, 3, 3).is_ok());
    }
}
