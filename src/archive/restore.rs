//! Puts archived entities back as they were when purged: soft-deleted, for MLflow's own restore
//! to bring back to life. Newest archive first, each one's batches last to first, so parents
//! (experiments, purged after their runs) come back before their children; one transaction per
//! batch, and within it each step's rows in the reverse of the order they were deleted in.
//!
//! Nothing is overwritten: an entity whose key the store holds already is left out (reported
//! as already there when the store's row is the archived one, as taken otherwise), and so is an
//! experiment whose name another holds, or a run, trace or model whose experiment is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::{
    archives_at, from_json, BatchRecord, FileRecord, Header, Place, Record, FORMAT, MANIFEST,
};
use crate::error::{ArchiveError, Error, Result};
use crate::plan::{steps_in_order, Entity, Owner};
use crate::store::revision::{StoreSchema, UnknownRevision, KNOWN_SCHEMAS};
use crate::store::rows::{advance_sequences, insert_rows, rows_by_key, TableColumns, Value};
use crate::store::{self, catalog, write_transaction, DbConnection, StoreUri};
use crate::Backend;

/// Rows per insert statement, at most (fewer when the bind limit says so).
const INSERT_ROWS: usize = 1_000;

/// Which of an archive's entities to restore; all when nothing is named.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreRequest {
    /// Experiments, with their runs, traces and logged models.
    pub experiment_ids: Vec<String>,
    /// Likewise, by name (as the archive or the store has it).
    pub experiment_names: Vec<String>,
    pub run_ids: Vec<String>,
}

impl RestoreRequest {
    fn is_whole(&self) -> bool {
        self.experiment_ids.is_empty()
            && self.experiment_names.is_empty()
            && self.run_ids.is_empty()
    }
}

/// What a restore is asked to do.
#[derive(Debug, Clone)]
pub struct RestoreSettings {
    pub uri: StoreUri,
    /// An archive, or a directory of archives.
    pub archive: Place,
    pub request: RestoreRequest,
    /// Say what would come back, writing nothing.
    pub dry_run: bool,
    pub lock_timeout: Duration,
}

/// An entity that stays out, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeftOut {
    pub entity: Entity,
    pub id: String,
    pub why: String,
}

/// What a restore put back, or with `--dry-run` would.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    pub archives: Vec<String>,
    pub store: String,
    pub dry_run: bool,
    /// Entities restored, by kind.
    pub entities: BTreeMap<Entity, u64>,
    pub rows_by_table: BTreeMap<String, u64>,
    /// Entities the store holds already, just as archived (restored before).
    pub already_present: BTreeMap<Entity, u64>,
    /// Entities that stay out: their key or name is taken, or their experiment is gone.
    pub left_out: Vec<LeftOut>,
    pub batches: u64,
}

/// An archive read and checked: its manifest parsed, every file's checksum verified.
struct Archive {
    /// Where its files are read: the archive, or a local copy of one in a bucket.
    dir: PathBuf,
    /// Where it is, for the report.
    name: String,
    header: Header,
    /// Last first.
    batches: Vec<BatchRecord>,
}

impl Archive {
    /// Reads and checks the archive at `dir`.
    fn open(dir: &Path, name: String) -> Result<Archive> {
        let archive = Archive::read_manifest(dir, name)?;
        archive.verify_files()?;
        Ok(archive)
    }

