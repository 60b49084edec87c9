//! `purge --archive` and `restore`: every purged row is archived before it goes, and a restore
//! puts the store back exactly as it was, on every backend and across them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use mlflow_janitor::archive::restore::{self, RestoreReport, RestoreRequest, RestoreSettings};
use mlflow_janitor::archive::Place;
use mlflow_janitor::error::ArchiveError;
use mlflow_janitor::plan::Entity;
use mlflow_janitor::purge::{Mode, Prepared, Report, Settings, DEFAULT_LOCK_TIMEOUT};
use mlflow_janitor::schema::{
    experiments, logged_model_metrics, logged_models, metrics, params, registered_models, runs,
};
use mlflow_janitor::scope::{Retention, ScopeRequest};
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection, Error};
use test_case::test_case;

use crate::{fails_with, fixtures, janitor, snapshot};

/// Values that a careless archive would change: extreme and signed-zero doubles, MLflow's NaN
/// rows, text beyond ASCII, JSON with its own spacing; with `non_finite`, on PostgreSQL, a real
/// NaN and infinities (MySQL stores none, SQLite no NaN).
fn awkward_values(conn: &mut DbConnection, non_finite: bool) {
    let run = "doomed-run-3a";
    let mut doubles =
        vec![(-0.0, false), (f64::MAX, false), (-f64::MAX, false), (0.0, true), (5e-324, false)];
    if non_finite && conn.backend() == Backend::Postgresql {
        doubles.extend([(f64::NAN, false), (f64::INFINITY, false), (f64::NEG_INFINITY, false)]);
    }
    for (step, (value, is_nan)) in doubles.into_iter().enumerate() {
        diesel::insert_into(metrics::table)
            .values((
                metrics::key.eq("awkward"),
                metrics::value.eq(value),
                metrics::timestamp.eq(i64::MAX - step as i64),
                metrics::run_uuid.eq(run),
                metrics::step.eq(step as i64),
                metrics::is_nan.eq(is_nan),
            ))
            .execute(conn)
            .unwrap();
    }
    diesel::insert_into(params::table)
        .values((
            params::key.eq("unicode"),
            params::value.eq("é ✓ 🙂 \"quoted\" \\ back\nslash\ttab 中文"),
            params::run_uuid.eq(run),
        ))
        .execute(conn)
        .unwrap();
    // A literal: diesel binds no text as JSON on every backend.
    diesel::sql_query(
        r#"UPDATE jobs SET status_details = '{"b": [1, 2.50, "x"],  "a": null}' WHERE id = 'old-job'"#,
    )
    .execute(conn)
    .unwrap();
}

/// A store with live and deleted entities of every kind, and the awkward values.
fn store_with_everything(backend: Backend, non_finite: bool) -> (TestStore, DbConnection) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    fixtures::other_kinds(&mut conn);
    awkward_values(&mut conn, non_finite);
    (store, conn)
}

fn every_kind() -> ScopeRequest {
    ScopeRequest {
        retention: Retention {
            logged_models: true,
            model_versions: true,
            webhooks: true,
            finished_jobs: true,
            traces_older_than: Some(std::time::Duration::from_secs(30 * 86_400)),
        },
        ..ScopeRequest::default()
    }
}

/// Purges `request` with an archive under `root`; returns the report and the archive written.
fn purge_archived(
    store: &TestStore,
    request: ScopeRequest,
    root: &Path,
    batch_size: usize,
) -> (Report, PathBuf) {
    let mut settings = Settings::new(store.uri().clone(), request, Mode::Delete);
    settings.batch_size = batch_size;
    settings.archive = Some(Place::Local(root.to_path_buf()));
    let mut report = Report::new("test".into(), "", Mode::Delete);
    Prepared::prepare(settings, &mut report)
        .unwrap()
        .confirm(|_| Ok(()))
        .unwrap()
        .run(None, &mut report, &mut |_| {})
        .unwrap();
    let archive = PathBuf::from(report.archive.clone().expect("an archive was written"));
    (report, archive)
}

