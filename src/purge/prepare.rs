//! The purge's safety sequence, in the one order every caller gets: connect; take the store's
//! lock before anything can wait on the database's own locks; bound the session; check the
//! schema, that the store can be written and that the plan covers every reference to what it
//! deletes; resolve and count what goes. Then the confirmation; only after it the index of live
//! artifact locations and the batches; with `--reclaim`, after the last batch and still under
//! the lock, the space they freed given back. A dry run's session is read-only from the start: it takes
//! no lock and needs no right to write, so it also runs on a standby or as a read-only user. The
//! command line, the tests and the benches all purge through here: [`Prepared::prepare`],
//! [`Prepared::confirm`], [`Confirmed::run`].

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::reclaim::Bounds;
use super::{Mode, Options, Reclaim, Report, DEFAULT_BATCH_SIZE, DEFAULT_LOCK_TIMEOUT};
use crate::archive::{ArchiveWriter, Place};
use crate::artifacts::sweep::ArtifactSweep;
use crate::artifacts::{ArtifactStore, CloudConfig, Resolver};
use crate::error::{Error, Result};
use crate::plan::{count_in_scope, tables_in, Entity};
use crate::scope::{Scope, ScopeRequest};
use crate::store::revision::{StoreSchema, UnknownRevision};
use crate::store::{self, space, DbConnection, DbPool, StoreLock, StoreUri};

/// Where a purge with artifacts finds them.
#[derive(Debug, Clone)]
pub struct ArtifactSettings {
    /// How `mlflow-artifacts:` and relative locations resolve.
    pub resolver: Resolver,
    /// The object stores' settings, as MLflow's environment gives them.
    pub cloud: CloudConfig,
}

/// What a purge is asked to do, and within which bounds.
#[derive(Debug, Clone)]
pub struct Settings {
    pub uri: StoreUri,
    pub request: ScopeRequest,
    pub mode: Mode,
    /// Entities per transaction, at most [`super::MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// Stop between batches once this long has passed since [`Prepared::prepare`] began.
    pub max_duration: Option<Duration>,
    /// A pause after each batch, to leave the database to the tracking server.
    pub throttle: Duration,
    /// Batches run at once, each on a connection of its own. SQLite, a dry run, artifacts and an
    /// archive run one (and say so).
    pub jobs: usize,
    /// How long a statement may wait for a lock the tracking server holds (zero: the server's).
    pub lock_timeout: Duration,
    /// How long a statement may run (zero: the server's setting).
    pub statement_timeout: Duration,
    pub unknown_revision: UnknownRevision,
    /// With artifacts: each batch's go first, and an entity whose artifacts stay keeps its rows.
    pub artifacts: Option<ArtifactSettings>,
    /// Archive every row before it goes, in a new archive there (not in a dry run).
    pub archive: Option<Place>,
    /// After the last batch, give back the space of the purged rows (not in a dry run).
    pub reclaim: Option<Reclaim>,
}

impl Settings {
    /// A purge of `request` in the store at `uri`, with the command line's defaults.
    pub fn new(uri: StoreUri, request: ScopeRequest, mode: Mode) -> Self {
        Settings {
            uri,
            request,
            mode,
            batch_size: DEFAULT_BATCH_SIZE,
            max_duration: None,
            throttle: Duration::ZERO,
            jobs: 1,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Duration::ZERO,
            unknown_revision: UnknownRevision::Refuse,
            artifacts: None,
            archive: None,
            reclaim: None,
        }
    }

    /// The pool that runs batches at once, for `jobs` above one. Not on SQLite, which has one
    /// writer; not for a dry run, whose counts need each shared row seen once in order; not
    /// with artifacts or an archive, which each batch writes in turn. Those run one job, and
    /// say so.
    fn workers(&self, backend: store::Backend) -> Option<DbPool> {
        if self.jobs <= 1 {
            return None;
        }
        let one_job = |why: &str| warn!(jobs = self.jobs, "one job: {why}");
        if backend == store::Backend::Sqlite {
            one_job("SQLite has one writer at a time");
        } else if self.mode == Mode::DryRun {
            one_job("a dry run counts its batches in turn");
        } else if self.artifacts.is_some() {
            one_job("--artifacts deletes each batch's artifacts in turn");
        } else if self.archive.is_some() {
            one_job("--archive writes each batch in turn");
        } else {
            return Some(self.uri.writers_pool(
                self.jobs as u32,
                self.lock_timeout,
                self.statement_timeout,
            ));
        }
        None
    }
}

/// A purge connected, locked, checked and counted. Nothing is deleted yet.
pub struct Prepared {
    conn: DbConnection,
    /// Held until the purge ends: no other writer of the store runs meanwhile. None for a dry
    /// run.
    lock: Option<StoreLock>,
    schema: StoreSchema,
    scope: Scope,
    counts: BTreeMap<Entity, i64>,
    settings: Settings,
    started: Instant,
}

