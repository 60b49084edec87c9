//! `mlflow-janitor restore`: put an archive's entities back, soft-deleted, as they were purged.

use std::time::Duration;

use clap::Args;
use mlflow_janitor::archive::restore::{self, RestoreReport, RestoreRequest, RestoreSettings};
use mlflow_janitor::archive::Place;
use mlflow_janitor::artifacts::CloudConfig;
use mlflow_janitor::purge::DEFAULT_LOCK_TIMEOUT;
use mlflow_janitor::Result;

use super::{parse_duration, Output, StoreArg};

#[derive(Debug, Args)]
#[command(
    about = "Put back what a `purge --archive` deleted, from its archive",
    after_help = "\
The entities come back as they were when purged: soft-deleted. Bring them back to life with
MLflow (`mlflow experiments restore`, `MlflowClient().restore_run`). Nothing is overwritten: an
entity whose key or name the store holds already, or whose experiment is gone, is left out and
reported (exit code 11); one restored before is reported as already there. ARCHIVE is one
archive, or the --archive directory of purges, whose archives are restored newest first.

Examples:
  mlflow-janitor restore /backups/mlflow --backend-store-uri postgresql://mlflow@db/mlflow --dry-run
  mlflow-janitor restore /backups/mlflow/20261203T020000Z --experiment-names churn --yes"
)]
pub struct Opts {
    /// The archive, or a directory of archives (a path, s3:// or gs:// URI).
    #[arg(value_name = "ARCHIVE")]
    archive: String,

    #[command(flatten)]
    store: StoreArg,

    /// Restore only these experiments, with their runs, traces and logged models (ids,
    /// comma-separated; repeatable).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    experiment_ids: Vec<String>,

    /// Likewise, by name; repeat the flag for more.
    #[arg(long, visible_alias = "experiment-name", value_name = "NAME")]
    experiment_names: Vec<String>,

    /// Restore only these runs (ids, comma-separated; repeatable).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    run_ids: Vec<String>,

    /// Say what would come back, table by table, and write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Restore without asking.
    #[arg(long, short)]
    yes: bool,

    /// Give up a statement that waits this long for a lock the tracking server holds [default: 5s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    lock_timeout: Option<Duration>,

    /// How to print the report: a summary on stderr, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub fn run(opts: Opts) -> Result<()> {
    let settings = RestoreSettings {
        uri: opts.store.uri()?,
        archive: Place::parse(&opts.archive, &CloudConfig::from_env())?,
        request: RestoreRequest {
            experiment_ids: opts.experiment_ids,
            experiment_names: opts.experiment_names,
            run_ids: opts.run_ids,
        },
        dry_run: opts.dry_run,
        lock_timeout: opts.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
    };
    let mut report = RestoreReport::default();
    let yes = opts.yes;
    let result = restore::restore(
        &settings,
        |counts| {
            if yes {
                return Ok(());
            }
            let what: Vec<String> =
                counts.iter().map(|(entity, n)| format!("{n} {}(s)", entity.name())).collect();
            super::confirm(
                "restore",
                &format!("Restore {} into {}?", what.join(", "), settings.uri),
            )
        },
        &mut report,
    );
    let reported = matches!(
        result,
        Ok(())
            | Err(mlflow_janitor::Error::LeftOut { .. }
                | mlflow_janitor::Error::RestoreStopped { .. })
    );
    if reported {
        print_report(&report, opts.output);
    }
    result
}

fn print_report(report: &RestoreReport, output: Output) {
    match output {
        Output::Json => super::write_json(report),
        Output::Text => {
            let mut out = String::new();
            if report.dry_run {
                out.push_str(&format!("{:<32} {:>12}\n", "table", "rows"));
                for (table, rows) in &report.rows_by_table {
                    out.push_str(&format!("{table:<32} {rows:>12}\n"));
                }
            }
            for left in &report.left_out {
                out.push_str(&format!(
                    "left out: {} {}: {}\n",
                    left.entity.name(),
                    left.id,
                    left.why
                ));
            }
            super::write_stdout(&out);
            let counted = |counts: &std::collections::BTreeMap<_, u64>| -> Vec<String> {
                counts
                    .iter()
                    .map(|(e, n): (&mlflow_janitor::plan::Entity, &u64)| {
                        format!("{n} {}(s)", e.name())
                    })
                    .collect()
            };
            let entities = counted(&report.entities);
            let present = counted(&report.already_present);
            let rows: u64 = report.rows_by_table.values().sum();
            if entities.is_empty() && !present.is_empty() && report.left_out.is_empty() {
                super::summary(&format!(
                    "nothing to restore: {} already in the store",
                    present.join(", ")
                ));
                return;
            }
            super::summary(&format!(
                "{} {} and {rows} rows in {} batches{}",
                if report.dry_run { "would restore" } else { "restored" },
                if entities.is_empty() { "nothing".to_owned() } else { entities.join(", ") },
                report.batches,
                if present.is_empty() {
                    String::new()
                } else {
                    format!("; {} already in the store", present.join(", "))
                }
            ));
        }
    }
}
