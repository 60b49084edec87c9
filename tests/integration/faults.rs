//! Faults during a purge: whatever moment the process dies, no run or experiment is left half
//! deleted, no artifact is left without the row that names it, and the next run finishes the
//! job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use mlflow_janitor::Backend;
use test_case::test_case;

use crate::own_server::OwnServer;
use crate::{fixtures, snapshot};

#[derive(QueryableByName, PartialEq, Eq, Debug)]
struct Held {
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = BigInt)]
    held: i64,
}

/// The rows each run and each experiment holds: a half-deleted one would hold fewer.
fn holdings(conn: &mut mlflow_janitor::DbConnection) -> BTreeMap<String, i64> {
    diesel::sql_query(
        "SELECT CONCAT('run ', r.run_uuid) AS owner, \
                (SELECT count(*) FROM metrics m WHERE m.run_uuid = r.run_uuid) \
              + (SELECT count(*) FROM params p WHERE p.run_uuid = r.run_uuid) \
              + (SELECT count(*) FROM tags t WHERE t.run_uuid = r.run_uuid) \
              + (SELECT count(*) FROM latest_metrics l WHERE l.run_uuid = r.run_uuid) \
              + (SELECT count(*) FROM inputs i WHERE i.destination_id = r.run_uuid) AS held \
         FROM runs r \
         UNION ALL \
         SELECT CONCAT('experiment ', e.experiment_id), \
                (SELECT count(*) FROM experiment_tags t WHERE t.experiment_id = e.experiment_id) \
              + (SELECT count(*) FROM datasets d WHERE d.experiment_id = e.experiment_id) \
              + (SELECT count(*) FROM scorers s WHERE s.experiment_id = e.experiment_id) \
         FROM experiments e",
    )
    .load::<Held>(conn)
    .unwrap()
    .into_iter()
    .map(|h| (h.owner, h.held))
    .collect()
}

/// Each run's artifact file, as `(experiment id, run id, path)`.
fn run_files(root: &Path) -> Vec<(String, String, PathBuf)> {
    if !root.exists() {
        return Vec::new();
    }
    crate::artifacts::files(root)
        .into_keys()
        .map(|path| {
            let mut parts = path.strip_prefix(root).unwrap().iter();
            let experiment = parts.next().unwrap().to_str().unwrap().to_owned();
            let run = parts.next().unwrap().to_str().unwrap().to_owned();
            (experiment, run, path)
        })
        .collect()
}

/// The deleted runs and experiments that some archive under `root` holds: those of the batches
/// its manifests record (written, whether or not the batch then committed).
fn archived(root: &Path) -> BTreeSet<String> {
    let mut held = BTreeSet::new();
    for archive in std::fs::read_dir(root).into_iter().flatten() {
        let manifest = archive.unwrap().path().join("manifest.jsonl");
        for line in std::fs::read_to_string(manifest).unwrap_or_default().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if record["record"] == "batch" {
                let kind = record["entity"].as_str().unwrap().to_owned();
                for id in record["ids"].as_array().unwrap() {
                    held.insert(format!("{kind} {}", id.as_str().unwrap()));
                }
            }
        }
    }
    held
}

/// How the purges of the kill test run: plain, with their artifacts, or with an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum With {
    Artifacts,
    Archive,
}

