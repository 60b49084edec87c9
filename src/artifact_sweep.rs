//! `purge --artifacts`: which artifact locations each batch deletes, and which entities keep
//! their rows because their artifacts could not go.
//!
//! Within a batch's transaction, the purge locks the batch's entity rows, then deletes their
//! artifacts, then their rows, then commits. A kill or an error before the commit leaves rows
//! that still lead to whatever is left of the artifacts, so a rerun finds the entity again and
//! finishes (a missing location counts as deleted); the other order would leave artifacts that
//! nothing names any more. An entity whose artifacts cannot go keeps its rows and is reported;
//! the others go on.
//!
//! What is deleted, and what is refused:
//! - A run's `artifact_uri`, a trace's `mlflow.artifactLocation` tag and a logged model's
//!   `artifact_location` must lie inside their experiment's `artifact_location`, as MLflow puts
//!   them: anything else is refused. Inside an experiment the same purge deletes, they go with
//!   the experiment's whole tree (one delete, and a dry run counts each byte once).
//! - An experiment's tree goes only once its runs, traces and logged models are gone.
//! - No location goes while any location that the store still names lies inside it: a staying
//!   entity's, or a model version's source. The store's locations are read once, when the purge
//!   starts, into an ordered index (about 150 bytes per location), and an entity's are dropped
//!   from it once its rows are gone.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::time::Instant;

use diesel::prelude::*;
use tracing::{info, warn};

use crate::artifacts::{ArtifactError, ArtifactStore, Location, LocationIndex, Resolver};
use crate::error::Result;
use crate::plan::{
    Entity, Located, Phase, EXPERIMENTS, LOGGED_MODELS, RUNS, TRACES, TRACE_ARTIFACT_LOCATION_TAG,
};
use crate::purge::Mode;
use crate::schema::{experiments, logged_models, model_versions, runs, trace_info, trace_tags};
use crate::scope::Scope;
use crate::store::DbConnection;
use crate::store_schema::StoreSchema;

/// What the artifact side of a purge did, or with `--dry-run` would do.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ArtifactReport {
    /// Locations deleted (would be, with `--dry-run`), and what they held.
    pub locations: u64,
    pub objects: u64,
    pub bytes: u64,
    /// With `--dry-run`: each location and what it holds.
    pub listed: Vec<ListedLocation>,
    /// Entities that keep their rows because their artifacts could not go, and why.
    pub kept: Vec<KeptEntity>,
    /// Locations the store names that could not be resolved (an `mlflow-artifacts:` URI
    /// without --artifacts-destination, a relative path), so no deletion was checked
    /// against them.
    pub unresolved: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedLocation {
    pub entity: Entity,
    pub id: String,
    pub location: String,
    pub objects: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeptEntity {
    pub entity: Entity,
    pub id: String,
    pub error: String,
}

/// What a sweep does with each location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delete it: a purge.
    Delete,
    /// Size it and list it: a dry run, whose rolled-back deletes still tell which experiments
    /// keep some of their entities.
    Size,
    /// Size it, reading only: `status`, for which every experiment in scope goes whole.
    Measure,
}

impl From<Mode> for Action {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Delete => Action::Delete,
            Mode::DryRun => Action::Size,
        }
    }
}

/// The artifact side of one purge: resolves, checks and deletes (or, in a dry run, sizes).
pub struct ArtifactSweep {
    resolver: Resolver,
    store: ArtifactStore,
    action: Action,
    /// Every location the store names, less those of the entities already purged.
    index: LocationIndex,
    /// The locations of the current batch's purged entities, dropped from the index once
    /// their rows are gone.
    purged: Vec<Location>,
}

