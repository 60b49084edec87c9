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
//! - Each entity's own location, each in its own phase: runs, traces and logged models first,
//!   then an experiment's whole tree (what is left of it). A run's `artifact_uri`, a trace's
//!   `mlflow.artifactLocation` tag and a logged model's `artifact_location` must lie inside their
//!   experiment's `artifact_location`, as MLflow puts them: anything else is refused.
//! - An experiment's tree goes only once its runs, traces and logged models are gone.
//! - No location goes while a location the store still names lies inside it: a staying entity's,
//!   or a live model version's source (`runs:/` and `models:/` sources protect the whole run or
//!   model). The store's locations are read once, when the purge starts, into an ordered index
//!   (in memory: `cargo bench --bench purge` measures it), and an entity's are dropped from it
//!   once its rows are gone.
//! - While the store names a location that may lie anywhere but cannot be resolved (an
//!   `mlflow-artifacts:` URI without --artifacts-destination, an `http(s)://` one), nothing is
//!   deleted: no check could be made against it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Display;
use std::time::Instant;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use tracing::{debug, info, warn};

use crate::artifacts::{ArtifactError, ArtifactStore, Location, LocationIndex, Resolver, Usage};
use crate::error::{Error, Result};
use crate::mlflow::{ExperimentId, DELETED_MODEL_VERSION, TRACE_ARTIFACT_LOCATION_TAG};
use crate::plan::{
    experiments_in_scope_among, visit_phases, Container, Entity, EntityId, Located, Phase,
    PhaseVisitor, DEFAULT_BATCH_SIZE,
};
use crate::schema::{experiments, logged_models, model_versions, runs, trace_info, trace_tags};
use crate::scope::Scope;
use crate::store::revision::StoreSchema;
use crate::store::DbConnection;

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
    /// Size it and list it: a dry run.
    Size,
    /// Size it, reading only: `status`, for which every experiment in scope goes whole.
    Measure,
}

/// The artifact side of one purge: resolves, checks and deletes (or, in a dry run, sizes).
pub struct ArtifactSweep {
    resolver: Resolver,
    store: ArtifactStore,
    action: Action,
    /// Every location the store names, less those of the entities already purged.
    index: LocationIndex,
    /// The first location the store names that may lie anywhere and cannot be resolved.
    unchecked: Option<String>,
    /// The locations of the current batch's purged entities, dropped from the index once
    /// their rows are gone.
    purged: Vec<Location>,
    /// When sizing: bytes already counted for the entities of each experiment the purge
    /// deletes, so that the experiment's tree counts only the rest, as a purge would find it.
    counted_in: HashMap<ExperimentId, Usage>,
    /// The experiments of the entities kept so far. A dry run deletes nothing, so these, not
    /// the store, tell which experiments would keep some of their entities.
    kept_in: HashSet<ExperimentId>,
}

