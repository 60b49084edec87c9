//! `purge --artifacts`: the artifacts of purged entities go, live ones stay byte for byte, and an
//! entity whose artifacts cannot go keeps its rows while the rest of the job goes on. With the
//! real MLflow client on local and S3 (moto) roots (tests/e2e/mlflow_artifacts.py), and on the
//! fixture store with artifact locations a client would not write.

use std::path::{Path, PathBuf};
use std::process::Output;

use diesel::prelude::*;
use mlflow_janitor::artifacts::{CloudConfig, Resolver};
use mlflow_janitor::purge::{ArtifactSettings, Mode, Prepared, Report, Settings};
use mlflow_janitor::schema::{model_versions, registered_models, runs, trace_tags};
use mlflow_janitor::scope::ScopeRequest;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection, Error};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use test_case::test_case;

use crate::artifacts::{files, write, Moto};
use crate::fixtures;

/// The real client's artifact script (tests/e2e/mlflow_artifacts.py) with `args`.
fn client(args: &[&str], env: &[(&str, String)]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mlflow_artifacts.py");
    let mut command = std::process::Command::new(crate::e2e::mlflow_python());
    command.arg(script).args(args);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.output().unwrap()
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The binary's `purge --artifacts --logged-models --output json` on `uri` (the client deletes a
/// logged model of a live experiment), with `extra` arguments.
fn purge_artifacts(
    uri: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> (Output, serde_json::Value) {
    let output = assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["purge", "--artifacts", "--logged-models", "--output", "json"])
        .args(["--backend-store-uri", uri])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, report)
}

/// The client seeds live and deleted data with artifacts under a local root; a dry run lists
/// the doomed locations and their sizes and touches nothing; the purge deletes exactly them.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn local_artifacts_of_purged_entities_go_and_live_ones_stay_byte_for_byte(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let dir = tempfile::tempdir().unwrap();
    let (root, state) = (dir.path().join("artifact root"), dir.path().join("state"));
    std::fs::create_dir_all(&root).unwrap();
    let seed = ["seed", &uri, root.to_str().unwrap(), state.to_str().unwrap()];
    assert_ok(&client(&seed, &[]), "seed");
    let before = files(&root);

    let (dry, report) = purge_artifacts(&uri, &["--dry-run"], &[]);
    assert_ok(&dry, "purge --dry-run");
    assert_eq!(files(&root), before, "the dry run changed the artifacts");
    let artifacts = &report["artifacts"];
    let listed = artifacts["listed"].as_array().unwrap();
    let bytes = |entries: &mut dyn Iterator<Item = &serde_json::Value>| -> u64 {
        entries.map(|entry| entry["bytes"].as_u64().unwrap()).sum()
    };
    assert_eq!(bytes(&mut listed.iter()), artifacts["bytes"].as_u64().unwrap());
    // Everything under `gone`, each byte counted once: its runs, model and trace on their own,
    // then the rest of its tree.
    let in_gone = |entry: &&serde_json::Value| {
        let location = entry["location"].as_str().unwrap();
        Path::new(location).starts_with(root.join("gone"))
    };
    let gone_bytes: u64 = before
        .iter()
        .filter(|(path, _)| path.starts_with(root.join("gone")))
        .map(|(_, bytes)| bytes.len() as u64)
        .sum();
    assert_eq!(bytes(&mut listed.iter().filter(in_gone)), gone_bytes, "{artifacts:#}");
    let kinds: std::collections::BTreeSet<&str> =
        listed.iter().filter(in_gone).map(|entry| entry["entity"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["experiment", "logged_model", "run", "trace"].into(), "{artifacts:#}");
    // Of `kept`: its deleted run and its deleted logged model.
    let (models, runs): (Vec<&serde_json::Value>, _) = listed
        .iter()
        .filter(|entry| !in_gone(entry))
        .partition(|entry| entry["entity"] == "logged_model");
    assert_eq!((models.len(), runs.len()), (1, 1), "{artifacts:#}");

    // `status` tells the same, reading only; a default purge leaves the deleted logged model
    // of a live experiment alone.
    let status = assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["status", "--artifacts", "--output", "json", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert_ok(&status, "status --artifacts");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["artifacts"]["bytes"].as_u64().unwrap() + models[0]["bytes"].as_u64().unwrap(),
        artifacts["bytes"].as_u64().unwrap(),
        "{status:#}"
    );

    let (purged, report) = purge_artifacts(&uri, &["--yes"], &[]);
    assert_ok(&purged, "purge");
    assert_eq!(report["artifacts"]["bytes"], artifacts["bytes"], "{report:#}");
    assert_eq!(report["artifacts"]["objects"], artifacts["objects"], "{report:#}");
    assert_eq!(report["artifacts"]["kept"], serde_json::json!([]), "{report:#}");
    let verify = ["verify", &uri, root.to_str().unwrap(), state.to_str().unwrap()];
    assert_ok(&client(&verify, &[]), "verify");
}

