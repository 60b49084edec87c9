//! `mlflow-janitor purge`: plan, confirm, then delete in batches and report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, RangedU64ValueParser, TypedValueParser};
use clap::Args;
use mlflow_janitor::archive::Place;
use mlflow_janitor::artifacts::{CloudConfig, Resolver};
use mlflow_janitor::purge::{
    self, ArtifactSettings, Mode, Prepared, Reclaim, ReclaimReport, Report, DEFAULT_BATCH_SIZE,
    DEFAULT_LOCK_TIMEOUT, MAX_BATCH_SIZE, MAX_JOBS,
};
use mlflow_janitor::scope::{Retention, ScopeRequest};
use mlflow_janitor::store::{self, DEFAULT_URI};
use mlflow_janitor::{Error, Result, StoreUri, UnknownRevision};

use super::{parse_duration, Output};

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
  mlflow-janitor purge --backend-store-uri postgresql://mlflow@db/mlflow --experiment-names old-exp --yes
  mlflow-janitor purge --backend-store-uri mysql+pymysql://mlflow@db/mlflow --dry-run
  mlflow-janitor purge --dry-run    # ./mlflow.db, MLflow's default store"
)]
pub struct Opts {
    /// The store, as given to `mlflow server --backend-store-uri` [default: the policy file's
    /// backend_store_uri, else MLFLOW_BACKEND_STORE_URI, else sqlite:///mlflow.db, as MLflow's]
    #[arg(long, value_name = "URI")]
    backend_store_uri: Option<String>,

    /// Give up connecting after this long; 0s waits for ever [default: the URI's
    /// connect_timeout=, else 10s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    connect_timeout: Option<Duration>,

