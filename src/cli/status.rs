//! `mlflow-janitor status`: what is soft-deleted, per workspace, and what a purge would free.

use std::path::PathBuf;

use clap::Args;
use mlflow_janitor::artifacts::{ArtifactStore, CloudConfig, Resolver};
use mlflow_janitor::status::{self, Deleted, Status};
use mlflow_janitor::{Error, Result, StoreSchema, UnknownRevision};

use super::{Output, StoreArg};

#[derive(Debug, Args)]
#[command(
    about = "Show what is soft-deleted, per workspace, and what a purge would free (read-only)",
    after_help = "\
Answers \"why can't I create experiment X?\" (the names deleted experiments still hold) and \"how
much would a purge free?\". Counts are exact; byte figures are estimates from the database's
statistics.

Examples:
  mlflow-janitor status --backend-store-uri postgresql://mlflow@db/mlflow
  mlflow-janitor status --backend-store-uri postgresql://mlflow@db/mlflow --output json
  mlflow-janitor status --metrics-file /var/lib/node_exporter/textfile_collector/mlflow_janitor_status.prom"
)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArg,

    /// Also size the artifacts `purge --artifacts` would delete, and name the entities it would
    /// keep (reads the artifact stores, with the same settings as purge).
    #[arg(long)]
    artifacts: bool,

    /// Where `mlflow server --artifacts-destination` stores proxied artifacts: resolves
    /// mlflow-artifacts: URIs.
    #[arg(long, value_name = "URI", requires = "artifacts")]
    artifacts_destination: Option<String>,

    /// Also write the backlog as gauges in Prometheus text format, for node_exporter's textfile
    /// collector (written whole, by rename; README "Monitoring").
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,

    /// A table for people, or JSON for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub fn run(opts: Opts) -> Result<()> {
    let uri = opts.store.uri()?;
    if let Some(path) = &opts.metrics_file {
        super::metrics_file::check_writable(path)?;
    }
    let artifacts = if opts.artifacts {
        let resolver = Resolver::new(opts.artifacts_destination.as_deref())?;
        Some((resolver, ArtifactStore::new(CloudConfig::from_env())?))
    } else {
        None
    };
    let mut conn = uri.establish()?;
    // Reading only: a newer MLflow's store is read as the latest's, with a warning.
    let schema = StoreSchema::read(&mut conn, &uri, UnknownRevision::Allow)?;
    schema.require_inspectable("status", &uri)?;
    let status = status::status(&mut conn, &schema, artifacts)?;
    if let Some(path) = &opts.metrics_file {
        super::metrics_file::write_status(path, &status)
            .map_err(|e| Error::InvalidSettings(format!("{}: {e}", path.display())))?;
    }
    super::write_stdout(&match opts.output {
        Output::Json => {
            serde_json::to_string_pretty(&status).expect("the status serializes") + "\n"
        }
        Output::Text => render(&status),
    });
    Ok(())
}

fn oldest(deleted: &Deleted) -> String {
    match deleted.oldest_ms {
        Some(ms) if deleted.count > 0 => {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            humantime::format_rfc3339_seconds(when).to_string()
        }
        _ => "-".into(),
    }
}

fn bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "?".into(), |n| format!("~{}", super::size(n)))
}

fn render(status: &Status) -> String {
    let mut out = String::new();
    if status.workspaces.is_empty() {
        out.push_str("nothing is soft-deleted\n");
    }
    for ws in &status.workspaces {
        out.push_str(&format!("workspace {}\n", ws.workspace));
        out.push_str(&format!("  {:<34} {:>10}  {}\n", "soft-deleted", "count", "oldest deletion"));
        for (kind, deleted) in [
            ("experiments", &ws.experiments),
            ("runs (incl. of deleted experiments)", &ws.runs),
            ("logged models", &ws.logged_models),
            ("model versions", &ws.model_versions),
        ] {
            out.push_str(&format!("  {kind:<34} {:>10}  {}\n", deleted.count, oldest(deleted)));
        }
        out.push_str(&format!(
            "  {:<34} {:>10}\n  {:<34} {:>10}\n  {:<34} {:>10}\n",
            "traces of deleted experiments",
            ws.traces_of_deleted_experiments,
            "live traces older than 30 days",
            ws.live_traces_older_than_30d,
            "live traces older than 90 days",
            ws.live_traces_older_than_90d,
        ));
        if !ws.names_held.is_empty() {
            out.push_str(&format!(
                "  names held by deleted experiments: {}\n",
                ws.names_held.join(", ")
            ));
        }
    }
    out.push_str(&format!(
        "\na purge would free\n  {:<16} {:>12}  {}\n",
        "table", "rows", "size (estimate)"
    ));
    for table in &status.purge_would_free {
        out.push_str(&format!(
            "  {:<16} {:>12}  {}\n",
            table.table,
            table.rows,
            bytes(table.approx_bytes)
        ));
    }
    let total = status.space.total();
    out.push_str(&format!(
        "\non disk: {} ({}), of which {} holds no live row\n",
        super::size(total.bytes),
        if status.space.file.is_some() {
            "the SQLite file"
        } else {
            "the tables a purge deletes from"
        },
        super::size(total.free_bytes)
    ));
    for (table, space) in status.space.parts().filter(|(_, space)| space.free_bytes > 0) {
        out.push_str(&format!(
            "  {table:<28} {:>12} free of {:>12}\n",
            super::size(space.free_bytes),
            super::size(space.bytes)
        ));
    }
    if let Some(artifacts) = &status.artifacts {
        out.push_str(&format!(
            "\npurge --artifacts would delete\n  {} objects, {} bytes, in {} locations\n",
            artifacts.objects, artifacts.bytes, artifacts.locations
        ));
        for kept in &artifacts.kept {
            out.push_str(&format!(
                "  would keep {} {}: {}\n",
                kept.entity.name(),
                kept.id,
                kept.error
            ));
        }
    }
    out
}
