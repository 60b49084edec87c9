//! `init` and `reset`: a store as fresh as `mlflow db upgrade` and MLflow's first connection
//! leave it, and refusals that touch nothing.

use assert_cmd::Command;
use diesel::prelude::*;
use mlflow_janitor::error::exit_code;
use mlflow_janitor::schema::{alembic_version, experiments, workspaces};
use mlflow_janitor::store::revision::LATEST;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{fresh_store, Backend, DbConnection};
use predicates::prelude::*;
use test_case::test_case;

use crate::{fixtures, snapshot, SiblingDatabase, UNKNOWN_REVISION};

fn janitor(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("mlflow-janitor").unwrap();
    cmd.env_remove("MLFLOW_BACKEND_STORE_URI").args(args);
    cmd
}

/// Every table but these three is empty, and these hold what a fresh store holds.
fn assert_fresh(conn: &mut DbConnection) {
    for (table, rows) in snapshot(conn) {
        match table.as_str() {
            "alembic_version" | "workspaces" | "experiments" => {}
            _ => assert_eq!(rows, "", "{table} is not empty"),
        }
    }
    let revisions: Vec<String> =
        alembic_version::table.select(alembic_version::version_num).load(conn).unwrap();
    assert_eq!(revisions, [LATEST.revision]);
    let names: Vec<(String, Option<String>)> =
        workspaces::table.select((workspaces::name, workspaces::description)).load(conn).unwrap();
    assert_eq!(
        names,
        [("default".to_owned(), Some("Default workspace for legacy resources".to_owned()))]
    );
    let experiments: Vec<(i32, String, Option<String>)> = experiments::table
        .select((experiments::experiment_id, experiments::name, experiments::lifecycle_stage))
        .load(conn)
        .unwrap();
    assert_eq!(experiments, [(0, "Default".to_owned(), Some("active".to_owned()))]);
}