    /// A policy file (TOML) with any of the settings below; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Only what was deleted longer ago than this (MLflow's format: 30d, 12h, 1d2h30m).
    #[arg(long, value_parser = parse_duration, value_name = "AGE",
          conflicts_with_all = ["experiment_ids", "experiment_names", "run_ids"])]
    older_than: Option<Duration>,

    /// Purge exactly these soft-deleted experiments (ids, comma-separated; repeatable).
    #[arg(long, value_delimiter = ',', value_parser = parse_id, value_name = "IDS")]
    experiment_ids: Vec<String>,

    /// Purge exactly the soft-deleted experiment with this name, taken whole (commas included);
    /// repeat the flag for more.
    #[arg(long, visible_alias = "experiment-name", value_name = "NAME")]
    experiment_names: Vec<String>,

    /// Purge exactly these soft-deleted runs (ids, comma-separated; repeatable).
    #[arg(long, value_delimiter = ',', value_parser = parse_id, value_name = "IDS")]
    run_ids: Vec<String>,

    /// Also purge the soft-deleted logged models of live experiments.
    #[arg(long, help_heading = "Other kinds (whole-store purges, each --older-than)")]
    logged_models: bool,

    /// Also purge the model versions MLflow marked Deleted_Internal, with their tags.
    #[arg(long, help_heading = "Other kinds (whole-store purges, each --older-than)")]
    model_versions: bool,

    /// Also purge soft-deleted webhooks, with their events.
    #[arg(long, help_heading = "Other kinds (whole-store purges, each --older-than)")]
    webhooks: bool,

    /// Also purge jobs that finished (succeeded, failed, timed out, canceled).
    #[arg(long, help_heading = "Other kinds (whole-store purges, each --older-than)")]
    finished_jobs: bool,

    /// Also purge the traces of live experiments older than this (e.g. 90d), with their spans,
    /// assessments, tags and metadata.
    #[arg(long, value_parser = parse_duration, value_name = "AGE",
          help_heading = "Other kinds (whole-store purges, each --older-than)")]
    traces_older_than: Option<Duration>,

    /// Also delete the artifacts of what is purged: a run's artifact_uri, a trace's or logged
    /// model's artifact location, a deleted experiment's whole artifact_location. Local paths,
    /// file://, s3:// (AWS_* and MLFLOW_S3_ENDPOINT_URL, as MLflow reads them) and gs://. An
    /// entity whose artifacts cannot go keeps its rows (exit code 9).
    #[arg(long, help_heading = "Artifacts")]
    artifacts: bool,

    /// Where `mlflow server --artifacts-destination` stores proxied artifacts (a path, s3:// or
    /// gs:// URI): resolves mlflow-artifacts: URIs.
    #[arg(long, value_name = "URI", requires = "artifacts", help_heading = "Artifacts")]
    artifacts_destination: Option<String>,

    /// Before each batch commits, write every row it deletes to a new archive in this directory
    /// (a path, s3:// or gs:// URI; gzip'd JSON Lines and a manifest, README "Archive and
    /// restore"); `restore` puts them back. A batch whose rows cannot be archived is rolled back.
    #[arg(long, value_name = "DIR")]
    archive: Option<String>,

    /// After the last batch, give back the disk the purge freed: VACUUM (ANALYZE) on PostgreSQL,
    /// ANALYZE TABLE on MySQL (`full`: OPTIMIZE TABLE, which rebuilds each table), VACUUM on
    /// SQLite, which needs free disk the size of the file (README "Reclaim").
    #[arg(long, num_args = 0..=1, default_missing_value = "standard", value_name = "LEVEL",
          value_parser = PossibleValuesParser::new(Reclaim::LEVELS.map(|(name, _)| name))
              .map(|level| level.parse::<Reclaim>().expect("one of the names")))]
    reclaim: Option<Reclaim>,

    /// Count what would be deleted, table by table (with --artifacts: each location and its
    /// size), and change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Delete without asking.
    #[arg(long, short)]
    yes: bool,

    /// Entities per transaction [default: 500].
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH_SIZE as u64))]
    batch_size: Option<usize>,

    /// Stop between batches after this long (exit code 8); the next run goes on (e.g. 50m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    max_duration: Option<Duration>,

    /// Batches run at once, each on a connection of its own (PostgreSQL, MySQL; README "Jobs")
    /// [default: 1, gentle beside a tracking server].
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_JOBS as u64))]
    jobs: Option<usize>,

    /// Pause this long after each batch, to leave the database to the tracking server [default: 0s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    throttle: Option<Duration>,

    /// Give up a statement that waits this long for a lock the tracking server holds [default: 5s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    lock_timeout: Option<Duration>,

    /// Give up a statement that runs this long; 0s leaves the server's setting [default: 0s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    statement_timeout: Option<Duration>,

    /// Write the run's figures here in Prometheus text format, for node_exporter's textfile
    /// collector (written whole, by rename; never by --dry-run).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,

    /// Work on a store whose schema revision mlflow-janitor does not know (a newer MLflow), as
    /// long as every table that references what a purge deletes is one the plan knows.
    #[arg(long)]
    allow_unknown_schema: bool,

    /// How to print the report: a summary on stderr, or JSON on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// The policy file's `reclaim`: `true`, `false`, `"standard"` or `"full"`.
fn policy_reclaim(value: Option<toml::Value>) -> Result<Option<Reclaim>> {
    let Some(value) = value else { return Ok(None) };
    let level = match &value {
        toml::Value::Boolean(on) => return Ok(on.then_some(Reclaim::Standard)),
        toml::Value::String(level) => level.parse().ok(),
        _ => None,
    };
    level.map(Some).ok_or_else(|| {
        Error::InvalidSettings(format!(
            "`reclaim` in the policy file is {value}: use true, false, \"standard\" or \"full\""
        ))
    })
}