impl ArtifactSweep {
    /// Indexes every artifact location the store names. Run it after taking the purge lock.
    pub fn new(
        conn: &mut DbConnection,
        schema: &StoreSchema,
        resolver: Resolver,
        store: ArtifactStore,
        action: Action,
        report: &mut ArtifactReport,
    ) -> Result<Self> {
        let mut uris: Vec<Option<String>> = runs::table.select(runs::artifact_uri).load(conn)?;
        uris.extend(experiments::table.select(experiments::artifact_location).load(conn)?);
        if schema.has_table("logged_models") {
            let models: Vec<String> =
                logged_models::table.select(logged_models::artifact_location).load(conn)?;
            uris.extend(models.into_iter().map(Some));
        }
        if schema.has_table("trace_tags") {
            uris.extend(
                trace_tags::table
                    .filter(trace_tags::key.eq(TRACE_ARTIFACT_LOCATION_TAG))
                    .select(trace_tags::value)
                    .load(conn)?,
            );
        }
        if schema.has_table("model_versions") {
            uris.extend(model_versions::table.select(model_versions::source).load(conn)?);
            if schema.model_version_storage_location {
                uris.extend(
                    model_versions::table.select(model_versions::storage_location).load(conn)?,
                );
            }
        }
        let mut index = LocationIndex::default();
        for uri in uris.iter().flatten() {
            match resolver.locate(uri) {
                Ok(location) => index.insert(&location),
                // Another store's URI (or `runs:/`, `models:/`): nothing in it is ours.
                Err(ArtifactError::Unsupported { .. }) => {}
                Err(_) => report.unresolved += 1,
            }
        }
        if report.unresolved > 0 {
            warn!(
                locations = report.unresolved,
                "artifact locations in the store could not be resolved and are not checked"
            );
        }
        Ok(ArtifactSweep { resolver, store, action, index, purged: Vec::new() })
    }

    /// Deletes (or sizes) the artifacts of a locked batch and returns the ids that must keep
    /// their rows.
    pub fn sweep<Id: Display + Ord + Clone>(
        &mut self,
        conn: &mut DbConnection,
        scope: &Scope,
        entity: Entity,
        batch: &[Located<Id>],
        report: &mut ArtifactReport,
    ) -> Result<BTreeSet<Id>> {
        let mut kept = BTreeSet::new();
        let mut keep = |report: &mut ArtifactReport, id: &Id, error: String| {
            warn!(entity = entity.name(), entity.id = %id, error, "kept: its artifacts stay");
            report.kept.push(KeptEntity { entity, id: id.to_string(), error });
            kept.insert(id.clone());
        };
        let experiments: BTreeSet<i32> =
            batch.iter().filter_map(|located| located.experiment.as_ref().map(|e| e.0)).collect();
        let experiments: Vec<i32> = experiments.into_iter().collect();
        // Experiments the same purge deletes: their trees take their entities' artifacts.
        let doomed = scope.experiments_in_scope_among(conn, &experiments)?;
        let held = if entity == Entity::Experiment && self.action != Action::Measure {
            let ids: Vec<i32> =
                batch.iter().filter_map(|l| l.id.to_string().parse().ok()).collect();
            experiments_with_entities(conn, scope.schema(), &ids)?
        } else {
            BTreeSet::new()
        };
        // The batch's own locations are not "live" for one another.
        let mut own: HashMap<String, u32> = HashMap::new();
        let mut purged = Vec::new();
        let mut actions = Vec::new();
        for located in batch {
            let Some(uri) = &located.uri else { continue };
            let location = self.resolver.locate(uri);
            if let Ok(location) = &location {
                *own.entry(location.key()).or_default() += 1;
            }
            if held.contains(&located.id.to_string()) {
                let error = "some of its runs, traces or logged models were kept (see their \
                             errors): its artifacts stay until they go";
                keep(report, &located.id, error.to_owned());
                continue;
            }
            match self.deletion(located, uri, &doomed) {
                Ok(Some(target)) => actions.push((located, target, location.ok())),
                Ok(None) => purged.extend(location.ok()),
                Err(error) => keep(report, &located.id, error.to_string()),
            }
        }
        for (located, target, location) in actions {
            let started = Instant::now();
            let done = self.live_inside(&target, &own).and_then(|()| match self.action {
                Action::Delete => self.store.delete_tree(&target),
                Action::Size | Action::Measure => self.store.size(&target),
            });
            match done {
                Ok(usage) => {
                    info!(
                        entity = entity.name(),
                        entity.id = %located.id,
                        location = %target,
                        objects = usage.objects,
                        bytes = usage.bytes,
                        duration_ms = started.elapsed().as_millis() as u64,
                        dry_run = self.action != Action::Delete,
                        "artifacts deleted"
                    );
                    report.locations += 1;
                    report.objects += usage.objects;
                    report.bytes += usage.bytes;
                    if self.action == Action::Size {
                        report.listed.push(ListedLocation {
                            entity,
                            id: located.id.to_string(),
                            location: target.to_string(),
                            objects: usage.objects,
                            bytes: usage.bytes,
                        });
                    }
                    purged.extend(location);
                }
                Err(error) => keep(report, &located.id, error.to_string()),
            }
        }
        self.purged = purged;
        Ok(kept)
    }

    /// The batch's rows are gone (or, in a dry run, would be): its locations no longer count
    /// as live.
    pub fn batch_done(&mut self) {
        for location in self.purged.drain(..) {
            self.index.remove(&location);
        }
    }

