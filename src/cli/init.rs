//! `mlflow-janitor init`: a new MLflow store of the latest schema, without Python.

use clap::Args;
use mlflow_janitor::fresh_store;
use mlflow_janitor::Result;

use super::StoreArg;

#[derive(Debug, Args)]
#[command(
    about = "Create a new MLflow store of the latest schema (what `mlflow db upgrade` makes)",
    after_help = "\
Creates the database (a SQLite store: its file) if missing, and refuses one that has tables. The store
gets the schema, alembic_version, the `default` workspace and experiment 0 `Default`.

Example:
  mlflow-janitor init --backend-store-uri postgresql://postgres@127.0.0.1/mlflow_test
  mlflow-janitor init --backend-store-uri sqlite:////tmp/mlflow-test.db"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArg,

    /// Artifact root of experiment 0, as `mlflow server --default-artifact-root`
    /// [default: ./mlruns, as an absolute path, like MLflow's client]
    #[arg(long, value_name = "URI")]
    default_artifact_root: Option<String>,
}

pub fn run(opts: Opts) -> Result<()> {
    let uri = opts.store.uri()?;
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