/// The policy file: the settings of a scheduled purge, so that the schedule is one line.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    backend_store_uri: Option<String>,
    connect_timeout: Option<String>,
    older_than: Option<String>,
    batch_size: Option<usize>,
    jobs: Option<usize>,
    max_duration: Option<String>,
    throttle: Option<String>,
    lock_timeout: Option<String>,
    statement_timeout: Option<String>,
    yes: Option<bool>,
    metrics_file: Option<PathBuf>,
    allow_unknown_schema: Option<bool>,
    logged_models: Option<bool>,
    model_versions: Option<bool>,
    webhooks: Option<bool>,
    finished_jobs: Option<bool>,
    traces_older_than: Option<String>,
    artifacts: Option<bool>,
    artifacts_destination: Option<String>,
    archive: Option<String>,
    reclaim: Option<toml::Value>,
}

/// Every setting of a purge, from the flags, else the policy file, else the default.
struct Settled {
    purge: purge::Settings,
    yes: bool,
    metrics_file: Option<PathBuf>,
}

/// One id of a list, without the spaces around it (`--run-ids "a, b"`).
fn parse_id(text: &str) -> std::result::Result<String, String> {
    match text.trim() {
        "" => Err("an empty id (two commas in a row?)".to_owned()),
        id => Ok(id.to_owned()),
    }
}

/// The store: the flag, else the policy file, else the environment, else MLflow's default. The
/// file passed with --config outranks the environment: it names this purge's store, where the
/// variable may be left over from the shell or meant for the tracking server.
fn store_uri(flag: Option<String>, file: Option<String>) -> Result<StoreUri> {
    const VARIABLE: &str = "MLFLOW_BACKEND_STORE_URI";
    let environment = std::env::var(VARIABLE).ok().filter(|uri| !uri.is_empty());
    let uri = match (flag.or(file), environment) {
        (Some(chosen), Some(ignored)) => {
            if ignored != chosen {
                tracing::warn!(
                    store = %store::redact(&chosen),
                    ignored = %store::redact(&ignored),
                    "{VARIABLE} is set but the store comes from --backend-store-uri or the policy file"
                );
            }
            chosen
        }
        (chosen, environment) => chosen.or(environment).unwrap_or_else(|| DEFAULT_URI.to_owned()),
    };
    StoreUri::parse(&uri)
}

