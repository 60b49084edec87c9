//! The integration suite: one binary, each test on its own disposable MLflow store
//! (`mlflow_janitor::test_store`): a database on the PostgreSQL or MySQL server the test store
//! module names, or a SQLite file in a temporary folder.

mod archive;
mod artifacts;
mod cli;
mod doctor;
mod dry_run;
mod e2e;
mod faults;
mod fixtures;
mod fresh_store;
mod hostile;
mod jobs;
mod own_server;
mod purge;
mod purge_artifacts;
mod reclaim;
mod schema;
mod status;
mod tls;

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::Text;
use mlflow_janitor::purge::{Mode, Prepared, Report, Settings};
use mlflow_janitor::scope::ScopeRequest;
use mlflow_janitor::store::catalog;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection, StoreSchema, StoreUri, UnknownRevision};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    row: String,
}

/// A schema revision no MLflow has: a store of it stands for one of a newer MLflow.
pub const UNKNOWN_REVISION: &str = "0123456789ab";

/// The store's URI as MLflow users write it, with SQLAlchemy's driver suffix.
pub fn as_mlflow_spells_it(store: &TestStore) -> String {
    store.uri().given().replacen("postgresql://", "postgresql+psycopg2://", 1).replacen(
        "mysql://",
        "mysql+pymysql://",
        1,
    )
}

/// `program` run as `user` when the tests run as root: database servers refuse root, and root
/// writes a read-only file anyway.
pub fn as_user(user: &str, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut runuser = std::process::Command::new("runuser");
        runuser.args(["-u", user, "--"]).arg(program);
        runuser
    } else {
        std::process::Command::new(program)
    }
}

/// The binary with no store in its environment (the tests name theirs).
pub fn janitor() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mlflow-janitor").unwrap();
    for var in ["MLFLOW_BACKEND_STORE_URI", "PGHOST", "PGHOSTADDR", "PGPORT", "MYSQL_HOST"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Runs `cmd`, checks its exit code and that stderr's error is one line saying `says`.
pub fn fails_with(cmd: &mut assert_cmd::Command, code: u8, says: &str) -> String {
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(i32::from(code)), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(says), "{stderr}");
    stderr
}

/// Every row of every table, as text, by table: two equal snapshots mean an unchanged store.
pub fn snapshot(conn: &mut DbConnection) -> BTreeMap<String, String> {
    let mut tables = BTreeMap::new();
    for table in catalog::tables(conn).unwrap() {
        let query = match conn.backend() {
            Backend::Postgresql => format!("SELECT t::text AS row FROM \"{table}\" t"),
            backend => {
                let quote = if backend == Backend::Mysql { '`' } else { '"' };
                let columns: Vec<String> = catalog::columns(conn, &table)
                    .unwrap()
                    .iter()
                    .map(|c| format!("{quote}{c}{quote}"))
                    .collect();
                format!(
                    "SELECT JSON_ARRAY({}) AS row FROM {quote}{table}{quote}",
                    columns.join(", ")
                )
            }
        };
        let mut rows: Vec<String> = diesel::sql_query(query)
            .load::<Row>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.row)
            .collect();
        rows.sort();
        tables.insert(table, rows.join("\n"));
    }
    tables
}

/// The store's schema, as a purge reads it.
pub fn schema(conn: &mut DbConnection) -> StoreSchema {
    // The URI only names the store in error messages.
    StoreSchema::read(conn, &StoreUri::default_store(), UnknownRevision::Refuse).unwrap()
}

/// Purges through the library's entry point, as the binary does, confirming at once.
pub fn purge(
    store: &TestStore,
    request: ScopeRequest,
    mode: Mode,
    batch_size: usize,
) -> mlflow_janitor::Result<Report> {
    let mut settings = Settings::new(store.uri().clone(), request, mode);
    settings.batch_size = batch_size;
    let mut report = Report::new("test".into(), "", mode);
    Prepared::prepare(settings, &mut report)?.confirm(|_| Ok(()))?.run(
        None,
        &mut report,
        &mut |_| {},
    )?;
    Ok(report)
}

/// A report's rows step by step, as (kind, table, rows): what a dry run counts must be what the
/// purge then deletes.
pub fn rows_by_step(report: &Report) -> Vec<(mlflow_janitor::plan::Entity, &'static str, u64)> {
    report.steps.iter().map(|step| (step.entity, step.table, step.rows)).collect()
}

/// A database made beside a test store, dropped with it. (A SQLite sibling lives in the test
/// store's own folder, which goes with the store.)
pub struct SiblingDatabase(pub StoreUri);

impl Drop for SiblingDatabase {
    fn drop(&mut self) {
        let database = self.0.database();
        let (maintenance, quoted, force) = match self.0.backend() {
            Backend::Postgresql => ("postgres", format!("\"{database}\""), " WITH (FORCE)"),
            Backend::Mysql => ("mysql", format!("`{database}`"), ""),
            Backend::Sqlite => return,
        };
        if let Ok(mut admin) = self.0.with_database(maintenance).establish() {
            let drop = format!("DROP DATABASE IF EXISTS {quoted}{force}");
            let _ = diesel::sql_query(drop).execute(&mut admin);
        }
    }
}
