//! `mlflow-janitor purge`: plan, confirm, then delete in batches and report.

use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Args;
use mlflow_janitor::purge::{self, Mode, Report, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE};
use mlflow_janitor::scope::{Scope, ScopeRequest};
use mlflow_janitor::{Error, Result, StoreUri};

use super::Output;

#[derive(Debug, Args)]
#[command(
    about = "Delete soft-deleted experiments and runs, with everything they hold",
    after_help = "\
Without --experiment-ids, --experiment-names or --run-ids: every soft-deleted experiment (with all
its runs, traces, logged models and datasets) and every soft-deleted run of a live experiment.
Runs and experiments deleted by MLflow versions that recorded no deletion time count as older
than any --older-than.

Examples:
  mlflow-janitor purge --backend-store-uri postgresql://mlflow@db/mlflow --dry-run
  mlflow-janitor purge --backend-store-uri postgresql://mlflow@db/mlflow --older-than 30d --yes
  mlflow-janitor purge --backend-store-uri postgresql://mlflow@db/mlflow --experiment-names old-exp --yes"
)]
pub struct Opts {
    /// The store, as given to `mlflow server --backend-store-uri`.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", hide_env_values = true, value_name = "URI")]
    backend_store_uri: String,

    /// Only what was deleted longer ago than this (MLflow's format: 30d, 12h, 1d2h30m).
    #[arg(long, value_parser = parse_duration, value_name = "AGE",
          conflicts_with_all = ["experiment_ids", "experiment_names", "run_ids"])]
    older_than: Option<Duration>,

    /// Purge exactly these soft-deleted experiments (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    experiment_ids: Vec<String>,

    /// Purge exactly the soft-deleted experiments with these names (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    experiment_names: Vec<String>,

    /// Purge exactly these soft-deleted runs (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    run_ids: Vec<String>,

    /// Count what would be deleted, table by table, and change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Delete without asking.
    #[arg(long, short)]
    yes: bool,

    /// Entities per transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH_SIZE as u64))]
    batch_size: usize,

    /// Stop between batches after this long (exit code 8); the next run goes on (e.g. 50m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    max_duration: Option<Duration>,

    /// Pause this long after each batch, to leave the database to the tracking server.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "0s")]
    throttle: Duration,

    /// Give up a statement that waits this long for a lock the tracking server holds.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "5s")]
    lock_timeout: Duration,

    /// Give up a statement that runs this long (0s: the server's setting).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "0s")]
    statement_timeout: Duration,

    /// How to print the report: a summary on stderr, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30d, 12h, 1d2h30m)"))
}

pub fn run(opts: Opts, quiet: bool) -> Result<()> {
    let uri = StoreUri::parse(&opts.backend_store_uri)?;
    // One connection does the whole job: batches run one after another.
    let pool = uri.connect(1)?;
    let mut conn = pool.get().map_err(|e| Error::Pool(e.to_string()))?;
    let started = std::time::Instant::now();
    let mlflow_version = mlflow_janitor::preflight(&mut conn, &uri)?;
    purge::limit_session(&mut conn, opts.lock_timeout, opts.statement_timeout)?;
    purge::lock_store(&mut conn, &uri)?;
    let request = ScopeRequest {
        older_than: opts.older_than,
        experiment_ids: opts.experiment_ids,
        experiment_names: opts.experiment_names,
        run_ids: opts.run_ids,
    };
    let (scope, blocked) = Scope::resolve(&mut conn, &request)?;
    let mode = if opts.dry_run { Mode::DryRun } else { Mode::Delete };
    let mut report = Report::new(uri.to_string(), mlflow_version, mode);
    report.blocked = blocked;
    for b in &report.blocked {
        tracing::warn!(experiment.id = b.experiment_id, reason = b.reason, "experiment kept");
    }
    let entities: i64 = scope.count(&mut conn)?.values().sum();
    if mode == Mode::Delete && !opts.yes && entities > 0 {
        confirm(&uri, &scope, &mut conn)?;
    }
    let bar = super::progress::bar(entities as u64, "entities", quiet);
    let options = purge::Options {
        mode,
        batch_size: opts.batch_size,
        deadline: opts.max_duration.map(|limit| started + limit),
        throttle: opts.throttle,
    };
    let result = purge::run(&mut conn, &scope, &options, &mut report, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    print_report(&report, opts.output)?;
    result
}

/// Asks on the terminal, naming what would go; without a terminal, refuses.
fn confirm(uri: &StoreUri, scope: &Scope, conn: &mut mlflow_janitor::DbConnection) -> Result<()> {
    let counts = scope.count(conn)?;
    let what: Vec<String> =
        counts.iter().map(|(entity, n)| format!("{n} {}(s)", entity.name())).collect();
    super::confirm(&format!("Permanently delete {} from {uri}?", what.join(", ")))
}

fn print_report(report: &Report, output: Output) -> Result<()> {
    match output {
        Output::Json => {
            let json = serde_json::to_string_pretty(report).expect("the report serializes");
            println!("{json}");
        }
        Output::Text => {
            if report.dry_run {
                println!("{:<12} {:<32} {:>12}  rows of", "entity", "table", "rows");
                for step in &report.steps {
                    println!(
                        "{:<12} {:<32} {:>12}  {}",
                        step.entity.name(),
                        step.table,
                        step.rows,
                        step.rows_of
                    );
                }
            }
            let entities: Vec<String> =
                report.entities.iter().map(|(e, n)| format!("{n} {}(s)", e.name())).collect();
            super::summary(&format!(
                "{} {} and {} rows in {} batches, {} ms{}",
                if report.dry_run { "would purge" } else { "purged" },
                if entities.is_empty() { "nothing".to_owned() } else { entities.join(", ") },
                report.total_rows(),
                report.batches,
                report.duration_ms,
                if report.blocked.is_empty() {
                    String::new()
                } else {
                    format!("; {} deleted experiment(s) kept (see warnings)", report.blocked.len())
                }
            ));
        }
    }
    Ok(())
}
