//! `doctor`: finds orphan rows and removes them with `--fix`, leaving every live row as it was.

use std::collections::BTreeMap;

use assert_cmd::Command;
use diesel::prelude::*;
use mlflow_janitor::error::exit_code;
use mlflow_janitor::schema::metrics;
use predicates::prelude::*;

use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection};
use test_case::test_case;

use crate::{fixtures, snapshot};

fn doctor(uri: &str) -> Command {
    let mut cmd = Command::cargo_bin("mlflow-janitor").unwrap();
    cmd.env_remove("MLFLOW_BACKEND_STORE_URI").args(["doctor", "--backend-store-uri", uri]);
    cmd
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_clean_store_has_no_problem_and_exits_0(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    fixtures::live(&mut store.connect().unwrap());
    // Stock MLflow has no index on runs.experiment_id: advice, with the statement. (InnoDB
    // indexes every foreign key's columns itself.)
    let advice = match backend {
        Backend::Postgresql => {
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_runs_experiment_id ON runs (experiment_id);"
        }
        Backend::Mysql => "",
        Backend::Sqlite => "CREATE INDEX ix_runs_experiment_id ON runs (experiment_id);",
    };
    doctor(store.uri().given())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no problems found"))
        .stdout(predicate::str::contains(advice));
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn orphans_are_found_then_removed_with_fix_and_live_rows_stay(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    fixtures::live(&mut conn);
    let live = snapshot(&mut conn);
    // As `mlflow gc` leaves a run it purged: its inputs, input tags and associations stay.
    fixtures::run(&mut conn, 1, "collected", Some(None));
    for statement in [
        "DELETE FROM metrics WHERE run_uuid = 'collected'",
        "DELETE FROM latest_metrics WHERE run_uuid = 'collected'",
        "DELETE FROM params WHERE run_uuid = 'collected'",
        "DELETE FROM tags WHERE run_uuid = 'collected'",
        "DELETE FROM runs WHERE run_uuid = 'collected'",
        // A store that ran without its foreign keys (as SQLite does unless told otherwise).
        match backend {
            Backend::Postgresql => "ALTER TABLE metrics DROP CONSTRAINT metrics_run_uuid_fkey",
            Backend::Mysql => "ALTER TABLE metrics DROP FOREIGN KEY metrics_ibfk_1",
            Backend::Sqlite => "PRAGMA foreign_keys = OFF",
        },
        "INSERT INTO sql_trace_rollup_rebuild_queue (experiment_id, rollup_day, rollup_family) \
         VALUES (99, '2025-01-01', 'trace')",
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    diesel::insert_into(metrics::table)
        .values((
            metrics::key.eq("loss"),
            metrics::value.eq(1.0),
            metrics::timestamp.eq(1_i64),
            metrics::run_uuid.eq("never-was"),
            metrics::step.eq(0_i64),
            metrics::is_nan.eq(false),
        ))
        .execute(&mut conn)
        .unwrap();
    let uri = store.uri().given();

    let found = doctor(uri).args(["--output", "json"]).output().unwrap();
    assert_eq!(found.status.code(), Some(i32::from(exit_code::PROBLEMS_FOUND)));
    let report: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let orphans: Vec<(String, i64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "orphans")
        .map(|f| (f["table"].as_str().unwrap().to_owned(), f["rows"].as_i64().unwrap()))
        .collect();
    // The input's tags are not orphans yet: its input row still exists.
    let expected = [
        ("inputs", 1),
        ("entity_associations", 1),
        ("sql_trace_rollup_rebuild_queue", 1),
        ("metrics", 1),
    ];
    for (table, rows) in expected {
        assert!(orphans.contains(&(table.to_string(), rows)), "{table}: {orphans:?}");
    }
    doctor(uri)
        .arg("--fix")
        .assert()
        .code(i32::from(exit_code::USAGE))
        .stderr(predicate::str::contains("pass --yes"));

    doctor(uri)
        .args(["--fix", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("fixed    1 rows of metrics"))
        .stdout(predicate::str::contains("no problems found"));
    assert_eq!(snapshot(&mut conn), live, "only the orphans may go");
}

/// A SQLite store with the live fixtures, made without its foreign keys, where experiment 9 is
/// gone and left its run `orphan-run`, and whatever `more` adds, behind. Returns the store, a
/// connection to it (foreign keys still off) and a snapshot of its live rows.
fn sqlite_store_with_a_missing_experiment(
    more: impl FnOnce(&mut DbConnection),
) -> (TestStore, DbConnection, BTreeMap<String, String>) {
    let store = TestStore::on(Backend::Sqlite).unwrap();
    let mut conn = store.connect().unwrap();
    fixtures::live(&mut conn);
    let live = snapshot(&mut conn);
    diesel::sql_query("PRAGMA foreign_keys = OFF").execute(&mut conn).unwrap();
    fixtures::experiment(&mut conn, 9, "gone", None);
    fixtures::run(&mut conn, 9, "orphan-run", None);
    more(&mut conn);
    diesel::sql_query("DELETE FROM experiments WHERE experiment_id = 9")
        .execute(&mut conn)
        .unwrap();
    (store, conn, live)
}

/// A SQLite store made without its foreign keys can hold everything of an experiment that is
/// gone: its datasets, tags, runs, traces, models and the rest. Every parent the delete plan
/// knows is checked, and `--fix` removes the lot, with what those rows hold.
#[test]
fn rows_of_a_missing_experiment_are_found_then_removed_on_sqlite_without_foreign_keys() {
    let (store, mut conn, live) = sqlite_store_with_a_missing_experiment(|conn| {
        fixtures::trace(conn, 9, "orphan-trace", "orphan-run");
        fixtures::logged_model(conn, 9, "orphan-model", "orphan-run", "orphan-run");
    });
    let uri = store.uri().given();

    let found = doctor(uri).args(["--output", "json"]).output().unwrap();
    assert_eq!(found.status.code(), Some(i32::from(exit_code::PROBLEMS_FOUND)));
    let report: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let orphans: Vec<(&str, &str, i64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "orphans")
        .map(|f| {
            (f["table"].as_str().unwrap(), f["what"].as_str().unwrap(), f["rows"].as_i64().unwrap())
        })
        .collect();
    for table in ["datasets", "experiment_tags", "scorers", "review_queues", "runs", "trace_info"] {
        assert!(
            orphans.iter().any(|&(t, what, rows)| t == table
                && what.starts_with(&format!("{table} of experiments that are gone"))
                && rows == 1),
            "{table}: {orphans:?}"
        );
    }

    doctor(uri)
        .args(["--fix", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("fixed    1 rows of datasets"))
        .stdout(predicate::str::contains("fixed    1 rows of trace_info"))
        .stdout(predicate::str::contains("no problems found"));
    assert_eq!(snapshot(&mut conn), live, "only the orphans may go");
}

/// `--fix` on SQLite takes the write lock as its transaction begins, as the purge does: a
/// tracking server's write under way makes it wait its turn, not fail at its first delete.
#[test]
fn fix_waits_its_turn_behind_a_sqlite_writer() {
    let (store, _conn, _live) = sqlite_store_with_a_missing_experiment(|_| {});
    // The writer holds SQLite's write lock for 3 s, longer than the doctor takes to get to --fix.
    let mut writer = store.connect().unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut writer,
        "BEGIN IMMEDIATE; UPDATE experiments SET name = name WHERE experiment_id = 0",
    )
    .unwrap();
    let commit = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        diesel::connection::SimpleConnection::batch_execute(&mut writer, "COMMIT").unwrap();
    });

    doctor(store.uri().given())
        .args(["--fix", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("fixed    1 rows of runs"))
        .stdout(predicate::str::contains("no problems found"));
    commit.join().unwrap();
}