fn restore_into(
    store: &TestStore,
    archive: &Path,
    request: RestoreRequest,
    dry_run: bool,
) -> (RestoreReport, mlflow_janitor::Result<()>) {
    let settings = RestoreSettings {
        uri: store.uri().clone(),
        archive: Place::Local(archive.to_path_buf()),
        request,
        dry_run,
        lock_timeout: DEFAULT_LOCK_TIMEOUT,
    };
    let mut report = RestoreReport::default();
    let result = restore::restore(&settings, |_| Ok(()), &mut report);
    (report, result)
}

/// The awkward metrics' steps, doubles (as bits) and NaN flags.
fn awkward_metrics(conn: &mut DbConnection) -> Vec<(i64, u64, bool)> {
    let rows: Vec<(i64, f64, bool)> = metrics::table
        .filter(metrics::key.eq("awkward"))
        .order(metrics::step)
        .select((metrics::step, metrics::value, metrics::is_nan))
        .load(conn)
        .unwrap();
    rows.into_iter().map(|(step, value, is_nan)| (step, value.to_bits(), is_nan)).collect()
}

fn total(report: &RestoreReport) -> u64 {
    report.rows_by_table.values().sum()
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_restore_puts_the_store_back_exactly_as_it_was_before_the_purge(backend: Backend) {
    let (store, mut conn) = store_with_everything(backend, true);
    let before = snapshot(&mut conn);
    let root = tempfile::tempdir().unwrap();

    let (purged, archive) = purge_archived(&store, every_kind(), root.path(), 2);
    assert_ne!(snapshot(&mut conn), before, "the purge deleted nothing");

    // What the manifest says each batch holds is what the purge deleted.
    let manifest = std::fs::read_to_string(archive.join("manifest.jsonl")).unwrap();
    let records: Vec<serde_json::Value> =
        manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let archived_rows: u64 = records
        .iter()
        .filter(|r| r["record"] == "batch")
        .flat_map(|r| r["files"].as_array().unwrap())
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(archived_rows, purged.total_rows());
    let committed = records.iter().filter(|r| r["record"] == "committed").count() as u64;
    assert_eq!(committed, purged.batches, "every batch is recorded as committed");
    assert!(!records[0]["store"].as_str().unwrap().contains("secret"));

    let (restored, result) = restore_into(&store, &archive, RestoreRequest::default(), false);
    result.unwrap();
    assert_eq!(total(&restored), purged.total_rows(), "{restored:?}");
    assert_eq!(restored.entities, purged.entities.iter().map(|(e, n)| (*e, *n)).collect());
    assert_eq!(snapshot(&mut conn), before, "the restored store differs from the one purged");

    // Again, once MLflow has brought them back to life: nothing changes, and the report says
    // why.
    diesel::update(runs::table.filter(runs::lifecycle_stage.eq("deleted")))
        .set((runs::lifecycle_stage.eq("active"), runs::deleted_time.eq(None::<i64>)))
        .execute(&mut conn)
        .unwrap();
    diesel::update(experiments::table.filter(experiments::lifecycle_stage.eq("deleted")))
        .set((experiments::lifecycle_stage.eq("active"), experiments::last_update_time.eq(1)))
        .execute(&mut conn)
        .unwrap();
    let revived = snapshot(&mut conn);
    let (again, result) = restore_into(&store, &archive, RestoreRequest::default(), false);
    result.unwrap();
    assert!(again.entities.is_empty(), "{again:?}");
    assert_eq!(again.already_present, restored.entities);
    assert_eq!(snapshot(&mut conn), revived);
}

#[test]
fn archive_files_are_private_and_a_dry_run_writes_none() {
    let (store, _conn) = fixtures::seeded_store(Backend::Sqlite);
    let root = tempfile::tempdir().unwrap();
    janitor()
        .args(["purge", "--dry-run", "--archive"])
        .arg(root.path())
        .args(["--backend-store-uri", store.uri().given()])
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "a dry run wrote an archive");

    let (_, archive) = purge_archived(&store, ScopeRequest::default(), root.path(), 500);
    let mut checked = 0;
    for entry in walk(&archive) {
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{}", entry.display());
        checked += 1;
    }
    assert!(checked > 3, "{checked}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// An archive made on one backend restores into a store of the same revision on another.
#[test_case(Backend::Sqlite, Backend::Postgresql; "sqlite to postgresql")]
#[test_case(Backend::Postgresql, Backend::Mysql; "postgresql to mysql")]
fn an_archive_restores_into_another_backend(from: Backend, to: Backend) {
    let (source, mut source_conn) = store_with_everything(from, false);
    let awkward_in_source = awkward_metrics(&mut source_conn);
    let root = tempfile::tempdir().unwrap();
    let (purged, archive) = purge_archived(&source, every_kind(), root.path(), 3);

    let target = TestStore::on(to).unwrap();
    let mut conn = target.connect().unwrap();
    // The target holds what the source kept: the live experiments the archive's runs live in.
    fixtures::live(&mut conn);
    diesel::insert_into(registered_models::table)
        .values(registered_models::name.eq("rm"))
        .execute(&mut conn)
        .unwrap();
    let (restored, result) = restore_into(&target, &archive, RestoreRequest::default(), false);
    result.unwrap();
    assert_eq!(restored.entities, purged.entities.iter().map(|(e, n)| (*e, *n)).collect());
    assert_eq!(total(&restored), purged.total_rows());
    // The doubles come back bit for bit as the source held them; MariaDB itself keeps no
    // negative zero.
    let mut expected = awkward_in_source.clone();
    if to == Backend::Mysql {
        for (_, bits, _) in &mut expected {
            *bits = if *bits == (-0.0_f64).to_bits() { 0 } else { *bits };
        }
    }
    assert_eq!(awkward_metrics(&mut conn), expected);
    assert!(awkward_in_source[3].2, "MLflow's NaN row keeps is_nan");
    // The next experiment MLflow creates takes a new id (PostgreSQL's sequence moved on).
    diesel::insert_into(experiments::table)
        .values((experiments::name.eq("created-after"), experiments::workspace.eq("default")))
        .execute(&mut conn)
        .unwrap();
    let newest: i32 = experiments::table
        .filter(experiments::name.eq("created-after"))
        .select(experiments::experiment_id)
        .first(&mut conn)
        .unwrap();
    assert!(newest > 4, "{newest}");
}

#[test]
fn a_restore_of_some_experiments_or_runs_takes_only_theirs() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&store, ScopeRequest::default(), root.path(), 2);

    let request =
        RestoreRequest { experiment_names: vec!["doomed-3".into()], ..RestoreRequest::default() };
    let (restored, result) = restore_into(&store, &archive, request, false);
    result.unwrap();
    assert_eq!(restored.entities[&Entity::Experiment], 1);
    assert_eq!(restored.entities[&Entity::Run], 3);
    let runs: Vec<String> = runs::table
        .select(runs::run_uuid)
        .filter(runs::experiment_id.eq(3))
        .load(&mut conn)
        .unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs::table.filter(runs::experiment_id.eq(4)).count().get_result::<i64>(&mut conn).unwrap(),
        0
    );

    // A run of an experiment that is gone stays out, and the report says what to add.
    let request = RestoreRequest {
        run_ids: vec!["doomed-run-4a".into(), "gone-run-1".into()],
        ..RestoreRequest::default()
    };
    let (restored, result) = restore_into(&store, &archive, request, false);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::LeftOut { left_out: 1, .. }), "{err}");
    assert!(err.to_string().contains("--experiment-ids 4"), "{err}");
    assert_eq!(restored.entities[&Entity::Run], 1);
    let gone_run: i64 =
        runs::table.filter(runs::run_uuid.eq("gone-run-1")).count().get_result(&mut conn).unwrap();
    assert_eq!(gone_run, 1);
    let metrics_back: i64 = metrics::table
        .filter(metrics::run_uuid.eq("gone-run-1"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(metrics_back, 3);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_taken_key_or_name_leaves_its_entity_out_and_the_rest_comes_back(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&store, ScopeRequest::default(), root.path(), 500);
    // A live experiment now holds one purged experiment's name, another its id.
    fixtures::experiment(&mut conn, 20, "doomed-3", None);
    fixtures::experiment(&mut conn, 4, "someone-else", None);
    let taken = snapshot(&mut conn);

    // Both experiments, and the 3 runs, trace and model of each.
    let (dry, result) = restore_into(&store, &archive, RestoreRequest::default(), true);
    assert!(matches!(result, Err(Error::LeftOut { left_out: 12, .. })), "{result:?}");
    assert_eq!(snapshot(&mut conn), taken, "a dry run wrote");

    let (restored, result) = restore_into(&store, &archive, RestoreRequest::default(), false);
    assert!(matches!(result, Err(Error::LeftOut { left_out: 12, .. })), "{result:?}");
    assert_eq!(restored.entities, dry.entities);
    assert_eq!(restored.rows_by_table, dry.rows_by_table);
    let why: Vec<String> = restored
        .left_out
        .iter()
        .map(|l| format!("{} {}: {}", l.entity.name(), l.id, l.why))
        .collect();
    assert!(why.iter().any(|w| w.contains("experiment 3") && w.contains("doomed-3")), "{why:?}");
    assert!(why.iter().any(|w| w.starts_with("experiment 4") && w.contains("another")), "{why:?}");
    assert!(
        why.iter().any(|w| w.starts_with("run doomed-run-4a") && w.contains("left out")),
        "{why:?}"
    );
    // The runs of the live experiments came back; those of experiments left out did not.
    assert_eq!(restored.entities[&Entity::Run], 3, "{restored:?}");
    let live_one: String = experiments::table
        .filter(experiments::experiment_id.eq(4))
        .select(experiments::name)
        .first(&mut conn)
        .unwrap();
    assert_eq!(live_one, "someone-else", "an existing row was overwritten");

    // The binary: one line naming the first left out, and exit code 11.
    let taken_again = snapshot(&mut conn);
    fails_with(
        janitor().arg("restore").arg(&archive).args([
            "--backend-store-uri",
            store.uri().given(),
            "--yes",
        ]),
        11,
        "12 entities were left out",
    );
    assert_eq!(snapshot(&mut conn), taken_again);
}

/// A PostgreSQL archive holding NaN and infinities is refused by a MySQL store when the restore
/// first reads the rows, before anything is written: one line, naming the column.
#[test]
fn a_value_mysql_cannot_store_refuses_the_restore_before_any_write() {
    let (source, _) = store_with_everything(Backend::Postgresql, true);
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&source, every_kind(), root.path(), 3);
    let target = TestStore::on(Backend::Mysql).unwrap();
    let mut conn = target.connect().unwrap();
    fixtures::live(&mut conn);
    let before = snapshot(&mut conn);

    let (_, result) = restore_into(&target, &archive, RestoreRequest::default(), false);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Archive(ArchiveError::NotStorable { .. })), "{err}");
    assert!(err.to_string().contains("NaN in `metrics.value`"), "{err}");
    fails_with(
        janitor().arg("restore").arg(&archive).args([
            "--backend-store-uri",
            target.uri().given(),
            "--yes",
        ]),
        2,
        "which MySQL cannot store",
    );
    assert_eq!(snapshot(&mut conn), before);
}