fn settle(opts: Opts) -> Result<Settled> {
    let file = match &opts.config {
        None => PolicyFile::default(),
        Some(path) => {
            let bad =
                |reason: String| Error::InvalidSettings(format!("{}: {reason}", path.display()));
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?
        }
    };
    let duration = |flag: Option<Duration>, key: &str, value: Option<String>| match (flag, value) {
        (Some(flag), _) => Ok(Some(flag)),
        (None, Some(text)) => parse_duration(&text).map(Some).map_err(|reason| {
            Error::InvalidSettings(format!("`{key}` in the policy file: {reason}"))
        }),
        (None, None) => Ok(None),
    };
    let mut uri = store_uri(opts.backend_store_uri, file.backend_store_uri)?;
    if let Some(timeout) = duration(opts.connect_timeout, "connect_timeout", file.connect_timeout)?
    {
        uri = uri.with_connect_timeout(timeout);
    }
    let names_entities = !(opts.experiment_ids.is_empty()
        && opts.experiment_names.is_empty()
        && opts.run_ids.is_empty());
    // Naming entities on the command line purges exactly those: the file's age does not apply.
    let older_than = if names_entities {
        None
    } else {
        duration(opts.older_than, "older_than", file.older_than)?
    };
    // Likewise the file's other kinds: flags for them with named entities are an error.
    let from_file = |key: Option<bool>| !names_entities && key == Some(true);
    let retention = Retention {
        logged_models: opts.logged_models || from_file(file.logged_models),
        model_versions: opts.model_versions || from_file(file.model_versions),
        webhooks: opts.webhooks || from_file(file.webhooks),
        finished_jobs: opts.finished_jobs || from_file(file.finished_jobs),
        traces_older_than: duration(
            opts.traces_older_than,
            "traces_older_than",
            if names_entities { None } else { file.traces_older_than.clone() },
        )?,
    };
    let batch_size = opts.batch_size.or(file.batch_size).unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        return Err(Error::InvalidSettings(format!(
            "batch_size {batch_size} is out of range 1..={MAX_BATCH_SIZE}"
        )));
    }
    let jobs = opts.jobs.or(file.jobs).unwrap_or(1);
    if !(1..=MAX_JOBS).contains(&jobs) {
        return Err(Error::InvalidSettings(format!("jobs {jobs} is out of range 1..={MAX_JOBS}")));
    }
    let artifacts = if opts.artifacts || file.artifacts == Some(true) {
        let destination = opts.artifacts_destination.or(file.artifacts_destination);
        Some(ArtifactSettings {
            resolver: Resolver::new(destination.as_deref())?,
            cloud: CloudConfig::from_env(),
        })
    } else if file.artifacts_destination.is_some() {
        return Err(Error::InvalidSettings(
            "`artifacts_destination` in the policy file needs `artifacts = true`".to_owned(),
        ));
    } else {
        None
    };
    let purge = purge::Settings {
        uri,
        request: ScopeRequest {
            older_than,
            experiment_ids: opts.experiment_ids,
            experiment_names: opts.experiment_names,
            run_ids: opts.run_ids,
            retention,
        },
        mode: if opts.dry_run { Mode::DryRun } else { Mode::Delete },
        batch_size,
        max_duration: duration(opts.max_duration, "max_duration", file.max_duration)?,
        throttle: duration(opts.throttle, "throttle", file.throttle)?.unwrap_or(Duration::ZERO),
        jobs,
        lock_timeout: duration(opts.lock_timeout, "lock_timeout", file.lock_timeout)?
            .unwrap_or(DEFAULT_LOCK_TIMEOUT),
        statement_timeout: duration(
            opts.statement_timeout,
            "statement_timeout",
            file.statement_timeout,
        )?
        .unwrap_or(Duration::ZERO),
        unknown_revision: if opts.allow_unknown_schema || file.allow_unknown_schema == Some(true) {
            UnknownRevision::Allow
        } else {
            UnknownRevision::Refuse
        },
        artifacts,
        archive: opts
            .archive
            .or(file.archive)
            .map(|given| Place::parse(&given, &CloudConfig::from_env()))
            .transpose()?,
        reclaim: match opts.reclaim {
            Some(level) => Some(level),
            None => policy_reclaim(file.reclaim)?,
        },
    };
    Ok(Settled {
        purge,
        yes: opts.yes || file.yes.unwrap_or(false),
        metrics_file: opts.metrics_file.or(file.metrics_file),
    })
}

pub fn run(opts: Opts, quiet: bool) -> Result<()> {
    let output = opts.output;
    let Settled { purge, yes, metrics_file } = settle(opts)?;
    // A dry run (an administrator trying the nightly policy) must not pass for a purge.
    let metrics_file = metrics_file.filter(|_| purge.mode == Mode::Delete);
    // Found unwritable after the work, it would hide what the purge did behind a settings error.
    if let Some(path) = &metrics_file {
        super::metrics_file::check_writable(path)?;
    }
    let mut report = Report::new(purge.uri.to_string(), "", purge.mode);
    let result = purge_with(purge, yes, quiet, &mut report);
    if let Some(path) = &metrics_file {
        if let Err(err) = super::metrics_file::write(path, &report, result.as_ref().err()) {
            tracing::warn!(
                metrics_file = %path.display(),
                "the metrics are not written ({err}); the purge's own result stands"
            );
        }
    }
    let interrupted = matches!(result, Err(Error::Interrupted { .. }));
    if result.is_ok() || report.batches > 0 || interrupted {
        print_report(&report, output);
    }
    result
}