/// A deleted run whose artifacts hold a live model version's files keeps its rows and files;
/// the purge reports it, exits 9, and purges everything else.
#[test]
fn a_deleted_run_holding_a_live_model_version_is_kept_and_the_rest_purged() {
    let store = TestStore::on(Backend::Sqlite).unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let dir = tempfile::tempdir().unwrap();
    let (root, state) = (dir.path().join("root"), dir.path().join("state"));
    std::fs::create_dir_all(&root).unwrap();
    let (root, state) = (root.to_str().unwrap(), state.to_str().unwrap());
    let seed = ["seed", &uri, root, state, "--live-model-version-in-deleted-run"];
    assert_ok(&client(&seed, &[]), "seed");

    let (purged, report) = purge_artifacts(&uri, &["--yes"], &[]);
    assert_eq!(purged.status.code(), Some(9), "{}", String::from_utf8_lossy(&purged.stderr));
    let kept = report["artifacts"]["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{report:#}");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(state).join("expected.json")).unwrap())
            .unwrap();
    assert_eq!(kept[0]["id"], expected["kept_runs"][0], "{report:#}");
    let error = kept[0]["error"].as_str().unwrap();
    assert!(error.contains("live location(s) lie inside it"), "{error}");
    let stderr = String::from_utf8_lossy(&purged.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("1 entity was kept") && last.contains("lie inside it"), "{last}");
    assert_ok(&client(&["verify", &uri, root, state], &[]), "verify");
}

/// The same on S3 (moto's server), the client and the janitor reading the same settings.
#[test]
fn s3_artifacts_of_purged_entities_go_and_live_ones_stay() {
    let moto = Moto::start();
    moto.buckets(&["arts"]);
    let env = moto.env();
    let store = TestStore::on(Backend::Postgresql).unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let state = tempfile::tempdir().unwrap();
    let state = state.path().to_str().unwrap();
    let root = "s3://arts/mlflow";
    assert_ok(&client(&["seed", &uri, root, state], &env), "seed");

    let (purged, report) = purge_artifacts(&uri, &["--yes"], &env);
    assert_ok(&purged, "purge");
    assert!(report["artifacts"]["objects"].as_u64().unwrap() > 0, "{report:#}");
    assert_ok(&client(&["verify", &uri, root, state], &env), "verify");
}

/// Purges the fixture store through the library's entry point with artifacts, in batches of 2.
fn purge_with_artifacts(
    store: &TestStore,
    cloud: CloudConfig,
    mode: Mode,
) -> (mlflow_janitor::Result<()>, Report) {
    let mut settings = Settings::new(store.uri().clone(), ScopeRequest::default(), mode);
    settings.batch_size = 2;
    settings.artifacts = Some(ArtifactSettings { resolver: Resolver::new(None).unwrap(), cloud });
    let mut report = Report::new("test".into(), "", mode);
    let result = Prepared::prepare(settings, &mut report)
        .and_then(|prepared| prepared.confirm(|_| Ok(())))
        .and_then(|confirmed| confirmed.run(None, &mut report, &mut |_| {}));
    (result, report)
}

/// Rewrites the fixture store's artifact locations (`/mlruns/...`), trace tags included, each
/// `(from, to)` in turn.
pub(crate) fn relocate(conn: &mut DbConnection, moves: &[(&str, &str)]) {
    for (table, column) in [
        ("experiments", "artifact_location"),
        ("runs", "artifact_uri"),
        ("logged_models", "artifact_location"),
        ("trace_tags", "value"),
    ] {
        for (from, to) in moves {
            // Test paths hold no quote.
            let update =
                format!("UPDATE {table} SET {column} = REPLACE({column}, '{from}', '{to}')");
            diesel::sql_query(update).execute(conn).unwrap();
        }
    }
}

