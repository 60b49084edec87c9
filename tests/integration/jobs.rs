//! `purge --jobs`: batches on several connections at once delete exactly what one job deletes,
//! and a batch the database rolls back to break a deadlock runs again.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mlflow_janitor::schema::runs;
use mlflow_janitor::Backend;
use test_case::test_case;

use crate::{fixtures, janitor, snapshot};

/// Purges `uri` through the binary with `args`; returns the JSON report and stderr.
fn purge(uri: &str, args: &[&str]) -> (serde_json::Value, String) {
    let output = janitor()
        .args(["purge", "--yes", "--output", "json", "--backend-store-uri", uri])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    (serde_json::from_slice(&output.stdout).unwrap(), stderr)
}

/// One entity per batch and four jobs: every batch of a phase is under way beside others, and
/// the store ends as one job leaves it, row for row.
#[test_case(Backend::Postgresql ; "postgresql")]
#[test_case(Backend::Mysql ; "mysql")]
fn four_jobs_purge_what_one_job_purges(backend: Backend) {
    let (one, mut one_conn) = fixtures::seeded_store(backend);
    let (four, mut four_conn) = fixtures::seeded_store(backend);
    // The same seed at another moment: the stores differ in their times only.
    let (reported_one, _) = purge(one.uri().given(), &["--batch-size", "1"]);
    let (reported_four, _) = purge(four.uri().given(), &["--batch-size", "1", "--jobs", "4"]);
    for field in ["entities", "rows_by_table", "steps", "batches"] {
        assert_eq!(reported_four[field], reported_one[field], "{field}");
    }
    let keys = |conn: &mut mlflow_janitor::DbConnection| -> Vec<String> {
        runs::table.select(runs::run_uuid).order(runs::run_uuid).load(conn).unwrap()
    };
    assert_eq!(keys(&mut four_conn), keys(&mut one_conn));
    let tables = |conn: &mut mlflow_janitor::DbConnection| -> Vec<(String, usize)> {
        snapshot(conn).into_iter().map(|(table, rows)| (table, rows.lines().count())).collect()
    };
    assert_eq!(tables(&mut four_conn), tables(&mut one_conn));
}

/// SQLite has one writer: asked for more jobs, the purge runs one, and says why.
#[test]
fn sqlite_runs_one_job_and_says_so() {
    let (store, _conn) = fixtures::seeded_store(Backend::Sqlite);
    let (report, stderr) = purge(store.uri().given(), &["--jobs", "4"]);
    assert!(report["entities"]["run"].as_u64().unwrap() > 0, "{report}");
    assert!(stderr.contains("one job: SQLite has one writer at a time"), "{stderr}");
}

/// A deadlock, forced: another session holds the row of a purged run, then waits for the
/// run's tags, which the purge's batch has deleted and holds while it waits for the run's row.
/// PostgreSQL breaks the cycle by rolling the batch back (the other session waits longer before
/// it checks); the batch runs again, and the purge ends whole.
#[test]
fn a_batch_rolled_back_to_break_a_deadlock_runs_again() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    let mut other = store.uri().establish().unwrap();
    other
        .batch_execute(
            "BEGIN; SET LOCAL deadlock_timeout = '60s';
             UPDATE runs SET name = name WHERE run_uuid = 'gone-run-1'",
        )
        .unwrap();
    let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");
    let purge = std::process::Command::new(binary)
        .args(["purge", "--yes", "--batch-size", "1", "--jobs", "2", "--output", "json"])
        .args(["--backend-store-uri", store.uri().given()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The batch of gone-run-1 deleted its tags and waits for the run's row.
    let started = Instant::now();
    loop {
        #[derive(QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let waiting: Waiting = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
               AND application_name = 'mlflow-janitor' AND wait_event_type = 'Lock'",
        )
        .get_result(&mut conn)
        .unwrap();
        if waiting.n > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the purge never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Waits until PostgreSQL has rolled the batch back, then lets the run go.
    other.batch_execute("UPDATE tags SET value = value WHERE run_uuid = 'gone-run-1'").unwrap();
    other.batch_execute("ROLLBACK").unwrap();

    let output = purge.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("deadlock: the batch rolled back, and runs again"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let left: i64 = runs::table
        .filter(runs::lifecycle_stage.eq("deleted"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(left, 0, "{report}");
}