/// The library's purge, with the terminal's confirmation and progress bar, and the signals.
fn purge_with(
    settings: purge::Settings,
    yes: bool,
    quiet: bool,
    report: &mut Report,
) -> Result<()> {
    let uri = settings.uri.clone();
    let confirmed = Prepared::prepare(settings, report)?.confirm(|counts| {
        if yes {
            return Ok(());
        }
        let what: Vec<String> =
            counts.iter().map(|(entity, n)| format!("{n} {}(s)", entity.name())).collect();
        super::confirm("delete", &format!("Permanently delete {} from {uri}?", what.join(", ")))
    })?;
    let bar = super::progress::bar(confirmed.entities(), "entities", quiet);
    // After the confirmation: until then a signal ends the purge at once, with nothing done.
    let stop_signal = stop_on_signals()?;
    let result = confirmed.run(Some(stop_signal), report, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    result
}

/// SIGINT and SIGTERM set the returned number, which stops the purge between batches; a second
/// one ends the process at once, with the shell's code for it (130, 143).
fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let signal = Arc::new(AtomicUsize::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    for number in [SIGINT, SIGTERM] {
        let registered = signal_hook::flag::register_conditional_shutdown(
            number,
            128 + number,
            Arc::clone(&stopping),
        )
        .and_then(|_| signal_hook::flag::register(number, Arc::clone(&stopping)))
        .and_then(|_| {
            signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize)
        });
        registered.map_err(|e| Error::InvalidSettings(format!("cannot handle signals: {e}")))?;
    }
    Ok(signal)
}

fn print_report(report: &Report, output: Output) {
    match output {
        Output::Json => super::write_json(report),
        Output::Text => {
            let mut out = String::new();
            if report.dry_run {
                out.push_str(&format!(
                    "{:<13} {:<32} {:>12}  rows of\n",
                    "entity", "table", "rows"
                ));
                for step in report.steps.iter().filter(|step| !step.skipped) {
                    out.push_str(&format!(
                        "{:<13} {:<32} {:>12}  {}\n",
                        step.entity.name(),
                        step.table,
                        step.rows,
                        step.rows_of
                    ));
                }
            }
            if let Some(artifacts) = report.artifacts.as_ref().filter(|_| report.dry_run) {
                out.push_str(&format!(
                    "\n{:<13} {:<32} {:>10} {:>14}  location\n",
                    "entity", "id", "objects", "bytes"
                ));
                for listed in &artifacts.listed {
                    out.push_str(&format!(
                        "{:<13} {:<32} {:>10} {:>14}  {}\n",
                        listed.entity.name(),
                        listed.id,
                        listed.objects,
                        listed.bytes,
                        listed.location
                    ));
                }
            }
            super::write_stdout(&out);
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
            if let Some(archive) = &report.archive {
                super::summary(&format!(
                    "archived every purged row in {archive}{}",
                    if report.artifacts.is_some() {
                        " (the rows only: the artifacts deleted are not in it)"
                    } else {
                        ""
                    }
                ));
            }
            if let Some(reclaimed) = &report.reclaim {
                super::summary(&reclaim_summary(reclaimed));
            }
            if let Some(artifacts) = &report.artifacts {
                super::summary(&format!(
                    "artifacts: {} {} objects, {} bytes in {} locations{}",
                    if report.dry_run { "would delete" } else { "deleted" },
                    artifacts.objects,
                    artifacts.bytes,
                    artifacts.locations,
                    if artifacts.kept.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} entities kept with their rows (see warnings)",
                            artifacts.kept.len()
                        )
                    }
                ));
            }
        }
    }
}

/// What the reclaim gave back, and of which kind: disk the filesystem has again, or space the
/// database reuses.
fn reclaim_summary(reclaimed: &ReclaimReport) -> String {
    let what = match reclaimed.file {
        Some(_) => "the SQLite file".to_owned(),
        None => format!("{} table(s)", reclaimed.tables.len()),
    };
    let total = reclaimed.total();
    format!(
        "reclaimed {what} in {} ms: {} before the purge, {} now; {} returned to the filesystem, \
         {} free inside for new rows",
        reclaimed.duration_ms,
        super::size(total.before.bytes),
        super::size(total.after.bytes),
        super::size(reclaimed.bytes_returned),
        super::size(reclaimed.bytes_reusable),
    )
}
