//! End to end with the real MLflow client of the latest schema (and 3.17.2's for the purge): it
//! seeds a store made from the committed snapshot, the binary purges it, and the client then
//! reuses the deleted names and reads every live run back unchanged (tests/e2e/mlflow_store.py);
//! `reset` leaves a store the client finds fresh; the README's pytest fixture works between two
//! tests. The clients' venvs are made on first use under target/venvs by schema/mlflow-venv.sh
//! (`.ci/run` makes them up front).

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mlflow_janitor::store::revision::LATEST;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, StoreUri};
use test_case::test_case;

use crate::SiblingDatabase;

/// The Python of the latest schema's MLflow.
pub(crate) fn mlflow_python() -> PathBuf {
    python_of(LATEST.mlflow)
}

/// The Python of a venv holding MLflow `version` with the drivers, boto3 and pytest
/// (schema/mlflow-venv.sh), made on first use.
pub(crate) fn python_of(version: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venvs = root.join("target/venvs");
    let venv = venvs.join(format!("mlflow-{version}"));
    // Tests run in parallel: one makes the venv, the others wait for it (the lock goes with
    // the file, at the end of this function).
    std::fs::create_dir_all(&venvs).unwrap();
    let lock = std::fs::File::create(venvs.join(format!("mlflow-{version}.lock"))).unwrap();
    lock.lock().unwrap();
    let made =
        Command::new(root.join("schema/mlflow-venv.sh")).arg(version).arg(&venv).status().unwrap();
    assert!(made.success(), "schema/mlflow-venv.sh {version} failed");
    venv.join("bin/python")
}