/// The fixture store's artifact locations (`/mlruns/...`), moved to `root`, with a file at each.
fn artifacts_under(conn: &mut DbConnection, root: &str) -> Vec<PathBuf> {
    relocate(conn, &[("/mlruns", root)]);
    for (trace, experiment) in [("live-trace-1", 1), ("doomed-trace-3", 3)] {
        diesel::insert_into(trace_tags::table)
            .values((
                trace_tags::request_id.eq(trace),
                trace_tags::key.eq("mlflow.artifactLocation"),
                trace_tags::value.eq(format!("{root}/{experiment}/traces/{trace}/artifacts")),
            ))
            .execute(conn)
            .unwrap();
    }
    let mut locations: Vec<String> =
        runs::table.select(runs::artifact_uri.assume_not_null()).load(conn).unwrap();
    locations.push(format!("{root}/1/traces/live-trace-1/artifacts"));
    locations.push(format!("{root}/3/traces/doomed-trace-3/artifacts"));
    locations.push(format!("{root}/3/models/doomed-model-3"));
    locations.push(format!("{root}/1/models/live-model-1"));
    let paths: Vec<PathBuf> = locations.iter().map(|l| Path::new(l).join("data.bin")).collect();
    for path in &paths {
        write(path, path.to_str().unwrap().as_bytes());
    }
    paths
}

/// A dry run keeps what the purge then keeps, though it deletes nothing: a run of deleted
/// experiment 3 whose location lies outside the experiment's, and so experiment 3 itself, whose
/// tree waits for its runs. It counts, step by step, what the purge deletes.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_dry_run_keeps_the_entities_and_experiments_the_purge_keeps(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mlruns");
    artifacts_under(&mut conn, root.to_str().unwrap());
    let elsewhere = format!("{}/elsewhere/doomed-run-3a", dir.path().display());
    diesel::update(runs::table.filter(runs::run_uuid.eq("doomed-run-3a")))
        .set(runs::artifact_uri.eq(&elsewhere))
        .execute(&mut conn)
        .unwrap();
    let before = files(dir.path());

    let (dry_result, dry) = purge_with_artifacts(&store, CloudConfig::default(), Mode::DryRun);
    assert!(matches!(dry_result, Err(Error::EntitiesKept { dry_run: true, .. })), "{dry_result:?}");
    assert_eq!(files(dir.path()), before);
    let (result, report) = purge_with_artifacts(&store, CloudConfig::default(), Mode::Delete);
    assert!(matches!(result, Err(Error::EntitiesKept { dry_run: false, .. })), "{result:?}");
    let kept = |report: &Report| -> Vec<String> {
        report.artifacts.as_ref().unwrap().kept.iter().map(|k| k.id.clone()).collect()
    };
    assert_eq!(kept(&report), ["doomed-run-3a", "3"]);
    assert_eq!(kept(&dry), kept(&report));
    assert_eq!(crate::rows_by_step(&dry), crate::rows_by_step(&report));
}

