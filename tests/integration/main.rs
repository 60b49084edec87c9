//! The integration suite: one binary, each test on its own disposable MLflow store
//! (`mlflow_janitor::test_store`), on the PostgreSQL server `MLFLOW_JANITOR_TEST_DATABASE_URL` names.

mod cli;
mod doctor;
mod e2e;
mod faults;
mod fixtures;
mod fresh_store;
mod purge;
mod schema;
mod status;

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::Text;
use mlflow_janitor::purge::{Mode, Report};
use mlflow_janitor::scope::{Scope, ScopeRequest};
use mlflow_janitor::DbConnection;

#[derive(QueryableByName)]
struct TableRows {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    rows: String,
}

/// Every row of every table, as text, by table: two equal snapshots mean an unchanged store.
pub fn snapshot(conn: &mut DbConnection) -> BTreeMap<String, String> {
    let tables: Vec<String> = diesel::sql_query(
        "SELECT table_name::text AS name, '' AS rows FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .load::<TableRows>(conn)
    .unwrap()
    .into_iter()
    .map(|t| t.name)
    .collect();
    tables
        .iter()
        .map(|table| {
            let row: TableRows = diesel::sql_query(format!(
                "SELECT '{table}' AS name, \
                        coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS rows \
                 FROM {table} t"
            ))
            .get_result(conn)
            .unwrap();
            (row.name, row.rows)
        })
        .collect()
}

/// Purges through the library, as the binary does after its confirmation.
pub fn purge(
    conn: &mut DbConnection,
    request: ScopeRequest,
    mode: Mode,
    batch_size: usize,
) -> mlflow_janitor::Result<Report> {
    let (scope, blocked) = Scope::resolve(conn, &request)?;
    let mut report = Report::new("test".into(), "3.17.2", mode);
    report.blocked = blocked;
    let options = mlflow_janitor::purge::Options::new(mode, batch_size);
    mlflow_janitor::purge::run(conn, &scope, &options, &mut report, &mut |_| {})?;
    Ok(report)
}

/// A database made beside a test store, dropped with it.
pub struct SiblingDatabase(pub mlflow_janitor::StoreUri);

impl Drop for SiblingDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = self.0.with_database("postgres").establish() {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0.database());
            let _ = diesel::sql_query(drop).execute(&mut admin);
        }
    }
}
