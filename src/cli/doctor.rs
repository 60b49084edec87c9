//! `mlflow-janitor doctor`: find what is wrong in a store; `--fix --yes` removes orphan rows.

use clap::Args;
use mlflow_janitor::doctor::{self, Finding};
use mlflow_janitor::error::Error;
use mlflow_janitor::{store, Result, StoreSchema, UnknownRevision};

use super::{confirm, progress, Output, StoreArg};

#[derive(Debug, Args)]
#[command(
    about = "Find orphan rows, unexpected foreign keys and missing indexes; --fix removes orphans",
    after_help = "\
Orphans are rows that point at something gone: the inputs and input tags `mlflow gc` leaves,
associations and rollups of purged experiments, and on a store that ran without foreign keys,
rows of any parent the delete plan knows that is gone (the datasets, tags, runs or traces of a
missing experiment, the metrics of a missing run). --fix deletes them in batches, an orphan run,
trace or model with what it holds (never a live row, never the schema). Missing indexes are
advice: doctor prints the statement a DBA could run, and runs none.

Exit codes: 0 no problem (advice aside), 6 problems found (after --fix: left).

Examples:
  mlflow-janitor doctor --backend-store-uri postgresql://mlflow@db/mlflow
  mlflow-janitor doctor --backend-store-uri postgresql://mlflow@db/mlflow --fix --yes"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArg,

    /// Delete the orphan rows found.
    #[arg(long)]
    fix: bool,

    /// With --fix: delete without asking.
    #[arg(long, short, requires = "fix")]
    yes: bool,

    /// Orphan rows per transaction with --fix.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    batch_size: i64,

    /// A list for people, or JSON for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub fn run(opts: Opts, quiet: bool) -> Result<()> {
    let uri = opts.store.uri()?;
    let mut conn = uri.establish()?;
    // A fixer is a writer: never beside a purge or a reset of the same store.
    let _lock = if opts.fix { Some(store::lock_store(&mut conn, &uri)?) } else { None };
    // Reading only, a newer MLflow's store is read as the latest's, with a warning; a fixer
    // deletes, so only on a schema it knows.
    let unknown = if opts.fix { UnknownRevision::Refuse } else { UnknownRevision::Allow };
    let schema = StoreSchema::read(&mut conn, &uri, unknown)?;
    schema.require_inspectable("doctor", &uri)?;
    let mut findings = doctor::examine(&mut conn)?;
    let orphan_rows: i64 = findings
        .iter()
        .map(|f| if let Finding::Orphans { rows, .. } = f { *rows } else { 0 })
        .sum();
    let mut fixed = Vec::new();
    if opts.fix && orphan_rows > 0 {
        if !opts.yes {
            confirm("delete", &format!("Delete {orphan_rows} orphan rows from {uri}?"))?;
        }
        let bar = progress::bar(orphan_rows as u64, "rows", quiet);
        fixed = doctor::fix_orphans(&mut conn, opts.batch_size, &mut |rows| bar.inc(rows))?;
        bar.finish_and_clear();
        findings = doctor::examine(&mut conn)?;
    }
    let problems = findings.iter().filter(|f| f.is_problem()).count();
    let mut out = String::new();
    match opts.output {
        Output::Json => {
            let fixed: Vec<_> = fixed
                .iter()
                .map(|(table, what, rows)| serde_json::json!({"table": table, "what": what, "rows": rows}))
                .collect();
            let report = serde_json::json!({ "findings": findings, "fixed": fixed });
            out = serde_json::to_string_pretty(&report).expect("the report serializes") + "\n";
        }
        Output::Text => {
            for (table, what, rows) in &fixed {
                out.push_str(&format!("fixed    {rows} rows of {table}: {what}\n"));
            }
            for finding in &findings {
                out.push_str(&format!("{}\n", describe(finding)));
            }
            if problems == 0 {
                out.push_str("no problems found\n");
            }
        }
    }
    super::write_stdout(&out);
    match problems {
        0 => Ok(()),
        problems => Err(Error::ProblemsFound {
            problems,
            hint: if orphan_rows > 0 && !opts.fix {
                "; `doctor --fix --yes` removes the orphan rows"
            } else {
                ""
            },
        }),
    }
}

fn describe(finding: &Finding) -> String {
    match finding {
        Finding::Orphans { table, what, rows } => {
            format!("problem  {rows} rows of {table}: {what}")
        }
        Finding::ForeignKey { problem } => format!("problem  {problem}"),
        Finding::MissingIndex { table, columns, statement } => {
            format!("advice   no index on {table} ({}) for purges: {statement}", columns.join(", "))
        }
    }
}