/// A run whose artifact URI climbs out with `..`, one that lies outside its experiment's
/// location, and one a live model version was registered from (`runs:/`) keep their rows and
/// files; everything else is purged. Once their URIs are fixed and the version is gone, a rerun
/// finishes.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_run_pointing_outside_its_experiment_is_refused_and_the_rest_purged(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mlruns");
    let root = root.to_str().unwrap();
    let paths = artifacts_under(&mut conn, root);
    let climbing = format!("{root}/1/../2/live-run-2a/artifacts");
    let elsewhere = format!("{}/elsewhere/gone-run-2", dir.path().display());
    write(&Path::new(&elsewhere).join("data.bin"), b"not the run's to lose");
    for (run, uri) in [("gone-run-1", &climbing), ("gone-run-2", &elsewhere)] {
        diesel::update(runs::table.filter(runs::run_uuid.eq(run)))
            .set(runs::artifact_uri.eq(uri))
            .execute(&mut conn)
            .unwrap();
    }
    // A live model version registered from a deleted run, as `runs:/` (its files are the run's).
    diesel::insert_into(registered_models::table)
        .values(registered_models::name.eq("protector"))
        .execute(&mut conn)
        .unwrap();
    diesel::insert_into(model_versions::table)
        .values((
            model_versions::name.eq("protector"),
            model_versions::version.eq(1),
            model_versions::current_stage.eq("None"),
            model_versions::source.eq("runs:/gone-run-undated/model"),
        ))
        .execute(&mut conn)
        .unwrap();
    let before = files(dir.path());

    let (result, report) = purge_with_artifacts(&store, CloudConfig::default(), Mode::Delete);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::EntitiesKept { kept: 3, dry_run: false, .. }), "{err}");
    assert_eq!(err.exit_status(), 9);
    let artifacts = report.artifacts.unwrap();
    let kept: Vec<(&str, &str)> =
        artifacts.kept.iter().map(|k| (k.id.as_str(), k.error.as_str())).collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(kept[0].0, "gone-run-1");
    assert!(kept[0].1.contains("`..` segment"), "{}", kept[0].1);
    assert_eq!(kept[1].0, "gone-run-2");
    assert!(kept[1].1.contains("outside their experiment's artifact location"), "{}", kept[1].1);
    assert_eq!(kept[2].0, "gone-run-undated");
    assert!(kept[2].1.contains("1 live location(s) lie inside it"), "{}", kept[2].1);
    let left: Vec<String> = runs::table
        .filter(runs::lifecycle_stage.eq("deleted"))
        .select(runs::run_uuid)
        .order(runs::run_uuid)
        .load(&mut conn)
        .unwrap();
    assert_eq!(left, ["gone-run-1", "gone-run-2", "gone-run-undated"]);
    // Whatever belonged to purged entities is gone; everything else is as it was.
    let doomed = |path: &Path| {
        let path = path.to_str().unwrap();
        ["/3/", "/4/"].iter().any(|part| path.contains(part))
    };
    let expected: std::collections::BTreeMap<_, _> =
        before.into_iter().filter(|(path, _)| !doomed(path)).collect();
    assert_eq!(files(dir.path()), expected);
    assert!(paths.iter().any(|path| doomed(path)));
    assert!(!Path::new(root).join("3").exists(), "the deleted experiment's tree stays");

    for (run, experiment) in [("gone-run-1", 1), ("gone-run-2", 2)] {
        diesel::update(runs::table.filter(runs::run_uuid.eq(run)))
            .set(runs::artifact_uri.eq(format!("{root}/{experiment}/{run}/artifacts")))
            .execute(&mut conn)
            .unwrap();
    }
    diesel::delete(model_versions::table).execute(&mut conn).unwrap();
    let (result, report) = purge_with_artifacts(&store, CloudConfig::default(), Mode::Delete);
    result.unwrap();
    assert_eq!(report.entities[&mlflow_janitor::plan::Entity::Run], 3);
    let expected: std::collections::BTreeMap<_, _> = expected
        .into_iter()
        .filter(|(path, _)| {
            !path.starts_with(root) || !path.to_str().unwrap().contains("/gone-run-")
        })
        .collect();
    assert_eq!(files(dir.path()), expected);
    assert!(Path::new(&elsewhere).join("data.bin").exists());
}