    /// Reads the archive's manifest; its files are not read yet.
    fn read_manifest(dir: &Path, name: String) -> Result<Archive> {
        let damaged = |why: String| ArchiveError::Damaged { path: name.clone(), why };
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|source| ArchiveError::io(&path, source))?;
        // Lossy: a kill may have cut the last line inside a character.
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines().enumerate();
        let header = match lines.next().map(|(_, line)| serde_json::from_str(line)) {
            Some(Ok(Record::Archive(header))) => header,
            _ => {
                return Err(
                    damaged("its manifest does not begin with an archive record".into()).into()
                )
            }
        };
        if header.format != FORMAT {
            return Err(damaged(format!(
                "its format is {}, and this mlflow-janitor reads format {FORMAT}",
                header.format
            ))
            .into());
        }
        let mut batches = Vec::new();
        for (number, line) in lines {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Batch(batch)) => batches.push(batch),
                Ok(Record::Committed { .. }) => {}
                // A kill while the manifest was written: the last line may be cut short, and
                // that batch's transaction never committed.
                Err(_) if number + 1 == text.lines().count() && !text.ends_with('\n') => {}
                _ => return Err(damaged(format!("line {} of its manifest", number + 1)).into()),
            }
        }
        if let Some(file) = batches
            .iter()
            .flat_map(|batch| &batch.files)
            .find(|file| !is_relative_within(&file.path))
        {
            return Err(
                damaged(format!("its manifest names a file outside it: {}", file.path)).into()
            );
        }
        batches.reverse();
        Ok(Archive { dir: dir.to_path_buf(), name, header, batches })
    }

    fn files(&self) -> impl Iterator<Item = &FileRecord> {
        self.batches.iter().flat_map(|batch| &batch.files)
    }

    /// Checks every file against the checksum the manifest gives it.
    fn verify_files(&self) -> Result<()> {
        for file in self.files() {
            let path = self.dir.join(&file.path);
            let mut hash = Sha256::new();
            std::fs::File::open(&path)
                .and_then(|mut opened| std::io::copy(&mut opened, &mut hash))
                .map_err(|source| ArchiveError::io(&path, source))?;
            if super::row_files::hex(&hash.finalize()) != file.sha256 {
                return Err(ArchiveError::Damaged {
                    path: self.name.clone(),
                    why: format!("{} does not match its checksum", file.path),
                }
                .into());
            }
        }
        Ok(())
    }

    fn columns(&self, table: &str) -> Result<TableColumns> {
        let columns = self.header.tables.get(table).ok_or_else(|| ArchiveError::Damaged {
            path: self.name.clone(),
            why: format!("its manifest gives no columns of `{table}`"),
        })?;
        Ok(TableColumns { table: table.to_owned(), columns: columns.clone() })
    }

    /// Streams a file's rows, as values in the order of `columns`.
    fn rows(
        &self,
        file: &FileRecord,
        columns: &TableColumns,
        mut each: impl FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        let path = self.dir.join(&file.path);
        let damaged = |why: String| ArchiveError::Damaged { path: path.display().to_string(), why };
        let opened =
            std::fs::File::open(&path).map_err(|source| ArchiveError::io(&path, source))?;
        let reader = BufReader::new(GzDecoder::new(opened));
        for line in reader.lines() {
            let line = line.map_err(|source| ArchiveError::io(&path, source))?;
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&line).map_err(|e| damaged(e.to_string()))?;
            let mut row = Vec::with_capacity(columns.columns.len());
            for column in &columns.columns {
                let json = object
                    .get(&column.name)
                    .ok_or_else(|| damaged(format!("a row without `{}`", column.name)))?;
                row.push(
                    from_json(json, column.kind)
                        .map_err(|why| damaged(format!("{}: {why}", column.name)))?,
                );
            }
            each(row)?;
        }
        Ok(())
    }
}

/// A local directory for the copies of archives in a bucket, removed with the restore.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The archives at `place`, read and checked; those in a bucket copied under `staging` first.
fn open_archives(place: &Place, staging: &Path) -> Result<Vec<Archive>> {
    let bucket = match place {
        Place::Local(path) => {
            return archives_at(path)?
                .iter()
                .map(|dir| Archive::open(dir, dir.display().to_string()))
                .collect();
        }
        Place::Cloud(bucket) => bucket,
    };
    let names = bucket.archives()?;
    if names.is_empty() {
        return Err(ArchiveError::NotAnArchive { path: place.to_string() }.into());
    }
    let mut archives = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let dir = staging.join(index.to_string());
        let key =
            |file: &str| if name.is_empty() { file.to_owned() } else { format!("{name}/{file}") };
        bucket.download(&key(MANIFEST), &dir.join(MANIFEST))?;
        let archive = Archive::read_manifest(&dir, bucket.url(name))?;
        for file in archive.files() {
            bucket.download(&key(&file.path), &dir.join(&file.path))?;
        }
        archive.verify_files()?;
        archives.push(archive);
    }
    Ok(archives)
}

/// A manifest's file path stays inside its archive: relative, with no `..`.
fn is_relative_within(path: &str) -> bool {
    !path.starts_with('/') && path.split('/').all(|part| !part.is_empty() && part != "..")
}