impl Prepared {
    /// Runs the sequence up to the confirmation. `report` learns the store's MLflow version and
    /// the deleted experiments that stay; it is the caller's, to report a failure too.
    pub fn prepare(settings: Settings, report: &mut Report) -> Result<Prepared> {
        let started = Instant::now();
        let uri = &settings.uri;
        // One connection does the whole job: batches run one after another.
        let mut conn = uri.establish()?;
        // First: a second purge must not wait on the first one's database locks to learn of it.
        let writes = settings.mode == Mode::Delete;
        if !writes {
            store::read_only_session(&mut conn)?;
        }
        let lock = writes.then(|| store::lock_store(&mut conn, uri)).transpose()?;
        // Before the checks: the writability probe waits for locks too.
        store::limit_session(&mut conn, settings.lock_timeout, settings.statement_timeout)?;
        let schema = crate::preflight(&mut conn, uri, settings.unknown_revision, writes)?;
        if writes {
            store::delete_through_indexes(&mut conn)?;
        }
        report.mlflow_version = schema.mlflow_version;
        let (scope, blocked) = Scope::resolve(&mut conn, &schema, &settings.request)?;
        for b in &blocked {
            warn!(experiment.id = b.experiment_id, reason = b.reason, "experiment kept");
        }
        report.blocked = blocked;
        let counts = count_in_scope(&scope, &mut conn)?;
        match (settings.reclaim, uri.sqlite_file()) {
            (Some(_), _) if !writes => warn!("a dry run reclaims nothing: --reclaim is ignored"),
            (Some(Reclaim::Full), _) if uri.backend() == store::Backend::Postgresql => warn!(
                "--reclaim full rebuilds MySQL's tables; PostgreSQL gets VACUUM (ANALYZE), as \
                 VACUUM FULL would lock each table for its whole rewrite (pg_repack rewrites online)"
            ),
            // Before anything is deleted: a VACUUM without room would fail after the purge.
            (Some(_), Some(file)) => {
                let space = space::measure(&mut conn, &[])?;
                space::check_room_to_vacuum(file, space.file.unwrap_or_default())?;
            }
            _ => {}
        }
        Ok(Prepared { conn, lock, schema, scope, counts, settings, started })
    }

    /// Asks `confirm` before a purge that deletes something, with what would go; its error
    /// ends the purge with nothing deleted. A dry run, or a purge with nothing to delete, needs
    /// no confirmation.
    pub fn confirm(
        self,
        confirm: impl FnOnce(&BTreeMap<Entity, i64>) -> Result<()>,
    ) -> Result<Confirmed> {
        if self.settings.mode == Mode::Delete && self.counts.values().sum::<i64>() > 0 {
            confirm(&self.counts)?;
        }
        Ok(Confirmed(self))
    }
}

/// A purge that may run: prepared, and confirmed where it deletes.
pub struct Confirmed(Prepared);

impl Confirmed {
    /// How many entities the batches will go through.
    pub fn entities(&self) -> u64 {
        self.0.counts.values().sum::<i64>().max(0) as u64
    }

    /// Runs the batches. An error once they started is [`crate::Error::PartlyDone`], the
    /// deadline [`crate::Error::NotFinished`], a stop [`crate::Error::Interrupted`]: the
    /// batches before it stay committed, whole. `stop_signal`, once set to a signal's number,
    /// stops them between two; `progress` hears each batch's entities.
    pub fn run(
        self,
        stop_signal: Option<Arc<AtomicUsize>>,
        report: &mut Report,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let entities = self.entities();
        let Prepared { mut conn, lock, schema, scope, settings, started, .. } = self.0;
        let workers = settings.workers(conn.backend());
        let mut archive = match settings.archive {
            Some(root) if settings.mode == Mode::Delete && entities > 0 => {
                let purge = serde_json::json!({
                    "request": settings.request,
                    "batch_size": settings.batch_size,
                    "artifacts": settings.artifacts.is_some(),
                });
                let writer = ArchiveWriter::create(root, &mut conn, &settings.uri, &schema, purge)?;
                report.archive = Some(writer.location());
                Some(writer)
            }
            _ => None,
        };
        // After the confirmation: the index of live locations is as fresh as it can be.
        let mut sweep = match settings.artifacts {
            Some(artifacts) => Some(ArtifactSweep::new(
                &mut conn,
                &schema,
                artifacts.resolver,
                ArtifactStore::new(artifacts.cloud)?,
                settings.mode.into(),
                report.artifacts.get_or_insert_default(),
            )?),
            None => None,
        };
        // After the confirmation, before the first batch: what the purge starts from.
        let space_before = match settings.reclaim {
            Some(_) if settings.mode == Mode::Delete => {
                Some(space::measure(&mut conn, &tables_in(&schema))?)
            }
            _ => None,
        };
        let options = Options {
            mode: settings.mode,
            batch_size: settings.batch_size,
            deadline: settings.max_duration.map(|limit| started + limit),
            throttle: settings.throttle,
            stop_signal,
            workers,
        };
        let mut result = super::run(
            &mut conn,
            &scope,
            &options,
            sweep.as_mut(),
            archive.as_mut(),
            report,
            progress,
        );
        // Only after a purge that went to its end: a stopped one is rerun, and reclaims then.
        if let (Some(reclaim), Some(before), Ok(()) | Err(Error::EntitiesKept { .. })) =
            (settings.reclaim, space_before, &result)
        {
            // A rerun with nothing left to purge reclaims every table a purge deletes from.
            let touched = report.touched_tables();
            let tables = if touched.is_empty() { tables_in(&schema) } else { touched };
            let bounds = Bounds {
                options: &options,
                lock_timeout: settings.lock_timeout,
                statement_timeout: settings.statement_timeout,
                batches: report.batches,
            };
            match super::reclaim::reclaim(&mut conn, &tables, reclaim, &bounds, &before) {
                Ok(reclaimed) => report.reclaim = Some(reclaimed),
                Err(e) if result.is_ok() => result = Err(e),
                Err(e) => warn!("{e}"),
            }
        }
        drop(lock);
        result
    }
}