/// Live experiment 1 and deleted experiment 3 in a bucket that refuses deletes: the deleted runs
/// of both, and experiment 3 with them, keep their rows and objects; the rest, in a bucket that
/// takes deletes, is purged with its objects.
#[test]
fn a_bucket_refusing_deletes_keeps_its_entities_and_the_rest_is_purged() {
    let moto = Moto::start();
    moto.buckets(&["open", "locked:deny-delete"]);
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let moves = [("/mlruns/1", "s3://locked/1"), ("/mlruns/3", "s3://locked/3")];
    relocate(&mut conn, &moves);
    relocate(&mut conn, &[("/mlruns", "s3://open")]);
    let keys: Vec<String> =
        runs::table.select(runs::artifact_uri.assume_not_null()).load(&mut conn).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for uri in &keys {
        let (bucket, prefix) = uri.trim_start_matches("s3://").split_once('/').unwrap();
        let key = ObjectPath::from(format!("{prefix}/data.bin"));
        runtime.block_on(moto.client(bucket).put(&key, PutPayload::from_static(b"bytes"))).unwrap();
    }
    let listed = |bucket: &str| -> Vec<String> {
        use futures_util::TryStreamExt;
        let client = moto.client(bucket);
        let objects: Vec<_> = runtime.block_on(client.list(None).try_collect()).unwrap();
        let mut keys: Vec<String> = objects.into_iter().map(|o| o.location.to_string()).collect();
        keys.sort();
        keys
    };
    let locked_before = listed("locked");
    assert_eq!(locked_before.len(), 7);

    let config = moto.config();
    let (result, report) = purge_with_artifacts(&store, config, Mode::Delete);
    let err = result.unwrap_err();
    let artifacts = report.artifacts.unwrap();
    let kept: Vec<&str> = artifacts.kept.iter().map(|k| k.id.as_str()).collect();
    let runs =
        ["doomed-run-3a", "doomed-run-3b", "doomed-run-3c", "gone-run-1", "gone-run-undated"];
    assert_eq!(kept, [&runs[..], &["3"]].concat(), "{err}");
    for kept in &artifacts.kept[..runs.len()] {
        assert!(kept.error.contains("AccessDenied"), "{}", kept.error);
    }
    let experiments: Vec<i32> = mlflow_janitor::schema::experiments::table
        .select(mlflow_janitor::schema::experiments::experiment_id)
        .order(mlflow_janitor::schema::experiments::experiment_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(experiments, [1, 2, 3]);
    assert_eq!(listed("locked"), locked_before);
    let open = listed("open");
    assert_eq!(open, ["2/live-run-2a/artifacts/data.bin", "2/live-run-2b/artifacts/data.bin"]);
    // Experiment 4 and the deleted run of live experiment 2 are purged.
    let runs_left: Vec<String> =
        runs::table.select(runs::run_uuid).order(runs::run_uuid).load(&mut conn).unwrap();
    assert_eq!(
        runs_left,
        [
            "doomed-run-3a",
            "doomed-run-3b",
            "doomed-run-3c",
            "gone-run-1",
            "gone-run-undated",
            "live-run-1a",
            "live-run-1b",
            "live-run-2a",
            "live-run-2b"
        ]
    );
}

/// Behind `mlflow server --serve-artifacts`, entities name `mlflow-artifacts:` URIs. Without
/// --artifacts-destination nothing can be resolved: every entity with artifacts is kept, with
/// an error saying what to pass, and nothing is deleted. With it, the purge finishes.
#[test]
fn proxied_artifacts_resolve_through_the_destination_and_without_it_are_kept() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("mlartifacts");
    let destination = destination.to_str().unwrap();
    artifacts_under(&mut conn, destination);
    relocate(&mut conn, &[(destination, "mlflow-artifacts:")]);
    let before = files(dir.path());
    let uri = store.uri().given();

    let (kept, report) = purge_artifacts(uri, &["--yes"], &[]);
    assert_eq!(kept.status.code(), Some(9), "{}", String::from_utf8_lossy(&kept.stderr));
    let errors = report["artifacts"]["kept"].as_array().unwrap();
    assert!(!errors.is_empty());
    for kept in errors {
        let error = kept["error"].as_str().unwrap();
        // A deleted experiment is kept because its runs are.
        let why =
            if kept["entity"] == "experiment" { "runs" } else { "pass --artifacts-destination" };
        assert!(error.contains(why), "{error}");
    }
    assert_eq!(files(dir.path()), before);

    let (purged, report) =
        purge_artifacts(uri, &["--yes", "--artifacts-destination", destination], &[]);
    assert_ok(&purged, "purge --artifacts-destination");
    assert_eq!(report["artifacts"]["kept"], serde_json::json!([]), "{report:#}");
    let left: Vec<String> = files(dir.path())
        .into_keys()
        .map(|path| path.strip_prefix(destination).unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        left,
        [
            "1/live-run-1a/artifacts/data.bin",
            "1/live-run-1b/artifacts/data.bin",
            "1/models/live-model-1/data.bin",
            "1/traces/live-trace-1/artifacts/data.bin",
            "2/live-run-2a/artifacts/data.bin",
            "2/live-run-2b/artifacts/data.bin"
        ]
    );
    // A purged run leaves no empty folder behind in its live experiment's.
    let experiment = Path::new(destination).join("1");
    assert!(experiment.is_dir() && !experiment.join("gone-run-1").exists());
}

/// A live experiment behind the artifact proxy, in a store whose other experiments are local:
/// without --artifacts-destination, where its files lie is unknown, so nothing is deleted.
#[test]
fn a_live_proxied_location_that_cannot_be_resolved_stops_every_deletion() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mlruns");
    artifacts_under(&mut conn, root.to_str().unwrap());
    relocate(&mut conn, &[(&format!("{}/2", root.display()), "mlflow-artifacts:/2")]);
    let before = files(dir.path());

    let (result, report) = purge_with_artifacts(&store, CloudConfig::default(), Mode::Delete);
    assert!(matches!(result, Err(Error::EntitiesKept { .. })), "{result:?}");
    let artifacts = report.artifacts.unwrap();
    assert_eq!(artifacts.locations, 0);
    let refused = artifacts.kept.iter().find(|k| k.id == "gone-run-1").unwrap();
    assert!(refused.error.contains("cannot be resolved"), "{}", refused.error);
    assert_eq!(files(dir.path()), before);
}
