//! `mlflow-janitor init`: a new MLflow store of the latest schema, without Python.

use clap::Args;
use mlflow_janitor::fresh_store;
use mlflow_janitor::{Result, StoreUri};

#[derive(Debug, Args)]
#[command(
    about = "Create a new MLflow store of the latest schema (what `mlflow db upgrade` makes)",
    after_help = "\
Creates the database if the server lacks it, and refuses one that already has tables. The store
gets the schema, alembic_version, the `default` workspace and experiment 0 `Default`.

Example:
  mlflow-janitor init --backend-store-uri postgresql://postgres@127.0.0.1/mlflow_test"
)]
pub struct Opts {
    /// The store, as given to `mlflow server --backend-store-uri`.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", hide_env_values = true, value_name = "URI")]
    backend_store_uri: String,

    /// Artifact root of experiment 0, as `mlflow server --default-artifact-root`
    /// [default: ./mlruns, as an absolute path, like MLflow's client]
    #[arg(long, value_name = "URI")]
    default_artifact_root: Option<String>,
}

pub fn run(opts: Opts) -> Result<()> {
    let uri = StoreUri::parse(&opts.backend_store_uri)?;
    let root = opts.default_artifact_root.unwrap_or_else(fresh_store::default_artifact_root);
    let report = fresh_store::init(&uri, &root)?;
    super::summary(&format!(
        "created an MLflow {} store at {uri}{} in {} ms",
        report.mlflow_version,
        if report.database_created { " (new database)" } else { "" },
        report.duration_ms
    ));
    Ok(())
}