/// Two archives under one root, each with an experiment of the same name, purged in turn: the
/// newer comes back (a restore reads the newest archive first), the older stays out, and the
/// dry run says so before the restore does.
#[test]
fn of_two_archived_experiments_of_one_name_the_newer_comes_back() {
    let store = TestStore::on(Backend::Sqlite).unwrap();
    let mut conn = store.connect().unwrap();
    let root = tempfile::tempdir().unwrap();
    fixtures::experiment(&mut conn, 7, "twice", Some(fixtures::now_ms()));
    purge_archived(&store, ScopeRequest::default(), root.path(), 500);
    fixtures::experiment(&mut conn, 8, "twice", Some(fixtures::now_ms()));
    purge_archived(&store, ScopeRequest::default(), root.path(), 500);

    for dry_run in [true, false] {
        let (report, result) =
            restore_into(&store, root.path(), RestoreRequest::default(), dry_run);
        assert!(matches!(result, Err(Error::LeftOut { left_out: 1, .. })), "{result:?}");
        assert_eq!(report.entities.get(&Entity::Experiment), Some(&1), "dry run {dry_run}");
        let left_out = &report.left_out[0];
        assert_eq!((left_out.entity, left_out.id.as_str()), (Entity::Experiment, "7"));
        assert!(
            left_out.why.contains("twice` is taken by experiment 8"),
            "dry run {dry_run}: {}",
            left_out.why
        );
    }
    let named: Vec<i32> = experiments::table
        .filter(experiments::name.eq("twice"))
        .select(experiments::experiment_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(named, [8]);
}

#[test]
fn a_damaged_archive_or_no_confirmation_is_refused_and_nothing_changes() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&store, ScopeRequest::default(), root.path(), 500);
    let purged = snapshot(&mut conn);
    let uri = store.uri().given().to_owned();

    // Without --yes and without a terminal.
    fails_with(
        janitor().arg("restore").arg(&archive).args(["--backend-store-uri", &uri]),
        2,
        "pass --yes",
    );
    assert_eq!(snapshot(&mut conn), purged);

    // A file changed after the purge.
    let file =
        walk(&archive).into_iter().find(|p| p.to_string_lossy().contains("-metrics.")).unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    fails_with(
        janitor().arg("restore").arg(&archive).args(["--backend-store-uri", &uri, "--yes"]),
        2,
        "does not match its checksum",
    );
    assert_eq!(snapshot(&mut conn), purged);
    std::fs::write(&file, good).unwrap();

    // An archive of a revision this mlflow-janitor does not know.
    let manifest = archive.join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let revision = serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap()).unwrap()
        ["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(&manifest, text.replace(&revision, crate::UNKNOWN_REVISION)).unwrap();
    fails_with(
        janitor().arg("restore").arg(&archive).args(["--backend-store-uri", &uri, "--yes"]),
        2,
        "does not know the archive's",
    );
    // Not an archive at all.
    fails_with(
        janitor().arg("restore").arg(root.path().join("nothing-here")).args([
            "--backend-store-uri",
            &uri,
            "--yes",
        ]),
        2,
        "nothing-here",
    );
    assert_eq!(snapshot(&mut conn), purged);
}

