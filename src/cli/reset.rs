//! `mlflow-janitor reset`: empty a test store back to what a fresh one holds.

use clap::Args;
use mlflow_janitor::error::Error;
use mlflow_janitor::{fresh_store, store, Result, StoreSchema, UnknownRevision};

use super::{confirm, StoreArg};

#[derive(Debug, Args)]
#[command(
    about = "Empty MLflow's tables in a test store, as if just created",
    after_help = "\
Empties the tables of the store's MLflow schema; other tables in the database keep their rows.
Keeps the schema and alembic_version, restores the `default` workspace and experiment 0
`Default`, and restarts the id sequences: the next experiment gets id 1. For test stores: it
refuses a server that is not on this machine unless --allow-remote is given: where the connection
went counts, not only the URI's host (hostaddr=, PGHOST and MYSQL_HOST redirect it). Works on every
schema mlflow-janitor knows, on PostgreSQL, MySQL/MariaDB and SQLite.

Example:
  mlflow-janitor reset --backend-store-uri postgresql://postgres@127.0.0.1/mlflow_test --yes
  mlflow-janitor reset --backend-store-uri sqlite:////tmp/mlflow-test.db --yes"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArg,

    /// Empty the store without asking.
    #[arg(long, short)]
    yes: bool,

    /// Allow a server that is not on this machine (reached over loopback or a Unix socket).
    #[arg(long)]
    allow_remote: bool,
}

pub fn run(opts: Opts) -> Result<()> {
    let uri = opts.store.uri()?;
    let mut conn = uri.establish()?;
    if !opts.allow_remote {
        if let Some(address) = store::remote_address(&mut conn)? {
            return Err(Error::RemoteStore { uri: uri.to_string(), address });
        }
    }
    let _lock = store::lock_store(&mut conn, &uri)?;
    let schema = StoreSchema::read(&mut conn, &uri, UnknownRevision::Refuse)?;
    if !opts.yes {
        confirm("delete", &format!("Empty MLflow's tables in {uri}?"))?;
    }
    let report = fresh_store::reset(&mut conn, &schema)?;
    tracing::info!(duration_ms = report.duration_ms, "store reset");
    Ok(())
}
