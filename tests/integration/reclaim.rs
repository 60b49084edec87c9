//! `purge --reclaim` gives the disk back and reports it as the database does; `status
//! --metrics-file` writes the backlog as the JSON report gives it.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection};
use serde_json::Value;
use test_case::test_case;

use crate::{fixtures, janitor, snapshot};

/// `n` metric rows of run `run`, inserted after every other row: at the end of the table.
fn bulk_metrics(conn: &mut DbConnection, run: &str, n: i64) {
    // `key` is a reserved word of MySQL's, and MariaDB stops a recursion at 1,000 by default.
    let key = if conn.backend() == Backend::Mysql { "`key`" } else { "key" };
    if conn.backend() == Backend::Mysql {
        let depth = format!("SET SESSION max_recursive_iterations = {n}");
        diesel::sql_query(depth).execute(conn).unwrap();
    }
    diesel::sql_query(format!(
        "INSERT INTO metrics ({key}, value, timestamp, run_uuid, step, is_nan) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         SELECT 'bulk', i, i, '{run}', i, false FROM n"
    ))
    .execute(conn)
    .unwrap();
}

/// The seeded store, with 30,000 metric rows of a deleted run at the end of `metrics`, and its
/// statistics brought up to date: the server's background work (autovacuum, InnoDB's statistics)
/// has nothing left to change sizes with while a test reads them.
fn store_with_bulk(backend: Backend) -> (TestStore, DbConnection) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    bulk_metrics(&mut conn, "gone-run-1", 30_000);
    match backend {
        Backend::Postgresql => {
            diesel::sql_query("VACUUM (ANALYZE)").execute(&mut conn).unwrap();
        }
        Backend::Mysql => {
            for table in mlflow_janitor::store::catalog::tables(&mut conn).unwrap() {
                diesel::sql_query(format!("ANALYZE TABLE `{table}`")).execute(&mut conn).unwrap();
            }
        }
        Backend::Sqlite => {}
    }
    (store, conn)
}