/// Restores the entities `settings` names from its archive(s) into its store. `confirm` hears
/// how many entities of each kind would come back before anything is written (not in a dry
/// run, nor when none would).
pub fn restore(
    settings: &RestoreSettings,
    confirm: impl FnOnce(&BTreeMap<Entity, u64>) -> Result<()>,
    report: &mut RestoreReport,
) -> Result<()> {
    report.dry_run = settings.dry_run;
    report.store = settings.uri.to_string();
    let staging = Staging(
        std::env::temp_dir().join(format!("mlflow-janitor-restore-{}", std::process::id())),
    );
    let archives = open_archives(&settings.archive, &staging.0)?;
    report.archives = archives.iter().map(|a| a.name.clone()).collect();
    let uri = &settings.uri;
    let mut conn = uri.establish()?;
    if settings.dry_run {
        store::read_only_session(&mut conn)?;
    }
    let _lock = (!settings.dry_run).then(|| store::lock_store(&mut conn, uri)).transpose()?;
    store::limit_session(&mut conn, settings.lock_timeout, Duration::ZERO)?;
    let schema = StoreSchema::read(&mut conn, uri, UnknownRevision::Refuse)?;
    for archive in &archives {
        check_compatible(&mut conn, archive, &schema)?;
    }
    let references = References::of(&mut conn)?;
    // First what would come back, reading only; then, confirmed, the same for real.
    let mut planned = RestoreReport { dry_run: true, ..RestoreReport::default() };
    Restorer::new(&mut conn, &settings.request, false, &mut planned, &references).run(&archives)?;
    if settings.dry_run || planned.entities.is_empty() {
        *report = RestoreReport {
            archives: report.archives.clone(),
            store: report.store.clone(),
            ..planned
        };
        report.dry_run = settings.dry_run;
        return finish(report);
    }
    confirm(&planned.entities)?;
    let result =
        Restorer::new(&mut conn, &settings.request, true, report, &references).run(&archives);
    if let Err(source) = result {
        return Err(match report.batches {
            0 => source,
            batches => Error::RestoreStopped { batches, source: Box::new(source) },
        });
    }
    finish(report)
}

fn finish(report: &RestoreReport) -> Result<()> {
    match report.left_out.first() {
        None => Ok(()),
        Some(first) => Err(Error::LeftOut {
            left_out: report.left_out.len(),
            first: format!("{} {}: {}", first.entity.name(), first.id, first.why),
        }),
    }
}

/// Refuses an archive whose rows the store's schema cannot take: of another revision, unless
/// the store's is newer, has every archived column, and fills each column the archive lacks.
fn check_compatible(
    conn: &mut DbConnection,
    archive: &Archive,
    schema: &StoreSchema,
) -> Result<()> {
    let archived = &archive.header.revision;
    if *archived == schema.revision {
        return Ok(());
    }
    let refuse = |why: String| -> Result<()> {
        Err(ArchiveError::Incompatible {
            path: archive.name.clone(),
            archived: archived.clone(),
            store: schema.revision.clone(),
            why,
        }
        .into())
    };
    let position = |revision: &str| KNOWN_SCHEMAS.iter().position(|k| k.revision == revision);
    match (position(archived), position(&schema.revision)) {
        (None, _) => return refuse("mlflow-janitor does not know the archive's".into()),
        (Some(a), Some(s)) if a > s => {
            return refuse(
                "is older than the archive's: upgrade the store with `mlflow db upgrade`".into(),
            )
        }
        _ => {}
    }
    let tables_with_rows: BTreeSet<&str> =
        archive.batches.iter().flat_map(|b| &b.files).map(|f| f.table.as_str()).collect();
    for table in tables_with_rows {
        let present = catalog::columns(conn, table)?;
        for column in &archive.columns(table)?.columns {
            if !present.contains(&column.name) {
                return refuse(format!("has no column `{table}.{}`", column.name));
            }
        }
        for required in catalog::required_columns(conn, table)? {
            if archive.header.tables[table].iter().all(|c| c.name != required) {
                return refuse(format!(
                    "has a column `{table}.{required}` that needs a value the archive lacks"
                ));
            }
        }
    }
    Ok(())
}

struct Restorer<'a> {
    conn: &'a mut DbConnection,
    request: &'a RestoreRequest,
    write: bool,
    report: &'a mut RestoreReport,
    decided: Decided,
    /// The entities this restore brought back, by kind and key (a dry run's store does not
    /// have them yet).
    restored: Decided,
    experiments: Experiments,
    references: &'a References,
    claimed: Claimed,
}

/// The entities of other kinds that rows name through a foreign key, as the plan knows them
/// (`logged_model_metrics.model_id`, in a run's batch): a row whose entity is in neither the
/// store nor the restore would fail its foreign key.
struct References {
    /// By table: each column naming an entity, and the entity's kind.
    by_table: HashMap<&'static str, Vec<(&'static str, Entity)>>,
    /// Each kind's table and key column.
    keys: HashMap<Entity, (&'static str, &'static str)>,
}