/// The id the next experiment gets, as MLflow's client would see it.
fn next_experiment_id(conn: &mut DbConnection) -> i32 {
    diesel::insert_into(experiments::table)
        .values((experiments::name.eq("next"), experiments::workspace.eq("default")))
        .execute(conn)
        .unwrap();
    experiments::table
        .select(experiments::experiment_id)
        .filter(experiments::name.eq("next"))
        .first(conn)
        .unwrap()
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn reset_leaves_a_seeded_store_as_fresh_as_a_new_one(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    diesel::insert_into(workspaces::table)
        .values((workspaces::name.eq("team-a"), workspaces::description.eq("another")))
        .execute(&mut conn)
        .unwrap();
    // Ids handed out up to 41 (SQLite takes the highest id left plus one).
    let bump_ids = match backend {
        Backend::Postgresql => "SELECT setval('experiments_experiment_id_seq', 41)",
        Backend::Mysql => "ALTER TABLE experiments AUTO_INCREMENT = 42",
        Backend::Sqlite => "SELECT 1",
    };
    diesel::sql_query(bump_ids).execute(&mut conn).unwrap();

    // As the README's Rust test does it.
    store.reset().unwrap();

    assert_fresh(&mut conn);
    assert_eq!(next_experiment_id(&mut conn), 1);
}

/// Another application's table in MLflow's database, with its own id counter.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn reset_keeps_the_rows_and_ids_of_tables_that_are_not_mlflows(backend: Backend) {
    let (_store, mut conn) = fixtures::seeded_store(backend);
    let id = match backend {
        Backend::Postgresql => "id SERIAL PRIMARY KEY",
        Backend::Mysql => "id INTEGER AUTO_INCREMENT PRIMARY KEY",
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    for statement in [
        format!("CREATE TABLE app_users ({id}, name VARCHAR(50) NOT NULL)"),
        "INSERT INTO app_users (name) VALUES ('ada'), ('grace')".to_owned(),
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    let app_users = snapshot(&mut conn).remove("app_users");

    let schema = crate::schema(&mut conn);
    fresh_store::reset(&mut conn, &schema).unwrap();

    assert_eq!(snapshot(&mut conn).remove("app_users"), app_users);
    diesel::sql_query("INSERT INTO app_users (name) VALUES ('linus')").execute(&mut conn).unwrap();
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
    }
    let next: Id = diesel::sql_query("SELECT id FROM app_users WHERE name = 'linus'")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(next.id, 3, "the table's id counter went on");
    diesel::sql_query("DROP TABLE app_users").execute(&mut conn).unwrap();
    assert_fresh(&mut conn);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn reset_keeps_the_default_experiments_artifact_location(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.pool().unwrap().get().unwrap();
    if backend == Backend::Mysql {
        diesel::sql_query("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
            .execute(&mut conn)
            .unwrap();
    }
    fixtures::experiment(&mut conn, 0, "Default", None);
    let schema = crate::schema(&mut conn);
    fresh_store::reset(&mut conn, &schema).unwrap();
    let location: Option<String> =
        experiments::table.select(experiments::artifact_location).first(&mut conn).unwrap();
    assert_eq!(location.as_deref(), Some("/mlruns/0"));
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn init_creates_the_database_and_refuses_one_with_tables(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    // A name with a space: percent-encoded in the URI (`%20`), and decoded as MLflow's drivers do.
    let fresh = store.uri().with_database(&format!("{} init", store.uri().database()));
    assert!(fresh.given().contains("%20") || backend == Backend::Sqlite, "{}", fresh.given());
    let _dropped = SiblingDatabase(fresh.clone());
    janitor(&[
        "init",
        "--backend-store-uri",
        fresh.given(),
        "--default-artifact-root",
        "s3://bucket/mlruns/",
    ])
    .assert()
    .code(0)
    .stderr(predicate::str::contains("(new database)"));
    let mut conn = fresh.establish().unwrap();
    let current = match backend {
        Backend::Postgresql => Some("SELECT current_database() AS name"),
        Backend::Mysql => Some("SELECT DATABASE() AS name"),
        Backend::Sqlite => None,
    };
    if let Some(query) = current {
        let name: DatabaseName = diesel::sql_query(query).get_result(&mut conn).unwrap();
        assert_eq!(name.name, format!("{} init", store.uri().database()));
    }
    assert_fresh(&mut conn);
    let location: Option<String> =
        experiments::table.select(experiments::artifact_location).first(&mut conn).unwrap();
    assert_eq!(location.as_deref(), Some("s3://bucket/mlruns/0"));
    assert_eq!(next_experiment_id(&mut conn), 1);
    let before = snapshot(&mut conn);

    janitor(&["init", "--backend-store-uri", fresh.given()])
        .assert()
        .code(i32::from(exit_code::USAGE))
        .stderr(predicate::str::contains("already has 71 tables"));
    assert_eq!(snapshot(&mut conn), before);
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[test]
fn reset_refuses_what_it_should_not_touch() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    let uri = store.uri().given().to_owned();
    let before = snapshot(&mut conn);
    // (A server on another host: tests/integration/hostile.rs.)
    janitor(&["reset", "--backend-store-uri", &uri])
        .assert()
        .code(i32::from(exit_code::USAGE))
        .stderr(predicate::str::contains("pass --yes"));
    assert_eq!(snapshot(&mut conn), before);

    let unknown = format!("UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'");
    let named = format!("schema revision `{UNKNOWN_REVISION}`");
    for (change, message) in [
        (unknown.as_str(), named.as_str()),
        ("DROP TABLE alembic_version", "is not an MLflow store"),
    ] {
        diesel::sql_query(change).execute(&mut conn).unwrap();
        let before = snapshot(&mut conn);
        janitor(&["reset", "--yes", "--backend-store-uri", &uri])
            .assert()
            .code(i32::from(exit_code::STORE))
            .stderr(predicate::str::contains(message));
        assert_eq!(snapshot(&mut conn), before, "{change}");
    }
}

#[test]
fn reset_works_for_a_role_that_is_not_a_superuser() {
    let (store, mut conn) = fixtures::seeded_store(Backend::Postgresql);
    let role = format!("{}_owner", store.uri().database());
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    let as_role = store.uri().given().replacen("postgres@", &format!("{role}@"), 1);
    let reset = mlflow_janitor::StoreUri::parse(&as_role).and_then(|uri| uri.establish()).and_then(
        |mut plain| {
            let schema = crate::schema(&mut plain);
            fresh_store::reset(&mut plain, &schema)
        },
    );
    let cleanup = [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")];
    for statement in cleanup {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    reset.unwrap();
    assert_fresh(&mut conn);
    assert_eq!(next_experiment_id(&mut conn), 1);
}