impl ArtifactSweep {
    /// Indexes every artifact location the store names. Run it once the purge holds the
    /// store's lock.
    pub fn new(
        conn: &mut DbConnection,
        schema: &StoreSchema,
        resolver: Resolver,
        store: ArtifactStore,
        action: Action,
        report: &mut ArtifactReport,
    ) -> Result<Self> {
        let mut index = StoreIndex {
            resolver: &resolver,
            index: LocationIndex::default(),
            unchecked: None,
            report,
        };
        // Live model versions first: a `runs:/` or `models:/m-...` source protects that run's or
        // model's whole location.
        let mut protected = BTreeSet::new();
        if schema.has_table("model_versions") {
            let live = model_versions::current_stage
                .is_null()
                .or(model_versions::current_stage.ne(DELETED_MODEL_VERSION));
            let sources = model_versions::table.filter(live).select(model_versions::source);
            index.add_references(
                sources.load_iter::<Option<String>, DefaultLoadingMode>(conn)?,
                &mut protected,
            )?;
            if schema.model_version_storage_location {
                let stored =
                    model_versions::table.filter(live).select(model_versions::storage_location);
                index.add_references(
                    stored.load_iter::<Option<String>, DefaultLoadingMode>(conn)?,
                    &mut protected,
                )?;
            }
        }
        let runs = runs::table.select((runs::run_uuid, runs::artifact_uri));
        index.add_owned(
            runs.load_iter::<(String, Option<String>), DefaultLoadingMode>(conn)?,
            &protected,
        )?;
        let experiments = experiments::table.select(experiments::artifact_location);
        index.add(experiments.load_iter::<Option<String>, DefaultLoadingMode>(conn)?)?;
        if schema.has_table("logged_models") {
            let models = logged_models::table
                .select((logged_models::model_id, logged_models::artifact_location.nullable()));
            index.add_owned(
                models.load_iter::<(String, Option<String>), DefaultLoadingMode>(conn)?,
                &protected,
            )?;
        }
        if schema.has_table("trace_tags") {
            let traces = trace_tags::table
                .filter(trace_tags::key.eq(TRACE_ARTIFACT_LOCATION_TAG))
                .select(trace_tags::value);
            index.add(traces.load_iter::<Option<String>, DefaultLoadingMode>(conn)?)?;
        }
        let StoreIndex { index, unchecked, .. } = index;
        if report.unresolved > 0 {
            warn!(
                locations = report.unresolved,
                "artifact locations in the store could not be resolved"
            );
        }
        Ok(ArtifactSweep {
            resolver,
            store,
            action,
            index,
            unchecked,
            purged: Vec::new(),
            counted_in: HashMap::new(),
            kept_in: HashSet::new(),
        })
    }

    /// Deletes (or sizes) the artifacts of a locked batch and returns the ids that must keep
    /// their rows. `located` is what the phase's `locate` found for `ids`.
    pub fn sweep<Id: Display + Ord + Clone>(
        &mut self,
        conn: &mut DbConnection,
        scope: &Scope,
        entity: Entity,
        ids: &[Id],
        located: &[Located<Id>],
        report: &mut ArtifactReport,
    ) -> Result<BTreeSet<Id>> {
        let mut kept = BTreeSet::new();
        let mut keep = |report: &mut ArtifactReport, id: &Id, error: String| {
            warn!(entity = entity.name(), entity.id = %id, error, "kept: its artifacts stay");
            report.kept.push(KeptEntity { entity, id: id.to_string(), error });
            kept.insert(id.clone());
        };
        let found: BTreeSet<&Id> = located.iter().map(|l| &l.id).collect();
        for id in ids.iter().filter(|id| !found.contains(id)) {
            keep(
                report,
                id,
                "its experiment could not be found, so neither could its artifacts".into(),
            );
        }
        // Experiments' own trees (`status` measures every experiment in scope whole).
        let roots: Vec<ExperimentId> = located
            .iter()
            .filter(|l| matches!(l.container, Container::Root))
            .map(|l| l.experiment.clone())
            .collect();
        let held = match self.action {
            Action::Delete => experiments_with_entities(conn, scope.schema(), &roots)?,
            Action::Size => roots.into_iter().filter(|e| self.kept_in.contains(e)).collect(),
            Action::Measure => BTreeSet::new(),
        };
        let mut targets = Vec::new();
        for located in located {
            let root = matches!(located.container, Container::Root);
            if root && held.contains(&located.experiment) {
                let error = "some of its runs, traces or logged models were kept (see their \
                             errors): its artifacts stay until they go";
                keep(report, &located.id, error.to_owned());
                continue;
            }
            let Some(uri) = &located.uri else { continue };
            match self.target(located, uri) {
                Ok((target, experiment)) => targets.push((located, target, experiment)),
                Err(error) => keep(report, &located.id, error.to_string()),
            }
        }
        // The batch's own locations are not "live" for one another.
        let mut own: HashMap<String, u32> = HashMap::new();
        for (_, target, _) in &targets {
            *own.entry(target.key()).or_default() += 1;
        }
        let experiments: BTreeSet<&ExperimentId> = targets
            .iter()
            .filter(|(l, ..)| matches!(l.container, Container::Experiment(_)))
            .map(|(l, ..)| &l.experiment)
            .collect();
        let experiments: Vec<ExperimentId> = experiments.into_iter().cloned().collect();
        let sized_for_later = if self.action == Action::Delete {
            BTreeSet::new()
        } else {
            experiments_in_scope_among(scope, conn, &experiments)?
        };
        let mut purged = Vec::new();
        for (located, target, experiment) in targets {
            let started = Instant::now();
            let done = self.check(&target, &own).and_then(|()| match self.action {
                Action::Delete => {
                    let usage = self.store.delete_tree(&target)?;
                    if let Some(experiment) = &experiment {
                        self.store.prune_empty_parents(&target, experiment);
                    }
                    Ok(usage)
                }
                Action::Size | Action::Measure => self.store.size(&target),
            });
            let mut usage = match done {
                Ok(usage) => usage,
                Err(error) => {
                    keep(report, &located.id, error.to_string());
                    continue;
                }
            };
            match &located.container {
                Container::Experiment(_) if sized_for_later.contains(&located.experiment) => {
                    self.counted_in.entry(located.experiment.clone()).or_default().add_up(usage);
                }
                Container::Root => {
                    let counted = self.counted_in.remove(&located.experiment);
                    usage = usage.less(counted.unwrap_or_default());
                }
                Container::Experiment(_) => {}
            }
            // A deletion is news for the log; a size is for the report (debug level).
            let duration_ms = started.elapsed().as_millis() as u64;
            if self.action == Action::Delete {
                info!(entity = entity.name(), entity.id = %located.id, location = %target,
                      objects = usage.objects, bytes = usage.bytes, duration_ms, "artifacts deleted");
            } else {
                debug!(entity = entity.name(), entity.id = %located.id, location = %target,
                       objects = usage.objects, bytes = usage.bytes, duration_ms, "artifacts sized");
            }
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
            purged.push(target);
        }
        self.purged = purged;
        let kept_in = located.iter().filter(|l| matches!(l.container, Container::Experiment(_)));
        for l in kept_in.filter(|l| kept.contains(&l.id)) {
            self.kept_in.insert(l.experiment.clone());
        }
        Ok(kept)
    }

