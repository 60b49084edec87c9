//! `mlflow-janitor reset`: empty a test store back to what a fresh one holds.

use clap::Args;
use mlflow_janitor::error::Error;
use mlflow_janitor::{fresh_store, store, Result, StoreUri};

use super::confirm;

#[derive(Debug, Args)]
#[command(
    about = "Empty every table of an MLflow test store, as if just created",
    after_help = "\
Keeps the schema and alembic_version, restores the `default` workspace and experiment 0
`Default`, and restarts the id sequences: the next experiment gets id 1. For test stores: it
refuses a server that is not on this machine unless --allow-remote is given.

Example:
  mlflow-janitor reset --backend-store-uri postgresql://postgres@127.0.0.1/mlflow_test --yes"
)]
pub struct Opts {
    /// The store, as given to `mlflow server --backend-store-uri`.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", hide_env_values = true, value_name = "URI")]
    backend_store_uri: String,

    /// Empty the store without asking.
    #[arg(long, short)]
    yes: bool,

    /// Allow a server that is not on this machine (loopback or a Unix socket).
    #[arg(long)]
    allow_remote: bool,
}

pub fn run(opts: Opts) -> Result<()> {
    let uri = StoreUri::parse(&opts.backend_store_uri)?;
    if !uri.is_local() && !opts.allow_remote {
        return Err(Error::RemoteStore { uri: uri.to_string() });
    }
    let mut conn = uri.establish()?;
    store::check_schema(&mut conn, &uri)?;
    if !opts.yes {
        confirm(&format!("Empty every table of {uri}?"))?;
    }
    let report = fresh_store::reset(&mut conn)?;
    tracing::info!(duration_ms = report.duration_ms, "store reset");
    Ok(())
}