/// A batch whose rows cannot be archived is rolled back: nothing is deleted unarchived.
#[test]
fn a_purge_whose_archive_cannot_be_written_deletes_nothing() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let before = snapshot(&mut conn);
    let root = tempfile::tempdir().unwrap();
    // A file where the archive's directory must go.
    let blocked = root.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    fails_with(
        janitor()
            .args(["purge", "--yes", "--archive"])
            .arg(blocked.join("archives"))
            .args(["--backend-store-uri", store.uri().given()]),
        3,
        "archive",
    );
    assert_eq!(snapshot(&mut conn), before);
}

/// An archive in S3 (moto's server, with the settings MLflow reads): the purge uploads each file
/// before its batch commits, and the restore reads the bucket back into the store as it was.
#[test]
fn an_archive_in_s3_is_written_and_restored() {
    let moto = crate::artifacts::Moto::start();
    moto.buckets(&["backups"]);
    let env = moto.env();
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    let before = snapshot(&mut conn);
    let uri = store.uri().given().to_owned();
    let run = |args: &[&str]| {
        let output = janitor()
            .args(args)
            .args(["--backend-store-uri", &uri, "--output", "json"])
            .envs(env.clone())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let purged = run(&["purge", "--yes", "--batch-size", "3", "--archive", "s3://backups/mlflow"]);
    let archive = purged["archive"].as_str().unwrap().to_owned();
    assert!(archive.starts_with("s3://backups/mlflow/"), "{archive}");
    // Every file the manifest names is in the bucket; nothing is staged locally any more.
    let client = moto.client("backups");
    let keys: Vec<String> = bucket_keys(&client, "mlflow");
    assert!(keys.iter().any(|k| k.ends_with("/manifest.jsonl")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("-metrics.jsonl.gz")), "{keys:?}");
    assert_ne!(snapshot(&mut conn), before);

    let restored = run(&["restore", "s3://backups/mlflow", "--yes"]);
    assert_eq!(restored["entities"], purged["entities"], "{restored}");
    assert_eq!(snapshot(&mut conn), before);
}

/// The keys under `prefix` in a bucket.
fn bucket_keys(
    client: &std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: &str,
) -> Vec<String> {
    use futures_util::TryStreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let prefix = object_store::path::Path::from(prefix);
    runtime.block_on(async {
        client
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap()
    })
}

/// SQLite gives a purged experiment's id to the next one: a run restored alone must not land in
/// that other experiment.
#[test]
fn a_run_whose_experiment_id_another_took_stays_out() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&store, ScopeRequest::default(), root.path(), 500);
    fixtures::experiment(&mut conn, 3, "intruder", None);
    let request =
        RestoreRequest { run_ids: vec!["doomed-run-3a".into()], ..RestoreRequest::default() };
    let (restored, result) = restore_into(&store, &archive, request, false);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::LeftOut { left_out: 1, .. }), "{err}");
    assert!(err.to_string().contains("now another one in the store (`intruder`)"), "{err}");
    assert!(restored.entities.is_empty(), "{restored:?}");
    let runs_of_3: i64 =
        runs::table.filter(runs::experiment_id.eq(3)).count().get_result(&mut conn).unwrap();
    assert_eq!(runs_of_3, 0);
}