impl References {
    /// The plan's columns that name an entity, where the store has a foreign key from the
    /// row's table to the entity's (an unconstrained column may name other things: `inputs`).
    fn of(conn: &mut DbConnection) -> Result<References> {
        let foreign_keys: HashSet<(String, String)> =
            catalog::foreign_keys(conn)?.into_iter().map(|key| (key.table, key.parent)).collect();
        let steps = steps_in_order();
        let keys: HashMap<Entity, (&str, &str)> = steps
            .iter()
            .filter(|step| step.entity_rows)
            .filter_map(|step| match step.owner {
                Owner::Column(column) => Some((step.entity, (step.table, *column))),
                _ => None,
            })
            .collect();
        let mut by_table: HashMap<&str, Vec<(&str, Entity)>> = HashMap::new();
        for step in steps.iter().filter(|step| !step.entity_rows) {
            let (Owner::Column(column), Some((parent, _))) = (step.owner, keys.get(&step.entity))
            else {
                continue;
            };
            if foreign_keys.contains(&(step.table.to_owned(), (*parent).to_owned())) {
                by_table.entry(step.table).or_default().push((column, step.entity));
            }
        }
        Ok(References { by_table, keys })
    }
}

/// The experiments this restore decided on, by id.
#[derive(Default)]
struct Experiments {
    /// Those the archives hold: their name and creation time.
    archived: HashMap<String, Vec<Value>>,
    /// Left out: their runs, traces and models stay out too.
    left_out: HashSet<String>,
}

/// Entities already decided in this restore, by kind and key: an entity archived twice (its
/// first batch rolled back) comes back once.
type Decided = HashSet<(Entity, String)>;

/// The unique values (a name, say) of the entities this restore brings back, by kind and
/// columns: two archives may hold two experiments of one name, purged in turn, and only the
/// first comes back. A dry run's store does not hold them, so they are kept here.
type Claimed = HashMap<(Entity, Vec<String>), HashMap<Vec<String>, String>>;

impl<'a> Restorer<'a> {
    fn new(
        conn: &'a mut DbConnection,
        request: &'a RestoreRequest,
        write: bool,
        report: &'a mut RestoreReport,
        references: &'a References,
    ) -> Self {
        Restorer {
            conn,
            request,
            write,
            report,
            decided: Decided::new(),
            restored: Decided::new(),
            experiments: Experiments::default(),
            references,
            claimed: Claimed::new(),
        }
    }

    fn run(mut self, archives: &[Archive]) -> Result<()> {
        for archive in archives {
            self.read_experiments(archive)?;
        }
        let names = self.experiment_names(archives)?;
        for archive in archives {
            for batch in &archive.batches {
                self.batch(archive, batch, &names)?;
            }
        }
        Ok(())
    }

