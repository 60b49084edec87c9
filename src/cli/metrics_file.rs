//! `--metrics-file`: the last purge's figures in Prometheus text format, for node_exporter's
//! textfile collector. Written to a temporary file and renamed, so a scrape never reads half.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use mlflow_janitor::purge::Report;
use mlflow_janitor::{Error, Result};

const LAST_SUCCESS: &str = "mlflow_janitor_last_success_timestamp_seconds";

/// Where the file's new text is written before the rename.
fn temporary(path: &Path) -> std::path::PathBuf {
    path.with_extension("prom.tmp")
}

/// Checks, before any work, that the file can be written: its folder exists and takes a new file.
pub fn check_writable(path: &Path) -> Result<()> {
    let temporary = temporary(path);
    let created = std::fs::File::create(&temporary).and_then(|_| std::fs::remove_file(&temporary));
    created.map_err(|e| {
        Error::InvalidSettings(format!(
            "cannot write the metrics file {}: {e}. Nothing was touched",
            path.display()
        ))
    })
}

pub fn write(path: &Path, report: &Report, error: Option<&Error>) -> std::io::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    // A failed run keeps the time of the last success: that is what an alert watches.
    let last_success = match error {
        None => Some(now.to_string()),
        Some(_) => std::fs::read_to_string(path).ok().and_then(|old| {
            old.lines()
                .find_map(|l| l.strip_prefix(LAST_SUCCESS)?.trim().parse::<u64>().ok())
                .map(|t| t.to_string())
        }),
    };
    let mut text = String::new();
    let mut metric = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    };
    let entities: Vec<_> = report
        .entities
        .iter()
        .map(|(entity, n)| (format!("{{kind=\"{}\"}}", entity.name()), n.to_string()))
        .collect();
    metric(
        "mlflow_janitor_entities_purged",
        "Entities purged by the last run, by kind.",
        &entities,
    );
    let rows: Vec<_> = report
        .rows_by_table
        .iter()
        .map(|(table, n)| (format!("{{table=\"{table}\"}}"), n.to_string()))
        .collect();
    metric("mlflow_janitor_rows_purged", "Rows purged by the last run, by table.", &rows);
    if let Some(artifacts) = &report.artifacts {
        metric(
            "mlflow_janitor_artifact_bytes_deleted",
            "Bytes of artifacts the last run deleted (--artifacts).",
            &[(String::new(), artifacts.bytes.to_string())],
        );
        metric(
            "mlflow_janitor_artifact_objects_deleted",
            "Artifact files or objects the last run deleted (--artifacts).",
            &[(String::new(), artifacts.objects.to_string())],
        );
        metric(
            "mlflow_janitor_entities_kept",
            "Entities the last run kept because their artifacts could not be deleted.",
            &[(String::new(), artifacts.kept.len().to_string())],
        );
    }
    metric(
        "mlflow_janitor_batches",
        "Batches committed by the last run.",
        &[(String::new(), report.batches.to_string())],
    );
    metric(
        "mlflow_janitor_duration_seconds",
        "Duration of the last run's purge.",
        &[(String::new(), format!("{:.3}", report.duration_ms as f64 / 1000.0))],
    );
    metric(
        "mlflow_janitor_last_run_timestamp_seconds",
        "When the last run ended.",
        &[(String::new(), now.to_string())],
    );
    metric(
        "mlflow_janitor_last_run_exit_code",
        "Exit code of the last run (0: done).",
        &[(String::new(), error.map_or(0, Error::exit_status).to_string())],
    );
    if let Some(last_success) = last_success {
        metric(LAST_SUCCESS, "When a run last finished its job.", &[(String::new(), last_success)]);
    }
    let temporary = temporary(path);
    std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path))
}