fn client(python: &Path, command: &str, uri: &str, state: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mlflow_store.py");
    Command::new(python).arg(script).args([command, uri]).arg(state).output().unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows that point at a run, experiment, dataset or input that is gone (no foreign key says so).
const ORPHANS: &[&str] = &[
    "SELECT count(*) AS n FROM inputs i WHERE i.destination_type = 'RUN' \
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = i.destination_id)",
    "SELECT count(*) AS n FROM inputs i WHERE i.source_type = 'DATASET' \
       AND NOT EXISTS (SELECT 1 FROM datasets d WHERE d.dataset_uuid = i.source_id)",
    "SELECT count(*) AS n FROM inputs i WHERE i.source_type IN ('RUN_INPUT', 'RUN_OUTPUT') \
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = i.source_id)",
    "SELECT count(*) AS n FROM input_tags t \
       WHERE NOT EXISTS (SELECT 1 FROM inputs i WHERE i.input_uuid = t.input_uuid)",
    "SELECT count(*) AS n FROM entity_associations a WHERE a.destination_type = 'experiment' \
       AND NOT EXISTS (SELECT 1 FROM experiments e \
                       WHERE CONCAT(e.experiment_id, '') = a.destination_id)",
    "SELECT count(*) AS n FROM entity_associations a WHERE 'trace' IN (a.source_type, a.destination_type) \
       AND NOT EXISTS (SELECT 1 FROM trace_info t WHERE t.request_id IN (a.source_id, a.destination_id))",
    "SELECT count(*) AS n FROM sql_trace_rollup_rebuild_queue q \
       WHERE NOT EXISTS (SELECT 1 FROM experiments e WHERE e.experiment_id = q.experiment_id)",
];

fn assert_no_orphans(conn: &mut mlflow_janitor::DbConnection) {
    for query in ORPHANS {
        let orphans: Count = diesel::sql_query(*query).get_result(conn).unwrap();
        assert_eq!(orphans.n, 0, "orphan rows: {query}");
    }
}

/// A test store seeded by the real client (`seed`), with the URI as MLflow spells it and the
/// client's state directory.
fn seeded_by_mlflow() -> (PathBuf, TestStore, String, tempfile::TempDir) {
    let python = mlflow_python();
    let store = TestStore::new().unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let state = tempfile::tempdir().unwrap();
    let seeded = client(&python, "seed", &uri, state.path());
    assert!(seeded.status.success(), "seed failed: {}", String::from_utf8_lossy(&seeded.stderr));
    (python, store, uri, state)
}

/// The client seeds a store, the binary purges it, and the client finds the deleted names free,
/// the deleted runs gone and every live run unchanged (from 3.18.0 on, also the live issues and
/// skills). On SQLite as most users meet it: MLflow's default `./mlflow.db`, made by the client
/// itself and purged with no URI given.
#[test_case("3.17.2", Backend::Postgresql; "mlflow_3_17_postgresql")]
#[test_case("3.17.2", Backend::Mysql; "mlflow_3_17_mysql")]
#[test_case("3.17.2", Backend::Sqlite; "mlflow_3_17_sqlite")]
#[test_case("3.18.0", Backend::Postgresql; "mlflow_3_18_postgresql")]
#[test_case("3.18.0", Backend::Mysql; "mlflow_3_18_mysql")]
#[test_case("3.18.0", Backend::Sqlite; "mlflow_3_18_sqlite")]
fn the_real_mlflow_client_reuses_deleted_names_and_reads_live_runs_unchanged(
    version: &str,
    backend: Backend,
) {
    let python = python_of(version);
    let state = tempfile::tempdir().unwrap();
    let (store, uri) = match backend {
        Backend::Sqlite => (None, "sqlite:///mlflow.db".to_owned()),
        _ => {
            let store = TestStore::of_version(backend, version).unwrap();
            let uri = crate::as_mlflow_spells_it(&store);
            (Some(store), uri)
        }
    };
    let client_in_state = |command: &str| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mlflow_store.py");
        Command::new(&python)
            .current_dir(state.path())
            .arg(script)
            .args([command, &uri])
            .arg(state.path())
            .output()
            .unwrap()
    };
    let seeded = client_in_state("seed");
    assert!(seeded.status.success(), "seed failed: {}", String::from_utf8_lossy(&seeded.stderr));

    let janitor = |args: &[&str]| {
        let mut purge = assert_cmd::Command::cargo_bin("mlflow-janitor").unwrap();
        purge.current_dir(state.path()).env_remove("MLFLOW_BACKEND_STORE_URI");
        purge.args(["purge", "--output", "json"]).args(args);
        if store.is_some() {
            purge.args(["--backend-store-uri", &uri]);
        }
        let output = purge.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "purge {args:?} failed: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    // One entity per batch: rows that tie two entities are counted once, where they go.
    let dry = janitor(&["--dry-run", "--batch-size", "1"]);
    let report = janitor(&["--yes"]);
    for field in ["entities", "rows_by_table", "steps"] {
        assert_eq!(dry[field], report[field], "{field}: the dry run counted otherwise");
    }
    assert_eq!(report["mlflow_version"], version, "{report}");
    assert_eq!(report["entities"]["experiment"], 2, "{report}");
    assert_eq!(report["entities"]["run"], 4, "{report}");
    if version != "3.17.2" {
        // The issue of a deleted experiment, with its two categories (MLflow 3.18 on).
        assert_eq!(report["rows_by_table"]["issues"], 1, "{report}");
        assert_eq!(report["rows_by_table"]["issue_categories"], 2, "{report}");
    }

    let mut conn = match &store {
        Some(store) => store.connect().unwrap(),
        None => {
            let file = state.path().join("mlflow.db");
            StoreUri::parse(&format!("sqlite:///{}", file.display())).unwrap().establish().unwrap()
        }
    };
    assert_no_orphans(&mut conn);

    let verified = client_in_state("verify");
    assert!(
        verified.status.success(),
        "verify failed:\n{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// MLflow's default store, made and filled by the real client with half its bulk runs deleted:
/// `purge --reclaim` shrinks the file by what the report says, and the client then reads every
/// live run unchanged.
#[test]
fn purge_reclaim_shrinks_a_sqlite_store_the_client_filled() {
    let python = mlflow_python();
    let state = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", state.path().join("mlflow.db").display());
    for command in ["seed", "add-bulk"] {
        let done = client(&python, command, &uri, state.path());
        assert!(done.status.success(), "{command}: {}", String::from_utf8_lossy(&done.stderr));
    }
    let file = state.path().join("mlflow.db");
    let size_before = std::fs::metadata(&file).unwrap().len();
    let output = assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .args(["purge", "--yes", "--reclaim", "--output", "json", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let size_after = std::fs::metadata(&file).unwrap().len();
    assert_eq!(report["entities"]["run"], 24, "{report}");
    assert_eq!(report["reclaim"]["file"]["before"]["bytes"], size_before, "{report}");
    assert_eq!(report["reclaim"]["file"]["after"]["bytes"], size_after, "{report}");
    assert!(size_after * 10 < size_before * 7, "{size_before} -> {size_after} bytes");
    eprintln!("the SQLite file: {size_before} -> {size_after} bytes");
    let verified = client(&python, "verify", &uri, state.path());
    assert!(
        verified.status.success(),
        "verify failed:\n{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct SchemaItem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    definition: String,
}

/// The schema as the catalog describes it: tables and columns (type, length, nullability,
/// default), primary, unique and foreign keys with their rules, indexes, sequences, triggers.
/// CHECK constraints are compared by name only: pg_dump prints `col IN (...)` back in another
/// (equivalent) text.
fn schema_of(conn: &mut mlflow_janitor::DbConnection) -> Vec<SchemaItem> {
    diesel::sql_query(
        "SELECT 'column' AS kind, table_name || '.' || column_name AS name, \
                concat_ws(' ', data_type, character_maximum_length, is_nullable, column_default) AS definition \
           FROM information_schema.columns WHERE table_schema = 'public' \
         UNION ALL \
         SELECT 'constraint', conrelid::regclass::text || '.' || conname, \
                CASE WHEN contype = 'c' THEN 'CHECK' ELSE pg_get_constraintdef(oid) END \
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
         UNION ALL \
         SELECT 'index', tablename || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' \
         UNION ALL \
         SELECT 'sequence', sequencename, concat_ws(' ', data_type, start_value, increment_by) \
           FROM pg_sequences WHERE schemaname = 'public' \
         UNION ALL \
         SELECT 'trigger', tgrelid::regclass::text || '.' || tgname, pg_get_triggerdef(oid) \
           FROM pg_trigger WHERE NOT tgisinternal \
         ORDER BY 1, 2, 3",
    )
    .load(conn)
    .unwrap()
}

#[test]
fn init_makes_the_schema_mlflow_db_upgrade_makes() {
    let python = mlflow_python();
    let store = TestStore::new().unwrap();
    let server = store.uri();
    let by_mlflow = server.with_database(&format!("{}_upgrade", server.database()));
    let by_janitor = server.with_database(&format!("{}_init", server.database()));
    let _dropped = [SiblingDatabase(by_mlflow.clone()), SiblingDatabase(by_janitor.clone())];
    diesel::sql_query(format!("CREATE DATABASE {}", by_mlflow.database()))
        .execute(&mut server.establish().unwrap())
        .unwrap();
    let upgraded = Command::new(python.with_file_name("mlflow"))
        .args(["db", "upgrade", by_mlflow.given()])
        .output()
        .unwrap();
    assert!(upgraded.status.success(), "{}", String::from_utf8_lossy(&upgraded.stderr));
    assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["init", "--backend-store-uri", by_janitor.given()])
        .assert()
        .code(0);

    let expected = schema_of(&mut by_mlflow.establish().unwrap());
    let made = schema_of(&mut by_janitor.establish().unwrap());
    assert!(expected.len() > 500, "{} schema items", expected.len());
    let missing: Vec<_> = expected.iter().filter(|item| !made.contains(item)).collect();
    let extra: Vec<_> = made.iter().filter(|item| !expected.contains(item)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing: {missing:#?}\nextra: {extra:#?}");
}

#[test]
fn reset_leaves_a_store_of_every_kind_fresh_for_the_real_client() {
    let python = mlflow_python();
    let store = TestStore::new().unwrap();
    let uri = store.uri().given().to_owned();
    let state = tempfile::tempdir().unwrap();
    let seeded = client(&python, "seed-every-kind", &uri, state.path());
    assert!(seeded.status.success(), "seed failed: {}", String::from_utf8_lossy(&seeded.stderr));

    assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["reset", "--yes", "--backend-store-uri", &uri])
        .assert()
        .code(0);

    for (table, rows) in crate::snapshot(&mut store.connect().unwrap()) {
        if !["alembic_version", "workspaces", "experiments"].contains(&table.as_str()) {
            assert_eq!(rows, "", "{table} is not empty after reset");
        }
    }
    let fresh = client(&python, "check-fresh", &uri, state.path());
    assert!(
        fresh.status.success(),
        "check-fresh failed:\n{}{}",
        String::from_utf8_lossy(&fresh.stdout),
        String::from_utf8_lossy(&fresh.stderr)
    );
}

#[test]
fn the_readme_pytest_fixture_resets_the_store_between_tests() {
    let python = mlflow_python();
    // The fixture makes its own database on the test server and calls `mlflow-janitor`.
    let store = TestStore::new().unwrap();
    let server = store.uri().given().rsplit_once('/').unwrap().0.to_owned();
    let janitor_dir = Path::new(env!("CARGO_BIN_EXE_mlflow-janitor")).parent().unwrap();
    let path = format!("{}:{}", janitor_dir.display(), std::env::var("PATH").unwrap_or_default());
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/test_reset_fixture.py");
    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&tests)
        .env("PATH", path)
        .env("MLFLOW_TEST_SERVER", server)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 passed"), "{stdout}");
}

#[test]
fn doctor_removes_what_mlflow_gc_leaves_and_the_client_still_reads_everything() {
    let (python, store, uri, state) = seeded_by_mlflow();
    let gc = Command::new(python.with_file_name("mlflow"))
        .args(["gc", "--backend-store-uri", &uri, "--tracking-uri", &uri])
        .current_dir(state.path())
        .output()
        .unwrap();
    assert!(gc.status.success(), "mlflow gc failed: {}", String::from_utf8_lossy(&gc.stderr));

    let doctor = |fix: bool| {
        let mut cmd = assert_cmd::Command::cargo_bin("mlflow-janitor").unwrap();
        cmd.args(["doctor", "--output", "json", "--backend-store-uri", &uri]);
        if fix {
            cmd.args(["--fix", "--yes"]);
        }
        cmd.output().unwrap()
    };
    let found = doctor(false);
    assert_eq!(
        found.status.code(),
        Some(i32::from(mlflow_janitor::error::exit_code::PROBLEMS_FOUND))
    );
    let report: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let orphan_tables: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "orphans")
        .map(|f| f["table"].as_str().unwrap())
        .collect();
    assert!(orphan_tables.contains(&"inputs"), "mlflow gc leaves inputs: {report}");

    let mut conn = store.connect().unwrap();
    let before = crate::snapshot(&mut conn);
    let fixed = doctor(true);
    assert_eq!(fixed.status.code(), Some(0), "{}", String::from_utf8_lossy(&fixed.stdout));
    let after = crate::snapshot(&mut conn);
    for (table, rows) in &before {
        if !["inputs", "input_tags", "entity_associations"].contains(&table.as_str()) {
            assert_eq!(&after[table], rows, "doctor --fix changed {table}");
        }
    }
    assert_no_orphans(&mut conn);
    let verified = client(&python, "verify", &uri, state.path());
    assert!(
        verified.status.success(),
        "verify failed:\n{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// A store an older MLflow made and wrote, purged by the binary, then opened again by that same
/// MLflow (tests/e2e/old_client.py): no schema error, deleted runs gone, live runs unchanged,
/// names free, new runs logged.
#[test_case("1.30.1", Backend::Postgresql; "mlflow_1_30_postgresql")]
#[test_case("1.30.1", Backend::Mysql; "mlflow_1_30_mysql")]
#[test_case("1.30.1", Backend::Sqlite; "mlflow_1_30_sqlite")]
#[test_case("2.22.1", Backend::Postgresql; "mlflow_2_22_postgresql")]
#[test_case("2.22.1", Backend::Mysql; "mlflow_2_22_mysql")]
#[test_case("2.22.1", Backend::Sqlite; "mlflow_2_22_sqlite")]
fn an_older_mlflow_still_opens_its_store_after_a_purge(version: &str, backend: Backend) {
    let python = python_of(version);
    // MLflow before 3.10 builds its schema at the client's first connection.
    let store = TestStore::without_tables(backend).unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let state = tempfile::tempdir().unwrap();
    let old_client = |command: &str| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/old_client.py");
        let output = Command::new(&python)
            .arg(script)
            .args([command, &uri])
            .arg(state.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "MLflow {version} {command} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    old_client("seed");

    let purged = assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .args(["purge", "--yes", "--output", "json", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert!(purged.status.success(), "purge failed: {}", String::from_utf8_lossy(&purged.stderr));
    let report: serde_json::Value = serde_json::from_slice(&purged.stdout).unwrap();
    assert_eq!(report["mlflow_version"], version, "{report}");
    assert_eq!(report["entities"]["experiment"], 1, "{report}");
    assert_eq!(report["entities"]["run"], 3, "{report}");

    old_client("verify");
}

/// The real client keeps logging runs while the binary purges the same store, batch by batch:
/// neither sees an error, and every row the client wrote reads back unchanged.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_client_writing_during_a_purge_sees_no_error_and_keeps_its_rows(backend: Backend) {
    let python = mlflow_python();
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    crate::fixtures::live(&mut conn);
    crate::fixtures::deleted(&mut conn);
    for i in 0..150 {
        let run = format!("bulk-{i:03}");
        crate::fixtures::run(&mut conn, 2, &run, Some(Some(crate::fixtures::now_ms())));
    }
    if backend == Backend::Postgresql {
        // The fixtures chose experiment ids themselves: the client's next one comes after.
        diesel::sql_query("SELECT setval('experiments_experiment_id_seq', 100)")
            .execute(&mut conn)
            .unwrap();
    }
    let uri = crate::as_mlflow_spells_it(&store);
    let state = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/live_writer.py");
    let writer = Command::new(&python)
        .arg(script)
        .args([&uri, state.path().to_str().unwrap(), "8"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Purge once the client is writing.
    let writing = || {
        use mlflow_janitor::schema::experiments;
        experiments::table
            .filter(experiments::name.eq("live-writer"))
            .count()
            .get_result::<i64>(&mut store.connect().unwrap())
            .unwrap()
            > 0
    };
    for _ in 0..300 {
        if writing() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let purged = assert_cmd::Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .args(["purge", "--yes", "--batch-size", "1", "--throttle", "20ms", "--output", "json"])
        .args(["--backend-store-uri", &uri])
        .output()
        .unwrap();
    let written = writer.wait_with_output().unwrap();
    assert!(purged.status.success(), "purge failed: {}", String::from_utf8_lossy(&purged.stderr));
    let report: serde_json::Value = serde_json::from_slice(&purged.stdout).unwrap();
    assert_eq!(report["entities"]["run"], 159, "{report}");
    assert!(
        written.status.success(),
        "the client failed:\n{}{}",
        String::from_utf8_lossy(&written.stdout),
        String::from_utf8_lossy(&written.stderr)
    );
    assert!(String::from_utf8_lossy(&written.stdout).contains("read back"));
}

/// The undo, with the real client: it seeds a store and fingerprints what it deleted (runs with
/// metric histories, NaN and infinities included, params, tags and dataset inputs; traces with
/// spans and an assessment; logged models), the binary purges it with an archive and restores
/// the archive, and the client reads every entity back equal to its fingerprint, brings them
/// back to life with its own restore calls, finds their names held, and the live data unchanged.
#[test_case("3.17.2", Backend::Sqlite; "mlflow_3_17_sqlite")]
#[test_case("3.18.0", Backend::Postgresql; "mlflow_3_18_postgresql")]
#[test_case("3.18.0", Backend::Mysql; "mlflow_3_18_mysql")]
#[test_case("3.18.0", Backend::Sqlite; "mlflow_3_18_sqlite")]
fn a_purge_with_an_archive_is_undone_by_restore_for_the_real_client(
    version: &str,
    backend: Backend,
) {
    let python = python_of(version);
    let store = TestStore::of_version(backend, version).unwrap();
    let uri = crate::as_mlflow_spells_it(&store);
    let state = tempfile::tempdir().unwrap();
    let run_client = |command: &str| {
        let output = client(&python, command, &uri, state.path());
        assert!(
            output.status.success(),
            "{command} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run_client("seed");
    run_client("fingerprint");
    let archives = state.path().join("archives");
    let janitor = |args: &[&str]| {
        let output = crate::janitor()
            .args(args)
            .args(["--backend-store-uri", &uri, "--output", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let archive_dir = archives.to_str().unwrap();
    let purged = janitor(&["purge", "--yes", "--batch-size", "2", "--archive", archive_dir]);
    assert_eq!(purged["entities"]["run"], 4, "{purged}");
    let restored = janitor(&["restore", archive_dir, "--yes"]);
    assert_eq!(restored["entities"], purged["entities"], "{restored}");
    let rows_back: u64 =
        restored["rows_by_table"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    let rows_gone: u64 =
        purged["rows_by_table"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(rows_back, rows_gone, "{restored}");
    run_client("check-restored");
}