/// A run whose rows name a logged model that neither the store nor the restore has (through
/// `logged_model_metrics`, a foreign key) stays out, instead of failing the restore; restored
/// with the model, it comes back, and the dry run says so first.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_run_naming_a_logged_model_left_in_the_archive_stays_out(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    fixtures::logged_model(&mut conn, 1, "lonely-model", "live-run-1a", "gone-run-1");
    diesel::update(logged_models::table.filter(logged_models::model_id.eq("lonely-model")))
        .set(logged_models::lifecycle_stage.eq("deleted"))
        .execute(&mut conn)
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = purge_archived(&store, every_kind(), root.path(), 500);
    let purged = snapshot(&mut conn);

    let request =
        RestoreRequest { run_ids: vec!["gone-run-1".into()], ..RestoreRequest::default() };
    let (restored, result) = restore_into(&store, &archive, request, false);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::LeftOut { left_out: 1, .. }), "{err}");
    assert!(
        err.to_string().contains(
            "its logged_model_metrics rows name logged model lonely-model, which is in neither"
        ),
        "{err}"
    );
    assert!(restored.entities.is_empty(), "{restored:?}");
    assert_eq!(snapshot(&mut conn), purged);

    let (dry, result) = restore_into(&store, &archive, RestoreRequest::default(), true);
    result.unwrap();
    let (restored, result) = restore_into(&store, &archive, RestoreRequest::default(), false);
    result.unwrap();
    assert_eq!(dry.entities, restored.entities);
    assert_eq!(dry.rows_by_table, restored.rows_by_table);
    assert_eq!(restored.entities[&Entity::LoggedModel], 3, "{restored:?}");
    let metrics_back: i64 = logged_model_metrics::table
        .filter(logged_model_metrics::model_id.eq("lonely-model"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(metrics_back, 1);
}

/// An archive of an older MLflow's store restores into a newer one's (its columns all there,
/// the new ones filled by their defaults), never into an older one.
#[test]
fn an_archive_restores_into_a_newer_schema_and_never_an_older_one() {
    let old = TestStore::of_version(Backend::Postgresql, "3.17.2").unwrap();
    let mut conn = old.connect().unwrap();
    fixtures::live(&mut conn);
    fixtures::deleted(&mut conn);
    let root = tempfile::tempdir().unwrap();
    let (purged, old_archive) = purge_archived(&old, ScopeRequest::default(), root.path(), 500);

    let new = TestStore::on(Backend::Postgresql).unwrap();
    fixtures::live(&mut new.connect().unwrap());
    let (restored, result) = restore_into(&new, &old_archive, RestoreRequest::default(), false);
    result.unwrap();
    assert_eq!(restored.entities, purged.entities.iter().map(|(e, n)| (*e, *n)).collect());

    // Back the other way: the newer store's archive does not go into the older store.
    let newer_root = tempfile::tempdir().unwrap();
    let (_, new_archive) = purge_archived(&new, ScopeRequest::default(), newer_root.path(), 500);
    let untouched = snapshot(&mut conn);
    let (_, result) = restore_into(&old, &new_archive, RestoreRequest::default(), false);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("older than the archive's"), "{err}");
    assert_eq!(err.exit_status(), mlflow_janitor::error::exit_code::USAGE);
    assert_eq!(snapshot(&mut conn), untouched);
}
