//! `purge --dry-run` reads only: the servers' write counters stay as they were, a writer of a
//! SQLite store does not wait for it, it runs where the purge may not write, and it counts, step
//! by step, what the purge then deletes.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use mlflow_janitor::error::exit_code;
use mlflow_janitor::purge::{Mode, Prepared, Report, Settings};
use mlflow_janitor::schema::entity_associations;
use mlflow_janitor::scope::ScopeRequest;
use mlflow_janitor::{Backend, DbConnection, StoreUri};
use predicates::prelude::*;
use test_case::test_case;

use crate::own_server::OwnServer;
use crate::{fixtures, purge, rows_by_step, snapshot};

/// Rows that tie two entities of the purge, so that two steps, or one step in two batches,
/// match them: a run-to-run association across batches, a run-to-trace association.
/// ([`fixtures::logged_model`] already links a model to the run that made it and logs its
/// metrics from another run; [`fixtures::trace`] puts the trace in a review queue.)
fn shared_rows(conn: &mut DbConnection) {
    for (id, source, destination) in [
        ("assoc-run-run", ("run", "doomed-run-3a"), ("run", "doomed-run-4c")),
        ("assoc-run-trace", ("run", "doomed-run-3b"), ("trace", "doomed-trace-4")),
    ] {
        diesel::insert_into(entity_associations::table)
            .values((
                entity_associations::association_id.eq(id),
                entity_associations::source_type.eq(source.0),
                entity_associations::source_id.eq(source.1),
                entity_associations::destination_type.eq(destination.0),
                entity_associations::destination_id.eq(destination.1),
            ))
            .execute(conn)
            .unwrap();
    }
}

/// Per step, per table and per kind, what the dry run counted is what the purge deleted: with
/// one entity per batch, so that rows shared across batches count too.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_dry_run_counts_each_row_once_where_the_purge_deletes_it(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    shared_rows(&mut conn);
    let before = snapshot(&mut conn);
    let associations = |conn: &mut DbConnection| -> i64 {
        entity_associations::table.count().get_result(conn).unwrap()
    };
    let associations_before = associations(&mut conn);
    let dry = purge(&store, ScopeRequest::default(), Mode::DryRun, 1).unwrap();
    assert_eq!(snapshot(&mut conn), before);
    let real = purge(&store, ScopeRequest::default(), Mode::Delete, 500).unwrap();
    assert_eq!(rows_by_step(&dry), rows_by_step(&real));
    assert_eq!(dry.rows_by_table, real.rows_by_table);
    assert_eq!(dry.entities, real.entities);
    // The shared rows went, and each counts once: in the report as in the table.
    let gone = associations_before - associations(&mut conn);
    assert_eq!(real.rows_by_table["entity_associations"], gone as u64);
    let left: i64 = entity_associations::table
        .filter(entity_associations::association_id.eq_any(["assoc-run-run", "assoc-run-trace"]))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(real.rows_by_table["logged_model_metrics"], 2);
}