/// Runs the binary, checks it succeeded, and returns its JSON report.
fn json(args: &[&str], store: &TestStore) -> Value {
    let output = janitor()
        .args(args)
        .args(["--output", "json", "--backend-store-uri", store.uri().given()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// Each table's bytes as the server's own catalog gives them, asked outside the tool.
fn server_sizes(conn: &mut DbConnection) -> BTreeMap<String, u64> {
    let query = match conn.backend() {
        Backend::Postgresql => {
            "SELECT relname::text AS name, pg_total_relation_size(oid) AS bytes FROM pg_class \
             WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        }
        _ => {
            "SELECT table_name AS name, \
                    CAST(data_length + index_length + data_free AS SIGNED) AS bytes \
             FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
    };
    let sizes: Vec<Size> = diesel::sql_query(query).load(conn).unwrap();
    sizes.into_iter().map(|s| (s.name, s.bytes as u64)).collect()
}

/// `report.reclaim`'s before or after bytes, by table.
fn reported(reclaim: &Value, when: &str) -> BTreeMap<String, u64> {
    let tables = reclaim["tables"].as_object().unwrap();
    tables.iter().map(|(t, c)| (t.clone(), c[when]["bytes"].as_u64().unwrap())).collect()
}

#[test_case(Backend::Postgresql, "standard"; "postgresql")]
#[test_case(Backend::Mysql, "standard"; "mysql")]
#[test_case(Backend::Mysql, "full"; "mysql full")]
fn the_report_gives_the_space_the_server_gives(backend: Backend, level: &str) {
    let (store, mut conn) = store_with_bulk(backend);
    let before = server_sizes(&mut conn);
    let report = json(&["purge", "--yes", &format!("--reclaim={level}")], &store);
    let after = server_sizes(&mut conn);
    let reclaim = &report["reclaim"];
    assert_eq!(reclaim["reclaim"], level, "{reclaim}");

    let (reported_before, reported_after) =
        (reported(reclaim, "before"), reported(reclaim, "after"));
    assert!(reported_after.contains_key("metrics") && reported_after.contains_key("runs"));
    for (table, bytes) in &reported_after {
        assert_eq!(Some(bytes), after.get(table), "{table} after the reclaim");
        assert_eq!(reported_before.get(table), before.get(table), "{table} before the purge");
    }
    let returned: u64 =
        reported_before.values().sum::<u64>() - reported_after.values().sum::<u64>();
    assert_eq!(reclaim["bytes_returned"], returned, "{reclaim}");
    match (backend, level) {
        // VACUUM cuts the empty pages at the end of the table: the bulk rows were last.
        (Backend::Postgresql, _) => {
            assert!(after["metrics"] < before["metrics"], "{reclaim}");
            // The bulk rows' heap, about 2 MiB, became reusable.
            let reusable = reclaim["bytes_reusable"].as_u64().unwrap();
            assert!(reusable > 1 << 20, "{reclaim}");
            #[derive(QueryableByName)]
            struct Dead {
                #[diesel(sql_type = BigInt)]
                dead: i64,
            }
            for table in reported_after.keys() {
                let dead: Dead = diesel::sql_query(format!(
                    "SELECT n_dead_tup AS dead FROM pg_stat_user_tables WHERE relname = '{table}'"
                ))
                .get_result(&mut conn)
                .unwrap();
                assert_eq!(dead.dead, 0, "{table}: dead rows left after VACUUM");
            }
        }
        // OPTIMIZE rebuilds the table: its file shrinks.
        (_, "full") => assert!(after["metrics"] < before["metrics"], "{reclaim}"),
        // ANALYZE leaves the file: the space is free inside it.
        _ => assert!(reclaim["bytes_reusable"].as_u64() > Some(0), "{reclaim}"),
    }
}

#[test]
fn max_duration_bounds_a_reclaim_that_waits() {
    let (store, mut conn) = store_with_bulk(Backend::Postgresql);
    // Another session holds the lock VACUUM needs (deletes do not wait for it).
    let mut holder = store.connect().unwrap();
    holder.batch_execute("BEGIN; LOCK TABLE metrics IN SHARE UPDATE EXCLUSIVE MODE").unwrap();
    let started = std::time::Instant::now();
    crate::fails_with(
        janitor().args([
            "purge",
            "--yes",
            "--reclaim",
            "--max-duration",
            "4s",
            "--lock-timeout",
            "0s",
            "--backend-store-uri",
            store.uri().given(),
        ]),
        8,
        "--max-duration reached while reclaiming",
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "the reclaim waited {took:?}");
    holder.batch_execute("ROLLBACK").unwrap();
    // The purge itself was done.
    let deleted: i64 = mlflow_janitor::schema::runs::table
        .filter(mlflow_janitor::schema::runs::lifecycle_stage.eq("deleted"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(deleted, 0);
}

/// The SQLite file's size and free pages, read outside the tool.
fn sqlite_file(store: &TestStore) -> (u64, i64) {
    let path = store.uri().sqlite_file().unwrap();
    let mut conn = store.connect().unwrap();
    #[derive(QueryableByName)]
    struct Free {
        #[diesel(sql_type = BigInt)]
        freelist_count: i64,
    }
    let free: Free = diesel::sql_query("PRAGMA freelist_count").get_result(&mut conn).unwrap();
    (std::fs::metadata(path).unwrap().len(), free.freelist_count)
}

#[test]
fn sqlite_vacuum_shrinks_the_file_and_a_rerun_with_nothing_to_purge_reclaims_again() {
    let (store, mut conn) = store_with_bulk(Backend::Sqlite);
    let (size_before, _) = sqlite_file(&store);
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("janitor.prom");
    let metrics_arg = metrics.display().to_string();
    let report = json(&["purge", "--yes", "--reclaim", "--metrics-file", &metrics_arg], &store);
    let (size_after, free_pages) = sqlite_file(&store);
    let file = &report["reclaim"]["file"];
    assert_eq!(file["before"]["bytes"], size_before, "{report}");
    assert_eq!(file["after"]["bytes"], size_after, "{report}");
    assert_eq!((free_pages, &file["after"]["free_bytes"]), (0, &Value::from(0)), "{report}");
    assert!(size_after < size_before, "{size_before} -> {size_after}");
    assert_eq!(report["reclaim"]["bytes_returned"], size_before - size_after);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    let line = format!("mlflow_janitor_bytes_reclaimed {}\n", size_before - size_after);
    assert!(prom.contains(&line), "{prom}");

    // Space freed later (a purge killed before its reclaim, MLflow's own deletes) is reclaimed
    // by a run with nothing to purge.
    bulk_metrics(&mut conn, "live-run-1a", 10_000);
    diesel::sql_query("DELETE FROM metrics WHERE key = 'bulk'").execute(&mut conn).unwrap();
    let (grown, free_pages) = sqlite_file(&store);
    assert!(free_pages > 0);
    let rerun = json(&["purge", "--yes", "--reclaim"], &store);
    assert!(rerun["entities"].as_object().unwrap().is_empty(), "{rerun}");
    assert_eq!(rerun["reclaim"]["bytes_returned"], grown - sqlite_file(&store).0, "{rerun}");
    assert_eq!(sqlite_file(&store).1, 0);
}

#[test]
fn a_rerun_with_nothing_to_purge_reclaims_every_table_a_purge_deletes_from() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    json(&["purge", "--yes"], &store);
    let rerun = json(&["purge", "--yes", "--reclaim"], &store);
    let schema = crate::schema(&mut conn);
    let tables: Vec<&str> = mlflow_janitor::plan::tables_in(&schema);
    let reclaimed: Vec<&str> =
        rerun["reclaim"]["tables"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(reclaimed, tables);
}

#[test]
fn a_dry_run_reclaims_nothing() {
    let (store, _conn) = store_with_bulk(Backend::Sqlite);
    let before = sqlite_file(&store);
    let report = json(&["purge", "--dry-run", "--reclaim"], &store);
    assert!(report.get("reclaim").is_none(), "{report}");
    assert_eq!(sqlite_file(&store), before);
}

#[test]
fn kill_9_during_the_sqlite_vacuum_loses_nothing_and_the_rerun_reclaims() {
    let store = TestStore::on(Backend::Sqlite).unwrap();
    let mut conn = store.connect().unwrap();
    // A file large enough for the VACUUM to be caught: live rows it must copy, deleted ones.
    fixtures::live(&mut conn);
    bulk_metrics(&mut conn, "live-run-1a", 100_000);
    let live = snapshot(&mut conn);
    fixtures::deleted(&mut conn);
    bulk_metrics(&mut conn, "gone-run-1", 30_000);
    drop(conn);
    let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");
    let mut caught = 0;
    for delay_ms in [0, 10, 30, 60, 100, 200] {
        let mut child = std::process::Command::new(&binary)
            .args(["purge", "--yes", "--reclaim", "--backend-store-uri", store.uri().given()])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let started = stderr.by_ref().any(|line| line.unwrap().contains("reclaiming"));
        assert!(started, "the purge never reached its reclaim");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What it wrote before the kill: no "reclaimed" means the VACUUM was under way.
        caught += usize::from(!stderr.any(|line| line.unwrap().contains("reclaimed")));
        // The next connection rolls a hot journal back: the store is whole, and the purge,
        // which committed before the VACUUM began, stays done.
        let mut conn = store.connect().unwrap();
        #[derive(QueryableByName)]
        struct Check {
            #[diesel(sql_type = Text)]
            integrity_check: String,
        }
        let check: Check =
            diesel::sql_query("PRAGMA integrity_check").get_result(&mut conn).unwrap();
        assert_eq!(check.integrity_check, "ok", "after a kill {delay_ms} ms into the VACUUM");
        assert_eq!(snapshot(&mut conn), live, "a kill {delay_ms} ms into the VACUUM");
    }
    assert!(caught > 0, "no kill came during the VACUUM");
    let rerun = json(&["purge", "--yes", "--reclaim"], &store);
    assert!(rerun["reclaim"]["file"].is_object(), "{rerun}");
    assert_eq!(sqlite_file(&store).1, 0);
    assert_eq!(snapshot(&mut store.connect().unwrap()), live);
}

#[test]
fn without_room_for_the_vacuum_the_purge_refuses_and_touches_nothing() {
    let (store, mut conn) = store_with_bulk(Backend::Sqlite);
    let everything = snapshot(&mut conn);
    drop(conn);
    let (size, _) = sqlite_file(&store);
    // A filesystem with room for the file and little more, for the VACUUM's copy and journal.
    let small = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={}k", size / 1024 + 256), "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a small tmpfs (the suite runs as root)");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(small.path());
    let file = small.path().join("mlflow.db");
    std::fs::copy(store.uri().sqlite_file().unwrap(), &file).unwrap();
    let uri = format!("sqlite:///{}", file.display());
    let stderr = crate::fails_with(
        janitor()
            .args(["purge", "--yes", "--reclaim", "--backend-store-uri", &uri])
            .env("SQLITE_TMPDIR", small.path()),
        3,
        "not enough free disk to VACUUM the SQLite file",
    );
    assert!(stderr.contains("Nothing was touched"), "{stderr}");
    let mut copy = mlflow_janitor::StoreUri::parse(&uri).unwrap().establish().unwrap();
    assert_eq!(snapshot(&mut copy), everything);
}

/// The samples of a Prometheus text file, by name and labels.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn the_status_metrics_file_agrees_with_the_json_status(backend: Backend) {
    let (store, _conn) = store_with_bulk(backend);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.prom");
    let status = json(&["status", "--metrics-file", &file.display().to_string()], &store);
    let written: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, ["status.prom"], "the temporary file is renamed");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let samples = samples(&text);

    let default = &status["workspaces"][0];
    let gauge =
        |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("{series}\n{text}"));
    for (kind, field) in
        [("experiment", "experiments"), ("run", "runs"), ("logged model", "logged_models")]
    {
        let series =
            format!("mlflow_janitor_backlog_entities{{kind=\"{kind}\",workspace=\"default\"}}");
        assert_eq!(gauge(&series), default[field]["count"].as_f64().unwrap(), "{series}");
    }
    let age = gauge(
        "mlflow_janitor_backlog_oldest_age_seconds{kind=\"experiment\",workspace=\"default\"}",
    );
    let oldest_ms = default["experiments"]["oldest_ms"].as_f64().unwrap();
    let expected_age = (fixtures::now_ms() as f64 - oldest_ms) / 1000.0;
    assert!((age - expected_age).abs() < 60.0, "{age} against {expected_age}");
    assert!(age > 59.0 * 86_400.0, "the oldest deletion is 60 days old");
    assert_eq!(gauge("mlflow_janitor_names_held{workspace=\"default\"}"), 2.0);
    for table in status["purge_would_free"].as_array().unwrap() {
        let series = format!(
            "mlflow_janitor_backlog_rows{{table=\"{}\"}}",
            table["table"].as_str().unwrap()
        );
        assert_eq!(gauge(&series), table["rows"].as_f64().unwrap(), "{series}");
    }
    let parts: Vec<(String, Value)> = match backend {
        Backend::Sqlite => vec![("file".to_owned(), status["space"]["file"].clone())],
        _ => status["space"]["tables"].as_object().unwrap().clone().into_iter().collect(),
    };
    assert!(parts.len() > 1 || backend == Backend::Sqlite);
    for (of, space) in parts {
        let bytes = gauge(&format!("mlflow_janitor_disk_bytes{{of=\"{of}\"}}"));
        let free = gauge(&format!("mlflow_janitor_reclaimable_bytes{{of=\"{of}\"}}"));
        assert_eq!(bytes, space["bytes"].as_f64().unwrap(), "{of}");
        assert_eq!(free, space["free_bytes"].as_f64().unwrap(), "{of}");
    }
}