#[test_case(Backend::Postgresql, With::Archive; "postgresql with an archive")]
#[test_case(Backend::Mysql, With::Archive; "mysql with an archive")]
#[test_case(Backend::Sqlite, With::Archive; "sqlite with an archive")]
#[test_case(Backend::Postgresql, With::Artifacts; "postgresql with artifacts")]
#[test_case(Backend::Mysql, With::Artifacts; "mysql with artifacts")]
#[test_case(Backend::Sqlite, With::Artifacts; "sqlite with artifacts")]
fn kill_9_at_any_point_leaves_whole_entities_and_a_rerun_finishes(backend: Backend, with: With) {
    let artifacts = with == With::Artifacts;
    let store = mlflow_janitor::test_store::TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("artifact-root");
    let archives = dir.path().join("archives");
    let archive_args = match with {
        With::Archive => vec!["--archive".to_owned(), archives.display().to_string()],
        With::Artifacts => vec!["--artifacts".to_owned()],
    };
    let relocate = |conn: &mut mlflow_janitor::DbConnection| {
        if artifacts {
            crate::purge_artifacts::relocate(conn, &[("/mlruns", root.to_str().unwrap())]);
        }
    };
    fixtures::live(&mut conn);
    relocate(&mut conn);
    let live = snapshot(&mut conn);
    fixtures::deleted(&mut conn);
    // Enough soft-deleted runs for the purge to be caught anywhere in its run phase.
    for i in 0..60 {
        fixtures::run(&mut conn, 2, &format!("bulk-{i:02}"), Some(Some(fixtures::now_ms())));
    }
    relocate(&mut conn);
    let uris: Vec<String> = mlflow_janitor::schema::runs::table
        .select(mlflow_janitor::schema::runs::artifact_uri.assume_not_null())
        .load(&mut conn)
        .unwrap();
    if artifacts {
        for uri in uris {
            crate::artifacts::write(&Path::new(&uri).join("data.bin"), uri.as_bytes());
        }
    }
    let live_files: Vec<PathBuf> = run_files(&root)
        .into_iter()
        .filter(|(_, run, _)| run.starts_with("live-"))
        .map(|(_, _, path)| path)
        .collect();
    let initial = holdings(&mut conn);
    let everything = snapshot(&mut conn);
    let uri = store.uri().given().to_owned();
    let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");

    let deleted_left = |conn: &mut mlflow_janitor::DbConnection| -> i64 {
        mlflow_janitor::schema::runs::table
            .filter(mlflow_janitor::schema::runs::lifecycle_stage.eq("deleted"))
            .count()
            .get_result(conn)
            .unwrap()
    };
    // Ten kills: one before the first batch, then each after a few more runs went, wherever the
    // purge then is (inside a batch's transaction or between two).
    for attempt in 0..10 {
        let target = deleted_left(&mut conn) - if attempt == 0 { 0 } else { 3 };
        let mut child = std::process::Command::new(&binary)
            .args([
                "purge",
                "--yes",
                "--batch-size",
                "1",
                "--throttle",
                "5ms",
                "--backend-store-uri",
                &uri,
            ])
            .args(&archive_args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while deleted_left(&mut conn) > target && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let held = holdings(&mut conn);
        for (owner, rows) in &held {
            assert_eq!(Some(rows), initial.get(owner), "kill {attempt} left {owner} half-deleted");
        }
        // Every purged run and experiment is in the store or in an archive.
        if with == With::Archive {
            let archived = archived(&archives);
            for owner in initial.keys().filter(|owner| !held.contains_key(*owner)) {
                assert!(archived.contains(owner), "kill {attempt}: {owner} is in neither");
            }
        }
        // Artifacts go before their rows: a file left names a run still there, or, for the
        // runs of a deleted experiment (whose tree takes their files), that experiment.
        for (experiment, run, path) in run_files(&root) {
            let owner = if ["3", "4"].contains(&experiment.as_str()) {
                format!("experiment {experiment}")
            } else {
                format!("run {run}")
            };
            let named = held.contains_key(&owner);
            assert!(named, "kill {attempt} left {} with no row naming it", path.display());
        }
    }
    // The kills did interrupt the purge: some deleted runs went, some are left.
    let left = deleted_left(&mut conn);
    assert!(left > 0 && left <= 69 - 27, "{left} of 69 deleted runs left");
    let rerun = std::process::Command::new(&binary)
        .args(["purge", "--yes", "--backend-store-uri", &uri])
        .args(&archive_args)
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    assert_eq!(snapshot(&mut conn), live);
    let files_left: Vec<PathBuf> = run_files(&root).into_iter().map(|(_, _, path)| path).collect();
    assert_eq!(files_left, live_files);
    if with == With::Archive {
        // All the archives of the killed purges and the rerun bring back every purged entity,
        // each once: the store is the one before the purges.
        let restore = std::process::Command::new(&binary)
            .arg("restore")
            .arg(&archives)
            .args(["--yes", "--backend-store-uri", &uri])
            .output()
            .unwrap();
        assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
        assert_eq!(snapshot(&mut conn), everything);
    }
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
fn a_server_restart_during_a_purge_fails_it_clearly_and_the_rerun_finishes(backend: Backend) {
    let server = OwnServer::start(backend);
    let uri = server.uri();
    let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");
    let init = std::process::Command::new(&binary)
        .args(["init", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut conn = mlflow_janitor::StoreUri::parse(&uri).unwrap().establish().unwrap();
    fixtures::live(&mut conn);
    let live = snapshot(&mut conn);
    fixtures::deleted(&mut conn);
    for i in 0..40 {
        fixtures::run(&mut conn, 2, &format!("bulk-{i:02}"), Some(Some(fixtures::now_ms())));
    }
    drop(conn);

    // One run per batch and a pause between batches: the restart lands mid-purge.
    let purge = std::process::Command::new(&binary)
        .args(["purge", "--yes", "--batch-size", "1", "--throttle", "100ms"])
        .args(["--backend-store-uri", &uri])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Restart once the first batches are in.
    let mut watcher = mlflow_janitor::StoreUri::parse(&uri).unwrap().establish().unwrap();
    for _ in 0..300 {
        let bulk_left: i64 = mlflow_janitor::schema::runs::table
            .filter(mlflow_janitor::schema::runs::run_uuid.like("bulk-%"))
            .count()
            .get_result(&mut watcher)
            .unwrap();
        if bulk_left < 35 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(watcher);
    server.restart();
    let failed = purge.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default().to_owned();
    assert_eq!(
        failed.status.code(),
        Some(i32::from(mlflow_janitor::error::exit_code::PARTIAL)),
        "{stderr}"
    );
    assert!(error.contains("purge stopped after") && error.contains("rerun to finish"), "{error}");

    let rerun = std::process::Command::new(&binary)
        .args(["purge", "--yes", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let mut conn = mlflow_janitor::StoreUri::parse(&uri).unwrap().establish().unwrap();
    assert_eq!(snapshot(&mut conn), live);
}