/// What a server counts of the rows written to the test's database (or, for a server of the
/// test's own, to any): inserted, updated, deleted. For SQLite, the file's change counter and
/// its bytes: they show a committed write only (a rolled-back one leaves the file as it was);
/// that SQLite's dry run takes no write lock, the writer's test below shows.
fn write_counters(conn: &mut DbConnection, sqlite_file: Option<&std::path::Path>) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Counter {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        value: i64,
    }
    let query = match conn {
        DbConnection::Postgresql(_) => {
            "SELECT 'n_tup_ins' AS name, COALESCE(SUM(n_tup_ins), 0)::bigint AS value \
               FROM pg_stat_user_tables \
             UNION ALL SELECT 'n_tup_upd', COALESCE(SUM(n_tup_upd), 0)::bigint \
               FROM pg_stat_user_tables \
             UNION ALL SELECT 'n_tup_del', COALESCE(SUM(n_tup_del), 0)::bigint \
               FROM pg_stat_user_tables"
        }
        // MariaDB has no `Innodb_rows_*` counters: the handler's count the rows written by any
        // engine (a rolled-back delete included).
        DbConnection::Mysql(_) => {
            "SELECT VARIABLE_NAME AS name, CAST(VARIABLE_VALUE AS SIGNED) AS value \
               FROM information_schema.GLOBAL_STATUS \
              WHERE VARIABLE_NAME IN ('HANDLER_WRITE', 'HANDLER_UPDATE', 'HANDLER_DELETE') \
              ORDER BY VARIABLE_NAME"
        }
        DbConnection::Sqlite(_) => {
            let bytes = std::fs::read(sqlite_file.unwrap()).unwrap();
            let counter = u32::from_be_bytes(bytes[24..28].try_into().unwrap());
            let digest = bytes.iter().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(*b as u64));
            return vec![format!("file change counter {counter}"), format!("bytes {digest:x}")];
        }
    };
    if let DbConnection::Postgresql(_) = conn {
        // This session's own statistics (the seeding) go to the views at its next transaction
        // (PostgreSQL 15 on).
        diesel::sql_query("SELECT pg_stat_force_next_flush()").execute(conn).unwrap();
    }
    let counters: Vec<Counter> = diesel::sql_query(query).load(conn).unwrap();
    counters.into_iter().map(|c| format!("{} {}", c.name, c.value)).collect()
}

/// After a dry run, the server's counters of rows written are where they were; after the purge
/// they moved (so the test can see a write). PostgreSQL's statistics reach the views once the
/// writing session reports them: the checks wait for that.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_dry_run_leaves_the_write_counters_as_they_were(backend: Backend) {
    // InnoDB's counters are server-wide: on MySQL, a server of the test's own.
    let server = (backend == Backend::Mysql).then(|| OwnServer::start(backend));
    let (store, uri) = match &server {
        Some(server) => {
            let uri = server.uri();
            let init = crate::janitor().args(["init", "--backend-store-uri", &uri]).output();
            assert!(init.unwrap().status.success());
            (None, StoreUri::parse(&uri).unwrap())
        }
        None => {
            let store = mlflow_janitor::test_store::TestStore::on(backend).unwrap();
            let uri = store.uri().clone();
            (Some(store), uri)
        }
    };
    let mut conn = uri.establish().unwrap();
    fixtures::live(&mut conn);
    fixtures::deleted(&mut conn);
    shared_rows(&mut conn);
    let file = uri.sqlite_file().map(|f| f.to_owned());
    let settle = || std::thread::sleep(Duration::from_millis(1500));
    settle();
    let before = write_counters(&mut conn, file.as_deref());

    let run = |mode| {
        let mut report = Report::new("test".into(), "", mode);
        let settings = Settings::new(uri.clone(), ScopeRequest::default(), mode);
        let prepared = Prepared::prepare(settings, &mut report).unwrap();
        prepared.confirm(|_| Ok(())).unwrap().run(None, &mut report, &mut |_| {}).unwrap();
        report
    };
    let dry = run(Mode::DryRun);
    assert!(dry.total_rows() > 0);
    settle();
    let after_dry_run = write_counters(&mut conn, file.as_deref());
    assert_eq!(after_dry_run, before, "a dry run wrote");
    eprintln!("{backend:?}: before and after the dry run: {before:?}");

    let real = run(Mode::Delete);
    assert_eq!(rows_by_step(&dry), rows_by_step(&real));
    let waited = Instant::now();
    let after_purge = loop {
        let counters = write_counters(&mut conn, file.as_deref());
        if counters != before || waited.elapsed() > Duration::from_secs(15) {
            break counters;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(after_purge, before, "the purge's writes were not seen");
    eprintln!("{backend:?}: after the purge: {after_purge:?}");
    drop((conn, store));
}

/// A writer of a SQLite store commits while a dry run goes on: the dry run holds no write lock,
/// and no read lock between batches. (The old dry run, one rolled-back transaction, held the
/// write lock from start to end.)
#[test]
fn a_sqlite_writer_commits_during_a_dry_run_without_waiting_for_it() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Sqlite);
    for i in 0..30 {
        fixtures::run(&mut conn, 3, &format!("bulk-{i:02}"), Some(Some(fixtures::now_ms())));
    }
    let uri = store.uri().clone();
    let (batch_done, first_batch) = mpsc::channel();
    let dry_run = std::thread::spawn(move || {
        let mut settings = Settings::new(uri, ScopeRequest::default(), Mode::DryRun);
        settings.batch_size = 1;
        settings.throttle = Duration::from_millis(50);
        let mut report = Report::new("test".into(), "", Mode::DryRun);
        let confirmed = Prepared::prepare(settings, &mut report).unwrap().confirm(|_| Ok(()));
        confirmed.unwrap().run(None, &mut report, &mut |_| _ = batch_done.send(())).unwrap();
    });
    first_batch.recv_timeout(Duration::from_secs(30)).unwrap();

    let mut writer = store.connect().unwrap();
    let mut longest = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        writer
            .batch_execute(&format!(
                "BEGIN IMMEDIATE; \
                 INSERT INTO experiment_tags (key, value, experiment_id) VALUES ('w{i}', 'x', 1); \
                 COMMIT;"
            ))
            .unwrap();
        longest = longest.max(started.elapsed());
        assert!(!dry_run.is_finished(), "the dry run ended before write {i}: make it longer");
    }
    eprintln!("longest wait of a writer during the dry run: {longest:?}");
    assert!(longest < Duration::from_secs(1), "a writer waited {longest:?}");
    dry_run.join().unwrap();
}