    /// The batch's rows are gone (or, in a dry run, would be): its locations no longer count
    /// as live.
    pub fn batch_done(&mut self) {
        for location in self.purged.drain(..) {
            self.index.remove(&location);
        }
    }

    /// The location to delete for one entity, its own, and its experiment's, which must hold it.
    fn target<Id>(
        &self,
        located: &Located<Id>,
        uri: &str,
    ) -> Result<(Location, Option<Location>), ArtifactError> {
        let target = self.resolver.resolve(uri)?;
        let Container::Experiment(experiment_uri) = &located.container else {
            return Ok((target, None));
        };
        let outside = || ArtifactError::OutsideExperiment {
            uri: uri.to_owned(),
            experiment: experiment_uri.clone().unwrap_or_default(),
        };
        let experiment = self.resolver.locate(experiment_uri.as_deref().ok_or_else(outside)?)?;
        if !experiment.contains(&target) {
            return Err(outside());
        }
        Ok((target, Some(experiment)))
    }

    /// Refuses `target` while the store names a location that cannot be checked, or when a
    /// location it names, other than the batch's own, lies inside `target`.
    fn check(&self, target: &Location, own: &HashMap<String, u32>) -> Result<(), ArtifactError> {
        if let Some(first) = &self.unchecked {
            return Err(ArtifactError::Unchecked {
                location: target.to_string(),
                first: first.clone(),
            });
        }
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

/// Builds the index of the locations a store names.
struct StoreIndex<'a> {
    resolver: &'a Resolver,
    index: LocationIndex,
    unchecked: Option<String>,
    report: &'a mut ArtifactReport,
}

impl StoreIndex<'_> {
    fn add_one(&mut self, uri: &str) {
        match self.resolver.locate(uri) {
            Ok(location) => self.index.insert(&location),
            // Another store: nothing in it is what a purge deletes.
            Err(ArtifactError::Unsupported { scheme, .. })
                if !matches!(scheme.as_str(), "http" | "https") => {}
            Err(error) => {
                self.report.unresolved += 1;
                // A relative or `..` path names no place that a deletion could reach for sure;
                // a proxied one could be anywhere in the stores.
                if !matches!(error, ArtifactError::Refused { .. }) && self.unchecked.is_none() {
                    self.unchecked = Some(uri.to_owned());
                }
            }
        }
    }