    /// Notes each experiment the archive holds, by id: its name and creation time tell it from
    /// another experiment that took its id since.
    fn read_experiments(&mut self, archive: &Archive) -> Result<()> {
        let columns = archive.columns("experiments")?;
        let id = column(&columns, "experiment_id")?;
        let identity = identity_columns(&columns);
        for batch in archive.batches.iter().filter(|b| b.entity == Entity::Experiment) {
            for file in batch.files.iter().filter(|f| f.entity_rows) {
                archive.rows(file, &columns, |row| {
                    let identity = identity.iter().map(|&at| row[at].clone()).collect();
                    self.experiments.archived.insert(row[id].to_string(), identity);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// The ids of the experiments `--experiment-names` names, in the archives (as
    /// [`Restorer::read_experiments`] noted them) or the store.
    fn experiment_names(&mut self, archives: &[Archive]) -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        let Some(archive) = archives.first().filter(|_| !self.request.experiment_names.is_empty())
        else {
            return Ok(ids);
        };
        let columns = archive.columns("experiments")?;
        let (name, id) = (column(&columns, "name")?, column(&columns, "experiment_id")?);
        for (experiment, identity) in &self.experiments.archived {
            if let [Value::Text(n), ..] = identity.as_slice() {
                if self.request.experiment_names.contains(n) {
                    ids.insert(experiment.clone());
                }
            }
        }
        let names: Vec<Vec<Value>> =
            self.request.experiment_names.iter().map(|n| vec![Value::Text(n.clone())]).collect();
        for row in rows_by_key(self.conn, &columns, &[name], &names)? {
            ids.insert(row[id].to_string());
        }
        Ok(ids)
    }

    fn wanted(
        &self,
        entity: Entity,
        key: &str,
        experiment: Option<&str>,
        names: &HashSet<String>,
    ) -> bool {
        let request = self.request;
        if request.is_whole() {
            return true;
        }
        let experiment_named =
            |id: &str| request.experiment_ids.iter().any(|e| e == id) || names.contains(id);
        match entity {
            Entity::Experiment => experiment_named(key),
            Entity::Run if request.run_ids.iter().any(|r| r == key) => true,
            _ => experiment.is_some_and(experiment_named),
        }
    }

    fn batch(
        &mut self,
        archive: &Archive,
        batch: &BatchRecord,
        names: &HashSet<String>,
    ) -> Result<()> {
        let Some(entity_file) = batch.files.iter().find(|f| f.entity_rows) else { return Ok(()) };
        let columns = archive.columns(&entity_file.table)?;
        let key_columns = key_columns(&entity_file.owner, &columns)?;
        let experiment_column =
            batch.experiment_column.as_deref().map(|c| column(&columns, c)).transpose()?;
        let mut candidates = Vec::new();
        archive.rows(entity_file, &columns, |row| {
            let key = owner_of(&entity_file.owner, &row, &columns, &BatchRows::default())?
                .expect("an entity row's owner is its key");
            let experiment = experiment_column.map(|at| row[at].to_string());
            if self.wanted(batch.entity, &key, experiment.as_deref(), names)
                && self.decided.insert((batch.entity, key.clone()))
            {
                candidates.push((key, experiment, row));
            }
            Ok(())
        })?;
        if candidates.is_empty() {
            return Ok(());
        }
        let restorable = self.restorable(
            archive,
            batch,
            &columns,
            &entity_file.owner,
            &key_columns,
            candidates,
        )?;
        if restorable.is_empty() {
            return Ok(());
        }
        let count = restorable.len() as u64;
        let conn = &mut *self.conn;
        let write = self.write;
        let rows = if write {
            write_transaction(conn, |conn| insert_batch(conn, archive, batch, &restorable, true))?
        } else {
            insert_batch(conn, archive, batch, &restorable, false)?
        };
        self.restored.extend(restorable.iter().map(|key| (batch.entity, key.clone())));
        *self.report.entities.entry(batch.entity).or_default() += count;
        for (table, n) in rows {
            *self.report.rows_by_table.entry(table).or_default() += n;
        }
        self.report.batches += 1;
        Ok(())
    }

    /// The candidates that may come back: their key and names free, their experiment there.
    fn restorable(
        &mut self,
        archive: &Archive,
        batch: &BatchRecord,
        columns: &TableColumns,
        owner: &Owner<String>,
        key_columns: &[usize],
        candidates: Vec<(String, Option<String>, Vec<Value>)>,
    ) -> Result<HashSet<String>> {
        let experiments = &mut self.experiments;
        let restored = &self.restored;
        let entity = batch.entity;
        let keys: Vec<Vec<Value>> = candidates
            .iter()
            .map(|(_, _, row)| key_columns.iter().map(|&i| row[i].clone()).collect())
            .collect();
        let mut stored = HashMap::new();
        for row in rows_by_key(self.conn, columns, key_columns, &keys)? {
            let key = owner_of(owner, &row, columns, &BatchRows::default())?.expect("a key");
            stored.insert(key, row);
        }
        let present_experiments = match batch.experiment_column {
            Some(_) => {
                let experiments_columns = archive.columns("experiments")?;
                let id = column(&experiments_columns, "experiment_id")?;
                let ids: BTreeSet<&String> =
                    candidates.iter().filter_map(|(_, e, _)| e.as_ref()).collect();
                let ids: Vec<Vec<Value>> = ids.into_iter().map(|e| vec![int_or_text(e)]).collect();
                let identity = identity_columns(&experiments_columns);
                rows_by_key(self.conn, &experiments_columns, &[id], &ids)?
                    .into_iter()
                    .map(|row| {
                        (row[id].to_string(), identity.iter().map(|&at| row[at].clone()).collect())
                    })
                    .collect()
            }
            None => HashMap::new(),
        };
        // Unique columns whose values some stored row holds: for those, each candidate is asked
        // alone, so that the database's collation decides who holds a name.
        let uniques: Vec<(&Vec<String>, Vec<usize>)> = batch
            .unique
            .iter()
            .map(|unique| (unique, unique.iter().filter_map(|c| columns.position(c)).collect()))
            .collect();
        // Positions in `uniques`.
        let mut contested = Vec::new();
        for (index, (_, at)) in uniques.iter().enumerate() {
            let values: Vec<Vec<Value>> = candidates
                .iter()
                .map(|(_, _, row)| at.iter().map(|&i| row[i].clone()).collect())
                .collect();
            if !rows_by_key(self.conn, columns, at, &values)?.is_empty() {
                contested.push(index);
            }
        }
        let mut restorable = HashSet::new();
        let mut claiming = Vec::new();
        'candidates: for (key, experiment, row) in candidates {
            // Its experiment's id may now be another experiment's.
            let experiment_left_out =
                experiment.as_ref().is_some_and(|e| experiments.left_out.contains(e));
            let experiment_there = experiment.as_ref().is_none_or(|e| {
                present_experiments.contains_key(e)
                    || restored.contains(&(Entity::Experiment, e.clone()))
            });
            // The store's experiment of that id is another, when the archives hold it otherwise.
            let experiment_replaced = experiment.as_ref().and_then(|e| {
                let stored: &Vec<Value> = present_experiments.get(e)?;
                let archived = experiments.archived.get(e)?;
                (stored != archived)
                    .then(|| stored.first().map(ToString::to_string).unwrap_or_default())
            });
            let mut leave_out = |why: String| {
                if entity == Entity::Experiment {
                    experiments.left_out.insert(key.clone());
                }
                self.report.left_out.push(LeftOut { entity, id: key.clone(), why });
            };
            if let Some(stored) = stored.get(&key) {
                if same_entity(entity, stored, &row, columns) {
                    *self.report.already_present.entry(entity).or_default() += 1;
                } else {
                    leave_out("the store holds another with its key".into());
                }
                continue;
            }
            let claims: Vec<(&Vec<String>, Vec<String>)> = uniques
                .iter()
                .map(|(unique, at)| (*unique, at.iter().map(|&i| row[i].to_string()).collect()))
                .collect();
            let claimed_by = claims.iter().find_map(|(unique, values)| {
                let holder = self.claimed.get(&(entity, unique.to_vec()))?.get(values)?;
                Some((unique, values, holder))
            });
            if let Some((unique, values, holder)) = claimed_by {
                leave_out(taken(unique, values, entity, holder) + ", restored before it");
                continue;
            }
            for &index in &contested {
                let (unique, at) = &uniques[index];
                let values = vec![at.iter().map(|&i| row[i].clone()).collect::<Vec<_>>()];
                if let Some(holder) = rows_by_key(self.conn, columns, at, &values)?.first() {
                    let holder: Vec<String> =
                        key_columns.iter().map(|&i| holder[i].to_string()).collect();
                    leave_out(taken(unique, &claims[index].1, entity, &holder.join("/")));
                    continue 'candidates;
                }
            }
            if let Some(experiment) = experiment {
                if experiment_left_out {
                    leave_out(format!("its experiment {experiment} was left out"));
                    continue;
                }
                if let Some(name) = experiment_replaced {
                    leave_out(format!(
                        "its experiment {experiment} is now another one in the store (`{name}`)"
                    ));
                    continue;
                }
                if !experiment_there {
                    leave_out(format!(
                        "its experiment {experiment} is in neither the store nor this restore \
                         (add --experiment-ids {experiment})"
                    ));
                    continue;
                }
            }
            claiming.push((key.clone(), claims));
            restorable.insert(key);
        }
        for (key, why) in self.named_elsewhere(archive, batch, &restorable)? {
            restorable.remove(&key);
            if entity == Entity::Experiment {
                self.experiments.left_out.insert(key.clone());
            }
            self.report.left_out.push(LeftOut { entity, id: key, why });
        }
        for (key, claims) in claiming.into_iter().filter(|(key, _)| restorable.contains(key)) {
            for (unique, values) in claims {
                let by_value = self.claimed.entry((entity, unique.clone())).or_default();
                by_value.insert(values, key.clone());
            }
        }
        Ok(restorable)
    }

    /// The entities of `restorable` whose rows name an entity of another kind that is in
    /// neither the store nor this restore (which put back the kinds purged after this one
    /// already), and why.
    fn named_elsewhere(
        &mut self,
        archive: &Archive,
        batch: &BatchRecord,
        restorable: &HashSet<String>,
    ) -> Result<BTreeMap<String, String>> {
        /// A key named: its value, the first table naming it, and the entities whose rows do.
        struct Named<'f> {
            value: Value,
            table: &'f str,
            owners: Vec<String>,
        }
        let mut named: BTreeMap<Entity, BTreeMap<String, Named>> = BTreeMap::new();
        for file in &batch.files {
            let Some(references) = self.references.by_table.get(file.table.as_str()) else {
                continue;
            };
            let references: Vec<_> =
                references.iter().filter(|(_, entity)| *entity != batch.entity).collect();
            if references.is_empty() {
                continue;
            }
            let columns = archive.columns(&file.table)?;
            let at: Vec<(usize, Entity)> = references
                .iter()
                .map(|(c, entity)| Ok((column(&columns, c)?, *entity)))
                .collect::<Result<_>>()?;
            let table = file.table.as_str();
            archive.rows(file, &columns, |row| {
                let owner = owner_of(&file.owner, &row, &columns, &BatchRows::default())?;
                let Some(owner) = owner.filter(|owner| restorable.contains(owner)) else {
                    return Ok(());
                };
                for &(index, entity) in &at {
                    if row[index] == Value::Null {
                        continue;
                    }
                    let key = row[index].to_string();
                    let by = named.entry(entity).or_default();
                    let named = by.entry(key).or_insert_with(|| Named {
                        value: row[index].clone(),
                        table,
                        owners: Vec::new(),
                    });
                    named.owners.push(owner.clone());
                }
                Ok(())
            })?;
        }
        let mut missing = BTreeMap::new();
        for (entity, keys) in named {
            let (table, key_column) = self.references.keys[&entity];
            let columns = archive.columns(table)?;
            let at = column(&columns, key_column)?;
            let values: Vec<Vec<Value>> = keys.values().map(|n| vec![n.value.clone()]).collect();
            let present: HashSet<String> = rows_by_key(self.conn, &columns, &[at], &values)?
                .into_iter()
                .map(|row| row[at].to_string())
                .collect();
            let missing_from_both = |key: &String| {
                !present.contains(key) && !self.restored.contains(&(entity, key.clone()))
            };
            for (key, named) in keys.into_iter().filter(|(key, _)| missing_from_both(key)) {
                for owner in named.owners {
                    missing.entry(owner).or_insert_with(|| {
                        format!(
                            "its {} rows name {} {key}, which is in neither the store nor this \
                             restore",
                            named.table,
                            entity.name()
                        )
                    });
                }
            }
        }
        Ok(missing)
    }
}

/// Inserts (or, not `write`, counts) the rows of `batch` that belong to `restorable`, parents
/// first; returns rows per table.
fn insert_batch(
    conn: &mut DbConnection,
    archive: &Archive,
    batch: &BatchRecord,
    restorable: &HashSet<String>,
    write: bool,
) -> Result<BTreeMap<String, u64>> {
    // Rows whose owner is another row of the batch: that row's key, and its owner.
    let parents = batch
        .files
        .iter()
        .filter_map(|f| match &f.owner {
            Owner::Via { table, key, .. } => Some(((table.clone(), key.clone()), HashMap::new())),
            _ => None,
        })
        .collect();
    let mut rows_of = BatchRows { ids: batch.ids.iter().cloned().collect(), parents };
    let whole = batch.ids.iter().all(|id| restorable.contains(id));
    let finite_only = conn.backend() == Backend::Mysql;
    let mut rows_by_table = BTreeMap::new();
    let mut tables = Vec::new();
    for file in batch.files.iter().rev() {
        let columns = archive.columns(&file.table)?;
        let mut pending = Vec::new();
        let mut rows = 0;
        let flush = |conn: &mut DbConnection, pending: &mut Vec<Vec<Value>>| -> Result<()> {
            if write && !pending.is_empty() {
                insert_rows(conn, &columns, pending)?;
            }
            pending.clear();
            Ok(())
        };
        archive.rows(file, &columns, |row| {
            let owner = owner_of(&file.owner, &row, &columns, &rows_of)?;
            for ((table, key), owners) in rows_of.parents.iter_mut() {
                if *table == file.table {
                    if let (Some(at), Some(owner)) = (columns.position(key), &owner) {
                        owners.insert(row[at].to_string(), owner.clone());
                    }
                }
            }
            if owner.is_some_and(|owner| restorable.contains(&owner)) {
                if finite_only {
                    refuse_non_finite(archive, &columns, &row)?;
                }
                pending.push(row);
                rows += 1;
                if pending.len() >= INSERT_ROWS {
                    flush(conn, &mut pending)?;
                }
            }
            Ok(())
        })?;
        flush(conn, &mut pending)?;
        // A batch restored whole gives back every row it archived: no owner was missed.
        if whole && rows != file.rows {
            return Err(ArchiveError::Damaged {
                path: archive.name.clone(),
                why: format!(
                    "{} holds {} rows, of which {rows} belong to its batch",
                    file.path, file.rows
                ),
            }
            .into());
        }
        *rows_by_table.entry(file.table.clone()).or_default() += rows;
        tables.push(file.table.clone());
    }
    if write {
        let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
        advance_sequences(conn, &tables)?;
    }
    Ok(rows_by_table)
}

/// What tells which entity of a batch a row belongs to: the batch's entities, and the owners
/// of the rows of the batch that other rows name (Owner::Via).
#[derive(Default)]
struct BatchRows {
    ids: HashSet<String>,
    parents: HashMap<(String, String), HashMap<String, String>>,
}

/// The entity a row belongs to, as its key prints; none when its parent row is not in the
/// batch.
fn owner_of(
    owner: &Owner<String>,
    row: &[Value],
    columns: &TableColumns,
    batch: &BatchRows,
) -> Result<Option<String>> {
    let value = |name: &str| -> Result<Value> { Ok(row[column(columns, name)?].clone()) };
    Ok(match owner {
        Owner::Column(name) => Some(value(name)?.to_string()),
        Owner::Via { column: name, table, key } => {
            let parent = value(name)?.to_string();
            batch
                .parents
                .get(&(table.clone(), key.clone()))
                .and_then(|owners| owners.get(&parent))
                .cloned()
        }
        Owner::Association(kind) => {
            // The side of the batch's kind whose entity is in the batch (an association may tie
            // two of a kind).
            let kind = Value::Text(kind.clone());
            let source = value("source_id")?.to_string();
            let side = if value("source_type")? == kind
                && (batch.ids.contains(&source) || value("destination_type")? != kind)
            {
                source
            } else {
                value("destination_id")?.to_string()
            };
            Some(side)
        }
        Owner::ModelVersion => {
            Some(format!("{}/{}/{}", value("workspace")?, value("name")?, value("version")?))
        }
    })
}

/// Why an entity stays out whose unique `values` (of columns `unique`) another holds.
fn taken(unique: &[String], values: &[String], entity: Entity, holder: &str) -> String {
    format!(
        "its {} `{}` is taken by {} {holder}",
        unique.join(" and "),
        values.join("/"),
        entity.name()
    )
}

/// MySQL stores no NaN and no infinity (MLflow writes none there): a row holding one is refused
/// when the restore first reads it, before anything is written.
fn refuse_non_finite(archive: &Archive, columns: &TableColumns, row: &[Value]) -> Result<()> {
    for (column, value) in columns.columns.iter().zip(row) {
        if let Value::Double(x) = value {
            if !x.is_finite() {
                return Err(ArchiveError::NotStorable {
                    path: archive.name.clone(),
                    table: columns.table.clone(),
                    column: column.name.clone(),
                    value: match *x {
                        x if x.is_nan() => "NaN",
                        x if x > 0.0 => "Infinity",
                        _ => "-Infinity",
                    },
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Whether the store's row of an archived entity's key is that entity, changed or not since it
/// came back (MLflow's restore revives it): the keys MLflow generates (a run's uuid) name one
/// entity for ever, but an experiment's id may be given again (SQLite), and so may a model
/// version's number, so theirs must still be what tells them apart.
fn same_entity(
    entity: Entity,
    stored: &[Value],
    archived: &[Value],
    columns: &TableColumns,
) -> bool {
    let identity = match entity {
        Entity::Experiment => identity_columns(columns),
        Entity::ModelVersion => columns.position("creation_time").into_iter().collect(),
        Entity::Run | Entity::Trace | Entity::LoggedModel | Entity::Webhook | Entity::Job => {
            Vec::new()
        }
    };
    identity.iter().all(|&at| stored[at] == archived[at])
}

/// The columns that tell one experiment from another that took its id: name, creation time.
fn identity_columns(columns: &TableColumns) -> Vec<usize> {
    ["name", "creation_time"].iter().filter_map(|c| columns.position(c)).collect()
}

/// The columns of an entity row that make its key.
fn key_columns(owner: &Owner<String>, columns: &TableColumns) -> Result<Vec<usize>> {
    match owner {
        Owner::Column(name) => Ok(vec![column(columns, name)?]),
        Owner::ModelVersion => {
            ["workspace", "name", "version"].iter().map(|c| column(columns, c)).collect()
        }
        other => Err(ArchiveError::Damaged {
            path: columns.table.clone(),
            why: format!("an entity file's owner is {other:?}"),
        }
        .into()),
    }
}

fn column(columns: &TableColumns, name: &str) -> Result<usize> {
    columns.position(name).ok_or_else(|| {
        ArchiveError::Damaged {
            path: columns.table.clone(),
            why: format!("the archive has no column `{name}` of `{}`", columns.table),
        }
        .into()
    })
}

/// An id as the store keys it: experiment ids are integers.
fn int_or_text(id: &str) -> Value {
    id.parse().map(Value::Int).unwrap_or_else(|_| Value::Text(id.to_owned()))
}
