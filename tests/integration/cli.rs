//! The binary: exit codes (as the README lists them), outputs, and bad input that touches nothing.

use assert_cmd::Command;
use diesel::prelude::*;
use mlflow_janitor::error::exit_code;
use mlflow_janitor::store::StoreLock;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::Backend;
use predicates::prelude::*;
use test_case::test_case;

use crate::{fixtures, snapshot, UNKNOWN_REVISION};

fn janitor(uri: &str) -> Command {
    let mut cmd = Command::cargo_bin("mlflow-janitor").unwrap();
    cmd.env_remove("MLFLOW_BACKEND_STORE_URI").env("RUST_LOG", "warn").args([
        "purge",
        "--backend-store-uri",
        uri,
    ]);
    cmd
}

/// A session that holds the store's purge lock, as a running purge does, until dropped.
fn hold_purge_lock(store: &TestStore) -> (mlflow_janitor::DbConnection, StoreLock) {
    let mut holder = store.connect().unwrap();
    let lock = mlflow_janitor::store::lock_store(&mut holder, store.uri()).unwrap();
    (holder, lock)
}

fn seeded_store() -> (TestStore, String) {
    seeded_store_on(Backend::Postgresql)
}

fn seeded_store_on(backend: Backend) -> (TestStore, String) {
    let (store, _) = fixtures::seeded_store(backend);
    let uri = crate::as_mlflow_spells_it(&store);
    (store, uri)
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn purge_with_yes_reports_json_on_stdout_and_exits_0(backend: Backend) {
    let (store, uri) = seeded_store_on(backend);
    let output = janitor(&uri).args(["--yes", "--output", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["entities"]["experiment"], 2);
    assert_eq!(report["entities"]["run"], 9);
    assert_eq!(report["rows_by_table"]["metrics"], 27);
    assert!(report["batches"].as_u64().unwrap() >= 4);
    // A second run finds nothing to do, and says so with exit code 0.
    janitor(&uri).arg("--yes").assert().code(0).stderr(predicate::str::contains("purged nothing"));
    drop(store);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn dry_run_prints_the_plan_and_changes_nothing(backend: Backend) {
    let (store, uri) = seeded_store_on(backend);
    let before = snapshot(&mut store.connect().unwrap());
    janitor(&uri)
        .arg("--dry-run")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("metrics").and(predicate::str::contains("27")))
        .stderr(predicate::str::contains(
            "would purge 9 run(s), 2 trace(s), 2 logged model(s), 2 experiment(s)",
        ));
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

#[test]
fn without_yes_and_without_a_terminal_it_refuses() {
    let (store, uri) = seeded_store();
    let before = snapshot(&mut store.connect().unwrap());
    janitor(&uri)
        .write_stdin("y\n")
        .assert()
        .code(i32::from(exit_code::USAGE))
        .stderr(predicate::str::contains("pass --yes"));
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

#[test]
fn bad_input_is_one_line_with_its_exit_code_and_touches_nothing() {
    let (store, uri) = seeded_store();
    let before = snapshot(&mut store.connect().unwrap());
    let missing_file = tempfile::tempdir().unwrap();
    let missing_uri = format!("sqlite:///{}/typo.db", missing_file.path().display());
    let cases: [(&[&str], &str, u8, &str); 7] = [
        (&["--run-ids", "live-run-1a"], &uri, exit_code::USAGE, "run live-run-1a is not deleted"),
        (&[], "mongodb://db/mlflow", exit_code::USAGE, "unsupported backend store URI scheme"),
        (&[], "sqlite://mlflow.db", exit_code::USAGE, "three slashes"),
        (&[], &missing_uri, exit_code::STORE, "no SQLite store at"),
        (&["--older-than", "soon"], &uri, exit_code::USAGE, "examples: 30d"),
        (&["--older-than", "30d", "--run-ids", "x"], &uri, exit_code::USAGE, "cannot be used with"),
        (&[], "postgresql://postgres@127.0.0.1:1/mlflow", exit_code::STORE, "cannot connect to"),
    ];
    for (args, uri, code, message) in cases {
        let output = Command::cargo_bin("mlflow-janitor")
            .unwrap()
            .args(["purge", "--yes", "--backend-store-uri", uri])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(i32::from(code)), "{args:?}: {stderr}");
        let error_line = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
        assert!(error_line.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
    // Without a URI: MLflow's ./mlflow.db, never created when missing.
    Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .current_dir(missing_file.path())
        .args(["purge", "--dry-run"])
        .assert()
        .code(i32::from(exit_code::STORE))
        .stderr(predicate::str::contains("the default store when no URI is given"));
    assert_eq!(std::fs::read_dir(missing_file.path()).unwrap().count(), 0, "a file was made");
}

#[test]
fn a_store_it_cannot_vouch_for_is_refused_before_anything_is_deleted() {
    let unknown = format!("UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'");
    let named = format!("schema revision `{UNKNOWN_REVISION}`");
    let changes = [
        ("DROP TABLE alembic_version", "is not an MLflow store"),
        (unknown.as_str(), named.as_str()),
        (
            "CREATE TABLE run_notes (run_uuid varchar(32) REFERENCES runs (run_uuid), note text)",
            "table `run_notes` references `runs`",
        ),
        ("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$", "is read-only"),
    ];
    for (change, message) in changes {
        let (store, uri) = seeded_store();
        let mut conn = store.connect().unwrap();
        diesel::sql_query(change).execute(&mut conn).unwrap();
        let before = snapshot(&mut conn);
        janitor(&uri)
            .arg("--yes")
            .assert()
            .code(i32::from(exit_code::STORE))
            .stderr(predicate::str::contains(message));
        assert_eq!(snapshot(&mut conn), before, "{change}");
    }
}

#[test]
fn an_unknown_table_that_cascades_does_not_stop_the_purge() {
    let (store, uri) = seeded_store();
    diesel::sql_query(
        "CREATE TABLE run_notes (run_uuid varchar(32) REFERENCES runs (run_uuid) ON DELETE CASCADE)",
    )
    .execute(&mut store.connect().unwrap())
    .unwrap();
    janitor(&uri).arg("--yes").assert().code(0);
}

#[test]
fn a_progress_bar_shows_on_a_terminal_and_never_through_a_pipe() {
    let (store, uri) = seeded_store();
    let before = snapshot(&mut store.connect().unwrap());
    // Through pipes: logs and the summary, no bar.
    let piped = janitor(&uri)
        .args(["--dry-run", "--batch-size", "1"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(stderr.contains("batch done") && !stderr.contains("entities ·"), "{stderr}");
    // Under a pseudo-terminal (util-linux `script`): the bar, on stderr.
    let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");
    let command =
        format!("{} purge --dry-run --batch-size 1 --backend-store-uri {uri}", binary.display());
    let tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(shown.contains("/15 entities ·"), "{shown}");
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

#[test]
fn help_and_version_are_pinned() {
    for args in [
        &["--help"][..],
        &["purge", "--help"],
        &["init", "--help"],
        &["reset", "--help"],
        &["status", "--help"],
        &["doctor", "--help"],
        &["restore", "--help"],
    ] {
        let output = Command::cargo_bin("mlflow-janitor").unwrap().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let name = format!("help_{}", args[0].trim_start_matches('-'));
        insta::assert_snapshot!(name, String::from_utf8(output.stdout).unwrap());
    }
    Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("MLflow 3.18.0 (alembic f4a9b2c7d1e6)"));
    Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("complete -F _mlflow__janitor"));
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_second_purge_of_the_same_store_is_refused_and_touches_nothing(backend: Backend) {
    let (store, uri) = seeded_store_on(backend);
    let _holder = hold_purge_lock(&store);
    let before = snapshot(&mut store.connect().unwrap());
    janitor(&uri)
        .arg("--yes")
        .assert()
        .code(i32::from(exit_code::ALREADY_RUNNING))
        .stderr(predicate::str::contains("another purge"));
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn max_duration_stops_between_batches_and_the_next_run_finishes(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    fixtures::live(&mut conn);
    let live = snapshot(&mut conn);
    fixtures::deleted(&mut conn);
    let uri = store.uri().given();

    let args = ["--yes", "--batch-size", "1", "--throttle", "100ms", "--max-duration", "350ms"];
    janitor(uri).args(args).assert().code(i32::from(exit_code::NOT_FINISHED));
    // Whole runs only: each soft-deleted run left still has all its metrics.
    let left: Vec<(String, i64)> = mlflow_janitor::schema::runs::table
        .left_join(mlflow_janitor::schema::metrics::table)
        .filter(mlflow_janitor::schema::runs::lifecycle_stage.eq("deleted"))
        .group_by(mlflow_janitor::schema::runs::run_uuid)
        .select((
            mlflow_janitor::schema::runs::run_uuid,
            diesel::dsl::count(mlflow_janitor::schema::metrics::key.nullable()),
        ))
        .load(&mut conn)
        .unwrap();
    assert!(!left.is_empty() && left.len() < 9, "{left:?}");
    assert!(left.iter().all(|(_, metrics)| *metrics == 3), "{left:?}");

    janitor(uri).arg("--yes").assert().code(0);
    assert_eq!(snapshot(&mut conn), live);
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let (_store, uri) = seeded_store();
    let output = Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args([
            "--log-format",
            "json",
            "purge",
            "--yes",
            "--batch-size",
            "4",
            "--backend-store-uri",
            &uri,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let batch = lines.iter().find(|l| l["message"] == "batch done").expect("a batch line");
    assert_eq!(batch["entity"], "run");
    assert!(batch["rows"].as_u64().unwrap() > 0 && batch["duration_ms"].is_u64(), "{batch}");
    assert!(lines.last().unwrap()["message"].as_str().unwrap().starts_with("purged 9 run(s)"));
}

#[test]
fn a_policy_file_makes_the_schedule_one_line_and_flags_override_it() {
    let (store, uri) = seeded_store();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("mlflow_janitor.prom");
    let policy = dir.path().join("mlflow-janitor.toml");
    std::fs::write(
        &policy,
        format!(
            "backend_store_uri = \"{uri}\"\nolder_than = \"30d\"\nbatch_size = 100\nyes = true\n\
             lock_timeout = \"2s\"\njobs = 2\nreclaim = \"full\"\nmetrics_file = \"{}\"\n",
            metrics.display()
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::cargo_bin("mlflow-janitor")
            .unwrap()
            .env_remove("MLFLOW_BACKEND_STORE_URI")
            .args(["purge", "--output", "json", "--config"])
            .arg(&policy)
            .args(extra)
            .output()
            .unwrap()
    };
    // The file's age: only experiment 3 (60 days) and runs deleted 60 days ago or undated go.
    let output = run(&["--batch-size", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["entities"]["experiment"], 1, "{report}");
    assert_eq!(report["entities"]["run"], 5, "{report}");
    assert_eq!(report["batches"], 5 + 1 + 1 + 1, "the flag's batch size wins: {report}");
    assert_eq!(report["reclaim"]["reclaim"], "full", "{report}");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("mlflow_janitor_entities_purged{kind=\"run\"} 5"), "{prom}");
    assert!(prom.contains("mlflow_janitor_rows_purged{table=\"metrics\"} 15"), "{prom}");
    assert!(prom.contains("mlflow_janitor_last_run_exit_code 0"), "{prom}");
    assert!(prom.contains("\nmlflow_janitor_bytes_reclaimed "), "{prom}");
    let success = |prom: &str| {
        prom.lines()
            .find(|l| l.starts_with("mlflow_janitor_last_success_timestamp_seconds "))
            .map(str::to_owned)
    };
    let first_success = success(&prom).expect("a success time");
    // An administrator's dry run of the nightly policy leaves the figures of the last purge.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(run(&["--dry-run"]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), prom);

    // A failed run (another purge holds the lock) says so and keeps the last success time.
    let _holder = hold_purge_lock(&store);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(run(&[]).status.code(), Some(i32::from(exit_code::ALREADY_RUNNING)));
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("mlflow_janitor_last_run_exit_code 7"), "{prom}");
    assert_eq!(success(&prom), Some(first_success));

    std::fs::write(&policy, format!("backend_store_uri = \"{uri}\"\nolder_then = \"30d\"\n"))
        .unwrap();
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(i32::from(exit_code::USAGE)));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `older_then`"));

    std::fs::write(&policy, format!("backend_store_uri = \"{uri}\"\nreclaim = \"fast\"\n"))
        .unwrap();
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(i32::from(exit_code::USAGE)));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`reclaim` in the policy file is \"fast\": use true, false"),
        "{stderr}"
    );
}

#[test]
fn a_read_only_sqlite_file_is_refused_before_any_work() {
    use std::os::unix::fs::PermissionsExt;
    let (store, uri) = seeded_store_on(Backend::Sqlite);
    let file = store.uri().sqlite_file().unwrap().to_owned();
    let folder = file.parent().unwrap().to_owned();
    let before = snapshot(&mut store.connect().unwrap());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes whatever the modes say: run as nobody then.
    let purge = crate::as_user("nobody", assert_cmd::cargo::cargo_bin("mlflow-janitor"));
    Command::from_std(purge)
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .args(["purge", "--yes", "--backend-store-uri", &uri])
        .assert()
        .code(i32::from(exit_code::STORE))
        .stderr(predicate::str::contains("is read-only"));
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

/// Runs the binary's `args` on the store at `uri`.
fn on_store(args: &[&str], uri: &str) -> std::process::Output {
    let mut cmd = Command::cargo_bin("mlflow-janitor").unwrap();
    cmd.env_remove("MLFLOW_BACKEND_STORE_URI").args(args).args(["--backend-store-uri", uri]);
    cmd.output().unwrap()
}

/// A newer MLflow's store, of a revision this release does not know: `status` and `doctor`
/// read it, each with one warning naming the revision; `purge` and `doctor --fix` refuse it and
/// touch nothing.
#[test]
fn read_only_commands_read_a_newer_mlflows_store_with_one_warning() {
    let (store, uri) = seeded_store();
    let mut conn = store.connect().unwrap();
    diesel::sql_query(format!("UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'"))
        .execute(&mut conn)
        .unwrap();
    let before = snapshot(&mut conn);
    let named = format!("schema revision `{UNKNOWN_REVISION}`");

    for (read_only, shows) in [
        (&["status"][..], "names held by deleted experiments: doomed-3, doomed-4"),
        (&["doctor"], "no problems found"),
    ] {
        let output = on_store(read_only, &uri);
        let (stdout, stderr) =
            (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{read_only:?}: {stderr}");
        assert!(stdout.contains(shows), "{read_only:?}: {stdout}");
        let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{read_only:?}: {stderr}");
        assert!(warnings[0].contains(&named), "{read_only:?}: {stderr}");
    }
    for writer in [&["purge", "--yes"][..], &["doctor", "--fix", "--yes"]] {
        let output = on_store(writer, &uri);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(i32::from(exit_code::STORE)), "{writer:?}: {stderr}");
        assert!(stderr.contains(&named), "{writer:?}: {stderr}");
    }
    assert_eq!(snapshot(&mut conn), before);
}

/// `status` and `doctor` read the schemas from MLflow 3.17.2 on, without a warning, and refuse
/// an older one with what to do.
#[test]
fn read_only_commands_read_the_schemas_they_know_from_3_17_on() {
    for (version, code) in [("3.17.2", 0), ("3.10.1", exit_code::STORE)] {
        let store = TestStore::of_version(Backend::Postgresql, version).unwrap();
        fixtures::live(&mut store.connect().unwrap());
        let uri = store.uri().given().to_owned();
        for command in ["status", "doctor"] {
            let output = on_store(&[command], &uri);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(i32::from(code)),
                "{version} {command}: {stderr}"
            );
            if code == 0 {
                assert!(!stderr.contains("WARN"), "{version} {command}: {stderr}");
            } else {
                let says = format!("MLflow 3.17.2 and later, and {uri} has MLflow 3.10.1's");
                assert!(stderr.contains(&says), "{version} {command}: {stderr}");
            }
        }
    }
}

#[test]
fn an_unknown_revision_goes_on_with_allow_unknown_schema_only_if_every_reference_is_known() {
    let (store, uri) = seeded_store();
    let mut conn = store.connect().unwrap();
    diesel::sql_query(format!("UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'"))
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("CREATE TABLE run_notes (run_uuid varchar(32) REFERENCES runs (run_uuid))")
        .execute(&mut conn)
        .unwrap();
    let before = snapshot(&mut conn);
    janitor(&uri)
        .args(["--yes", "--allow-unknown-schema"])
        .assert()
        .code(i32::from(exit_code::STORE))
        .stderr(predicate::str::contains("table `run_notes` references `runs`"));
    assert_eq!(snapshot(&mut conn), before);

    diesel::sql_query("DROP TABLE run_notes").execute(&mut conn).unwrap();
    janitor(&uri).arg("--yes").assert().code(i32::from(exit_code::STORE));
    janitor(&uri)
        .args(["--yes", "--allow-unknown-schema", "--output", "json"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"mlflow_version\": \"unknown\""));
}

#[test]
fn the_readme_pytest_fixture_is_the_one_the_suite_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let printed = readme.split("```python\n").nth(1).unwrap().split("```").next().unwrap();
    let suite = std::fs::read_to_string(root.join("tests/e2e/test_reset_fixture.py")).unwrap();
    let start = suite.find("\nimport os\n").unwrap() + 1;
    let end = suite.find("\n\n\n# ---").unwrap() + 1;
    assert_eq!(printed, &suite[start..end], "README's pytest block, verbatim from `import os`");
}

/// `purge --dry-run | head -3`: a reader that leaves before the result is written is no failure,
/// and no panic.
#[test]
fn a_reader_that_leaves_early_is_no_failure() {
    let (store, uri) = seeded_store_on(Backend::Sqlite);
    let commands: [&[&str]; 4] = [
        &["purge", "--dry-run", "--backend-store-uri", &uri],
        &["purge", "--dry-run", "--output", "json", "--backend-store-uri", &uri],
        &["status", "--backend-store-uri", &uri],
        &["completions", "bash"],
    ];
    for args in commands {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlflow-janitor"))
            .args(args)
            .env_remove("MLFLOW_BACKEND_STORE_URI")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first byte
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    drop(store);
}