    /// The location to delete for one entity: `None` when its experiment's tree takes it.
    fn deletion<Id>(
        &self,
        located: &Located<Id>,
        uri: &str,
        doomed: &BTreeSet<i32>,
    ) -> Result<Option<Location>, ArtifactError> {
        let target = self.resolver.resolve(uri)?;
        let Some((experiment_id, experiment_uri)) = &located.experiment else {
            return Ok(Some(target));
        };
        let outside = || ArtifactError::OutsideExperiment {
            uri: uri.to_owned(),
            experiment: experiment_uri.clone().unwrap_or_default(),
        };
        let experiment = experiment_uri.as_deref().ok_or_else(outside)?;
        let experiment = self.resolver.locate(experiment).map_err(|_| outside())?;
        if !experiment.contains(&target) {
            return Err(outside());
        }
        Ok(if doomed.contains(experiment_id) { None } else { Some(target) })
    }

    /// Refuses `target` when a location the store still names, other than the batch's own,
    /// lies inside it.
    fn live_inside(
        &self,
        target: &Location,
        own: &HashMap<String, u32>,
    ) -> Result<(), ArtifactError> {
        let mut live = Vec::new();
        let mut count = 0;
        for (key, n) in self.index.inside(target) {
            let others = n.saturating_sub(own.get(key).copied().unwrap_or(0));
            if others > 0 {
                count += others as usize;
                if live.len() < 3 {
                    live.push(key.to_owned());
                }
            }
        }
        if count == 0 {
            return Ok(());
        }
        Err(ArtifactError::LiveInside { location: target.to_string(), count, first: live })
    }
}

/// What `purge --artifacts` would delete from the artifact stores, read without writing (for
/// `status`): the locations of the entities in `scope`, phase by phase, sized.
pub fn measure(
    conn: &mut DbConnection,
    scope: &Scope,
    sweep: &mut ArtifactSweep,
    report: &mut ArtifactReport,
) -> Result<()> {
    let mut pass = MeasurePass { conn, scope, sweep, report };
    pass.phase(&RUNS, String::new(), |c, after, n| scope.next_runs(c, after, n))?;
    pass.phase(&TRACES, String::new(), |c, after, n| scope.next_traces(c, after, n))?;
    pass.phase(&LOGGED_MODELS, String::new(), |c, after, n| scope.next_logged_models(c, after, n))?;
    pass.phase(&EXPERIMENTS, i32::MIN, |c, after, n| scope.next_experiments(c, *after, n))
}

struct MeasurePass<'a> {
    conn: &'a mut DbConnection,
    scope: &'a Scope,
    sweep: &'a mut ArtifactSweep,
    report: &'a mut ArtifactReport,
}

impl MeasurePass<'_> {
    fn phase<Id: Clone + Display + Ord>(
        &mut self,
        phase: &Phase<Id>,
        mut after: Id,
        next_batch: impl Fn(&mut DbConnection, &Id, i64) -> QueryResult<Vec<Id>>,
    ) -> Result<()> {
        let Some(artifacts) = &phase.artifacts else { return Ok(()) };
        loop {
            let ids = next_batch(self.conn, &after, MEASURE_BATCH)?;
            let Some(last) = ids.last() else { return Ok(()) };
            after = last.clone();
            let located = (artifacts.locate)(self.conn, &ids)?;
            self.sweep.sweep(self.conn, self.scope, phase.entity, &located, self.report)?;
            self.sweep.batch_done();
        }
    }
}

const MEASURE_BATCH: i64 = 500;

/// The experiments among `ids` that still have runs, traces or logged models.
fn experiments_with_entities(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    ids: &[i32],
) -> Result<BTreeSet<String>> {
    let mut held: Vec<i32> = runs::table
        .filter(runs::experiment_id.assume_not_null().eq_any(ids))
        .select(runs::experiment_id.assume_not_null())
        .distinct()
        .load(conn)?;
    if schema.has_table("trace_info") {
        held.extend(
            trace_info::table
                .filter(trace_info::experiment_id.eq_any(ids))
                .select(trace_info::experiment_id)
                .distinct()
                .load::<i32>(conn)?,
        );
    }
    if schema.has_table("logged_models") {
        held.extend(
            logged_models::table
                .filter(logged_models::experiment_id.eq_any(ids))
                .select(logged_models::experiment_id)
                .distinct()
                .load::<i32>(conn)?,
        );
    }
    Ok(held.into_iter().map(|id| id.to_string()).collect())
}