/// Where the purge may not write (a user that may only read; a SQLite file that cannot be
/// written), it refuses before any work, and the dry run counts what a purge with the right to
/// write then deletes. (A standby: below.)
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_dry_run_runs_where_the_purge_may_not_write(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let database = store.uri().database().into_owned();
    let owner_uri = store.uri().given().to_owned();
    let mut admin = match backend {
        Backend::Sqlite => None,
        _ => Some(store.connect().unwrap()),
    };
    // Named after the store's database (its unique end first: names are cut at 20 characters),
    // so that tests running at once do not share it.
    let reader = format!("ro_{}", database.chars().rev().take(20).collect::<String>());
    let (uri, cleanup_statements) = match backend {
        Backend::Postgresql => {
            for grant in [
                format!("CREATE ROLE {reader} LOGIN"),
                format!("GRANT CONNECT ON DATABASE {database} TO {reader}"),
                format!("GRANT USAGE ON SCHEMA public TO {reader}"),
                format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"),
            ] {
                diesel::sql_query(grant).execute(admin.as_mut().unwrap()).unwrap();
            }
            let uri = owner_uri.replacen("postgres@", &format!("{reader}@"), 1);
            (uri, vec![format!("DROP OWNED BY {reader}"), format!("DROP ROLE {reader}")])
        }
        Backend::Mysql => {
            for grant in [
                format!("CREATE USER '{reader}'@'%'"),
                format!("GRANT SELECT ON `{database}`.* TO '{reader}'@'%'"),
            ] {
                diesel::sql_query(grant).execute(admin.as_mut().unwrap()).unwrap();
            }
            let uri = owner_uri.replacen("root@", &format!("{reader}@"), 1);
            (uri, vec![format!("DROP USER '{reader}'@'%'")])
        }
        Backend::Sqlite => (owner_uri.clone(), Vec::new()),
    };
    // Roles and users are server-wide: dropped even when an assertion fails.
    let _cleanup = Cleanup { conn: admin, statements: cleanup_statements };
    let sqlite_file = store.uri().sqlite_file().map(|f| f.to_owned());
    let make_writable = |writable: bool| {
        use std::os::unix::fs::PermissionsExt;
        let Some(file) = &sqlite_file else { return };
        let (file_mode, folder_mode) = if writable { (0o644, 0o755) } else { (0o444, 0o555) };
        let set = |path: &std::path::Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(file, file_mode);
        set(file.parent().unwrap(), folder_mode);
    };
    make_writable(false);
    let before = snapshot(&mut conn);
    // Root writes whatever the modes say: on SQLite, run as nobody.
    let janitor = |args: &[&str]| {
        let binary = assert_cmd::cargo::cargo_bin("mlflow-janitor");
        let command = match backend {
            Backend::Sqlite => crate::as_user("nobody", binary),
            _ => std::process::Command::new(binary),
        };
        let mut command = Command::from_std(command);
        command.env_remove("MLFLOW_BACKEND_STORE_URI").arg("purge").args(args);
        command.args(["--output", "json", "--backend-store-uri", &uri]);
        command.timeout(Duration::from_secs(60));
        command
    };
    janitor(&["--yes"])
        .assert()
        .code(i32::from(exit_code::STORE))
        .stderr(predicate::str::contains("is read-only"));
    let dry = janitor(&["--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(snapshot(&mut conn), before);
    make_writable(true);

    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let real = purge(&store, ScopeRequest::default(), Mode::Delete, 500).unwrap();
    let real = serde_json::to_value(&real).unwrap();
    assert!(dry["entities"]["run"].as_u64() > Some(0), "{dry}");
    for field in ["entities", "rows_by_table", "steps"] {
        assert_eq!(dry[field], real[field], "{field}");
    }
}

/// On a PostgreSQL hot standby, whose sessions cannot write, the purge refuses and the dry run
/// counts what the purge on the primary then deletes.
#[test]
fn a_dry_run_runs_on_a_postgresql_standby_where_the_purge_refuses() {
    let primary = OwnServer::start(Backend::Postgresql);
    let init = crate::janitor().args(["init", "--backend-store-uri", &primary.uri()]).output();
    assert!(init.unwrap().status.success());
    let primary_uri = StoreUri::parse(&primary.uri()).unwrap();
    let mut conn = primary_uri.establish().unwrap();
    fixtures::live(&mut conn);
    fixtures::deleted(&mut conn);
    shared_rows(&mut conn);
    let seeded = snapshot(&mut conn);
    let standby = OwnServer::standby_of(&primary);
    let standby_uri = standby.uri();
    let waited = Instant::now();
    while StoreUri::parse(&standby_uri)
        .unwrap()
        .establish()
        .map(|mut replica| snapshot(&mut replica))
        .ok()
        .as_ref()
        != Some(&seeded)
    {
        assert!(waited.elapsed() < Duration::from_secs(30), "the standby did not catch up");
        std::thread::sleep(Duration::from_millis(200));
    }

    let on_standby = |args: &[&str]| {
        let mut command = crate::janitor();
        command.arg("purge").args(args).args(["--output", "json"]);
        command.args(["--backend-store-uri", &standby_uri]);
        command
    };
    on_standby(&["--yes"])
        .assert()
        .code(i32::from(exit_code::STORE))
        .stderr(predicate::str::contains("is read-only"));
    let dry = on_standby(&["--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();

    let purged = crate::janitor()
        .args(["purge", "--yes", "--output", "json", "--backend-store-uri", &primary.uri()])
        .output()
        .unwrap();
    assert!(purged.status.success(), "{}", String::from_utf8_lossy(&purged.stderr));
    let real: serde_json::Value = serde_json::from_slice(&purged.stdout).unwrap();
    assert!(dry["entities"]["run"].as_u64() > Some(0), "{dry}");
    for field in ["entities", "rows_by_table", "steps"] {
        assert_eq!(dry[field], real[field], "{field}");
    }
    drop(standby);
}

/// Statements run when dropped, their errors ignored: what a test made on a shared server.
struct Cleanup {
    conn: Option<DbConnection>,
    statements: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        for statement in &self.statements {
            let _ = diesel::sql_query(statement).execute(conn);
        }
    }
}