    fn add(&mut self, uris: impl Iterator<Item = QueryResult<Option<String>>>) -> Result<()> {
        for uri in uris {
            if let Some(uri) = uri? {
                self.add_one(&uri);
            }
        }
        Ok(())
    }

    /// Entities' locations; those of `protected` entities count twice, so that their own
    /// purge finds one left.
    fn add_owned(
        &mut self,
        rows: impl Iterator<Item = QueryResult<(String, Option<String>)>>,
        protected: &BTreeSet<String>,
    ) -> Result<()> {
        for row in rows {
            let (id, uri) = row?;
            let Some(uri) = uri else { continue };
            self.add_one(&uri);
            if protected.contains(&id) {
                self.add_one(&uri);
            }
        }
        Ok(())
    }

    /// Model version sources: locations, or `runs:/ID/...` and `models:/m-ID` references,
    /// whose ids go to `protected`.
    fn add_references(
        &mut self,
        uris: impl Iterator<Item = QueryResult<Option<String>>>,
        protected: &mut BTreeSet<String>,
    ) -> Result<()> {
        for uri in uris {
            let Some(uri) = uri? else { continue };
            let reference = uri
                .strip_prefix("runs:/")
                .or_else(|| uri.strip_prefix("models:/").filter(|rest| rest.starts_with("m-")));
            match reference {
                Some(rest) => {
                    let id = rest.trim_start_matches('/').split('/').next().unwrap_or_default();
                    protected.insert(id.to_owned());
                }
                // `models:/NAME/VERSION` names another version, indexed with its own source.
                None if uri.starts_with("models:/") => {}
                None => self.add_one(&uri),
            }
        }
        Ok(())
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
    visit_phases(&mut MeasurePass { conn, scope, sweep, report })
}

struct MeasurePass<'a> {
    conn: &'a mut DbConnection,
    scope: &'a Scope,
    sweep: &'a mut ArtifactSweep,
    report: &'a mut ArtifactReport,
}

impl PhaseVisitor for MeasurePass<'_> {
    type Error = Error;

    fn phase<Id: EntityId>(&mut self, phase: &'static Phase<Id>) -> Result<()> {
        let Some(artifacts) = &phase.artifacts else { return Ok(()) };
        let (scope, sweep, report) = (self.scope, &mut *self.sweep, &mut *self.report);
        phase.for_each_page(scope, self.conn, DEFAULT_BATCH_SIZE as i64, |conn, ids| {
            let located = (artifacts.locate)(conn, ids)?;
            sweep.sweep(conn, scope, phase.entity, ids, &located, report)?;
            sweep.batch_done();
            Ok(())
        })
    }
}

/// The experiments among `ids` that still have runs, traces or logged models.
fn experiments_with_entities(
    conn: &mut DbConnection,
    schema: &StoreSchema,
    ids: &[ExperimentId],
) -> Result<BTreeSet<ExperimentId>> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut held: Vec<ExperimentId> = runs::table
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
                .load::<ExperimentId>(conn)?,
        );
    }
    if schema.has_table("logged_models") {
        held.extend(
            logged_models::table
                .filter(logged_models::experiment_id.eq_any(ids))
                .select(logged_models::experiment_id)
                .distinct()
                .load::<ExperimentId>(conn)?,
        );
    }
    Ok(held.into_iter().collect())
}
